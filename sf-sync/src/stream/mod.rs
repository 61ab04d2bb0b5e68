//! One stream's task: plan its reads, run them through REST or Bulk window by window, and send
//! records, state, logs and statuses, in order, to the sink's channel.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::{FutureExt, Stream, StreamExt};
use serde_json::Value;
use sf_auth::{lock, Session};
use sf_bulk::{BulkClient, BulkConfig};
use sf_discovery::Record;
use sf_rest::{RestConfig, RestReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::drift::Drift;
use crate::error::{Error, Failure};
use crate::options::ReadOptions;
use crate::planner::Api;
use crate::sink::{IncompleteReason, LogLevel, StreamStatus, StreamSummary};
use crate::state::full_refresh_state;
use crate::window::{Window, WindowParams};

mod bulk;
mod bulk_cleanup;
mod bulk_resume;
mod checkpoint;
mod deletes;
pub(crate) mod deletes_ahead;
mod formulas;
mod gate;
mod job;
mod object;
mod plan;
mod queue;
pub(crate) mod recycle;
mod rest;
mod substream;

use object::ObjectRun;
use queue::SpanQueue;

pub(crate) use job::{Job, Mode, StreamSetup};
pub use substream::SLICE_BATCH_SIZE;
pub(crate) use substream::{parent_filter, ParentFilter};

/// The record width a batch of [`Shared::batch_max`] records is sized for: a batch of wider
/// records is cut at `batch_max × BATCH_WIDTH` cells.
pub(crate) const BATCH_WIDTH: usize = 32;

/// Whether a batch of `len` records of `width` values is full: at `batch_max` records, or at
/// `batch_max × BATCH_WIDTH` values (records of a stream have one width, so wide records make
/// smaller batches and the channel holds about as many values whatever the width).
fn batch_full(len: usize, width: usize, batch_max: usize) -> bool {
    len >= batch_max || len.saturating_mul(width) >= batch_max.saturating_mul(BATCH_WIDTH)
}

/// What a stream task sends to the sink's consumer. Per stream, messages keep their order.
#[derive(Debug)]
pub(crate) enum Msg {
    /// Records of stream `.0`, in order: a batch of at most [`Shared::batch_max`] (fewer when
    /// records are wider than [`BATCH_WIDTH`]), sent when it is full, when the source has
    /// nothing more ready, or before the stream's next other message.
    Records(usize, Vec<Record>),
    /// The state of stream `.0`.
    State(usize, Value),
    /// A log line.
    Log(LogLevel, String),
    /// A status of stream `.0`.
    Status(usize, StreamStatus),
    /// How stream `.0` is read: its API and counted volume.
    Plan(usize, crate::sink::StreamPlan),
}

/// What every stream task shares.
pub(crate) struct Shared {
    rest: RestReader,
    bulk: BulkClient,
    session: Session,
    options: ReadOptions,
    params: WindowParams,
    tx: mpsc::Sender<Msg>,
    /// Records per [`Msg::Records`] batch (at least 1).
    batch_max: usize,
    cancel: CancellationToken,
    /// The first daily-limit stop seen: once set, no stream starts new work.
    limit: Mutex<Option<String>>,
    /// Set when the org's daily Bulk job allowance is used up: streams read through REST then.
    bulk_exhausted: AtomicBool,
    /// `formula_refresh` (`formulas.rs`).
    formula_refresh: Option<crate::IsoDuration>,
    /// `hard_deletes` (`deletes.rs`), and getDeleted asked ahead for many streams at once.
    hard_deletes: bool,
    deletes_ahead: Arc<deletes_ahead::DeletesAhead>,
    /// Per stream, how many of its states the sink has taken (the consumer counts them): a
    /// Bulk job is named once a state naming it was taken, not merely sent.
    delivered: Arc<Vec<tokio::sync::watch::Sender<u64>>>,
    /// Per stream, the batches the sink has written, to free on the stream's task.
    returns: Arc<recycle::Returns>,
}

impl Shared {
    pub(crate) fn new(
        session: Session,
        options: ReadOptions,
        params: WindowParams,
        tx: mpsc::Sender<Msg>,
        batch_max: usize,
        cancel: CancellationToken,
        limit: Option<String>,
    ) -> Result<Shared, Error> {
        // The options were validated; these errors cannot happen, but are reported if they do.
        let rest = RestReader::new(
            session.clone(),
            RestConfig {
                batch_size: options.rest_batch_size,
                ..RestConfig::default()
            },
        )
        .map_err(|e| match e {
            sf_rest::Error::Config {
                field: "batch_size",
                ..
            } => setup_error(Some("rest_batch_size".to_string()), e.to_string()),
            e => setup_error(None, e.to_string()),
        })?;
        let bulk = BulkClient::new(
            session.clone(),
            BulkConfig {
                poll: options.bulk_poll,
                max_records: options.bulk_max_records,
                parallel_pages: options.bulk_parallel_pages,
                parallel_buffer_bytes: options.bulk_buffer_bytes,
                ..BulkConfig::default()
            },
        )
        .map_err(|e| {
            let key = match &e {
                // `poll.first`, ...: named as `ReadOptions::validate` names them.
                sf_bulk::Error::Config { field, .. } if field.starts_with("poll.") => {
                    Some(format!("bulk_{field}"))
                }
                sf_bulk::Error::Config {
                    field: "max_records",
                    ..
                } => Some("bulk_max_records".to_string()),
                _ => None,
            };
            setup_error(key, e.to_string())
        })?;
        Ok(Shared {
            rest,
            bulk,
            session,
            options,
            params,
            tx,
            batch_max: batch_max.max(1),
            cancel,
            limit: Mutex::new(limit),
            bulk_exhausted: AtomicBool::new(false),
            formula_refresh: None,
            hard_deletes: true,
            deletes_ahead: Arc::default(),
            delivered: Arc::new(Vec::new()),
            returns: Arc::default(),
        })
    }

    /// The same, told by `delivered` how many states of each stream (by index) the sink took.
    pub(crate) fn with_delivery(
        mut self,
        delivered: Arc<Vec<tokio::sync::watch::Sender<u64>>>,
    ) -> Shared {
        self.delivered = delivered;
        self
    }

    /// The same, given back the batches the sink has written through `returns`
    /// (`recycle.rs`), to free them on each stream's own task.
    pub(crate) fn with_returns(mut self, returns: Arc<recycle::Returns>) -> Shared {
        self.returns = returns;
        self
    }

    /// The same, reading streams with formula fields whole again once their last whole read is
    /// older than `every` (`formula_refresh`), and asking for hard deletes or not.
    pub(crate) fn with_freshness(
        mut self,
        every: Option<crate::IsoDuration>,
        hard_deletes: bool,
    ) -> Shared {
        self.formula_refresh = every;
        self.hard_deletes = hard_deletes;
        self
    }

    fn limit(&self) -> Option<String> {
        lock(&self.limit).clone()
    }

    /// Records a daily-limit stop (the first one stops every stream) and returns its detail:
    /// the error, and the org's usage unless the error says it already (the API budget's does).
    fn hit_limit<E: std::error::Error + 'static>(&self, err: &E) -> String {
        let message = err.to_string();
        let detail = match self.session.api_usage() {
            Some(u) if !budget_spent(err) => format!("{message}; api-usage {}/{}", u.used, u.max),
            _ => message,
        };
        lock(&self.limit).get_or_insert_with(|| detail.clone());
        detail
    }
}

/// True when `err` comes from the sync's API budget (`api_budget`) rather than the org's limit.
fn budget_spent(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(err);
    while let Some(e) = at {
        let auth = e
            .downcast_ref::<sf_auth::Error>()
            .or_else(|| e.downcast_ref::<Box<sf_auth::Error>>().map(|b| &**b));
        if matches!(auth, Some(sf_auth::Error::BudgetExhausted { .. })) {
            return true;
        }
        at = e.source();
    }
    false
}

/// A client that refused the engine's options: under the option's name (`key`), or, when the
/// refused setting is not one of [`ReadOptions`], as the client's own message.
fn setup_error(key: Option<String>, message: String) -> Error {
    match key {
        Some(key) => Error::ConfigInvalid {
            problems: vec![crate::error::ConfigProblem {
                key,
                given: None,
                expected: message,
            }],
        },
        None => Error::ConfigParse { reason: message },
    }
}

/// How a stream task ended.
pub(crate) struct Outcome {
    /// For the sync summary.
    pub(crate) summary: StreamSummary,
    /// The failure, if it failed.
    pub(crate) error: Option<Error>,
}

/// Why a stream stopped before its end.
enum Stop {
    /// The daily API limit or the budget.
    Limit(String),
    /// Cancelled, or the sink's consumer is gone.
    Cancelled,
    /// A failure.
    Failed(Error),
}

/// A span to read: a window, or the whole object (`None`).
type Span = Option<Window>;

/// The smallest window as the user reads it (`1 s`, `10 min`).
fn describe_min(min: std::time::Duration) -> String {
    match min.as_secs().max(1) {
        s if s % 3600 == 0 && s > 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn describe_span(span: &Span) -> Option<String> {
    span.map(|w| w.to_string())
}

/// Runs one stream's job to its end and reports how it went.
pub(crate) async fn run_stream(
    shared: Arc<Shared>,
    idx: usize,
    name: Arc<str>,
    job: Job,
) -> Outcome {
    let sync_mode = job.sync_mode();
    let taken = shared
        .delivered
        .get(idx)
        .map(tokio::sync::watch::Sender::subscribe);
    let mut runner = Runner {
        shared,
        idx,
        name,
        api: None,
        records: 0,
        windows: 0,
        jobs: Arc::new(Mutex::new(HashSet::new())),
        batch: Mutex::new(Vec::new()),
        unstated: AtomicBool::new(false),
        drift: Drift::default(),
        tombstones: deletes::Tombstones::default(),
        job_gate: Arc::new(gate::JobGate::new(taken)),
        states_sent: AtomicU64::new(0),
    };
    // A refused send means the consumer stopped; the task ends quietly then.
    let _ = runner.send(Msg::Status(idx, StreamStatus::Started)).await;
    let (result, mut object) = match job {
        Job::Describe { records } => (runner.describe(records).await, None),
        Job::Failed { error, .. } => (Err(Stop::Failed(error)), None),
        Job::Limited { detail, .. } => (Err(Stop::Limit(detail)), None),
        Job::Object(mut setup) => {
            runner.drift = std::mem::take(&mut setup.drift);
            let mut object = ObjectRun::new(*setup);
            let result = runner.object(&mut object).await;
            (result, Some(object))
        }
    };
    // A stream stopped early ends with a state after its last record (see `checkpoint`).
    if let (Err(stop @ (Stop::Limit(_) | Stop::Cancelled)), Some(run)) = (&result, object.as_mut())
    {
        runner
            .stop_checkpoint(run, matches!(stop, Stop::Limit(_)))
            .await;
    }
    let (status, error) = match result {
        Ok(()) => (StreamStatus::Complete, None),
        Err(Stop::Limit(detail)) => {
            // The stream whose request met the limit says so; the others, stopped or never
            // started because of it, are named together in one WARN (`engine/stopped.rs`).
            if !detail.starts_with(crate::sink::LIMIT_MET_FIRST) {
                let next = match object.as_ref().map(|o| &o.setup.mode) {
                    Some(Mode::Incremental { .. }) => {
                        "the state reached is emitted and the next sync resumes from it"
                    }
                    _ => "the next sync reads it whole again",
                };
                let name = &runner.name;
                runner
                    .log(
                        LogLevel::Warn,
                        format!("{name}: stopped at the API limit ({detail}); {next}"),
                    )
                    .await;
            }
            (
                StreamStatus::Incomplete(IncompleteReason::ApiLimit { detail }),
                None,
            )
        }
        Err(Stop::Cancelled) => (StreamStatus::Incomplete(IncompleteReason::Cancelled), None),
        // Not logged here: the status carries the error, and a sink says it once (the CLI's
        // ERROR line and TRACE error); logging it too said it twice.
        Err(Stop::Failed(error)) => (
            StreamStatus::Incomplete(IncompleteReason::Failed {
                message: error.to_string(),
                failure: error.failure(),
            }),
            Some(error),
        ),
    };
    for report in runner.drift.reports(&runner.name) {
        runner.log(LogLevel::Warn, report).await;
    }
    let _ = runner.send(Msg::Status(idx, status.clone())).await;
    Outcome {
        summary: StreamSummary {
            stream: runner.name.to_string(),
            sync_mode,
            api: runner.api,
            records: runner.records,
            windows: runner.windows,
            status,
            failure: error.as_ref().map(Error::failure),
        },
        error,
    }
}

/// How a span's read ended, short of success.
enum SpanError {
    /// The query timed out or the job failed for its size: read the span in halves.
    Split(String),
    /// Bulk cannot serve the stream: read it through REST from this span on.
    Fallback(Fallback),
    /// Salesforce refused an unfiltered REST query of a Knowledge article version (its
    /// message): read the span again by `PublishStatus` (`rest.rs`).
    ByStatus(String),
    /// Stop the stream.
    Stop(Stop),
}

/// Why a stream leaves the Bulk API for REST.
struct Fallback {
    /// What the Bulk API answered.
    reason: String,
    /// The org's daily Bulk query job limit is reached (every later stream reads through REST).
    job_limit: bool,
}

impl Fallback {
    fn unsupported(reason: String) -> SpanError {
        SpanError::Fallback(Fallback {
            reason,
            job_limit: false,
        })
    }
}

impl From<Stop> for SpanError {
    fn from(stop: Stop) -> SpanError {
        SpanError::Stop(stop)
    }
}

struct Runner {
    shared: Arc<Shared>,
    idx: usize,
    name: Arc<str>,
    api: Option<Api>,
    records: u64,
    windows: u64,
    /// Bulk jobs this stream created that may still be running.
    jobs: Arc<Mutex<HashSet<String>>>,
    /// Records read and not sent yet: sent as one message once full, once the source has
    /// nothing ready, and before any other message of the stream (so order holds).
    batch: Mutex<Vec<Record>>,
    /// Records were emitted since the stream's last state.
    unstated: AtomicBool,
    /// Fields whose type changed since discovery, converted to the catalog's types.
    drift: Drift,
    /// Records purged or hard-deleted, to emit as tombstones with their windows.
    tombstones: deletes::Tombstones,
    /// The Bulk jobs created and not ended, and the state that named each (see `gate::JobGate`).
    job_gate: Arc<gate::JobGate>,
    /// States this stream sent so far.
    states_sent: AtomicU64,
}

impl Runner {
    /// Sends `msg` after the records before it.
    async fn send(&self, msg: Msg) -> Result<(), Stop> {
        self.flush().await?;
        let state = matches!(msg, Msg::State(..));
        self.shared
            .tx
            .send(msg)
            .await
            .map_err(|_| Stop::Cancelled)?;
        if state {
            self.unstated.store(false, Ordering::Relaxed);
            self.states_sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Sends the records waiting in the batch, if any.
    async fn flush(&self) -> Result<(), Stop> {
        if !self.has_pending() {
            return Ok(());
        }
        // Batches the sink has written are freed here, where their records were made, and one
        // of their buffers takes the next records.
        let spare = self.shared.returns.take(self.idx).unwrap_or_default();
        let batch = std::mem::replace(&mut *lock(&self.batch), spare);
        self.shared
            .tx
            .send(Msg::Records(self.idx, batch))
            .await
            .map_err(|_| Stop::Cancelled)
    }

    fn has_pending(&self) -> bool {
        !lock(&self.batch).is_empty()
    }

    /// The next item of a record source. An item already ready is taken without sending the
    /// batch; when the source would wait, the batch goes to the sink first, so records never sit
    /// in the batch while the stream waits for the network. Stops when cancelled.
    async fn next_from<S: Stream + Unpin>(&self, source: &mut S) -> Result<Option<S::Item>, Stop> {
        if self.has_pending() {
            if self.shared.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            if let Some(item) = source.next().now_or_never() {
                return Ok(item);
            }
            self.flush().await?;
        }
        tokio::select! {
            biased;
            _ = self.shared.cancel.cancelled() => Err(Stop::Cancelled),
            item = source.next() => Ok(item),
        }
    }

    async fn log(&self, level: LogLevel, message: String) {
        let _ = self.send(Msg::Log(level, message)).await;
    }

    /// Fails when no new work may start: cancelled, or the daily limit was reached.
    fn may_continue(&self) -> Result<(), Stop> {
        if self.shared.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        // The sync's first request to meet the limit, which may be another stream's: said as
        // such (a request of this stream that meets it says so by its own error).
        match self.shared.limit() {
            Some(detail) => Err(Stop::Limit(format!(
                "{}{detail}",
                crate::sink::LIMIT_MET_FIRST
            ))),
            None => Ok(()),
        }
    }

    async fn record(&mut self, mut record: Record) -> Result<(), Stop> {
        self.drift.apply(&mut record);
        if !self.tombstones.is_empty() {
            self.tombstones.seen(&record);
        }
        self.records += 1;
        self.unstated.store(true, Ordering::Relaxed);
        let full = {
            let width = record.values.len();
            let mut batch = lock(&self.batch);
            batch.push(record);
            batch_full(batch.len(), width, self.shared.batch_max)
        };
        if full {
            self.flush().await?;
        }
        Ok(())
    }

    /// Counts one more attempt in `made` if fewer than `resume_attempts` were made; false when
    /// they are used up.
    fn may_retry(&self, made: &mut u32) -> bool {
        let more = *made < self.shared.options.resume_attempts;
        if more {
            *made += 1;
        }
        more
    }

    /// Emits the `Describe` stream's records, already read (so even past the API limit).
    async fn describe(
        &mut self,
        describes: Vec<Box<serde_json::value::RawValue>>,
    ) -> Result<(), Stop> {
        if self.shared.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        for raw in describes {
            // A describe is a JSON object (it decoded into a stream): one that is not is left
            // out, as before it was held.
            if let Some(record) = crate::engine::describe_record(&raw) {
                drop(raw);
                self.record(record).await?;
            }
        }
        self.windows = 1;
        self.send(Msg::State(self.idx, full_refresh_state())).await
    }

    /// A span was read completely: record it in the state and emit the state.
    async fn span_done(
        &mut self,
        run: &mut ObjectRun,
        span: &Span,
        most_recent: Option<DateTime<Utc>>,
    ) -> Result<(), Stop> {
        self.windows += 1;
        // Deletions in the window (or before it) go out before the state that covers them,
        // once 200 are due (the check by `Id` takes 200 a call); the state holds the rest back
        // (`deletes_unknown_from`) until a later window or the stream's end.
        self.emit_tombstones(span.map(|w| w.end), true).await?;
        if let (Some(window), Some(state)) = (span, run.state.as_mut()) {
            state.add(window.to_slice(most_recent));
            // A refresh under way has read everything before this window's end when the window
            // starts where it had reached (its windows come in cursor order), whichever path
            // read it: a Bulk job of the refresh continued from the state is read before this
            // sync decides on the refresh. (A sync with no refresh drops the progress: `plan`.)
            if let Some(mut progress) = state
                .refresh_progress()
                .filter(|p| window.start <= p.reached)
            {
                progress.reached = progress.reached.max(window.end);
                state.set_refresh_progress(Some(progress));
            }
            self.tombstones.note_in(state);
            let json = state.to_json();
            self.send(Msg::State(self.idx, json)).await?;
        }
        Ok(())
    }

    /// A span read whole whose REST pages carried fewer rows than Salesforce counted: the
    /// state goes back to the slices it had before the span (`before`), dropping what the
    /// span's page checkpoints added, and is emitted, so the next sync reads the span again (a state may cover less than the one before it; the
    /// next sync reads what the last one leaves out).
    async fn span_held_back(
        &mut self,
        run: &mut ObjectRun,
        before: Option<Vec<crate::state::StateSlice>>,
    ) -> Result<(), Stop> {
        self.windows += 1;
        if let (Some(before), Some(state)) = (before, run.state.as_mut()) {
            // Sent even when unchanged: the span's records are followed by a state.
            state.set_slices(before);
            self.tombstones.note_in(state);
            let json = state.to_json();
            self.send(Msg::State(self.idx, json)).await?;
        }
        Ok(())
    }

    /// Splits a span that timed out (or whose Bulk job failed for its size) in halves and logs
    /// it, or fails the stream when the span cannot be narrowed further.
    async fn split(&self, api: Api, span: &Span, message: &str) -> Result<(Window, Window), Stop> {
        let min = self.shared.options.planner.min_window;
        let Some((a, b)) = span.and_then(|w| w.split(min)) else {
            return Err(Stop::Failed(self.read_error(
                api,
                describe_span(span),
                None,
                format!(
                    "{message}, {}: deselect the fields the stream does not need (formula fields \
                     cost Salesforce most), ask Salesforce support for a custom index on its \
                     cursor, or remove the stream from the catalog",
                    match span {
                        Some(_) => format!(
                            "even in a window too short to split (windows are at least {})",
                            describe_min(min)
                        ),
                        None => "reading the object whole (a full refresh is not split)".into(),
                    }
                ),
                Failure::Transient,
            )));
        };
        self.log(
            LogLevel::Warn,
            format!(
                "{}: {message}; reading window {} as {a} and {b}",
                self.name,
                describe_span(span).unwrap_or_default()
            ),
        )
        .await;
        Ok((a, b))
    }

    /// A failed read of this stream that sf-auth classified as `kind`, built by `build` from the
    /// message (with the fix for a failure of the object's own) and the label
    /// [`Failure::of`] gives; a refused login is no failure of the stream's own and ends the
    /// whole sync ([`Error::SessionRefused`]).
    fn kind_error(
        &self,
        kind: sf_auth::ErrorKind,
        message: String,
        build: impl FnOnce(String, Failure) -> Error,
    ) -> Error {
        if kind == sf_auth::ErrorKind::LoginRefused {
            return Error::SessionRefused {
                stream: self.name.to_string(),
                message,
            };
        }
        build(Failure::with_fix(kind, message), Failure::of(kind))
    }

    /// A failed read of this stream through `api`.
    fn read_error(
        &self,
        api: Api,
        window: Option<String>,
        error_code: Option<String>,
        message: String,
        failure: Failure,
    ) -> Error {
        Error::StreamRead {
            stream: self.name.to_string(),
            api,
            window,
            error_code,
            message,
            failure,
        }
    }
}

#[cfg(test)]
mod tests;
