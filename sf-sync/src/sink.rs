//! Where a sync's output goes: records, state, logs, per-stream status and a summary.

use std::fmt;

use async_trait::async_trait;
use serde_json::Value;
use sf_discovery::Record;

use crate::catalog::SyncMode;
use crate::error::{Error, Failure};
use crate::planner::Api;
use crate::state::{InputState, SavedState};

/// How much a log message matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Detail for debugging.
    Debug,
    /// Progress.
    Info,
    /// Something was worked around (fields dropped, a fallback to REST, an unknown config key).
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

/// Why a stream stopped before reading everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncompleteReason {
    /// The org's daily API limit, or this sync's `api_budget`, was reached. The sync still
    /// succeeds; the next one resumes from the state emitted.
    ApiLimit {
        /// What was reached, e.g. `api-usage 14990/15000`.
        detail: String,
    },
    /// The sync was cancelled.
    Cancelled,
    /// An error stopped the stream.
    Failed {
        /// The error, for the user.
        message: String,
        /// Whose fault it is (config, transient, system).
        failure: Failure,
    },
}

/// How the detail of [`IncompleteReason::ApiLimit`] starts when another request of the sync met
/// the limit first (the stream stopped, or never started, because of it).
pub const LIMIT_MET_FIRST: &str = "a request of the sync met it first: ";

impl IncompleteReason {
    /// True for [`IncompleteReason::Failed`]: the sync as a whole failed.
    pub fn is_failure(&self) -> bool {
        matches!(self, IncompleteReason::Failed { .. })
    }

    /// For [`IncompleteReason::ApiLimit`]: whether a request of this stream met the limit
    /// (`true`) or another request of the sync did first (`false`), and the limit's detail
    /// without that note. `None` for the other reasons.
    pub fn limit_met_by(&self) -> Option<(bool, &str)> {
        match self {
            IncompleteReason::ApiLimit { detail } => {
                Some(match detail.strip_prefix(LIMIT_MET_FIRST) {
                    Some(rest) => (false, rest),
                    None => (true, detail.as_str()),
                })
            }
            _ => None,
        }
    }
}

impl fmt::Display for IncompleteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IncompleteReason::ApiLimit { detail } => {
                write!(f, "the API limit was reached ({detail})")
            }
            IncompleteReason::Cancelled => f.write_str("the sync was cancelled"),
            IncompleteReason::Failed { message, .. } => write!(f, "failed: {message}"),
        }
    }
}

/// A stream's status, as Airbyte's stream-status trace reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStatus {
    /// The stream was picked up.
    Started,
    /// Its first record or state is on the way.
    Running,
    /// Everything was read.
    Complete,
    /// It stopped early.
    Incomplete(IncompleteReason),
}

/// How a stream is read, told once its API is chosen (with the volume, when a `SELECT COUNT()`
/// chose it) and again if it switches API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPlan {
    /// The API the stream is read through.
    pub api: Api,
    /// The rows the read will yield, from the `SELECT COUNT()` over what it reads (the whole
    /// object, or the incremental span with deleted rows); `None` when not counted. Rows that
    /// change while the stream is read may make the read differ by as many.
    pub estimated_rows: Option<u64>,
    /// Why this API: the volume against the REST threshold, `force_use_bulk_api`, a field or
    /// object Bulk cannot serve, or the Bulk failure that switched the stream to REST.
    pub reason: String,
}

/// What happened to one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream.
    pub stream: String,
    /// Its sync mode.
    pub sync_mode: SyncMode,
    /// The API it was read through (the last one, after any fallback); `None` if never read.
    pub api: Option<Api>,
    /// Records emitted.
    pub records: u64,
    /// Windows completed (a full-refresh read counts as one).
    pub windows: u64,
    /// Its final status: complete or incomplete.
    pub status: StreamStatus,
    /// How the stream's failure is labelled, when it failed
    /// ([`IncompleteReason::Failed`]); `None` otherwise.
    pub failure: Option<Failure>,
}

/// What a sync did, sent to the sink last.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncSummary {
    /// One entry per configured stream, in catalog order.
    pub streams: Vec<StreamSummary>,
    /// API requests this sync sent, counted by the session (`Session::request_count`): every
    /// request and retry, logins excluded; a `composite` call of describes counts once, as the org
    /// counts it against the daily limit. Always `Some` from [`crate::read`].
    pub api_requests: Option<u64>,
}

/// `names` joined by commas, at most `at_most` of them, then how many more (`A, B and 3 more`):
/// the lists of stream or object names in the log stay bounded on an org of thousands.
pub fn name_list<S: AsRef<str>>(names: &[S], at_most: usize) -> String {
    let mut text = names
        .iter()
        .take(at_most)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > at_most {
        text.push_str(&format!(" and {} more", names.len() - at_most));
    }
    text
}

/// The streams a sync's API limit cut short ([`SyncSummary::cut_at_limit`]), by mode, in
/// catalog order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCut<'a> {
    /// What was reached, from a stream whose own request met the limit when there is one
    /// (without [`LIMIT_MET_FIRST`]).
    pub detail: &'a str,
    /// The incremental streams cut short: the next sync reads on from their state, if any.
    pub incremental: Vec<&'a str>,
    /// The full-refresh streams cut short: the next sync reads them whole again.
    pub full_refresh: Vec<&'a str>,
}

impl SyncSummary {
    /// The streams the API limit cut short (only those another request's limit stopped, with
    /// `others_only`); `None` when there are none.
    pub fn cut_at_limit(&self, others_only: bool) -> Option<LimitCut<'_>> {
        let mut detail: Option<&str> = None;
        let (mut incremental, mut full_refresh) = (Vec::new(), Vec::new());
        for s in &self.streams {
            let StreamStatus::Incomplete(reason) = &s.status else {
                continue;
            };
            let Some((own, what)) = reason.limit_met_by() else {
                continue;
            };
            if own && others_only {
                continue;
            }
            if own || detail.is_none() {
                detail = Some(what);
            }
            match s.sync_mode {
                SyncMode::Incremental => incremental.push(s.stream.as_str()),
                SyncMode::FullRefresh => full_refresh.push(s.stream.as_str()),
            }
        }
        Some(LimitCut {
            detail: detail?,
            incremental,
            full_refresh,
        })
    }

    /// True unless a stream failed (a stream cut short by the API limit does not fail the sync).
    pub fn succeeded(&self) -> bool {
        !self.streams.iter().any(|s| match &s.status {
            StreamStatus::Incomplete(reason) => reason.is_failure(),
            _ => false,
        })
    }

    /// Streams that stopped early, with why.
    pub fn incomplete(&self) -> impl Iterator<Item = (&str, &IncompleteReason)> {
        self.streams.iter().filter_map(|s| match &s.status {
            StreamStatus::Incomplete(reason) => Some((s.stream.as_str(), reason)),
            _ => None,
        })
    }

    /// The streams that failed, each with its reason (what failed and what to do) and its
    /// label, in catalog order. The other streams' records and state were emitted whatever
    /// these did.
    pub fn failed(&self) -> impl Iterator<Item = (&str, &str, Failure)> {
        self.streams.iter().filter_map(|s| match &s.status {
            StreamStatus::Incomplete(IncompleteReason::Failed { message, failure }) => Some((
                s.stream.as_str(),
                message.as_str(),
                s.failure.unwrap_or(*failure),
            )),
            _ => None,
        })
    }

    /// The label of the sync's failure when streams failed: theirs when they share one;
    /// otherwise system if one is, else transient (another run may pass some of them).
    pub fn failure(&self) -> Option<Failure> {
        let mut labels = self.failed().map(|(_, _, failure)| failure);
        let first = labels.next()?;
        Some(labels.fold(first, |acc, label| match (acc, label) {
            (a, b) if a == b => a,
            (Failure::System, _) | (_, Failure::System) => Failure::System,
            _ => Failure::Transient,
        }))
    }

    /// Records emitted over all streams.
    pub fn records(&self) -> u64 {
        self.streams.iter().map(|s| s.records).sum()
    }
}

/// Receives a sync's output.
///
/// Per stream, calls come in order: a state message follows every record it covers. An error
/// from the sink (for example stdout closed) stops the sync; what was emitted before stays valid.
#[async_trait]
pub trait Sink: Send {
    /// One record of `stream`.
    async fn record(&mut self, stream: &str, record: Record) -> Result<(), Error>;
    /// A batch of records of `stream`, in order. The default takes each out of `batch` and hands
    /// it to [`Sink::record`]. A sink that only writes records can write them from `batch` and
    /// leave them there: the engine then frees them on the stream's own task, where they were
    /// made, which costs a multi-threaded allocator far less than freeing them here (see
    /// `stream/recycle.rs`).
    async fn records(&mut self, stream: &str, batch: &mut Vec<Record>) -> Result<(), Error> {
        for record in batch.drain(..) {
            self.record(stream, record).await?;
        }
        Ok(())
    }
    /// The state of `stream` after its latest completed window (the `stream_state` JSON).
    async fn state(&mut self, stream: &str, state: Value) -> Result<(), Error>;
    /// A log line; no secrets ever reach it.
    async fn log(&mut self, level: LogLevel, message: &str) -> Result<(), Error>;
    /// A status change of `stream`.
    async fn status(&mut self, stream: &str, status: StreamStatus) -> Result<(), Error>;
    /// The summary, once, at the end.
    async fn summary(&mut self, summary: &SyncSummary) -> Result<(), Error>;
    /// How `stream` is read: its API and, when counted, its volume (before its first record;
    /// again after a switch of API). Ignored unless the sink shows progress.
    async fn plan(&mut self, stream: &str, plan: StreamPlan) -> Result<(), Error> {
        let _ = (stream, plan);
        Ok(())
    }
}

/// One message received by a [`MemorySink`].
#[derive(Debug, Clone, PartialEq)]
pub enum SinkMessage {
    /// A record.
    Record {
        /// Its stream.
        stream: String,
        /// The record.
        record: Record,
    },
    /// A state.
    State {
        /// Its stream.
        stream: String,
        /// The `stream_state` JSON.
        state: Value,
    },
    /// A log line.
    Log {
        /// Level.
        level: LogLevel,
        /// Text.
        message: String,
    },
    /// A status change.
    Status {
        /// Its stream.
        stream: String,
        /// The status.
        status: StreamStatus,
    },
    /// The summary.
    Summary(SyncSummary),
    /// A stream's plan.
    Plan {
        /// Its stream.
        stream: String,
        /// The plan.
        plan: StreamPlan,
    },
}

/// A sink that keeps everything in memory, for tests (here and in the crates above).
///
/// [`MemorySink::failing_after`] makes it refuse every message after the first `n`, which stops
/// the sync as a crash would: restarting from [`MemorySink::resume_state`] must lose nothing.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    messages: Vec<SinkMessage>,
    limit: Option<usize>,
}

impl MemorySink {
    /// A sink that accepts everything.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// A sink that accepts `n` messages and refuses the rest.
    pub fn failing_after(n: usize) -> MemorySink {
        MemorySink {
            messages: Vec::new(),
            limit: Some(n),
        }
    }

    fn push(&mut self, message: SinkMessage) -> Result<(), Error> {
        if let Some(limit) = self.limit {
            if self.messages.len() >= limit {
                return Err(Error::sink(format!(
                    "memory sink accepts {limit} messages and is full"
                )));
            }
        }
        self.messages.push(message);
        Ok(())
    }

    /// Every message, in arrival order.
    pub fn messages(&self) -> &[SinkMessage] {
        &self.messages
    }

    /// The records of `stream`, in order.
    pub fn records(&self, stream: &str) -> Vec<&Record> {
        self.of(stream, |m| match m {
            SinkMessage::Record { stream, record } => Some((stream, record)),
            _ => None,
        })
    }

    /// The states of `stream`, in order.
    pub fn states(&self, stream: &str) -> Vec<&Value> {
        self.of(stream, |m| match m {
            SinkMessage::State { stream, state } => Some((stream, state)),
            _ => None,
        })
    }

    /// The last state of `stream`.
    pub fn last_state(&self, stream: &str) -> Option<&Value> {
        self.states(stream).pop()
    }

    /// The status changes of `stream`, in order.
    pub fn statuses(&self, stream: &str) -> Vec<&StreamStatus> {
        self.of(stream, |m| match m {
            SinkMessage::Status { stream, status } => Some((stream, status)),
            _ => None,
        })
    }

    /// What `pick` takes from the messages of `stream`, in order.
    fn of<'a, T: ?Sized>(
        &'a self,
        stream: &str,
        pick: impl Fn(&'a SinkMessage) -> Option<(&'a String, &'a T)>,
    ) -> Vec<&'a T> {
        self.messages
            .iter()
            .filter_map(|m| pick(m).filter(|(s, _)| *s == stream).map(|(_, x)| x))
            .collect()
    }

    /// The plans of `stream`, in order.
    pub fn plans(&self, stream: &str) -> Vec<&StreamPlan> {
        self.of(stream, |m| match m {
            SinkMessage::Plan { stream, plan } => Some((stream, plan)),
            _ => None,
        })
    }

    /// The log lines, in order.
    pub fn logs(&self) -> Vec<(LogLevel, &str)> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                SinkMessage::Log { level, message } => Some((*level, message.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The summary, if the sync got that far.
    pub fn final_summary(&self) -> Option<&SyncSummary> {
        self.messages.iter().find_map(|m| match m {
            SinkMessage::Summary(s) => Some(s),
            _ => None,
        })
    }

    /// The state a restarted sync would be given: each stream's last emitted state.
    pub fn resume_state(&self) -> Result<InputState, Error> {
        let mut state = InputState::default();
        for m in &self.messages {
            if let SinkMessage::State { stream, state: s } = m {
                state.insert(stream.clone(), SavedState::from_value(stream, s)?);
            }
        }
        Ok(state)
    }
}

#[async_trait]
impl Sink for MemorySink {
    async fn record(&mut self, stream: &str, record: Record) -> Result<(), Error> {
        self.push(SinkMessage::Record {
            stream: stream.to_string(),
            record,
        })
    }

    async fn state(&mut self, stream: &str, state: Value) -> Result<(), Error> {
        self.push(SinkMessage::State {
            stream: stream.to_string(),
            state,
        })
    }

    async fn log(&mut self, level: LogLevel, message: &str) -> Result<(), Error> {
        self.push(SinkMessage::Log {
            level,
            message: message.to_string(),
        })
    }

    async fn status(&mut self, stream: &str, status: StreamStatus) -> Result<(), Error> {
        self.push(SinkMessage::Status {
            stream: stream.to_string(),
            status,
        })
    }

    async fn summary(&mut self, summary: &SyncSummary) -> Result<(), Error> {
        self.push(SinkMessage::Summary(summary.clone()))
    }

    async fn plan(&mut self, stream: &str, plan: StreamPlan) -> Result<(), Error> {
        self.push(SinkMessage::Plan {
            stream: stream.to_string(),
            plan,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StreamState;
    use crate::window::Window;
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use std::sync::Arc;

    fn record(id: &str) -> Record {
        Record {
            columns: Arc::from(vec!["Id".to_string()]),
            values: vec![json!(id)],
        }
    }

    #[tokio::test]
    async fn keeps_everything_in_order_and_stops_when_full() {
        let mut sink = MemorySink::failing_after(6);
        let dyn_sink: &mut dyn Sink = &mut sink;
        dyn_sink
            .status("Account", StreamStatus::Started)
            .await
            .unwrap();
        dyn_sink.record("Account", record("001A")).await.unwrap();
        dyn_sink.record("Lead", record("00QA")).await.unwrap();
        let window = Window::new(
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap(),
        );
        let state = StreamState::from_slices([window.to_slice(None)]);
        dyn_sink.state("Account", state.to_json()).await.unwrap();
        dyn_sink
            .log(LogLevel::Warn, "dropped BillingAddress")
            .await
            .unwrap();
        dyn_sink
            .status(
                "Account",
                StreamStatus::Incomplete(IncompleteReason::ApiLimit {
                    detail: "api-usage 15000/15000".into(),
                }),
            )
            .await
            .unwrap();
        let err = dyn_sink
            .record("Account", record("001B"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sink write: memory sink accepts 6 messages and is full"
        );

        assert_eq!(sink.messages().len(), 6);
        assert_eq!(sink.records("Account").len(), 1);
        assert_eq!(sink.records("Account")[0].id(), Some("001A"));
        assert_eq!(sink.records("Lead")[0].id(), Some("00QA"));
        assert_eq!(sink.last_state("Account"), Some(&state.to_json()));
        assert_eq!(sink.last_state("Lead"), None);
        assert_eq!(sink.logs(), [(LogLevel::Warn, "dropped BillingAddress")]);
        assert_eq!(sink.statuses("Account").len(), 2);
        assert_eq!(sink.final_summary(), None);
        let resume = sink.resume_state().unwrap();
        assert_eq!(resume.get("Account"), Some(&SavedState::DateRange(state)));
        assert_eq!(resume.get("Lead"), None);
    }

    #[tokio::test]
    async fn summary_tells_success_from_failure() {
        let stream = |name: &str, status| StreamSummary {
            stream: name.into(),
            sync_mode: SyncMode::Incremental,
            api: Some(Api::Rest),
            records: 10,
            windows: 2,
            status,
            failure: None,
        };
        let limited = SyncSummary {
            streams: vec![
                stream("Account", StreamStatus::Complete),
                stream(
                    "Lead",
                    StreamStatus::Incomplete(IncompleteReason::ApiLimit {
                        detail: "TotalRequests".into(),
                    }),
                ),
            ],
            api_requests: Some(42),
        };
        assert!(limited.succeeded());
        assert_eq!(limited.records(), 20);
        let incomplete: Vec<_> = limited.incomplete().map(|(s, _)| s).collect();
        assert_eq!(incomplete, ["Lead"]);
        let mut failed = limited.clone();
        failed.streams[0].status = StreamStatus::Incomplete(IncompleteReason::Failed {
            message: "INVALID_FIELD".into(),
            failure: Failure::Config,
        });
        failed.streams[0].failure = Some(Failure::Config);
        assert!(!failed.succeeded());
        let listed: Vec<_> = failed.failed().collect();
        assert_eq!(listed, [("Account", "INVALID_FIELD", Failure::Config)]);
        assert_eq!(limited.failed().count(), 0);
        assert_eq!(limited.failure(), None);
        assert_eq!(failed.failure(), Some(Failure::Config));
        let mut two = failed.clone();
        two.streams[1].status = failed.streams[0].status.clone();
        two.streams[1].failure = Some(Failure::Config);
        assert_eq!(two.failure(), Some(Failure::Config));
        two.streams[1].failure = Some(Failure::Transient);
        assert_eq!(two.failure(), Some(Failure::Transient));
        two.streams[0].failure = Some(Failure::System);
        assert_eq!(two.failure(), Some(Failure::System));
        assert_eq!(two.failed().count(), 2);
        assert_eq!(
            IncompleteReason::ApiLimit {
                detail: "TotalRequests".into()
            }
            .to_string(),
            "the API limit was reached (TotalRequests)"
        );
        let other = IncompleteReason::ApiLimit {
            detail: format!("{LIMIT_MET_FIRST}TotalRequests"),
        };
        assert_eq!(other.limit_met_by(), Some((false, "TotalRequests")));
        let own = IncompleteReason::ApiLimit {
            detail: "TotalRequests".into(),
        };
        assert_eq!(own.limit_met_by(), Some((true, "TotalRequests")));
        assert_eq!(IncompleteReason::Cancelled.limit_met_by(), None);
        assert_eq!(name_list(&["A", "B", "C"], 2), "A, B and 1 more");
        assert_eq!(name_list(&["A", "B"], 2), "A, B");
        assert_eq!(name_list::<&str>(&[], 2), "");
        let mut sink = MemorySink::new();
        sink.summary(&limited).await.unwrap();
        assert_eq!(sink.final_summary(), Some(&limited));
    }
}
