//! Turning REST rows into [`Record`](sf_discovery::Record)s shaped like the Bulk path's: each
//! row is deserialised straight into its values in column order (no map per row).

use std::collections::HashMap;

use serde::de::{IgnoredAny, MapAccess};
use serde_json::Value;
use sf_discovery::{normalize_datetime, StreamSpec, ValueKind};

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
            let datetime = stream
                .field(name)
                .is_some_and(|f| f.value_kind() == ValueKind::DateTime);
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

    fn convert(&self, index: usize, mut value: Value) -> Value {
        strip_attributes(&mut value);
        if self.specs.get(index).is_some_and(|c| c.datetime) {
            if let Value::String(text) = &value {
                if let Some(normal) = normalize_datetime(text) {
                    return Value::String(normal);
                }
            }
        }
        value
    }
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
