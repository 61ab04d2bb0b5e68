//! Hard deletes against the emulated org: records purged from the recycle bin or hard-deleted
//! between two syncs come back from the second as tombstones (`Id`, `IsDeleted: true`, the
//! deletion time in the cursor), and nothing else does; one getDeleted call per incremental
//! stream; a state older than the org's delete log gets a WARN with the fix.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{configure, connect, fast_options, org_config, run, run_fresh, run_from, States};
use fixtures::{Faults, Mutation};
use serde_json::{json, Value};
use sf_discovery::Record;
use sf_sync::plan::PlannerConfig;
use sf_sync::{InputState, LogLevel, MemorySink, ReadOptions};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The tombstones of `stream` in `sink`: records of exactly `Id`, `IsDeleted`, `SystemModstamp`.
fn tombstones(sink: &MemorySink, stream: &str) -> Vec<Record> {
    sink.records(stream)
        .into_iter()
        .filter(|r| r.columns.len() == 3 && r.columns[1] == "IsDeleted")
        .cloned()
        .collect()
}

/// Every id of `soft` came out of `sink` as a whole Lead row with `IsDeleted: true` (once), none
/// as a tombstone.
fn assert_soft_deleted_rows(sink: &MemorySink, soft: &BTreeSet<String>) {
    assert_whole_rows(sink, soft, true);
}

/// Every id of `ids` came out of `sink` as a whole Lead row (once) with `IsDeleted: deleted`,
/// none as a tombstone.
fn assert_whole_rows(sink: &MemorySink, ids: &BTreeSet<String>, deleted: bool) {
    let rows: Vec<_> = sink
        .records("Lead")
        .into_iter()
        .filter(|r| r.id().is_some_and(|id| ids.contains(id)))
        .collect();
    assert_eq!(rows.len(), ids.len(), "{rows:?}");
    for row in rows {
        assert_eq!(row.get("IsDeleted"), Some(&Value::Bool(deleted)), "{row:?}");
        assert!(
            row.values.len() > 3,
            "a whole row, not a tombstone: {row:?}"
        );
    }
}

fn ids(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r.id().unwrap().to_string())
        .collect()
}

fn set(ids: &[&Vec<String>]) -> BTreeSet<String> {
    ids.iter().flat_map(|v| v.iter().cloned()).collect()
}

/// The mutation's stamp as the connector writes datetimes (`...000+0000` → `...000Z`).
fn instant(stamp: &str) -> Value {
    json!(stamp.replace("+0000", "Z"))
}

#[tokio::test]
async fn purged_and_hard_deleted_records_come_back_as_tombstones_and_nothing_else() {
    let c = connect(org_config(71), json!({})).await;
    let ctl = c.org.control();
    let streams = ["Account", "Lead", "Opportunity"];
    let catalog = configure(&c.catalog, &streams, None);
    let (first, sink) = run_fresh(&c.session, &c.config, &catalog).await;
    first.unwrap();
    for stream in streams {
        assert!(tombstones(&sink, stream).is_empty(), "{stream}: first sync");
    }
    assert_eq!(
        ctl.stats().requests.get_deleted,
        0,
        "a first read has nothing to delete downstream"
    );
    let mut states = States::default();
    states.update(&sink, &streams);

    ctl.advance_clock(HOUR);
    let lead_soft = ctl.mutate(Mutation::new("Lead").delete(3));
    let lead_hard = ctl.mutate(Mutation::new("Lead").hard_delete(2));
    let account_soft = ctl.mutate(Mutation::new("Account").delete(2));
    ctl.advance_clock(60);
    let account_purged = ctl.mutate(Mutation {
        object: "Account".into(),
        purge_ids: vec![account_soft.deleted[0].clone()],
        ..Mutation::default()
    });
    let account_hard = ctl.mutate(Mutation::new("Account").hard_delete(1));
    ctl.mutate(Mutation::new("Opportunity").update(2));
    assert_eq!(lead_hard.hard_deleted.len(), 2);
    assert_eq!(account_purged.purged.len(), 1);
    assert_eq!(account_hard.hard_deleted.len(), 1);
    ctl.advance_clock(20 * 60);
    let before = ctl.stats().requests;

    let (second, sink) = run_from(&c, &catalog, &states).await;
    let summary = second.unwrap();
    assert!(summary.streams.iter().all(|s| s.failure.is_none()));
    let after = ctl.stats().requests;
    assert_eq!(
        after.get_deleted - before.get_deleted,
        3,
        "one getDeleted per incremental stream"
    );
    // All three asked in one composite call (one API call), besides the one of the describes.
    assert_eq!(after.composite - before.composite, 2);
    assert_eq!(after.composite_describes - before.composite_describes, 1);
    assert_eq!(
        after.composite_subrequests - before.composite_subrequests,
        3 + 3
    );
    for stream in streams {
        let line = sink
            .logs()
            .into_iter()
            .find(|(_, l)| l.starts_with(&format!("{stream}: hard deletes from")))
            .map(|(_, l)| l.to_string())
            .unwrap();
        assert!(
            line.contains("asked with other streams in one composite call"),
            "{line}"
        );
    }

    // Lead: the two hard deletes; its soft deletes come as rows still in the bin.
    let lead = tombstones(&sink, "Lead");
    assert_eq!(ids(&lead), set(&[&lead_hard.hard_deleted]));
    for t in &lead {
        assert_eq!(t.get("IsDeleted"), Some(&json!(true)));
        assert_eq!(t.get("SystemModstamp"), Some(&instant(&lead_hard.stamp)));
    }
    let soft_rows: BTreeSet<String> = sink
        .records("Lead")
        .into_iter()
        .filter(|r| r.columns.len() > 3 && r.get("IsDeleted") == Some(&json!(true)))
        .map(|r| r.id().unwrap().to_string())
        .collect();
    assert!(
        set(&[&lead_soft.deleted]).is_subset(&soft_rows),
        "soft deletes read from queryAll"
    );
    // Account: the purged row (deleted at its delete time) and the hard delete, not the row
    // still in the bin.
    let account = tombstones(&sink, "Account");
    assert_eq!(
        ids(&account),
        set(&[&account_purged.purged, &account_hard.hard_deleted])
    );
    let purged = account
        .iter()
        .find(|t| t.id() == Some(account_purged.purged[0].as_str()))
        .unwrap();
    assert_eq!(
        purged.get("SystemModstamp"),
        Some(&instant(&account_soft.stamp))
    );
    assert!(tombstones(&sink, "Opportunity").is_empty());
    // Each tombstone precedes the state that covers it: the last message of the stream is a
    // state.
    for stream in streams {
        let last = sink
            .messages()
            .iter()
            .rev()
            .find(|m| match m {
                sf_sync::SinkMessage::Record { stream: s, .. }
                | sf_sync::SinkMessage::State { stream: s, .. } => s == stream,
                _ => false,
            })
            .unwrap();
        assert!(
            matches!(last, sf_sync::SinkMessage::State { .. }),
            "{stream}"
        );
    }
    assert!(
        sink.logs()
            .iter()
            .any(|(l, m)| *l == LogLevel::Info && m.starts_with("Lead: 2 tombstones emitted")),
        "{:?}",
        sink.logs()
    );

    // A third sync right after: nothing new, no tombstone again.
    states.update(&sink, &streams);
    ctl.advance_clock(HOUR);
    let (third, sink) = run_from(&c, &catalog, &states).await;
    third.unwrap();
    for stream in streams {
        assert!(tombstones(&sink, stream).is_empty(), "{stream}: third sync");
    }
}

/// Lead's catalog (incremental) and the state of a first sync of it.
async fn first_lead_sync(c: &common::Connected) -> (sf_sync::ConfiguredCatalog, States) {
    let catalog = configure(&c.catalog, &["Lead"], None);
    let (first, sink) = run_fresh(&c.session, &c.config, &catalog).await;
    first.unwrap();
    let mut states = States::default();
    states.update(&sink, &["Lead"]);
    (catalog, states)
}

#[tokio::test]
async fn a_state_older_than_the_delete_log_gets_a_warning_with_the_fix() {
    let c = connect(org_config(72), json!({})).await;
    let ctl = c.org.control();
    let (catalog, states) = first_lead_sync(&c).await;

    ctl.advance_clock(2 * DAY);
    let early = ctl.mutate(Mutation::new("Lead").hard_delete(1));
    ctl.advance_clock(18 * DAY);
    let recent = ctl.mutate(Mutation::new("Lead").hard_delete(1));
    ctl.advance_clock(HOUR);

    let before = ctl.stats().requests;
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    // A lone stream asks alone: one getDeleted call, no composite call besides the describes'.
    let after = ctl.stats().requests;
    assert_eq!(after.get_deleted - before.get_deleted, 1);
    assert_eq!(after.composite - before.composite, 1);
    assert_eq!(
        after.composite_subrequests - before.composite_subrequests,
        1
    );
    let warnings: Vec<&str> = sink
        .logs()
        .into_iter()
        .filter(|(l, _)| *l == LogLevel::Warn)
        .map(|(_, m)| m)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|m| m.starts_with("Lead: this stream's state goes back to")
                && m.contains("about 15 days")
                && m.contains("run a full refresh of Lead")),
        "{warnings:?}"
    );
    // The date named is where the last listing ended, not that less the lookback.
    let known = states.0["Lead"]["deletes_known_to"].as_str().unwrap();
    assert!(
        warnings
            .iter()
            .any(|m| m.contains(&format!("state goes back to {known},"))),
        "{known}: {warnings:?}"
    );
    // What the org still knows is delivered; what it forgot cannot be.
    let got = ids(&tombstones(&sink, "Lead"));
    assert_eq!(got, set(&[&recent.hard_deleted]));
    assert!(!got.contains(&early.hard_deleted[0]));
}

#[tokio::test]
async fn hard_deletes_false_asks_nothing_and_emits_no_tombstone() {
    let c = connect(org_config(73), json!({"hard_deletes": false})).await;
    assert!(!c.config.hard_deletes);
    let ctl = c.org.control();
    let (catalog, states) = first_lead_sync(&c).await;
    ctl.advance_clock(HOUR);
    let hard = ctl.mutate(Mutation::new("Lead").hard_delete(2));
    assert_eq!(hard.hard_deleted.len(), 2);
    ctl.advance_clock(HOUR);
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    assert!(tombstones(&sink, "Lead").is_empty());
    assert_eq!(ctl.stats().requests.get_deleted, 0);
    // The default is on.
    assert!(common::sync_config(&c.org, json!({})).hard_deletes);
}

/// A sync stopped by the daily limit inside its one window (at each request from the second to
/// the ninth), then finished by the next sync from the state it left: the records hard-deleted
/// since the sync before come out as tombstones, whichever of the two syncs reads the part of
/// the window they fall in. Through Bulk the window is a job the next sync continues; through
/// REST a part of it is covered by a state taken at a page's end.
async fn hard_deletes_survive_a_stop_inside_the_window(seed: u64, bulk: bool) {
    let options = ReadOptions {
        planner: PlannerConfig {
            rest_max_rows: if bulk { 0 } else { 100_000 },
            rest_rows_per_window: 100_000,
            bulk_rows_per_window: 100_000,
            ..PlannerConfig::default()
        },
        bulk_max_records: Some(50),
        bulk_jobs_in_flight: 1,
        rest_batch_size: Some(200),
        ..fast_options()
    };
    let mut cut_inside = 0;
    for allowance in 2..=9 {
        let c = connect(
            org_config(seed)
                .rows("Account", 600)
                .default_batch_size(200),
            json!({"force_use_bulk_api": bulk}),
        )
        .await;
        let ctl = c.org.control();
        let catalog = configure(&c.catalog, &["Account"], Some("incremental"));
        let mut states = States::default();
        let (first, sink) = run(
            &c.session,
            &c.config,
            &catalog,
            &InputState::default(),
            &options,
        )
        .await;
        first.unwrap();
        states.update(&sink, &["Account"]);

        ctl.advance_clock(HOUR);
        let mut changes = Mutation::new("Account");
        changes.update = 200;
        ctl.mutate(changes);
        ctl.advance_clock(60);
        let gone = ctl.mutate(Mutation::new("Account").hard_delete(3));
        // Rows changed well past the lookback after the deletes: a state covering them covers
        // the deletes by more than the lookback.
        ctl.advance_clock(HOUR / 2);
        let mut changes = Mutation::new("Account");
        changes.update = 400;
        ctl.mutate(changes);
        // Well past the lookback: the deletes lie inside the window, not at its end.
        ctl.advance_clock(HOUR);

        common::allow_calls(&ctl, allowance);
        let (cut, second) = run(&c.session, &c.config, &catalog, &states.input(), &options).await;
        cut.unwrap();
        states.update(&second, &["Account"]);
        let state = &states.0["Account"];
        let inside = if bulk {
            state["bulk_jobs"].as_array().is_some_and(|j| !j.is_empty())
        } else {
            // A slice ending after the deletes and before the window's end.
            !second.records("Account").is_empty()
        };
        cut_inside += usize::from(inside);

        ctl.set_faults(Faults::default());
        ctl.advance_clock(60);
        let (rest, third) = run(&c.session, &c.config, &catalog, &states.input(), &options).await;
        rest.unwrap();
        let got: BTreeSet<String> = ids(&tombstones(&second, "Account"))
            .union(&ids(&tombstones(&third, "Account")))
            .cloned()
            .collect();
        assert_eq!(
            got,
            set(&[&gone.hard_deleted]),
            "allowance {allowance} (cut inside the window: {inside}); state after the cut: \
             {state}"
        );
        c.org.shutdown().await;
    }
    assert!(cut_inside > 0, "no cut fell inside the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_deletes_of_a_window_left_in_a_bulk_job_come_with_the_resumed_job() {
    hard_deletes_survive_a_stop_inside_the_window(74, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_deletes_of_the_part_of_a_rest_window_a_stop_covered_come_before_its_state() {
    hard_deletes_survive_a_stop_inside_the_window(75, false).await;
}

/// Hard-deletes two Leads after a first sync; a second sync, `after` seconds later under
/// `faults`, cannot list them; a third without faults does. Asserts what every such case shares:
/// no tombstone from the second, whose state keeps `deletes_unknown_from`; a tombstone for each
/// from the third, whose state no longer has the key. Returns the second and third syncs' sinks
/// and the key's value.
async fn deletes_unknown_then_listed(
    seed: u64,
    faults: Faults,
    after: i64,
) -> (MemorySink, MemorySink, Value) {
    let c = connect(org_config(seed), json!({})).await;
    let ctl = c.org.control();
    let (catalog, mut states) = first_lead_sync(&c).await;

    ctl.advance_clock(HOUR);
    // Soft deletes too: getDeleted lists them with the hard deletes, and the second sync reads
    // their rows (`IsDeleted: true`), though its listing stops short of them.
    let gone = ctl.mutate(Mutation::new("Lead").hard_delete(2).delete(3));
    assert_eq!(gone.hard_deleted.len(), 2);
    assert_eq!(gone.deleted.len(), 3);
    ctl.advance_clock(after);
    ctl.set_faults(faults);
    let (second, second_sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    assert!(tombstones(&second_sink, "Lead").is_empty());
    let soft = set(&[&gone.deleted]);
    let read_deleted: BTreeSet<String> = second_sink
        .records("Lead")
        .into_iter()
        .filter(|r| r.get("IsDeleted") == Some(&Value::Bool(true)) && r.values.len() > 3)
        .filter_map(|r| r.id().map(str::to_string))
        .collect();
    assert!(
        soft.is_subset(&read_deleted),
        "{soft:?} not in {read_deleted:?}"
    );
    // A piece that failed is said by the listing's INFO line too, not only by its WARN.
    let logs = second_sink.logs();
    if logs
        .iter()
        .any(|(l, m)| *l == LogLevel::Warn && m.contains("could not be listed ("))
    {
        assert!(
            logs.iter()
                .any(|(_, m)| m.starts_with("Lead: hard deletes from")
                    && m.contains("1 piece(s) could not be listed")),
            "{logs:?}"
        );
    }
    states.update(&second_sink, &["Lead"]);
    let unknown_from = states.0["Lead"]["deletes_unknown_from"].clone();
    assert!(unknown_from.is_string(), "{}", states.0["Lead"]);

    ctl.set_faults(Faults::default());
    ctl.advance_clock(HOUR);
    let (third, third_sink) = run_from(&c, &catalog, &states).await;
    third.unwrap();
    // The third sync lists from where the second stopped knowing, before its own windows: the
    // hard deletes become tombstones; the soft deletes, still in the recycle bin, come as their
    // rows (checked with queryAll), never as tombstones blanking them.
    assert_eq!(
        ids(&tombstones(&third_sink, "Lead")),
        set(&[&gone.hard_deleted])
    );
    assert_soft_deleted_rows(&third_sink, &soft);

    states.update(&third_sink, &["Lead"]);
    assert!(
        states.0["Lead"].get("deletes_unknown_from").is_none(),
        "all known again: {}",
        states.0["Lead"]
    );
    (second_sink, third_sink, unknown_from)
}

/// A getDeleted answer the connector cannot use (here one entry has no date) is a WARN, and the
/// state keeps where the hard deletes stop being known: the next sync asks from there again and
/// brings their tombstones, though its windows start after them.
#[tokio::test]
async fn deletes_a_sync_could_not_list_are_asked_for_again_by_the_next() {
    let faults = Faults {
        malformed_deleted_next: 1,
        ..Faults::default()
    };
    let (second, third, unknown_from) = deletes_unknown_then_listed(76, faults, HOUR).await;
    // The third sync's windows start after the soft deletes: their rows came from the check.
    assert!(
        third.logs().iter().any(|(level, m)| *level == LogLevel::Info
            && m.contains("Lead: 3 records listed as deleted and not shown by the read are still in the org")),
        "{:?}",
        third.logs()
    );
    let warned = second.logs().into_iter().any(|(level, line)| {
        level == LogLevel::Warn
            && line.starts_with("Lead: records purged or hard-deleted from")
            && line.contains("the next sync asks for them again")
    });
    assert!(warned, "{:?}", second.logs());
    let line = third
        .logs()
        .into_iter()
        .find(|(_, l)| l.starts_with("Lead: hard deletes from"))
        .map(|(_, l)| l.to_string())
        .unwrap();
    assert!(
        line.starts_with(&format!(
            "Lead: hard deletes from {}",
            unknown_from.as_str().unwrap()
        )),
        "{line}"
    );
}

/// A getDeleted answer complete only up to a `latestDateCovered` before the end asked (the
/// emulated org lags it by an hour here) does not list the deletes after it; the state keeps
/// that point, and the next sync asks from there and brings their tombstones.
#[tokio::test]
async fn deletes_after_latest_date_covered_come_with_the_next_sync() {
    let faults = Faults {
        deleted_coverage_lag_secs: HOUR,
        ..Faults::default()
    };
    let (second, _, unknown_from) = deletes_unknown_then_listed(77, faults, 600).await;
    // The sync whose answer fell short says how far it was complete.
    let said = second.logs().into_iter().any(|(level, line)| {
        level == LogLevel::Info
            && line.starts_with("Lead: hard deletes from")
            && line.contains(&format!(
                "complete only up to {} (latestDateCovered)",
                unknown_from.as_str().unwrap()
            ))
    });
    assert!(said, "{:?}", second.logs());
}

/// A first sync stopped by the daily limit inside its first Bulk job leaves a state naming the
/// job and no window. The next sync has rows downstream to delete: it asks getDeleted, and
/// - a record the first sync emitted and hard-deleted since gets a tombstone;
/// - a record hard-deleted since that sits in the job's pages not read yet comes out of the
///   continued job as it was when the job ran (its results are a snapshot), and its tombstone
///   follows it rather than being cancelled by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_after_a_stop_inside_a_first_bulk_job_get_tombstones() {
    let options = ReadOptions {
        planner: PlannerConfig {
            rest_max_rows: 0,
            bulk_rows_per_window: 100_000,
            ..PlannerConfig::default()
        },
        bulk_max_records: Some(50),
        bulk_jobs_in_flight: 1,
        ..fast_options()
    };
    let mut checked = 0;
    for allowance in 2..=12 {
        let c = connect(
            org_config(78).rows("Account", 300),
            json!({"force_use_bulk_api": true}),
        )
        .await;
        let ctl = c.org.control();
        let catalog = configure(&c.catalog, &["Account"], Some("incremental"));
        common::allow_calls(&ctl, allowance);
        let (cut, first) = run(
            &c.session,
            &c.config,
            &catalog,
            &InputState::default(),
            &options,
        )
        .await;
        cut.unwrap();
        let mut states = States::default();
        states.update(&first, &["Account"]);
        let state = states.0.get("Account").cloned().unwrap_or_default();
        let in_job = state["bulk_jobs"].as_array().is_some_and(|j| !j.is_empty())
            && !common::windows_read(&state);
        let emitted = ids(&first
            .records("Account")
            .into_iter()
            .cloned()
            .collect::<Vec<_>>());
        if !in_job || emitted.is_empty() {
            c.org.shutdown().await;
            continue;
        }
        checked += 1;
        let unread: Vec<String> = ctl
            .truth("Account")
            .iter()
            .filter_map(|r| r["Id"].as_str().map(str::to_string))
            .filter(|id| !emitted.contains(id))
            .collect();
        assert!(
            !unread.is_empty(),
            "allowance {allowance}: the job was read whole"
        );

        ctl.set_faults(Faults::default());
        ctl.advance_clock(HOUR);
        let read_before = emitted.iter().next().unwrap().clone();
        let mut deletes = Mutation::new("Account");
        deletes.hard_delete_ids = vec![read_before.clone(), unread[0].clone()];
        let gone = ctl.mutate(deletes);
        assert_eq!(gone.hard_deleted.len(), 2, "{gone:?}");
        ctl.advance_clock(HOUR);

        let (rest, second) = run(&c.session, &c.config, &catalog, &states.input(), &options).await;
        rest.unwrap();
        assert_eq!(
            ids(&tombstones(&second, "Account")),
            set(&[&gone.hard_deleted]),
            "allowance {allowance}; state after the cut: {state}; {:?}",
            second.logs()
        );
        // The snapshot row of the record not read yet, then its tombstone.
        let records = second.records("Account");
        let positions: Vec<(usize, bool)> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.id() == Some(unread[0].as_str()))
            .map(|(i, r)| (i, r.columns.len() == 3 && r.columns[1] == "IsDeleted"))
            .collect();
        assert!(
            matches!(positions.as_slice(), [(a, false), (b, true)] if a < b),
            "allowance {allowance}: {positions:?}"
        );
        c.org.shutdown().await;
    }
    assert!(checked > 0, "no cut fell inside the first job after a page");
}

/// A sync that lists the deletes an earlier one could not (its state's `deletes_unknown_from`)
/// and then stops at the daily limit before the window they fall in is done keeps that key in
/// its state, so the next sync asks for them again and brings their tombstones.
#[tokio::test]
async fn deletes_listed_by_a_sync_stopped_before_their_window_come_with_the_next() {
    let mut stopped_after_listing = 0;
    for allowance in 1..=4 {
        let c = connect(org_config(79), json!({})).await;
        let ctl = c.org.control();
        let (catalog, mut states) = first_lead_sync(&c).await;
        ctl.advance_clock(HOUR);
        let gone = ctl.mutate(Mutation::new("Lead").hard_delete(2));
        assert_eq!(gone.hard_deleted.len(), 2);
        ctl.advance_clock(HOUR);
        ctl.set_faults(Faults {
            malformed_deleted_next: 1,
            ..Faults::default()
        });
        let (second, second_sink) = run_from(&c, &catalog, &states).await;
        second.unwrap();
        assert!(tombstones(&second_sink, "Lead").is_empty());
        states.update(&second_sink, &["Lead"]);
        assert!(states.0["Lead"]["deletes_unknown_from"].is_string());

        ctl.advance_clock(HOUR);
        common::allow_calls(&ctl, allowance);
        let (third, third_sink) = run_from(&c, &catalog, &states).await;
        third.unwrap();
        states.update(&third_sink, &["Lead"]);
        let listed = third_sink
            .logs()
            .into_iter()
            .any(|(_, l)| l.starts_with("Lead: hard deletes from"));
        if listed && tombstones(&third_sink, "Lead").is_empty() {
            stopped_after_listing += 1;
            assert!(
                states.0["Lead"]["deletes_unknown_from"].is_string(),
                "allowance {allowance}: {}",
                states.0["Lead"]
            );
        }

        ctl.set_faults(Faults::default());
        ctl.advance_clock(HOUR);
        let (fourth, fourth_sink) = run_from(&c, &catalog, &states).await;
        fourth.unwrap();
        let got: BTreeSet<String> = ids(&tombstones(&third_sink, "Lead"))
            .union(&ids(&tombstones(&fourth_sink, "Lead")))
            .cloned()
            .collect();
        assert_eq!(got, set(&[&gone.hard_deleted]), "allowance {allowance}");
        c.org.shutdown().await;
    }
    assert!(
        stopped_after_listing > 0,
        "no sync stopped between listing and emitting"
    );
}

/// A first sync cancelled inside the first page of its first Bulk job: the job is not kept (no
/// page of it was read whole), but its rows are downstream, so the state keeps where deletes
/// matter from (`deletes_unknown_from`) and the next sync brings a tombstone for an emitted
/// record hard-deleted since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_after_a_first_sync_cancelled_on_its_first_page_get_tombstones() {
    let options = ReadOptions {
        planner: PlannerConfig {
            rest_max_rows: 0,
            bulk_rows_per_window: 100_000,
            ..PlannerConfig::default()
        },
        bulk_max_records: Some(50),
        bulk_jobs_in_flight: 1,
        channel_capacity: 2,
        ..fast_options()
    };
    let c = connect(
        org_config(80).rows("Account", 300),
        json!({"force_use_bulk_api": true}),
    )
    .await;
    let ctl = c.org.control();
    let catalog = configure(&c.catalog, &["Account"], Some("incremental"));
    let (_, first) = common::read_cancelled_at(&c, &catalog, 10, &options).await;
    let mut states = States::default();
    states.update(&first, &["Account"]);
    let state = states.0["Account"].clone();
    assert!(state.get("bulk_jobs").is_none(), "{state}");
    assert!(state["deletes_unknown_from"].is_string(), "{state}");
    let emitted = ids(&first
        .records("Account")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>());
    assert!(!emitted.is_empty());

    ctl.advance_clock(HOUR);
    let mut deletes = Mutation::new("Account");
    deletes.hard_delete_ids = vec![emitted.iter().next().unwrap().clone()];
    let gone = ctl.mutate(deletes);
    assert_eq!(gone.hard_deleted.len(), 1, "{gone:?}");
    ctl.advance_clock(HOUR);
    let (next, second) = run(&c.session, &c.config, &catalog, &states.input(), &options).await;
    next.unwrap();
    assert_eq!(
        ids(&tombstones(&second, "Account")),
        set(&[&gone.hard_deleted]),
        "{:?}",
        second.logs()
    );
    c.org.shutdown().await;
}

/// A first sync cut short by the daily limit after some of its windows, resumed an hour later:
/// its state's cursor lags years behind the org's clock, but the deletes that matter start when
/// it began (`deletes_known_to`, on the org's clock). No "state goes back" warning (its fix, a
/// reset, would start the first sync over at every resume), getDeleted is asked from then, and a
/// record it emitted and that was hard-deleted since comes back as a tombstone.
#[tokio::test]
async fn a_first_sync_resumed_is_not_told_its_state_is_too_old() {
    let options = ReadOptions {
        planner: PlannerConfig {
            rest_max_rows: 100_000,
            rest_rows_per_window: 60,
            ..PlannerConfig::default()
        },
        rest_batch_size: Some(200),
        ..fast_options()
    };
    let mut checked = 0;
    for allowance in 3..=14 {
        let c = connect(org_config(81).rows("Lead", 400), json!({})).await;
        let ctl = c.org.control();
        let catalog = configure(&c.catalog, &["Lead"], Some("incremental"));
        let begun = c.session.org_now();
        common::allow_calls(&ctl, allowance);
        let (first, first_sink) = run(
            &c.session,
            &c.config,
            &catalog,
            &InputState::default(),
            &options,
        )
        .await;
        let summary = first.unwrap();
        let mut states = States::default();
        states.update(&first_sink, &["Lead"]);
        let state = states.0.get("Lead").cloned().unwrap_or_default();
        let windows_read = common::windows_read(&state);
        let cut = !matches!(summary.streams[0].status, sf_sync::StreamStatus::Complete);
        if !windows_read || !cut {
            c.org.shutdown().await;
            continue;
        }
        checked += 1;
        // When the first sync began, on the org's clock (its reads come after).
        let known = state["deletes_known_to"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let known_at = chrono::DateTime::parse_from_rfc3339(&known)
            .unwrap()
            .to_utc();
        assert!(
            (begun - known_at).abs() < chrono::TimeDelta::minutes(5),
            "{state}"
        );
        let emitted = ids(&first_sink
            .records("Lead")
            .into_iter()
            .cloned()
            .collect::<Vec<_>>());

        ctl.set_faults(Faults::default());
        ctl.advance_clock(HOUR);
        let gone = ctl.mutate(Mutation::new("Lead").hard_delete(40));
        // getDeleted ignores seconds: deletes of the last minute come with the sync after.
        ctl.advance_clock(5 * 60);
        let (second, sink) = run(&c.session, &c.config, &catalog, &states.input(), &options).await;
        second.unwrap();
        let warnings: Vec<&str> = sink
            .logs()
            .into_iter()
            .filter(|(l, _)| *l == LogLevel::Warn)
            .map(|(_, m)| m)
            .collect();
        assert!(
            !warnings.iter().any(|m| m.contains("goes back to")),
            "allowance {allowance}: {warnings:?}"
        );
        let asked = sink
            .logs()
            .into_iter()
            .find(|(_, l)| l.starts_with("Lead: hard deletes from"))
            .map(|(_, l)| l.to_string())
            .unwrap();
        // From then, less the lookback (10 minutes by default), not from the lagging cursor.
        let from = (known_at - chrono::TimeDelta::minutes(10)).format("%Y-%m-%dT%H:%M:%S");
        assert!(
            asked.starts_with(&format!("Lead: hard deletes from {from}")),
            "{asked} / {known}"
        );
        // Every record emitted by the first sync and hard-deleted since has its tombstone.
        let due: BTreeSet<String> = gone
            .hard_deleted
            .iter()
            .filter(|id| emitted.contains(*id))
            .cloned()
            .collect();
        assert!(!due.is_empty(), "no deleted record had been emitted");
        let got = ids(&tombstones(&sink, "Lead"));
        assert!(
            got.is_superset(&due),
            "allowance {allowance}: {due:?} not in {got:?}; {:?}; {state}; {}",
            sink.logs(),
            sink.last_state("Lead").unwrap()
        );
        c.org.shutdown().await;
    }
    assert!(
        checked > 0,
        "no allowance cut the first sync after a window"
    );
}

/// More deleted ids in a getDeleted window than one answer lists (Salesforce: 600,000; this org:
/// 3) after a mass delete: the window is asked again in halves, down to a minute, and every
/// tombstone comes. A single minute still over the limit is a WARN, and the next sync asks for
/// it again; the others are delivered.
#[tokio::test]
async fn a_getdeleted_window_over_the_id_limit_is_asked_in_halves() {
    let c = connect(
        org_config(79).rows("Lead", 100).get_deleted_max_ids(3),
        json!({}),
    )
    .await;
    let ctl = c.org.control();
    let (catalog, states) = first_lead_sync(&c).await;
    ctl.advance_clock(HOUR);
    let mut spread = Vec::new();
    for _ in 0..8 {
        spread.extend(
            ctl.mutate(Mutation::new("Lead").hard_delete(1))
                .hard_deleted,
        );
        ctl.advance_clock(5 * 60);
    }
    ctl.advance_clock(HOUR);
    let before = ctl.stats().requests.get_deleted;
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    assert_eq!(spread.len(), 8);
    assert_eq!(ids(&tombstones(&sink, "Lead")), set(&[&spread]));
    assert!(ctl.stats().requests.get_deleted - before > 1, "never split");
    let line = sink
        .logs()
        .into_iter()
        .find(|(_, l)| l.starts_with("Lead: hard deletes from"))
        .map(|(_, l)| l.to_string())
        .unwrap();
    assert!(line.contains("split in halves"), "{line}");
    assert!(!line.contains("could not be listed"), "{line}");
    let warned: Vec<&str> = sink
        .logs()
        .into_iter()
        .filter(|(l, _)| *l == LogLevel::Warn)
        .map(|(_, m)| m)
        .collect();
    assert!(warned.is_empty(), "{warned:?}");

    // Four in one minute: that minute can never be listed, and is said (not asked again by
    // every later sync); the one before it is delivered.
    let mut states = states;
    states.update(&sink, &["Lead"]);
    let alone = ctl
        .mutate(Mutation::new("Lead").hard_delete(1))
        .hard_deleted;
    ctl.advance_clock(5 * 60);
    let burst = ctl
        .mutate(Mutation::new("Lead").hard_delete(4))
        .hard_deleted;
    assert_eq!(burst.len(), 4);
    ctl.advance_clock(HOUR);
    let (third, sink) = run_from(&c, &catalog, &states).await;
    third.unwrap();
    let got = ids(&tombstones(&sink, "Lead"));
    assert!(got.contains(&alone[0]), "{got:?}");
    assert!(burst.iter().all(|id| !got.contains(id)), "{got:?}");
    assert!(
        sink.logs().into_iter().any(|(l, m)| l == LogLevel::Warn
            && m.starts_with("Lead: more records were purged or hard-deleted in the minute")
            && m.contains("run a full refresh of Lead")),
        "{:?}",
        sink.logs()
    );
    let last = sink.last_state("Lead").unwrap();
    assert!(last.get("deletes_unknown_from").is_none(), "{last}");
}

/// An org whose delete log keeps less than the 15 days the connector assumes (here 7: Salesforce
/// purges it early under heavy deletes) refuses a window starting before it
/// (`INVALID_REPLICATION_DATE`): the log's earliest date is read from a one-minute listing, the
/// state's age is said, and what the log keeps is listed; left failing, every sync would have
/// asked from the same start, refused for good.
#[tokio::test]
async fn a_delete_log_keeping_less_than_15_days_is_read_from_its_earliest_date() {
    let c = connect(
        org_config(80)
            .rows("Lead", 100)
            .recycle_bin_retention_secs(7 * DAY),
        json!({}),
    )
    .await;
    let ctl = c.org.control();
    let (catalog, states) = first_lead_sync(&c).await;
    ctl.advance_clock(2 * DAY);
    let early = ctl
        .mutate(Mutation::new("Lead").hard_delete(1))
        .hard_deleted;
    ctl.advance_clock(7 * DAY);
    let recent = ctl
        .mutate(Mutation::new("Lead").hard_delete(2))
        .hard_deleted;
    ctl.advance_clock(HOUR);
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    let got = ids(&tombstones(&sink, "Lead"));
    assert_eq!(got, set(&[&recent]), "{:?}", sink.logs());
    assert!(!got.contains(&early[0]));
    let warnings: Vec<&str> = sink
        .logs()
        .into_iter()
        .filter(|(l, _)| *l == LogLevel::Warn)
        .map(|(_, m)| m)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|m| m.starts_with("Lead: this stream's state goes back to")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|m| m.contains("could not be listed")),
        "{warnings:?}"
    );
    // The next sync lists from where this one stopped, with no warning.
    let mut states = states;
    states.update(&sink, &["Lead"]);
    ctl.advance_clock(HOUR);
    let (third, sink) = run_from(&c, &catalog, &states).await;
    third.unwrap();
    assert!(
        !sink.logs().into_iter().any(|(l, _)| l == LogLevel::Warn),
        "{:?}",
        sink.logs()
    );
}

/// An object whose describe says it is not replicateable: getDeleted cannot list its deletions,
/// so nothing is asked, and an INFO says that its purged records stay downstream until a full
/// refresh (never in silence). The first sync, which has nothing downstream, says nothing.
#[tokio::test]
async fn a_stream_whose_deletes_cannot_be_listed_says_so() {
    let c = connect(org_config(81).not_replicateable("Lead"), json!({})).await;
    let ctl = c.org.control();
    let (catalog, states) = first_lead_sync(&c).await;
    ctl.advance_clock(HOUR);
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    assert_eq!(ctl.stats().requests.get_deleted, 0);
    let said: Vec<&str> = sink
        .logs()
        .into_iter()
        .filter(|(l, m)| *l == LogLevel::Info && m.starts_with("Lead: hard deletes are not listed"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(said.len(), 1, "{:?}", sink.logs());
    assert!(said[0].contains("full refresh of Lead"), "{}", said[0]);
}

/// A state Airbyte leaves after a failed slice has a gap: the sync reads the gap and what follows
/// the last slice, and lists deletes from the gap on. Soft deletes inside the slice after the gap
/// (rows an earlier sync emitted whole, still in the recycle bin) are not in any window read:
/// they are read again by `Id` and emitted as they are, never as tombstones blanking their rows;
/// the hard deletes beside them become tombstones.
#[tokio::test]
async fn soft_deletes_in_a_slice_after_a_gap_come_as_rows_not_tombstones() {
    let c = connect(org_config(78), json!({})).await;
    let ctl = c.org.control();
    let catalog = configure(&c.catalog, &["Lead"], None);
    ctl.advance_clock(DAY);
    let at = ctl.now();
    let gone = ctl.mutate(Mutation::new("Lead").delete(3).hard_delete(2));
    assert_eq!((gone.deleted.len(), gone.hard_deleted.len()), (3, 2));
    ctl.advance_clock(2 * DAY);
    let now = ctl.now();
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let days = chrono::TimeDelta::days;
    let state = InputState::from_value(&json!([{"type": "STREAM", "stream": {
    "stream_descriptor": {"name": "Lead"},
    "stream_state": {"state_type": "date-range", "slices": [
        {"start": stamp(at - days(60)), "end": stamp(at - days(10))},
        {"start": stamp(at - days(1)), "end": stamp(now - chrono::TimeDelta::hours(1))}
    ]}}}]))
    .unwrap();
    let (result, sink) = run(&c.session, &c.config, &catalog, &state, &fast_options()).await;
    result.unwrap();
    assert_eq!(ids(&tombstones(&sink, "Lead")), set(&[&gone.hard_deleted]));
    let soft = set(&[&gone.deleted]);
    assert_soft_deleted_rows(&sink, &soft);
    assert!(
        sink.logs().iter().any(|(level, m)| *level == LogLevel::Info
            && m.contains(
                "Lead: 3 records listed as deleted and not shown by the read are still in the org"
            )),
        "{:?}",
        sink.logs()
    );
}

/// An org where getDeleted failed for one sync after 2 hard deletes then 250 soft deletes (five
/// batches two minutes apart, 50 each): the next sync lists them all before its windows and must
/// check 252 ids by `Id`, two queries of 200. Returns the org and where the sync stands.
async fn check_pending(
    seed: u64,
    rows: u64,
) -> (
    common::Connected,
    sf_sync::ConfiguredCatalog,
    States,
    Vec<String>,
    Vec<String>,
) {
    let c = connect(org_config(seed).rows("Lead", rows), json!({})).await;
    let ctl = c.org.control();
    let (catalog, mut states) = first_lead_sync(&c).await;
    ctl.advance_clock(HOUR);
    // The hard deletes first: the first check query settles them (gone).
    let hard = ctl
        .mutate(Mutation::new("Lead").hard_delete(2))
        .hard_deleted;
    ctl.advance_clock(120);
    let mut soft = Vec::new();
    for _ in 0..5 {
        soft.extend(ctl.mutate(Mutation::new("Lead").delete(50)).deleted);
        ctl.advance_clock(120);
    }
    ctl.advance_clock(HOUR);
    ctl.set_faults(Faults {
        malformed_deleted_next: 1,
        ..Faults::default()
    });
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    states.update(&sink, &["Lead"]);
    ctl.set_faults(Faults::default());
    ctl.advance_clock(HOUR);
    (c, catalog, states, soft, hard)
}

/// A stop while ids are checked by `Id` keeps what was settled: the checked ids go out (rows, and
/// tombstones for the hard deletes the first query settled), and only the unchecked ones wait
/// for the next sync, which lists and checks from the first of them. So a daily allowance that
/// leaves each sync room for one check query ends the work in two syncs instead of stopping at
/// the same place every time.
#[tokio::test]
async fn a_stop_during_the_check_by_id_keeps_what_it_settled() {
    // The requests a sync makes with both check queries, counted on a twin org.
    let (twin, catalog, states, _, _) = check_pending(79, 600).await;
    let before = twin.org.control().stats().api_usage.used;
    let (result, _) = run_from(&twin, &catalog, &states).await;
    result.unwrap();
    let whole = twin.org.control().stats().api_usage.used - before;
    twin.org.shutdown().await;

    let (c, catalog, mut states, soft, hard) = check_pending(79, 600).await;
    let ctl = c.org.control();
    let mut emitted_soft = BTreeSet::new();
    let mut tombstoned = BTreeSet::new();
    let mut stops = 0;
    for _ in 0..2 {
        // Room for every request but the second check query.
        let used = ctl.stats().api_usage.used;
        ctl.set_faults(Faults {
            daily_api_limit: used + whole - 1,
            ..Faults::default()
        });
        let (result, sink) = run_from(&c, &catalog, &states).await;
        let summary = result.unwrap();
        stops += summary.incomplete().count();
        emitted_soft.extend(
            sink.records("Lead")
                .into_iter()
                .filter(|r| r.values.len() > 3 && r.get("IsDeleted") == Some(&Value::Bool(true)))
                .filter_map(|r| r.id().map(str::to_string)),
        );
        tombstoned.extend(ids(&tombstones(&sink, "Lead")));
        states.update(&sink, &["Lead"]);
        ctl.advance_clock(HOUR);
    }
    assert_eq!(
        stops, 1,
        "the first sync stops in its check, the second does not"
    );
    let soft: BTreeSet<String> = soft.into_iter().collect();
    assert!(
        soft.is_subset(&emitted_soft),
        "soft deletes not emitted: {:?}",
        soft.difference(&emitted_soft).count()
    );
    assert_eq!(tombstoned, hard.into_iter().collect::<BTreeSet<_>>());
    c.org.shutdown().await;
}

/// Records soft-deleted since the last sync and undeleted after the listing, just before the
/// read's query: the undelete stamps them after the window's end, so the read does not show
/// them though they are live. The check by `Id` finds them: they come out as the live rows
/// they are, and only the hard-deleted record gets a tombstone.
#[tokio::test]
async fn records_undeleted_between_the_listing_and_the_read_get_no_tombstone() {
    let c = connect(org_config(81), json!({})).await;
    let ctl = c.org.control();
    let (catalog, states) = first_lead_sync(&c).await;
    ctl.advance_clock(HOUR);
    let soft = ctl.mutate(Mutation::new("Lead").delete(3));
    let hard = ctl.mutate(Mutation::new("Lead").hard_delete(1));
    ctl.advance_clock(HOUR);
    // The whole recycle bin, undeleted as the read's first query of rows arrives.
    ctl.set_faults(Faults {
        undelete_before_query: Some((1, 10_000)),
        ..Faults::default()
    });
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    let live: BTreeSet<String> = ctl
        .truth("Lead")
        .into_iter()
        .filter(|r| r["IsDeleted"] == false)
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect();
    let soft = set(&[&soft.deleted]);
    assert!(soft.is_subset(&live), "the fault undeleted them");
    assert_eq!(ids(&tombstones(&sink, "Lead")), set(&[&hard.hard_deleted]));
    assert_whole_rows(&sink, &soft, false);
}

/// The warnings of `sink` that say the state is older than the delete log.
fn too_old_warnings(sink: &MemorySink) -> Vec<String> {
    sink.logs()
        .into_iter()
        .filter(|(l, m)| *l == LogLevel::Warn && m.contains("state goes back to"))
        .map(|(_, m)| m.to_string())
        .collect()
}

/// One Lead hard-deleted `before` seconds after a first sync under `config`, then a second sync
/// `after` seconds later: its tombstone comes, and no warning that the state is too old.
async fn one_delete_listed_without_warning(seed: u64, config: Value, before: i64, after: i64) {
    let c = connect(org_config(seed), config).await;
    let ctl = c.org.control();
    let (catalog, states) = first_lead_sync(&c).await;
    ctl.advance_clock(before);
    let hard = ctl.mutate(Mutation::new("Lead").hard_delete(1));
    ctl.advance_clock(after);
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    assert_eq!(ids(&tombstones(&sink, "Lead")), set(&[&hard.hard_deleted]));
    assert_eq!(too_old_warnings(&sink), Vec::<String>::new());
}

/// A state 15 days less half an hour old: the delete two minutes after it is still in the log,
/// so it is listed and tombstoned, with no warning that the state is too old.
#[tokio::test]
async fn a_state_just_inside_the_delete_log_loses_no_delete() {
    one_delete_listed_without_warning(82, json!({}), 120, 15 * DAY - 32 * 60).await;
}

/// A lookback of 16 days reaches past the delete log, but the last sync listed everything up to
/// minutes ago: nothing is lost, so no warning, and the deletes since are listed (getDeleted
/// lists by the minute: the delete lies in a minute the listing covers whole).
#[tokio::test]
async fn a_lookback_longer_than_the_delete_log_is_no_reason_to_warn() {
    one_delete_listed_without_warning(83, json!({"lookback_window": "P16D"}), 60, 120).await;
}

/// Hard deletes in three windows of one sync: their check by `Id` waits for the stream's end
/// (fewer than 200 are due at each window's end), so it takes one query, not one a window.
#[tokio::test]
async fn the_check_by_id_is_one_query_for_deletes_in_several_windows() {
    let c = connect(
        org_config(84),
        json!({"force_use_bulk_api": true, "stream_slice_step": "PT1H"}),
    )
    .await;
    let ctl = c.org.control();
    let (catalog, states) = first_lead_sync(&c).await;
    let mut gone = Vec::new();
    for _ in 0..3 {
        ctl.advance_clock(HOUR);
        gone.extend(
            ctl.mutate(Mutation::new("Lead").hard_delete(1))
                .hard_deleted,
        );
    }
    ctl.advance_clock(HOUR);
    let before = ctl.stats().requests;
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    assert_eq!(ids(&tombstones(&sink, "Lead")), set(&[&gone]));
    let after = ctl.stats().requests;
    assert!(after.bulk_create - before.bulk_create >= 3, "{after:?}");
    // Bulk reads the rows; REST serves the count (when the planner asks one) and the check.
    let rest = after.query - before.query;
    assert!((1..=2).contains(&rest), "{rest} REST queries");
}

/// The check by `Id` fails for a passing reason (503 on every try): its ids are not tombstoned
/// (a live record among them would be blanked) but put off, with a WARN, and the state says
/// deletes are unknown from the first of them; the next sync lists and checks them: the
/// hard-deleted record gets its tombstone then, the undeleted ones none.
#[tokio::test]
async fn a_check_by_id_that_cannot_run_puts_its_tombstones_off() {
    let c = connect(org_config(85), json!({})).await;
    let ctl = c.org.control();
    let (catalog, mut states) = first_lead_sync(&c).await;
    ctl.advance_clock(HOUR);
    let soft = ctl.mutate(Mutation::new("Lead").delete(2));
    let hard = ctl.mutate(Mutation::new("Lead").hard_delete(1));
    ctl.advance_clock(HOUR);
    ctl.set_faults(Faults {
        undelete_before_query: Some((1, 10_000)),
        fail_row_queries_from: Some(2),
        ..Faults::default()
    });
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    assert!(
        tombstones(&sink, "Lead").is_empty(),
        "{:?}",
        sink.records("Lead")
    );
    assert!(
        sink.logs().iter().any(|(l, m)| *l == LogLevel::Warn
            && m.contains("their tombstones are put off: the next sync lists and checks them")),
        "{:?}",
        sink.logs()
    );
    states.update(&sink, &["Lead"]);
    assert!(
        states.0["Lead"]["deletes_unknown_from"].is_string(),
        "{}",
        states.0["Lead"]
    );

    ctl.set_faults(Faults::default());
    ctl.advance_clock(60);
    let (third, sink) = run_from(&c, &catalog, &states).await;
    third.unwrap();
    assert_eq!(ids(&tombstones(&sink, "Lead")), set(&[&hard.hard_deleted]));
    assert_whole_rows(&sink, &set(&[&soft.deleted]), false);
}
