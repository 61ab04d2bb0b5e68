//! Instants written beside `slices`, as `org_id` and `bulk_jobs` are (Airbyte's connector ignores
//! these keys):
//! - `formula_refreshed_at`: when a stream with formula fields was last read whole for
//!   `formula_refresh` (`stream/formulas.rs`);
//! - `formula_refresh_began`, `formula_refresh_reached`: a refresh cut short (the daily limit, a
//!   stop): when it began, and how far (a cursor value) it read; the next sync continues it;
//! - `deletes_unknown_from`: the stream's hard deletes from here on are not known yet: a
//!   getDeleted call failed, or its answer was complete only up to here (`latestDateCovered`)
//!   while the state covers more. The next sync asks getDeleted from no later than this
//!   (`stream/deletes.rs`);
//! - `deletes_known_to`: hard deletes before here concern no record the destination holds: the
//!   end of the last getDeleted listing, or, before any, when the first sync began (a record
//!   deleted before it was read was never emitted). A time on the org's clock, not a cursor
//!   value: a first sync cut short and resumed days later has a state whose cursor lags far
//!   behind it, and the next sync asks getDeleted from here, not from that cursor
//!   (`stream/deletes.rs`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::StreamState;
use crate::config::json_kind;
use crate::error::Error;
use crate::time::parse_instant;

/// The keys of a date-range state naming a formula refresh under way: when it began (the org's
/// clock: `formula_refreshed_at` once it ends) and how far it has read (a cursor value: the
/// next sync continues from there).
pub(crate) const BEGAN_KEY: &str = "formula_refresh_began";
pub(crate) const REACHED_KEY: &str = "formula_refresh_reached";

/// A formula refresh under way: it began at `began` and has read everything before `reached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshProgress {
    /// When the refresh began, on the org's clock.
    pub began: DateTime<Utc>,
    /// The refresh has read every row whose cursor is before this.
    pub reached: DateTime<Utc>,
}

/// The refresh under way a state names: both keys, or neither.
pub(super) fn parse_progress(
    stream: &str,
    obj: &Map<String, Value>,
    path: &str,
) -> Result<Option<RefreshProgress>, Error> {
    let began = parse_instant_at(stream, obj, path, BEGAN_KEY)?;
    let reached = parse_instant_at(stream, obj, path, REACHED_KEY)?;
    Ok(began
        .zip(reached)
        .map(|(began, reached)| RefreshProgress { began, reached }))
}

/// The key of a date-range state naming its stream's last formula refresh.
pub(crate) const REFRESHED_KEY: &str = "formula_refreshed_at";

/// The key of a date-range state naming where its stream's unknown hard deletes start.
pub(crate) const DELETES_KEY: &str = "deletes_unknown_from";

/// The key of a date-range state naming before when its stream's hard deletes are all handled.
pub(crate) const KNOWN_KEY: &str = "deletes_known_to";

/// The instant a state names under `key`, if any.
pub(super) fn parse_instant_at(
    stream: &str,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<DateTime<Utc>>, Error> {
    let invalid = |reason: String| Error::StateInvalid {
        stream: stream.to_string(),
        path: format!("{path}.{key}"),
        reason,
    };
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_instant(text).map(Some).ok_or_else(|| {
            invalid(format!(
                "`{text}` is not a datetime such as `2023-01-01T00:00:00.000Z`"
            ))
        }),
        Some(other) => Err(invalid(format!(
            "expected a datetime string, got {}",
            json_kind(other)
        ))),
    }
}

impl StreamState {
    /// Where the stream's hard deletes stop being known, if they do (see the module).
    pub fn deletes_unknown_from(&self) -> Option<DateTime<Utc>> {
        self.deletes_unknown_from
    }

    /// Sets where the stream's hard deletes stop being known (`None`: all are).
    pub(crate) fn set_deletes_unknown_from(&mut self, at: Option<DateTime<Utc>>) {
        self.deletes_unknown_from = at;
    }

    /// Before when the stream's hard deletes concern no record downstream, if known (see the
    /// module).
    pub fn deletes_known_to(&self) -> Option<DateTime<Utc>> {
        self.deletes_known_to
    }

    /// Sets [`StreamState::deletes_known_to`].
    pub(crate) fn set_deletes_known_to(&mut self, at: DateTime<Utc>) {
        self.deletes_known_to = Some(at);
    }

    /// The formula refresh under way, if one was cut short (see the module).
    pub fn refresh_progress(&self) -> Option<RefreshProgress> {
        self.refresh_progress
    }

    /// Sets [`StreamState::refresh_progress`] (`None`: no refresh under way).
    pub(crate) fn set_refresh_progress(&mut self, progress: Option<RefreshProgress>) {
        self.refresh_progress = progress;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::state::SavedState;

    #[test]
    fn the_refresh_time_round_trips_and_a_bad_one_is_refused_with_its_path() {
        let value = json!({"state_type": "date-range",
            "slices": [{"start": "2024-01-01T00:00:00.000Z", "end": "2024-02-01T00:00:00.000Z"}],
            "formula_refreshed_at": "2024-02-01T00:00:00.000Z"});
        let Ok(SavedState::DateRange(state)) = SavedState::from_value("Invoice__c", &value) else {
            panic!("not read");
        };
        assert_eq!(
            state
                .formula_refreshed_at()
                .map(crate::time::format_instant),
            Some("2024-02-01T00:00:00.000Z".to_string())
        );
        assert_eq!(state.to_json(), value, "written back as read");
        let mut added = state.clone();
        added.add(crate::state::StateSlice::new(
            crate::time::parse_instant("2024-02-01T00:00:00Z").unwrap_or_default(),
            crate::time::parse_instant("2024-03-01T00:00:00Z").unwrap_or_default(),
        ));
        assert_eq!(added.formula_refreshed_at(), state.formula_refreshed_at());
        for bad in [json!("yesterday"), json!(12)] {
            let mut value = value.clone();
            value["formula_refreshed_at"] = bad.clone();
            let err = SavedState::from_value("Invoice__c", &value)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("formula_refreshed_at"), "{bad}: {err}");
        }
    }

    #[test]
    fn where_hard_deletes_stop_being_known_round_trips_and_survives_a_slice() {
        let value = json!({"state_type": "date-range",
            "slices": [{"start": "2024-01-01T00:00:00.000Z", "end": "2024-02-01T00:00:00.000Z"}],
            "deletes_unknown_from": "2024-01-20T00:00:00.000Z"});
        let Ok(SavedState::DateRange(mut state)) = SavedState::from_value("Account", &value) else {
            panic!("not read");
        };
        let at = crate::time::parse_instant("2024-01-20T00:00:00Z");
        assert_eq!(state.deletes_unknown_from(), at);
        assert_eq!(state.to_json(), value, "written back as read");
        state.add(crate::state::StateSlice::new(
            crate::time::parse_instant("2024-02-01T00:00:00Z").unwrap_or_default(),
            crate::time::parse_instant("2024-03-01T00:00:00Z").unwrap_or_default(),
        ));
        assert_eq!(state.deletes_unknown_from(), at);
        state.set_deletes_unknown_from(None);
        assert!(state.to_json().get("deletes_unknown_from").is_none());
        let mut bad = value.clone();
        bad["deletes_unknown_from"] = json!(7);
        let err = SavedState::from_value("Account", &bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("deletes_unknown_from"), "{err}");
    }

    #[test]
    fn a_refresh_under_way_round_trips_and_survives_a_slice_added() {
        let value = json!({"state_type": "date-range",
            "slices": [{"start": "2024-01-01T00:00:00.000Z", "end": "2024-02-01T00:00:00.000Z"}],
            "formula_refresh_began": "2024-02-01T00:00:00.000Z",
            "formula_refresh_reached": "2024-01-10T00:00:00.000Z"});
        let Ok(SavedState::DateRange(state)) = SavedState::from_value("Invoice__c", &value) else {
            panic!("not read");
        };
        let progress = state.refresh_progress().map(|p| {
            (
                crate::time::format_instant(p.began),
                crate::time::format_instant(p.reached),
            )
        });
        assert_eq!(
            progress,
            Some((
                "2024-02-01T00:00:00.000Z".to_string(),
                "2024-01-10T00:00:00.000Z".to_string()
            ))
        );
        assert_eq!(state.to_json(), value, "written back as read");
        let mut added = state.clone();
        added.add(crate::state::StateSlice::new(
            crate::time::parse_instant("2024-02-01T00:00:00Z").unwrap_or_default(),
            crate::time::parse_instant("2024-03-01T00:00:00Z").unwrap_or_default(),
        ));
        assert_eq!(added.refresh_progress(), state.refresh_progress());
        // One key without the other names no refresh.
        let mut half = value.clone();
        half.as_object_mut()
            .map(|o| o.remove("formula_refresh_began"));
        let Ok(SavedState::DateRange(half)) = SavedState::from_value("Invoice__c", &half) else {
            panic!("not read");
        };
        assert_eq!(half.refresh_progress(), None);
    }
}
