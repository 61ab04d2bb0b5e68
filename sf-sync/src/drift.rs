//! Schema drift: what changed in the org since the catalog was discovered, and how a stream reads
//! on anyway.
//!
//! A field the catalog selects and the org no longer has is left out of the query, with a warning
//! (the stream fails only when nothing selected is left, or its key or cursor is gone). A field
//! the org has and the catalog does not select is not read until the schema is refreshed, and
//! said so once. A field whose type changed is read as the org serves it and each value converted
//! to the catalog's type where it can be; a value that cannot be is written `null` (the record is
//! never dropped) and counted, and the counts are logged per field when the stream ends.

use serde_json::{Number, Value};
use sf_discovery::{FieldSpec, Record, StreamSpec};

use crate::catalog::{ConfiguredStream, SyncMode};
use crate::error::Error;
use crate::sink::LogLevel;

/// The most field names one log line lists.
const LISTED: usize = 10;

/// Holds what `configured` selects against what the object has now (`spec`): notes the fields
/// gone (read without them), the fields not selected (not read until the schema is refreshed) and
/// the fields whose type changed (converted), and returns the conversions. Fails with
/// [`Error::StreamFieldsMissing`] only when nothing selected is left, or the primary key or the
/// cursor is gone.
pub(crate) fn reconcile(
    configured: &ConfiguredStream,
    spec: &StreamSpec,
    notes: &mut Vec<(LogLevel, String)>,
) -> Result<Drift, Error> {
    let name = &configured.name;
    let Some(selected) = &configured.selected_fields else {
        return Ok(Drift::default());
    };
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let missing: Vec<String> = selected
        .iter()
        .filter(|f| spec.field(f).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() {
        let essential = missing.iter().any(|f| {
            is(f, "Id")
                || configured.cursor().is_some_and(|c| is(c, f))
                || configured
                    .primary_key
                    .iter()
                    .any(|k| k.len() == 1 && is(&k[0], f))
                || (configured.sync_mode == SyncMode::Incremental
                    && StreamSpec::CURSOR_CANDIDATES.iter().any(|c| is(c, f)))
        });
        if essential || missing.len() == selected.len() {
            return Err(Error::StreamFieldsMissing {
                stream: name.clone(),
                fields: missing,
            });
        }
        notes.push((
            LogLevel::Warn,
            format!(
                "{name}: the catalog selects {} that no longer exist in Salesforce or are not \
                 visible to this user: the stream is read without them; refresh the schema of \
                 the connection (run discover again) and re-select the stream's fields",
                listed("field", &missing)
            ),
        ));
    }
    let always = |f: &str| {
        is(f, "Id") || is(f, "IsDeleted") || spec.cursor_field.as_deref().is_some_and(|c| is(c, f))
    };
    let unselected: Vec<String> = spec
        .fields
        .iter()
        .filter(|f| !configured.selects(&f.name) && !always(&f.name))
        .map(|f| f.name.clone())
        .collect();
    if !unselected.is_empty() {
        notes.push((
            LogLevel::Info,
            format!(
                "{name}: the object has {} the catalog does not select (added since discovery, or \
                 left out on purpose): not read until the schema of the connection is refreshed \
                 and they are selected",
                listed("field", &unselected)
            ),
        ));
    }
    let mut drift = Drift::default();
    for (field, schema) in &configured.field_schemas {
        let Some(now) = spec.field(field) else {
            continue;
        };
        if let Some(conversion) = Conversion::between(schema, now) {
            notes.push((LogLevel::Warn, conversion.announce(name)));
            drift.conversions.push(conversion);
        }
    }
    Ok(drift)
}

/// "field `A`" or "2 fields: `A`, `B`": at most [`LISTED`] names, then how many more.
fn listed(noun: &str, names: &[String]) -> String {
    let mut shown: Vec<String> = names
        .iter()
        .take(LISTED)
        .map(|n| format!("`{n}`"))
        .collect();
    if names.len() > LISTED {
        shown.push(format!("and {} more", names.len() - LISTED));
    }
    match names {
        [_] => format!("{noun} {}", shown.join(", ")),
        _ => format!("{} {noun}s: {}", names.len(), shown.join(", ")),
    }
}

/// The JSON type a field's values take, as a catalog's or describe's JSON schema names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    String,
    /// A `string` with `format: date`.
    Date,
    /// A `string` with `format: date-time`.
    DateTime,
    Number,
    Integer,
    Boolean,
    Object,
}

impl JsonType {
    /// The type a JSON schema gives (its non-null `type`, and `format` for strings); `None` when
    /// it names none or several.
    pub(crate) fn of_schema(schema: &Value) -> Option<JsonType> {
        let types: Vec<&str> = match schema.get("type")? {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ => return None,
        };
        let [only] = types.as_slice() else {
            return None;
        };
        Some(match *only {
            "string" => match schema.get("format").and_then(Value::as_str) {
                Some("date") => JsonType::Date,
                Some("date-time") => JsonType::DateTime,
                _ => JsonType::String,
            },
            "number" => JsonType::Number,
            "integer" => JsonType::Integer,
            "boolean" => JsonType::Boolean,
            "object" => JsonType::Object,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Date => "date",
            JsonType::DateTime => "date-time",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::Object => "object",
        }
    }

    /// `value` as this type, `None` when it cannot be (null stays null).
    fn convert(self, value: &Value) -> Option<Value> {
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match (self, value) {
            (_, Value::Null) => Some(Value::Null),
            (JsonType::String, Value::Object(_) | Value::Array(_)) => {
                Some(Value::String(value.to_string()))
            }
            (JsonType::String, v) => text(v).map(Value::String),
            (JsonType::Number, Value::Number(_)) => Some(value.clone()),
            (JsonType::Number, v) => {
                let n: f64 = text(v)?.parse().ok()?;
                Number::from_f64(n).map(Value::Number)
            }
            (JsonType::Integer, v) => {
                let t = text(v)?;
                if let Ok(i) = t.parse::<i64>() {
                    return Some(Value::from(i));
                }
                let f: f64 = t.parse().ok()?;
                // Only a whole number is an integer without loss.
                (f.fract() == 0.0 && f.abs() < 9.0e15).then(|| Value::from(f as i64))
            }
            (JsonType::Boolean, Value::Bool(_)) => Some(value.clone()),
            (JsonType::Boolean, v) => match text(v)?.to_ascii_lowercase().as_str() {
                "true" | "1" => Some(Value::Bool(true)),
                "false" | "0" => Some(Value::Bool(false)),
                _ => None,
            },
            (JsonType::Date, Value::String(s)) => {
                let date = s.get(..10)?;
                chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
                Some(Value::String(date.to_string()))
            }
            (JsonType::DateTime, Value::String(s)) => {
                if let Some(instant) = sf_discovery::parse_datetime(s) {
                    return Some(Value::String(sf_discovery::format_datetime(instant)));
                }
                let date = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
                let instant = date.and_hms_opt(0, 0, 0)?.and_utc();
                Some(Value::String(sf_discovery::format_datetime(instant)))
            }
            (JsonType::Object, Value::Object(_)) => Some(value.clone()),
            _ => None,
        }
    }
}

/// One field read as the org serves it and converted to the catalog's type.
#[derive(Debug, Clone)]
pub(crate) struct Conversion {
    /// The field, as the org names it.
    pub(crate) field: String,
    /// The catalog's type.
    pub(crate) to: JsonType,
    /// The org's type now.
    pub(crate) from: JsonType,
    /// Values that could not be converted (written null).
    pub(crate) failed: u64,
    /// Values converted.
    pub(crate) converted: u64,
}

impl Conversion {
    /// The field of `spec` whose type the catalog gives as `catalog_schema`, if it changed.
    pub(crate) fn between(catalog_schema: &Value, field: &FieldSpec) -> Option<Conversion> {
        let to = JsonType::of_schema(catalog_schema)?;
        let from = JsonType::of_schema(&field.json_schema())?;
        (to != from).then(|| Conversion {
            field: field.name.clone(),
            to,
            from,
            failed: 0,
            converted: 0,
        })
    }

    /// The warning logged when the stream is set up.
    pub(crate) fn announce(&self, stream: &str) -> String {
        format!(
            "{stream}: field `{}` changed type in Salesforce since the catalog was discovered \
             ({} in the catalog, {} now): its values are written as the catalog's {} where they \
             convert and null where they do not (counted when the stream ends); refresh the \
             schema of the connection (run discover again)",
            self.field,
            self.to.name(),
            self.from.name(),
            self.to.name()
        )
    }

    /// The report logged when the stream ends, `None` when every value converted.
    pub(crate) fn report(&self, stream: &str) -> Option<String> {
        (self.failed > 0).then(|| {
            format!(
                "{stream}: field `{}`: {} value(s) of Salesforce's {} type could not be written \
                 as the catalog's {} and were written null ({} converted); the records themselves \
                 were all emitted; refresh the schema of the connection to read them as they are",
                self.field,
                self.failed,
                self.from.name(),
                self.to.name(),
                self.converted
            )
        })
    }
}

/// The conversions of a stream's records.
#[derive(Debug, Clone, Default)]
pub(crate) struct Drift {
    pub(crate) conversions: Vec<Conversion>,
}

impl Drift {
    /// One line per field with values that did not convert.
    pub(crate) fn reports(&self, stream: &str) -> Vec<String> {
        self.conversions
            .iter()
            .filter_map(|c| c.report(stream))
            .collect()
    }

    /// Converts `record`'s values of the changed fields to the catalog's types.
    pub(crate) fn apply(&mut self, record: &mut Record) {
        for conversion in &mut self.conversions {
            let Some(i) = record
                .columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(&conversion.field))
            else {
                continue;
            };
            let Some(value) = record.values.get_mut(i) else {
                continue;
            };
            if value.is_null() {
                continue;
            }
            match conversion.to.convert(value) {
                Some(converted) => {
                    *value = converted;
                    conversion.converted += 1;
                }
                None => {
                    *value = Value::Null;
                    conversion.failed += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sf_discovery::FieldType;
    use std::sync::Arc;

    #[test]
    fn types_of_schemas() {
        let t = |v: Value| JsonType::of_schema(&v);
        assert_eq!(
            t(json!({"type": ["null", "number"]})),
            Some(JsonType::Number)
        );
        assert_eq!(t(json!({"type": "string"})), Some(JsonType::String));
        assert_eq!(
            t(json!({"type": ["string", "null"], "format": "date-time"})),
            Some(JsonType::DateTime)
        );
        assert_eq!(t(json!({"type": ["null", "string", "number"]})), None);
        assert_eq!(t(json!({})), None);
    }

    #[test]
    fn values_follow_the_catalog_type_or_become_null_and_are_counted() {
        let field = FieldSpec::new("Score__c", FieldType::from_wire("string"));
        let mut conversion = Conversion::between(&json!({"type": ["null", "number"]}), &field)
            .expect("string → number is a change");
        assert!(Conversion::between(&json!({"type": ["null", "string"]}), &field).is_none());
        assert!(conversion
            .announce("Lead")
            .contains("`Score__c` changed type"));
        conversion.failed = 0;
        let mut drift = Drift {
            conversions: vec![conversion],
        };
        let columns: Arc<[String]> = Arc::from(vec!["Id".to_string(), "Score__c".to_string()]);
        let mut rows: Vec<Record> = [json!("12.5"), json!("n/a"), Value::Null, json!(" 7 ")]
            .into_iter()
            .map(|v| Record {
                columns: columns.clone(),
                values: vec![json!("00Q1"), v],
            })
            .collect();
        for row in &mut rows {
            drift.apply(row);
        }
        let values: Vec<&Value> = rows.iter().map(|r| &r.values[1]).collect();
        assert_eq!(
            values,
            [&json!(12.5), &Value::Null, &Value::Null, &json!(7.0)]
        );
        let c = &drift.conversions[0];
        assert_eq!((c.converted, c.failed), (2, 1));
        assert_eq!(drift.reports("Lead").len(), 1);
        let report = c.report("Lead").unwrap();
        assert!(
            report.starts_with("Lead: field `Score__c`: 1 value(s)"),
            "{report}"
        );
    }

    #[test]
    fn conversions_between_each_type() {
        use JsonType as T;
        let ok = |t: T, v: Value| t.convert(&v);
        assert_eq!(ok(T::String, json!(12)), Some(json!("12")));
        assert_eq!(ok(T::String, json!(true)), Some(json!("true")));
        assert_eq!(ok(T::Integer, json!("42")), Some(json!(42)));
        assert_eq!(ok(T::Integer, json!(4.5)), None);
        assert_eq!(ok(T::Integer, json!(4.0)), Some(json!(4)));
        assert_eq!(ok(T::Boolean, json!("TRUE")), Some(json!(true)));
        assert_eq!(ok(T::Boolean, json!("yes")), None);
        assert_eq!(
            ok(T::Date, json!("2024-03-01T10:00:00.000Z")),
            Some(json!("2024-03-01"))
        );
        assert_eq!(
            ok(T::DateTime, json!("2024-03-01")),
            Some(json!("2024-03-01T00:00:00.000Z"))
        );
        assert_eq!(ok(T::Date, json!("soon")), None);
        assert_eq!(ok(T::Number, Value::Null), Some(Value::Null));
        assert_eq!(ok(T::String, json!({"a": 1})), Some(json!("{\"a\":1}")));
    }
}
