//! Issue 17's benchmarks: the wait for a Bulk job against a minimal client that polls every
//! 100 ms, compound fields read through Bulk (and checked against REST), and parallel result
//! pages on an org whose connections have a download bandwidth; each ratio within one run, on
//! one org.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::bench::{Binaries, Quiet};
use crate::bench_cases::{
    columns, limit, measure, prepare, ReadCase, Throughput, BULK_ONLY_COLUMNS,
};
use crate::bench_catalog::Pick;
use crate::bench_compound::{bulk_soql, compare, connector_fingerprints, rest_fingerprints};
use crate::bench_proc::OrgSpec;
use crate::bench_raw::{self, JobWait};

/// The minimal client polls the job this often.
pub const CLIENT_POLL_MS: u64 = 100;
/// Pages the minimal client downloads at once: the connector's default parallel pages.
pub const CLIENT_WIDTH: usize = 4;
/// Per-connection download bandwidth of the parallel-pages case, MB/s (see BENCHMARKS.md for
/// why: four connections stay well below what the two cores can decode).
pub const BANDWIDTH_MB_PER_S: f64 = 5.0;
/// The compound case's own six columns besides the 14 shared ones: both addresses, as
/// `discover` gives them (compound), and four plain fields.
pub const COMPOUND_COLUMNS: [&str; 6] = [
    "BillingAddress",
    "ShippingAddress",
    "AccountNumber",
    "Rating",
    "AccountSource",
    "Description",
];
/// The compound fields compared with REST.
pub const COMPARED: [&str; 2] = ["BillingAddress", "ShippingAddress"];

/// `sf_bulk::PollSchedule::default()`, restated (xtask links no workspace crate): the first poll
/// at 0.1 s, the second at 1.1 s, then each at 1.2 times the age of the one before, 1 to 30 s
/// after it. Returns the polls' times (seconds since creation) up to the first at or after
/// `job_secs`, the one that sees the job done.
pub fn schedule_poll_times(job_secs: f64) -> Vec<f64> {
    let mut times: Vec<f64> = Vec::new();
    loop {
        let t = match times.len() {
            0 => 0.1,
            1 => 1.1,
            _ => {
                let previous = times[times.len() - 1];
                (previous * 1.2).clamp(previous + 1.0, previous + 30.0)
            }
        };
        times.push(t);
        // A little slack for float arithmetic (0.1 + 1.0 is not 1.1).
        if t + 1e-9 >= job_secs {
            return times;
        }
    }
}

/// Polls the schedule spends on a job of `job_secs`.
pub fn schedule_polls(job_secs: f64) -> u64 {
    schedule_poll_times(job_secs).len() as u64
}

/// Polls Airbyte's fixed 5 s cadence spends on a job of `job_secs` (at least one).
pub fn airbyte_polls(job_secs: f64) -> u64 {
    ((job_secs / 5.0).ceil() as u64).max(1)
}

/// A job-wait case: the connector's whole read against the minimal client's job.
#[derive(Debug)]
pub struct JobWaitCase {
    /// The connector's read.
    pub read: Throughput,
    /// The minimal client (the fastest of its runs).
    pub client: JobWait,
}

/// The compound case.
#[derive(Debug)]
pub struct CompoundCase {
    /// The connector's read.
    pub read: Throughput,
    /// Rows whose compound fields were compared with REST's (all differ-free, or the benchmark
    /// failed).
    pub compared: u64,
}

/// The parallel-pages case.
#[derive(Debug)]
pub struct BandwidthCase {
    /// The per-connection bandwidth, MB/s.
    pub cap_mb_per_s: f64,
    /// The read with the default parallel pages.
    pub parallel: Throughput,
    /// The read through one connection.
    pub single: Throughput,
    /// How the single-connection read was obtained.
    pub single_how: String,
}

/// Everything issue 17's benchmarks measured.
#[derive(Debug, Default)]
pub struct Issue17 {
    /// Job waits (2 s and 12 s jobs).
    pub job_waits: Vec<JobWaitCase>,
    /// Compound fields through Bulk.
    pub compound: Option<CompoundCase>,
    /// Parallel pages on a bandwidth-capped org.
    pub bandwidth: Option<BandwidthCase>,
}

impl Issue17 {
    /// The connector reads of these cases, for the full-refresh table.
    pub fn reads(&self) -> Vec<&Throughput> {
        let mut out: Vec<&Throughput> = self.job_waits.iter().map(|j| &j.read).collect();
        out.extend(self.compound.iter().map(|c| &c.read));
        if let Some(b) = &self.bandwidth {
            out.push(&b.parallel);
            out.push(&b.single);
        }
        out
    }
}

fn account_case(name: String, rows: u64, own: &[&str], spec: OrgSpec) -> ReadCase {
    ReadCase {
        name,
        object: "Account",
        rows,
        pick: Pick::Columns(columns(own)),
        spec,
        with_limit: false,
    }
}

/// `rows` Accounts (the Bulk cases' 20 columns) on an org whose jobs take `queued_ms` +
/// `running_ms`: the connector's read (`repeat` times), then the minimal client's job (as many
/// times), on the same org.
pub fn job_wait(
    bins: &Binaries,
    work: &Path,
    quiet: &Quiet,
    repeat: usize,
    rows: u64,
    (queued_ms, running_ms): (u64, u64),
) -> Result<JobWaitCase> {
    let secs = (queued_ms + running_ms) as f64 / 1000.0;
    let spec = OrgSpec {
        bulk_queued_ms: queued_ms,
        bulk_running_ms: running_ms,
        ..OrgSpec::default()
    };
    let case = account_case(
        format!("job wait, {secs:.0} s job"),
        rows,
        &BULK_ONLY_COLUMNS,
        spec,
    );
    let p = prepare(bins, work, &case, &[])?;
    let read = measure(bins, &p, &case, repeat, quiet, &p.config, &[])?;
    let token = bench_raw::login(&p.org)?;
    let soql = format!("SELECT {} FROM {}", p.columns.join(", "), case.object);
    let mut best: Option<JobWait> = None;
    for _ in 0..repeat.max(1) {
        quiet.settle();
        let run = bench_raw::job_wait(
            &p.org,
            &token,
            &soql,
            Duration::from_millis(CLIENT_POLL_MS),
            CLIENT_WIDTH,
        )?;
        if run.rows != rows {
            bail!(
                "{}: the minimal client saw {} rows, not {rows}",
                case.name,
                run.rows
            );
        }
        eprintln!(
            "bench: {}: minimal client {:.2} s ({} polls, job seen at {:.2} s, {} pages)",
            case.name, run.seconds, run.polls, run.seen_secs, run.pages
        );
        if best.as_ref().is_none_or(|b| run.seconds < b.seconds) {
            best = Some(run);
        }
    }
    let client = best.context("no minimal client run")?;
    Ok(JobWaitCase { read, client })
}

/// `rows` Accounts with both addresses selected as `discover` gives them (compound), default
/// config: the timed reads, then one more read whose records are kept (`Id` → the compound
/// values' hash) and compared with the org's REST answer for every row; any difference fails.
pub fn compound(
    bins: &Binaries,
    work: &Path,
    quiet: &Quiet,
    repeat: usize,
    rows: u64,
) -> Result<CompoundCase> {
    let case = account_case(
        "compound fields".to_string(),
        rows,
        &COMPOUND_COLUMNS,
        OrgSpec::default(),
    );
    let p = prepare(bins, work, &case, &[])?;
    let mut read = measure(bins, &p, &case, repeat, quiet, &p.config, &[])?;
    // The ceiling on this machine: the org serving the same component pages to a client that
    // discards them.
    let token = bench_raw::login(&p.org)?;
    let soql = bulk_soql(&p.org, &token, case.object, &p.columns)?;
    read.limit = Some(limit(&p.org, &case, &soql, repeat)?);
    eprintln!("bench: {}: comparing {COMPARED:?} with REST's", case.name);
    let args = [
        "read",
        "--config",
        path_str(&p.config)?,
        "--catalog",
        path_str(&p.catalog)?,
    ];
    let bulk = connector_fingerprints(&bins.sfconnect, &args, &p.dir.join("check.log"), &COMPARED)?;
    let token = bench_raw::login(&p.org)?;
    let rest = rest_fingerprints(&p.org, &token, case.object, &COMPARED)?;
    let (compared, differ) = compare(&bulk, &rest);
    if !differ.is_empty() || compared != rows {
        bail!(
            "{}: {} of {compared} rows differ between the connector's Bulk read and REST \
             (first: {:?}); {} rows compared for {rows}",
            case.name,
            differ.len(),
            &differ[..differ.len().min(5)],
            compared
        );
    }
    Ok(CompoundCase { read, compared })
}

/// The flags (or config) that make `sfconnect read` download one page at a time: its
/// `--bulk-parallel-pages 1` when it has that flag, else `api_version` 57.0 in the config (no
/// `resultPages` before 58.0: pages are read one after another by their locators).
fn single_connection(
    bins: &Binaries,
    p_config: &Path,
) -> Result<(Vec<String>, Option<std::path::PathBuf>, String)> {
    let help = Command::new(&bins.sfconnect)
        .args(["read", "--help"])
        .output()
        .context("cannot run sfconnect read --help")?;
    if String::from_utf8_lossy(&help.stdout).contains("--bulk-parallel-pages") {
        return Ok((
            vec!["--bulk-parallel-pages".to_string(), "1".to_string()],
            None,
            "`sfconnect read --bulk-parallel-pages 1`".to_string(),
        ));
    }
    let text = std::fs::read_to_string(p_config)?;
    let mut config: serde_json::Value = serde_json::from_str(&text)?;
    config["api_version"] = json!("57.0");
    let path = p_config.with_file_name("config-api57.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
    Ok((
        Vec::new(),
        Some(path),
        "`\"api_version\": \"57.0\"` in the config (sfconnect read has no flag for it: before \
         58.0 there is no resultPages, so pages are read one after another)"
            .to_string(),
    ))
}

/// `rows` Accounts (the Bulk cases' 20 columns) on an org whose connections download at
/// [`BANDWIDTH_MB_PER_S`]: the connector with its default parallel pages, then through one
/// connection; `repeat` runs each.
pub fn bandwidth(
    bins: &Binaries,
    work: &Path,
    quiet: &Quiet,
    repeat: usize,
    rows: u64,
) -> Result<BandwidthCase> {
    let spec = OrgSpec {
        bandwidth_mb_per_s: BANDWIDTH_MB_PER_S,
        ..OrgSpec::default()
    };
    let case = account_case(
        format!("{BANDWIDTH_MB_PER_S} MB/s per connection, parallel pages"),
        rows,
        &BULK_ONLY_COLUMNS,
        spec,
    );
    let p = prepare(bins, work, &case, &[])?;
    let parallel = measure(bins, &p, &case, repeat, quiet, &p.config, &[])?;
    let (extra, config, single_how) = single_connection(bins, &p.config)?;
    let single_case = ReadCase {
        name: format!("{BANDWIDTH_MB_PER_S} MB/s per connection, one connection"),
        ..case.clone()
    };
    let config = config.unwrap_or_else(|| p.config.clone());
    let single = measure(bins, &p, &single_case, repeat, quiet, &config, &extra)?;
    Ok(BandwidthCase {
        cap_mb_per_s: BANDWIDTH_MB_PER_S,
        parallel,
        single,
        single_how,
    })
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_schedule_and_airbyte_cadence() {
        let t = schedule_poll_times(12.0);
        let rounded: Vec<f64> = t.iter().map(|s| (s * 100.0).round() / 100.0).collect();
        assert_eq!(
            rounded,
            [0.1, 1.1, 2.1, 3.1, 4.1, 5.1, 6.12, 7.34, 8.81, 10.58, 12.69]
        );
        assert_eq!(schedule_polls(12.0), 11);
        assert_eq!(schedule_polls(2.0), 3);
        assert_eq!(schedule_polls(0.05), 1);
        assert_eq!(schedule_polls(60.0), 20);
        assert_eq!(schedule_polls(3600.0), 140);
        // Each poll within a fifth of the age (at least 1 s) of the one before, at most 30 s.
        let long = schedule_poll_times(3600.0);
        for w in long.windows(2).skip(1) {
            let gap = w[1] - w[0];
            assert!((1.0 - 1e-9..=30.0 + 1e-9).contains(&gap), "{w:?}");
            assert!(gap <= (w[0] / 5.0).max(1.0) + 1e-9, "{w:?}");
        }
        assert_eq!((airbyte_polls(2.0), airbyte_polls(12.0)), (1, 3));
        assert_eq!((airbyte_polls(0.0), airbyte_polls(3600.0)), (1, 720));
    }
}
