//! The sync engine: reads a configured catalog from an org into a sink, resumably.
//!
//! **Entry points**, each taking a [`sf_auth::Session`] the caller logged in with
//! [`SyncConfig::session_config`]: [`check`] (one describeGlobal call proves the credentials and
//! API access; [`check_access`] also tells who is logged in, the org, the daily allowance
//! and what the user's permissions will leave out of a sync, as an [`AccessReport`]),
//! [`discover`] (the org's streams, filtered by `streams_criteria`) and [`read`]
//! (or [`read_with`] and its [`ReadOptions`]), which syncs a [`ConfiguredCatalog`] from an
//! [`InputState`] into a [`Sink`] and returns a [`SyncSummary`]. [`Error::failure`] tells the
//! caller how to label a failure ([`Failure`]: config, transient or system); [`Failure::of`] is
//! the one mapping from sf-auth's [`sf_auth::ErrorKind`] to those labels.
//!
//! **How `read` runs.** It describes only the catalog's objects (25 to a `composite` call),
//! checks that every stream exists and still has its selected fields, and selects those fields
//! plus `Id`, the cursor and `IsDeleted`. Per stream it picks the API: REST when the Bulk API
//! cannot serve the object or its selected fields (unless `force_use_bulk_api`, which keeps Bulk
//! and drops those fields), otherwise by volume: one `SELECT COUNT()` over the span to read
//! feeds the [`plan::PlannerConfig`], which sends small spans through REST in as few windows as the
//! rows need and large ones through Bulk, with several jobs in flight while one downloads. A
//! full-refresh stream reads the whole object; `ContentDocumentLink`, which Salesforce serves
//! only filtered by its parent's ids, is read as Airbyte's connector reads it: the
//! `ContentDocument` ids through REST (`queryAll`, so deleted documents' links come too),
//! [`plan::SLICE_BATCH_SIZE`] at a time, one `WHERE ContentDocumentId IN (...)` query per batch. An
//! incremental stream reads the windows ([`plan::uncovered_spans`]) from `max(start_date, state − lookback_window)` to the org's clock less
//! [`plan::CLOCK_HOLD_BACK`], and emits its merged date-range state after each window, after the
//! window's records. A window that times out is read again in halves (down to [`plan::MIN_WINDOW`]);
//! a lost query locator resumes after the last record read; a Bulk job refused as unsupported,
//! or failed twice, switches the stream to REST. At the daily API limit or the `api_budget`,
//! no new work starts, every stream's state reached is emitted, and `read` returns `Ok` with the
//! streams cut short marked [`IncompleteReason::ApiLimit`]. Up to `num_workers` streams run at
//! once, each on its own task; their output reaches the sink through one bounded channel, so a
//! stream's records and states keep their order and memory stays bounded. The cancellation token
//! stops every stream and aborts its running Bulk jobs.
//!
//! **Owns:** the config ([`SyncConfig`], Airbyte source-salesforce's keys as they are, with its
//! own ISO 8601 [`IsoDuration`]s), the configured catalog ([`ConfiguredCatalog`]), per-stream
//! state in Airbyte's state formats ([`InputState`] reads every form Airbyte's connector writes,
//! [`StreamState`] is the merged date-range form this engine writes, [`full_refresh_state`] the
//! `{"__ab_no_cursor_state_message": true}` of a full-refresh stream), the windows an incremental sync reads
//! ([`plan::uncovered_spans`], [`plan::plan_windows`], [`plan::Window::split`] for timeouts), the
//! volume-aware choice of REST or Bulk and of window sizes ([`plan::PlannerConfig::plan`]), the run loop over
//! `sf-rest` and `sf-bulk`, and the [`Sink`] that receives records, state, logs, statuses and the
//! [`SyncSummary`] ([`MemorySink`] for tests).
//!
//! **Must not know:** the Airbyte message envelope or the command line (`sf-cli` wraps states and
//! records into Airbyte messages; this crate owns Airbyte's *state* formats, not its message
//! envelope); HTTP details beyond what `sf-auth`, `sf-rest` and `sf-bulk` expose; SOQL paging
//! and CSV decoding (theirs: even the parent-filtered child queries page through `sf-rest`).
//!
//! ```no_run
//! use chrono::Utc;
//! use sf_sync::{read, CancellationToken, ConfiguredCatalog, InputState, MemorySink, SyncConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SyncConfig::from_json(
//!     r#"{"client_id": "3MVG9...", "client_secret": "secret", "refresh_token": "5Aep...",
//!         "start_date": "2024-01-01"}"#,
//!     Utc::now(),
//! )?
//! .config;
//! let session = sf_auth::Session::login(config.session_config()).await?;
//! sf_sync::check(&session).await?;
//! let catalog = ConfiguredCatalog::from_json(
//!     r#"{"streams": [{"stream": {"name": "Account", "json_schema": {"properties":
//!         {"Id": {}, "Name": {}, "SystemModstamp": {}}}}, "sync_mode": "incremental"}]}"#,
//! )?;
//! let state = InputState::from_json(r#"{"Account": {"SystemModstamp": "2024-02-20T08:00:00.000Z"}}"#)?;
//! let mut sink = MemorySink::new();
//! let summary = read(&session, &config, &catalog, &state, &mut sink, CancellationToken::new()).await?;
//! println!("{} records; resume from {:?}", summary.records(), sink.last_state("Account"));
//! # Ok(())
//! # }
//! ```
//!
//! The foundations on their own: a legacy state migrated and continued 10 minutes before its
//! value, up to the org's clock less the hold-back.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use sf_sync::plan::{plan_windows, WindowParams};
//! use sf_sync::{InputState, SyncConfig};
//!
//! let now = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
//! let parsed = SyncConfig::from_json(
//!     r#"{"client_id": "3MVG9...", "client_secret": "secret", "refresh_token": "5Aep...",
//!         "start_date": "2024-01-01", "stream_slice_step": "P30D", "lookback_window": "PT10M"}"#,
//!     now,
//! )?;
//! let config = parsed.config;
//! assert_eq!(format!("{:?}", config.client_secret), "***");
//!
//! let input = InputState::from_json(r#"{"Account": {"SystemModstamp": "2024-02-20T08:00:00.000Z"}}"#)?;
//! let saved = input.get("Account").cloned().expect("Account has a state");
//! let state = saved.resolve("Account", "SystemModstamp", config.start_date)?;
//!
//! let windows: Vec<_> = plan_windows(&state, &WindowParams::new(&config, now)).collect();
//! assert_eq!(windows.len(), 1);
//! assert_eq!(
//!     windows[0].to_string(),
//!     "[2024-02-20T07:50:00.000Z, 2024-03-01T11:59:55.000Z)"
//! );
//! # Ok::<(), sf_sync::Error>(())
//! ```

mod access;
mod catalog;
mod classify;
mod compound;
mod config;
mod drift;
mod duration;
mod engine;
mod error;
mod options;
mod planner;
pub mod report;
mod sink;
mod state;
mod stream;
mod time;
mod window;

pub use access::{
    check_access, check_access_with, AccessReport, AccessWarning, Allowance, OrgInfo, Permissions,
    UserInfo, SECURITY_STREAMS,
};
pub use catalog::{ConfiguredCatalog, ConfiguredStream, DestinationSyncMode, SyncMode};
pub use config::{
    ConfigWarning, ParsedConfig, SyncConfig, DEFAULT_LOOKBACK_WINDOW, DEFAULT_NUM_WORKERS,
    DEFAULT_START_DATE_YEARS, DEFAULT_STREAM_SLICE_STEP, MAX_NUM_WORKERS, MIN_API_VERSION,
};
pub use duration::IsoDuration;
pub use engine::{check, discover, read, read_with};
pub use error::{ConfigProblem, Error, Failure};
pub use options::ReadOptions;
pub use planner::Api;
pub use sf_discovery::{Criterion, StreamCriterion};
pub use sink::{
    name_list, IncompleteReason, LimitCut, LogLevel, MemorySink, Sink, SinkMessage, StreamPlan,
    StreamStatus, StreamSummary, SyncSummary, LIMIT_MET_FIRST,
};
pub use state::{
    full_refresh_state, query_hash, InputState, JobCheckpoint, RefreshProgress, SavedState,
    StateSlice, StreamState,
};
pub use tokio_util::sync::CancellationToken;

pub mod plan {
    //! The planner's pure pieces, for reuse and for tuning [`crate::ReadOptions`]: the windows
    //! an incremental sync reads ([`uncovered_spans`], [`plan_windows`]), the volume-aware choice
    //! of API and window sizes ([`PlannerConfig`]), the Bulk poll schedule ([`PollSchedule`]) and
    //! the parent-id batch size of parent-filtered streams ([`SLICE_BATCH_SIZE`]).

    pub use crate::planner::{
        ApiConstraint, PlannedSpan, PlannerConfig, ReadPlan, SpanCount, Volume,
    };
    pub use crate::stream::SLICE_BATCH_SIZE;
    pub use crate::window::{
        plan_windows, uncovered_spans, Chunks, Window, WindowParams, CLOCK_HOLD_BACK, MIN_WINDOW,
    };
    pub use sf_bulk::PollSchedule;
}
