//! One stream's task: plan its reads, run them through REST or Bulk window by window, and send
//! records, state, logs and statuses, in order, to the sink's channel.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::{FutureExt, Stream, StreamExt};
use serde_json::Value;
use sf_auth::Session;
use sf_bulk::{BulkClient, BulkConfig, BulkItem, BulkStream, Operation, ResumePoint};
use sf_discovery::{FieldSpec, Record, StreamSpec};
use sf_rest::{ReadRequest, RestConfig, RestReader, ResumeKey, Soql};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::catalog::SyncMode;
use crate::classify::{advice, bulk_failed_for_size, bulk_failure, rest_failure};
use crate::error::{Error, Failure};
use crate::options::ReadOptions;
use crate::planner::{Api, ApiConstraint, SpanCount, Volume};
use crate::sink::{IncompleteReason, LogLevel, StreamStatus, StreamSummary};
use crate::state::{full_refresh_state, StreamState};
use crate::time::parse_instant;
use crate::window::{uncovered_spans, Window, WindowParams};

mod substream;

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
        let setup_error = |key: &str, message: String| Error::ConfigInvalid {
            problems: vec![crate::error::ConfigProblem {
                key: key.to_string(),
                given: None,
                expected: message,
            }],
        };
        let rest = RestReader::new(
            session.clone(),
            RestConfig {
                batch_size: options.rest_batch_size,
                ..RestConfig::default()
            },
        )
        .map_err(|e| setup_error("rest_batch_size", e.to_string()))?;
        let bulk = BulkClient::new(
            session.clone(),
            BulkConfig {
                poll: options.bulk_poll,
                max_records: options.bulk_max_records,
                ..BulkConfig::default()
            },
        )
        .map_err(|e| setup_error("bulk_poll", e.to_string()))?;
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
        })
    }

    fn limit(&self) -> Option<String> {
        match self.limit.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Records a daily-limit stop (the first one wins) and returns its detail.
    fn hit_limit(&self, message: &str) -> String {
        let detail = match self.session.api_usage() {
            Some(u) => format!("{message}; api-usage {}/{}", u.used, u.max),
            None => message.to_string(),
        };
        let mut guard = match self.limit.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.get_or_insert(detail).clone()
    }
}

/// How an object stream is read.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// The whole object, once.
    Full,
    /// Windows on the cursor, from the state.
    Incremental {
        /// The cursor field.
        cursor: String,
        /// The state to continue from.
        state: StreamState,
    },
}

/// An object stream, set up.
#[derive(Debug, Clone)]
pub(crate) struct StreamSetup {
    /// The object as described now.
    pub(crate) spec: StreamSpec,
    /// The columns to query, in order (selected fields plus `Id`, the cursor and `IsDeleted`).
    pub(crate) columns: Vec<String>,
    /// What the object allows.
    pub(crate) constraint: ApiConstraint,
    /// Full or incremental.
    pub(crate) mode: Mode,
    /// Set for an object Salesforce serves only filtered by its parent's ids: read in full by
    /// batches of those ids.
    pub(crate) parent: Option<ParentFilter>,
}

/// What a stream task does.
pub(crate) enum Job {
    /// The `Describe` stream: its records are ready.
    Describe {
        /// One per described object.
        records: Vec<Record>,
    },
    /// An object stream.
    Object(Box<StreamSetup>),
    /// A stream that cannot be read (unknown object, missing fields, bad state).
    Failed {
        /// Why.
        error: Error,
        /// The configured mode.
        sync_mode: SyncMode,
    },
    /// A stream not started because the daily limit was reached before it.
    Limited {
        /// What was reached.
        detail: String,
        /// The configured mode.
        sync_mode: SyncMode,
    },
}

impl Job {
    /// The mode the stream is read in.
    pub(crate) fn sync_mode(&self) -> SyncMode {
        match self {
            Job::Describe { .. } => SyncMode::FullRefresh,
            Job::Object(setup) => match setup.mode {
                Mode::Full => SyncMode::FullRefresh,
                Mode::Incremental { .. } => SyncMode::Incremental,
            },
            Job::Failed { sync_mode, .. } | Job::Limited { sync_mode, .. } => *sync_mode,
        }
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

/// The spans still to read, in order: pushed-back spans first, then the planned ones, lazily.
struct SpanQueue {
    front: VecDeque<Span>,
    rest: Box<dyn Iterator<Item = Span> + Send>,
}

impl SpanQueue {
    fn new(rest: impl Iterator<Item = Span> + Send + 'static) -> SpanQueue {
        SpanQueue {
            front: VecDeque::new(),
            rest: Box::new(rest),
        }
    }

    fn next(&mut self) -> Option<Span> {
        self.front.pop_front().or_else(|| self.rest.next())
    }

    fn push_front(&mut self, span: Span) {
        self.front.push_front(span);
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
    let mut runner = Runner {
        shared,
        idx,
        name,
        api: None,
        records: 0,
        windows: 0,
        jobs: Arc::new(Mutex::new(HashSet::new())),
        batch: Mutex::new(Vec::new()),
    };
    // A refused send means the consumer stopped; the task ends quietly then.
    let _ = runner.send(Msg::Status(idx, StreamStatus::Started)).await;
    let (result, state) = match job {
        Job::Describe { records } => (runner.describe(records).await, None),
        Job::Failed { error, .. } => (Err(Stop::Failed(error)), None),
        Job::Limited { detail, .. } => (Err(Stop::Limit(detail)), None),
        Job::Object(setup) => {
            let mut object = ObjectRun::new(*setup);
            let result = runner.object(&mut object).await;
            (result, object.state)
        }
    };
    let (status, error) = match result {
        Ok(()) => (StreamStatus::Complete, None),
        Err(Stop::Limit(detail)) => {
            if let Some(state) = state.filter(|s| !s.is_empty()) {
                let _ = runner.send(Msg::State(idx, state.to_json())).await;
            }
            runner
                .log(
                    LogLevel::Warn,
                    format!(
                        "{}: stopped at the API limit ({detail}); the state reached is emitted \
                         and the next sync resumes from it",
                        runner.name
                    ),
                )
                .await;
            (
                StreamStatus::Incomplete(IncompleteReason::ApiLimit { detail }),
                None,
            )
        }
        Err(Stop::Cancelled) => (StreamStatus::Incomplete(IncompleteReason::Cancelled), None),
        Err(Stop::Failed(error)) => {
            runner
                .log(LogLevel::Error, format!("{}: {error}", runner.name))
                .await;
            (
                StreamStatus::Incomplete(IncompleteReason::Failed {
                    message: error.to_string(),
                }),
                Some(error),
            )
        }
    };
    let _ = runner.send(Msg::Status(idx, status.clone())).await;
    Outcome {
        summary: StreamSummary {
            stream: runner.name.to_string(),
            sync_mode,
            api: runner.api,
            records: runner.records,
            windows: runner.windows,
            status,
        },
        error,
    }
}

/// An object stream being read: its setup and where its state stands.
struct ObjectRun {
    setup: StreamSetup,
    cursor: Option<String>,
    /// Where the cursor is among the columns (records of both APIs carry them in order).
    cursor_index: Option<usize>,
    /// `Some` for an incremental stream.
    state: Option<StreamState>,
    constraint: ApiConstraint,
    bulk_fields: Arc<[FieldSpec]>,
}

impl ObjectRun {
    fn new(setup: StreamSetup) -> ObjectRun {
        let (cursor, state) = match &setup.mode {
            Mode::Full => (None, None),
            Mode::Incremental { cursor, state } => (Some(cursor.clone()), Some(state.clone())),
        };
        let bulk_fields: Vec<FieldSpec> = setup
            .columns
            .iter()
            .filter_map(|c| setup.spec.field(c).cloned())
            .collect();
        let cursor_index = cursor.as_deref().and_then(|c| {
            setup
                .columns
                .iter()
                .position(|col| col.eq_ignore_ascii_case(c))
        });
        ObjectRun {
            constraint: setup.constraint,
            setup,
            cursor,
            cursor_index,
            state,
            bulk_fields: Arc::from(bulk_fields),
        }
    }

    fn include_deleted(&self) -> bool {
        self.setup.spec.has_is_deleted
    }

    fn rest_window(&self, span: &Span) -> Option<sf_rest::Window> {
        span.and_then(|w| sf_rest::Window::for_stream(&self.setup.spec, Some(w.start), Some(w.end)))
    }

    /// The largest cursor value of a record.
    fn cursor_value(&self, record: &Record) -> Option<DateTime<Utc>> {
        let cursor = self.cursor.as_deref()?;
        let value = match self.cursor_index {
            Some(i) if record.columns.get(i).is_some_and(|c| c == cursor) => record.values.get(i),
            _ => record.get(cursor),
        };
        value?.as_str().and_then(parse_instant)
    }
}

/// How a span's read ended, short of success.
enum SpanError {
    /// The query timed out or the job failed for its size: read the span in halves.
    Split(String),
    /// Bulk cannot serve the stream: read it through REST from this span on.
    Fallback(Fallback),
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

/// A task creating a Bulk job and waiting for it; `None` when it was stopped.
type Preparing = JoinHandle<Option<Result<Prepared, sf_bulk::Error>>>;

/// A Bulk job created and complete, its results not read yet.
struct Prepared {
    stream: BulkStream,
    job_id: Option<String>,
    /// An item that arrived before `JobCompleted` was seen (not expected).
    first: Option<BulkItem>,
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
}

impl Runner {
    /// Sends `msg` after the records before it.
    async fn send(&self, msg: Msg) -> Result<(), Stop> {
        self.flush().await?;
        self.shared.tx.send(msg).await.map_err(|_| Stop::Cancelled)
    }

    /// Sends the records waiting in the batch, if any.
    async fn flush(&self) -> Result<(), Stop> {
        let batch = std::mem::take(&mut *lock(&self.batch));
        if batch.is_empty() {
            return Ok(());
        }
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
        match self.shared.limit() {
            Some(detail) => Err(Stop::Limit(detail)),
            None => Ok(()),
        }
    }

    async fn record(&mut self, record: Record) -> Result<(), Stop> {
        self.records += 1;
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

    /// Emits the `Describe` stream's records, already read (so even past the API limit).
    async fn describe(&mut self, records: Vec<Record>) -> Result<(), Stop> {
        if self.shared.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        for record in records {
            self.record(record).await?;
        }
        self.windows = 1;
        self.send(Msg::State(self.idx, full_refresh_state())).await
    }

    async fn object(&mut self, run: &mut ObjectRun) -> Result<(), Stop> {
        self.may_continue()?;
        let name = self.name.clone();
        if let Some(filter) = run.setup.parent {
            self.substream(run, filter).await?;
            return self.send(Msg::State(self.idx, full_refresh_state())).await;
        }
        if run.constraint != ApiConstraint::RestOnly
            && self.shared.bulk_exhausted.load(Ordering::Relaxed)
        {
            // The stream that found the limit logged it once, as a warning.
            self.log(
                LogLevel::Info,
                format!(
                    "{name}: read through REST: the org's daily Bulk query job allowance is \
                     used up"
                ),
            )
            .await;
            run.constraint = ApiConstraint::RestOnly;
        }
        let planner = self.shared.options.planner.clone();
        let (mut api, queue, skip) = match &run.state {
            None => {
                let rows = match run.constraint {
                    ApiConstraint::Any => self.count(run, None).await?,
                    _ => None,
                };
                let api = planner.choose_api(rows, run.constraint);
                self.log(
                    LogLevel::Info,
                    format!(
                        "{name}: full refresh through {}{}",
                        api.as_str().to_uppercase(),
                        why(run.constraint, rows, &planner)
                    ),
                )
                .await;
                (api, SpanQueue::new(std::iter::once(None)), false)
            }
            Some(state) => {
                let params = self.shared.params;
                let spans = uncovered_spans(state, &params);
                if spans.is_empty() {
                    self.log(
                        LogLevel::Info,
                        format!(
                            "{name}: incremental: nothing to read, the state already reaches {}",
                            crate::time::format_instant(params.upper())
                        ),
                    )
                    .await;
                    if !state.is_empty() {
                        let json = state.to_json();
                        self.send(Msg::State(self.idx, json)).await?;
                    }
                    return Ok(());
                }
                let mut volume = Volume::Unknown;
                let mut counted = None;
                if planner.needs_count(&spans, &volume) {
                    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
                        return Ok(());
                    };
                    let hull = Window::new(first.start, last.end);
                    if let Some(rows) = self.count(run, Some(hull)).await? {
                        counted = Some(rows);
                        volume = if spans.len() == 1 {
                            Volume::Counted(vec![SpanCount { span: hull, rows }])
                        } else {
                            let days = hull.duration().as_secs_f64() / 86_400.0;
                            Volume::Rate {
                                rows_per_day: rows as f64 / days.max(1.0 / 86_400.0),
                            }
                        };
                    }
                }
                let plan = planner.plan(&spans, &volume, params.step, run.constraint);
                let windows: u128 = plan
                    .spans
                    .iter()
                    .map(|s| {
                        let window = s.window.as_millis().max(1);
                        s.span.duration().as_millis().div_ceil(window)
                    })
                    .sum();
                self.log(
                    LogLevel::Info,
                    format!(
                        "{name}: incremental on {} from {} to {}: {} window{} through {}{}",
                        run.cursor.as_deref().unwrap_or("?"),
                        crate::time::format_instant(spans[0].start),
                        crate::time::format_instant(params.upper()),
                        windows,
                        if windows == 1 { "" } else { "s" },
                        plan.api.as_str().to_uppercase(),
                        why(run.constraint, plan.estimated_rows, &planner)
                    ),
                )
                .await;
                // A single span counted empty needs no query at all.
                let skip = spans.len() == 1 && counted == Some(0);
                let planned: Vec<_> = plan.spans.clone();
                let queue = SpanQueue::new(planned.into_iter().flat_map(|s| s.windows()).map(Some));
                (plan.api, queue, skip)
            }
        };
        let mut queue = queue;
        if skip {
            while let Some(span) = queue.next() {
                self.span_done(run, &span, None).await?;
            }
            return Ok(());
        }
        loop {
            self.api = Some(api);
            match api {
                Api::Rest => {
                    self.rest_spans(run, &mut queue).await?;
                    break;
                }
                Api::Bulk => match self.bulk_spans(run, &mut queue).await? {
                    None => break,
                    Some(Fallback {
                        reason,
                        job_limit: true,
                    }) => {
                        // Logged once per sync, by the first stream to find it.
                        let first = !self.shared.bulk_exhausted.swap(true, Ordering::Relaxed);
                        let (level, message) = if first {
                            (
                                LogLevel::Warn,
                                format!(
                                    "the org's daily Bulk API query job limit \
                                     (DailyBulkV2QueryJobs) is reached ({reason}): {name} and \
                                     every stream after it are read through REST, which counts \
                                     against the daily API request limit instead"
                                ),
                            )
                        } else {
                            (
                                LogLevel::Info,
                                format!(
                                    "{name}: switching to REST: the org's daily Bulk query job \
                                     allowance is used up"
                                ),
                            )
                        };
                        self.log(level, message).await;
                        run.constraint = ApiConstraint::RestOnly;
                        api = Api::Rest;
                    }
                    Some(Fallback { reason, .. }) => {
                        self.log(
                            LogLevel::Warn,
                            format!(
                                "{name}: the Bulk API cannot serve this stream ({reason}); \
                                 switching to REST for the rest of it"
                            ),
                        )
                        .await;
                        run.constraint = ApiConstraint::RestOnly;
                        api = Api::Rest;
                    }
                },
            }
        }
        if run.state.is_none() {
            self.send(Msg::State(self.idx, full_refresh_state()))
                .await?;
        }
        Ok(())
    }

    /// `SELECT COUNT()` over a window (or the whole object); `None` when the count failed for a
    /// reason that only costs the plan its precision.
    async fn count(&self, run: &ObjectRun, window: Option<Window>) -> Result<Option<u64>, Stop> {
        let sf_window = run.rest_window(&window);
        let counted = tokio::select! {
            biased;
            _ = self.shared.cancel.cancelled() => return Err(Stop::Cancelled),
            counted = self.shared.rest.count(&run.setup.spec.name, sf_window.as_ref(), run.include_deleted()) => counted,
        };
        match counted {
            Ok(rows) => Ok(Some(rows)),
            Err(e) if e.kind() == sf_rest::ErrorKind::DailyLimitExceeded => {
                Err(Stop::Limit(self.shared.hit_limit(&e.to_string())))
            }
            Err(e) => {
                self.log(
                    LogLevel::Warn,
                    format!(
                        "{}: counting rows failed ({e}); planning without a count",
                        self.name
                    ),
                )
                .await;
                Ok(None)
            }
        }
    }

    /// A span was read completely: record it in the state and emit the state.
    async fn span_done(
        &mut self,
        run: &mut ObjectRun,
        span: &Span,
        most_recent: Option<DateTime<Utc>>,
    ) -> Result<(), Stop> {
        self.windows += 1;
        if let (Some(window), Some(state)) = (span, run.state.as_mut()) {
            state.add(window.to_slice(most_recent));
            let json = state.to_json();
            self.send(Msg::State(self.idx, json)).await?;
        }
        Ok(())
    }

    fn split_or_fail(
        &self,
        api: Api,
        span: &Span,
        message: &str,
        min: std::time::Duration,
    ) -> Result<(Window, Window), Stop> {
        match span.and_then(|w| w.split(min)) {
            Some(halves) => Ok(halves),
            None => Err(Stop::Failed(Error::StreamRead {
                stream: self.name.to_string(),
                api,
                window: describe_span(span),
                error_code: None,
                message: format!(
                    "{message}, and the window cannot be narrowed further; {}",
                    advice(Failure::Transient)
                ),
                failure: Failure::Transient,
            })),
        }
    }

    // ---- REST ----

    async fn rest_spans(&mut self, run: &mut ObjectRun, queue: &mut SpanQueue) -> Result<(), Stop> {
        let min = self.shared.options.planner.min_window;
        while let Some(span) = queue.next() {
            self.may_continue()?;
            match self.rest_span(run, &span).await {
                Ok(most_recent) => self.span_done(run, &span, most_recent).await?,
                Err(SpanError::Split(message)) => {
                    let (a, b) = self.split_or_fail(Api::Rest, &span, &message, min)?;
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{}: {message}; reading window {} as {a} and {b}",
                            self.name,
                            describe_span(&span).unwrap_or_default()
                        ),
                    )
                    .await;
                    queue.push_front(Some(b));
                    queue.push_front(Some(a));
                }
                Err(SpanError::Fallback(fallback)) => {
                    return Err(Stop::Failed(self.rest_error(
                        &span,
                        None,
                        fallback.reason,
                        Failure::System,
                    )))
                }
                Err(SpanError::Stop(stop)) => return Err(stop),
            }
        }
        Ok(())
    }

    fn rest_error(
        &self,
        span: &Span,
        error_code: Option<String>,
        message: String,
        failure: Failure,
    ) -> Error {
        Error::StreamRead {
            stream: self.name.to_string(),
            api: Api::Rest,
            window: describe_span(span),
            error_code,
            message,
            failure,
        }
    }

    /// Reads one span through REST; returns the largest cursor value seen.
    async fn rest_span(
        &mut self,
        run: &ObjectRun,
        span: &Span,
    ) -> Result<Option<DateTime<Utc>>, SpanError> {
        let mut most_recent: Option<DateTime<Utc>> = None;
        let mut after: Option<ResumeKey> = None;
        let mut resumes = 0u32;
        'query: loop {
            let request = ReadRequest {
                fields: run.setup.columns.clone(),
                window: run.rest_window(span),
                include_deleted: run.include_deleted(),
                order: None,
                after: after.clone(),
                limit: None,
                where_in: None,
            };
            let mut records = self
                .shared
                .rest
                .read(&run.setup.spec, request)
                .map_err(|e| {
                    let failure = rest_failure(&e);
                    Stop::Failed(self.rest_error(
                        span,
                        e.error_code().map(str::to_string),
                        format!("{e}; {}", advice(failure)),
                        failure,
                    ))
                })?;
            loop {
                let item = self.next_from(&mut records).await?;
                let error = match item {
                    None => return Ok(most_recent),
                    Some(Ok(record)) => {
                        most_recent = most_recent.max(run.cursor_value(&record));
                        self.record(record).await?;
                        continue;
                    }
                    Some(Err(e)) => e,
                };
                match error.kind() {
                    sf_rest::ErrorKind::InvalidQueryLocator
                        if resumes < self.shared.options.resume_attempts =>
                    {
                        resumes += 1;
                        if let Some(key) = error.resume_after() {
                            after = Some(key.clone());
                        }
                        self.log(
                            LogLevel::Warn,
                            format!(
                                "{}: {error}; resuming window {} {}",
                                self.name,
                                describe_span(span).unwrap_or_else(|| "(whole object)".into()),
                                match &after {
                                    Some(key) => format!("after Id {}", key.id),
                                    None => "from its start".to_string(),
                                }
                            ),
                        )
                        .await;
                        continue 'query;
                    }
                    sf_rest::ErrorKind::QueryTimeout => {
                        return Err(SpanError::Split(error.to_string()))
                    }
                    sf_rest::ErrorKind::DailyLimitExceeded => {
                        return Err(Stop::Limit(self.shared.hit_limit(&error.to_string())).into())
                    }
                    sf_rest::ErrorKind::InvalidField => {
                        let field = match &error {
                            sf_rest::Error::InvalidField { field, .. } => field.clone(),
                            _ => "?".to_string(),
                        };
                        return Err(Stop::Failed(Error::StreamFieldsMissing {
                            stream: self.name.to_string(),
                            fields: vec![field],
                        })
                        .into());
                    }
                    sf_rest::ErrorKind::NotFound => {
                        return Err(Stop::Failed(Error::StreamUnknown {
                            stream: self.name.to_string(),
                            reason: error.to_string(),
                        })
                        .into());
                    }
                    _ => {
                        let failure = rest_failure(&error);
                        return Err(Stop::Failed(self.rest_error(
                            span,
                            error.error_code().map(str::to_string),
                            format!("{error}; {}", advice(failure)),
                            failure,
                        ))
                        .into());
                    }
                }
            }
        }
    }

    // ---- Bulk ----

    fn bulk_soql(&self, run: &ObjectRun, span: &Span) -> Result<String, Stop> {
        Soql::select(run.setup.spec.name.clone(), run.setup.columns.iter())
            .maybe_window(run.rest_window(span))
            .build()
            .map_err(|e| {
                Stop::Failed(Error::StreamRead {
                    stream: self.name.to_string(),
                    api: Api::Bulk,
                    window: describe_span(span),
                    error_code: None,
                    message: format!("{e}; {}", advice(Failure::System)),
                    failure: Failure::System,
                })
            })
    }

    /// Starts a job for `span` on its own task, which returns once the job is complete, or
    /// `None` once `stop` is cancelled (a job being created is created first, so its id is
    /// known and it can be aborted).
    fn spawn_prepare(
        &self,
        run: &ObjectRun,
        span: &Span,
        stop: &CancellationToken,
    ) -> Result<Preparing, Stop> {
        let soql = self.bulk_soql(run, span)?;
        let bulk = self.shared.bulk.clone();
        let fields = run.bulk_fields.clone();
        let jobs = self.jobs.clone();
        let stop = stop.clone();
        let operation = if run.include_deleted() {
            Operation::QueryAll
        } else {
            Operation::Query
        };
        Ok(tokio::spawn(async move {
            if stop.is_cancelled() {
                return None;
            }
            let mut stream = bulk.query(operation, soql, &fields);
            let mut job_id: Option<String> = None;
            loop {
                let item = tokio::select! {
                    biased;
                    _ = stop.cancelled(), if job_id.is_some() => return None,
                    item = stream.next() => item,
                };
                let first = match item {
                    Some(Ok(BulkItem::JobCreated { job_id: id })) => {
                        lock(&jobs).insert(id.clone());
                        job_id = Some(id);
                        continue;
                    }
                    Some(Ok(BulkItem::JobCompleted(_))) | None => None,
                    Some(Ok(other)) => Some(other),
                    Some(Err(e)) => {
                        let ended = matches!(
                            e.kind(),
                            sf_bulk::ErrorKind::JobFailed
                                | sf_bulk::ErrorKind::JobAborted
                                | sf_bulk::ErrorKind::NotSupported
                        );
                        if let (Some(id), true) = (&job_id, ended) {
                            lock(&jobs).remove(id);
                        }
                        return Some(Err(e));
                    }
                };
                return Some(Ok(Prepared {
                    stream,
                    job_id,
                    first,
                }));
            }
        }))
    }

    /// Reads spans through Bulk, with jobs of later spans in flight while one downloads. Returns
    /// `Some(why)` when the stream must switch to REST (the unread spans are back in `queue`).
    async fn bulk_spans(
        &mut self,
        run: &mut ObjectRun,
        queue: &mut SpanQueue,
    ) -> Result<Option<Fallback>, Stop> {
        let stop = self.shared.cancel.child_token();
        let mut inflight: VecDeque<(Span, Preparing)> = VecDeque::new();
        let result = self.bulk_loop(run, queue, &mut inflight, &stop).await;
        // Whatever ended the loop, nothing started ahead is needed any more: the tasks stop once
        // the jobs they create have ids, and every job still running is aborted.
        stop.cancel();
        for (_, handle) in inflight {
            let _ = handle.await;
        }
        if !matches!(result, Ok(None)) {
            self.abort_jobs().await;
        }
        result
    }

    async fn bulk_loop(
        &mut self,
        run: &mut ObjectRun,
        queue: &mut SpanQueue,
        inflight: &mut VecDeque<(Span, Preparing)>,
        stop: &CancellationToken,
    ) -> Result<Option<Fallback>, Stop> {
        let ahead = self.shared.options.bulk_jobs_in_flight.max(1);
        let min = self.shared.options.planner.min_window;
        loop {
            self.may_continue()?;
            while inflight.len() < ahead {
                let Some(span) = queue.next() else { break };
                let handle = self.spawn_prepare(run, &span, stop)?;
                inflight.push_back((span, handle));
            }
            let Some((span, mut handle)) = inflight.pop_front() else {
                return Ok(None);
            };
            let prepared = tokio::select! {
                biased;
                _ = self.shared.cancel.cancelled() => {
                    inflight.push_front((span, handle));
                    return Err(Stop::Cancelled);
                }
                joined = &mut handle => joined,
            };
            let outcome = match prepared {
                Ok(Some(Ok(prepared))) => self.bulk_download(run, &span, prepared).await,
                Ok(Some(Err(e))) => Err(self.bulk_span_error(&span, e)),
                Ok(None) => Err(SpanError::Stop(Stop::Cancelled)),
                Err(join) => Err(SpanError::Stop(Stop::Failed(Error::StreamRead {
                    stream: self.name.to_string(),
                    api: Api::Bulk,
                    window: describe_span(&span),
                    error_code: None,
                    message: format!("the Bulk job's task ended abnormally: {join}"),
                    failure: Failure::System,
                }))),
            };
            match outcome {
                Ok(most_recent) => self.span_done(run, &span, most_recent).await?,
                Err(SpanError::Split(message)) => {
                    let (a, b) = self.split_or_fail(Api::Bulk, &span, &message, min)?;
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{}: {message}; reading window {} as {a} and {b}",
                            self.name,
                            describe_span(&span).unwrap_or_default()
                        ),
                    )
                    .await;
                    let second = self.spawn_prepare(run, &Some(b), stop)?;
                    inflight.push_front((Some(b), second));
                    let first = self.spawn_prepare(run, &Some(a), stop)?;
                    inflight.push_front((Some(a), first));
                }
                Err(SpanError::Fallback(fallback)) => {
                    // This span and those started ahead go back, in order, ahead of the queue;
                    // the jobs started ahead are stopped and aborted by the caller.
                    let ahead: Vec<Span> = inflight.iter().map(|(s, _)| *s).collect();
                    for s in ahead.into_iter().rev() {
                        queue.push_front(s);
                    }
                    queue.push_front(span);
                    return Ok(Some(fallback));
                }
                Err(SpanError::Stop(stop)) => return Err(stop),
            }
        }
    }

    /// Classifies a Bulk failure of one span.
    fn bulk_span_error(&self, span: &Span, e: sf_bulk::Error) -> SpanError {
        use sf_bulk::ErrorKind as K;
        match e.kind() {
            K::DailyLimitExceeded => {
                SpanError::Stop(Stop::Limit(self.shared.hit_limit(&e.to_string())))
            }
            K::NotSupported => Fallback::unsupported(e.to_string()),
            // Other streams need not try: REST requests are a separate allowance.
            K::BulkJobLimit => SpanError::Fallback(Fallback {
                reason: e.to_string(),
                job_limit: true,
            }),
            K::JobFailed => match &e {
                sf_bulk::Error::JobFailed { error_message, .. }
                    if bulk_failed_for_size(error_message) && span.is_some() =>
                {
                    SpanError::Split(e.to_string())
                }
                _ => Fallback::unsupported(e.to_string()),
            },
            K::JobTimedOut if span.is_some() => SpanError::Split(e.to_string()),
            K::QueryRejected if e.error_code() == Some("INVALID_FIELD") => {
                let message = e.api_error().map(|a| a.message.clone()).unwrap_or_default();
                SpanError::Stop(Stop::Failed(Error::StreamFieldsMissing {
                    stream: self.name.to_string(),
                    fields: vec![column_in_message(&message).unwrap_or_else(|| "?".to_string())],
                }))
            }
            _ => {
                let failure = bulk_failure(&e);
                SpanError::Stop(Stop::Failed(Error::StreamRead {
                    stream: self.name.to_string(),
                    api: Api::Bulk,
                    window: describe_span(span),
                    error_code: e.error_code().map(str::to_string),
                    message: format!("{e}; {}", advice(failure)),
                    failure,
                }))
            }
        }
    }

    /// Reads a complete job's results, resuming from the last page read when the download is cut.
    async fn bulk_download(
        &mut self,
        run: &ObjectRun,
        span: &Span,
        prepared: Prepared,
    ) -> Result<Option<DateTime<Utc>>, SpanError> {
        let Prepared {
            mut stream,
            job_id,
            mut first,
        } = prepared;
        let mut most_recent: Option<DateTime<Utc>> = None;
        let mut resume: Option<ResumePoint> = job_id.as_ref().map(ResumePoint::start);
        let mut resumes = 0u32;
        loop {
            let item = match first.take() {
                Some(item) => Some(Ok(item)),
                None => self.next_from(&mut stream).await?,
            };
            match item {
                None => {
                    if let Some(id) = &job_id {
                        lock(&self.jobs).remove(id);
                    }
                    return Ok(most_recent);
                }
                Some(Ok(BulkItem::Record(record))) => {
                    most_recent = most_recent.max(run.cursor_value(&record));
                    self.record(record).await?;
                }
                Some(Ok(BulkItem::PageDone(progress))) => {
                    resume = progress.resume_point().or(resume);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let resumable = matches!(
                        e.kind(),
                        sf_bulk::ErrorKind::ResultsIncomplete | sf_bulk::ErrorKind::Transient
                    );
                    match (&resume, resumable) {
                        (Some(point), true) if resumes < self.shared.options.resume_attempts => {
                            resumes += 1;
                            self.log(
                                LogLevel::Warn,
                                format!(
                                    "{}: reading Bulk results failed ({e}); resuming job {} {}",
                                    self.name,
                                    point.job_id,
                                    match &point.locator {
                                        Some(l) => format!("at locator {l}"),
                                        None => "from its first page".to_string(),
                                    }
                                ),
                            )
                            .await;
                            stream = self.shared.bulk.resume(point.clone(), &run.bulk_fields);
                        }
                        _ => return Err(self.bulk_span_error(span, e)),
                    }
                }
            }
        }
    }

    /// Aborts this stream's Bulk jobs that may still run, then deletes them (unless the client
    /// keeps jobs), so a stop or a switch to REST leaves none on the org. A job that finished
    /// before the stop (started ahead, or cut off mid-download) refuses the abort (400, "Aborting
    /// already Completed Job not allowed") and is deleted all the same. Best effort: a job that
    /// cannot be deleted is logged; Salesforce removes jobs after seven days.
    async fn abort_jobs(&self) {
        let delete = self.shared.bulk.config().delete_jobs;
        let ids: Vec<String> = lock(&self.jobs).drain().collect();
        for id in ids {
            let (ended, how) = match self.shared.bulk.abort(&id).await {
                Ok(info) => (info.state.is_terminal(), "aborted"),
                // Refused: the job had already ended (complete, failed or aborted).
                Err(e) if e.api_error().is_some_and(|a| a.status == 400) => {
                    (true, "had already ended")
                }
                Err(e) if e.kind() == sf_bulk::ErrorKind::JobNotFound => continue,
                Err(e) => {
                    self.log(
                        LogLevel::Warn,
                        format!("{}: Bulk job {id} not aborted: {e}", self.name),
                    )
                    .await;
                    continue;
                }
            };
            if !(delete && ended) {
                self.log(
                    LogLevel::Info,
                    format!("{}: Bulk job {id} {how}", self.name),
                )
                .await;
                continue;
            }
            match self.shared.bulk.delete(&id).await {
                Ok(()) => {
                    self.log(
                        LogLevel::Info,
                        format!("{}: Bulk job {id} {how}; deleted", self.name),
                    )
                    .await
                }
                Err(e) if e.kind() == sf_bulk::ErrorKind::JobNotFound => {}
                Err(e) => {
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{}: Bulk job {id} {how} but was not deleted ({e}); Salesforce \
                             deletes it after seven days",
                            self.name
                        ),
                    )
                    .await
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The field in `No such column 'X' on entity 'Y'`.
fn column_in_message(message: &str) -> Option<String> {
    const MARK: &str = "No such column '";
    let start = message.find(MARK)? + MARK.len();
    let rest = &message[start..];
    let end = rest.find('\'')?;
    let name = &rest[..end];
    (!name.is_empty()).then(|| name.to_string())
}

/// Why an API was chosen, for the log.
fn why(
    constraint: ApiConstraint,
    rows: Option<u64>,
    planner: &crate::planner::PlannerConfig,
) -> String {
    match (constraint, rows) {
        (ApiConstraint::RestOnly, _) => String::new(),
        (ApiConstraint::BulkOnly, _) => " (force_use_bulk_api)".to_string(),
        (ApiConstraint::Any, Some(rows)) if rows <= planner.rest_max_rows => {
            format!(" ({rows} rows, at most {} for REST)", planner.rest_max_rows)
        }
        (ApiConstraint::Any, Some(rows)) => {
            format!(
                " ({rows} rows, more than {} for REST)",
                planner.rest_max_rows
            )
        }
        (ApiConstraint::Any, None) => " (volume unknown)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_by_records_or_by_values() {
        // 20 columns: 256 records a batch.
        assert!(!batch_full(255, 20, 256));
        assert!(batch_full(256, 20, 256));
        // 300 columns: 256 × 32 = 8,192 values, 28 records (27 hold 8,100).
        assert!(!batch_full(27, 300, 256));
        assert!(batch_full(28, 300, 256));
        // Exactly 32 columns: both bounds at 256 records.
        assert!(!batch_full(255, 32, 256));
        assert!(batch_full(256, 32, 256));
        // A batch of one record is full at once however wide, and at the smallest bound.
        assert!(batch_full(1, 100_000, 256));
        assert!(batch_full(1, 1, 1));
    }

    #[test]
    fn columns_come_out_of_messages() {
        assert_eq!(
            column_in_message("No such column 'Foo__c' on entity 'Account'.").as_deref(),
            Some("Foo__c")
        );
        assert_eq!(column_in_message("something else"), None);
    }

    #[test]
    fn queue_puts_pushed_spans_first() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default();
        let planned = vec![
            Some(Window::new(t(0), t(10))),
            Some(Window::new(t(10), t(20))),
        ];
        let mut queue = SpanQueue::new(planned.into_iter());
        let first = queue.next();
        assert_eq!(first, Some(Some(Window::new(t(0), t(10)))));
        queue.push_front(Some(Window::new(t(5), t(10))));
        queue.push_front(Some(Window::new(t(0), t(5))));
        let rest: Vec<Span> = std::iter::from_fn(|| queue.next()).collect();
        assert_eq!(
            rest,
            [
                Some(Window::new(t(0), t(5))),
                Some(Window::new(t(5), t(10))),
                Some(Window::new(t(10), t(20)))
            ]
        );
    }
}
