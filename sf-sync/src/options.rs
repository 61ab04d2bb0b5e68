//! How the engine runs: the knobs below the config, with their defaults in one place.

use std::time::Duration;

use crate::error::{ConfigProblem, Error};
use crate::planner::PlannerConfig;

/// Engine knobs that are not part of Airbyte's config. [`crate::read`] uses
/// [`ReadOptions::default`]; [`crate::read_with`] takes them, for tests and benchmarks.
///
/// Defaults: the planner's defaults; 3 Bulk jobs in flight per stream; Bulk polls after 0.5 s,
/// the wait doubling up to 30 s (polls at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 61.5 s, then every
/// 30 s: a job done at once is seen after half a second, a 12 s job costs 5 polls, a 5-minute
/// one 15, where one poll per 5 s would cost 3 and 60); Bulk results pages of up to 100,000 rows (`sf-bulk`'s default); 1,024
/// records queued between the stream tasks and the sink (in batches of 256); Salesforce's own
/// REST page size; 3 resumes of a window after `INVALID_QUERY_LOCATOR` or a Bulk download cut
/// short.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// The volume planner: REST or Bulk, and window sizes.
    pub planner: PlannerConfig,
    /// Bulk jobs of later windows created while an earlier one downloads, per stream (at least 1).
    pub bulk_jobs_in_flight: usize,
    /// The wait before a new Bulk job is first polled; each later wait doubles.
    pub bulk_poll_initial: Duration,
    /// The longest wait between two polls of a Bulk job. Long jobs are polled this often, so
    /// it sets their poll count (a job of a few minutes costs a few polls per minute).
    pub bulk_poll_max: Duration,
    /// Rows per Bulk results page (`maxRecords`); `None` lets Salesforce choose. Smaller pages
    /// mean more requests, but a download cut short resumes from a nearer page.
    pub bulk_max_records: Option<u32>,
    /// Records queued between the stream tasks and the sink: the bound on what the engine holds
    /// in memory besides pages being read. Records travel in batches of a quarter of this (at
    /// most 1,024), each taking one of the channel's `channel_capacity / batch` slots, which
    /// states, logs and statuses share.
    pub channel_capacity: usize,
    /// REST records per page (`Sforce-Query-Options: batchSize`, 200 to 2,000); `None` lets
    /// Salesforce choose.
    pub rest_batch_size: Option<u32>,
    /// How many times one window resumes after a lost query locator or a Bulk download cut short
    /// before the stream fails.
    pub resume_attempts: u32,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            planner: PlannerConfig::default(),
            bulk_jobs_in_flight: 3,
            bulk_poll_initial: Duration::from_millis(500),
            bulk_poll_max: Duration::from_secs(30),
            bulk_max_records: sf_bulk::BulkConfig::default().max_records,
            channel_capacity: 1024,
            rest_batch_size: None,
            resume_attempts: 3,
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
        if self.bulk_poll_initial.is_zero() {
            bad(
                "bulk_poll_initial",
                format!("{:?}", self.bulk_poll_initial),
                "must be more than zero",
            );
        }
        if self.bulk_poll_max < self.bulk_poll_initial {
            bad(
                "bulk_poll_max",
                format!("{:?}", self.bulk_poll_max),
                "must be at least bulk_poll_initial",
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
            bulk_poll_max: Duration::from_millis(1),
            bulk_max_records: Some(0),
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
        assert!(text.contains("`bulk_poll_max`"), "{text}");
        assert!(
            text.contains("`bulk_max_records`: `0` must be at least 1"),
            "{text}"
        );
        assert_eq!(ReadOptions::default().bulk_max_records, Some(100_000));
    }
}
