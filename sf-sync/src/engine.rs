//! The entry points: `check`, `discover` and `read`; `read` describes the catalog's objects, sets
//! each stream up, runs the stream tasks and feeds their output to the sink.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::Value;
use sf_auth::Session;
use sf_discovery::{
    describe_objects, Catalog, DescribeStream, DiscoveryOptions, ObjectDescribe, Record,
    StreamCriteria,
};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::catalog::{ConfiguredCatalog, ConfiguredStream, SyncMode};
use crate::classify::{advice, discovery_failure};
use crate::config::SyncConfig;
use crate::error::{Error, Failure};
use crate::options::ReadOptions;
use crate::planner::ApiConstraint;
use crate::sink::{IncompleteReason, LogLevel, Sink, StreamStatus, StreamSummary, SyncSummary};
use crate::state::{InputState, StreamState};
use crate::stream::{
    parent_filter, run_stream, Job, Mode, Msg, Outcome, Shared, StreamSetup, SLICE_BATCH_SIZE,
};
use crate::window::WindowParams;

/// Proves that the credentials work and the org's API answers: one describeGlobal call.
///
/// Logs nothing itself; the caller built the session from [`SyncConfig::session_config`].
pub async fn check(session: &Session, _config: &SyncConfig) -> Result<(), Error> {
    match sf_discovery::describe_global(session).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let failure = discovery_failure(&e);
            Err(Error::CheckRequest {
                error_code: e.error_code().map(str::to_string),
                message: format!("{e}; {}", advice(failure)),
                failure,
            })
        }
    }
}

/// Discovers the org's streams, keeping the objects `streams_criteria` selects: describeGlobal
/// and one `composite` call per 25 objects.
pub async fn discover(session: &Session, config: &SyncConfig) -> Result<Catalog, Error> {
    // An object the org lists but will not describe for this user is left out with a warning in
    // the catalog rather than failing discovery.
    let options = DiscoveryOptions {
        streams_criteria: StreamCriteria(config.streams_criteria.clone()),
        skip_inaccessible: true,
        ..DiscoveryOptions::default()
    };
    sf_discovery::discover(session, &options)
        .await
        .map_err(|e| {
            let failure = discovery_failure(&e);
            Error::DiscoverRequest {
                error_code: e.error_code().map(str::to_string),
                message: format!("{e}; {}", advice(failure)),
                failure,
            }
        })
}

/// Reads the configured catalog into `sink`, resuming from `state`, with the default
/// [`ReadOptions`].
///
/// Returns `Ok` when every stream finished, or when the sync stopped early at the daily API limit
/// or the `api_budget` (or was cancelled): the summary names the streams cut short and why, and
/// the state emitted lets the next sync resume. Returns `Err` when a stream failed (after the
/// other streams ran and everything they read was emitted, with the summary) or the sink refused
/// a message.
pub async fn read(
    session: &Session,
    config: &SyncConfig,
    catalog: &ConfiguredCatalog,
    state: &InputState,
    sink: &mut dyn Sink,
    cancel: CancellationToken,
) -> Result<SyncSummary, Error> {
    read_with(
        session,
        config,
        catalog,
        state,
        sink,
        cancel,
        &ReadOptions::default(),
    )
    .await
}

/// [`read`] with explicit engine options.
pub async fn read_with(
    session: &Session,
    config: &SyncConfig,
    catalog: &ConfiguredCatalog,
    state: &InputState,
    sink: &mut dyn Sink,
    cancel: CancellationToken,
    options: &ReadOptions,
) -> Result<SyncSummary, Error> {
    options.validate()?;
    // The session counts every API request it sends (retries included), whatever the org's
    // usage figure says about other clients: the change over this read is what it cost.
    let requests_before = session.request_count();
    let objects: Vec<String> = catalog
        .streams
        .iter()
        .filter(|s| s.name != DescribeStream::NAME)
        .map(|s| s.name.clone())
        .collect();
    let keep_describes = catalog.get(DescribeStream::NAME).is_some();
    let described = describe_catalog(session, &objects, keep_describes).await?;
    let params = WindowParams::new(config, session.org_now());
    let org_id = session.org_id();

    let mut jobs = Vec::with_capacity(catalog.streams.len());
    for configured in &catalog.streams {
        let (job, notes) = job_for(configured, &described, state, config, org_id.as_deref());
        for (level, message) in notes {
            sink.log(level, &message).await?;
        }
        jobs.push((configured.name.clone(), job));
    }

    let child = cancel.child_token();
    let (batch_max, slots) = channel_shape(options.channel_capacity);
    let (tx, mut rx) = mpsc::channel::<Msg>(slots);
    let shared = Arc::new(Shared::new(
        session.clone(),
        options.clone(),
        params,
        tx,
        batch_max,
        child.clone(),
        described.limit.clone(),
    )?);
    let names: Vec<Arc<str>> = jobs.iter().map(|(n, _)| Arc::from(n.as_str())).collect();
    let permits = Arc::new(Semaphore::new(config.num_workers.max(1)));
    let mut handles = Vec::with_capacity(jobs.len());
    // Streams start in catalog order: each task asks for its permit once the one before it has
    // its own (tasks are polled in no particular order).
    let mut turn: Option<oneshot::Receiver<()>> = None;
    for (idx, (_, job)) in jobs.into_iter().enumerate() {
        let shared = shared.clone();
        let permits = permits.clone();
        let name = names[idx].clone();
        let sync_mode = job.sync_mode();
        let (next, next_turn) = oneshot::channel();
        let my_turn = turn.replace(next_turn);
        handles.push((
            sync_mode,
            tokio::spawn(async move {
                if let Some(my_turn) = my_turn {
                    // An error means the task before ended without a permit: go on.
                    let _ = my_turn.await;
                }
                // A closed semaphore never happens here; without a permit the stream still runs.
                let _permit = permits.acquire_owned().await.ok();
                let _ = next.send(());
                run_stream(shared, idx, name, job).await
            }),
        ));
    }
    drop(shared);

    let mut running = vec![false; names.len()];
    let mut sink_error = None;
    while let Some(msg) = rx.recv().await {
        if let Err(e) = deliver(sink, &names, &mut running, msg).await {
            sink_error = Some(e);
            break;
        }
    }
    if sink_error.is_some() {
        child.cancel();
        drop(rx);
    }

    let mut streams = Vec::with_capacity(handles.len());
    let mut first_error = None;
    for (idx, (sync_mode, handle)) in handles.into_iter().enumerate() {
        let outcome = match handle.await {
            Ok(outcome) => outcome,
            Err(join) => {
                let error = Error::StreamRead {
                    stream: names[idx].to_string(),
                    api: crate::planner::Api::Bulk,
                    window: None,
                    error_code: None,
                    message: format!("the stream's task ended abnormally: {join}"),
                    failure: Failure::System,
                };
                Outcome {
                    summary: StreamSummary {
                        stream: names[idx].to_string(),
                        sync_mode,
                        api: None,
                        records: 0,
                        windows: 0,
                        status: StreamStatus::Incomplete(IncompleteReason::Failed {
                            message: error.to_string(),
                        }),
                    },
                    error: Some(error),
                }
            }
        };
        if first_error.is_none() {
            first_error = outcome.error;
        }
        streams.push(outcome.summary);
    }
    if let Some(e) = sink_error {
        return Err(e);
    }
    let api_requests = Some(session.request_count().saturating_sub(requests_before));
    let summary = SyncSummary {
        streams,
        api_requests,
    };
    sink.summary(&summary).await?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Records per batch and messages in the channel for a bound of `capacity` records queued: a
/// batch is a quarter of the bound (at most [`BATCH_MAX`]), so a few batches are in flight while
/// the sink writes one.
fn channel_shape(capacity: usize) -> (usize, usize) {
    let capacity = capacity.max(1);
    let batch = (capacity / 4).clamp(1, BATCH_MAX);
    (batch, (capacity / batch).max(1))
}

/// The most records sent in one message to the sink's consumer.
const BATCH_MAX: usize = 1024;

/// Passes one message to the sink, with a `Running` status before a stream's first output.
async fn deliver(
    sink: &mut dyn Sink,
    names: &[Arc<str>],
    running: &mut [bool],
    msg: Msg,
) -> Result<(), Error> {
    let mut first_output = |idx: usize| -> Option<&str> {
        let name = names.get(idx)?;
        let flag = running.get_mut(idx)?;
        if *flag {
            None
        } else {
            *flag = true;
            Some(name)
        }
    };
    match msg {
        Msg::Records(idx, records) => {
            if let Some(name) = first_output(idx) {
                sink.status(name, StreamStatus::Running).await?;
            }
            let name = name_of(names, idx);
            for record in records {
                sink.record(name, record).await?;
            }
            Ok(())
        }
        Msg::State(idx, state) => {
            if let Some(name) = first_output(idx) {
                sink.status(name, StreamStatus::Running).await?;
            }
            sink.state(name_of(names, idx), state).await
        }
        Msg::Log(level, message) => sink.log(level, &message).await,
        Msg::Status(idx, status) => sink.status(name_of(names, idx), status).await,
    }
}

fn name_of(names: &[Arc<str>], idx: usize) -> &str {
    names.get(idx).map_or("", |n| n.as_ref())
}

/// What describing the catalog's objects gave.
struct Described {
    /// By lower-cased name.
    found: HashMap<String, ObjectDescribe>,
    /// Objects the org does not have or does not let this user query, with why.
    unknown: HashMap<String, String>,
    /// Objects whose describe failed otherwise.
    failed: HashMap<String, Error>,
    /// Set when the daily limit stopped the describes.
    limit: Option<String>,
}

/// True for an sObject API name: an ASCII letter, then letters, digits and `_`.
fn valid_object_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Describes the named objects; the describes themselves are kept only for the `Describe` stream.
async fn describe_catalog(
    session: &Session,
    names: &[String],
    keep_describes: bool,
) -> Result<Described, Error> {
    let mut out = Described {
        found: HashMap::new(),
        unknown: HashMap::new(),
        failed: HashMap::new(),
        limit: None,
    };
    let mut valid = Vec::with_capacity(names.len());
    for name in names {
        if valid_object_name(name) {
            valid.push(name.clone());
        } else {
            out.unknown.insert(
                name.to_ascii_lowercase(),
                "not a valid object API name: letters, digits and `_` only".to_string(),
            );
        }
    }
    if valid.is_empty() {
        return Ok(out);
    }
    let options = DiscoveryOptions::default();
    let stream = describe_objects(session, valid, &options).map_err(|e| {
        let failure = discovery_failure(&e);
        Error::DescribeRequest {
            error_code: e.error_code().map(str::to_string),
            message: format!("{e}; {}", advice(failure)),
            failure,
        }
    })?;
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(mut described) => {
                if !keep_describes {
                    described.describe = Value::Null;
                }
                out.found
                    .insert(described.stream.name.to_ascii_lowercase(), described);
            }
            Err(e) if e.kind() == sf_auth::ErrorKind::DailyLimitExceeded => {
                out.limit = Some(e.to_string());
            }
            Err(e) => match e.object().map(str::to_ascii_lowercase) {
                Some(object) if e.is_inaccessible() => {
                    out.unknown.insert(object, e.to_string());
                }
                Some(object) => {
                    let failure = discovery_failure(&e);
                    out.failed.insert(
                        object,
                        Error::DescribeRequest {
                            error_code: e.error_code().map(str::to_string),
                            message: format!("{e}; {}", advice(failure)),
                            failure,
                        },
                    );
                }
                None => {
                    let failure = discovery_failure(&e);
                    return Err(Error::DescribeRequest {
                        error_code: e.error_code().map(str::to_string),
                        message: format!("{e}; {}", advice(failure)),
                        failure,
                    });
                }
            },
        }
    }
    Ok(out)
}

/// What one configured stream will do, and what to log about the decision.
fn job_for(
    configured: &ConfiguredStream,
    described: &Described,
    state: &InputState,
    config: &SyncConfig,
    org_id: Option<&str>,
) -> (Job, Vec<(LogLevel, String)>) {
    let mut notes = Vec::new();
    if configured.name == DescribeStream::NAME {
        let mut records: Vec<Record> = described
            .found
            .values()
            .filter_map(|d| describe_record(&d.describe))
            .collect();
        records.sort_by(|a, b| {
            let name = |r: &Record| r.get("name").and_then(Value::as_str).map(str::to_string);
            name(a).cmp(&name(b))
        });
        return (Job::Describe { records }, notes);
    }
    let key = configured.name.to_ascii_lowercase();
    if let Some(detail) = &described.limit {
        if !described.found.contains_key(&key) {
            return (
                Job::Limited {
                    detail: detail.clone(),
                    sync_mode: configured.sync_mode,
                },
                notes,
            );
        }
    }
    if let Some(reason) = described.unknown.get(&key) {
        return (
            Job::Failed {
                error: Error::StreamUnknown {
                    stream: configured.name.clone(),
                    reason: reason.clone(),
                },
                sync_mode: configured.sync_mode,
            },
            notes,
        );
    }
    if let Some(error) = described.failed.get(&key) {
        return (
            Job::Failed {
                error: error.clone(),
                sync_mode: configured.sync_mode,
            },
            notes,
        );
    }
    let Some(object) = described.found.get(&key) else {
        return (
            Job::Failed {
                error: Error::StreamUnknown {
                    stream: configured.name.clone(),
                    reason: "its describe did not come back".to_string(),
                },
                sync_mode: configured.sync_mode,
            },
            notes,
        );
    };
    match setup(configured, object, state, config, org_id, &mut notes) {
        Ok(setup) => (Job::Object(Box::new(setup)), notes),
        Err(error) => (
            Job::Failed {
                error,
                sync_mode: configured.sync_mode,
            },
            notes,
        ),
    }
}

/// The `Describe` stream's record of one object: its describe, key by key.
fn describe_record(describe: &Value) -> Option<Record> {
    let map = describe.as_object()?;
    let (columns, values): (Vec<String>, Vec<Value>) =
        map.iter().map(|(k, v)| (k.clone(), v.clone())).unzip();
    Some(Record {
        columns: Arc::from(columns),
        values,
    })
}

/// Decides the columns, the API constraint and the mode of an object stream. An incremental
/// state names `org_id` (the session's org) from here on; one that names another org fails the
/// stream.
fn setup(
    configured: &ConfiguredStream,
    object: &ObjectDescribe,
    input: &InputState,
    config: &SyncConfig,
    org_id: Option<&str>,
    notes: &mut Vec<(LogLevel, String)>,
) -> Result<StreamSetup, Error> {
    let spec = &object.stream;
    let name = &configured.name;
    if let Some(selected) = &configured.selected_fields {
        let missing: Vec<String> = selected
            .iter()
            .filter(|f| spec.field(f).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Error::StreamFieldsMissing {
                stream: name.clone(),
                fields: missing,
            });
        }
    }
    let cursor = spec.cursor_field.clone();
    let always = |field: &str| {
        field.eq_ignore_ascii_case("Id")
            || cursor
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(field))
            || (spec.has_is_deleted && field.eq_ignore_ascii_case("IsDeleted"))
    };
    let mut columns: Vec<String> = spec
        .fields
        .iter()
        .filter(|f| configured.selects(&f.name) || always(&f.name))
        .map(|f| f.name.clone())
        .collect();
    let unservable: Vec<String> = columns
        .iter()
        .filter(|c| {
            spec.field(c)
                .is_some_and(|f| f.field_type.bulk_unservable())
        })
        .cloned()
        .collect();
    let parent = parent_filter(&spec.name);
    let constraint = if let Some(filter) = parent {
        notes.push((
            LogLevel::Info,
            format!(
                "{name}: read through REST: Salesforce serves it only filtered by {}, so it is \
                 read by batches of {SLICE_BATCH_SIZE} ids of its parent {}",
                filter.key, filter.parent
            ),
        ));
        ApiConstraint::RestOnly
    } else if sf_rest::is_bulk_unsupported(&spec.name) {
        notes.push((
            LogLevel::Info,
            format!("{name}: read through REST: the Bulk API does not serve this object"),
        ));
        ApiConstraint::RestOnly
    } else if !unservable.is_empty() && !config.force_use_bulk_api {
        notes.push((
            LogLevel::Info,
            format!(
                "{name}: read through REST: the Bulk API cannot select {} (base64 or compound); \
                 set force_use_bulk_api to read it through Bulk without them",
                quoted(&unservable)
            ),
        ));
        ApiConstraint::RestOnly
    } else if config.force_use_bulk_api {
        if !unservable.is_empty() {
            columns.retain(|c| !unservable.contains(c));
            notes.push((
                LogLevel::Warn,
                format!(
                    "{name}: force_use_bulk_api is set: {} (base64 or compound, which the Bulk \
                     API cannot select) are left out of its records",
                    quoted(&unservable)
                ),
            ));
        }
        ApiConstraint::BulkOnly
    } else {
        ApiConstraint::Any
    };
    let mode = match (configured.sync_mode, &cursor) {
        (SyncMode::Incremental, Some(cursor)) if spec.supports_incremental => {
            let state = match input.get(name) {
                Some(saved) => {
                    saved.check_org(name, org_id)?;
                    saved.clone().resolve(name, cursor, config.start_date)?
                }
                None => StreamState::new(),
            };
            // A session that cannot tell its org keeps the org the state names, if any.
            let state = match org_id {
                Some(id) => state.with_org_id(Some(id.to_string())),
                None => state,
            };
            Mode::Incremental {
                cursor: cursor.clone(),
                state,
            }
        }
        (SyncMode::Incremental, _) => {
            notes.push((
                LogLevel::Warn,
                format!(
                    "{name}: asked for incremental, but the object {}: it is read in full \
                     (full refresh)",
                    if cursor.is_none() {
                        "has no cursor field (SystemModstamp, LastModifiedDate, CreatedDate or \
                         LoginTime)"
                    } else {
                        "does not allow filtering on its cursor"
                    }
                ),
            ));
            Mode::Full
        }
        (SyncMode::FullRefresh, _) => Mode::Full,
    };
    Ok(StreamSetup {
        spec: spec.clone(),
        columns,
        constraint,
        mode,
        parent,
    })
}

fn quoted(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_bounds_records_not_messages() {
        // The default: 4 batches of 256 records.
        assert_eq!(
            channel_shape(ReadOptions::default().channel_capacity),
            (256, 4)
        );
        assert_eq!(channel_shape(4096), (1024, 4));
        // Small bounds as tests use them: one record per message, as many slots as records.
        assert_eq!(channel_shape(2), (1, 2));
        assert_eq!(channel_shape(8), (2, 4));
        assert_eq!(channel_shape(0), (1, 1));
        // Large bounds keep batches at 1,024 and add slots.
        assert_eq!(channel_shape(100_000), (1024, 97));
        for capacity in 1..5000 {
            let (batch, slots) = channel_shape(capacity);
            assert!(batch * slots <= capacity.max(1), "{capacity}");
            assert!((1..=BATCH_MAX).contains(&batch));
        }
    }
}
