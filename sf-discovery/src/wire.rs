//! Salesforce's payloads for describeGlobal, describe and composite, as serde types.
//!
//! Only the attributes discovery uses are named; everything else is ignored. Flags that a real
//! payload always carries default to the common value when absent, so a sparse payload still parses.

use serde::Deserialize;

/// `GET sobjects`.
#[derive(Debug, Deserialize)]
pub(crate) struct GlobalWire {
    pub sobjects: Vec<GlobalObjectWire>,
}

/// One entry of describeGlobal's `sobjects`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GlobalObjectWire {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub queryable: bool,
    #[serde(default)]
    pub custom: bool,
    #[serde(default)]
    pub custom_setting: bool,
    #[serde(default = "yes")]
    pub retrieveable: bool,
    #[serde(default)]
    pub replicateable: bool,
    #[serde(default)]
    pub deprecated_and_hidden: bool,
    #[serde(default)]
    pub key_prefix: Option<String>,
}

/// `GET sobjects/{name}/describe`.
#[derive(Debug, Deserialize)]
pub(crate) struct DescribeWire {
    pub name: String,
    #[serde(default)]
    pub custom: bool,
    #[serde(default = "yes")]
    pub queryable: bool,
    /// getDeleted / getUpdated serve the object; absent is read as not.
    #[serde(default)]
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
    #[serde(default)]
    pub calculated: bool,
    #[serde(default)]
    pub compound_field_name: Option<String>,
    #[serde(default = "yes")]
    pub filterable: bool,
    #[serde(default = "yes")]
    pub sortable: bool,
    #[serde(default)]
    pub custom: bool,
}

fn yes() -> bool {
    true
}
