//! The sync engine: reads a configured catalog from an org into a sink, resumably.
//!
//! **Owns:** the config ([`SyncConfig`], Airbyte source-salesforce's keys as they are, with its
//! own ISO 8601 [`IsoDuration`]s), the configured catalog ([`ConfiguredCatalog`]), per-stream
//! state ([`InputState`] reads every form Airbyte's connector writes, [`StreamState`] is the
//! merged date-range form this engine writes), the windows an incremental sync reads
//! ([`uncovered_spans`], [`plan_windows`], [`Window::split`] for timeouts), the volume-aware
//! choice of REST or Bulk and of window sizes ([`PlannerConfig::plan`]), and the [`Sink`] that
//! receives records, state, logs, statuses and the [`SyncSummary`] ([`MemorySink`] for tests).
//! The run loop over `sf-rest` and `sf-bulk` builds on these.
//!
//! **Must not know:** the Airbyte message envelope or the command line (`sf-cli` wraps states and
//! records into Airbyte messages); HTTP details beyond what `sf-auth`, `sf-rest` and `sf-bulk`
//! expose.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use sf_sync::{plan_windows, InputState, SyncConfig, WindowParams};
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
//! // Airbyte's legacy state for Account, migrated and continued 10 minutes before its value.
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

mod catalog;
mod classify;
mod config;
mod duration;
mod engine;
mod error;
mod options;
mod planner;
mod sink;
mod state;
mod stream;
mod time;
mod window;

pub use catalog::{ConfiguredCatalog, ConfiguredStream, DestinationSyncMode, SyncMode};
pub use config::{
    ConfigWarning, Criterion, ParsedConfig, StreamCriterion, SyncConfig, DEFAULT_LOOKBACK_WINDOW,
    DEFAULT_NUM_WORKERS, DEFAULT_START_DATE_YEARS, DEFAULT_STREAM_SLICE_STEP, MAX_NUM_WORKERS,
    MIN_API_VERSION,
};
pub use duration::IsoDuration;
pub use engine::{check, discover, read, read_with};
pub use error::{ConfigProblem, Error, Failure};
pub use options::ReadOptions;
pub use planner::{Api, ApiConstraint, PlannedSpan, PlannerConfig, ReadPlan, SpanCount, Volume};
pub use sink::{
    IncompleteReason, LogLevel, MemorySink, Sink, SinkMessage, StreamStatus, StreamSummary,
    SyncSummary,
};
pub use state::{full_refresh_state, InputState, SavedState, StateSlice, StreamState};
pub use tokio_util::sync::CancellationToken;
pub use window::{
    plan_windows, uncovered_spans, Chunks, Window, WindowParams, CLOCK_HOLD_BACK, MIN_WINDOW,
};
