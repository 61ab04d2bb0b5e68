//! The catalogs a benchmark hands to the connector (configured from what `sfconnect discover`
//! printed) and what the connector's log says it chose.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench_proc::RunResult;

/// Which fields a configured stream selects.
#[derive(Debug, Clone)]
pub enum Pick {
    /// Every field.
    All,
    /// These fields.
    Columns(Vec<String>),
    /// The first `n` fields in name order.
    First(usize),
}

/// Owned copies of `items`.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A configured catalog over `picks` from a CATALOG message. Incremental streams get their
/// default cursor and `append_dedup`; full refresh gets `overwrite`.
pub fn configured_catalog(catalog: &Value, picks: &[(&str, Pick, bool)]) -> Result<Value> {
    let streams = catalog["catalog"]["streams"]
        .as_array()
        .context("the CATALOG message has no streams")?;
    let mut configured = Vec::new();
    for (name, pick, incremental) in picks {
        let mut stream = streams
            .iter()
            .find(|s| s["name"] == *name)
            .cloned()
            .with_context(|| format!("the catalog has no stream {name}"))?;
        let properties = stream["json_schema"]["properties"]
            .as_object()
            .cloned()
            .with_context(|| format!("stream {name} has no properties"))?;
        let kept: serde_json::Map<String, Value> = match pick {
            Pick::All => properties,
            Pick::Columns(columns) => {
                for c in columns {
                    if !properties.contains_key(c) {
                        bail!("stream {name} has no field {c}");
                    }
                }
                properties
                    .into_iter()
                    .filter(|(k, _)| columns.contains(k))
                    .collect()
            }
            Pick::First(n) => {
                if properties.len() < *n {
                    bail!(
                        "stream {name} has {} fields, fewer than {n}",
                        properties.len()
                    );
                }
                properties.into_iter().take(*n).collect()
            }
        };
        stream["json_schema"]["properties"] = Value::Object(kept);
        let mut entry = json!({
            "stream": stream,
            "sync_mode": if *incremental { "incremental" } else { "full_refresh" },
            "destination_sync_mode": if *incremental { "append_dedup" } else { "overwrite" },
            "primary_key": [["Id"]],
        });
        if *incremental {
            entry["cursor_field"] = stream["default_cursor_field"].clone();
        }
        configured.push(entry);
    }
    Ok(json!({ "streams": configured }))
}

/// The fields a configured catalog's first stream selects, in its order.
pub fn selected(configured: &Value) -> Vec<String> {
    configured["streams"][0]["stream"]["json_schema"]["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The API the connector says it chose (`... through BULK`/`REST`), from its LOG messages.
pub fn api_used(run: &RunResult) -> String {
    let mut apis = Vec::new();
    for m in &run.other_messages {
        let text = m["log"]["message"].as_str().unwrap_or_default();
        for api in ["BULK", "REST"] {
            if text.contains(&format!("through {api}")) && !apis.contains(&api) {
                apis.push(api);
            }
        }
    }
    if apis.is_empty() {
        "?".to_string()
    } else {
        apis.join("+")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Value {
        json!({"type": "CATALOG", "catalog": {"streams": [
            {"name": "Account", "default_cursor_field": ["SystemModstamp"],
             "json_schema": {"properties": {"Id": {}, "Name": {}, "SystemModstamp": {}, "Zed": {}}}},
            {"name": "Task", "json_schema": {"properties": {"Id": {}}}}
        ]}})
    }

    #[test]
    fn configured_catalogs_select_the_picked_fields() {
        let c = configured_catalog(
            &catalog(),
            &[
                ("Account", Pick::Columns(strings(&["Id", "Zed"])), false),
                ("Task", Pick::All, false),
            ],
        )
        .unwrap();
        assert_eq!(selected(&c), ["Id", "Zed"]);
        assert_eq!(c["streams"][0]["sync_mode"], "full_refresh");
        assert_eq!(c["streams"][0]["destination_sync_mode"], "overwrite");
        assert!(c["streams"][0].get("cursor_field").is_none());
        assert_eq!(c["streams"][1]["stream"]["name"], "Task");

        let c = configured_catalog(&catalog(), &[("Account", Pick::First(3), true)]).unwrap();
        assert_eq!(selected(&c), ["Id", "Name", "SystemModstamp"]);
        assert_eq!(c["streams"][0]["sync_mode"], "incremental");
        assert_eq!(c["streams"][0]["cursor_field"], json!(["SystemModstamp"]));
        assert_eq!(c["streams"][0]["primary_key"], json!([["Id"]]));
    }

    #[test]
    fn configured_catalogs_refuse_what_the_catalog_lacks() {
        let missing_field = configured_catalog(
            &catalog(),
            &[("Account", Pick::Columns(strings(&["Nope"])), false)],
        );
        assert!(missing_field
            .unwrap_err()
            .to_string()
            .contains("no field Nope"));
        let missing_stream = configured_catalog(&catalog(), &[("Lead", Pick::All, false)]);
        assert!(missing_stream
            .unwrap_err()
            .to_string()
            .contains("no stream Lead"));
        let too_few = configured_catalog(&catalog(), &[("Task", Pick::First(2), false)]);
        assert!(too_few.unwrap_err().to_string().contains("fewer than 2"));
    }

    #[test]
    fn the_api_comes_from_the_connector_log() {
        let run = RunResult {
            other_messages: vec![
                json!({"type": "LOG", "log": {"message": "Account: full refresh through BULK (x)"}}),
                json!({"type": "LOG", "log": {"message": "Task: incremental ... through REST"}}),
                json!({"type": "LOG", "log": {"message": "Lead: incremental ... through REST"}}),
            ],
            ..RunResult::default()
        };
        assert_eq!(api_used(&run), "BULK+REST");
        assert_eq!(api_used(&RunResult::default()), "?");
    }
}
