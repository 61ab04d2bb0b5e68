//! How jobs are polled, timed out, paged, retried and cleaned up.

use std::time::Duration;

use crate::error::Error;

/// When a new job is polled, as times since it was created.
///
/// A poll costs one API call; a job done and not yet seen costs the whole sync its time. So the
/// schedule keeps the time between a job's completion and its discovery within a fifth of the
/// job's age (and at most a second for a job younger than five seconds, at most `max_wait` for
/// a long one): the first poll comes soon after creation, for jobs Salesforce answers at once,
/// the second `min_wait` later, and each later one at `growth` times the time of the one
/// before, at least `min_wait` and at most `max_wait` after it. A job is therefore seen done at
/// most `max(min_wait, (growth - 1) × its age)` late, capped at `max_wait`, and costs polls in
/// proportion to the logarithm of its duration until the waits reach `max_wait`. A poll that
/// comes back late moves the later ones: waits count from its answer.
///
/// The defaults (0.1 s, 1.1 s, ×1.2, 1 s to 30 s) poll at 0.1, 1.1, 2.1, 3.1, 4.1, 5.1, 6.12,
/// 7.34, 8.81, 10.57, 12.69, ... s and every 30 s once a job is older than about 2.5 minutes: a
/// 2 s job costs 3 polls and is seen 0.1 s after it is done, a 12 s job 11 (seen at 12.69 s), a
/// minute 20, an hour 140. A fixed 5 s cadence (Airbyte's connector sleeps 5 s between its
/// rounds of polls) costs 1, 3, 12 and 720 and sees a 2 s job 3 s late; the schedule before
/// (0.1 s, 12.5 s, then by half the job's age) saw it 10.5 s late.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollSchedule {
    /// The first poll, this long after the job is created. Default 0.1 s.
    pub first: Duration,
    /// The second poll, this long after the job is created (at least `first`, and at least
    /// `min_wait` after it). Default 1.1 s.
    pub second: Duration,
    /// Each later poll comes at this many times the time of the one before (at least 1): a job
    /// is seen done at most `growth - 1` of its age late. Default 1.2 (a fifth).
    pub growth: f64,
    /// The shortest wait between two polls after the first (at most `max_wait`): how late a
    /// short job may be seen. Default 1 s.
    pub min_wait: Duration,
    /// The longest wait between two polls: long jobs are polled this often. Default 30 s.
    pub max_wait: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        PollSchedule {
            first: Duration::from_millis(100),
            second: Duration::from_millis(1_100),
            growth: 1.2,
            min_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(30),
        }
    }
}

impl PollSchedule {
    /// Polls every `interval`: at `interval`, twice it, three times it, and so on.
    pub fn every(interval: Duration) -> PollSchedule {
        PollSchedule {
            first: interval,
            second: interval.saturating_mul(2),
            growth: 1.0,
            min_wait: interval,
            max_wait: interval,
        }
    }

    /// The time (since the job was created) of poll number `poll` (0-based), given the time of
    /// the one before, or of its answer when that came later (`previous`; ignored for the first).
    pub fn next_poll_at(&self, poll: u32, previous: Duration) -> Duration {
        if poll == 0 {
            return self.first;
        }
        let target = if poll == 1 {
            self.second
        } else {
            // `growth` is checked to be finite and at least 1; the product is bounded below.
            Duration::try_from_secs_f64(previous.as_secs_f64() * self.growth)
                .unwrap_or(Duration::MAX)
        };
        let earliest = previous.saturating_add(self.min_wait.min(self.max_wait));
        let latest = previous.saturating_add(self.max_wait);
        target.max(earliest).min(latest)
    }

    /// The times of the first `polls` polls since the job was created.
    pub fn poll_times(&self, polls: usize) -> Vec<Duration> {
        let mut times = Vec::with_capacity(polls);
        let mut previous = Duration::ZERO;
        for poll in 0..polls {
            previous = self.next_poll_at(poll as u32, previous);
            times.push(previous);
        }
        times
    }

    /// Checks every field; the error ([`Error::Config`]) names the first one out of range.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: &str| Error::Config {
            field,
            reason: reason.to_string(),
        };
        if self.first.is_zero() {
            return Err(bad("poll.first", "must be more than zero"));
        }
        if self.second < self.first {
            return Err(bad("poll.second", "must be at least poll.first"));
        }
        if !self.growth.is_finite() || self.growth < 1.0 {
            return Err(bad(
                "poll.growth",
                "must be a finite number of at least 1 (1.5 polls when a job's age grows by half)",
            ));
        }
        if self.min_wait.is_zero() {
            return Err(bad("poll.min_wait", "must be more than zero"));
        }
        if self.max_wait < self.min_wait {
            return Err(bad("poll.max_wait", "must be at least poll.min_wait"));
        }
        Ok(())
    }
}

/// Bulk job policy. Defaults are in [`BulkConfig::default`], the one place they are set.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkConfig {
    /// When a new job is polled; see [`PollSchedule`].
    pub poll: PollSchedule,
    /// How long a job may stay queued or in progress before it is aborted
    /// (`PATCH {"state":"Aborted"}`) and the run fails with [`crate::ErrorKind::JobTimedOut`].
    /// Default 24 h, as Airbyte's connector (large objects legitimately take hours).
    pub job_timeout: Duration,
    /// `maxRecords` per results page; `None` lets Salesforce choose. Default 100,000: pages stay
    /// a few tens of MB, so a resumed download repeats little, while requests stay few.
    pub max_records: Option<u32>,
    /// How many times [`crate::BulkClient::query`] replaces a job that ended in `Failed` with a
    /// new one before giving up. The error then has the kind of the last job's message:
    /// [`crate::ErrorKind::QueryTimeout`] when it says the query ran too long or too large
    /// (read less at a time), else [`crate::ErrorKind::JobFailed`]. Default 1.
    pub failed_job_retries: u32,
    /// Delete each job once its results are read and verified (and failed, aborted or timed out
    /// jobs). A job whose download fails is kept for [`crate::BulkClient::resume`]; see
    /// [`crate::BulkClient::query`]. A failed delete is logged, never fatal: Salesforce removes
    /// jobs after 7 days anyway. Default true.
    pub delete_jobs: bool,
    /// Result pages downloaded at once, each on its own connection, when Salesforce lists them
    /// (`resultPages`, API 58.0+); 1 reads page by page with locators. On a real org one
    /// connection's download speed bounds a big object, not the CPU. Default 4.
    pub parallel_pages: usize,
    /// Bytes of result pages downloaded (gzip undone) and not yet decoded held at most, the
    /// page being emitted included (a quarter of them, at most 1 MiB, kept for it so it never
    /// waits on the pages ahead); a page finding its share spent stops reading its connection,
    /// so memory stays flat whatever the page size and however slow the reader. Default 1 MiB:
    /// measured on the emulated org (5,000,000 rows at 5 MB/s per connection), 0.5, 1, 2, 4 and
    /// 8 MiB read as fast (a page that stops reading leaves what the org sends meanwhile in the
    /// kernel's socket buffer, outside the process, gzip and all), and 1 MiB held 1 to 2 MiB less
    /// than 2 (BENCHMARKS.md, the tenth run).
    pub parallel_buffer_bytes: usize,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            poll: PollSchedule::default(),
            job_timeout: Duration::from_secs(24 * 60 * 60),
            max_records: Some(100_000),
            failed_job_retries: 1,
            delete_jobs: true,
            parallel_pages: 4,
            parallel_buffer_bytes: 1024 * 1024,
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
        self.poll.validate()?;
        if self.job_timeout.is_zero() {
            return Err(bad("job_timeout", "must be more than zero"));
        }
        if !(1..=16).contains(&self.parallel_pages) {
            return Err(bad("parallel_pages", "must be from 1 to 16"));
        }
        if self.parallel_buffer_bytes == 0 || self.parallel_buffer_bytes > u32::MAX as usize {
            return Err(bad(
                "parallel_buffer_bytes",
                "must be more than zero and at most 4 GiB",
            ));
        }
        if self.max_records == Some(0) {
            return Err(bad(
                "max_records",
                "must be more than zero (or unset to let Salesforce choose)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(times: &[Duration]) -> Vec<u64> {
        times.iter().map(|t| t.as_millis() as u64).collect()
    }

    /// The default schedule before issue 17: 0.1 s, 12.5 s, then by half the job's age, 5 to
    /// 30 s apart.
    fn former() -> PollSchedule {
        PollSchedule {
            first: Duration::from_millis(100),
            second: Duration::from_millis(12_500),
            growth: 1.5,
            min_wait: Duration::from_secs(5),
            max_wait: Duration::from_secs(30),
        }
    }

    /// The polls a job done `job` after creation costs on `schedule`, and when it is seen done.
    fn seen(schedule: &PollSchedule, job: Duration) -> (usize, Duration) {
        seen_in(&schedule.poll_times(1_000), job)
    }

    /// As [`seen`], given the schedule's poll times.
    fn seen_in(times: &[Duration], job: Duration) -> (usize, Duration) {
        let polls = 1 + times.partition_point(|t| *t < job);
        (polls, times[polls - 1])
    }

    #[test]
    fn the_default_schedule_polls_at_once_then_a_second_apart_then_by_a_fifth_of_its_age() {
        let times = PollSchedule::default().poll_times(14);
        assert_eq!(
            millis(&times),
            [
                100, 1_100, 2_100, 3_100, 4_100, 5_100, 6_120, 7_344, 8_812, 10_575, 12_690,
                15_228, 18_274, 21_929
            ]
        );
        let schedule = PollSchedule::default();
        let polls = |job_secs: u64| seen(&schedule, Duration::from_secs(job_secs)).0;
        assert_eq!(polls(0), 1);
        assert_eq!(polls(2), 3);
        assert_eq!(polls(12), 11);
        assert_eq!(polls(60), 20);
        assert_eq!(polls(300), 30);
        assert_eq!(polls(3_600), 140);
        // Waits stop growing at 30 s.
        let late = schedule.poll_times(200);
        assert_eq!(late[199] - late[198], Duration::from_secs(30));
    }

    #[test]
    fn a_job_is_seen_done_within_a_fifth_of_its_age_at_least_a_second_at_most_thirty() {
        let times = PollSchedule::default().poll_times(1_000);
        // Every job length from 10 ms to two hours, in steps of 10 ms.
        for step in 1..=720_000u64 {
            let job = Duration::from_millis(step * 10);
            let (_, at) = seen_in(&times, job);
            let bound = (job / 5).clamp(Duration::from_secs(1), Duration::from_secs(30));
            assert!(
                at >= job,
                "seen at {at:?} before the job was done at {job:?}"
            );
            assert!(
                at - job <= bound,
                "a {job:?} job seen at {at:?}, more than {bound:?} late"
            );
        }
        // A fixed 5 s cadence breaks the bound for short jobs; the former default (0.1 s,
        // 12.5 s, then by half the job's age, 5 to 30 s apart) broke it for every job between
        // 0.1 s and 12.5 s.
        let airbyte = PollSchedule::every(Duration::from_secs(5));
        assert_eq!(
            seen(&airbyte, Duration::from_secs(2)),
            (1, Duration::from_secs(5))
        );
        assert_eq!(
            seen(&former(), Duration::from_secs(2)),
            (2, Duration::from_millis(12_500))
        );
    }

    #[test]
    fn a_fixed_cadence_and_the_bounds_on_each_wait() {
        let every = PollSchedule::every(Duration::from_secs(5));
        assert_eq!(
            millis(&every.poll_times(4)),
            [5_000, 10_000, 15_000, 20_000]
        );
        // The wait never exceeds max_wait, even for the jump to the second poll; growth goes on from
        // where the poll came.
        let capped = PollSchedule {
            min_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(2),
            ..former()
        };
        assert_eq!(millis(&capped.poll_times(4)), [100, 2_100, 3_150, 4_725]);
        // Growth 1 never polls faster than min_wait, however close the times.
        let flat = PollSchedule {
            growth: 1.0,
            ..former()
        };
        assert_eq!(millis(&flat.poll_times(4)), [100, 12_500, 17_500, 22_500]);
        let close = PollSchedule {
            first: Duration::from_secs(1),
            second: Duration::from_secs(1),
            growth: 1.0,
            min_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(30),
        };
        assert_eq!(millis(&close.poll_times(3)), [1_000, 2_000, 3_000]);
        // A late answer moves the next poll: it counts from the answer.
        let schedule = former();
        assert_eq!(
            schedule.next_poll_at(1, Duration::from_secs(20)),
            Duration::from_secs(25)
        );
        assert_eq!(
            schedule.next_poll_at(3, Duration::from_secs(200)),
            Duration::from_secs(230)
        );
        // Huge times saturate rather than overflow.
        let huge = PollSchedule {
            growth: 1e300,
            max_wait: Duration::MAX,
            ..former()
        };
        assert_eq!(huge.poll_times(4)[3], Duration::MAX);
    }

    #[test]
    fn validation_names_the_field() {
        assert!(BulkConfig::default().validate().is_ok());
        let poll = |change: fn(&mut PollSchedule)| {
            let mut config = BulkConfig::default();
            change(&mut config.poll);
            config
        };
        let cases = [
            (poll(|p| p.first = Duration::ZERO), "poll.first"),
            (
                poll(|p| p.second = Duration::from_millis(50)),
                "poll.second",
            ),
            (poll(|p| p.growth = f64::NAN), "poll.growth"),
            (poll(|p| p.growth = 0.5), "poll.growth"),
            (poll(|p| p.min_wait = Duration::ZERO), "poll.min_wait"),
            (
                poll(|p| p.max_wait = Duration::from_millis(500)),
                "poll.max_wait",
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
