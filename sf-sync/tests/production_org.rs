#![allow(clippy::unwrap_used)]
//! A production-shaped org (about 1,600 objects of every kind a real org holds, most small or
//! empty): discovery stays within ⌈N/25⌉ + 1 calls after login and leaves nothing out silently;
//! a full-refresh sync and then an incremental one of every offered object deliver exactly the
//! rows the org's truth holds for every readable object, and a reason for every other one. A
//! Knowledge article version the org refuses unfiltered is read by `PublishStatus`, archived
//! versions included, with the WARN that says so (`tests/knowledge.rs`).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{clock_start, configure, fast_options, login, run, start, sync_config};
use fixtures::{Mutation, OrgConfig, OrgControl, Scale};
use serde_json::json;
use sf_discovery::DiscoveryWarning;
use sf_sync::{InputState, LogLevel, MemorySink, StreamStatus};

/// The ids of `object`'s truth rows. A Knowledge article version says (WARN) it was refused
/// unfiltered and read by PublishStatus, and never that `Archived` was refused: this org serves
/// it, so every version is read.
fn truth_ids(control: &OrgControl, sink: &MemorySink, object: &str) -> BTreeSet<String> {
    let warned = |what: &str| {
        sink.logs().into_iter().any(|(level, line)| {
            level == LogLevel::Warn
                && line.starts_with(&format!("{object}: Salesforce refused {what}"))
        })
    };
    assert_eq!(
        warned("a query without a PublishStatus"),
        object.ends_with("__kav"),
        "{object}"
    );
    assert!(!warned("PublishStatus = 'Archived' alone"), "{object}");
    control
        .truth(object)
        .iter()
        .filter_map(|r| r["Id"].as_str().map(str::to_string))
        .collect()
}

/// The ids `sinks` emitted for `stream`.
fn ids(sinks: &[&MemorySink], stream: &str) -> BTreeSet<String> {
    sinks
        .iter()
        .flat_map(|s| s.records(stream))
        .filter_map(|r| r.id().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_object_of_a_production_shaped_org_is_read_or_left_out_with_a_reason() {
    let org = start(
        OrgConfig::new(71, Scale::Tiny)
            .real_org_objects(true)
            .production_objects(315)
            .clock_start(clock_start())
            .bulk_timing(5, 20),
    )
    .await;
    let control = org.control();
    let config = sync_config(&org, json!({"num_workers": 16}));
    let session = login(&config).await;

    // Discovery: within ⌈N/25⌉ + 1 calls, and every listed object accounted for.
    let listed = sf_discovery::describe_global(&session).await.unwrap();
    assert!(listed.len() >= 1500, "{} objects listed", listed.len());
    let before = session.request_count();
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    let calls = session.request_count() - before;
    let skipped: BTreeMap<&str, String> = catalog
        .warnings
        .iter()
        .filter_map(|w| match w {
            DiscoveryWarning::ObjectSkipped { object, .. } => {
                Some((object.as_str(), w.to_string()))
            }
            _ => None,
        })
        .collect();
    let excluded: BTreeMap<&str, String> = catalog
        .excluded
        .iter()
        .map(|e| (e.object.as_str(), e.to_string()))
        .collect();
    let described = listed.len() - excluded.len();
    assert!(
        calls <= described.div_ceil(25) as u64 + 1,
        "{calls} calls to discover {described} objects"
    );
    let offered: BTreeSet<&str> = catalog.names().collect();
    for object in &listed {
        let name = object.name.as_str();
        assert!(
            offered.contains(name) || excluded.contains_key(name) || skipped.contains_key(name),
            "{name} is left out silently"
        );
    }

    // A full refresh of every offered stream.
    let names: Vec<&str> = offered.iter().copied().collect();
    let configured = configure(&catalog, &names, Some("full_refresh"));
    let (result, full) = run(
        &session,
        &config,
        &configured,
        &InputState::default(),
        &fast_options(),
    )
    .await;
    let summary = full.final_summary().unwrap().clone();
    let failed: BTreeMap<&str, &str> = summary.failed().map(|(s, m, _)| (s, m)).collect();
    let mut wrong = Vec::new();
    let mut readable_left_out = Vec::new();
    for object in &listed {
        let name = object.name.as_str();
        let readability = control.readability(name);
        if !offered.contains(name) {
            if readability.readable && readability.required_filter.is_empty() {
                readable_left_out.push(format!(
                    "{name}: {}",
                    excluded.get(name).or(skipped.get(name)).unwrap()
                ));
            }
            continue;
        }
        match (readability.readable, failed.get(name)) {
            (true, None) => {
                let want = truth_ids(&control, &full, name);
                let got = ids(&[&full], name);
                if got != want {
                    wrong.push(format!(
                        "{name}: read {} rows, the org has {}",
                        got.len(),
                        want.len()
                    ));
                }
            }
            (true, Some(reason)) => wrong.push(format!("{name} is readable but failed: {reason}")),
            (false, Some(reason)) => assert!(reason.len() > 20, "{name}: {reason}"),
            (false, None) => wrong.push(format!(
                "{name} is not readable ({:?}) but completed",
                readability.reason
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        readable_left_out.is_empty(),
        "readable objects left out:\n{}",
        readable_left_out.join("\n")
    );
    assert_eq!(result.is_ok(), failed.is_empty(), "{result:?}");

    // Incremental: a first sync, changes, a second sync from its state; together they hold the
    // truth of every incremental stream.
    let incremental: Vec<&str> = catalog
        .streams
        .iter()
        .filter(|s| s.supports_incremental && !failed.contains_key(s.name.as_str()))
        .map(|s| s.name.as_str())
        .collect();
    assert!(incremental.len() > 100, "{}", incremental.len());
    let configured = configure(&catalog, &incremental, Some("incremental"));
    let (result, first) = run(
        &session,
        &config,
        &configured,
        &InputState::default(),
        &fast_options(),
    )
    .await;
    assert!(result.unwrap().succeeded());
    control.advance_clock(3600);
    for object in ["Account", "Invoice__c"] {
        let mut m = Mutation::new(object);
        m.insert = 3;
        m.update = 3;
        control.mutate(m);
    }
    control.advance_clock(60);
    let state = first.resume_state().unwrap();
    let (result, second) = run(&session, &config, &configured, &state, &fast_options()).await;
    assert!(result.unwrap().succeeded());
    for name in &incremental {
        let want = truth_ids(&control, &first, name);
        assert_eq!(ids(&[&first, &second], name), want, "{name}");
        assert_eq!(
            second.statuses(name).last().map(|s| (*s).clone()),
            Some(StreamStatus::Complete),
            "{name}"
        );
    }
    org.shutdown().await;
}
