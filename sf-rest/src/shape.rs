//! Turning REST rows into [`Record`]s shaped like the Bulk path's.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sf_discovery::{normalize_datetime, StreamSpec, ValueKind};

/// How to read one column out of a row.
#[derive(Debug, Clone)]
struct Column {
    /// Lower-cased path: one segment for a field, more for `Owner.Email`.
    path: Vec<String>,
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
    id: Option<usize>,
}

impl Shape {
    /// The shape of `columns` of `stream`; field types come from the stream (unknown columns,
    /// such as relationship paths, are kept as sent).
    pub fn new(columns: &[String], stream: &StreamSpec) -> Shape {
        let mut specs = Vec::with_capacity(columns.len());
        let mut exact = HashMap::with_capacity(columns.len());
        let mut lower = HashMap::with_capacity(columns.len());
        let mut dotted = Vec::new();
        for (i, name) in columns.iter().enumerate() {
            let datetime = stream
                .field(name)
                .is_some_and(|f| f.value_kind() == ValueKind::DateTime);
            let path: Vec<String> = name.split('.').map(str::to_ascii_lowercase).collect();
            if path.len() > 1 {
                dotted.push(i);
            } else {
                exact.entry(name.clone()).or_insert(i);
                lower.entry(name.to_ascii_lowercase()).or_insert(i);
            }
            specs.push(Column { path, datetime });
        }
        let id = lower.get("id").copied();
        Shape {
            specs,
            exact,
            lower,
            dotted,
            id,
        }
    }

    /// The index of the `Id` column.
    pub fn id_index(&self) -> Option<usize> {
        self.id
    }

    /// The row's values in column order: `attributes` dropped (nested ones too), datetimes
    /// normalised, a `null` for every column the row lacks.
    pub fn values(&self, mut row: Map<String, Value>) -> Vec<Value> {
        row.remove("attributes");
        let mut values = vec![Value::Null; self.specs.len()];
        let mut leftovers: Vec<(String, Value)> = Vec::new();
        for (key, value) in row {
            let index = self
                .exact
                .get(&key)
                .or_else(|| self.lower.get(&key.to_ascii_lowercase()))
                .copied();
            match index {
                Some(i) => values[i] = self.convert(i, value),
                None if !self.dotted.is_empty() => {
                    leftovers.push((key.to_ascii_lowercase(), value))
                }
                None => {}
            }
        }
        for &i in &self.dotted {
            let path = &self.specs[i].path;
            let found = leftovers
                .iter()
                .find(|(k, _)| *k == path[0])
                .and_then(|(_, v)| walk(v, &path[1..]));
            if let Some(v) = found {
                values[i] = self.convert(i, v.clone());
            }
        }
        values
    }

    fn convert(&self, index: usize, mut value: Value) -> Value {
        strip_attributes(&mut value);
        if self.specs[index].datetime {
            if let Value::String(text) = &value {
                if let Some(normal) = normalize_datetime(text) {
                    return Value::String(normal);
                }
            }
        }
        value
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use sf_discovery::{FieldSpec, FieldType};

    fn spec() -> StreamSpec {
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

    fn shape(cols: &[&str]) -> Shape {
        let cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        Shape::new(&cols, &spec())
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
        let row = json!({
            "attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/001"},
            "id": "001",
            "AnnualRevenue": 1.2345678E7,
            "SystemModstamp": "2024-03-04T05:06:07.000+0000",
            "LastActivityDate": "2024-02-10",
            "BillingAddress": {"city": "Paris", "latitude": null},
            "Owner": {"attributes": {"type": "User"}, "Email": "o@example.com"}
        });
        let values = s.values(row.as_object().unwrap().clone());
        assert_eq!(
            values,
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
        let row = json!({
            "Id": "001",
            "SystemModstamp": "not a date",
            "Contacts": {"totalSize": 1, "done": true, "records": [
                {"attributes": {"type": "Contact"}, "Id": "003", "Owner": {"attributes": {}, "Id": "005"}}
            ]}
        });
        let values = s.values(row.as_object().unwrap().clone());
        assert_eq!(values[1], json!("not a date"));
        assert_eq!(
            values[2],
            json!({"totalSize": 1, "done": true, "records": [{"Id": "003", "Owner": {"Id": "005"}}]})
        );
    }
}
