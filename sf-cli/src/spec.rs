//! The connection specification: Airbyte source-salesforce 2.10.3's spec, kept as it is (every
//! property, pattern, `const` and its `advanced_auth` consent flow), with sfconnect's own keys
//! added as optional properties. Saved configs are re-validated against the spec when a connector
//! is upgraded, so the spec never refuses what 2.10.3's accepted: what 2.10.3's spec lets through
//! (`stream_slice_step: "P"`, an `end_date` before `start_date`, ...) the config parser
//! (`sf_sync::SyncConfig`) refuses with an error naming the key, as 2.10.3's `check` does.
//! `sf-cli/tests/spec_compat.rs` holds the rule against 2.10.3's published spec.

use serde_json::{json, Value};

/// 2.10.3's `start_date` pattern.
const DATE_PATTERN: &str = "^([0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?)$";
/// 2.10.3's `end_date` pattern: the same, or empty (no end date).
const END_DATE_PATTERN: &str = "^$|^([0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?)$";

/// The `spec` object of the SPEC message.
pub fn spec() -> Value {
    json!({
        "documentationUrl": "https://docs.airbyte.com/integrations/sources/salesforce",
        "supportsIncremental": true,
        "supported_destination_sync_modes": ["overwrite", "append", "append_dedup"],
        "connectionSpecification": connection_specification(),
        "advanced_auth": advanced_auth(),
    })
}

/// The config's JSON schema.
fn connection_specification() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Salesforce Source Spec (sfconnect)",
        "type": "object",
        // 2.10.3 also requires refresh_token; the client credentials and JWT grants need none.
        "required": ["client_id", "client_secret"],
        "additionalProperties": true,
        "properties": {
            "is_sandbox": {
                "title": "Sandbox", "type": "boolean", "default": false, "order": 1,
                "description": "Log in at test.salesforce.com instead of login.salesforce.com."
            },
            // As 2.10.3 has it: the platform hides a `const` field and sets it, and its
            // `advanced_auth` shows the "Authenticate your account" button when it is `Client`.
            // Other grants are chosen with `auth_flow`.
            "auth_type": {"type": "string", "const": "Client"},
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
                "description": "An OAuth refresh token of the user whose data is synced (`sfconnect login` gets one)."
            },
            "start_date": {
                "title": "Replication Start Date", "type": "string", "order": 5,
                // 2.10.3 adds `format: date-time`, which its own examples (a date alone) do not
                // meet: validators that check formats would refuse them. Left out, which widens.
                "pattern": DATE_PATTERN,
                "pattern_descriptor": "YYYY-MM-DD or YYYY-MM-DDTHH:mm:ssZ",
                "examples": ["2021-07-25", "2021-07-25T00:00:00Z"],
                "description": "UTC. Data before it is not replicated. Default: two years before the sync."
            },
            "end_date": {
                "title": "Replication End Date", "type": "string", "order": 6,
                "pattern": END_DATE_PATTERN,
                "pattern_descriptor": "YYYY-MM-DD or YYYY-MM-DDTHH:mm:ssZ",
                "examples": ["2024-01-01", "2024-01-01T00:00:00Z"],
                "description": "UTC, exclusive. Incremental streams only. Empty: now."
            },
            "force_use_bulk_api": {
                "title": "Force to use BULK API", "type": "boolean", "default": false, "order": 7,
                "description": "Read every object Bulk API 2.0 can serve through it, whatever its volume, objects with base64 fields included (those fields are then left out; compound fields need no flag: they are read through their components)."
            },
            "stream_slice_step": {
                "title": "Stream Slice Step for Incremental sync", "type": "string", "default": "P30D",
                "order": 8, "examples": ["PT12H", "P7D", "P30D", "P1M", "P1Y"],
                "description": "ISO 8601 duration of the windows an incremental stream is read in when its volume is unknown; at least 1 second (checked when the connector runs). A stream whose rows are counted is read in windows sized by rows instead (up to 100,000 through REST, 500,000 per Bulk job), halved when Salesforce times a query out."
            },
            "lookback_window": {
                "title": "Lookback Window", "type": "string", "default": "PT10M", "order": 9,
                "examples": ["PT10M", "PT30M", "PT1H"],
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
                            "type": "string", "title": "Search criteria", "order": 1,
                            "default": "contains",
                            "enum": ["starts with", "ends with", "contains", "exacts",
                                     "starts not with", "ends not with", "not contains", "not exacts"]
                        },
                        "value": {"type": "string", "title": "Search value", "order": 2}
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
                "title": "Streams in flight", "type": "integer",
                "minimum": 1, "order": 14,
                "description": "How many streams are read at once; more than 50 is read as 50, as Airbyte's connector reads it. Default: 4 (left out of the schema's defaults, so a config saved by a form that fills them in does not carry it: Airbyte's connector reads this key too, with 20 when it is absent)."
            },
            "api_budget": {
                "title": "API budget", "type": "number", "exclusiveMinimum": 0, "maximum": 1,
                "order": 15,
                "description": "A ceiling on the org's daily API usage (all its clients, as Salesforce counts it), as a share of the daily limit, e.g. 0.5: the sync starts no request once the usage reaches it and stops early with its state, leaving the rest to other integrations. Default: no cap besides the limit."
            },
            "auth_flow": {
                "title": "OAuth flow", "type": "string", "order": 16,
                "enum": ["refresh_token", "client_credentials", "jwt"], "default": "refresh_token",
                "description": "refresh_token: a user's refresh token (the default). client_credentials: the connected app's run-as user; needs login_url set to the org's My Domain. jwt: the JWT bearer flow, with username and private_key; Salesforce needs no client_secret for it, but the spec requires the key, as before: give the consumer secret or an empty string."
            },
            "username": {
                "title": "Username", "type": "string", "order": 17,
                "examples": ["integration@acme.com"],
                "description": "JWT bearer flow: the Salesforce username the sync runs as, pre-authorized for the connected app."
            },
            "private_key": {
                "title": "Private key (PEM)", "type": "string", "airbyte_secret": true,
                "multiline": true, "order": 18,
                "description": "JWT bearer flow: the RSA private key (PEM, unencrypted) whose certificate is uploaded to the connected app."
            },
            "formula_refresh": {
                "title": "Formula refresh", "type": "string", "order": 19,
                "examples": ["P1D", "PT12H", "P7D"],
                "description": "ISO 8601 duration: an incremental stream with formula fields is read whole again once its last whole read is older than this, so formula values that changed without a SystemModstamp arrive. Default: never."
            },
            "hard_deletes": {
                "title": "Hard deletes", "type": "boolean", "default": true, "order": 20,
                "description": "Ask Salesforce (getDeleted) for records purged from the recycle bin or hard-deleted since the last sync and emit each as a record with IsDeleted true: one API call per 25 incremental streams and sync (a composite call), or one for a stream asked alone."
            }
        }
    })
}

/// 2.10.3's OAuth 2.0 consent flow, as published: PKCE S256, `is_sandbox` picks the host, the
/// refresh token is the output, and `client_id`/`client_secret` come from the platform's server
/// side.
fn advanced_auth() -> Value {
    let host = "https://{% if is_sandbox %}test{% else %}login{% endif %}.salesforce.com";
    json!({
        "auth_flow_type": "oauth2.0",
        "predicate_key": ["auth_type"],
        "predicate_value": "Client",
        "oauth_config_specification": {
            "oauth_connector_input_specification": {
                "scopes": [{"scope": "api"}, {"scope": "web"}, {"scope": "refresh_token"}, {"scope": "lightning"}],
                "consent_url": format!("{host}/services/oauth2/authorize?{{{{client_id_param}}}}&{{{{redirect_uri_param}}}}&response_type=code&{{{{scopes_param}}}}&{{{{state_param}}}}&code_challenge={{{{ state_value | codechallengeS256 | replace('+', '-') | replace('/', '_') | replace('=', '') }}}}&code_challenge_method=S256"),
                "state": {"min": 43, "max": 128},
                "access_token_url": format!("{host}/services/oauth2/token"),
                "access_token_headers": {"Content-Type": "application/x-www-form-urlencoded"},
                "access_token_params": {
                    "grant_type": "authorization_code",
                    "code": "{{ auth_code_value }}",
                    "client_id": "{{ client_id_value }}",
                    "client_secret": "{{ client_secret_value }}",
                    "redirect_uri": "{{ redirect_uri_value }}",
                    "code_verifier": "{{ state_value }}"
                },
                "extract_output": ["refresh_token"]
            },
            "oauth_user_input_from_connector_config_specification": {
                "type": "object", "additionalProperties": false,
                "properties": {"is_sandbox": {"type": "boolean", "path_in_connector_config": ["is_sandbox"]}}
            },
            "complete_oauth_output_specification": {
                "type": "object", "additionalProperties": false,
                "properties": {"refresh_token": {"type": "string", "path_in_connector_config": ["refresh_token"]}}
            },
            "complete_oauth_server_input_specification": {
                "type": "object", "additionalProperties": false,
                "properties": {"client_id": {"type": "string"}, "client_secret": {"type": "string"}}
            },
            "complete_oauth_server_output_specification": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "client_id": {"type": "string", "path_in_connector_config": ["client_id"]},
                    "client_secret": {"type": "string", "path_in_connector_config": ["client_secret"]}
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
                    Some("integer") => json!(2),
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
            json!({"client_id": "a", "client_secret": "b", "auth_flow": "client_credentials",
                   "login_url": "https://acme.my.salesforce.com"}),
            json!({"client_id": "a", "client_secret": "", "auth_flow": "jwt", "auth_type": "Client",
                   "username": "sync@acme.com", "private_key": "-----BEGIN PRIVATE KEY-----...",
                   "login_url": "https://acme.my.salesforce.com"}),
            json!({"client_id": "a", "client_secret": "b", "refresh_token": "c",
                   "login_url": "http://127.0.0.1:8765", "start_date": "2021-07-25T00:00:00Z",
                   "end_date": "", "stream_slice_step": "PT12H", "lookback_window": "P1DT2H30M",
                   "force_use_bulk_api": true, "preserve_na_values": true, "api_version": "58.0",
                   "num_workers": 8, "api_budget": 0.5, "wait_timeout": 30, "auth_type": "Client"}),
            json!({"client_id": "a", "client_secret": "b", "refresh_token": "c",
                   "formula_refresh": "P1D", "hard_deletes": false}),
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
            ("num_workers", json!(0)),
            ("api_budget", json!(2)),
            ("auth_type", json!("password")),
            // 2.10.3's `const`: the client credentials grant is chosen with `auth_flow`.
            ("auth_type", json!("client_credentials")),
            ("auth_flow", json!("password")),
            (
                "streams_criteria",
                json!([{"criteria": "like", "value": "x"}]),
            ),
            ("is_sandbox", json!("yes")),
            ("hard_deletes", json!("no")),
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

    /// Durations have no pattern in 2.10.3's spec, so ours has none either (a pattern would
    /// narrow it): the config parser refuses a malformed one, naming the key, before any call.
    #[test]
    fn malformed_durations_pass_the_spec_and_are_refused_by_the_parser() {
        let v = validator();
        let base = json!({"client_id": "a", "client_secret": "b", "refresh_token": "c",
                          "login_url": "http://127.0.0.1:8765"});
        for (key, value, want) in [
            (
                "stream_slice_step",
                "30 days",
                "`stream_slice_step`: `30 days` is not an ISO 8601 duration",
            ),
            (
                "lookback_window",
                "10m",
                "`lookback_window`: `10m` is not an ISO 8601 duration",
            ),
            (
                "formula_refresh",
                "daily",
                "`formula_refresh`: `daily` is not an ISO 8601 duration",
            ),
        ] {
            let mut config = base.clone();
            config[key] = json!(value);
            assert!(
                v.is_valid(&config),
                "{key} = {value} was refused by the spec"
            );
            let err = sf_sync::SyncConfig::from_value(&config, chrono::Utc::now())
                .expect_err("the parser refuses it")
                .to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
