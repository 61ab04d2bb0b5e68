//! Per-stream state: the forms Airbyte's connector writes, migration, merging, and the one form
//! this engine writes.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::config::json_kind;
use crate::error::Error;
use crate::time::{format_instant, parse_instant};

mod input;
mod jobs;
mod refresh;
pub use refresh::RefreshProgress;

pub use input::InputState;
pub use jobs::{query_hash, JobCheckpoint};

/// The `state_type` of Airbyte's concurrent cursor state.
const DATE_RANGE: &str = "date-range";
/// The key Airbyte's final-state cursor writes for a full-refresh stream.
const NO_CURSOR_KEY: &str = "__ab_no_cursor_state_message";
/// The key of a date-range state naming the org it was read from.
const ORG_ID_KEY: &str = "org_id";

/// A span of cursor values already read completely, half-open `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSlice {
    /// Inclusive lower bound.
    pub start: DateTime<Utc>,
    /// Exclusive upper bound.
    pub end: DateTime<Utc>,
    /// The largest cursor value seen in the span, if a record was seen.
    pub most_recent_cursor_value: Option<DateTime<Utc>>,
}

impl StateSlice {
    /// A slice without a cursor value.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> StateSlice {
        StateSlice {
            start,
            end,
            most_recent_cursor_value: None,
        }
    }

    fn to_json(self) -> Value {
        let mut obj = Map::new();
        obj.insert("start".into(), Value::String(format_instant(self.start)));
        obj.insert("end".into(), Value::String(format_instant(self.end)));
        if let Some(v) = self.most_recent_cursor_value {
            obj.insert(
                "most_recent_cursor_value".into(),
                Value::String(format_instant(v)),
            );
        }
        Value::Object(obj)
    }
}

/// A stream's incremental state: the spans read so far, merged.
///
/// Invariants, kept by every constructor: each slice has `start < end`; slices are sorted; two
/// slices never overlap or touch (`next.start > prev.end`), because overlapping and adjacent
/// slices are merged, keeping the larger `most_recent_cursor_value`. Empty slices cover nothing
/// and are dropped.
///
/// A state this engine writes also names the org it was read from (`org_id`, 15 characters), so
/// a state file given to a sync of another org is refused rather than trusted; Airbyte's readers
/// ignore the extra key, and states without it (Airbyte's) are accepted.
///
/// It also names the Bulk jobs the stream had in flight ([`JobCheckpoint`], key `bulk_jobs`), so a
/// restarted sync continues them; Airbyte's readers ignore that key too. And, for a stream with
/// formula fields synced with `formula_refresh`, when it was last read whole
/// (`formula_refreshed_at`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamState {
    slices: Vec<StateSlice>,
    org_id: Option<String>,
    jobs: Vec<JobCheckpoint>,
    formula_refreshed_at: Option<DateTime<Utc>>,
    /// Hard deletes from here on are not known yet (`refresh.rs`).
    deletes_unknown_from: Option<DateTime<Utc>>,
    /// Deletes before here concern no record the destination holds (`refresh.rs`).
    deletes_known_to: Option<DateTime<Utc>>,
    /// A formula refresh under way (`refresh.rs`).
    refresh_progress: Option<refresh::RefreshProgress>,
    /// Where this sync reads from (`start_date`): the placeholder slice of a state written
    /// before any span is read (see [`StreamState::to_json`]). Not read back.
    floor: Option<DateTime<Utc>>,
}

impl StreamState {
    /// No span read yet.
    pub fn new() -> StreamState {
        StreamState::default()
    }

    /// The merged state of any slices.
    pub fn from_slices(slices: impl IntoIterator<Item = StateSlice>) -> StreamState {
        let mut slices: Vec<StateSlice> = slices.into_iter().filter(|s| s.start < s.end).collect();
        slices.sort_by_key(|s| (s.start, s.end));
        let mut merged: Vec<StateSlice> = Vec::with_capacity(slices.len());
        for slice in slices {
            match merged.last_mut() {
                Some(last) if slice.start <= last.end => {
                    last.end = last.end.max(slice.end);
                    last.most_recent_cursor_value = last
                        .most_recent_cursor_value
                        .max(slice.most_recent_cursor_value);
                }
                _ => merged.push(slice),
            }
        }
        StreamState {
            slices: merged,
            ..StreamState::default()
        }
    }

    /// The same state, knowing where the sync reads from (`start_date`), for the placeholder
    /// slice [`StreamState::to_json`] writes while no span is read.
    pub fn with_floor(mut self, floor: DateTime<Utc>) -> StreamState {
        self.floor = Some(floor);
        self
    }

    /// The same state, naming the org it belongs to.
    pub fn with_org_id(mut self, org_id: Option<String>) -> StreamState {
        self.org_id = org_id;
        self
    }

    /// The same state, naming the Bulk jobs in flight (sorted by window).
    pub fn with_jobs(mut self, mut jobs: Vec<JobCheckpoint>) -> StreamState {
        jobs.sort_by_key(|j| (j.start, j.end));
        self.jobs = jobs;
        self
    }

    /// The Bulk jobs in flight when the state was written, by window.
    pub fn jobs(&self) -> &[JobCheckpoint] {
        &self.jobs
    }

    /// Replaces the Bulk jobs in flight.
    pub(crate) fn set_jobs(&mut self, jobs: Vec<JobCheckpoint>) {
        let state = std::mem::take(self);
        *self = state.with_jobs(jobs);
    }

    /// The same state, naming when its formula fields were last read whole.
    pub fn with_formula_refreshed_at(mut self, at: Option<DateTime<Utc>>) -> StreamState {
        self.formula_refreshed_at = at;
        self
    }

    /// When the stream was last read whole to refresh its formula fields (`formula_refresh`).
    pub fn formula_refreshed_at(&self) -> Option<DateTime<Utc>> {
        self.formula_refreshed_at
    }

    /// The org the state was read from, when it names one.
    pub fn org_id(&self) -> Option<&str> {
        self.org_id.as_deref()
    }

    /// Records that `slice` has been read completely (and its records emitted).
    pub fn add(&mut self, slice: StateSlice) {
        if slice.start >= slice.end {
            return;
        }
        let slices = std::mem::take(&mut self.slices);
        self.slices = StreamState::from_slices(slices.into_iter().chain(Some(slice))).slices;
    }

    /// Goes back to `slices` (as [`StreamState::slices`] gave them earlier): what was added
    /// since is no longer covered.
    pub(crate) fn set_slices(&mut self, slices: Vec<StateSlice>) {
        self.slices = slices;
    }

    /// The latest end of a slice after `now`, if any: a state edited by hand, or written by a
    /// tool whose clock ran ahead (this engine's windows end at the org's clock). Such a state
    /// is trusted as Airbyte's connector trusts it (nothing up to that end is read again), and
    /// the caller says so.
    pub fn ends_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.slices
            .iter()
            .map(|s| s.end)
            .filter(|end| *end > now)
            .max()
    }

    /// The merged slices, sorted.
    pub fn slices(&self) -> &[StateSlice] {
        &self.slices
    }

    /// True when nothing has been read.
    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }

    /// True when `t` lies in a slice.
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.slices.iter().any(|s| s.start <= t && t < s.end)
    }

    /// The largest cursor value seen in any slice.
    pub fn most_recent_cursor_value(&self) -> Option<DateTime<Utc>> {
        self.slices
            .iter()
            .filter_map(|s| s.most_recent_cursor_value)
            .max()
    }

    /// Airbyte's date-range form:
    /// `{"state_type": "date-range", "slices": [{"start", "end", "most_recent_cursor_value"?}]}`,
    /// instants as `YYYY-MM-DDTHH:MM:SS.sssZ`, plus `"org_id"` when the state names its org and
    /// `"bulk_jobs"` when Bulk jobs are in flight.
    ///
    /// A state written before any span is read (naming the Bulk jobs in flight, or cut short)
    /// holds, once its start is known (the engine always gives it), one empty slice, `start` = `end` = `most_recent_cursor_value` = where the sync reads
    /// from (the `start_date` given by [`StreamState::with_floor`], else the earliest job's
    /// start), never `"slices": []`: Airbyte's concurrent cursor reads `slices[0]` of any
    /// date-range state, and fails the stream on an empty list, at every later sync too (seen with
    /// airbyte-cdk 7.39.1). It writes the same placeholder itself when it converts a state that
    /// covers nothing; an empty slice covers nothing here either, and is dropped when read.
    pub fn to_json(&self) -> Value {
        let placeholder = || {
            let at = self
                .floor
                .or_else(|| self.jobs.iter().map(|j| j.start).min())?;
            Some(vec![StateSlice {
                start: at,
                end: at,
                most_recent_cursor_value: Some(at),
            }
            .to_json()])
        };
        let slices = match self.slices.is_empty() {
            true => placeholder().unwrap_or_default(),
            false => self.slices.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        };
        let mut value = json!({
            "state_type": DATE_RANGE,
            "slices": slices,
        });
        if let Some(object) = value.as_object_mut() {
            if let Some(org_id) = &self.org_id {
                object.insert(ORG_ID_KEY.to_string(), Value::String(org_id.clone()));
            }
            for (key, at) in [
                (refresh::REFRESHED_KEY, self.formula_refreshed_at),
                (refresh::DELETES_KEY, self.deletes_unknown_from),
                (refresh::KNOWN_KEY, self.deletes_known_to),
                (refresh::BEGAN_KEY, self.refresh_progress.map(|p| p.began)),
                (
                    refresh::REACHED_KEY,
                    self.refresh_progress.map(|p| p.reached),
                ),
            ] {
                if let Some(at) = at {
                    object.insert(key.to_string(), Value::String(format_instant(at)));
                }
            }
            if !self.jobs.is_empty() {
                object.insert(
                    jobs::JOBS_KEY.to_string(),
                    Value::Array(self.jobs.iter().map(JobCheckpoint::to_json).collect()),
                );
            }
        }
        value
    }
}

/// The state of a full-refresh stream, as Airbyte writes it:
/// `{"__ab_no_cursor_state_message": true}`.
pub fn full_refresh_state() -> Value {
    json!({ NO_CURSOR_KEY: true })
}

/// One stream's state as given, before it is checked against the stream's cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedState {
    /// No state (`null`, `{}`).
    Empty,
    /// A full-refresh marker (`{"__ab_no_cursor_state_message": true}`): nothing to resume.
    NoCursor,
    /// Airbyte's sequential (legacy) form `{"SystemModstamp": "2021-10-02T05:08:29.000Z"}`.
    Legacy {
        /// The cursor field it was kept on.
        cursor_field: String,
        /// Everything up to this value was read.
        value: DateTime<Utc>,
    },
    /// Airbyte's concurrent form `{"state_type": "date-range", "slices": [...]}` (also this
    /// engine's).
    DateRange(StreamState),
}

impl SavedState {
    /// Reads one stream's `stream_state`; errors name `stream`.
    pub fn from_value(stream: &str, value: &Value) -> Result<SavedState, Error> {
        parse_stream_state(stream, value, "stream_state")
    }

    /// The org the state says it was read from (only this engine's date-range states say).
    pub fn org_id(&self) -> Option<&str> {
        match self {
            SavedState::DateRange(state) => state.org_id(),
            _ => None,
        }
    }

    /// Refuses a state that names another org than `session_org` (the org the config logs in
    /// to), with an error naming the stream and the fix. A state that names no org, or a
    /// session that cannot tell its org, passes.
    pub fn check_org(&self, stream: &str, session_org: Option<&str>) -> Result<(), Error> {
        match (self.org_id(), session_org) {
            (Some(state_org), Some(config_org)) if !same_org(state_org, config_org) => {
                Err(Error::StateOtherOrg {
                    stream: stream.to_string(),
                    state_org: state_org.to_string(),
                    config_org: config_org.to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The state to continue from, for a stream whose cursor is `cursor_field`.
    ///
    /// A legacy state migrates to one slice `[start_date, value)` with `value` as the most recent
    /// cursor value (Airbyte's migration); a legacy value at or before `start_date` covers nothing.
    /// A legacy state kept on another field than `cursor_field` is an error naming the stream.
    pub fn resolve(
        self,
        stream: &str,
        cursor_field: &str,
        start_date: DateTime<Utc>,
    ) -> Result<StreamState, Error> {
        match self {
            SavedState::Empty | SavedState::NoCursor => Ok(StreamState::new()),
            SavedState::DateRange(state) => Ok(state),
            SavedState::Legacy {
                cursor_field: field,
                value,
            } => {
                if !field.eq_ignore_ascii_case(cursor_field) {
                    return Err(Error::StateCursorMismatch {
                        stream: stream.to_string(),
                        state_field: field,
                        cursor_field: cursor_field.to_string(),
                    });
                }
                Ok(StreamState::from_slices([StateSlice {
                    start: start_date,
                    end: value,
                    most_recent_cursor_value: Some(value),
                }]))
            }
        }
    }
}

fn invalid(stream: &str, path: &str, reason: impl Into<String>) -> Error {
    Error::StateInvalid {
        stream: stream.to_string(),
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// True when two org ids name the same org: an 18-character id is the 15-character one (case
/// sensitive) plus a checksum suffix.
fn same_org(a: &str, b: &str) -> bool {
    let short = |id: &str| -> String {
        if id.len() == 18 && id.is_ascii() {
            id[..15].to_string()
        } else {
            id.to_string()
        }
    };
    short(a) == short(b)
}

fn parse_stream_state(stream: &str, value: &Value, path: &str) -> Result<SavedState, Error> {
    let obj = match value {
        Value::Null => return Ok(SavedState::Empty),
        Value::Object(obj) => obj,
        other => {
            return Err(invalid(
                stream,
                path,
                format!("expected an object, got {}", json_kind(other)),
            ))
        }
    };
    if obj.contains_key("state_type") || obj.contains_key("slices") {
        return parse_date_range(stream, obj, path).map(SavedState::DateRange);
    }
    if obj
        .get(NO_CURSOR_KEY)
        .is_some_and(|v| v.as_bool() == Some(true))
    {
        return Ok(SavedState::NoCursor);
    }
    let fields: Vec<(&String, &Value)> = obj
        .iter()
        .filter(|(k, v)| !k.starts_with("__ab_") && !v.is_null())
        .collect();
    match fields.as_slice() {
        [] => Ok(SavedState::Empty),
        [(field, value)] => {
            let at = format!("{path}.{field}");
            let text = value.as_str().ok_or_else(|| {
                invalid(
                    stream,
                    &at,
                    format!(
                        "a cursor value must be a datetime string, got {}",
                        json_kind(value)
                    ),
                )
            })?;
            let value = parse_instant(text).ok_or_else(|| {
                invalid(
                    stream,
                    &at,
                    format!("`{text}` is not a datetime such as `2021-10-02T05:08:29.000Z`"),
                )
            })?;
            Ok(SavedState::Legacy {
                cursor_field: (*field).clone(),
                value,
            })
        }
        several => Err(invalid(
            stream,
            path,
            format!(
                "a legacy state holds one cursor field, this one has {}: {}; expected e.g. \
                 {{\"SystemModstamp\": \"2021-10-02T05:08:29.000Z\"}} or the date-range form",
                several.len(),
                several
                    .iter()
                    .map(|(k, _)| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn parse_date_range(
    stream: &str,
    obj: &Map<String, Value>,
    path: &str,
) -> Result<StreamState, Error> {
    match obj.get("state_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == DATE_RANGE => {}
        Some(other) => {
            return Err(invalid(
                stream,
                &format!("{path}.state_type"),
                format!("{other} is not supported; expected \"{DATE_RANGE}\""),
            ))
        }
    }
    let org_id = match obj.get(ORG_ID_KEY) {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id.trim().to_string()),
        Some(other) => {
            return Err(invalid(
                stream,
                &format!("{path}.{ORG_ID_KEY}"),
                format!(
                    "expected the org's id such as \"00D000000000062\", got {}",
                    json_kind(other)
                ),
            ))
        }
    };
    let jobs = jobs::parse_jobs(stream, obj, path)?;
    let refreshed = refresh::parse_instant_at(stream, obj, path, refresh::REFRESHED_KEY)?;
    let deletes = refresh::parse_instant_at(stream, obj, path, refresh::DELETES_KEY)?;
    let known = refresh::parse_instant_at(stream, obj, path, refresh::KNOWN_KEY)?;
    let progress = refresh::parse_progress(stream, obj, path)?;
    let slices = match obj.get("slices") {
        None | Some(Value::Null) => {
            let mut state = StreamState::new()
                .with_org_id(org_id)
                .with_jobs(jobs)
                .with_formula_refreshed_at(refreshed);
            state.deletes_unknown_from = deletes;
            state.deletes_known_to = known;
            state.refresh_progress = progress;
            return Ok(state);
        }
        Some(Value::Array(slices)) => slices,
        Some(other) => {
            return Err(invalid(
                stream,
                &format!("{path}.slices"),
                format!(
                    "expected a list of {{\"start\", \"end\"}}, got {}",
                    json_kind(other)
                ),
            ))
        }
    };
    let mut parsed = Vec::with_capacity(slices.len());
    for (i, slice) in slices.iter().enumerate() {
        let at = format!("{path}.slices[{i}]");
        let instant = |key: &str, required: bool| -> Result<Option<DateTime<Utc>>, Error> {
            match slice.get(key) {
                None | Some(Value::Null) if !required => Ok(None),
                None | Some(Value::Null) => Err(invalid(stream, &format!("{at}.{key}"), "missing")),
                Some(Value::String(text)) => parse_instant(text).map(Some).ok_or_else(|| {
                    invalid(
                        stream,
                        &format!("{at}.{key}"),
                        format!("`{text}` is not a datetime such as `2023-01-01T00:00:00.000Z`"),
                    )
                }),
                Some(other) => Err(invalid(
                    stream,
                    &format!("{at}.{key}"),
                    format!("expected a datetime string, got {}", json_kind(other)),
                )),
            }
        };
        if !slice.is_object() {
            return Err(invalid(
                stream,
                &at,
                format!("expected {{\"start\", \"end\"}}, got {}", json_kind(slice)),
            ));
        }
        let (Some(start), Some(end)) = (instant("start", true)?, instant("end", true)?) else {
            return Err(invalid(stream, &at, "missing start or end"));
        };
        if end < start {
            return Err(invalid(
                stream,
                &at,
                format!(
                    "ends ({}) before it starts ({})",
                    format_instant(end),
                    format_instant(start)
                ),
            ));
        }
        parsed.push(StateSlice {
            start,
            end,
            most_recent_cursor_value: instant("most_recent_cursor_value", false)?,
        });
    }
    let mut state = StreamState::from_slices(parsed)
        .with_org_id(org_id)
        .with_jobs(jobs)
        .with_formula_refreshed_at(refreshed);
    state.deletes_unknown_from = deletes;
    state.deletes_known_to = known;
    state.refresh_progress = progress;
    Ok(state)
}

#[cfg(test)]
mod tests;
