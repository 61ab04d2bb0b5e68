//! At-least-once: a sync stopped after any number of messages and restarted from the last state
//! it emitted, again and again, loses no record. And what the first syncs of a small org cost.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::json;
use sf_sync::plan::PlannerConfig;
use sf_sync::{Api, Error, InputState, MemorySink, ReadOptions, StreamStatus};

const STREAMS: [&str; 5] = ["Account", "Opportunity", "Task", "Lead", "Publisher"];

/// Small windows everywhere, and Bulk for the objects of more than nine rows that it can serve.
fn options() -> ReadOptions {
    ReadOptions {
        planner: PlannerConfig {
            rest_max_rows: 9,
            rest_rows_per_window: 5,
            bulk_rows_per_window: 4,
            ..PlannerConfig::default()
        },
        bulk_jobs_in_flight: 3,
        channel_capacity: 8,
        ..fast_options()
    }
}

async fn stop_and_restart(seed: u64, cuts: Vec<usize>) {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(org_config(seed), json!({"num_workers": 3})).await;
    let control = org.control();
    let configured = configure(&catalog, &STREAMS, None);
    let mut states = States::default();
    let mut sinks: Vec<MemorySink> = Vec::new();
    for cut in cuts {
        let mut sink = MemorySink::failing_after(cut);
        let result = sf_sync::read_with(
            &session,
            &config,
            &configured,
            &states.input(),
            &mut sink,
            sf_sync::CancellationToken::new(),
            &options(),
        )
        .await;
        states.update(&sink, &STREAMS);
        let done = match result {
            Ok(_) => true,
            Err(Error::SinkWrite { .. }) => false,
            Err(other) => panic!("{other}"),
        };
        sinks.push(sink);
        if done {
            break;
        }
    }
    // Then once more without a stop, from the last state.
    let (result, sink) = run(&session, &config, &configured, &states.input(), &options()).await;
    let summary = result.unwrap();
    assert!(summary
        .streams
        .iter()
        .all(|s| s.status == StreamStatus::Complete));
    sinks.push(sink);
    let all: Vec<&MemorySink> = sinks.iter().collect();
    for stream in STREAMS {
        let spec = catalog.stream(stream).unwrap();
        assert_matches_truth(stream, &latest(&all, stream, spec), &truth(&control, spec));
    }
    org.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn a_sync_stopped_anywhere_and_restarted_loses_nothing(
        seed in 0u64..10_000,
        cuts in proptest::collection::vec(1usize..140, 1..5),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(stop_and_restart(seed, cuts));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_mixes_rest_and_bulk_windows_in_order() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(org_config(31), json!({})).await;
    let control = org.control();
    let configured = configure(&catalog, &STREAMS, None);
    let (result, sink) = run(
        &session,
        &config,
        &configured,
        &InputState::default(),
        &options(),
    )
    .await;
    let summary = result.unwrap();
    let api = |name: &str| {
        summary
            .streams
            .iter()
            .find(|s| s.stream == name)
            .unwrap()
            .api
    };
    // Account's addresses are read as their components: its volume sends it to Bulk too.
    assert_eq!(api("Account"), Some(Api::Bulk));
    assert_eq!(api("Lead"), Some(Api::Bulk));
    assert_eq!(api("Task"), Some(Api::Bulk));
    assert_eq!(api("Opportunity"), Some(Api::Bulk));
    assert!(control.stats().requests.bulk_create >= 4);
    // Several Bulk windows, each followed by a state that only grows, from the start date.
    let task = summary.streams.iter().find(|s| s.stream == "Task").unwrap();
    assert!(task.windows >= 3, "{task:?}");
    let mut last_end = String::new();
    for state in sink.states("Task") {
        let slices = state["slices"].as_array().unwrap();
        assert_eq!(slices.len(), 1, "{state}");
        assert_eq!(slices[0]["start"], "2021-01-01T00:00:00.000Z");
        let end = slices[0]["end"].as_str().unwrap().to_string();
        assert!(end > last_end, "{end} after {last_end}");
        last_end = end;
    }
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_cost_few_requests_first_and_next_time() {
    // Six objects of 40 to 3,000 rows, as the benchmark's org.
    let org = start(
        org_config(32)
            .rows("Account", 3000)
            .rows("Contact", 1500)
            .rows("Opportunity", 800)
            .rows("Lead", 400)
            .rows("Task", 150)
            .rows("Invoice__c", 40),
    )
    .await;
    let control = org.control();
    // The default start date: two years back.
    let login_info = org.login_info();
    let config = sf_sync::SyncConfig::from_value(
        &json!({"client_id": login_info.client_id, "client_secret": login_info.client_secret,
                "refresh_token": login_info.refresh_token, "login_url": login_info.login_url}),
        control.now(),
    )
    .unwrap()
    .config;
    let session = login(&config).await;
    let streams = [
        "Account",
        "Contact",
        "Opportunity",
        "Lead",
        "Task",
        "Invoice__c",
    ];
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    let configured = configure(&catalog, &streams, Some("incremental"));

    let before = control.stats();
    let (first, sink1) = sf_sync_run(&session, &config, &configured, &InputState::default()).await;
    let summary = first.unwrap();
    let after = control.stats();
    assert!(summary.succeeded());
    // Six describes (one composite call), six COUNT()s, one REST query each and one more page
    // for the object over 2,000 rows; no Bulk job.
    assert_eq!(after.requests.bulk_create, before.requests.bulk_create);
    assert_eq!(after.requests.query - before.requests.query, 12);
    // The org charges what the session sent: the six describes in one composite call (one API
    // call), then 6 + 7 queries.
    let first_calls = after.api_usage.used - before.api_usage.used;
    assert_eq!(first_calls, 14, "{first_calls} calls");
    assert_eq!(after.requests.composite - before.requests.composite, 1);
    assert_eq!(after.requests.describe - before.requests.describe, 6);
    assert_eq!(summary.api_requests, Some(14));
    assert!(summary.records() > 3000);

    // A few hundred changes an hour later.
    control.advance_clock(3600);
    for (object, n) in [
        ("Account", 100),
        ("Contact", 80),
        ("Opportunity", 60),
        ("Task", 60),
    ] {
        let done = control.mutate(fixtures::Mutation::new(object).insert(n / 2).update(n / 2));
        assert!(done.errors.is_empty());
    }
    control.advance_clock(60);
    let mut states = States::default();
    states.update(&sink1, &streams);
    let before = control.stats();
    let (second, sink2) = sf_sync_run(&session, &config, &configured, &states.input()).await;
    let summary = second.unwrap();
    let after = control.stats();
    let next_calls = after.api_usage.used - before.api_usage.used;
    // Six describes in one composite call, one query per object, and one getDeleted per object
    // (hard deletes), the six asked in one more composite call.
    assert_eq!(next_calls, 8, "{next_calls} calls");
    assert_eq!(after.requests.query - before.requests.query, 6);
    assert_eq!(after.requests.get_deleted - before.requests.get_deleted, 6);
    assert_eq!(after.requests.composite - before.requests.composite, 2);
    assert_eq!(after.requests.query_more, before.requests.query_more);
    assert_eq!(summary.api_requests, Some(8));
    assert!(sink2.records("Account").len() >= 100);
    for stream in streams {
        let spec = catalog.stream(stream).unwrap();
        let horizon = config.start_date;
        let want = truth(&control, spec)
            .into_iter()
            .filter(|(_, row)| stamp(row, "SystemModstamp") >= horizon)
            .collect();
        assert_matches_truth(stream, &latest(&[&sink1, &sink2], stream, spec), &want);
    }
    org.shutdown().await;
}

async fn sf_sync_run(
    session: &sf_auth::Session,
    config: &sf_sync::SyncConfig,
    catalog: &sf_sync::ConfiguredCatalog,
    state: &InputState,
) -> (Result<sf_sync::SyncSummary, Error>, MemorySink) {
    let mut sink = MemorySink::new();
    let result = sf_sync::read(
        session,
        config,
        catalog,
        state,
        &mut sink,
        sf_sync::CancellationToken::new(),
    )
    .await;
    (result, sink)
}
