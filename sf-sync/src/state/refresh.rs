//! `formula_refreshed_at`: when a stream with formula fields was last read whole for
//! `formula_refresh` (`stream/formulas.rs`). Written beside `slices`, as `org_id` and
//! `bulk_jobs` are; Airbyte's connector ignores the key.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::config::json_kind;
use crate::error::Error;
use crate::time::parse_instant;

/// The key of a date-range state naming its stream's last formula refresh.
pub(crate) const REFRESHED_KEY: &str = "formula_refreshed_at";

/// The last formula refresh a state names, if any.
pub(super) fn parse_refreshed(
    stream: &str,
    obj: &Map<String, Value>,
    path: &str,
) -> Result<Option<DateTime<Utc>>, Error> {
    let invalid = |reason: String| Error::StateInvalid {
        stream: stream.to_string(),
        path: format!("{path}.{REFRESHED_KEY}"),
        reason,
    };
    match obj.get(REFRESHED_KEY) {
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
