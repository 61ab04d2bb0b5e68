//! Compound fields through Bulk: Bulk API 2.0 cannot select an address or location field
//! ("Selecting compound data not supported in Bulk Query") but can select its components
//! (`BillingStreet`, ..., `Geo__Latitude__s`). [`Compounds`] plans a Bulk query that selects the
//! components instead, and rebuilds each compound value from them exactly as REST shows it, so a
//! record is the same whichever API read it.
//!
//! How REST shows a compound value (the reference `salesforce-api.md` §REST query responses, the
//! recorded `fixtures/recorded/rest/compound_fields.json`, and the emulated org): an object whose
//! keys are the components' names without the compound's prefix, lower camel case (`street`,
//! `city`, `state`, `stateCode`, `postalCode`, `country`, `countryCode`, `latitude`, `longitude`,
//! `geocodeAccuracy`; a location's `latitude` and `longitude`), every component of the object's
//! describe present, nulls explicit; and `null` for the whole value when every component is null.
//! Sure of the keys and of the location's `X__Latitude__s`/`X__Longitude__s` components (both
//! documented: "Compound Field Considerations and Limitations" and "Geolocation Custom Field");
//! fairly sure of the whole-value `null` (seen in recorded answers, not stated in the docs). The
//! components are found by the describe's `compoundFieldName`, never by guessing names, and a
//! compound whose components cannot all be named this way is not rebuilt (the stream stays on
//! REST).

use std::sync::Arc;

use serde_json::{Map, Value};
use sf_discovery::{Columns, FieldSpec, FieldType, Record, StreamSpec};

/// The key REST gives each component, by the end of the component's name (after `__s`, for a
/// location's custom components). `StateCode` and `CountryCode` are tried before `State` and
/// `Country` cannot match them, since names are compared by their ends.
const COMPONENT_KEYS: [(&str, &str); 10] = [
    ("GeocodeAccuracy", "geocodeAccuracy"),
    ("CountryCode", "countryCode"),
    ("StateCode", "stateCode"),
    ("PostalCode", "postalCode"),
    ("Latitude", "latitude"),
    ("Longitude", "longitude"),
    ("Street", "street"),
    ("City", "city"),
    ("State", "state"),
    ("Country", "country"),
];

/// REST's key for the component `name`, if it is one REST shows.
pub(crate) fn component_key(name: &str) -> Option<&'static str> {
    let base = name.strip_suffix("__s").unwrap_or(name);
    COMPONENT_KEYS
        .iter()
        .find(|(suffix, _)| base.ends_with(suffix))
        .map(|(_, key)| *key)
}

/// One output column of a rebuilt record.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    /// The Bulk record's value at this index.
    Copy(usize),
    /// A compound value: REST's key of each component (sorted) and the component's index in the
    /// Bulk record.
    Build(Vec<(&'static str, usize)>),
}

/// A Bulk query for an object with compound fields: the columns it selects and how each record
/// is turned back into the columns REST would read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compounds {
    /// What the Bulk job selects: the stream's columns without the compound fields, then the
    /// components not among them.
    bulk_columns: Vec<String>,
    /// The stream's columns, as REST reads them (the records' columns after rebuilding).
    columns: Columns,
    slots: Vec<Slot>,
    /// The compound fields rebuilt, for the log.
    rebuilt: Vec<String>,
}

impl Compounds {
    /// Plans `columns` of `spec` through Bulk. `Ok(None)` when no column is a compound field;
    /// `Err(names)` names the compound fields whose components cannot all be found or named.
    pub(crate) fn plan(
        spec: &StreamSpec,
        columns: &[String],
    ) -> Result<Option<Compounds>, Vec<String>> {
        let is_compound = |c: &String| {
            spec.field(c)
                .is_some_and(|f| matches!(f.field_type, FieldType::Address | FieldType::Location))
        };
        if !columns.iter().any(is_compound) {
            return Ok(None);
        }
        let mut bulk_columns: Vec<String> = columns
            .iter()
            .filter(|c| !is_compound(c))
            .cloned()
            .collect();
        let mut slots = Vec::with_capacity(columns.len());
        let mut rebuilt = Vec::new();
        let mut refused = Vec::new();
        for column in columns {
            if !is_compound(column) {
                let at = bulk_columns.iter().position(|c| c == column).unwrap_or(0);
                slots.push(Slot::Copy(at));
                continue;
            }
            match components(spec, column) {
                Some(parts) => {
                    let mut keys = Vec::with_capacity(parts.len());
                    for (key, part) in parts {
                        let at = match bulk_columns
                            .iter()
                            .position(|c| c.eq_ignore_ascii_case(&part.name))
                        {
                            Some(at) => at,
                            None => {
                                bulk_columns.push(part.name.clone());
                                bulk_columns.len() - 1
                            }
                        };
                        keys.push((key, at));
                    }
                    keys.sort_by(|a, b| a.0.cmp(b.0));
                    slots.push(Slot::Build(keys));
                    rebuilt.push(column.clone());
                }
                None => refused.push(column.clone()),
            }
        }
        if !refused.is_empty() {
            return Err(refused);
        }
        Ok(Some(Compounds {
            bulk_columns,
            columns: Arc::from(columns.to_vec()),
            slots,
            rebuilt,
        }))
    }

    /// The columns the Bulk job selects.
    pub(crate) fn bulk_columns(&self) -> &[String] {
        &self.bulk_columns
    }

    /// The compound fields rebuilt from their components.
    pub(crate) fn rebuilt(&self) -> &[String] {
        &self.rebuilt
    }

    /// A record read through Bulk (columns [`Compounds::bulk_columns`]) as REST would read it:
    /// the stream's columns in order, each compound value rebuilt from its components (`null`
    /// when all are null), the components no column selects left out.
    pub(crate) fn rebuild(&self, mut record: Record) -> Record {
        let built: Vec<Option<Value>> = self
            .slots
            .iter()
            .map(|slot| match slot {
                Slot::Copy(_) => None,
                Slot::Build(keys) => {
                    let all_null = keys
                        .iter()
                        .all(|(_, at)| record.values.get(*at).is_none_or(Value::is_null));
                    Some(if all_null {
                        Value::Null
                    } else {
                        let mut object = Map::new();
                        for (key, at) in keys {
                            let value = record.values.get(*at).cloned().unwrap_or(Value::Null);
                            object.insert((*key).to_string(), value);
                        }
                        Value::Object(object)
                    })
                }
            })
            .collect();
        let values = self
            .slots
            .iter()
            .zip(built)
            .map(|(slot, built)| match (slot, built) {
                (Slot::Copy(at), _) => record
                    .values
                    .get_mut(*at)
                    .map(std::mem::take)
                    .unwrap_or(Value::Null),
                (Slot::Build(_), built) => built.unwrap_or(Value::Null),
            })
            .collect();
        Record {
            columns: self.columns.clone(),
            values,
        }
    }
}

/// The components of the compound field `name` of `spec` (by the describe's
/// `compoundFieldName`), each with REST's key; `None` when there are none, or one has a name REST
/// has no key for, or two share a key.
fn components<'a>(spec: &'a StreamSpec, name: &str) -> Option<Vec<(&'static str, &'a FieldSpec)>> {
    let mut parts: Vec<(&'static str, &FieldSpec)> = Vec::new();
    for field in &spec.fields {
        let Some(compound) = &field.compound_field_name else {
            continue;
        };
        if !compound.eq_ignore_ascii_case(name) || field.field_type.bulk_unservable() {
            continue;
        }
        let key = component_key(&field.name)?;
        if parts.iter().any(|(k, _)| *k == key) {
            return None;
        }
        parts.push((key, field));
    }
    (!parts.is_empty()).then_some(parts)
}

#[cfg(test)]
mod tests;
