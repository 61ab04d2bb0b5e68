#![allow(clippy::unwrap_used)]
//! Bad input: config keys of the wrong type or format, missing keys, catalogs and states that do
//! not fit the org. Each gets an error that names the key or path and the fix; and nothing is
//! emitted that could move a stream's state past data it did not read.

mod harness;

use fixtures::{OrgConfig, Scale};
use harness::{assert_union_is_truth, catalog, Env, Run};
use serde_json::{json, Value};

async fn env(name: &str) -> Env {
    Env::start(name, OrgConfig::new(21, Scale::Tiny)).await
}

/// `read` with `config` fails as a config error whose message holds every one of `needles`, and
/// emits neither a record nor a state; `check` reports the same problem as a failed status.
async fn assert_config_refused(env: &Env, config: &Value, needles: &[&str]) {
    let config_path = env.write("config.json", config);
    let catalog_path = env.write("catalog.json", &catalog(&[("Account", "incremental")]));
    let run = env.read(&config_path, &catalog_path, None, &[]).await;
    run.assert_contract();
    assert_eq!(run.code, Some(1), "{config}\n{}", run.dump());
    let error = run.trace_error().unwrap();
    assert_eq!(error["failure_type"], "config_error", "{error}");
    let message = error["message"].as_str().unwrap();
    for needle in needles {
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    }
    assert!(run.of_type("RECORD").is_empty(), "{}", run.dump());
    assert!(run.of_type("STATE").is_empty(), "{}", run.dump());

    let check = env
        .run(&["check", "--config", config_path.to_str().unwrap()], &[])
        .await;
    check.assert_success();
    let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED", "{status}");
    for needle in needles {
        assert!(
            status["message"].as_str().unwrap().contains(needle),
            "`{needle}` not in: {status}"
        );
    }
}

fn with(env: &Env, key: &str, value: Value) -> Value {
    let mut config = env.config(json!({}));
    config[key] = value;
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn dates_in_other_formats_are_refused_with_the_accepted_forms() {
    let env = env("bad-dates").await;
    for (key, value) in [
        ("start_date", json!("01/02/2024")),
        ("start_date", json!("2024-02-30")),
        ("start_date", json!("2024-01-01 00:00:00")),
        ("start_date", json!(20240101)),
        ("end_date", json!("2024-01-01T00:00:00+02:00")),
        ("end_date", json!("tomorrow")),
    ] {
        let config = with(&env, key, value);
        assert_config_refused(&env, &config, &[key, "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SSZ"]).await;
    }
    // An end before the start names both and says what to do.
    let mut config = with(&env, "start_date", json!("2024-01-01"));
    config["end_date"] = json!("2023-12-31");
    assert_config_refused(&env, &config, &["end_date", "start_date", "later date"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn durations_that_are_not_iso_8601_are_refused_with_examples() {
    let env = env("bad-durations").await;
    for (key, value, example) in [
        ("stream_slice_step", json!("30 days"), "P30D"),
        ("stream_slice_step", json!("PT0.1S"), "P30D"),
        ("stream_slice_step", json!("P221S"), "P30D"),
        ("stream_slice_step", json!(2592000), "P30D"),
        ("lookback_window", json!("-PT10M"), "PT10M"),
        ("lookback_window", json!(600), "PT10M"),
        ("lookback_window", json!("10 minutes"), "PT10M"),
    ] {
        let config = with(&env, key, value);
        assert_config_refused(&env, &config, &[key, "ISO 8601", example]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn criteria_values_of_the_wrong_kind_are_refused_with_the_criteria_known() {
    let env = env("bad-criteria").await;
    for (value, path, fix) in [
        (
            json!([{"criteria": "begins with", "value": "Acc"}]),
            "streams_criteria[0].criteria",
            "starts with",
        ),
        (
            json!([{"criteria": "starts with", "value": 5}]),
            "streams_criteria[0].value",
            "e.g. \"Account\"",
        ),
        (
            json!({"criteria": "starts with", "value": "Acc"}),
            "streams_criteria",
            "is not a list",
        ),
        (json!(["Account"]), "streams_criteria[0]", "\"criteria\""),
    ] {
        let config = with(&env, "streams_criteria", value);
        assert_config_refused(&env, &config, &[path, fix]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn booleans_and_numbers_as_strings_are_read_with_a_warning_or_refused() {
    let env = env("bad-booleans").await;
    // "true"/"false" in any case and digit strings are accepted, with a warning naming the key.
    let mut lenient = with(&env, "force_use_bulk_api", json!("False"));
    lenient["num_workers"] = json!("2");
    let path = env.write("lenient.json", &lenient);
    let check = env
        .run(&["check", "--config", path.to_str().unwrap()], &[])
        .await;
    check.assert_success();
    assert_eq!(
        check.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"],
        "SUCCEEDED",
        "{}",
        check.dump()
    );
    for key in ["force_use_bulk_api", "num_workers"] {
        assert!(
            !check.logs_with("WARN", key).is_empty(),
            "no warning about {key}: {}",
            check.dump()
        );
    }
    // Anything else is an error naming the key.
    for (key, value, fix) in [
        ("is_sandbox", json!("yes"), "true"),
        ("force_use_bulk_api", json!(1), "true"),
        ("preserve_na_values", json!("nope"), "true"),
        ("num_workers", json!("many"), "1 to 50"),
        ("num_workers", json!(0), "1 to 50"),
        ("num_workers", json!(2.5), "1 to 50"),
        ("api_budget", json!(2), "at most 1"),
        ("api_budget", json!("half"), "at most 1"),
        ("api_version", json!("v62.0"), "62.0"),
        ("auth_type", json!("Password"), "client_credentials"),
        ("login_url", json!("acme.my.salesforce.com"), "https://"),
    ] {
        let config = with(&env, key, value);
        assert_config_refused(&env, &config, &[key, fix]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_required_keys_are_named() {
    let env = env("missing-keys").await;
    for key in ["client_id", "client_secret", "refresh_token"] {
        let mut config = env.config(json!({}));
        config.as_object_mut().unwrap().remove(key);
        assert_config_refused(&env, &config, &[key, "missing"]).await;
    }
    // Not an object at all.
    assert_config_refused(&env, &json!(["client_id"]), &["config", "object"]).await;
}

/// The stream's records and states, none at all.
fn assert_untouched(run: &Run, stream: &str) {
    assert!(run.records(stream).is_empty(), "{stream}: {}", run.dump());
    assert!(run.states(stream).is_empty(), "{stream}: {}", run.dump());
}

/// A run that read `good` whole and failed on the other streams with a config error.
fn assert_others_complete(env: &Env, run: &Run, good: &str) {
    run.assert_contract();
    assert_eq!(run.code, Some(1), "{}", run.dump());
    assert_eq!(run.trace_error().unwrap()["failure_type"], "config_error");
    assert!(!run.states(good).is_empty(), "{}", run.dump());
    assert_union_is_truth(env, std::slice::from_ref(run), good);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_stream_in_the_catalog_is_named_with_the_fix() {
    let env = env("unknown-stream").await;
    let config = env.write("config.json", &env.config(json!({})));
    let catalog = env.write(
        "catalog.json",
        &catalog(&[
            ("Contact", "full_refresh"),
            ("Nope__c", "incremental"),
            ("Bad Name!", "full_refresh"),
        ]),
    );
    let run = env.read(&config, &catalog, None, &[]).await;
    assert_others_complete(&env, &run, "Contact");
    // The TRACE error names the first stream that failed; an ERROR log names each, with the fix.
    let message = run.trace_error().unwrap()["message"].as_str().unwrap();
    for needle in ["Nope__c", "remove it from the configured catalog"] {
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    }
    for stream in ["Nope__c", "Bad Name!"] {
        let logged = run.logs_with("ERROR", stream);
        assert!(
            logged
                .iter()
                .any(|m| m.contains("remove it from the configured catalog")),
            "no ERROR log names {stream} with the fix:\n{}",
            run.dump()
        );
    }
    assert_untouched(&run, "Nope__c");
    assert_untouched(&run, "Bad Name!");
}

#[tokio::test(flavor = "multi_thread")]
async fn state_kept_on_another_cursor_is_refused_for_its_stream_only() {
    let env = env("cursor-changed").await;
    let config = env.write("config.json", &env.config(json!({})));
    let catalog = env.write(
        "catalog.json",
        &catalog(&[("Account", "incremental"), ("Contact", "incremental")]),
    );
    // Account's state was written when its cursor was LastModifiedDate.
    let state = json!({"Account": {"LastModifiedDate": "2024-01-01T00:00:00.000Z"}});
    let run = env.read(&config, &catalog, Some(&state), &[]).await;
    assert_others_complete(&env, &run, "Contact");
    let message = run.trace_error().unwrap()["message"].as_str().unwrap();
    for needle in [
        "Account",
        "LastModifiedDate",
        "SystemModstamp",
        "reset the stream",
    ] {
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    }
    assert_untouched(&run, "Account");
}

/// Issue 15 changed this case: a selected field gone from the org no longer fails its stream; the
/// stream is read without it and a WARN LOG names it with the fix (a stream left with nothing it
/// selects still fails: sf-sync's `schema_drift.rs`).
#[tokio::test(flavor = "multi_thread")]
async fn a_selected_field_that_no_longer_exists_is_named_with_the_fix_and_the_rest_is_read() {
    let env = env("field-gone").await;
    let config = env.write("config.json", &env.config(json!({})));
    let mut configured = catalog(&[("Account", "incremental"), ("Contact", "full_refresh")]);
    configured["streams"][0]["stream"]["json_schema"] = json!({"type": "object", "properties": {
        "Id": {"type": "string"}, "Name": {"type": ["null", "string"]},
        "SystemModstamp": {"type": "string", "format": "date-time"},
        "Gone__c": {"type": ["null", "string"]}}});
    let catalog = env.write("catalog.json", &configured);
    let run = env.read(&config, &catalog, None, &[]).await;
    run.assert_contract();
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let warned = run.logs_with("WARN", "Gone__c");
    assert_eq!(warned.len(), 1, "{}", run.dump());
    for needle in ["Account", "`Gone__c`", "run discover again"] {
        assert!(
            warned[0].contains(needle),
            "`{needle}` not in: {}",
            warned[0]
        );
    }
    for stream in ["Account", "Contact"] {
        assert!(!run.states(stream).is_empty(), "{}", run.dump());
        assert_union_is_truth(&env, std::slice::from_ref(&run), stream);
    }
    assert!(run
        .records("Account")
        .iter()
        .all(|r| !r.contains_key("Gone__c") && r.contains_key("Name")));
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_and_state_values_of_the_wrong_shape_name_their_path() {
    let env = env("bad-shapes").await;
    let config = env.write("config.json", &env.config(json!({})));
    let good = env.write("catalog.json", &catalog(&[("Account", "incremental")]));
    let mut bad_mode = catalog(&[("Account", "incremental")]);
    bad_mode["streams"][0]["sync_mode"] = json!("incremental_append");
    let mut nested_cursor = catalog(&[("Account", "incremental")]);
    nested_cursor["streams"][0]["cursor_field"] = json!(["Owner", "SystemModstamp"]);
    for (catalog_value, needles) in [
        (bad_mode, vec!["streams[0].sync_mode", "full_refresh"]),
        (nested_cursor, vec!["streams[0].cursor_field", "top-level"]),
        (json!({"streams": {}}), vec!["streams", "list"]),
    ] {
        let path = env.write("bad-catalog.json", &catalog_value);
        let run = env.read(&config, &path, None, &[]).await;
        run.assert_contract();
        assert_eq!(run.code, Some(1));
        let message = run.trace_error().unwrap()["message"].as_str().unwrap();
        for needle in needles {
            assert!(message.contains(needle), "`{needle}` not in: {message}");
        }
        assert!(run.of_type("RECORD").is_empty() && run.of_type("STATE").is_empty());
    }
    for (state, needles) in [
        (
            json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "Account"},
                "stream_state": {"state_type": "date-range", "slices": [
                    {"start": "2024-01-01T00:00:00.000Z", "end": "last week"}]}}}]),
            vec!["Account", "slices[0].end"],
        ),
        (
            json!({"Account": {"SystemModstamp": 1704067200}}),
            vec!["Account", "SystemModstamp", "datetime string"],
        ),
        (json!([{"type": "PER_STREAM"}]), vec!["[0].type", "STREAM"]),
        (
            json!("2024-01-01"),
            vec!["state file", "list of state messages"],
        ),
    ] {
        let run = env.read(&config, &good, Some(&state), &[]).await;
        run.assert_contract();
        assert_eq!(run.code, Some(1), "{state}\n{}", run.dump());
        assert_eq!(run.trace_error().unwrap()["failure_type"], "config_error");
        let message = run.trace_error().unwrap()["message"].as_str().unwrap();
        for needle in needles {
            assert!(message.contains(needle), "`{needle}` not in: {message}");
        }
        assert!(run.of_type("RECORD").is_empty() && run.of_type("STATE").is_empty());
    }
}

/// A state file written by a sync of another org (here: one with other objects, and an object
/// kept on another cursor). Airbyte states carry no org id, so only what does not fit this org
/// can be told: states of streams this catalog does not have are ignored (and not re-emitted),
/// and a state kept on another cursor is refused for its stream with the fix.
#[tokio::test(flavor = "multi_thread")]
async fn a_state_file_from_another_org_is_refused_where_it_does_not_fit() {
    let other = Env::start(
        "other-org",
        OrgConfig::new(99, Scale::Tiny).extra_custom_objects(1, 5),
    )
    .await;
    let other_config = other.write("config.json", &other.config(json!({})));
    let other_catalog = other.write(
        "catalog.json",
        &catalog(&[
            ("Custom_Object_0001__c", "incremental"),
            ("Lead", "incremental"),
        ]),
    );
    let first = other.read(&other_config, &other_catalog, None, &[]).await;
    first.assert_success();
    let mut foreign = harness::next_state(&[first]);
    // In the other org, Lead's state was kept on LastModifiedDate (Airbyte's legacy form).
    foreign
        .as_array_mut()
        .unwrap()
        .retain(|s| s["stream"]["stream_descriptor"]["name"] != "Lead");
    foreign
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "LEGACY",
        "data": {"Lead": {"LastModifiedDate": "2024-01-01T00:00:00.000Z"}}}));

    let env = env("this-org").await;
    let config = env.write("config.json", &env.config(json!({})));
    let catalog = env.write(
        "catalog.json",
        &catalog(&[("Contact", "incremental"), ("Lead", "incremental")]),
    );
    let run = env.read(&config, &catalog, Some(&foreign), &[]).await;
    assert_others_complete(&env, &run, "Contact");
    let message = run.trace_error().unwrap()["message"].as_str().unwrap();
    for needle in ["Lead", "LastModifiedDate", "reset the stream"] {
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    }
    assert_untouched(&run, "Lead");
    assert_untouched(&run, "Custom_Object_0001__c");
}

/// A `login_url` where nothing answers: the error names where the request went (scheme, host and
/// port, never a path or query) and the config key to check.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_url_where_nothing_listens_is_named_with_the_key_to_check() {
    let env = env("nothing-listens").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = with(&env, "login_url", json!(format!("http://127.0.0.1:{port}")));
    let path = env.write("config.json", &config);
    let run = env
        .run(&["check", "--config", path.to_str().unwrap()], &[])
        .await;
    run.assert_contract();
    assert_eq!(run.code, Some(1), "{}", run.dump());
    let error = run.trace_error().unwrap();
    assert_eq!(error["failure_type"], "transient_error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("to http://127.0.0.1:{port}:")),
        "{message}"
    );
    assert!(message.contains("Check `login_url`"), "{message}");
    assert!(!message.contains("oauth2/token?"), "{message}");
}
