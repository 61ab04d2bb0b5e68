//! TRACE ESTIMATE messages: one per counted stream, valid against the Airbyte protocol, and equal
//! to the rows the stream then read (nothing changes in the org during these reads).
#![allow(clippy::unwrap_used)]

mod harness;

use fixtures::{OrgConfig, Scale};
use harness::{catalog, Env};
use serde_json::{json, Value};

fn validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("data/airbyte_trace_message.schema.json")).unwrap();
    jsonschema::draft7::new(&schema).unwrap()
}

fn estimates(run: &harness::Run) -> Vec<&Value> {
    run.of_type("TRACE")
        .into_iter()
        .filter(|m| m["trace"]["type"] == "ESTIMATE")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn estimates_are_valid_and_match_the_rows_read() {
    let env = Env::start(
        "estimate",
        OrgConfig::new(13, Scale::Tiny)
            .rows("Account", 700)
            .rows("Contact", 300),
    )
    .await;
    let config = env.write("config.json", &env.config(json!({})));
    let streams = env.write(
        "catalog.json",
        &catalog(&[("Account", "incremental"), ("Contact", "full_refresh")]),
    );
    let run = env.read(&config, &streams, None, &[]).await;
    run.assert_success();
    // stderr is a pipe here: no progress line is drawn.
    assert!(
        !run.stderr.contains("rows/s") && !run.stderr.contains(" ETA "),
        "{}",
        run.stderr
    );
    let validator = validator();
    let found = estimates(&run);
    assert_eq!(found.len(), 2, "{}", run.dump());
    for message in &found {
        let errors: Vec<String> = validator
            .iter_errors(message)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{message}: {errors:?}");
        assert_eq!(message["trace"]["estimate"]["type"], "STREAM");
        assert!(message["trace"]["estimate"].get("namespace").is_none());
    }
    for stream in ["Account", "Contact"] {
        let estimate = found
            .iter()
            .find(|m| m["trace"]["estimate"]["name"] == stream)
            .unwrap();
        let rows = run.records(stream).len() as u64;
        assert_eq!(
            estimate["trace"]["estimate"]["row_estimate"],
            json!(rows),
            "{stream}"
        );
        // The estimate comes before the stream's first record.
        let at = run.messages.iter().position(|m| m == *estimate).unwrap();
        let first = run
            .messages
            .iter()
            .position(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
            .unwrap();
        assert!(at < first, "{stream}");
    }
    // Every stream-status trace validates too.
    for message in run.of_type("TRACE") {
        assert!(validator.is_valid(message), "{message}");
    }

    // An incremental read after changes: the estimate counts the window, changes included.
    let control = env.org.control();
    control.advance_clock(60);
    let changed = control.mutate(
        fixtures::Mutation::new("Account")
            .insert(4)
            .update(6)
            .delete(2),
    );
    assert!(changed.errors.is_empty());
    // Two days later: a span that long is counted before it is planned.
    control.advance_clock(2 * 86_400);
    let state = harness::next_state(std::slice::from_ref(&run));
    let again = env.read(&config, &streams, Some(&state), &[]).await;
    again.assert_success();
    let account = estimates(&again)
        .into_iter()
        .find(|m| m["trace"]["estimate"]["name"] == "Account")
        .unwrap();
    let rows = again.records("Account").len() as u64;
    assert_eq!(account["trace"]["estimate"]["row_estimate"], json!(rows));
    assert!(
        rows >= 12,
        "the 12 changed rows and those in the lookback: {rows}"
    );
}
