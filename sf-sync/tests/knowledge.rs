#![allow(clippy::unwrap_used)]
//! Knowledge article versions (`Knowledge__kav`) on an org that refuses them unfiltered, as the
//! object reference documents: discovery offers them, and a read asks once without a filter,
//! then reads each window by `PublishStatus` (`Online`, then `Draft`), saying in a WARN that
//! archived versions are not read. Full refresh and incremental both end with every non-archived
//! version, values equal to the org's; a version archived after it was read is the one thing
//! left stale, as the WARN says.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    assert_matches_truth, clock_start, configure, connect, latest, run_from, truth, States,
};
use fixtures::{Mutation, OrgConfig, Scale};
use serde_json::{json, Map, Value};
use sf_sync::{LogLevel, MemorySink, StreamStatus};

const KAV: &str = "Knowledge__kav";

/// The truth rows but the archived versions.
fn not_archived(all: BTreeMap<String, Map<String, Value>>) -> BTreeMap<String, Map<String, Value>> {
    all.into_iter()
        .filter(|(_, row)| row["PublishStatus"] != json!("Archived"))
        .collect()
}

/// The WARN lines about reading by PublishStatus.
fn by_status_warnings(sink: &MemorySink) -> Vec<String> {
    sink.logs()
        .into_iter()
        .filter(|(level, line)| {
            *level == LogLevel::Warn && line.starts_with(&format!("{KAV}: Salesforce refused"))
        })
        .map(|(_, line)| line.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_versions_refused_unfiltered_are_read_by_publish_status() {
    let c = connect(
        OrgConfig::new(82, Scale::Small)
            .real_org_objects(true)
            .clock_start(clock_start()),
        json!({}),
    )
    .await;
    let (org, catalog) = (&c.org, &c.catalog);
    let spec = catalog
        .stream(KAV)
        .expect("discovery offers Knowledge__kav");
    assert!(spec.supports_incremental);
    let control = org.control();
    let all = truth(&control, spec);
    let statuses: BTreeSet<&str> = all
        .values()
        .map(|row| row["PublishStatus"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        BTreeSet::from(["Archived", "Draft", "Online"]),
        "the org holds every status"
    );

    // Full refresh.
    let full = configure(catalog, &[KAV], Some("full_refresh"));
    let (result, sink) = run_from(&c, &full, &States::default()).await;
    result.unwrap();
    let want = not_archived(truth(&control, spec));
    assert!(want.len() < all.len());
    assert_matches_truth(KAV, &latest(&[&sink], KAV, spec), &want);
    assert_eq!(sink.records(KAV).len(), want.len(), "each version once");
    let warnings = by_status_warnings(&sink);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for words in [
        "Implementation restriction",
        "by PublishStatus (Online, Draft)",
        "Archived versions are not read",
        "keeps its last-read status",
        "full refresh with overwrite",
    ] {
        assert!(warnings[0].contains(words), "{words}: {}", warnings[0]);
    }
    assert_eq!(
        sink.statuses(KAV).last().map(|s| (*s).clone()),
        Some(StreamStatus::Complete)
    );

    // Incremental: a first read, then changes, then a read from its state.
    let incremental = configure(catalog, &[KAV], Some("incremental"));
    let mut states = States::default();
    let (result, first) = run_from(&c, &incremental, &states).await;
    result.unwrap();
    states.update(&first, &[KAV]);
    assert!(states.0.contains_key(KAV), "a state after the first read");
    assert_eq!(by_status_warnings(&first).len(), 1);
    // The plan's count, refused unfiltered too, is no second warning.
    let warns: Vec<(LogLevel, &str)> = first
        .logs()
        .into_iter()
        .filter(|(level, _)| *level == LogLevel::Warn)
        .collect();
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(first
        .logs()
        .iter()
        .any(|(_, line)| line.contains("counts these versions only by PublishStatus")));
    control.advance_clock(3_600);
    let changed = control.mutate(Mutation::new(KAV).update(12).insert(4));
    assert!(changed.errors.is_empty(), "{:?}", changed.errors);
    control.advance_clock(60);
    let (result, second) = run_from(&c, &incremental, &states).await;
    result.unwrap();
    let want = not_archived(truth(&control, spec));
    // Every version not archived, as the org has it now; besides them, only versions read
    // before they were archived (their last-read status stays, as the WARN says).
    let got = latest(&[&first, &second], KAV, spec);
    let live: BTreeMap<String, Map<String, Value>> = got
        .iter()
        .filter(|(id, _)| want.contains_key(*id))
        .map(|(id, row)| (id.clone(), row.clone()))
        .collect();
    assert_matches_truth(KAV, &live, &want);
    let stale: BTreeSet<&String> = got.keys().filter(|id| !want.contains_key(*id)).collect();
    let archived_since: BTreeSet<&String> = all
        .iter()
        .filter(|(id, row)| row["PublishStatus"] != json!("Archived") && !want.contains_key(*id))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(stale, archived_since);
    // The second read brought every changed version that is not archived.
    let again: BTreeSet<String> = second
        .records(KAV)
        .iter()
        .map(|r| r.id().unwrap().to_string())
        .collect();
    let changed_live: BTreeSet<String> = changed
        .updated
        .iter()
        .chain(&changed.inserted)
        .filter(|id| want.contains_key(*id))
        .cloned()
        .collect();
    assert!(!changed_live.is_empty());
    assert!(
        changed_live.is_subset(&again),
        "missing: {:?}",
        changed_live.difference(&again).collect::<Vec<_>>()
    );
    assert!(again.len() < want.len(), "the second read is incremental");
    c.org.shutdown().await;
}
