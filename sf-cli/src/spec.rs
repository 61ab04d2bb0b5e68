//! The connection specification: a JSON schema accepting every key the config takes.

use serde_json::{json, Value};

const DATE_PATTERN: &str = "^([0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?)$";
/// The same, or empty (no end date).
const END_DATE_PATTERN: &str = "^(|[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?)$";
/// ISO 8601 durations (`P30D`, `PT12H`, `P1Y2M`); no look-ahead, so every JSON-schema validator
/// takes it. The config parser gives the precise error for what this lets through (`P`, `PT`).
const DURATION_PATTERN: &str = "^P([0-9]+(\\.[0-9]+)?Y)?([0-9]+(\\.[0-9]+)?M)?([0-9]+(\\.[0-9]+)?W)?([0-9]+(\\.[0-9]+)?D)?(T([0-9]+(\\.[0-9]+)?H)?([0-9]+(\\.[0-9]+)?M)?([0-9]+(\\.[0-9]+)?S)?)?$";

/// The `spec` object of the SPEC message.
pub fn spec() -> Value {
    json!({
        "documentationUrl": "https://docs.airbyte.com/integrations/sources/salesforce",
        "supportsIncremental": true,
        "supported_destination_sync_modes": ["overwrite", "append", "append_dedup"],
        "connectionSpecification": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Salesforce Source Spec (sfconnect)",
            "type": "object",
            "required": ["client_id", "client_secret"],
            "additionalProperties": true,
            "properties": {
                "is_sandbox": {
                    "title": "Sandbox", "type": "boolean", "default": false, "order": 1,
                    "description": "Log in at test.salesforce.com instead of login.salesforce.com."
                },
                "auth_type": {
                    "title": "Grant", "type": "string", "enum": ["Client", "client_credentials"],
                    "default": "Client",
                    "description": "Client: the refresh-token grant. client_credentials: the client credentials grant, which needs login_url set to the org's My Domain."
                },
                "client_id": {
                    "title": "Client ID", "type": "string", "order": 2,
                    "description": "The connected app's consumer key."
                },
                "client_secret": {
                    "title": "Client Secret", "type": "string", "airbyte_secret": true, "order": 3,
                    "description": "The connected app's consumer secret."
                },
                "refresh_token": {
                    "title": "Refresh Token", "type": "string", "airbyte_secret": true, "order": 4,
                    "description": "An OAuth refresh token of the user whose data is synced."
                },
                "start_date": {
                    "title": "Replication Start Date", "type": "string", "order": 5,
                    // No `format: date-time`: a date alone is valid here, and validators that
                    // check formats would refuse it.
                    "pattern": DATE_PATTERN,
                    "examples": ["2021-07-25", "2021-07-25T00:00:00Z"],
                    "description": "UTC. Data before it is not replicated. Default: two years before the sync."
                },
                "end_date": {
                    "title": "Replication End Date", "type": "string", "order": 6,
                    "pattern": END_DATE_PATTERN,
                    "examples": ["2024-01-01", "2024-01-01T00:00:00Z"],
                    "description": "UTC, exclusive. Incremental streams only. Empty: now."
                },
                "force_use_bulk_api": {
                    "title": "Force to use BULK API", "type": "boolean", "default": false, "order": 7,
                    "description": "Keep Bulk API 2.0 for objects with base64 or compound fields, dropping those fields."
                },
                "stream_slice_step": {
                    "title": "Stream Slice Step for Incremental sync", "type": "string", "default": "P30D",
                    "order": 8, "pattern": DURATION_PATTERN,
                    "examples": ["PT12H", "P7D", "P30D", "P1M", "P1Y"],
                    "description": "ISO 8601 duration of the largest window read at once; at least 1 second."
                },
                "lookback_window": {
                    "title": "Lookback Window", "type": "string", "default": "PT10M", "order": 9,
                    "pattern": DURATION_PATTERN, "examples": ["PT10M", "PT30M", "PT1H"],
                    "description": "ISO 8601 duration re-read on every incremental sync, against Salesforce's eventual consistency."
                },
                "streams_criteria": {
                    "title": "Filter Salesforce Objects", "type": "array", "order": 10,
                    "description": "Keep objects whose name matches any criterion (case-insensitive). None: every object.",
                    "items": {
                        "type": "object",
                        "required": ["criteria", "value"],
                        "properties": {
                            "criteria": {
                                "type": "string", "default": "contains",
                                "enum": ["starts with", "ends with", "contains", "exacts",
                                         "starts not with", "ends not with", "not contains", "not exacts"]
                            },
                            "value": {"type": "string"}
                        }
                    }
                },
                "preserve_na_values": {
                    "title": "Preserve NA values", "type": "boolean", "default": false, "order": 11,
                    "description": "Accepted for compatibility: sfconnect always keeps NA, N/A, NULL and None as strings."
                },
                "login_url": {
                    "title": "Login URL", "type": "string", "order": 12,
                    "examples": ["https://acme.my.salesforce.com", "http://127.0.0.1:8765"],
                    "description": "A My Domain login URL, or an emulated org on loopback. Overrides is_sandbox."
                },
                "api_version": {
                    "title": "API version", "type": "string", "default": "62.0", "order": 13,
                    "pattern": "^[0-9]{2}\\.0$"
                },
                "num_workers": {
                    "title": "Streams in flight", "type": "integer", "default": 4,
                    "minimum": 1, "maximum": 50, "order": 14
                },
                "api_budget": {
                    "title": "API budget", "type": "number", "exclusiveMinimum": 0, "maximum": 1,
                    "order": 15,
                    "description": "The largest share of the org's daily API limit this sync may use, e.g. 0.5. Default: no cap besides the limit."
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config with every key the spec declares parses, with no "unknown key" warning: the
    /// spec and the engine's config agree.
    #[test]
    fn every_spec_key_is_a_config_key() {
        let spec = spec();
        let properties = spec["connectionSpecification"]["properties"]
            .as_object()
            .expect("properties");
        let mut config = serde_json::Map::new();
        for (key, schema) in properties {
            let value = if let Some(example) = schema["examples"].get(0) {
                example.clone()
            } else if let Some(default) = schema.get("default") {
                default.clone()
            } else if let Some(constant) = schema.get("const") {
                constant.clone()
            } else {
                match schema["type"].as_str() {
                    Some("string") => json!("x"),
                    Some("number") => json!(0.5),
                    Some("array") => json!([]),
                    other => panic!("no sample value for {key} ({other:?})"),
                }
            };
            config.insert(key.clone(), value);
        }
        config.insert("login_url".into(), json!("http://127.0.0.1:8765"));
        let parsed = sf_sync::SyncConfig::from_value(&Value::Object(config), chrono::Utc::now())
            .expect("a config built from the spec parses");
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        for required in spec["connectionSpecification"]["required"]
            .as_array()
            .expect("required")
        {
            assert!(properties.contains_key(required.as_str().expect("name")));
        }
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    fn validator() -> jsonschema::Validator {
        jsonschema::draft7::new(&spec()["connectionSpecification"])
            .expect("the spec is a valid schema")
    }

    /// Orchestrators (PyAirbyte, the Airbyte platform) validate the config against the spec
    /// before running the connector: every config the README shows or the engine takes must pass.
    #[test]
    fn configs_users_write_are_valid() {
        let v = validator();
        let good = [
            json!({"client_id": "3MVG9...", "client_secret": "s", "refresh_token": "5Aep861...",
                   "is_sandbox": false, "start_date": "2024-01-01",
                   "streams_criteria": [{"criteria": "starts with", "value": "Acc"}]}),
            json!({"client_id": "a", "client_secret": "b", "auth_type": "client_credentials",
                   "login_url": "https://acme.my.salesforce.com"}),
            json!({"client_id": "a", "client_secret": "b", "refresh_token": "c",
                   "login_url": "http://127.0.0.1:8765", "start_date": "2021-07-25T00:00:00Z",
                   "end_date": "", "stream_slice_step": "PT12H", "lookback_window": "P1DT2H30M",
                   "force_use_bulk_api": true, "preserve_na_values": true, "api_version": "58.0",
                   "num_workers": 8, "api_budget": 0.5, "wait_timeout": 30, "auth_type": "Client"}),
        ];
        for config in good {
            let errors: Vec<String> = v.iter_errors(&config).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{config}: {errors:?}");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        let v = validator();
        let base = json!({"client_id": "a", "client_secret": "b", "refresh_token": "c"});
        for (key, value) in [
            ("end_date", json!("garbage2024-01-01")),
            ("start_date", json!("2024/01/01")),
            ("stream_slice_step", json!("30 days")),
            ("lookback_window", json!("10m")),
            ("num_workers", json!(0)),
            ("api_budget", json!(2)),
            ("auth_type", json!("password")),
            (
                "streams_criteria",
                json!([{"criteria": "like", "value": "x"}]),
            ),
            ("is_sandbox", json!("yes")),
        ] {
            let mut config = base.clone();
            config[key] = value.clone();
            assert!(!v.is_valid(&config), "{key} = {value} was accepted");
        }
        assert!(
            !v.is_valid(&json!({"client_id": "a"})),
            "client_secret is required"
        );
    }
}
