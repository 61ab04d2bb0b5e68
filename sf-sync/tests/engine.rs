//! The engine end to end against the emulated org: whole syncs compared with the org's ground
//! truth, incremental syncs after changes, eventual consistency, state from Airbyte, and the API
//! choice.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use sf_sync::{Api, InputState, StreamStatus, SyncMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_of_every_stream_equals_the_truth() {
    let org = start(org_config(11)).await;
    let control = org.control();
    let config = sync_config(&org, json!({"num_workers": 4}));
    let session = login(&config).await;
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    // Every discovered stream but the one this user cannot query and the one Salesforce serves
    // only filtered by parent ids.
    let skipped = ["Restricted_Data__c", "ContentDocumentLink"];
    let names: Vec<&str> = catalog
        .names()
        .filter(|n| !skipped.contains(n))
        .chain(["Describe"])
        .collect();
    let configured = configure(&catalog, &names, None);
    let (result, sink) = run(
        &session,
        &config,
        &configured,
        &InputState::default(),
        &fast_options(),
    )
    .await;
    let summary = result.unwrap();
    assert!(summary.succeeded());
    assert_eq!(summary.streams.len(), names.len());
    for stream in &summary.streams {
        assert_eq!(stream.status, StreamStatus::Complete, "{}", stream.stream);
    }
    for spec in &catalog.streams {
        if skipped.contains(&spec.name.as_str()) {
            continue;
        }
        let got = latest(&[&sink], &spec.name, spec);
        assert_matches_truth(&spec.name, &got, &truth(&control, spec));
        // Each stream's last message is its status, after its last state.
        let statuses = sink.statuses(&spec.name);
        assert_eq!(
            statuses,
            [
                &StreamStatus::Started,
                &StreamStatus::Running,
                &StreamStatus::Complete
            ],
            "{}",
            spec.name
        );
        let summary = summary
            .streams
            .iter()
            .find(|s| s.stream == spec.name)
            .unwrap();
        assert_eq!(summary.records as usize, sink.records(&spec.name).len());
        if spec.supports_incremental {
            assert_eq!(summary.sync_mode, SyncMode::Incremental);
            let state = sink.last_state(&spec.name).unwrap();
            assert_eq!(state["state_type"], "date-range", "{}", spec.name);
        } else {
            assert_eq!(summary.sync_mode, SyncMode::FullRefresh);
            assert_eq!(
                sink.last_state(&spec.name),
                Some(&json!({"__ab_no_cursor_state_message": true}))
            );
        }
        // Tiny objects are read through REST.
        assert_eq!(summary.api, Some(Api::Rest), "{}", spec.name);
    }
    // The Describe stream: one record per described object.
    let describes = sink.records("Describe");
    assert_eq!(describes.len(), names.len() - 1);
    assert!(describes
        .iter()
        .any(|r| r.get("name") == Some(&json!("Account"))));
    assert!(summary.api_requests.unwrap() > 0);
    org.shutdown().await;
}
