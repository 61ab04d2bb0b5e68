//! The engine against recorded exchanges, for what the emulated org has no knob for: a window
//! that times out is read again in halves.
#![allow(clippy::unwrap_used)]

use fixtures::recorded::Scenario;
use serde_json::json;
use sf_auth::{Credentials, LoginUrl, RetryConfig, Secret, Session, SessionConfig};
use sf_sync::{
    read, CancellationToken, ConfiguredCatalog, InputState, LogLevel, MemorySink, StreamStatus,
    SyncConfig,
};

async fn session(server: &mockito::Server) -> Session {
    let mut config = SessionConfig::new(
        LoginUrl::parse(&server.url()).unwrap(),
        Credentials {
            client_id: "test-client-id".into(),
            client_secret: Secret::new("test-secret"),
            refresh_token: Some(Secret::new("test-refresh")),
        },
    );
    config.retry = RetryConfig::immediate();
    Session::login(config).await.unwrap()
}

/// A server answering the login and the recorded `sync` scenario `name`, each exchange listed in
/// `once` expected exactly once; its mocks, and a session logged in to it.
async fn serve(name: &str, once: &[usize]) -> (mockito::ServerGuard, Vec<mockito::Mock>, Session) {
    let mut server = mockito::Server::new_async().await;
    Scenario::load("auth", "refresh_ok")
        .unwrap()
        .mount_async(&mut server)
        .await;
    let scenario = once
        .iter()
        .fold(Scenario::load("sync", name).unwrap(), |s, i| {
            s.expecting(*i, 1)
        });
    let mocks = scenario.mount_async(&mut server).await;
    let session = session(&server).await;
    (server, mocks, session)
}

/// A config reading 2024-01-01 to 2024-01-03 from `server`, and a catalog of
/// ActiveProfileMetric, incremental.
fn two_days_of_active_profile_metric(server: &mockito::Server) -> (SyncConfig, ConfiguredCatalog) {
    let config = SyncConfig::from_value(
        &json!({"client_id": "test-client-id", "client_secret": "test-secret",
                "refresh_token": "test-refresh", "login_url": server.url(),
                "start_date": "2024-01-01", "end_date": "2024-01-03"}),
        chrono::Utc::now(),
    )
    .unwrap()
    .config;
    let catalog = ConfiguredCatalog::from_value(&json!({"streams": [{
        "stream": {"name": "ActiveProfileMetric", "json_schema": {"properties": {
            "Id": {}, "ActiveUserCount": {}, "SystemModstamp": {}}}},
        "sync_mode": "incremental", "destination_sync_mode": "append"}]}))
    .unwrap();
    (config, catalog)
}

#[tokio::test]
async fn a_window_that_times_out_is_read_in_halves() {
    let (server, mocks, session) = serve("query_timeout_split", &[2, 3, 4]).await;
    let (config, catalog) = two_days_of_active_profile_metric(&server);
    let mut sink = MemorySink::new();
    let summary = read(
        &session,
        &config,
        &catalog,
        &InputState::default(),
        &mut sink,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    for mock in &mocks[2..] {
        mock.assert_async().await;
    }
    let records = sink.records("ActiveProfileMetric");
    let ids: Vec<&str> = records.iter().map(|r| r.id().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "0Pq5e0000000001AAA",
            "0Pq5e0000000002AAA",
            "0Pq5e0000000003AAA"
        ]
    );
    assert_eq!(
        records[1].to_json(),
        json!({"Id": "0Pq5e0000000002AAA", "ActiveUserCount": 7,
               "SystemModstamp": "2024-01-01T23:59:59.000Z"})
        .as_object()
        .unwrap()
        .clone()
    );
    // One state per half, the second merged into one slice over both days; each names the org
    // of the token answer's identity URL.
    let states = sink.states("ActiveProfileMetric");
    assert_eq!(
        states,
        [
            &json!({"state_type": "date-range", "org_id": "00D000000000001", "slices": [{
                "start": "2024-01-01T00:00:00.000Z", "end": "2024-01-02T00:00:00.000Z",
                "most_recent_cursor_value": "2024-01-01T23:59:59.000Z"}]}),
            &json!({"state_type": "date-range", "org_id": "00D000000000001", "slices": [{
                "start": "2024-01-01T00:00:00.000Z", "end": "2024-01-03T00:00:00.000Z",
                "most_recent_cursor_value": "2024-01-02T00:00:00.000Z"}]}),
        ]
    );
    let split_logged = sink.logs().iter().any(|(level, message)| {
        *level == LogLevel::Warn
            && message.contains("QUERY_TIMEOUT")
            && message.contains(
                "as [2024-01-01T00:00:00.000Z, 2024-01-02T00:00:00.000Z) and \
                 [2024-01-02T00:00:00.000Z, 2024-01-03T00:00:00.000Z)",
            )
    });
    assert!(split_logged, "{:?}", sink.logs());
    assert_eq!(summary.streams[0].status, StreamStatus::Complete);
    assert_eq!(summary.streams[0].windows, 2);
    assert_eq!(summary.streams[0].records, 3);
}

#[tokio::test]
async fn a_link_page_that_says_more_follow_without_a_next_page_fails_the_stream() {
    let (result, sink, _) = read_links("links_page_without_next").await;
    // The page promised more and named no next page: sf-rest refuses it whole, and the stream
    // fails instead of completing with a third of the links and a full-refresh state.
    assert!(sink.records("ContentDocumentLink").is_empty());
    assert!(sink.states("ContentDocumentLink").is_empty());
    let e = result.expect_err("the sync fails");
    let text = format!("{e:#}");
    assert!(
        text.contains("ContentDocumentLink")
            && text.contains("a page says more follow but has no nextRecordsUrl"),
        "{text}"
    );
    match sink.statuses("ContentDocumentLink").last().unwrap() {
        StreamStatus::Incomplete(sf_sync::IncompleteReason::Failed { message, .. }) => assert!(
            message.contains("querying the children of 2 ContentDocument ids"),
            "{message}"
        ),
        other => panic!("unexpected status {other:?}"),
    }
}

/// Runs a full-refresh sync of ContentDocumentLink against the recorded `scenario`.
async fn read_links(
    scenario: &str,
) -> (
    Result<sf_sync::SyncSummary, sf_sync::Error>,
    MemorySink,
    Vec<mockito::Mock>,
) {
    let (server, mocks, session) = serve(scenario, &[]).await;
    let config = SyncConfig::from_value(
        &json!({"client_id": "test-client-id", "client_secret": "test-secret",
                "refresh_token": "test-refresh", "login_url": server.url(),
                "start_date": "2024-01-01"}),
        chrono::Utc::now(),
    )
    .unwrap()
    .config;
    let catalog = ConfiguredCatalog::from_value(&json!({"streams": [{
        "stream": {"name": "ContentDocumentLink", "json_schema": {"properties": {
            "Id": {}, "LinkedEntityId": {}, "ContentDocumentId": {}, "IsDeleted": {},
            "SystemModstamp": {}, "ShareType": {}}}},
        "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]}))
    .unwrap();
    let mut sink = MemorySink::new();
    let result = read(
        &session,
        &config,
        &catalog,
        &InputState::default(),
        &mut sink,
        CancellationToken::new(),
    )
    .await;
    for mock in &mocks {
        mock.assert_async().await;
    }
    (result, sink, mocks)
}

#[tokio::test]
async fn a_batch_of_links_that_times_out_is_read_again_in_halves() {
    let (result, sink, _) = read_links("links_timeout_split").await;
    let summary = result.unwrap();
    assert_eq!(summary.streams[0].status, StreamStatus::Complete);
    let records: Vec<serde_json::Value> = sink
        .records("ContentDocumentLink")
        .iter()
        .map(|r| serde_json::Value::Object(r.to_json()))
        .collect();
    assert_eq!(
        records,
        [
            json!({"Id": "06ARO000000Q1aAYAS", "LinkedEntityId": "001RO0000035WQgYAM",
                   "ContentDocumentId": "069RO000000AbcdYAC", "IsDeleted": false,
                   "SystemModstamp": "2024-03-01T10:00:00.000Z", "ShareType": "V"}),
            json!({"Id": "06ARO000000Q1aCYAS", "LinkedEntityId": "001RO0000035WQhYAM",
                   "ContentDocumentId": "069RO000000AbceYAC", "IsDeleted": true,
                   "SystemModstamp": "2024-03-02T11:30:00.000Z", "ShareType": "C"}),
        ]
    );
    assert_eq!(
        sink.states("ContentDocumentLink"),
        [&json!({"__ab_no_cursor_state_message": true})]
    );
    let logs = sink.logs();
    assert!(
        logs.iter().any(|(level, m)| *level == LogLevel::Warn
            && m.contains("the query timed out (QUERY_TIMEOUT")
            && m.contains("reading the batch of 2 ContentDocument ids as 1 and 1")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn a_query_that_times_out_in_the_smallest_window_fails_its_stream_with_the_fix() {
    let (server, mocks, session) = serve("query_timeout_smallest_window", &[2, 3]).await;
    let (config, catalog) = two_days_of_active_profile_metric(&server);
    // Windows of at least a day: the first day is the smallest window.
    let mut options = sf_sync::ReadOptions::default();
    options.planner.min_window = std::time::Duration::from_secs(86_400);
    let mut sink = MemorySink::new();
    let result = sf_sync::read_with(
        &session,
        &config,
        &catalog,
        &InputState::default(),
        &mut sink,
        CancellationToken::new(),
        &options,
    )
    .await;
    for mock in &mocks[2..] {
        mock.assert_async().await;
    }
    let e = result.expect_err("the stream fails");
    assert_eq!(e.failure(), sf_sync::Failure::Transient);
    assert!(!e.ends_sync());
    let text = e.to_string();
    assert!(
        text.starts_with(
            "reading stream `ActiveProfileMetric` through rest in window \
             [2024-01-01T00:00:00.000Z, 2024-01-02T00:00:00.000Z) failed"
        ) && text.contains("QUERY_TIMEOUT")
            && text.contains("even in a window too short to split (windows are at least 24 h)")
            && text.contains("ask Salesforce support for a custom index on its cursor"),
        "{text}"
    );
    assert!(sink.records("ActiveProfileMetric").is_empty());
    assert!(sink.states("ActiveProfileMetric").is_empty());
    let summary = sink.final_summary().unwrap();
    let failed: Vec<&str> = summary.failed().map(|(s, _, _)| s).collect();
    assert_eq!(failed, ["ActiveProfileMetric"]);
}
