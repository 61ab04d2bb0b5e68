//! ContentDocumentLink, which Salesforce serves only filtered by its parent's ids, read as
//! Airbyte reads it: the ContentDocument ids in batches of 200, one query per batch, against the
//! emulated org's ground truth.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fixtures::{Faults, Mutation};
use serde_json::json;
use sf_sync::plan::SLICE_BATCH_SIZE;
use sf_sync::{
    read_with, Api, CancellationToken, IncompleteReason, InputState, LogLevel, StreamStatus,
    SyncMode,
};

const LINK: &str = "ContentDocumentLink";

/// An org with 450 documents (batches of 200, 200 and 50) and 1,200 links, pages of 200.
fn files_org(seed: u64) -> fixtures::OrgConfig {
    org_config(seed)
        .rows("ContentDocument", 450)
        .rows(LINK, 1_200)
        .default_batch_size(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_read_by_batches_of_document_ids_and_equal_the_truth() {
    assert_eq!(SLICE_BATCH_SIZE, 200);
    let org = start(files_org(51)).await;
    let control = org.control();
    // Deleted documents (their links stay reachable through queryAll) and deleted links.
    let documents = control.mutate(Mutation::new("ContentDocument").delete(20));
    let links = control.mutate(Mutation::new(LINK).delete(30).update(25));
    assert!(documents.errors.is_empty() && links.errors.is_empty());
    control.advance_clock(60);

    // force_use_bulk_api does not apply: the Bulk API is never used for it.
    let config = sync_config(&org, json!({"force_use_bulk_api": true}));
    let session = login(&config).await;
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    let spec = catalog.stream(LINK).unwrap();
    assert!(!spec.supports_incremental);
    // Asked for incremental: read in full, with a warning.
    let configured = configure(&catalog, &[LINK], Some("incremental"));
    let before = control.stats();
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    let summary = result.unwrap();
    let after = control.stats();

    let stream = &summary.streams[0];
    assert_eq!(stream.status, StreamStatus::Complete);
    assert_eq!(stream.api, Some(Api::Rest));
    assert_eq!(stream.sync_mode, SyncMode::FullRefresh);
    assert_eq!(stream.windows, 1);
    assert_eq!(
        sink.states(LINK),
        [&json!({"__ab_no_cursor_state_message": true})]
    );
    let want = truth(&control, spec);
    assert_eq!(want.len(), 1_200);
    assert!(
        want.values()
            .filter(|r| r["IsDeleted"] == json!(true))
            .count()
            >= 30
    );
    let records = sink.records(LINK);
    assert_eq!(records.len(), want.len(), "a link emitted twice");
    assert_eq!(stream.records as usize, records.len());
    assert_matches_truth(LINK, &latest(&[&sink], LINK, spec), &want);

    // The document ids: one queryAll in 3 pages of 200. The links: one query per batch of
    // 200, 200 and 50 documents, each in pages of 200 links. No COUNT(), no Bulk job.
    let mut document_ids: Vec<String> = control
        .truth("ContentDocument")
        .iter()
        .map(|d| d["Id"].as_str().unwrap().to_string())
        .collect();
    document_ids.sort();
    assert_eq!(document_ids.len(), 450);
    let batch_pages: Vec<u64> = document_ids
        .chunks(SLICE_BATCH_SIZE)
        .map(|batch| {
            let links = want
                .values()
                .filter(|l| batch.iter().any(|id| l["ContentDocumentId"] == id.as_str()))
                .count() as u64;
            links.div_ceil(200).max(1)
        })
        .collect();
    let queries = after.requests.query - before.requests.query;
    let pages = after.requests.query_more - before.requests.query_more;
    assert_eq!(queries, 1 + 3, "{queries} queries");
    assert_eq!(
        pages,
        2 + batch_pages.iter().map(|p| p - 1).sum::<u64>(),
        "{batch_pages:?}"
    );
    assert_eq!(after.requests.bulk_create, before.requests.bulk_create);
    assert_eq!(after.requests.composite - before.requests.composite, 1);
    assert_eq!(summary.api_requests, Some(1 + queries + pages));

    let logs = sink.logs();
    assert!(logs.iter().any(|(level, m)| *level == LogLevel::Warn
        && m.starts_with("ContentDocumentLink: asked for incremental")));
    assert!(logs
        .iter()
        .any(|(_, m)| m.contains("one query per 200 ids of its parent ContentDocument")));
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_cursors_of_documents_and_links_lose_and_repeat_nothing() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(
        files_org(52).faults(Faults {
            query_locator_ttl_secs: 30,
            ..Faults::default()
        }),
        json!({}),
    )
    .await;
    let control = org.control();
    let spec = catalog.stream(LINK).unwrap();
    let configured = configure(&catalog, &[LINK], None);
    let mut options = fast_options();
    options.channel_capacity = 2;
    // While the first page of links is being taken, a minute passes: the next page of links and
    // the next page of document ids both lose their cursor.
    let clock = control.clone();
    let (summary, sink) = read_acting(
        &session,
        &config,
        &configured,
        &options,
        (50, move || clock.advance_clock(60)),
    )
    .await;
    let summary = summary.unwrap();
    assert_eq!(summary.streams[0].status, StreamStatus::Complete);
    let logs = sink.inner.logs();
    assert!(
        logs.iter().any(|(_, m)| m.contains("lost its cursor")
            && m.contains("querying the batch of 200 ContentDocument ids again")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|(_, m)| m
            .contains("reading the ids of ContentDocument lost its cursor; resuming after Id")),
        "{logs:?}"
    );
    let records = sink.inner.records(LINK);
    let ids: std::collections::BTreeSet<&str> = records.iter().map(|r| r.id().unwrap()).collect();
    assert_eq!(ids.len(), records.len(), "a link emitted twice");
    assert_matches_truth(
        LINK,
        &latest(&[&sink.inner], LINK, spec),
        &truth(&control, spec),
    );
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_in_the_middle_stops_cleanly_and_the_next_sync_reads_it_all() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(files_org(53), json!({})).await;
    let control = org.control();
    let spec = catalog.stream(LINK).unwrap();
    let configured = configure(&catalog, &[LINK], None);
    let mut options = fast_options();
    options.channel_capacity = 2;
    // At the 300th link the org's allowance is used up.
    let limiter = control.clone();
    let mut sink = ActingSink::new(300, move || {
        let used = limiter.stats().api_usage.used;
        limiter.set_faults(Faults {
            daily_api_limit: used,
            ..Faults::default()
        });
    });
    let summary = read_with(
        &session,
        &config,
        &configured,
        &InputState::default(),
        &mut sink,
        CancellationToken::new(),
        &options,
    )
    .await
    .unwrap();
    assert!(summary.succeeded());
    assert!(matches!(
        summary.streams[0].status,
        StreamStatus::Incomplete(IncompleteReason::ApiLimit { .. })
    ));
    let first = sink.inner.records(LINK).len();
    assert!((300..1_200).contains(&first), "{first}");
    // A full refresh cut short ends with the full-refresh state after its records (issue 18:
    // a destination committing up to each stream's last state keeps them), which resumes
    // nothing: the next sync reads it all again.
    assert_eq!(
        sink.inner.states(LINK),
        [&json!({"__ab_no_cursor_state_message": true})]
    );
    let last_record =
        sink.inner.messages().iter().rposition(
            |m| matches!(m, sf_sync::SinkMessage::Record { stream, .. } if stream == LINK),
        );
    let last_state =
        sink.inner.messages().iter().rposition(
            |m| matches!(m, sf_sync::SinkMessage::State { stream, .. } if stream == LINK),
        );
    assert!(last_state > last_record);

    control.set_faults(Faults::default());
    let (result, sink2) = run_fresh(&session, &config, &configured).await;
    assert_eq!(result.unwrap().streams[0].status, StreamStatus::Complete);
    assert_matches_truth(LINK, &latest(&[&sink2], LINK, spec), &truth(&control, spec));
    org.shutdown().await;
}

/// A query of ContentDocumentLink's read whose pages carry fewer rows than its `totalSize` (here
/// the first page of ContentDocument ids leaves one out) is said in a WARN naming the read, as a
/// window's query is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_query_of_the_parent_ids_warns() {
    let org = start(files_org(53)).await;
    let control = org.control();
    let config = sync_config(&org, json!({}));
    let session = login(&config).await;
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    let configured = configure(&catalog, &[LINK], Some("full_refresh"));
    control.set_faults(Faults {
        short_query_next: 1,
        ..Faults::default()
    });
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    assert_eq!(result.unwrap().streams[0].status, StreamStatus::Complete);
    let warned = logs_with(&sink, LogLevel::Warn, "totalSize");
    assert_eq!(warned.len(), 1, "{:?}", sink.logs());
    assert!(
        warned[0].starts_with(
            "ContentDocumentLink: the ids of ContentDocument: Salesforce counted 450 rows"
        ) && warned[0].contains("carried 449"),
        "{}",
        warned[0]
    );
    org.shutdown().await;
}

/// A long walk of the parent ids that loses its cursor now and then (every third next page
/// here, more often than the resume attempts) still finishes: its resumes count from zero again
/// once an id is read, as a REST window's do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_parent_walk_losing_its_cursor_now_and_then_finishes() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(
        org_config(54)
            .rows("ContentDocument", 2_000)
            .rows(LINK, 2_000)
            .default_batch_size(200),
        json!({}),
    )
    .await;
    let control = org.control();
    let spec = catalog.stream(LINK).unwrap();
    let configured = configure(&catalog, &[LINK], None);
    control.set_faults(Faults {
        lose_locator_every: Some(3),
        ..Faults::default()
    });
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    let summary = result.unwrap();
    assert_eq!(summary.streams[0].status, StreamStatus::Complete);
    let lost = sink
        .logs()
        .into_iter()
        .filter(|(_, m)| m.contains("reading the ids of ContentDocument lost its cursor"))
        .count();
    assert!(
        lost > fast_options().resume_attempts as usize,
        "{lost} lost cursors"
    );
    assert_matches_truth(LINK, &latest(&[&sink], LINK, spec), &truth(&control, spec));
    org.shutdown().await;
}
