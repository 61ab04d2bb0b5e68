//! Salesforce's payloads for describeGlobal, describe and composite, as serde types.
//!
//! Only the attributes discovery uses are named; everything else is ignored. Flags that a real
//! payload always carries default to the common value when absent, so a sparse payload still parses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// The body of `POST composite`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CompositeRequestWire {
    pub all_or_none: bool,
    pub composite_request: Vec<SubrequestWire>,
}

/// One subrequest: `url` is the whole path (`/services/data/vXX.X/...`), `reference_id` names
/// its answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubrequestWire {
    pub method: &'static str,
    pub url: String,
    pub reference_id: String,
}

/// The answer of `POST composite`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CompositeResponseWire {
    pub composite_response: Vec<SubresultWire>,
}

/// One subrequest's answer: its status, its body (a describe, or an error list) and the
/// `referenceId` of the subrequest it answers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubresultWire {
    pub http_status_code: u16,
    #[serde(default)]
    pub body: Value,
    pub reference_id: String,
}
