//! Instants written beside `slices`, as `org_id` and `bulk_jobs` are (Airbyte's connector ignores
//! these keys):
//! - `formula_refreshed_at`: when a stream with formula fields was last read whole for
//!   `formula_refresh` (`stream/formulas.rs`);
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
}
