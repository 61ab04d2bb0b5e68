#![allow(clippy::unwrap_used)]
//! Knowledge article versions (`Knowledge__kav`) on an org that refuses them unfiltered, as the
//! object reference documents: discovery offers them, and a read asks once without a filter,
//! then reads each window by `PublishStatus` (`Online`, `Draft`, then `Archived`), saying in a
//! WARN what that may leave out. Where the org serves `Archived` alone (as its refusal's message
//! offers), every version is read. Where it refuses it (the Knowledge guide's per-article rule,
//! the `archived_versions_per_article` fault), a second WARN says archived versions are not
//! read; full refresh and incremental then end with every non-archived version, values equal to
//! the org's, and a version archived after it was read is the one thing left stale.

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

/// The words of the WARN that the stream is read by status.
const SWITCH_WORDS: [&str; 4] = [
    "Implementation restriction",
    "by PublishStatus (Online, Draft, Archived)",
    "older archived versions may not be read",
    "serves every version unfiltered",
];

/// A small org with Knowledge article versions, its clock frozen, connected.
async fn knowledge_org(seed: u64) -> common::Connected {
    connect(
        OrgConfig::new(seed, Scale::Small)
            .real_org_objects(true)
            .clock_start(clock_start()),
        json!({}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_versions_refused_unfiltered_are_read_by_publish_status_archived_too() {
    let c = knowledge_org(83).await;
    let (org, catalog) = (&c.org, &c.catalog);
    let spec = catalog.stream(KAV).unwrap();
    let control = org.control();
    let all = truth(&control, spec);
    assert!(all
        .values()
        .any(|row| row["PublishStatus"] == json!("Archived")));

    // Full refresh: every version, the archived ones included, each once.
    let full = configure(catalog, &[KAV], Some("full_refresh"));
    let (result, sink) = run_from(&c, &full, &States::default()).await;
    result.unwrap();
    assert_matches_truth(KAV, &latest(&[&sink], KAV, spec), &all);
    assert_eq!(sink.records(KAV).len(), all.len(), "each version once");
    let warnings = by_status_warnings(&sink);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for words in SWITCH_WORDS {
        assert!(warnings[0].contains(words), "{words}: {}", warnings[0]);
    }

    // Incremental: a first read, changes, and a read from its state bring every version as the
    // org has it now.
    let incremental = configure(catalog, &[KAV], Some("incremental"));
    let mut states = States::default();
    let queries_before = control.stats().requests.query;
    let (result, first) = run_from(&c, &incremental, &states).await;
    result.unwrap();
    // Counted by status (the unfiltered count refused, then one count per status), so the plan
    // knows the volume: one window, read by its three statuses after the unfiltered query is
    // refused. Without the count, each of the span's default 30-day windows was read three
    // times (about 76 queries for two years).
    let counted = format!(
        "{KAV}: Salesforce counts these versions only by PublishStatus; counted by status: {} rows",
        all.len()
    );
    assert!(
        first.logs().iter().any(|(_, line)| *line == counted),
        "{:?}",
        first.logs()
    );
    let queries = control.stats().requests.query - queries_before;
    assert_eq!(
        queries,
        1 + 3 + 1 + 3,
        "count, counts by status, read, reads by status"
    );
    states.update(&first, &[KAV]);
    control.advance_clock(3_600);
    let changed = control.mutate(Mutation::new(KAV).update(12).insert(4));
    assert!(changed.errors.is_empty(), "{:?}", changed.errors);
    control.advance_clock(60);
    let (result, second) = run_from(&c, &incremental, &states).await;
    result.unwrap();
    let now = truth(&control, spec);
    assert_matches_truth(KAV, &latest(&[&first, &second], KAV, spec), &now);
    let again: BTreeSet<String> = second
        .records(KAV)
        .iter()
        .map(|r| r.id().unwrap().to_string())
        .collect();
    for id in changed.updated.iter().chain(&changed.inserted) {
        assert!(again.contains(id), "{id} changed and not read again");
    }
    assert!(again.len() < now.len(), "the second read is incremental");
    c.org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_versions_refused_alone_are_left_out_with_a_warning() {
    let c = knowledge_org(82).await;
    let (org, catalog) = (&c.org, &c.catalog);
    org.control().set_faults(fixtures::Faults {
        archived_versions_per_article: true,
        ..fixtures::Faults::default()
    });
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
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    for words in SWITCH_WORDS {
        assert!(warnings[0].contains(words), "{words}: {}", warnings[0]);
    }
    for words in [
        "PublishStatus = 'Archived' alone",
        "To query archived article versions",
        "archived versions are not read",
        "keeps its last-read status",
        "full refresh with overwrite leaves every archived version out",
    ] {
        assert!(warnings[1].contains(words), "{words}: {}", warnings[1]);
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
    assert_eq!(by_status_warnings(&first).len(), 2);
    // The plan's count, refused unfiltered too (and counted by status), is no third warning.
    let warns: Vec<(LogLevel, &str)> = first
        .logs()
        .into_iter()
        .filter(|(level, _)| *level == LogLevel::Warn)
        .collect();
    assert_eq!(warns.len(), 2, "{warns:?}");
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
