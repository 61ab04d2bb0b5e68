//! The spec never refuses a config that Airbyte source-salesforce 2.10.3's spec accepted.
//!
//! When a connector is upgraded, the Airbyte platform re-validates every saved config against the
//! new spec, and draws the "Authenticate your account" button from the spec's `advanced_auth`.
//! `tests/data/source-salesforce-2.10.3.spec.json` is 2.10.3's published spec (see
//! `tests/data/README.md`); [`narrowings`] walks it beside `sfconnect spec` and names every change
//! that could refuse a saved config, and a corpus of configs saved under 2.10.3 must pass both
//! the spec and the config parser.
//!
//! Airbyte's own comparator agrees. Run by hand (no Python in the test command) with airbyte-cdk
//! 7.39.1 in a venv:
//!
//! ```text
//! python -c 'import json, subprocess, sys, importlib.util as u
//! s = u.spec_from_file_location("c", ".../airbyte_cdk/test/standard_tests/_spec_compatibility.py")
//! c = u.module_from_spec(s); sys.modules["c"] = c; s.loader.exec_module(c)
//! old = json.load(open("sf-cli/tests/data/source-salesforce-2.10.3.spec.json"))
//! new = json.loads(subprocess.check_output(["target/debug/sfconnect", "spec"]))["spec"]
//! r = c.compare_specs(old, new); print(r.breaking, len(r.compatible))'
//! ```
//!
//! Result on the spec of this commit (airbyte-cdk 7.39.1): **0 breaking, 28 compatible**: the new
//! optional properties (`login_url`, `api_version`, `num_workers`, `api_budget`, `auth_flow`,
//! `username`, `private_key`), `refresh_token` no longer required, `format` removed from
//! `start_date`/`end_date` (2.10.3's own examples are dates, which `date-time` refuses), the
//! added `supported_destination_sync_modes`, and 17 annotations (titles, descriptions). Before this
//! change it reported (issue 16) five breaking ones (no `advanced_auth`, an `enum` on `auth_type`, patterns
//! on `stream_slice_step` and `lookback_window`, a rewritten `end_date` pattern).
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::{json, Map, Value};

const BIN: &str = env!("CARGO_BIN_EXE_sfconnect");

fn published() -> Value {
    let text = include_str!("data/source-salesforce-2.10.3.spec.json");
    serde_json::from_str(text).unwrap()
}

/// The `spec` of `sfconnect spec`'s SPEC message.
fn ours() -> Value {
    let out = Command::new(BIN).arg("spec").output().unwrap();
    assert!(out.status.success());
    let message: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(message["type"], "SPEC");
    message["spec"].clone()
}

/// Keywords that constrain a value; each is compared on its own below.
const BOUNDS_MIN: [&str; 6] = [
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
    "minContains",
];
const BOUNDS_MAX: [&str; 6] = [
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
    "maxContains",
];
/// Keywords whose effect this walk does not model: any change to them counts as a narrowing.
const UNMODELED: [&str; 16] = [
    "$ref",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "propertyNames",
    "patternProperties",
    "contains",
    "multipleOf",
    "uniqueItems",
];

/// Every change from `old` to `new` (two whole `spec` objects) that can refuse a config `old`
/// accepted, or break how the platform reads one: a removed property, a new required key, a
/// narrower type, an added or changed `const`/`enum`/`pattern`/`format`/bound, a structural
/// keyword added or changed, a secret no longer marked secret, `advanced_auth` removed or
/// changed, a sync mode dropped. Empty when `new` only widens.
fn narrowings(old: &Value, new: &Value) -> Vec<String> {
    let mut found = Vec::new();
    schema(
        &old["connectionSpecification"],
        &new["connectionSpecification"],
        "connectionSpecification",
        &mut found,
    );
    match (old.get("advanced_auth"), new.get("advanced_auth")) {
        (Some(_), None) => found.push("advanced_auth was removed".into()),
        (Some(a), Some(b)) if a != b => found.push("advanced_auth changed".into()),
        _ => {}
    }
    let modes = |v: &Value| -> Vec<Value> {
        v["supported_destination_sync_modes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let new_modes = modes(new);
    if new.get("supported_destination_sync_modes").is_some() {
        for mode in modes(old) {
            if !new_modes.contains(&mode) {
                found.push(format!("sync mode {mode} was dropped"));
            }
        }
    }
    found
}

fn types(node: &Map<String, Value>) -> Option<Vec<String>> {
    match node.get("type")? {
        Value::String(t) => Some(vec![t.clone()]),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
        ),
        _ => Some(Vec::new()),
    }
}

/// A node's `enum`, or its `const` as a one-value list, under the keyword's name. The same
/// keyword must pin them before and after: Airbyte's comparator calls an `enum` that replaces a
/// `const` a narrowing, even when the enum holds the const (it compares keywords, not sets).
fn pinned(node: &Map<String, Value>) -> Option<(&'static str, Vec<Value>)> {
    if let Some(c) = node.get("const") {
        return Some(("const", vec![c.clone()]));
    }
    Some(("enum", node.get("enum")?.as_array()?.clone()))
}

fn schema(old: &Value, new: &Value, at: &str, found: &mut Vec<String>) {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        if old != new && new != &json!(true) {
            found.push(format!("{at}: changed from {old} to {new}"));
        }
        return;
    };
    // Types: every type allowed before is allowed still (`integer` inside `number`).
    if let Some(new_types) = types(new) {
        match types(old) {
            None => found.push(format!("{at}: a `type` was added")),
            Some(old_types) => {
                for t in old_types {
                    let kept = new_types.contains(&t)
                        || (t == "integer" && new_types.iter().any(|n| n == "number"));
                    if !kept {
                        found.push(format!("{at}: type `{t}` is no longer allowed"));
                    }
                }
            }
        }
    }
    // Pinned values: whatever was allowed is still in the new set.
    if let Some((new_key, new_values)) = pinned(new) {
        match pinned(old) {
            Some((old_key, _)) if old_key != new_key => {
                found.push(format!("{at}: a `{new_key}` replaced the `{old_key}`"))
            }
            None => found.push(format!("{at}: a `{new_key}` was added")),
            Some((_, old_values)) => {
                for v in old_values {
                    if !new_values.contains(&v) {
                        found.push(format!("{at}: value {v} is no longer allowed"));
                    }
                }
            }
        }
    }
    for key in ["pattern", "format"] {
        if let Some(p) = new.get(key) {
            match old.get(key) {
                None => found.push(format!("{at}: a `{key}` was added")),
                Some(q) if q != p => found.push(format!("{at}: `{key}` changed from {q} to {p}")),
                _ => {}
            }
        }
    }
    for (keys, looser) in [
        (
            &BOUNDS_MIN,
            (|n: f64, o: f64| n <= o) as fn(f64, f64) -> bool,
        ),
        (&BOUNDS_MAX, |n, o| n >= o),
    ] {
        for key in keys.iter() {
            let Some(n) = new.get(*key).and_then(Value::as_f64) else {
                continue;
            };
            match old.get(*key).and_then(Value::as_f64) {
                Some(o) if looser(n, o) => {}
                Some(o) => found.push(format!("{at}: `{key}` tightened from {o} to {n}")),
                None => found.push(format!("{at}: a `{key}` was added")),
            }
        }
    }
    for key in UNMODELED {
        if new.get(key).is_some() && new.get(key) != old.get(key) {
            found.push(format!("{at}: `{key}` was added or changed"));
        }
    }
    let names = |n: &Map<String, Value>, k: &str| -> Vec<Value> {
        n.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let old_required = names(old, "required");
    for name in names(new, "required") {
        if !old_required.contains(&name) {
            found.push(format!("{at}: {name} is now required"));
        }
    }
    let open = |v: Option<&Value>| v.is_none() || v == Some(&json!(true)) || v == Some(&json!({}));
    if open(old.get("additionalProperties")) && !open(new.get("additionalProperties")) {
        found.push(format!("{at}: additionalProperties was closed"));
    }
    if old.get("airbyte_secret") == Some(&json!(true))
        && new.get("airbyte_secret") != Some(&json!(true))
    {
        found.push(format!("{at}: is no longer airbyte_secret"));
    }
    let empty = Map::new();
    let props = |n: &Map<String, Value>| n.get("properties").and_then(Value::as_object).cloned();
    let new_props = props(new).unwrap_or_else(|| empty.clone());
    for (name, old_prop) in props(old).unwrap_or_default() {
        match new_props.get(&name) {
            None => found.push(format!("{at}.properties.{name} was removed")),
            Some(new_prop) => schema(
                &old_prop,
                new_prop,
                &format!("{at}.properties.{name}"),
                found,
            ),
        }
    }
    match (old.get("items"), new.get("items")) {
        (Some(a), Some(b)) => schema(a, b, &format!("{at}.items"), found),
        (None, Some(b)) if !open(Some(b)) => found.push(format!("{at}: `items` was added")),
        _ => {}
    }
}

#[test]
fn ours_narrows_nothing_of_2_10_3() {
    let found = narrowings(&published(), &ours());
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn ours_keeps_2_10_3s_consent_flow_and_auth_type_as_published() {
    let (old, new) = (published(), ours());
    assert_eq!(new["advanced_auth"], old["advanced_auth"]);
    let props = |v: &Value| v["connectionSpecification"]["properties"].clone();
    assert_eq!(props(&new)["auth_type"], props(&old)["auth_type"]);
    for key in ["start_date", "end_date"] {
        assert_eq!(
            props(&new)[key]["pattern"],
            props(&old)[key]["pattern"],
            "{key}"
        );
    }
    for key in ["stream_slice_step", "lookback_window"] {
        assert_eq!(props(&new)[key].get("pattern"), None, "{key}");
    }
}

/// The walk finds each kind of narrowing, put by hand into 2.10.3's spec.
#[test]
fn each_narrowing_is_found() {
    let base = published();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 14] = [
        (
            "property removed",
            |s| {
                s["connectionSpecification"]["properties"]
                    .as_object_mut()
                    .unwrap()
                    .remove("lookback_window");
            },
            "properties.lookback_window was removed",
        ),
        (
            "new required key",
            |s| {
                s["connectionSpecification"]["required"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("start_date"));
            },
            "\"start_date\" is now required",
        ),
        (
            "narrower type",
            |s| {
                s["connectionSpecification"]["properties"]["is_sandbox"]["type"] = json!("string");
            },
            "type `boolean` is no longer allowed",
        ),
        (
            "enum added",
            |s| {
                s["connectionSpecification"]["properties"]["stream_slice_step"]["enum"] =
                    json!(["P30D", "P7D"]);
            },
            "stream_slice_step: a `enum` was added",
        ),
        (
            "const replaced by an enum",
            |s| {
                let a = &mut s["connectionSpecification"]["properties"]["auth_type"];
                a.as_object_mut().unwrap().remove("const");
                a["enum"] = json!(["Client", "client_credentials"]);
            },
            "auth_type: a `enum` replaced the `const`",
        ),
        (
            "enum value dropped",
            |s| {
                s["connectionSpecification"]["properties"]["streams_criteria"]["items"]
                    ["properties"]["criteria"]["enum"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            },
            "value \"not exacts\" is no longer allowed",
        ),
        (
            "pattern added",
            |s| {
                s["connectionSpecification"]["properties"]["lookback_window"]["pattern"] =
                    json!("^P");
            },
            "lookback_window: a `pattern` was added",
        ),
        (
            "pattern rewritten",
            |s| {
                s["connectionSpecification"]["properties"]["end_date"]["pattern"] =
                    json!("^(|[0-9]{4}-[0-9]{2}-[0-9]{2})$");
            },
            "end_date: `pattern` changed",
        ),
        (
            "bound added",
            |s| {
                s["connectionSpecification"]["properties"]["client_id"]["minLength"] = json!(10);
            },
            "client_id: a `minLength` was added",
        ),
        (
            "closed",
            |s| {
                s["connectionSpecification"]["additionalProperties"] = json!(false);
            },
            "additionalProperties was closed",
        ),
        (
            "advanced_auth removed",
            |s| {
                s.as_object_mut().unwrap().remove("advanced_auth");
            },
            "advanced_auth was removed",
        ),
        (
            "advanced_auth changed",
            |s| {
                s["advanced_auth"]["predicate_value"] = json!("OAuth");
            },
            "advanced_auth changed",
        ),
        (
            "secret unmarked",
            |s| {
                s["connectionSpecification"]["properties"]["refresh_token"]["airbyte_secret"] =
                    json!(false);
            },
            "refresh_token: is no longer airbyte_secret",
        ),
        (
            "branch added",
            |s| {
                s["connectionSpecification"]["oneOf"] = json!([{"required": ["refresh_token"]}]);
            },
            "`oneOf` was added or changed",
        ),
    ];
    for (what, edit, want) in cases {
        let mut doctored = base.clone();
        edit(&mut doctored);
        let found = narrowings(&base, &doctored);
        assert!(found.iter().any(|f| f.contains(want)), "{what}: {found:#?}");
    }
    // Bounds move both ways: looser passes, tighter is found.
    let mut old = base.clone();
    old["connectionSpecification"]["properties"]["x"] =
        json!({"type": "integer", "minimum": 1, "maximum": 50});
    let mut looser = old.clone();
    looser["connectionSpecification"]["properties"]["x"] =
        json!({"type": "number", "minimum": 0, "maximum": 60});
    assert_eq!(narrowings(&old, &looser), Vec::<String>::new());
    let mut tighter = old.clone();
    tighter["connectionSpecification"]["properties"]["x"]["maximum"] = json!(20);
    assert_eq!(
        narrowings(&old, &tighter),
        ["connectionSpecification.properties.x: `maximum` tightened from 50 to 20"]
    );
}

/// Widening edits are not narrowings: a new optional property, a key no longer required, a
/// `const` or `pattern` removed, a wider type.
#[test]
fn widenings_pass() {
    let base = published();
    let mut wider = base.clone();
    let spec = &mut wider["connectionSpecification"];
    spec["properties"]["new_key"] = json!({"type": "string", "pattern": "^x$"});
    spec["required"] = json!(["client_id"]);
    spec["properties"]["auth_type"]
        .as_object_mut()
        .unwrap()
        .remove("const");
    spec["properties"]["start_date"]
        .as_object_mut()
        .unwrap()
        .remove("pattern");
    spec["properties"]["is_sandbox"]["type"] = json!(["boolean", "string"]);
    spec["properties"]["streams_criteria"]["items"]["properties"]["criteria"]["enum"]
        .as_array_mut()
        .unwrap()
        .push(json!("matches"));
    assert_eq!(narrowings(&base, &wider), Vec::<String>::new());
}

/// Configs as 2.10.3 saved them, edge values included.
fn corpus() -> Vec<Value> {
    let base =
        json!({"client_id": "3MVG9abc", "client_secret": "s3cr3t", "refresh_token": "5Aep861xyz"});
    let with = |extra: Value| {
        let mut c = base.clone();
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    vec![
        base.clone(),
        with(json!({"auth_type": "Client", "is_sandbox": false})),
        with(json!({"is_sandbox": true, "start_date": "2021-07-25", "end_date": ""})),
        with(json!({"start_date": "2021-07-25T00:00:00Z", "end_date": "2021-07-26T00:00:00Z"})),
        with(json!({"start_date": "2021-07-25", "end_date": "2024-01-01"})),
        with(json!({"stream_slice_step": "P1M", "lookback_window": "P1DT12H"})),
        with(json!({"stream_slice_step": "P1Y", "lookback_window": "PT0S"})),
        with(json!({"stream_slice_step": "PT12H", "lookback_window": "PT30M"})),
        with(
            json!({"stream_slice_step": "P7D", "lookback_window": "PT1H", "force_use_bulk_api": true}),
        ),
        with(json!({"preserve_na_values": true, "streams_criteria": []})),
        with(json!({"streams_criteria": [
            {"criteria": "starts with", "value": "Acc"}, {"criteria": "not exacts", "value": "Lead"},
            {"criteria": "ends not with", "value": "History"}]})),
        with(json!({"num_workers": 20, "wait_timeout": 30})),
        with(
            json!({"auth_type": "Client", "is_sandbox": false, "start_date": "2023-01-01T00:00:00Z",
                    "end_date": "", "force_use_bulk_api": false, "stream_slice_step": "P30D",
                    "lookback_window": "PT10M", "preserve_na_values": false,
                    "streams_criteria": [{"criteria": "contains", "value": "a"}]}),
        ),
    ]
}

/// 2.10.3's spec as the platform applies it: formats are annotations there (its own example
/// `2021-07-25` is not a `date-time`).
fn validator_of(spec: &Value, formats: bool) -> jsonschema::Validator {
    jsonschema::draft7::options()
        .should_validate_formats(formats)
        .build(&spec["connectionSpecification"])
        .unwrap()
}

#[test]
fn configs_saved_under_2_10_3_pass_the_spec_and_the_parser() {
    let theirs = validator_of(&published(), false);
    // Ours with formats checked: it has none left to fail on.
    let spec = validator_of(&ours(), true);
    let now = chrono::Utc::now();
    for config in corpus() {
        assert!(theirs.is_valid(&config), "not a 2.10.3 config: {config}");
        let errors: Vec<String> = spec.iter_errors(&config).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{config}: {errors:?}");
        let parsed = sf_sync::SyncConfig::from_value(&config, now);
        assert!(
            parsed.is_ok(),
            "{config}: {:?}",
            parsed.err().map(|e| e.to_string())
        );
    }
    // What the parser reads from the edge values: a month is 30 days, `P1DT12H` 36 hours.
    let edge = &corpus()[5];
    let c = sf_sync::SyncConfig::from_value(edge, now).unwrap().config;
    assert_eq!(c.stream_slice_step.as_std().as_secs(), 30 * 86_400);
    assert_eq!(c.lookback_window.as_std().as_secs(), 36 * 3600);
    let c = sf_sync::SyncConfig::from_value(&corpus()[2], now)
        .unwrap()
        .config;
    assert_eq!(c.end_date, None);
    assert!(c.is_sandbox);
}

/// What 2.10.3's spec accepts but its `check` refuses (`_validate_stream_slice_step`: "is too
/// small. It should be no less than 1 second"; `_validate_end_date`: not after `start_date`)
/// passes our spec too and is refused by our parser, with the key named.
#[test]
fn what_2_10_3_refuses_at_run_time_is_refused_by_the_parser() {
    let theirs = validator_of(&published(), false);
    let spec = validator_of(&ours(), true);
    let base = json!({"client_id": "a", "client_secret": "b", "refresh_token": "c"});
    for (key, value, extra, want) in [
        ("stream_slice_step", json!("PT0.5S"), json!({}),
         "`stream_slice_step`: `PT0.5S` is not an ISO 8601 duration of at least 1 second (it is 0.5 s)"),
        ("stream_slice_step", json!("P"), json!({}), "`stream_slice_step`: `P` is not an ISO 8601 duration"),
        ("lookback_window", json!("ten minutes"), json!({}), "`lookback_window`: `ten minutes` is not an ISO 8601 duration"),
        ("end_date", json!("2021-01-01"), json!({"start_date": "2022-01-01"}), "`end_date`: `2021-01-01` is not after start_date"),
    ] {
        let mut config = base.clone();
        config[key] = value.clone();
        config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        assert!(theirs.is_valid(&config), "{key} = {value}");
        assert!(spec.is_valid(&config), "{key} = {value}");
        let err = sf_sync::SyncConfig::from_value(&config, chrono::Utc::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{key} = {value}: {err}");
    }
}
