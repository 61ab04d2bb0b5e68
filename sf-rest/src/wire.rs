//! Serde types of the `/query` and `/queryAll` answers.

use serde::Deserialize;
use serde_json::{Map, Value};

/// One page of query results.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueryPage {
    /// The size of the whole result, repeated on every page.
    #[serde(default)]
    pub total_size: Option<u64>,
    /// False while more pages follow.
    #[serde(default)]
    pub done: Option<bool>,
    /// The path of the next page, absent or null on the last one.
    #[serde(default)]
    pub next_records_url: Option<String>,
    /// The rows, each with an `attributes` object and one key per selected field.
    pub records: Vec<Map<String, Value>>,
}

/// The answer to `SELECT COUNT() ...`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CountPage {
    pub total_size: u64,
}
