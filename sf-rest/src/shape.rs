//! Turning REST rows into [`Record`](sf_discovery::Record)s shaped like the Bulk path's: each
//! row is deserialised straight into its values in column order (no map per row).

use std::collections::HashMap;

use serde::de::{IgnoredAny, MapAccess};
use serde_json::Value;
use sf_discovery::{normalize_datetime, FieldType, StreamSpec, ValueKind};

use crate::wire::self_visiting_seed;

/// How to read one column out of a row.
#[derive(Debug, Clone)]
struct Column {
    /// The name as selected.
    name: String,
    /// Lower-cased path: one segment for a field, more for `Owner.Email`.
    path: Vec<String>,
    /// True for a single-segment column that is the first of its exact name (a repeated column
    /// gets its values through the first).
    first: bool,
    /// True when values are datetimes to normalise.
    datetime: bool,
    /// True when the schema types the field a string (see [`Shape::convert`]).
    text: bool,
    /// True for an `anyType` field (history `OldValue`, `NewValue`), whose values take the
    /// type of the field that changed.
    any: bool,
}

/// The columns of a query and how to pull each out of a REST row.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    specs: Vec<Column>,
    /// Exact and lower-cased names of single-segment columns.
    exact: HashMap<String, usize>,
    lower: HashMap<String, usize>,
    /// Columns with a relationship path.
    dotted: Vec<usize>,
    /// Lower-cased first segments of the relationship paths.
    heads: Vec<String>,
    id: Option<usize>,
}

/// Where a key of a row goes.
enum Slot {
    /// The column at this index.
    Column(usize),
    /// The head of a relationship path (lower-cased): kept until the row ends.
    Head(String),
    /// `attributes`, or a field not selected.
    Skip,
}

impl Shape {
    /// The shape of `columns` of `stream`; field types come from the stream (unknown columns,
    /// such as relationship paths, are kept as sent).
    pub fn new(columns: &[String], stream: &StreamSpec) -> Shape {
        let mut specs = Vec::with_capacity(columns.len());
        let mut exact = HashMap::with_capacity(columns.len());
        let mut lower = HashMap::with_capacity(columns.len());
        let mut dotted = Vec::new();
        let mut heads: Vec<String> = Vec::new();
        for (i, name) in columns.iter().enumerate() {
            let field = stream.field(name);
            let datetime = field.is_some_and(|f| f.value_kind() == ValueKind::DateTime);
            let text = field.is_some_and(|f| f.value_kind() == ValueKind::String);
            let any = field.is_some_and(|f| f.field_type == FieldType::AnyType);
            let path: Vec<String> = name.split('.').map(str::to_ascii_lowercase).collect();
            if path.len() > 1 {
                dotted.push(i);
                if !heads.contains(&path[0]) {
                    heads.push(path[0].clone());
                }
            } else {
                exact.entry(name.clone()).or_insert(i);
                lower.entry(name.to_ascii_lowercase()).or_insert(i);
            }
            let first = path.len() == 1 && exact.get(name) == Some(&i);
            specs.push(Column {
                name: name.clone(),
                path,
                first,
                datetime,
                text,
                any,
            });
        }
        let id = lower.get("id").copied();
        Shape {
            specs,
            exact,
            lower,
            dotted,
            heads,
            id,
        }
    }

    /// The index of the `Id` column.
    pub fn id_index(&self) -> Option<usize> {
        self.id
    }

    /// A seed that deserialises one row (a JSON object) into its values in column order:
    /// `attributes` dropped (nested ones too), datetimes normalised, a `null` for every column
    /// the row lacks.
    pub fn row(&self) -> RowSeed<'_> {
        RowSeed { shape: self }
    }

    /// Where `key` goes; `hint` is the column expected next (REST sends fields in SELECT order).
    fn slot(&self, key: &str, hint: usize) -> Slot {
        if let Some(column) = self.specs.get(hint) {
            if column.first && column.name == key {
                return Slot::Column(hint);
            }
        }
        if let Some(&i) = self.exact.get(key) {
            return Slot::Column(i);
        }
        if key == "attributes" {
            return Slot::Skip;
        }
        let lowered = key.to_ascii_lowercase();
        if let Some(&i) = self.lower.get(&lowered) {
            return Slot::Column(i);
        }
        if self.heads.contains(&lowered) {
            return Slot::Head(lowered);
        }
        Slot::Skip
    }

    /// A REST value as the record carries it: `attributes` dropped, datetimes normalised, and a
    /// field the schema types a string given as a string. REST sends an `anyType` value (history
    /// `OldValue`, `NewValue`) in the type of the field that changed, `false` or `250000.0`
    /// [belief: Salesforce's REST JSON writes it typed], and a `complexvalue` or `json` one as
    /// JSON: written as its text (a datetime of the REST form `...000+0000` normalised as
    /// datetimes are), so the record matches its schema and the Bulk path, which reads text.
    fn convert(&self, index: usize, mut value: Value) -> Value {
        strip_attributes(&mut value);
        let Some(column) = self.specs.get(index) else {
            return value;
        };
        if column.datetime {
            if let Value::String(text) = &value {
                if let Some(normal) = normalize_datetime(text) {
                    return Value::String(normal);
                }
            }
        }
        if column.text {
            return match value {
                Value::Bool(b) => Value::String(b.to_string()),
                Value::Number(n) => Value::String(n.to_string()),
                Value::Object(_) | Value::Array(_) => Value::String(value.to_string()),
                Value::String(text) if column.any && is_rest_datetime(&text) => {
                    Value::String(normalize_datetime(&text).unwrap_or(text))
                }
                other => other,
            };
        }
        value
    }
}

/// True for Salesforce's REST datetime form exactly, `2024-01-02T03:04:05.000+0000`.
fn is_rest_datetime(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 28
        && text.ends_with("+0000")
        && b[10] == b'T'
        && b[19] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23) || c.is_ascii_digit())
}

/// Deserialises one row into its values in column order (see [`Shape::row`]).
pub(crate) struct RowSeed<'a> {
    shape: &'a Shape,
}

self_visiting_seed! {
    RowSeed -> Vec<Value>, deserialize_map, "a record object",

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Value>, A::Error> {
        let shape = self.shape;
        let mut values = vec![Value::Null; shape.specs.len()];
        let mut heads: Vec<(String, Value)> = Vec::new();
        let mut hint = 0;
        while let Some(slot) = map.next_key_seed(KeySeed { shape, hint })? {
            match slot {
                Slot::Column(i) => {
                    let value = map.next_value::<Value>()?;
                    if let Some(v) = values.get_mut(i) {
                        *v = shape.convert(i, value);
                    }
                    hint = i + 1;
                }
                // The same relationship under two spellings (not sent by Salesforce): the
                // first one counts.
                Slot::Head(head) if heads.iter().any(|(k, _)| *k == head) => {
                    map.next_value::<IgnoredAny>()?;
                }
                Slot::Head(head) => {
                    let value = map.next_value::<Value>()?;
                    heads.push((head, value));
                }
                Slot::Skip => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        for &i in &shape.dotted {
            let path = &shape.specs[i].path;
            let found = heads
                .iter()
                .find(|(k, _)| *k == path[0])
                .and_then(|(_, v)| walk(v, &path[1..]));
            if let Some(v) = found {
                values[i] = shape.convert(i, v.clone());
            }
        }
        Ok(values)
    }
}

/// Deserialises a key of a row into its [`Slot`], without allocating for a selected field.
struct KeySeed<'a> {
    shape: &'a Shape,
    hint: usize,
}

self_visiting_seed! {
    KeySeed -> Slot, deserialize_str, "a field name",

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Slot, E> {
        Ok(self.shape.slot(key, self.hint))
    }
}

/// Follows a lower-cased path through nested objects, matching keys case-insensitively.
fn walk<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(value);
    };
    let object = value.as_object()?;
    let next = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(first))
        .map(|(_, v)| v)?;
    walk(next, rest)
}

/// Removes `attributes` from every object inside `value`.
fn strip_attributes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("attributes");
            map.values_mut().for_each(strip_attributes);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_attributes),
        _ => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde::de::DeserializeSeed;
    use serde_json::{json, Map};
    use sf_discovery::{FieldSpec, FieldType};

    /// An `Account` stream: `Id`, `Name`, `SystemModstamp`, `LastActivityDate`, `AnnualRevenue`,
    /// `BillingAddress` (the wire tests use it too).
    pub(crate) fn spec() -> StreamSpec {
        StreamSpec {
            name: "Account".into(),
            fields: vec![
                FieldSpec::new("Id", FieldType::Id),
                FieldSpec::new("Name", FieldType::String),
                FieldSpec::new("SystemModstamp", FieldType::DateTime),
                FieldSpec::new("LastActivityDate", FieldType::Date),
                FieldSpec::new("AnnualRevenue", FieldType::Currency),
                FieldSpec::new("BillingAddress", FieldType::Address),
            ],
            primary_key: Some("Id".into()),
            cursor_field: Some("SystemModstamp".into()),
            supports_incremental: true,
            has_is_deleted: false,
            custom: false,
        }
    }

    /// A field the schema types a string gets strings: an `anyType` value sent typed (`false`,
    /// `250000.0`, a REST datetime) or a JSON value of a `complexvalue` field becomes its text,
    /// as the Bulk path reads it; a real string is kept, even one that only looks like a
    /// datetime in a plain text field.
    #[test]
    fn string_fields_get_strings() {
        let stream = StreamSpec {
            name: "OpportunityFieldHistory".into(),
            fields: vec![
                FieldSpec::new("Id", FieldType::Id),
                FieldSpec::new("NewValue", FieldType::AnyType),
                FieldSpec::new("Notes", FieldType::String),
                FieldSpec::new("Shape", FieldType::from_wire("complexvalue")),
                FieldSpec::new("Amount", FieldType::Currency),
            ],
            primary_key: Some("Id".into()),
            cursor_field: None,
            supports_incremental: false,
            has_is_deleted: false,
            custom: false,
        };
        let cols: Vec<String> = ["Id", "NewValue", "Notes", "Shape", "Amount"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let s = Shape::new(&cols, &stream);
        for (new_value, want) in [
            ("false", json!("false")),
            ("250000.0", json!("250000.0")),
            ("12", json!("12")),
            ("\"Prospecting\"", json!("Prospecting")),
            (
                "\"2024-01-02T03:04:05.000+0000\"",
                json!("2024-01-02T03:04:05.000Z"),
            ),
            ("\"2024-01-02\"", json!("2024-01-02")),
            ("null", Value::Null),
        ] {
            let row = format!(
                r#"{{"Id":"017","NewValue":{new_value},"Notes":"2024-01-02T03:04:05.000+0000","Shape":{{"a":[1,true]}},"Amount":5}}"#
            );
            let values = shaped(&s, &row).unwrap();
            assert_eq!(values[1], want, "{new_value}");
            assert_eq!(
                values[2],
                json!("2024-01-02T03:04:05.000+0000"),
                "a plain string is kept"
            );
            assert_eq!(values[3], json!(r#"{"a":[1,true]}"#));
            assert_eq!(values[4], json!(5), "numbers stay numbers");
        }
        assert!(is_rest_datetime("2024-01-02T03:04:05.000+0000"));
        assert!(!is_rest_datetime("2024-01-02T03:04:05.000Z"));
        assert!(!is_rest_datetime("2024-01-02T03:04:05.000+0100"));
        assert!(!is_rest_datetime("2024-01-02X03:04:05.000+0000"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        /// A REST number reaches the record as the nearest double, as Python's `float()` (Airbyte)
        /// and the Bulk decoder read it: 17 significant digits, any exponent.
        #[test]
        fn rest_doubles_are_correctly_rounded(
            digits in "[1-9][0-9]{16}",
            exp in -300i32..300,
        ) {
            let text = format!("{}.{}e{exp}", &digits[..1], &digits[1..]);
            let s = shape(&["Id", "AnnualRevenue"]);
            let values = shaped(&s, &format!(r#"{{"Id":"001","AnnualRevenue":{text}}}"#)).unwrap();
            let want: f64 = text.parse().unwrap();
            prop_assert_eq!(values[1].as_f64(), Some(want), "{}", text);
        }
    }

    fn shape(cols: &[&str]) -> Shape {
        let cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        Shape::new(&cols, &spec())
    }

    /// Shapes a row as it arrives on the wire: its JSON text, in its key order.
    fn shaped(s: &Shape, row: &str) -> Result<Vec<Value>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(row);
        let values = s.row().deserialize(&mut de)?;
        de.end()?;
        Ok(values)
    }

    /// The rules written out the slow way, over a parsed map: the reference the seed is held to.
    fn reference(s: &Shape, mut row: Map<String, Value>) -> Vec<Value> {
        row.remove("attributes");
        let mut values = vec![Value::Null; s.specs.len()];
        let mut leftovers: Vec<(String, Value)> = Vec::new();
        for (key, value) in row {
            let index = s
                .exact
                .get(&key)
                .or_else(|| s.lower.get(&key.to_ascii_lowercase()))
                .copied();
            match index {
                Some(i) => values[i] = s.convert(i, value),
                None => leftovers.push((key.to_ascii_lowercase(), value)),
            }
        }
        for &i in &s.dotted {
            let path = &s.specs[i].path;
            let found = leftovers
                .iter()
                .find(|(k, _)| *k == path[0])
                .and_then(|(_, v)| walk(v, &path[1..]));
            if let Some(v) = found {
                values[i] = s.convert(i, v.clone());
            }
        }
        values
    }

    #[test]
    fn rows_become_values_in_column_order() {
        let s = shape(&[
            "Id",
            "SystemModstamp",
            "Name",
            "LastActivityDate",
            "AnnualRevenue",
            "BillingAddress",
            "Owner.Email",
        ]);
        let row = r#"{
            "attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/001"},
            "id": "001",
            "AnnualRevenue": 1.2345678E7,
            "SystemModstamp": "2024-03-04T05:06:07.000+0000",
            "LastActivityDate": "2024-02-10",
            "BillingAddress": {"city": "Paris", "latitude": null},
            "Owner": {"attributes": {"type": "User"}, "Email": "o@example.com"}
        }"#;
        assert_eq!(
            shaped(&s, row).unwrap(),
            vec![
                json!("001"),
                json!("2024-03-04T05:06:07.000Z"),
                Value::Null,
                json!("2024-02-10"),
                json!(12345678.0),
                json!({"city": "Paris", "latitude": null}),
                json!("o@example.com"),
            ]
        );
        assert_eq!(s.id_index(), Some(0));
    }

    #[test]
    fn nested_attributes_go_and_odd_datetimes_stay() {
        let s = shape(&["Id", "SystemModstamp", "Contacts"]);
        let row = r#"{
            "Id": "001",
            "SystemModstamp": "not a date",
            "Contacts": {"totalSize": 1, "done": true, "records": [
                {"attributes": {"type": "Contact"}, "Id": "003", "Owner": {"attributes": {}, "Id": "005"}}
            ]}
        }"#;
        let values = shaped(&s, row).unwrap();
        assert_eq!(values[1], json!("not a date"));
        assert_eq!(
            values[2],
            json!({"totalSize": 1, "done": true, "records": [{"Id": "003", "Owner": {"Id": "005"}}]})
        );
    }

    #[test]
    fn repeated_keys_and_columns_and_odd_rows() {
        // A repeated key: the last value wins, as a JSON object would have it.
        let s = shape(&["Id", "Name", "Id"]);
        let values = shaped(&s, r#"{"Id": "001", "Name": "a", "Name": "b"}"#).unwrap();
        assert_eq!(values, vec![json!("001"), json!("b"), Value::Null]);
        // Fields out of SELECT order still land in their columns.
        let s = shape(&["Id", "Name"]);
        let values = shaped(&s, r#"{"Name": "n", "Unselected": [1, 2], "Id": "001"}"#).unwrap();
        assert_eq!(values, vec![json!("001"), json!("n")]);
        // Not an object, or cut short: an error, never a panic.
        assert!(shaped(&s, r#"["001"]"#).is_err());
        assert!(shaped(&s, r#"{"Id": "001", "Name""#).is_err());
        assert!(shaped(&s, "null").is_err());
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z0-9 ]{0,8}".prop_map(Value::String),
            (2000u32..2030, 1u32..13, 1u32..32, 0u32..24, 0u32..1000).prop_map(
                |(y, m, d, h, ms)| json!(format!("{y}-{m:02}-{d:02}T{h:02}:04:05.{ms:03}+0000"))
            ),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(2, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("attributes".to_string()),
                        Just("Email".to_string()),
                        Just("email".to_string()),
                        "[A-Za-z]{1,6}",
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("attributes".to_string()),
            Just("Id".to_string()),
            Just("id".to_string()),
            Just("Name".to_string()),
            Just("NAME".to_string()),
            Just("SystemModstamp".to_string()),
            Just("systemmodstamp".to_string()),
            Just("Owner".to_string()),
            Just("owner".to_string()),
            Just("BillingAddress".to_string()),
            "[A-Za-z_]{1,8}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Decoding a row's text gives what the rules give over the parsed row.
        #[test]
        fn the_seed_follows_the_rules(
            row in prop::collection::btree_map(key(), value(), 0..10),
        ) {
            let s = shape(&["Id", "SystemModstamp", "Name", "BillingAddress", "Owner.Email"]);
            let map: Map<String, Value> = row.into_iter().collect();
            let text = serde_json::to_string(&map).unwrap();
            let decoded = shaped(&s, &text).unwrap();
            prop_assert_eq!(decoded, reference(&s, map));
        }
    }
}
