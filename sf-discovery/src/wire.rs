//! Salesforce's payloads for describeGlobal, describe and composite, as serde types.
//!
//! Only the attributes discovery uses are named; everything else is ignored. Flags that a real
//! payload always carries default to the common value when absent or `null`, so a sparse payload
//! still parses. describeGlobal's entries are kept as JSON and read one by one, so one entry that
//! cannot be read leaves out that entry only.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `GET sobjects`.
#[derive(Debug, Deserialize)]
pub(crate) struct GlobalWire {
    /// Each entry is read into a [`GlobalObjectWire`] on its own.
    pub sobjects: Vec<Value>,
}

/// One entry of describeGlobal's `sobjects`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GlobalObjectWire {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "null_as_false")]
    pub queryable: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub custom: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub custom_setting: bool,
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub retrieveable: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub replicateable: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub deprecated_and_hidden: bool,
    #[serde(default)]
    pub key_prefix: Option<String>,
}

/// `GET sobjects/{name}/describe`.
#[derive(Debug, Deserialize)]
pub(crate) struct DescribeWire {
    pub name: String,
    #[serde(default, deserialize_with = "null_as_false")]
    pub custom: bool,
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub queryable: bool,
    /// getDeleted / getUpdated serve the object; absent is read as not.
    #[serde(default, deserialize_with = "null_as_false")]
    pub replicateable: bool,
    pub fields: Vec<FieldWire>,
}

/// One entry of a describe's `fields`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FieldWire {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default, deserialize_with = "null_as_false")]
    pub calculated: bool,
    #[serde(default)]
    pub compound_field_name: Option<String>,
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub filterable: bool,
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub sortable: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub custom: bool,
}

fn yes() -> bool {
    true
}

/// A flag whose default is `false`: `null` reads as `false` (`default` covers only an absent key).
fn null_as_false<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or(false))
}

/// A flag whose default is `true`: `null` reads as `true`.
fn null_as_true<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_flags_read_as_their_defaults() {
        let o = GlobalObjectWire::deserialize(&json!({
            "name": "Account", "label": null, "queryable": null, "custom": null,
            "customSetting": null, "retrieveable": null, "replicateable": null,
            "deprecatedAndHidden": null, "keyPrefix": null
        }))
        .unwrap();
        assert_eq!(o.name, "Account");
        assert!(!o.queryable && !o.custom && !o.custom_setting);
        assert!(o.retrieveable);
        assert!(!o.replicateable && !o.deprecated_and_hidden);
        assert_eq!((o.label, o.key_prefix), (None, None));
        // Present values are read as given.
        let o = GlobalObjectWire::deserialize(&json!({
            "name": "Invoice__c", "queryable": true, "retrieveable": false, "custom": true
        }))
        .unwrap();
        assert!(o.queryable && o.custom && !o.retrieveable);

        let d = DescribeWire::deserialize(&json!({
            "name": "Thing__c", "custom": null, "queryable": null, "replicateable": null,
            "fields": [
                {"name": "Id", "type": "id", "calculated": null, "compoundFieldName": null,
                 "filterable": null, "sortable": null, "custom": null},
                {"name": "Notes__c", "type": "textarea", "filterable": false, "sortable": false,
                 "calculated": true, "custom": true}
            ]
        }))
        .unwrap();
        assert!(!d.custom && d.queryable && !d.replicateable);
        let id = &d.fields[0];
        assert!(!id.calculated && id.filterable && id.sortable && !id.custom);
        let notes = &d.fields[1];
        assert!(notes.calculated && !notes.filterable && !notes.sortable && notes.custom);
    }

    #[test]
    fn a_flag_of_the_wrong_type_is_still_an_error() {
        assert!(GlobalObjectWire::deserialize(&json!({"name": "A", "queryable": "yes"})).is_err());
        assert!(DescribeWire::deserialize(&json!({"name": "A", "fields": [
            {"name": "Id", "type": "id", "sortable": 1}
        ]}))
        .is_err());
    }
}
