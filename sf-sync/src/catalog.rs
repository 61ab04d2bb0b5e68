//! The configured catalog: which streams to sync, how, and with which fields.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::config::json_kind;
use crate::error::Error;

/// How a stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncMode {
    /// The whole object, every sync.
    FullRefresh,
    /// Windows on the cursor, resuming from state.
    Incremental,
}

impl SyncMode {
    /// `full_refresh` or `incremental`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::FullRefresh => "full_refresh",
            SyncMode::Incremental => "incremental",
        }
    }
}

/// What the destination does with the records (reported, not acted on: the records are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationSyncMode {
    /// `append`
    Append,
    /// `overwrite`
    Overwrite,
    /// `append_dedup`
    AppendDedup,
    /// `overwrite_dedup`
    OverwriteDedup,
    /// `update` (the Airbyte protocol's since v0.16.0, for destinations that update records in
    /// place; Airbyte's connector parses it with protocol models 0.17)
    Update,
    /// `soft_delete` (the Airbyte protocol's since v0.16.0)
    SoftDelete,
}

impl DestinationSyncMode {
    /// The protocol spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationSyncMode::Append => "append",
            DestinationSyncMode::Overwrite => "overwrite",
            DestinationSyncMode::AppendDedup => "append_dedup",
            DestinationSyncMode::OverwriteDedup => "overwrite_dedup",
            DestinationSyncMode::Update => "update",
            DestinationSyncMode::SoftDelete => "soft_delete",
        }
    }
}

/// One configured stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredStream {
    /// The object's API name (`stream.name`).
    pub name: String,
    /// `stream.namespace`, if set (Salesforce streams have none).
    pub namespace: Option<String>,
    /// The fields the catalog selects: the keys of `stream.json_schema.properties`, sorted.
    /// `None` when the schema has no `properties`: every field.
    pub selected_fields: Option<Vec<String>>,
    /// `sync_mode`.
    pub sync_mode: SyncMode,
    /// `destination_sync_mode` (default `append`, as in the protocol).
    pub destination_sync_mode: DestinationSyncMode,
    /// `cursor_field`, a path; empty means the source-defined cursor.
    pub cursor_field: Vec<String>,
    /// `primary_key`, a list of paths; empty means the source-defined key.
    pub primary_key: Vec<Vec<String>>,
    /// The schema the catalog gives each selected field (`stream.json_schema.properties`), by
    /// name: what a field's values are written as, even if its type changed in the org since.
    pub field_schemas: BTreeMap<String, Value>,
    /// The destination drops what it held of the stream once the sync succeeds: the
    /// `destination_sync_mode` is `overwrite` or `overwrite_dedup`, or the platform asks for a refresh that removes
    /// older generations (`minimum_generation_id` equal to `generation_id`, above 0: Airbyte's
    /// "refresh and remove records", and overwrite since protocol v0.16).
    pub replaces_on_success: bool,
}

impl ConfiguredStream {
    /// The cursor field the user chose, if any (`cursor_field` is one top-level field).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor_field.first().map(String::as_str)
    }

    /// True when `field` is selected (case-insensitive, as Salesforce field names are).
    pub fn selects(&self, field: &str) -> bool {
        match &self.selected_fields {
            None => true,
            Some(fields) => fields.iter().any(|f| f.eq_ignore_ascii_case(field)),
        }
    }
}

/// Airbyte's `ConfiguredAirbyteCatalog`: the streams to sync.
///
/// Unknown keys (`generation_id`, `minimum_generation_id`, `sync_id`, `is_resumable`,
/// `is_file_based`, `supported_sync_modes`, ...) are accepted and ignored. Errors name the JSON
/// path (e.g. `streams[3].sync_mode`) and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfiguredCatalog {
    /// The streams, in catalog order; names are unique.
    pub streams: Vec<ConfiguredStream>,
}

impl ConfiguredCatalog {
    /// Reads a catalog file's text.
    pub fn from_json(text: &str) -> Result<ConfiguredCatalog, Error> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::CatalogParse {
            reason: format!("not valid JSON ({e})"),
        })?;
        ConfiguredCatalog::from_value(&value)
    }

    /// Reads a parsed catalog.
    pub fn from_value(value: &Value) -> Result<ConfiguredCatalog, Error> {
        let Some(obj) = value.as_object() else {
            return Err(Error::CatalogParse {
                reason: format!(
                    "expected an object {{\"streams\": [...]}}, got {}",
                    json_kind(value)
                ),
            });
        };
        let streams = match obj.get("streams") {
            Some(Value::Array(streams)) => streams,
            None | Some(Value::Null) if obj.contains_key("catalog") => {
                return Err(bad(
                    "streams",
                    format!(
                    "missing: this is discover's CATALOG message, not a configured catalog; {WRAP}"
                ),
                ))
            }
            None | Some(Value::Null) => {
                return Err(bad(
                    "streams",
                    "missing; a configured catalog is {\"streams\": [...]}",
                ))
            }
            Some(other) => {
                return Err(bad(
                    "streams",
                    format!(
                        "expected a list of configured streams, got {}",
                        json_kind(other)
                    ),
                ))
            }
        };
        let mut out = Vec::with_capacity(streams.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, entry) in streams.iter().enumerate() {
            let stream = read_stream(entry, &format!("streams[{i}]"))?;
            if let Some(first) = seen.insert(stream.name.clone(), i) {
                return Err(bad(
                    &format!("streams[{i}].stream.name"),
                    format!(
                        "`{}` is configured twice (also streams[{first}]); keep one entry",
                        stream.name
                    ),
                ));
            }
            out.push(stream);
        }
        Ok(ConfiguredCatalog { streams: out })
    }

    /// The stream called `name`.
    pub fn get(&self, name: &str) -> Option<&ConfiguredStream> {
        self.streams.iter().find(|s| s.name == name)
    }
}

/// How a configured catalog is made from discover's streams.
const WRAP: &str = "a configured catalog wraps each stream discover lists as \
    {\"stream\": <the stream>, \"sync_mode\": \"incremental\" or \"full_refresh\", \
    \"destination_sync_mode\": \"append\"} in {\"streams\": [...]} (README, \"A configured \
    catalog\")";

fn bad(path: &str, problem: impl Into<String>) -> Error {
    Error::CatalogInvalid {
        path: path.to_string(),
        problem: problem.into(),
    }
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn read_stream(entry: &Value, path: &str) -> Result<ConfiguredStream, Error> {
    let obj = entry.as_object().ok_or_else(|| {
        bad(
            path,
            format!(
                "expected a configured stream {{\"stream\": ..., \"sync_mode\": ...}}, got {}",
                json_kind(entry)
            ),
        )
    })?;
    let stream = match field(obj, "stream") {
        Some(Value::Object(s)) => s,
        None if obj.contains_key("name") && obj.contains_key("json_schema") => {
            return Err(bad(
                &format!("{path}.stream"),
                format!("missing: this entry is a stream as discover lists it; {WRAP}"),
            ))
        }
        None => {
            return Err(bad(
                &format!("{path}.stream"),
                "missing; give the stream as discover returned it",
            ))
        }
        Some(other) => {
            return Err(bad(
                &format!("{path}.stream"),
                format!("expected an object, got {}", json_kind(other)),
            ))
        }
    };
    let name = match field(stream, "name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        _ => {
            return Err(bad(
                &format!("{path}.stream.name"),
                "missing or empty; give the object's API name, e.g. \"Account\"",
            ))
        }
    };
    let namespace = match field(stream, "namespace") {
        None => None,
        Some(Value::String(ns)) => Some(ns.clone()),
        Some(other) => {
            return Err(bad(
                &format!("{path}.stream.namespace"),
                format!("expected a string or null, got {}", json_kind(other)),
            ))
        }
    };
    let mut field_schemas = BTreeMap::new();
    let selected_fields =
        match field(stream, "json_schema") {
            Some(Value::Object(schema)) => match field(schema, "properties") {
                None => None,
                Some(Value::Object(props)) => {
                    let mut fields: Vec<String> = props.keys().cloned().collect();
                    fields.sort();
                    field_schemas = props.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    Some(fields)
                }
                Some(other) => {
                    return Err(bad(
                        &format!("{path}.stream.json_schema.properties"),
                        format!(
                            "expected an object of field schemas, got {}",
                            json_kind(other)
                        ),
                    ))
                }
            },
            None => return Err(bad(
                &format!("{path}.stream.json_schema"),
                "missing; give the stream's schema as discover returned it (its properties select \
                 the fields)",
            )),
            Some(other) => {
                return Err(bad(
                    &format!("{path}.stream.json_schema"),
                    format!("expected a JSON schema object, got {}", json_kind(other)),
                ))
            }
        };
    let sync_mode = match field(obj, "sync_mode") {
        Some(Value::String(m)) if m == "full_refresh" => SyncMode::FullRefresh,
        Some(Value::String(m)) if m == "incremental" => SyncMode::Incremental,
        Some(other) => {
            return Err(bad(
                &format!("{path}.sync_mode"),
                format!("{other} is not a sync mode; use \"full_refresh\" or \"incremental\""),
            ))
        }
        None => {
            return Err(bad(
                &format!("{path}.sync_mode"),
                "missing; use \"full_refresh\" or \"incremental\"",
            ))
        }
    };
    let destination_sync_mode = match field(obj, "destination_sync_mode") {
        None => DestinationSyncMode::Append,
        Some(Value::String(m)) => match m.as_str() {
            "append" => DestinationSyncMode::Append,
            "overwrite" => DestinationSyncMode::Overwrite,
            "append_dedup" => DestinationSyncMode::AppendDedup,
            "overwrite_dedup" => DestinationSyncMode::OverwriteDedup,
            "update" => DestinationSyncMode::Update,
            "soft_delete" => DestinationSyncMode::SoftDelete,
            _ => return Err(bad_destination(path, &Value::String(m.clone()))),
        },
        Some(other) => return Err(bad_destination(path, other)),
    };
    let cursor_field = match field(obj, "cursor_field") {
        None => Vec::new(),
        Some(value) => {
            let at = format!("{path}.cursor_field");
            let parts = string_list(value, &at)?;
            if parts.len() > 1 {
                return Err(bad(
                    &at,
                    "a nested cursor is not supported; Salesforce cursors are top-level fields, \
                     e.g. [\"SystemModstamp\"]",
                ));
            }
            parts
        }
    };
    let primary_key = match field(obj, "primary_key") {
        None => Vec::new(),
        Some(Value::Array(paths)) => paths
            .iter()
            .enumerate()
            .map(|(j, p)| string_list(p, &format!("{path}.primary_key[{j}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(bad(
                &format!("{path}.primary_key"),
                format!(
                    "expected a list of field paths such as [[\"Id\"]], got {}",
                    json_kind(other)
                ),
            ))
        }
    };
    // Read leniently: the keys were accepted and ignored before, and a platform that sends
    // something else asks for no removal that can be relied on.
    let generation = |key: &str| field(obj, key).and_then(Value::as_u64);
    let removes_older = match (
        generation("minimum_generation_id"),
        generation("generation_id"),
    ) {
        (Some(minimum), Some(current)) => minimum > 0 && minimum == current,
        _ => false,
    };
    Ok(ConfiguredStream {
        name,
        namespace,
        selected_fields,
        sync_mode,
        replaces_on_success: matches!(
            destination_sync_mode,
            DestinationSyncMode::Overwrite | DestinationSyncMode::OverwriteDedup
        ) || removes_older,
        destination_sync_mode,
        cursor_field,
        primary_key,
        field_schemas,
    })
}

fn bad_destination(path: &str, value: &Value) -> Error {
    bad(
        &format!("{path}.destination_sync_mode"),
        format!(
            "{value} is not a destination sync mode; use \"append\", \"overwrite\", \
             \"append_dedup\", \"overwrite_dedup\", \"update\" or \"soft_delete\""
        ),
    )
}

/// A field path: a list of non-empty strings.
fn string_list(value: &Value, path: &str) -> Result<Vec<String>, Error> {
    let items = value.as_array().ok_or_else(|| {
        bad(
            path,
            format!(
                "expected a list of field names such as [\"Id\"], got {}",
                json_kind(value)
            ),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(k, item)| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            other => Err(bad(
                &format!("{path}[{k}]"),
                format!("expected a field name, got {}", json_kind(other)),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn airbyte_catalog() -> Value {
        json!({
            "streams": [
                {
                    "stream": {
                        "name": "Account",
                        "json_schema": {"$schema": "http://json-schema.org/draft-07/schema#",
                            "type": "object", "additionalProperties": true,
                            "properties": {"Name": {"type": ["null", "string"]},
                                           "Id": {"type": ["null", "string"]},
                                           "SystemModstamp": {"type": ["null", "string"], "format": "date-time"}}},
                        "supported_sync_modes": ["full_refresh", "incremental"],
                        "source_defined_cursor": true,
                        "default_cursor_field": ["SystemModstamp"],
                        "source_defined_primary_key": [["Id"]],
                        "is_resumable": true,
                        "is_file_based": false
                    },
                    "sync_mode": "incremental",
                    "destination_sync_mode": "append_dedup",
                    "cursor_field": ["SystemModstamp"],
                    "primary_key": [["Id"]],
                    "generation_id": 3,
                    "minimum_generation_id": 0,
                    "sync_id": 1234
                },
                {
                    "stream": {"name": "Task", "namespace": null, "json_schema": {"type": "object"},
                               "supported_sync_modes": ["full_refresh"]},
                    "sync_mode": "full_refresh",
                    "destination_sync_mode": "overwrite"
                }
            ]
        })
    }

    #[test]
    fn reads_an_airbyte_catalog() {
        let catalog = ConfiguredCatalog::from_value(&airbyte_catalog()).unwrap();
        assert_eq!(
            catalog.streams[0],
            ConfiguredStream {
                name: "Account".into(),
                namespace: None,
                selected_fields: Some(vec!["Id".into(), "Name".into(), "SystemModstamp".into()]),
                sync_mode: SyncMode::Incremental,
                destination_sync_mode: DestinationSyncMode::AppendDedup,
                cursor_field: vec!["SystemModstamp".into()],
                primary_key: vec![vec!["Id".into()]],
                field_schemas: [
                    ("Id", json!({"type": ["null", "string"]})),
                    ("Name", json!({"type": ["null", "string"]})),
                    (
                        "SystemModstamp",
                        json!({"type": ["null", "string"], "format": "date-time"})
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
                replaces_on_success: false,
            }
        );
        // Overwrite, or a refresh that removes older generations, replaces the destination's
        // data on success; a plain sync (minimum 0), or ids that are not counts, do not.
        assert!(catalog.get("Task").unwrap().replaces_on_success);
        let mut value = airbyte_catalog();
        value["streams"][0]["destination_sync_mode"] = json!("overwrite_dedup");
        let read = ConfiguredCatalog::from_value(&value).unwrap();
        assert!(read.get("Account").unwrap().replaces_on_success);
        for (minimum, current, replaces) in [
            (json!(3), json!(3), true),
            (json!(0), json!(3), false),
            (json!(0), json!(0), false),
            (json!(2), json!(3), false),
            (json!("3"), json!(3), false),
        ] {
            let mut value = airbyte_catalog();
            value["streams"][0]["minimum_generation_id"] = minimum;
            value["streams"][0]["generation_id"] = current;
            let read = ConfiguredCatalog::from_value(&value).unwrap();
            assert_eq!(
                read.get("Account").unwrap().replaces_on_success,
                replaces,
                "{}",
                value["streams"][0]
            );
        }
        let account = catalog.get("Account").unwrap();
        assert_eq!(account.cursor(), Some("SystemModstamp"));
        assert!(account.selects("name"));
        assert!(!account.selects("Phone"));
        let task = catalog.get("Task").unwrap();
        assert_eq!(task.selected_fields, None);
        assert!(task.selects("Anything"));
        assert_eq!(task.sync_mode, SyncMode::FullRefresh);
        assert_eq!(task.destination_sync_mode, DestinationSyncMode::Overwrite);
        assert_eq!(task.cursor(), None);
        assert!(task.primary_key.is_empty());
        assert_eq!(catalog.get("Lead"), None);
        assert_eq!(SyncMode::Incremental.as_str(), "incremental");
        assert_eq!(DestinationSyncMode::AppendDedup.as_str(), "append_dedup");
        // The protocol's newer modes (v0.16.0) are read too: the records are the same.
        for mode in [DestinationSyncMode::Update, DestinationSyncMode::SoftDelete] {
            let mut value = airbyte_catalog();
            value["streams"][1]["destination_sync_mode"] = json!(mode.as_str());
            let read = ConfiguredCatalog::from_value(&value).unwrap();
            assert_eq!(read.get("Task").unwrap().destination_sync_mode, mode);
        }
        let text = serde_json::to_string(&airbyte_catalog()).unwrap();
        assert_eq!(ConfiguredCatalog::from_json(&text).unwrap(), catalog);
    }

    #[test]
    fn destination_sync_mode_defaults_to_append() {
        let catalog = ConfiguredCatalog::from_value(&json!({"streams": [
            {"stream": {"name": "Lead", "json_schema": {}}, "sync_mode": "full_refresh"}]}))
        .unwrap();
        assert_eq!(
            catalog.streams[0].destination_sync_mode,
            DestinationSyncMode::Append
        );
        assert!(ConfiguredCatalog::from_value(&json!({"streams": []}))
            .unwrap()
            .streams
            .is_empty());
    }

    #[test]
    fn errors_name_the_path_and_the_fix() {
        type Edit = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|c| c["streams"][1]["sync_mode"] = json!("full")),
             "configured catalog `streams[1].sync_mode`: \"full\" is not a sync mode; use \"full_refresh\" or \"incremental\""),
            (Box::new(|c| { c["streams"][0].as_object_mut().unwrap().remove("sync_mode"); }),
             "`streams[0].sync_mode`: missing"),
            (Box::new(|c| c["streams"][1]["destination_sync_mode"] = json!("upsert")),
             "`streams[1].destination_sync_mode`: \"upsert\" is not a destination sync mode"),
            (Box::new(|c| c["streams"][1]["stream"]["name"] = json!("Account")),
             "`streams[1].stream.name`: `Account` is configured twice (also streams[0])"),
            (Box::new(|c| c["streams"][0]["stream"]["name"] = json!("")),
             "`streams[0].stream.name`: missing or empty"),
            (Box::new(|c| { c["streams"][0]["stream"].as_object_mut().unwrap().remove("json_schema"); }),
             "`streams[0].stream.json_schema`: missing"),
            (Box::new(|c| c["streams"][0]["stream"]["json_schema"]["properties"] = json!(["Id"])),
             "`streams[0].stream.json_schema.properties`: expected an object"),
            (Box::new(|c| c["streams"][0]["cursor_field"] = json!(["Owner", "Modstamp"])),
             "`streams[0].cursor_field`: a nested cursor is not supported"),
            (Box::new(|c| c["streams"][0]["cursor_field"] = json!("SystemModstamp")),
             "`streams[0].cursor_field`: expected a list of field names"),
            (Box::new(|c| c["streams"][0]["primary_key"] = json!([["Id", 3]])),
             "`streams[0].primary_key[0][1]`: expected a field name, got a number"),
            (Box::new(|c| c["streams"][0]["primary_key"] = json!("Id")),
             "`streams[0].primary_key`: expected a list of field paths"),
            (Box::new(|c| c["streams"][0] = json!(7)),
             "`streams[0]`: expected a configured stream"),
            (Box::new(|c| { c["streams"][1].as_object_mut().unwrap().remove("stream"); }),
             "`streams[1].stream`: missing"),
            (Box::new(|c| c["streams"][1]["stream"]["namespace"] = json!(1)),
             "`streams[1].stream.namespace`: expected a string or null"),
            (Box::new(|c| c["streams"] = json!({})), "`streams`: expected a list"),
            (Box::new(|c| { c.as_object_mut().unwrap().remove("streams"); }), "`streams`: missing"),
            // discover's output given as it is: its streams, or the whole CATALOG message.
            (Box::new(|c| c["streams"][1] = c["streams"][1]["stream"].clone()),
             "`streams[1].stream`: missing: this entry is a stream as discover lists it; a configured catalog wraps each stream discover lists as {\"stream\": <the stream>, \"sync_mode\""),
            (Box::new(|c| *c = json!({"type": "CATALOG", "catalog": {"streams": []}})),
             "`streams`: missing: this is discover's CATALOG message, not a configured catalog; a configured catalog wraps"),
        ];
        for (edit, want) in cases {
            let mut catalog = airbyte_catalog();
            edit(&mut catalog);
            let msg = ConfiguredCatalog::from_value(&catalog)
                .unwrap_err()
                .to_string();
            assert!(msg.contains(want), "{msg}\n  wanted: {want}");
        }
        let msg = ConfiguredCatalog::from_value(&json!([]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("expected an object {\"streams\": [...]}, got a list"),
            "{msg}"
        );
        let msg = ConfiguredCatalog::from_json("{").unwrap_err().to_string();
        assert!(
            msg.starts_with("configured catalog parse: not valid JSON"),
            "{msg}"
        );
    }
}
