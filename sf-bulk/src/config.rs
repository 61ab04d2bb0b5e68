//! How jobs are polled, timed out, paged, retried and cleaned up.

use std::time::Duration;

use crate::error::Error;

/// Bulk job policy. Defaults are in [`BulkConfig::default`], the one place they are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkConfig {
    /// The wait before the first poll of a new job; each later wait doubles, up to
    /// `poll_interval_max`. Default 0.5 s.
    pub poll_interval_initial: Duration,
    /// The longest wait between two polls. Default 10 s.
    pub poll_interval_max: Duration,
    /// How long a job may stay queued or in progress before it is aborted
    /// (`PATCH {"state":"Aborted"}`) and the run fails with [`crate::ErrorKind::JobTimedOut`].
    /// Default 24 h, as Airbyte's connector (large objects legitimately take hours).
    pub job_timeout: Duration,
    /// `maxRecords` per results page; `None` lets Salesforce choose. Default 100,000: pages stay
    /// a few tens of MB, so a resumed download repeats little, while requests stay few.
    pub max_records: Option<u32>,
    /// How many times [`crate::BulkClient::query`] replaces a job that ended in `Failed` with a
    /// new one before giving up with [`crate::ErrorKind::JobFailed`]. Default 1.
    pub failed_job_retries: u32,
    /// Delete each job once its results are read and verified (and failed, aborted or timed out
    /// jobs). A job whose download fails is kept for [`crate::BulkClient::resume`]; see
    /// [`crate::BulkClient::query`]. A failed delete is logged, never fatal: Salesforce removes
    /// jobs after 7 days anyway. Default true.
    pub delete_jobs: bool,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            poll_interval_initial: Duration::from_millis(500),
            poll_interval_max: Duration::from_secs(10),
            job_timeout: Duration::from_secs(24 * 60 * 60),
            max_records: Some(100_000),
            failed_job_retries: 1,
            delete_jobs: true,
        }
    }
}

impl BulkConfig {
    /// Checks every field; the error names the first field out of range.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: &str| Error::Config {
            field,
            reason: reason.to_string(),
        };
        if self.poll_interval_initial.is_zero() {
            return Err(bad("poll_interval_initial", "must be more than zero"));
        }
        if self.poll_interval_max < self.poll_interval_initial {
            return Err(bad(
                "poll_interval_max",
                "must be at least poll_interval_initial",
            ));
        }
        if self.job_timeout.is_zero() {
            return Err(bad("job_timeout", "must be more than zero"));
        }
        if self.max_records == Some(0) {
            return Err(bad(
                "max_records",
                "must be more than zero (or unset to let Salesforce choose)",
            ));
        }
        Ok(())
    }

    /// The wait before poll number `poll` (0-based): `poll_interval_initial` doubled `poll` times,
    /// capped at `poll_interval_max`.
    pub fn poll_interval(&self, poll: u32) -> Duration {
        let factor = 2u32.saturating_pow(poll.min(31));
        self.poll_interval_initial
            .saturating_mul(factor)
            .min(self.poll_interval_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_interval_doubles_to_the_cap() {
        let config = BulkConfig::default();
        let waits: Vec<u64> = (0..8)
            .map(|n| config.poll_interval(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
        assert_eq!(config.poll_interval(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn validation_names_the_field() {
        assert!(BulkConfig::default().validate().is_ok());
        let cases = [
            (
                BulkConfig {
                    poll_interval_initial: Duration::ZERO,
                    ..BulkConfig::default()
                },
                "poll_interval_initial",
            ),
            (
                BulkConfig {
                    poll_interval_max: Duration::from_millis(100),
                    ..BulkConfig::default()
                },
                "poll_interval_max",
            ),
            (
                BulkConfig {
                    job_timeout: Duration::ZERO,
                    ..BulkConfig::default()
                },
                "job_timeout",
            ),
            (
                BulkConfig {
                    max_records: Some(0),
                    ..BulkConfig::default()
                },
                "max_records",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert!(
                matches!(err, Error::Config { field: f, .. } if f == field),
                "{err}"
            );
            assert!(err.to_string().contains(field), "{err}");
        }
    }
}
