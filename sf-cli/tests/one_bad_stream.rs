#![allow(clippy::unwrap_used)]
//! One bad object never sinks a sync: a stream that fails for a reason of its own is reported
//! INCOMPLETE with its reason and fix, every other stream completes with its records and state,
//! and `sfconnect read` ends as Airbyte's connectors do when a stream failed: a TRACE error
//! naming each failed stream (`stream_descriptor`), then one listing them all, exit status 1.

mod harness;

use chrono::{TimeZone, Utc};
use fixtures::{OrgConfig, Scale};
use harness::{assert_no_duplicates, assert_union_is_truth, catalog, Env, Run};
use serde_json::Value;

fn org(seed: u64) -> OrgConfig {
    OrgConfig::new(seed, Scale::Tiny)
        .clock_start(Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap())
        .bulk_timing(5, 10)
}

/// The last STREAM_STATUS of `stream`.
fn last_status(run: &Run, stream: &str) -> String {
    run.of_type("TRACE")
        .into_iter()
        .filter(|m| m["trace"]["type"] == "STREAM_STATUS")
        .filter(|m| m["trace"]["stream_status"]["stream_descriptor"]["name"] == stream)
        .filter_map(|m| m["trace"]["stream_status"]["status"].as_str())
        .next_back()
        .unwrap_or_default()
        .to_string()
}

/// The TRACE errors of a run: the sync's own (naming no stream).
fn trace_errors(run: &Run) -> Vec<&Value> {
    run.of_type("TRACE")
        .into_iter()
        .filter(|m| m["trace"]["type"] == "ERROR")
        .map(|m| &m["trace"]["error"])
        .filter(|e| e.get("stream_descriptor").is_none())
        .collect()
}

/// The TRACE errors naming a stream (`stream_descriptor`), as (stream, error).
fn stream_errors(run: &Run) -> Vec<(String, &Value)> {
    run.of_type("TRACE")
        .into_iter()
        .filter(|m| m["trace"]["type"] == "ERROR")
        .map(|m| &m["trace"]["error"])
        .filter_map(|e| Some((e["stream_descriptor"]["name"].as_str()?.to_string(), e)))
        .collect()
}

/// Asserts that `good` streams completed with exactly the org's rows and a state each.
fn assert_delivered(env: &Env, run: &Run, good: &[&str]) {
    for stream in good {
        assert_eq!(last_status(run, stream), "COMPLETE", "{}", run.dump());
        assert_union_is_truth(env, std::slice::from_ref(run), stream);
        assert_no_duplicates(run, stream);
        assert!(!run.states(stream).is_empty(), "{stream}: no state");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_that_cannot_be_read_are_listed_in_one_trace_and_the_others_are_delivered() {
    let env = Env::start("bad-streams", org(51)).await;
    let config = env.write("config.json", &env.config(serde_json::json!({})));
    let streams = [
        ("Account", "incremental"),
        ("Nope__c", "full_refresh"),
        ("Contact", "full_refresh"),
        ("Restricted_Data__c", "incremental"),
        ("Lead", "incremental"),
    ];
    let catalog = env.write("catalog.json", &catalog(&streams));
    let run = env.read(&config, &catalog, None, &[]).await;
    run.assert_contract();
    assert_eq!(run.code, Some(1), "{}", run.dump());
    assert_delivered(&env, &run, &["Account", "Contact", "Lead"]);

    // One TRACE error, naming each failed stream with its reason and fix, after every record.
    let errors = trace_errors(&run);
    assert_eq!(errors.len(), 1, "{}", run.dump());
    let error = errors[0];
    assert_eq!(error["failure_type"], "config_error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "During the sync, the following streams did not sync successfully: `Nope__c`: "
        ),
        "{message}"
    );
    assert!(message.contains("; `Restricted_Data__c`: "), "{message}");
    assert!(
        message
            .ends_with("The other 3 streams completed and their records and state were emitted."),
        "{message}"
    );
    assert_eq!(
        message
            .matches("remove it from the configured catalog or run discover again")
            .count(),
        2,
        "{message}"
    );
    let last = run.messages.last().unwrap();
    assert_eq!(last["trace"]["type"], "ERROR", "the TRACE error comes last");
    assert!(last["trace"]["error"].get("stream_descriptor").is_none());
    // Before it, one TRACE error per failed stream, naming it (as the Airbyte CDK emits them),
    // so the platform can tie each failure to its stream.
    let per_stream = stream_errors(&run);
    let named: Vec<&str> = per_stream.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(named, ["Nope__c", "Restricted_Data__c"], "{}", run.dump());
    for (stream, error) in &per_stream {
        assert_eq!(error["failure_type"], "config_error", "{error}");
        let text = error["message"].as_str().unwrap();
        assert!(text.starts_with(&format!("`{stream}`: ")), "{text}");
        assert!(
            text.contains("remove it from the configured catalog or run discover again"),
            "{text}"
        );
    }
    for stream in ["Nope__c", "Restricted_Data__c"] {
        assert_eq!(last_status(&run, stream), "INCOMPLETE", "{}", run.dump());
        assert!(run.records(stream).is_empty());
        assert!(run.states(stream).is_empty());
        assert_eq!(
            run.logs_with("ERROR", &format!("stream {stream} is incomplete"))
                .len(),
            1,
            "{}",
            run.dump()
        );
        // Said once: no other ERROR line repeats the stream's error.
        assert_eq!(
            run.logs_with("ERROR", &format!("stream `{stream}`")).len(),
            1,
            "{}",
            run.dump()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_whose_every_stream_fails_says_so() {
    let env = Env::start("all-bad", org(52)).await;
    let config = env.write("config.json", &env.config(serde_json::json!({})));
    let catalog = env.write("catalog.json", &catalog(&[("Nope__c", "full_refresh")]));
    let run = env.read(&config, &catalog, None, &[]).await;
    run.assert_contract();
    assert_eq!(run.code, Some(1), "{}", run.dump());
    let errors = trace_errors(&run);
    assert_eq!(errors.len(), 1, "{}", run.dump());
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("`Nope__c`: ") && message.ends_with("No other stream was selected."),
        "{message}"
    );
    assert_eq!(stream_errors(&run).len(), 1, "{}", run.dump());
}

/// A state that cannot be read for a stream no longer in the catalog is left alone (Airbyte never
/// reads it): the other streams resume from theirs. One for a selected stream refuses the sync
/// before anything is read, naming the file and the state's path.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_state_of_a_stream_not_synced_is_left_alone() {
    let env = Env::start("bad-state", org(53)).await;
    let config = env.write("config.json", &env.config(serde_json::json!({})));
    let state = |name: &str, stream_state: Value| {
        serde_json::json!({"type": "STREAM", "stream": {
            "stream_descriptor": {"name": name}, "stream_state": stream_state}})
    };
    let input = serde_json::json!([
        state("Gone__c", serde_json::json!({"SystemModstamp": 12})),
        state(
            "Account",
            serde_json::json!({"SystemModstamp": "2021-13-45"})
        ),
        state(
            "Lead",
            serde_json::json!({"SystemModstamp": "2000-01-01T00:00:00.000Z"})
        ),
    ]);
    let run_with = |streams: &'static [(&'static str, &'static str)]| {
        let catalog = env.write("catalog.json", &catalog(streams));
        let input = input.clone();
        let env = &env;
        let config = config.clone();
        async move { env.read(&config, &catalog, Some(&input), &[]).await }
    };
    // Gone__c is not in the catalog: the sync succeeds.
    let run = run_with(&[("Lead", "incremental"), ("Contact", "full_refresh")]).await;
    run.assert_success();
    assert_delivered(&env, &run, &["Lead", "Contact"]);

    // Account is selected and its state cannot be read: a config error before any record.
    let run = run_with(&[("Account", "incremental"), ("Lead", "incremental")]).await;
    run.assert_contract();
    assert_eq!(run.code, Some(1), "{}", run.dump());
    assert!(run.of_type("RECORD").is_empty());
    let errors = trace_errors(&run);
    assert_eq!(errors.len(), 1, "{}", run.dump());
    assert_eq!(errors[0]["failure_type"], "config_error");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("state file")
            && message.contains("[1].stream.stream_state.SystemModstamp")
            && message.contains("`2021-13-45` is not a datetime"),
        "{message}"
    );

    // Read in full, Account reads no state, as Airbyte's full-refresh streams ignore theirs:
    // the sync succeeds and says the state is not used.
    let run = run_with(&[("Account", "full_refresh"), ("Lead", "incremental")]).await;
    run.assert_success();
    assert_delivered(&env, &run, &["Account", "Lead"]);
    let said = run.logs_with(
        "INFO",
        "Account: read in full, so its state in the state file is not used",
    );
    assert_eq!(said.len(), 1, "{}", run.dump());
    assert!(
        said[0].contains("`2021-13-45` is not a datetime"),
        "{}",
        said[0]
    );
}

/// A stream's TRACE error goes out when the stream fails, not when the sync ends: a sync that
/// then ends for another reason (here the connected app's access revoked mid-read, which no
/// stream can go on from) still tells which stream failed and why, before its own error.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_stream_is_told_even_when_the_sync_then_ends_for_another_reason() {
    let env = Env::start(
        "bad-then-revoked",
        org(54).rows("Account", 10_000).default_batch_size(200),
    )
    .await;
    let config = env.write("config.json", &env.config(serde_json::json!({})));
    let catalog = env.write(
        "catalog.json",
        &catalog(&[("Nope__c", "full_refresh"), ("Account", "full_refresh")]),
    );
    // Once Account has read a page past its first, every token is revoked, refresh token
    // included.
    let control = env.org.control();
    let revoker = std::thread::spawn(move || {
        for _ in 0..3_000 {
            if control.stats().requests.query_more >= 1 {
                control.revoke_all_tokens();
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        false
    });
    let run = env.read(&config, &catalog, None, &[]).await;
    assert!(
        revoker.join().unwrap(),
        "Account never asked for a second page"
    );
    run.assert_contract();
    assert_eq!(run.code, Some(1), "{}", run.dump());
    // The sync's own error: the refused session, last.
    let last = run.messages.last().unwrap();
    let own = &last["trace"]["error"];
    assert!(own.get("stream_descriptor").is_none(), "{}", run.dump());
    assert_eq!(own["failure_type"], "config_error", "{own}");
    assert!(
        own["message"]
            .as_str()
            .unwrap()
            .contains("expired access/refresh token"),
        "{own}"
    );
    // Nope__c's own error went out before it, naming it.
    let per_stream = stream_errors(&run);
    let named: Vec<&str> = per_stream.iter().map(|(s, _)| s.as_str()).collect();
    assert!(named.contains(&"Nope__c"), "{}", run.dump());
    let (_, nope) = per_stream.iter().find(|(s, _)| s == "Nope__c").unwrap();
    assert_eq!(nope["failure_type"], "config_error", "{nope}");
    assert!(
        nope["message"]
            .as_str()
            .unwrap()
            .contains("remove it from the configured catalog or run discover again"),
        "{nope}"
    );
}
