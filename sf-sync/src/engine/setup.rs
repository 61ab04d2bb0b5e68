//! Setting streams up before they run: describing the catalog's objects, then per configured
//! stream its job (the `Describe` stream's records, an object's columns, API constraint and
//! mode, or why it cannot run) and the notes to log about it.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::value::RawValue;
use serde_json::Value;
use sf_auth::Session;
use sf_discovery::{
    describe_objects, DescribeStream, DiscoveryOptions, FieldType, ObjectDescribe, Record,
};

use crate::catalog::{ConfiguredStream, SyncMode};
use crate::compound::Compounds;
use crate::config::SyncConfig;
use crate::error::{Error, Failure};
use crate::planner::ApiConstraint;
use crate::sink::{LogLevel, LIMIT_MET_FIRST};
use crate::state::{InputState, StreamState};
use crate::stream::{parent_filter, Job, Mode, StreamSetup, SLICE_BATCH_SIZE};

/// What describing the catalog's objects gave.
pub(super) struct Described {
    /// By lower-cased name.
    found: HashMap<String, ObjectDescribe>,
    /// Objects the org does not have or does not let this user query, with why.
    unknown: HashMap<String, String>,
    /// Objects whose describe failed otherwise.
    failed: HashMap<String, Error>,
    /// Set when the daily limit stopped the describes.
    pub(super) limit: Option<String>,
}

/// Describes the named objects; the describes themselves are kept only for the `Describe` stream.
pub(super) async fn describe_catalog(
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
        if sf_discovery::is_valid_object_name(name) {
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
    let options = DiscoveryOptions {
        keep_describes,
        ..DiscoveryOptions::default()
    };
    let stream = describe_objects(session, valid, &options).map_err(|e| {
        let failure = Failure::of(e.kind());
        Error::DescribeRequest {
            error_code: e.error_code().map(str::to_string),
            message: e.to_string(),
            failure,
        }
    })?;
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(mut described) => {
                if !keep_describes {
                    described.describe = None;
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
                    let failure = Failure::of(e.kind());
                    out.failed.insert(
                        object,
                        Error::DescribeRequest {
                            error_code: e.error_code().map(str::to_string),
                            message: e.to_string(),
                            failure,
                        },
                    );
                }
                None => {
                    let failure = Failure::of(e.kind());
                    return Err(Error::DescribeRequest {
                        error_code: e.error_code().map(str::to_string),
                        message: e.to_string(),
                        failure,
                    });
                }
            },
        }
    }
    Ok(out)
}

/// The `Describe` stream's describes, one per object described, by name, as the raw JSON text
/// Salesforce sent (its size once; each becomes a record only as it is emitted), moved out of
/// `described` (held once, not twice, for the whole read).
pub(super) fn take_describe_records(described: &mut Described) -> Vec<Box<RawValue>> {
    let mut named: Vec<(String, Box<RawValue>)> = described
        .found
        .values_mut()
        .filter_map(|d| Some((d.stream.name.clone(), d.describe.take()?)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.into_iter().map(|(_, raw)| raw).collect()
}

/// What one configured stream will do, and what to log about the decision. The `Describe`
/// stream takes `describe_records` (see [`take_describe_records`]).
pub(super) fn job_for(
    configured: &ConfiguredStream,
    described: &Described,
    describe_records: &mut Option<Vec<Box<RawValue>>>,
    state: &InputState,
    config: &SyncConfig,
    org_id: Option<&str>,
) -> (Job, Vec<(LogLevel, String)>) {
    let mut notes = Vec::new();
    let sync_mode = configured.sync_mode;
    if configured.name == DescribeStream::NAME {
        // Describes cut short by the daily limit (or the budget) would make a table of some
        // objects only, which an overwriting destination would take for the whole: the stream
        // is left for the next sync, as every stream not described is.
        if let Some(detail) = &described.limit {
            return (
                Job::Limited {
                    detail: format!("{LIMIT_MET_FIRST}{detail}"),
                    sync_mode,
                },
                notes,
            );
        }
        let records = describe_records.take().unwrap_or_default();
        return (Job::Describe { records }, notes);
    }
    let failed = |error: Error| Job::Failed { error, sync_mode };
    let unknown = |reason: String| {
        failed(Error::StreamUnknown {
            stream: configured.name.clone(),
            reason,
        })
    };
    let key = configured.name.to_ascii_lowercase();
    let object = described.found.get(&key);
    // A stream whose describe failed for its own reason says so, even when the daily limit
    // came too: "limited" would hide a wrong name or a refused access until a later sync.
    let job = if let Some(reason) = described.unknown.get(&key) {
        unknown(reason.clone())
    } else if let Some(error) = described.failed.get(&key) {
        failed(error.clone())
    } else if let (None, Some(detail)) = (object, &described.limit) {
        Job::Limited {
            detail: format!("{LIMIT_MET_FIRST}{detail}"),
            sync_mode,
        }
    } else if let Some(object) = object {
        match setup(configured, object, state, config, org_id, &mut notes) {
            Ok(setup) => Job::Object(Box::new(setup)),
            Err(error) => failed(error),
        }
    } else {
        unknown("its describe did not come back".to_string())
    };
    (job, notes)
}

/// The WARN of a read whose config left `start_date` out while some incremental streams start
/// without a state: their first sync reads from the default (two years back, as Airbyte's
/// connector does), so older rows are not read until the user sets an earlier `start_date`
/// (a later sync then reads the gap back to it). `None` when the config set it or every
/// incremental stream continues a state.
pub(super) fn default_start_note(jobs: &[(String, Job)], config: &SyncConfig) -> Option<String> {
    if config.start_date_set {
        return None;
    }
    let first: Vec<&str> = jobs
        .iter()
        .filter(|(_, job)| match job {
            Job::Object(setup) => matches!(
                &setup.mode,
                Mode::Incremental { state, .. } if state.is_empty() && state.jobs().is_empty()
            ),
            _ => false,
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if first.is_empty() {
        return None;
    }
    let names = crate::sink::name_list(&first, 10);
    Some(format!(
        "start_date is not set, so the first incremental sync of {} ({names}) reads rows last \
         changed from {} on (the default: {} years back, as Airbyte's connector does); rows \
         changed before then are not read until start_date is set earlier (e.g. \
         `2000-01-01T00:00:00Z`; a later sync then reads back to it)",
        if first.len() == 1 {
            "1 stream".to_string()
        } else {
            format!("{} streams", first.len())
        },
        crate::time::format_instant(config.start_date),
        crate::config::DEFAULT_START_DATE_YEARS,
    ))
}

/// The INFO of a config that sets `stream_slice_step` (to other than the default): Airbyte's
/// connector cuts every incremental read into windows that long, while here it sizes windows
/// only where the volume is unknown (counted volumes are cut by rows, and a query that times
/// out is read again in halves), so a user who set it to dodge timeouts is told what it does.
pub(super) fn slice_step_note(
    config: &SyncConfig,
    planner: &crate::planner::PlannerConfig,
) -> Option<String> {
    let default: crate::IsoDuration = crate::config::DEFAULT_STREAM_SLICE_STEP.parse().ok()?;
    if config.stream_slice_step.as_std() == default.as_std() {
        return None;
    }
    Some(format!(
        "stream_slice_step is {}: incremental windows are that long only for objects whose \
         volume is unknown; where a SELECT COUNT() tells it, windows are sized by rows (up to {} \
         through REST, {} a Bulk job), and a query that times out is read again in halves",
        config.stream_slice_step, planner.rest_rows_per_window, planner.bulk_rows_per_window
    ))
}

/// The `Describe` stream's record of one object: its describe, key by key.
pub(crate) fn describe_record(describe: &RawValue) -> Option<Record> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(describe.get()) else {
        return None;
    };
    let (columns, values): (Vec<String>, Vec<Value>) = map.into_iter().unzip();
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
    let drift = crate::drift::reconcile(configured, spec, notes)?;
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
    // What keeps the stream off Bulk: base64 fields, and compound fields whose components
    // cannot be selected instead (the others are, when Bulk reads the stream).
    let refused = match Compounds::plan(spec, &columns) {
        Err(refused) => refused,
        Ok(_) => Vec::new(),
    };
    let unservable: Vec<String> = columns
        .iter()
        .filter(|c| {
            spec.field(c).is_some_and(|f| {
                f.field_type.bulk_unservable()
                    && (!matches!(f.field_type, FieldType::Address | FieldType::Location)
                        || refused.contains(c))
            })
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
    } else if sf_discovery::ObjectKind::of(&spec.name).rest_only() {
        notes.push((
            LogLevel::Info,
            format!(
                "{name}: read through REST: the Bulk API does not query a {}",
                sf_discovery::ObjectKind::of(&spec.name).label()
            ),
        ));
        ApiConstraint::RestOnly
    } else if sf_bulk::is_bulk_unsupported(&spec.name) {
        notes.push((
            LogLevel::Info,
            format!("{name}: read through REST: the Bulk API does not serve this object"),
        ));
        ApiConstraint::RestOnly
    } else if !unservable.is_empty() && !config.force_use_bulk_api {
        notes.push((
            LogLevel::Info,
            format!(
                "{name}: read through REST: the Bulk API cannot select {} (base64, or compound \
                 without components it can select); set force_use_bulk_api to read it through \
                 Bulk without them",
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
                    "{name}: force_use_bulk_api is set: {} (base64, or compound without \
                     components, which the Bulk API cannot select) are left out of its records",
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
            // An incremental stream's state that could not be read fails the stream: the file
            // given for it is wrong, and saying so beats guessing where to resume.
            if let Some(refused) = input.refused(name) {
                return Err(refused);
            }
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
            }
            .with_floor(config.start_date);
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
    // A stream read in full reads no state, as Airbyte's full-refresh streams ignore theirs (a
    // leftover of an earlier incremental setup, a page token of the Python CDK's resumable full
    // refresh): one the file holds for it and that cannot be read is said, not refused.
    if let (Mode::Full, Some(refused)) = (&mode, input.refused(name)) {
        notes.push((
            LogLevel::Info,
            format!("{name}: read in full, so its state in the state file is not used ({refused})"),
        ));
    }
    // Compound fields left in the columns are read through Bulk as their components.
    let compounds = match constraint {
        ApiConstraint::RestOnly => None,
        _ => Compounds::plan(spec, &columns).ok().flatten().map(Arc::new),
    };
    Ok(StreamSetup {
        spec: spec.clone(),
        columns,
        constraint,
        compounds,
        mode,
        parent,
        drift,
        replicateable: object.replicateable,
    })
}

fn quoted(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
