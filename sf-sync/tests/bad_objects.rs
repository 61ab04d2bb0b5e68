#![allow(clippy::unwrap_used)]
//! One bad object never sinks a sync, against the emulated org's real-org object kinds: a catalog
//! naming objects Salesforce refuses to serve as asked (an "Implementation restriction", a
//! platform event, a deprecated object) reads every other stream to its end.

mod common;

use std::collections::BTreeMap;

use common::{
    assert_matches_truth, clock_start, configure, connect, latest, run_fresh, truth, Connected,
};
use fixtures::{OrgConfig, Scale};
use serde_json::json;
use sf_sync::{ConfiguredCatalog, Failure, StreamStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_salesforce_refuses_fail_alone_with_their_reason_and_fix() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(
        OrgConfig::new(81, Scale::Tiny)
            .real_org_objects(true)
            .clock_start(clock_start())
            .bulk_timing(5, 20),
        json!({}),
    )
    .await;
    let mut streams = configure(&catalog, &["Account"], None).streams;
    // Objects discovery leaves out, named by a catalog written by hand (or by an older tool),
    // and Knowledge__kav, which it offers: refused unfiltered, it is read by PublishStatus.
    let extra = ConfiguredCatalog::from_value(&json!({"streams": [
        {"stream": {"name": "Vote", "json_schema": {}}, "sync_mode": "full_refresh"},
        {"stream": {"name": "Knowledge__kav", "json_schema": {}}, "sync_mode": "full_refresh"},
        {"stream": {"name": "Order_Placed__e", "json_schema": {}}, "sync_mode": "full_refresh"},
        {"stream": {"name": "Scontrol", "json_schema": {}}, "sync_mode": "full_refresh"},
    ]}))
    .unwrap();
    streams.extend(extra.streams);
    let configured = ConfiguredCatalog { streams };
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    let err = result.unwrap_err();
    assert!(!err.ends_sync(), "{err}");
    let summary = sink.final_summary().unwrap();
    let failed: BTreeMap<&str, (&str, Failure)> = summary
        .failed()
        .map(|(stream, reason, failure)| (stream, (reason, failure)))
        .collect();
    assert_eq!(
        failed.keys().copied().collect::<Vec<_>>(),
        ["Order_Placed__e", "Scontrol", "Vote"]
    );
    // Knowledge__kav, refused unfiltered too, is read by PublishStatus (tests/knowledge.rs).
    assert_eq!(
        sink.statuses("Knowledge__kav").last().map(|s| (*s).clone()),
        Some(StreamStatus::Complete)
    );
    assert!(!sink.records("Knowledge__kav").is_empty());
    // Each with Salesforce's reason and a fix, labelled config (the catalog must change).
    for (stream, (reason, failure)) in &failed {
        assert_eq!(*failure, Failure::Config, "{stream}: {reason}");
        assert!(reason.contains(&format!("`{stream}`")), "{reason}");
        assert!(
            reason.contains("run again") || reason.contains("run discover again"),
            "{stream}: {reason}"
        );
        assert!(sink.records(stream).is_empty());
        assert!(sink.states(stream).is_empty());
    }
    {
        let (reason, _) = failed["Vote"];
        assert!(
            reason.contains("Implementation restriction") && reason.contains("must filter"),
            "{reason}"
        );
        // A filter restriction: the fix is the catalog, never a permission.
        assert!(
            reason.contains("remove the stream from the catalog"),
            "{reason}"
        );
        assert!(!reason.contains("grant"), "{reason}");
    }
    assert!(
        failed["Order_Placed__e"].0.contains("query"),
        "{}",
        failed["Order_Placed__e"].0
    );
    // Account ran to its end with every row.
    assert_eq!(
        sink.statuses("Account").last().map(|s| (*s).clone()),
        Some(StreamStatus::Complete)
    );
    let spec = catalog.stream("Account").unwrap();
    assert_matches_truth(
        "Account",
        &latest(&[&sink], "Account", spec),
        &truth(&org.control(), spec),
    );
    assert!(!sink.states("Account").is_empty());
    org.shutdown().await;
}

/// A feed object that Bulk refuses (as Salesforce is believed to refuse every feed) falls back
/// to REST with an INFO, not a WARN: expected, it would otherwise warn on every sync. Every
/// row is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_bulk_refuses_falls_back_to_rest_without_a_warning() {
    let c = common::connect(
        common::org_config(95).real_org_objects(true),
        serde_json::json!({"force_use_bulk_api": true}),
    )
    .await;
    let feed = "Invoice__Feed";
    let catalog = common::configure(&c.catalog, &[feed], Some("full_refresh"));
    let (result, sink) = common::run_from(&c, &catalog, &common::States::default()).await;
    let summary = result.unwrap();
    assert_eq!(summary.streams[0].api, Some(sf_sync::Api::Rest));
    assert_eq!(sink.records(feed).len(), c.org.control().truth(feed).len());
    let fallback: Vec<(sf_sync::LogLevel, &str)> = sink
        .logs()
        .into_iter()
        .filter(|(_, m)| m.contains("the Bulk API cannot serve this stream"))
        .collect();
    assert_eq!(fallback.len(), 1, "{fallback:?}");
    assert_eq!(fallback[0].0, sf_sync::LogLevel::Info, "{fallback:?}");
    assert!(
        fallback[0].1.ends_with("(expected of a feed object)"),
        "{fallback:?}"
    );
    c.org.shutdown().await;
}
