//! The query job lifecycle: create, poll until done, abort, delete.

use std::sync::Arc;
use std::time::Duration;

use sf_auth::{Method, Request, Session};
use sf_discovery::FieldSpec;
use tokio::time::Instant;

use crate::config::BulkConfig;
use crate::error::Error;
use crate::run::{BulkStream, ResumePoint, Run};
use crate::wire::{self, JobInfoWire};

/// Which records a job reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `query`: live records only.
    Query,
    /// `queryAll`: deleted (recycle bin) and archived records too, with `IsDeleted`.
    QueryAll,
}

impl Operation {
    /// The name the API uses.
    pub fn as_wire(self) -> &'static str {
        match self {
            Operation::Query => "query",
            Operation::QueryAll => "queryAll",
        }
    }

    pub(crate) fn from_wire(name: &str) -> Option<Operation> {
        match name {
            "query" => Some(Operation::Query),
            "queryAll" => Some(Operation::QueryAll),
            _ => None,
        }
    }
}

/// A job's state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Queued (also seen again after `InProgress`).
    UploadComplete,
    /// Running.
    InProgress,
    /// Done: results can be read.
    JobComplete,
    /// Failed: see [`JobInfo::error_message`].
    Failed,
    /// Aborted.
    Aborted,
    /// A state this crate does not know, as sent.
    Unknown(String),
}

impl JobState {
    pub(crate) fn from_wire(state: &str) -> JobState {
        match state {
            "UploadComplete" => JobState::UploadComplete,
            "InProgress" => JobState::InProgress,
            "JobComplete" => JobState::JobComplete,
            "Failed" => JobState::Failed,
            "Aborted" => JobState::Aborted,
            other => JobState::Unknown(other.to_string()),
        }
    }

    /// True for `JobComplete`, `Failed` and `Aborted`.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::JobComplete | JobState::Failed | JobState::Aborted
        )
    }
}

/// What Salesforce says about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// The job id (`750...`).
    pub id: String,
    /// Its state.
    pub state: JobState,
    /// `query` or `queryAll`, when reported.
    pub operation: Option<Operation>,
    /// The object queried, when reported.
    pub object: Option<String>,
    /// `numberRecordsProcessed`: the number of result rows once the job is complete.
    pub records_processed: Option<u64>,
    /// `errorMessage` of a failed job.
    pub error_message: Option<String>,
    /// `retries`: Salesforce's internal retries of the job.
    pub retries: Option<u64>,
    /// `totalProcessingTime`, in milliseconds.
    pub total_processing_time_ms: Option<u64>,
}

pub(crate) struct Inner {
    pub(crate) session: Session,
    pub(crate) config: BulkConfig,
}

/// Runs Bulk API 2.0 query jobs through an [`sf_auth::Session`]. Cloning is cheap.
///
/// [`BulkClient::query`] runs one query end to end as a stream; the other methods are the
/// pieces it is made of, for callers that manage jobs themselves.
#[derive(Clone)]
pub struct BulkClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for BulkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Refuses ids that are not plain Salesforce ids, so a resumed id cannot steer a request path.
pub(crate) fn check_job_id(job_id: &str) -> Result<(), Error> {
    let ok = !job_id.is_empty()
        && job_id.len() <= 40
        && job_id.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidJobId {
            job_id: job_id.chars().take(60).collect(),
        })
    }
}

impl BulkClient {
    /// A client sending its requests through `session`; the config is validated.
    pub fn new(session: Session, config: BulkConfig) -> Result<BulkClient, Error> {
        config.validate()?;
        Ok(BulkClient {
            inner: Arc::new(Inner { session, config }),
        })
    }

    /// The config in force.
    pub fn config(&self) -> &BulkConfig {
        &self.inner.config
    }

    /// The session requests go through.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// Runs `soql` as one job, end to end: create, poll until complete (replacing a `Failed` job
    /// up to [`BulkConfig::failed_job_retries`] times), stream every results page as typed
    /// records, verify the counts, delete the job.
    ///
    /// `fields` are the selected columns, in SELECT order; they name the records' columns and
    /// type their values. The stream ends after the first error. Records of a page are final
    /// once its [`crate::BulkItem::PageDone`] arrives: after a failure, resume from the last
    /// one with [`BulkClient::resume`].
    ///
    /// Counts: each page's rows are checked against its `Sforce-NumberOfRecords` header, and all
    /// rows against the job's `numberRecordsProcessed`; a mismatch is
    /// [`crate::Error::ResultsPageCount`] or [`crate::Error::ResultsTotalCount`]
    /// ([`crate::ErrorKind::ResultsIncomplete`]). Salesforce always sends both; when one is
    /// missing (a proxy that drops headers) there is nothing to check against, so the run logs a
    /// warning (`BulkResultsCountMissing`, once per run, and `BulkJobTotalMissing`) and reads on;
    /// a page cut inside a quoted value is still refused by the decoder.
    ///
    /// Jobs left behind: with [`BulkConfig::delete_jobs`], a job is deleted once its results are
    /// read whole and verified, and when it ends `Failed`, `Aborted` or timed out. A run that
    /// fails while reading the results (a page cut short or miscounted, a job total that does
    /// not match, a transport or decode failure) keeps the job, so the download can be resumed
    /// with [`BulkClient::resume`] from the last checkpoint; [`crate::Error::job_id`] names it.
    /// A caller that gives up deletes it with [`BulkClient::delete`] (Salesforce removes jobs
    /// after 7 days otherwise).
    ///
    /// Dropping the stream does not stop the job on Salesforce's side: call
    /// [`BulkClient::abort`] with the id from [`crate::BulkItem::JobCreated`] for that.
    pub fn query(
        &self,
        operation: Operation,
        soql: impl Into<String>,
        fields: &[FieldSpec],
    ) -> BulkStream {
        Run::new_query(self.clone(), operation, soql.into(), fields).into_stream()
    }

    /// Re-attaches to an existing job and streams its results from a resume point: waits for
    /// the job if it is still running, then reads from `from.locator` on (the first page when
    /// `None`), verifies counts (the job total counting `from.rows_done`), and deletes the job.
    pub fn resume(&self, from: ResumePoint, fields: &[FieldSpec]) -> BulkStream {
        Run::new_resume(self.clone(), from, fields).into_stream()
    }

    /// `POST jobs/query`: creates a job (CSV, comma, LF). Creation is not idempotent, so a
    /// request lost in transit (a timeout, a connection reset once sent) is not sent again. An
    /// answer Salesforce classes as passing (a 5xx, 408, 420 or 429, a concurrent-request limit)
    /// is retried by the session, as for every request: after a 500, 502 or 504 the job may
    /// exist already, and then runs unseen by this client (it counts against the day's Bulk
    /// jobs, and Salesforce deletes it with its results when they expire, 7 days on). Failing
    /// the sync for a gateway's answer would cost more than that job.
    pub async fn create_job(&self, operation: Operation, soql: &str) -> Result<JobInfo, Error> {
        let body = wire::create_body(operation, soql);
        let request = Request::json(Method::Post, "jobs/query", &body);
        let info = self
            .job_request(request, |source| Error::JobCreate {
                source: Box::new(source),
            })
            .await?;
        check_job_id(&info.id)?;
        tracing::info!(job_id = %info.id, operation = operation.as_wire(), object = ?info.object, "BulkJobCreated");
        Ok(info)
    }

    /// `GET jobs/query/{id}`: the job's current info.
    pub async fn job_info(&self, job_id: &str) -> Result<JobInfo, Error> {
        check_job_id(job_id)?;
        let poll_error = |source| Error::JobPoll {
            job_id: job_id.to_string(),
            source: Box::new(source),
        };
        let info = self
            .job_request(Request::get(format!("jobs/query/{job_id}")), poll_error)
            .await?;
        tracing::debug!(job_id, state = ?info.state, records = ?info.records_processed, "BulkJobPolled");
        Ok(info)
    }

    /// Polls the job until it is complete: at once, then at the times of [`BulkConfig::poll`]
    /// from its second on (1.1 s, 2.1 s, ... by default), counted from this call. `Failed`,
    /// `Aborted` and unknown states are errors; after [`BulkConfig::job_timeout`] the job is aborted and the error is
    /// [`crate::ErrorKind::JobTimedOut`].
    pub async fn wait_for_completion(&self, job_id: &str) -> Result<JobInfo, Error> {
        self.wait(job_id, false).await
    }

    pub(crate) async fn wait(&self, job_id: &str, delay_first: bool) -> Result<JobInfo, Error> {
        check_job_id(job_id)?;
        let config = &self.inner.config;
        let timeout = config.job_timeout;
        // Times are durations since `started` (no `Instant` arithmetic that could overflow).
        let started = Instant::now();
        // The schedule's poll 0 is either waited for here or is the poll made at once; `poll`
        // is the index of the poll being made (so also the count of polls made once it answers),
        // `at` the time of the last one.
        let mut at = Duration::ZERO;
        if delay_first {
            at = config.poll.next_poll_at(0, at);
            tokio::time::sleep(at.min(timeout)).await;
        }
        let mut poll = 1u32;
        loop {
            let info = self.job_info(job_id).await?;
            match &info.state {
                JobState::JobComplete => {
                    tracing::info!(job_id, records = ?info.records_processed, polls = poll, "BulkJobCompleted");
                    return Ok(info);
                }
                JobState::Failed => {
                    let error_message = info.error_message.unwrap_or_default();
                    tracing::warn!(job_id, error_message = %error_message, "BulkJobFailed");
                    return Err(Error::JobFailed {
                        job_id: job_id.to_string(),
                        error_message,
                    });
                }
                JobState::Aborted => {
                    return Err(Error::JobAborted {
                        job_id: job_id.to_string(),
                    })
                }
                JobState::Unknown(state) => {
                    // The wait ends here, so the job is not left running for no one.
                    tracing::warn!(job_id, state = %state, "BulkJobStateUnknown");
                    if let Err(e) = self.abort(job_id).await {
                        tracing::warn!(job_id, error = %e, "BulkJobAbortFailed");
                    }
                    return Err(Error::JobState {
                        job_id: job_id.to_string(),
                        state: state.clone(),
                    });
                }
                JobState::UploadComplete | JobState::InProgress => {}
            }
            let elapsed = started.elapsed();
            if elapsed >= timeout {
                tracing::warn!(job_id, timeout_secs = timeout.as_secs(), "BulkJobTimedOut");
                if let Err(e) = self.abort(job_id).await {
                    tracing::warn!(job_id, error = %e, "BulkJobAbortFailed");
                }
                return Err(Error::JobTimedOut {
                    job_id: job_id.to_string(),
                    timeout_secs: timeout.as_secs(),
                });
            }
            // A poll answered late (a slow request, retries) moves the schedule: the next wait
            // counts from its answer, so late polls never fire back to back.
            let next = config.poll.next_poll_at(poll, at.max(elapsed));
            poll = poll.saturating_add(1);
            at = next;
            let wait = next.saturating_sub(elapsed).min(timeout - elapsed);
            tokio::time::sleep(wait).await;
        }
    }

    /// `PATCH jobs/query/{id}` `{"state":"Aborted"}`: stops a queued or running job (to cancel a
    /// run, or one left behind by a crash). Aborting a finished job is refused by Salesforce.
    pub async fn abort(&self, job_id: &str) -> Result<JobInfo, Error> {
        check_job_id(job_id)?;
        let abort_error = |source| Error::JobAbort {
            job_id: job_id.to_string(),
            source: Box::new(source),
        };
        // A stop at the API budget aborts and deletes the jobs it leaves: past the budget.
        let request = Request::json(
            Method::Patch,
            format!("jobs/query/{job_id}"),
            &wire::abort_body(),
        )
        .past_budget();
        let info = self.job_request(request, abort_error).await?;
        tracing::info!(job_id, "BulkJobAborted");
        Ok(info)
    }

    /// Sends `request` and reads the job's info from the answer; a failure of either is
    /// `error(source)`.
    async fn job_request(
        &self,
        request: Request,
        error: impl Fn(sf_auth::Error) -> Error,
    ) -> Result<JobInfo, Error> {
        let answer = self.inner.session.fetch(request).await.map_err(&error)?;
        Ok(answer.json::<JobInfoWire>().map_err(&error)?.into_domain())
    }

    /// `DELETE jobs/query/{id}` (204): removes a finished job and its results.
    pub async fn delete(&self, job_id: &str) -> Result<(), Error> {
        check_job_id(job_id)?;
        self.inner
            .session
            .send(Request::delete(format!("jobs/query/{job_id}")).past_budget())
            .await
            .map_err(|source| Error::JobDelete {
                job_id: job_id.to_string(),
                source: Box::new(source),
            })?;
        tracing::info!(job_id, "BulkJobDeleted");
        Ok(())
    }

    /// Deletes the job if the config says so; a failure is logged, not returned. Returns whether
    /// the job is gone.
    pub(crate) async fn delete_best_effort(&self, job_id: &str) -> bool {
        if !self.inner.config.delete_jobs {
            return false;
        }
        match self.delete(job_id).await {
            Ok(()) => true,
            Err(e) if e.kind() == crate::ErrorKind::JobNotFound => true,
            Err(e) => {
                tracing::warn!(job_id, error = %e, "BulkJobDeleteFailed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_checked() {
        assert!(check_job_id("750R0000000zlh9IAA").is_ok());
        for bad in ["", "750/../x", "750?locator=1", "7 50", &"7".repeat(41)] {
            let err = check_job_id(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidConfig, "{bad}");
        }
    }

    #[test]
    fn states() {
        assert_eq!(JobState::from_wire("InProgress"), JobState::InProgress);
        assert_eq!(
            JobState::from_wire("Paused"),
            JobState::Unknown("Paused".to_string())
        );
        assert!(JobState::Aborted.is_terminal());
        assert!(!JobState::UploadComplete.is_terminal());
        assert_eq!(Operation::from_wire("queryAll"), Some(Operation::QueryAll));
        assert_eq!(Operation::QueryAll.as_wire(), "queryAll");
    }
}
