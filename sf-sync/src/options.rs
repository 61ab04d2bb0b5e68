//! How the engine runs: the knobs below the config, with their defaults in one place.

use sf_bulk::PollSchedule;

use crate::error::{ConfigProblem, Error};
use crate::planner::PlannerConfig;

/// Engine knobs that are not part of Airbyte's config. [`crate::read`] uses
/// [`ReadOptions::default`]; [`crate::read_with`] takes them, for tests and benchmarks.
///
/// Defaults: the planner's defaults; 3 Bulk jobs in flight per stream; Bulk jobs polled on
/// [`sf_bulk::PollSchedule::default`] (at 0.1 s, 1.1 s, then each at 1.2 times the age of the
/// one before, 1 to 30 s apart, so a job is seen done within a fifth of its age, at least 1 s
/// and at most 30 s late: a 2 s job costs 3 polls, a 12 s job 11, a minute 20, an hour 140,
/// where one poll per 5 s would cost 1, 3, 12 and 720 and see the 2 s job 3 s late); Bulk
/// results pages of up to 100,000 rows (`sf-bulk`'s default); 1,024 records queued between the
/// stream tasks and the sink (in batches of 256 records or 8,192 values); Salesforce's own
/// REST page size; 3 resumes of a window after `INVALID_QUERY_LOCATOR` or a Bulk download cut
/// short.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// The volume planner: REST or Bulk, and window sizes.
    pub planner: PlannerConfig,
    /// Bulk jobs of later windows created while an earlier one downloads, per stream (at least 1).
    pub bulk_jobs_in_flight: usize,
    /// When a Bulk job is polled. Its `max_wait` sets what long jobs cost (a job of a few
    /// minutes is polled that often).
    pub bulk_poll: PollSchedule,
    /// Rows per Bulk results page (`maxRecords`); `None` lets Salesforce choose. Smaller pages
    /// mean more requests, but a download cut short resumes from a nearer page.
    pub bulk_max_records: Option<u32>,
    /// Results pages of one Bulk job downloaded at once through `resultPages` (API 58.0+), 1 to
    /// 16; 1 reads them one after another by their locators.
    pub bulk_parallel_pages: usize,
    /// Bytes of Bulk result pages downloaded and not yet decoded held at most, per job
    /// (`sf_bulk::BulkConfig::parallel_buffer_bytes`), 1 to `u32::MAX`; default 1 MiB.
    pub bulk_buffer_bytes: usize,
    /// Records queued between the stream tasks and the sink: the bound on what the engine holds
    /// in memory besides pages being read. Records travel in batches of a quarter of this (at
    /// most 1,024), each taking one of the channel's `channel_capacity / batch` slots, which
    /// states, logs and statuses share. A batch of records wider than 32 columns holds fewer of
    /// them (at most `batch × 32` values), so wide objects queue as many values as narrow ones.
    pub channel_capacity: usize,
    /// REST records per page (`Sforce-Query-Options: batchSize`, 200 to 2,000); `None` lets
    /// Salesforce choose.
    pub rest_batch_size: Option<u32>,
    /// How many times in a row one window resumes after a lost query locator or a Bulk download
    /// cut short before the stream fails: the count starts again once a resumed read makes
    /// progress (a Bulk page read whole, a REST record read), so a long read cut now and then
    /// finishes, while one that fails at the same point every time stops.
    pub resume_attempts: u32,
    /// How long a stream waits for its next Bulk job before it writes the jobs it has in flight
    /// into a STATE (then again each time another job is created), so a sync stopped while
    /// long jobs run continues them. Shorter waits write no such state: a job that completes
    /// in less time is not worth one. Zero names every job in a state at once: before the
    /// first record of its download, and a job created ahead at the next record emitted, so
    /// a sync killed at any moment leaves at most one job no state names (for syncs run where
    /// kills are expected; it costs a few more STATE messages per job).
    pub checkpoint_jobs_after: std::time::Duration,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            planner: PlannerConfig::default(),
            bulk_jobs_in_flight: 3,
            bulk_poll: PollSchedule::default(),
            bulk_max_records: sf_bulk::BulkConfig::default().max_records,
            bulk_parallel_pages: sf_bulk::BulkConfig::default().parallel_pages,
            bulk_buffer_bytes: sf_bulk::BulkConfig::default().parallel_buffer_bytes,
            channel_capacity: 1024,
            rest_batch_size: None,
            resume_attempts: 3,
            checkpoint_jobs_after: std::time::Duration::from_secs(2),
        }
    }
}

impl ReadOptions {
    /// Checks every option; the error names each bad one, its value and what would do.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, given: String, expected: &str| {
            problems.push(ConfigProblem {
                key: key.to_string(),
                given: Some(given),
                expected: expected.to_string(),
            })
        };
        if self.bulk_jobs_in_flight == 0 {
            bad("bulk_jobs_in_flight", "0".into(), "must be at least 1");
        }
        if !(1..=16).contains(&self.bulk_parallel_pages) {
            bad(
                "bulk_parallel_pages",
                self.bulk_parallel_pages.to_string(),
                "must be from 1 to 16",
            );
        }
        if self.bulk_buffer_bytes == 0 || self.bulk_buffer_bytes > u32::MAX as usize {
            bad(
                "bulk_buffer_bytes",
                self.bulk_buffer_bytes.to_string(),
                "must be more than zero and at most 4 GiB",
            );
        }
        if let Err(sf_bulk::Error::Config { field, reason }) = self.bulk_poll.validate() {
            bad(
                &format!("bulk_{field}"),
                format!("{:?}", self.bulk_poll),
                &reason,
            );
        }
        if self.bulk_max_records == Some(0) {
            bad(
                "bulk_max_records",
                "0".into(),
                "must be at least 1, or unset to let Salesforce choose",
            );
        }
        if self.channel_capacity == 0 {
            bad("channel_capacity", "0".into(), "must be at least 1");
        }
        if let Some(n) = self.rest_batch_size {
            if !(200..=2000).contains(&n) {
                bad(
                    "rest_batch_size",
                    n.to_string(),
                    "must be from 200 to 2000, or unset to let Salesforce choose",
                );
            }
        }
        if self.planner.rest_rows_per_window == 0 || self.planner.bulk_rows_per_window == 0 {
            bad(
                "planner",
                format!(
                    "{} REST / {} Bulk rows per window",
                    self.planner.rest_rows_per_window, self.planner.bulk_rows_per_window
                ),
                "rows per window must be at least 1",
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::ConfigInvalid { problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        ReadOptions::default().validate().unwrap();
        let bad = ReadOptions {
            bulk_jobs_in_flight: 0,
            rest_batch_size: Some(50),
            bulk_poll: PollSchedule {
                growth: 0.5,
                ..PollSchedule::default()
            },
            bulk_max_records: Some(0),
            bulk_buffer_bytes: 0,
            ..ReadOptions::default()
        };
        let text = bad.validate().unwrap_err().to_string();
        assert!(
            text.contains("`bulk_jobs_in_flight`: `0` must be at least 1"),
            "{text}"
        );
        assert!(
            text.contains("`rest_batch_size`: `50` must be from 200 to 2000"),
            "{text}"
        );
        assert!(
            text.contains("`bulk_poll.growth`")
                && text.contains("must be a finite number of at least 1"),
            "{text}"
        );
        assert!(
            text.contains("`bulk_max_records`: `0` must be at least 1"),
            "{text}"
        );
        assert!(
            text.contains("`bulk_buffer_bytes`: `0` must be more than zero and at most 4 GiB"),
            "{text}"
        );
        assert_eq!(ReadOptions::default().bulk_max_records, Some(100_000));
        assert_eq!(ReadOptions::default().bulk_buffer_bytes, 1024 * 1024);
    }
}
