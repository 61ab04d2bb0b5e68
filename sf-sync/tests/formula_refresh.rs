//! `formula_refresh` against the emulated org: `Invoice__c.Age_Days__c` (`TODAY() -
//! Invoice_Date__c`) changes with the org's clock without touching `SystemModstamp`; with
//! `formula_refresh: P1D` and the clock moved a day, the streams with formula fields are read
//! whole again (new values arrive, `formula_refreshed_at` moves) and the others are not.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{configure, connect, org_config, run_fresh, run_from, States};
use serde_json::{json, Value};
use sf_sync::{LogLevel, MemorySink, SyncConfig};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// `Age_Days__c` by `Id`, of the records `sink` holds for `Invoice__c`.
fn ages(sink: &MemorySink) -> BTreeMap<String, Value> {
    sink.records("Invoice__c")
        .into_iter()
        .map(|r| {
            (
                r.id().unwrap().to_string(),
                r.get("Age_Days__c").cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn refreshed_at(sink: &MemorySink, stream: &str) -> Option<Value> {
    sink.last_state(stream)
        .and_then(|s| s.get("formula_refreshed_at").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formula_values_changed_by_the_clock_arrive_and_other_streams_are_not_re_read() {
    let c = connect(
        org_config(81).rows("Invoice__c", 300),
        json!({"formula_refresh": "P1D"}),
    )
    .await;
    let ctl = c.org.control();
    let streams = ["Account", "Invoice__c", "Opportunity"];
    let catalog = configure(&c.catalog, &streams, None);
    let (first, sink) = run_fresh(&c.session, &c.config, &catalog).await;
    first.unwrap();
    let first_ages = ages(&sink);
    assert!(first_ages.len() > 10);
    // A first read is a whole read: the streams with formula fields note it.
    let t0 = refreshed_at(&sink, "Invoice__c").unwrap();
    assert_eq!(refreshed_at(&sink, "Opportunity"), Some(t0.clone()));
    assert_eq!(refreshed_at(&sink, "Account"), None, "no formula field");
    let mut states = States::default();
    states.update(&sink, &streams);

    // An hour later: refreshed recently, nothing re-read.
    ctl.advance_clock(HOUR);
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    for stream in streams {
        assert!(sink.records(stream).is_empty(), "{stream} re-read");
    }
    assert!(!sink
        .logs()
        .iter()
        .any(|(_, m)| m.contains("formula refresh")));
    assert_eq!(refreshed_at(&sink, "Invoice__c"), Some(t0.clone()));
    states.update(&sink, &streams);

    // A day later: the formula streams are read whole; Age_Days__c grew by one for every
    // invoice with a date, though no SystemModstamp moved.
    ctl.advance_clock(DAY);
    let (third, sink) = run_from(&c, &catalog, &states).await;
    let summary = third.unwrap();
    assert!(summary.streams.iter().all(|s| s.failure.is_none()));
    let third_ages = ages(&sink);
    assert_eq!(
        third_ages.keys().collect::<Vec<_>>(),
        first_ages.keys().collect::<Vec<_>>(),
        "Invoice__c read whole"
    );
    let mut grown = 0;
    for (id, before) in &first_ages {
        let after = &third_ages[id];
        match (before.as_f64(), after.as_f64()) {
            (Some(b), Some(a)) => {
                assert_eq!(a, b + 1.0, "{id}");
                grown += 1;
            }
            _ => assert_eq!(before, after, "{id}"),
        }
    }
    assert!(grown > 10, "{grown} values grew");
    assert_eq!(
        sink.records("Opportunity").len(),
        ctl.truth("Opportunity").len(),
        "Opportunity (ExpectedRevenue) read whole"
    );
    assert!(sink.records("Account").is_empty(), "Account re-read");
    let t1 = refreshed_at(&sink, "Invoice__c").unwrap();
    assert_ne!(t1, t0);
    assert_eq!(refreshed_at(&sink, "Account"), None);
    let logs: Vec<&str> = sink
        .logs()
        .into_iter()
        .filter(|(l, _)| *l == LogLevel::Info)
        .map(|(_, m)| m)
        .collect();
    for stream in ["Invoice__c", "Opportunity"] {
        assert!(
            logs.iter()
                .any(|m| m.starts_with(&format!("{stream}: formula refresh: "))),
            "{logs:?}"
        );
        assert!(
            logs.iter().any(
                |m| m.starts_with(&format!("{stream}: formula refresh done: "))
                    && m.contains("API call")
            ),
            "{logs:?}"
        );
    }
    assert!(!logs.iter().any(|m| m.starts_with("Account: formula")));
}

/// A first read cut short (here by the daily limit, on a page of 200) is continued by the next
/// sync, not taken for a stream never read whole and read again from `start_date`: its states
/// say when it began (`formula_refreshed_at`) from the first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_read_cut_short_is_continued_not_started_over() {
    let c = connect(
        org_config(82).rows("Invoice__c", 1_000),
        json!({"formula_refresh": "P1D", "start_date": "2000-01-01T00:00:00Z",
               "stream_slice_step": "P10000D"}),
    )
    .await;
    let ctl = c.org.control();
    let catalog = configure(&c.catalog, &["Invoice__c"], None);
    let mut options = common::fast_options();
    options.rest_batch_size = Some(200);
    common::allow_calls(&ctl, 4);
    let input = sf_sync::InputState::default();
    let (first, sink) = common::run(&c.session, &c.config, &catalog, &input, &options).await;
    first.unwrap();
    let read_first = sink.records("Invoice__c").len();
    let total = ctl.truth("Invoice__c").len();
    assert!(
        read_first > 0 && read_first < total,
        "{read_first} of {total}"
    );
    assert!(
        refreshed_at(&sink, "Invoice__c").is_some(),
        "{:?}",
        sink.last_state("Invoice__c")
    );
    let mut states = States::default();
    states.update(&sink, &["Invoice__c"]);

    ctl.set_faults(fixtures::Faults::default());
    ctl.advance_clock(HOUR);
    let input = states.input();
    let (second, sink) = common::run(&c.session, &c.config, &catalog, &input, &options).await;
    second.unwrap();
    assert!(
        !sink
            .logs()
            .iter()
            .any(|(_, m)| m.contains("formula refresh")),
        "{:?}",
        sink.logs()
    );
    // The rest, and the rows sharing the instant of the cut again: far from all of them.
    let read_second = sink.records("Invoice__c").len();
    assert!(
        read_first + read_second < total + 200,
        "{read_first} + {read_second} of {total}"
    );
    assert!(read_first + read_second >= total);
}

/// With an `end_date` in the past, the refresh is due by the org's clock, not by `end_date`:
/// a sync an hour after a whole read does not read the object whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_end_date_does_not_make_every_sync_a_refresh() {
    let c = connect(
        org_config(83).rows("Invoice__c", 300),
        json!({"formula_refresh": "P1D", "start_date": "2000-01-01T00:00:00Z",
               "end_date": "2024-01-01T00:00:00Z"}),
    )
    .await;
    let ctl = c.org.control();
    let catalog = configure(&c.catalog, &["Invoice__c"], None);
    let (first, sink) = run_fresh(&c.session, &c.config, &catalog).await;
    first.unwrap();
    let mut states = States::default();
    states.update(&sink, &["Invoice__c"]);
    ctl.advance_clock(HOUR);
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    assert!(
        !sink
            .logs()
            .iter()
            .any(|(_, m)| m.contains("formula refresh")),
        "{:?}",
        sink.logs()
    );
    assert!(sink.records("Invoice__c").is_empty());
}

/// A refresh is due a little early (a tenth of the period, at most an hour), so a daily sync
/// that starts a moment sooner than yesterday's still refreshes; its LOG counts the rows read
/// whole, not the tombstones of records hard-deleted since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_refresh_is_due_a_little_early_and_counts_rows_only() {
    let c = connect(
        org_config(84).rows("Invoice__c", 300),
        json!({"formula_refresh": "P1D"}),
    )
    .await;
    let ctl = c.org.control();
    let catalog = configure(&c.catalog, &["Invoice__c"], None);
    let (first, sink) = run_fresh(&c.session, &c.config, &catalog).await;
    first.unwrap();
    let mut states = States::default();
    states.update(&sink, &["Invoice__c"]);
    ctl.advance_clock(HOUR);
    let gone = ctl
        .mutate(fixtures::Mutation::new("Invoice__c").hard_delete(1))
        .hard_deleted;
    assert_eq!(gone.len(), 1);
    ctl.advance_clock(DAY - HOUR - 30 * 60);
    let (second, sink) = run_from(&c, &catalog, &states).await;
    second.unwrap();
    let rows = ctl.truth("Invoice__c").len();
    let done = sink
        .logs()
        .into_iter()
        .find(|(_, m)| m.starts_with("Invoice__c: formula refresh done: "))
        .map(|(_, m)| m.to_string())
        .unwrap_or_else(|| panic!("not refreshed 30 minutes early: {:?}", sink.logs()));
    assert!(
        done.starts_with(&format!(
            "Invoice__c: formula refresh done: {rows} records re-read"
        )),
        "{done} ({rows} rows)"
    );
    assert!(sink
        .records("Invoice__c")
        .iter()
        .any(|r| r.id() == Some(gone[0].as_str())));
}

/// A refresh cut short (here by the daily limit) writes when it began and how far it read; the
/// next sync continues it from there instead of starting over, and once it ends the stream's
/// `formula_refreshed_at` is when it began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_cut_short_is_continued_from_where_it_was() {
    let c = connect(
        org_config(85).rows("Invoice__c", 1_000),
        json!({"formula_refresh": "P1D", "stream_slice_step": "P30D"}),
    )
    .await;
    let ctl = c.org.control();
    let catalog = configure(&c.catalog, &["Invoice__c"], None);
    let (first, sink) = run_fresh(&c.session, &c.config, &catalog).await;
    first.unwrap();
    let total = sink.records("Invoice__c").len();
    let mut states = States::default();
    states.update(&sink, &["Invoice__c"]);

    // Windows of about 200 rows, pages of 200: the limit falls inside the refresh.
    let mut options = common::fast_options();
    options.rest_batch_size = Some(200);
    options.planner.rest_rows_per_window = 200;
    ctl.advance_clock(2 * DAY);
    common::allow_calls(&ctl, 9);
    let input = states.input();
    let (cut, sink) = common::run(&c.session, &c.config, &catalog, &input, &options).await;
    cut.unwrap();
    let read_cut = sink.records("Invoice__c").len();
    assert!(
        read_cut > 200 && read_cut < total,
        "{read_cut} of {total}: {:?}",
        sink.logs()
    );
    let state = sink.last_state("Invoice__c").unwrap().clone();
    let began = state["formula_refresh_began"].clone();
    let reached = state["formula_refresh_reached"].clone();
    assert!(began.is_string() && reached.is_string(), "{state}");
    states.update(&sink, &["Invoice__c"]);
    // A sync without `formula_refresh` does not keep the refresh under way (its windows would
    // move it on).
    let plain = common::sync_config(&c.org, json!({"stream_slice_step": "P30D"}));
    ctl.set_faults(fixtures::Faults::default());
    let input = states.input();
    let (without, sink) = common::run(&c.session, &plain, &catalog, &input, &options).await;
    without.unwrap();
    let last = sink.last_state("Invoice__c").unwrap();
    assert!(last.get("formula_refresh_reached").is_none(), "{last}");

    ctl.set_faults(fixtures::Faults::default());
    ctl.advance_clock(HOUR);
    let input = states.input();
    let (rest, sink) = common::run(&c.session, &c.config, &catalog, &input, &options).await;
    rest.unwrap();
    assert!(
        sink.logs().iter().any(|(_, m)| m.contains(&format!(
            "continuing the refresh begun at {}",
            began.as_str().unwrap()
        ))),
        "{:?}",
        sink.logs()
    );
    let read_rest = sink.records("Invoice__c").len();
    assert!(read_rest < total, "started over: {read_rest} of {total}");
    assert!(
        read_cut + read_rest >= total,
        "{read_cut} + {read_rest} of {total}"
    );
    let last = sink.last_state("Invoice__c").unwrap();
    assert_eq!(last["formula_refreshed_at"], began, "{last}");
    assert!(last.get("formula_refresh_reached").is_none(), "{last}");
    assert!(last.get("formula_refresh_began").is_none(), "{last}");
}

/// A refresh through Bulk cut short inside its jobs: the next sync continues the jobs the state
/// names, and they count as the refresh's progress, so the refresh goes on after them instead of
/// reading their windows again with new jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_refresh_cut_inside_its_jobs_counts_the_jobs_continued() {
    let c = connect(
        org_config(86).rows("Invoice__c", 1_000),
        json!({"formula_refresh": "P1D"}),
    )
    .await;
    let ctl = c.org.control();
    let catalog = configure(&c.catalog, &["Invoice__c"], None);
    let mut options = common::fast_options();
    options.planner.rest_max_rows = 0;
    options.planner.bulk_rows_per_window = 250;
    let input = sf_sync::InputState::default();
    let (first, sink) = common::run(&c.session, &c.config, &catalog, &input, &options).await;
    first.unwrap();
    assert!(!sink.records("Invoice__c").is_empty());
    let total = ctl.truth("Invoice__c").len();
    let mut states = States::default();
    states.update(&sink, &["Invoice__c"]);

    ctl.advance_clock(2 * DAY);
    let mut cut = None;
    for calls in 6..30 {
        common::allow_calls(&ctl, calls);
        let input = states.input();
        let (run, sink) = common::run(&c.session, &c.config, &catalog, &input, &options).await;
        run.unwrap();
        let state = sink.last_state("Invoice__c").cloned().unwrap_or_default();
        let named = state["bulk_jobs"].as_array().is_some_and(|j| !j.is_empty());
        if named && state.get("formula_refresh_reached").is_some() {
            let ids: Vec<String> = sink
                .records("Invoice__c")
                .iter()
                .map(|r| r.id().unwrap().to_string())
                .collect();
            cut = Some((ids, state));
            break;
        }
    }
    let (cut_ids, state) = cut.expect("no run stopped inside the refresh's jobs");
    let read_cut = cut_ids.len();
    let mut states = States::default();
    states.0.insert("Invoice__c".to_string(), state);
    ctl.set_faults(fixtures::Faults::default());
    let input = states.input();
    let (rest, sink) = common::run(&c.session, &c.config, &catalog, &input, &options).await;
    rest.unwrap();
    let read_rest = sink.records("Invoice__c").len();
    // Every row, and what the continued jobs read is not read again: the two syncs read each
    // window once (less what a window's lookback reads twice).
    let seen: std::collections::BTreeSet<String> = cut_ids
        .into_iter()
        .chain(
            sink.records("Invoice__c")
                .iter()
                .map(|r| r.id().unwrap().to_string()),
        )
        .collect();
    for row in ctl.truth("Invoice__c") {
        let id = row["Id"].as_str().unwrap();
        assert!(seen.contains(id), "{id} never read");
    }
    assert!(
        read_cut + read_rest < total + 250,
        "{read_cut} + {read_rest} of {total}: windows read twice"
    );
    let last = sink.last_state("Invoice__c").unwrap();
    assert!(last.get("formula_refresh_reached").is_none(), "{last}");
}

#[test]
fn formula_refresh_is_off_by_default_and_must_be_a_duration() {
    let base = json!({"client_id": "a", "client_secret": "b", "refresh_token": "c",
                      "login_url": "http://127.0.0.1:8765"});
    let now = chrono::Utc::now();
    let parsed = SyncConfig::from_value(&base, now).unwrap();
    assert_eq!(parsed.config.formula_refresh, None);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let mut config = base.clone();
    config["formula_refresh"] = json!("PT12H");
    let parsed = SyncConfig::from_value(&config, now).unwrap();
    assert_eq!(
        parsed.config.formula_refresh.map(|d| d.as_std().as_secs()),
        Some(12 * 3600)
    );
    assert!(
        parsed.warnings.is_empty(),
        "a known key: {:?}",
        parsed.warnings
    );
    config["formula_refresh"] = json!("");
    assert_eq!(
        SyncConfig::from_value(&config, now)
            .unwrap()
            .config
            .formula_refresh,
        None
    );
    for bad in [json!("daily"), json!("PT0S"), json!(86400)] {
        config["formula_refresh"] = bad.clone();
        let err = SyncConfig::from_value(&config, now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`formula_refresh`"), "{bad}: {err}");
    }
}
