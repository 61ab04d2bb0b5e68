//! Continuing a Bulk job named in the state: the job is found (`GET jobs/query/{id}`, through
//! [`sf_bulk::BulkClient::resume`]), checked to be the same query, and read from the page after
//! the last one emitted; a job that is gone, failed, aborted or answers for another query is
//! replaced by a new one, and the log says why.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use sf_auth::lock;
use sf_bulk::{BulkClient, BulkItem, BulkStream, ErrorKind, Operation, ResumePoint};
use sf_discovery::FieldSpec;
use tokio_util::sync::CancellationToken;

use super::{ObjectRun, Runner, SpanQueue, Stop};
use crate::planner::{Api, ApiConstraint};
use crate::sink::LogLevel;
use crate::state::{query_hash, JobCheckpoint};
use crate::window::Window;

/// A job in flight, shared between the task preparing it and the stream: its resume point once
/// its id is known (the first page for a new job), and the rows of that page a stopped sync
/// already emitted and the `Id` of the last of them (a job continued from the input state).
pub(super) type JobSlot = Arc<Mutex<Option<(ResumePoint, u64, Option<String>)>>>;

/// The checkpoint of the job in `slot` for `window`, if its id is known.
pub(super) fn slot_checkpoint(
    window: Window,
    slot: &JobSlot,
    query: &str,
) -> Option<JobCheckpoint> {
    lock(slot)
        .as_ref()
        .map(|(point, page_rows_emitted, page_last_id)| {
            let mut job = checkpoint(window, point, query);
            job.page_rows_emitted = *page_rows_emitted;
            job.page_last_id = page_last_id.clone();
            job
        })
}

/// The checkpoint of a job reading `window`, continuing at `point`.
pub(super) fn checkpoint(window: Window, point: &ResumePoint, query: &str) -> JobCheckpoint {
    JobCheckpoint {
        start: window.start,
        end: window.end,
        job_id: point.job_id.clone(),
        locator: point.locator.clone(),
        rows_done: point.rows_done,
        page_rows_emitted: 0,
        page_last_id: None,
        query: query.to_string(),
    }
}

/// What identifies a job's query: see [`query_hash`].
pub(super) fn query_of(operation: Operation, soql: &str, api_version: &str) -> String {
    query_hash(operation.as_wire(), soql, api_version)
}

/// How continuing a job went.
pub(super) enum Continued {
    /// The job is complete and its results are read from the point: the stream yields records
    /// from there.
    Yes(BulkStream),
    /// The job cannot be continued (why, for the log): a new one is created.
    No(String),
    /// The daily API limit, or the sync stopped: the caller stops.
    Stop(Option<sf_bulk::Error>),
}

/// Continues the job of `saved`, which reads `object` with `operation`; `query` is what
/// identifies the query the window needs now.
pub(super) async fn continue_job(
    bulk: &BulkClient,
    saved: &JobCheckpoint,
    object: &str,
    operation: Operation,
    query: &str,
    fields: &[FieldSpec],
    stop: &CancellationToken,
) -> Continued {
    let id = &saved.job_id;
    if saved.query != query {
        return Continued::No(format!(
            "Bulk job {id} was created for another query (the selected fields, the API version \
             or the deleted-rows setting changed)"
        ));
    }
    let point = ResumePoint {
        job_id: id.clone(),
        locator: saved.locator.clone(),
        rows_done: saved.rows_done,
    };
    let mut stream = bulk.resume(point, fields);
    let first = tokio::select! {
        biased;
        _ = stop.cancelled() => return Continued::Stop(None),
        item = stream.next() => item,
    };
    match first {
        Some(Ok(BulkItem::JobCompleted(info))) => {
            let same_object = info
                .object
                .as_deref()
                .is_none_or(|o| o.eq_ignore_ascii_case(object));
            let same_operation = info.operation.is_none_or(|o| o == operation);
            if same_object && same_operation {
                Continued::Yes(stream)
            } else {
                Continued::No(format!(
                    "Bulk job {id} reads {} through {}, not {object} through {}",
                    info.object.as_deref().unwrap_or("?"),
                    info.operation.map_or("?", |o| o.as_wire()),
                    operation.as_wire()
                ))
            }
        }
        Some(Ok(other)) => Continued::No(format!(
            "Bulk job {id} answered {other:?} before completing"
        )),
        None => Continued::No(format!("Bulk job {id} answered nothing")),
        Some(Err(e)) if e.kind() == ErrorKind::DailyLimitExceeded => Continued::Stop(Some(e)),
        Some(Err(e)) => Continued::No(match e.kind() {
            ErrorKind::JobNotFound => format!(
                "Bulk job {id} is gone (deleted, or expired: Salesforce keeps jobs seven days): {e}"
            ),
            ErrorKind::JobFailed => format!("Bulk job {id} failed: {e}"),
            ErrorKind::JobAborted => format!("Bulk job {id} was aborted: {e}"),
            _ => format!("Bulk job {id} cannot be continued: {e}"),
        }),
    }
}

impl Runner {
    /// The WARN of a job that ended with rows still to skip: the state it was continued from
    /// said more rows of a page were emitted than the job holds (a state edited by hand, or
    /// written for another job), so rows may be missing.
    pub(super) async fn skipped_past_the_end(&self, skip: u64) {
        if skip == 0 {
            return;
        }
        self.log(
            LogLevel::Warn,
            format!(
                "{}: the Bulk job continued from the state ended {skip} row{} short of the rows \
                 the state said were already emitted (`page_rows_emitted`): the state does not \
                 match the job, so records of this window may be missing; run a full refresh of \
                 {} (reset the stream) to be sure",
                self.name,
                if skip == 1 { "" } else { "s" },
                self.name
            ),
        )
        .await;
    }

    /// Continues the Bulk jobs the state named, before the stream plans the rest (their windows
    /// are then read, so planning leaves them out). Through REST instead when the stream may no
    /// longer use Bulk, or when Bulk stops serving it on the way.
    pub(super) async fn continue_jobs(&mut self, run: &mut ObjectRun) -> Result<(), Stop> {
        let windows = run.progress.resumable_windows();
        if windows.is_empty() {
            return Ok(());
        }
        if run.state.is_none() || run.constraint == ApiConstraint::RestOnly {
            // Their windows are planned as any other; the jobs, which the state named, are not
            // left on the org.
            self.discard_resumable(run).await;
            return Ok(());
        }
        self.log(
            LogLevel::Info,
            format!(
                "{}: continuing {} Bulk job{} of the last sync first",
                self.name,
                windows.len(),
                if windows.len() == 1 { "" } else { "s" }
            ),
        )
        .await;
        self.api = Some(Api::Bulk);
        let mut queue = SpanQueue::new(windows.into_iter().map(Some));
        let Some(fallback) = self.bulk_spans(run, &mut queue).await? else {
            return Ok(());
        };
        if fallback.job_limit {
            self.shared.bulk_exhausted.store(true, Ordering::Relaxed);
        }
        self.log(
            LogLevel::Warn,
            format!(
                "{}: the Bulk API cannot serve this stream ({}); switching to REST for the rest \
                 of it",
                self.name, fallback.reason
            ),
        )
        .await;
        run.constraint = ApiConstraint::RestOnly;
        self.discard_resumable(run).await;
        self.api = Some(Api::Rest);
        self.rest_spans(run, &mut queue).await
    }
}

impl Runner {
    /// A continued job's page read again does not start with the rows emitted of it before
    /// (`skipped` of them, the last with another `Id`): said; the caller emits it whole from
    /// `point`, duplicates rather than a row skipped unseen.
    pub(super) async fn page_again(&mut self, point: &ResumePoint, skipped: u64) {
        self.log(
            LogLevel::Warn,
            format!(
                "{}: Bulk job {}: the {skipped} rows from its page at {} emitted before are \
                 not the first ones read again (a row was missing from it then): \
                 the page is emitted whole again, duplicates rather than a row skipped",
                self.name,
                point.job_id,
                point.locator.as_deref().unwrap_or("the first page"),
            ),
        )
        .await;
    }
}
