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
    /// A compound value: an object with REST's key of each component (sorted, as the object
    /// iterates them), each `null`, and the index in the Bulk record of each component, in the
    /// object's key order. A record's value is a clone of the object with the components'
    /// values put in place by position (no key compared, nothing inserted).
    Build {
        /// REST's keys, every value `null`.
        template: Map<String, Value>,
        /// Per key, in the template's order: the component's index in the Bulk record.
        at: Vec<usize>,
    },
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
    /// Per Bulk column: whether more than one slot reads it (then [`Compounds::rebuild`]
    /// clones it rather than moving it out).
    shared: Vec<bool>,
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
                    let template: Map<String, Value> = keys
                        .iter()
                        .map(|(key, _)| ((*key).to_string(), Value::Null))
                        .collect();
                    let at = keys.into_iter().map(|(_, at)| at).collect();
                    slots.push(Slot::Build { template, at });
                    rebuilt.push(column.clone());
                }
                None => refused.push(column.clone()),
            }
        }
        if !refused.is_empty() {
            return Err(refused);
        }
        let mut reads = vec![0usize; bulk_columns.len()];
        let mut count = |at: usize| {
            if let Some(n) = reads.get_mut(at) {
                *n += 1;
            }
        };
        for slot in &slots {
            match slot {
                Slot::Copy(at) => count(*at),
                Slot::Build { at, .. } => at.iter().for_each(|at| count(*at)),
            }
        }
        Ok(Some(Compounds {
            bulk_columns,
            columns: Arc::from(columns.to_vec()),
            slots,
            rebuilt,
            shared: reads.into_iter().map(|n| n > 1).collect(),
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
    ///
    /// One pass over the slots: every Bulk value read once is moved, not cloned (only a value
    /// two slots read, such as a component also selected as a column, is cloned), and no
    /// intermediate collection is built; the only allocations are the record's values and each
    /// compound's object (a clone of its template: no key compared or inserted).
    pub(crate) fn rebuild(&self, record: Record) -> Record {
        let mut from = record.values;
        let mut values = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            values.push(match slot {
                Slot::Copy(at) => self.take(&mut from, *at),
                Slot::Build { template, at } => {
                    let all_null = at.iter().all(|at| from.get(*at).is_none_or(Value::is_null));
                    if all_null {
                        Value::Null
                    } else {
                        let mut object = template.clone();
                        for (value, at) in object.values_mut().zip(at) {
                            *value = self.take(&mut from, *at);
                        }
                        Value::Object(object)
                    }
                }
            });
        }
        Record {
            columns: self.columns.clone(),
            values,
        }
    }

    /// The Bulk value at `at`: moved out when it is read once, cloned when more than one slot
    /// reads it; `null` past the record's end.
    fn take(&self, from: &mut [Value], at: usize) -> Value {
        match from.get_mut(at) {
            Some(value) if self.shared.get(at).copied().unwrap_or(true) => value.clone(),
            Some(value) => std::mem::take(value),
            None => Value::Null,
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
