//! `sfconnect read`'s tuning flags: the engine's knobs (`sf_sync::ReadOptions`) below Airbyte's
//! config, for experienced users and for tests that need small pages and windows on a small org
//! (`tests/kill_resume.rs` kills the process mid-download with them). Airbyte never passes them;
//! without them a read runs on `ReadOptions::default()`.
//!
//! Each flag is checked when the command line is parsed: a value out of its range is refused
//! with the flag's name, the range, and the fix (another value, or leaving the flag out).

use std::time::Duration;

use clap::Args;
use sf_sync::ReadOptions;

/// The tuning flags of `read`. Every one is optional; a flag left out keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Args)]
#[command(next_help_heading = "Tuning (experienced users; the defaults suit most orgs)")]
pub struct Tuning {
    /// Rows per Bulk results page (Bulk API 2.0's `maxRecords`), 1 to 1000000; default 100000.
    /// Smaller pages cost more requests, but a download cut short resumes from a nearer page.
    #[arg(long, value_name = "ROWS", allow_negative_numbers = true, value_parser = bounded::<u32>(1, 1_000_000, "rows per Bulk results page"))]
    pub bulk_page_rows: Option<u32>,
    /// Results pages of one Bulk job downloaded at once (`resultPages`, API 58.0+), 1 to 16;
    /// default 4. 1 reads them one after another.
    #[arg(long, value_name = "PAGES", allow_negative_numbers = true, value_parser = bounded::<usize>(1, 16, "pages downloaded at once"))]
    pub bulk_parallel_pages: Option<usize>,
    /// KiB of one Bulk job's result pages downloaded and not yet decoded held at most (the page
    /// being emitted included), 64 to 1048576; default 1024. A page that finds it spent stops
    /// reading its connection until the reader catches up: the bound on the read's memory.
    #[arg(long, value_name = "KIB", allow_negative_numbers = true, value_parser = bounded::<usize>(64, 1_048_576, "KiB of result pages held"))]
    pub bulk_buffer_kib: Option<usize>,
    /// Bulk jobs of later windows created while an earlier one downloads, per stream, 1 to 10;
    /// default 3. Each is one of the org's 10,000 Bulk query jobs a day.
    #[arg(long, value_name = "JOBS", allow_negative_numbers = true, value_parser = bounded::<usize>(1, 10, "Bulk jobs in flight per stream"))]
    pub bulk_jobs_in_flight: Option<usize>,
    /// Target rows per Bulk job (one job per window), 1 to 1000000000; default 500000.
    #[arg(long, value_name = "ROWS", allow_negative_numbers = true, value_parser = bounded::<u64>(1, 1_000_000_000, "rows per Bulk window"))]
    pub bulk_rows_per_window: Option<u64>,
    /// Seconds a stream waits for its next Bulk job before it writes the jobs in flight into a
    /// STATE (so a sync stopped then continues them), 0 to 3600; default 2. 0 writes every job
    /// into a state as soon as it is created.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, value_parser = seconds(3600.0))]
    pub bulk_checkpoint_after: Option<Duration>,
    /// REST records per page (`Sforce-Query-Options: batchSize`), 200 to 2000, Salesforce's own
    /// bounds; default: Salesforce chooses (2000 for narrow rows).
    #[arg(long, value_name = "ROWS", allow_negative_numbers = true, value_parser = bounded::<u32>(200, 2000, "REST rows per page"))]
    pub rest_page_rows: Option<u32>,
    /// A stream with at most this many rows to read (counted with `SELECT COUNT()`) is read
    /// through REST, one with more through Bulk, 0 to 10000000; default 20000. Spans shorter
    /// than a day are read through REST without counting.
    #[arg(long, value_name = "ROWS", allow_negative_numbers = true, value_parser = bounded::<u64>(0, 10_000_000, "rows read through REST at most"))]
    pub rest_max_rows: Option<u64>,
    /// Target rows per REST window (each ends with a STATE), 1 to 100000000; default 100000.
    #[arg(long, value_name = "ROWS", allow_negative_numbers = true, value_parser = bounded::<u64>(1, 100_000_000, "rows per REST window"))]
    pub rest_rows_per_window: Option<u64>,
}

impl Tuning {
    /// The engine options: the defaults with each given flag on top.
    pub fn options(&self) -> ReadOptions {
        let mut options = ReadOptions::default();
        if let Some(rows) = self.bulk_page_rows {
            options.bulk_max_records = Some(rows);
        }
        if let Some(pages) = self.bulk_parallel_pages {
            options.bulk_parallel_pages = pages;
        }
        if let Some(kib) = self.bulk_buffer_kib {
            options.bulk_buffer_bytes = kib * 1024;
        }
        if let Some(jobs) = self.bulk_jobs_in_flight {
            options.bulk_jobs_in_flight = jobs;
        }
        if let Some(rows) = self.bulk_rows_per_window {
            options.planner.bulk_rows_per_window = rows;
        }
        if let Some(wait) = self.bulk_checkpoint_after {
            options.checkpoint_jobs_after = wait;
        }
        if let Some(rows) = self.rest_page_rows {
            options.rest_batch_size = Some(rows);
        }
        if let Some(rows) = self.rest_max_rows {
            options.planner.rest_max_rows = rows;
        }
        if let Some(rows) = self.rest_rows_per_window {
            options.planner.rest_rows_per_window = rows;
        }
        options
    }
}

/// A parser of a whole number from `min` to `max` (`what` it counts, for the error). Clap puts
/// the flag and the value given before the message.
fn bounded<T>(
    min: T,
    max: T,
    what: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display + Send + Sync + 'static,
{
    move |given: &str| {
        let fix = format!(
            "{what} must be a whole number from {min} to {max}; give one in that range, or leave \
             the flag out for the default"
        );
        match given.trim().parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(fix),
        }
    }
}

/// A parser of seconds (decimals allowed) from 0 to `max`.
fn seconds(max: f64) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |given: &str| {
        let fix = || {
            format!(
                "must be a number of seconds from 0 to {max} (e.g. 0, 0.5 or 2); give one in \
                 that range, or leave the flag out for the default"
            )
        };
        let secs: f64 = given.trim().parse().map_err(|_| fix())?;
        if secs.is_finite() && (0.0..=max).contains(&secs) {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(fix())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        tuning: Tuning,
    }

    fn parse(args: &[&str]) -> Result<Tuning, String> {
        Cli::try_parse_from(std::iter::once("read").chain(args.iter().copied()))
            .map(|cli| cli.tuning)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn no_flag_keeps_every_default() {
        let tuning = parse(&[]).unwrap();
        assert_eq!(tuning, Tuning::default());
        assert_eq!(tuning.options(), ReadOptions::default());
    }

    #[test]
    fn each_flag_sets_its_option_and_the_result_validates() {
        let tuning = parse(&[
            "--bulk-page-rows",
            "50",
            "--bulk-parallel-pages",
            "1",
            "--bulk-buffer-kib",
            "512",
            "--bulk-jobs-in-flight",
            "2",
            "--bulk-rows-per-window",
            "800",
            "--bulk-checkpoint-after",
            "0",
            "--rest-page-rows",
            "200",
            "--rest-max-rows",
            "1000",
            "--rest-rows-per-window",
            "400",
        ])
        .unwrap();
        let options = tuning.options();
        assert_eq!(options.bulk_max_records, Some(50));
        assert_eq!(options.bulk_parallel_pages, 1);
        assert_eq!(options.bulk_buffer_bytes, 512 * 1024);
        assert_eq!(options.bulk_jobs_in_flight, 2);
        assert_eq!(options.planner.bulk_rows_per_window, 800);
        assert_eq!(options.checkpoint_jobs_after, Duration::ZERO);
        assert_eq!(options.rest_batch_size, Some(200));
        assert_eq!(options.planner.rest_max_rows, 1000);
        assert_eq!(options.planner.rest_rows_per_window, 400);
        // What is left is the defaults'.
        let defaults = ReadOptions::default();
        assert_eq!(options.bulk_poll, defaults.bulk_poll);
        assert_eq!(options.channel_capacity, defaults.channel_capacity);
        assert_eq!(options.planner.min_window, defaults.planner.min_window);
        options.validate().unwrap();
        let half = parse(&["--bulk-checkpoint-after", "0.5"]).unwrap();
        assert_eq!(
            half.options().checkpoint_jobs_after,
            Duration::from_millis(500)
        );
        // 0 is meaningful for the REST threshold: Bulk for every counted span with rows.
        assert_eq!(
            parse(&["--rest-max-rows", "0"])
                .unwrap()
                .options()
                .planner
                .rest_max_rows,
            0
        );
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_flag_the_range_and_the_fix() {
        for (flag, value, range) in [
            ("--bulk-page-rows", "0", "from 1 to 1000000"),
            ("--bulk-page-rows", "2000000", "from 1 to 1000000"),
            ("--bulk-page-rows", "-3", "from 1 to 1000000"),
            ("--bulk-page-rows", "many", "from 1 to 1000000"),
            ("--bulk-parallel-pages", "0", "from 1 to 16"),
            ("--bulk-parallel-pages", "17", "from 1 to 16"),
            ("--bulk-buffer-kib", "63", "from 64 to 1048576"),
            ("--bulk-buffer-kib", "2000000", "from 64 to 1048576"),
            ("--bulk-jobs-in-flight", "0", "from 1 to 10"),
            ("--bulk-jobs-in-flight", "500", "from 1 to 10"),
            ("--bulk-rows-per-window", "0", "from 1 to 1000000000"),
            ("--rest-page-rows", "100", "from 200 to 2000"),
            ("--rest-page-rows", "5000", "from 200 to 2000"),
            ("--rest-max-rows", "99999999999", "from 0 to 10000000"),
            ("--rest-rows-per-window", "0", "from 1 to 100000000"),
            ("--bulk-checkpoint-after", "-1", "from 0 to 3600"),
            ("--bulk-checkpoint-after", "NaN", "from 0 to 3600"),
            ("--bulk-checkpoint-after", "1e9", "from 0 to 3600"),
        ] {
            let text = parse(&[flag, value]).unwrap_err();
            assert!(text.contains(flag), "{flag} {value}: {text}");
            assert!(
                text.contains(&format!("'{value}'")),
                "{flag} {value}: {text}"
            );
            assert!(text.contains(range), "{flag} {value}: {text}");
            assert!(
                text.contains("or leave the flag out for the default"),
                "{flag} {value}: {text}"
            );
        }
    }
}
