//! A sync that stops early (the daily API limit, the `api_budget`, cancellation) ends every
//! stream that emitted records with a STATE after its last record, so a destination that commits
//! up to each stream's last STATE keeps them; and the state covers no more than was emitted: a
//! restart from it ends with exactly the org's rows.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fixtures::Faults;
use serde_json::json;
use sf_sync::plan::PlannerConfig;
use sf_sync::{
    IncompleteReason, InputState, LogLevel, MemorySink, ReadOptions, SinkMessage, StreamStatus,
};

const STREAMS: [&str; 3] = ["Account", "Contact", "Opportunity"];

/// One window per stream (so a cut falls inside a window), REST pages of 200 rows, Bulk pages of
/// 50 rows, for objects above `rest_max_rows` rows.
fn options_with(rest_max_rows: u64) -> ReadOptions {
    ReadOptions {
        planner: PlannerConfig {
            rest_max_rows,
            rest_rows_per_window: 100_000,
            bulk_rows_per_window: 100_000,
            ..PlannerConfig::default()
        },
        bulk_max_records: Some(50),
        rest_batch_size: Some(200),
        bulk_jobs_in_flight: 1,
        channel_capacity: 8,
        ..fast_options()
    }
}

/// REST for the objects of at most 300 rows, Bulk for the others.
fn options() -> ReadOptions {
    options_with(300)
}

fn org(seed: u64) -> fixtures::OrgConfig {
    org_config(seed)
        .rows("Account", 900)
        .rows("Contact", 250)
        .rows("Opportunity", 700)
        .default_batch_size(200)
}

/// For every stream: if it emitted a record, a STATE of it comes after its last record.
fn assert_state_after_last_record(sink: &MemorySink, what: &str) {
    for stream in STREAMS {
        let mut last_record = None;
        let mut last_state = None;
        for (i, message) in sink.messages().iter().enumerate() {
            match message {
                SinkMessage::Record { stream: s, .. } if s == stream => last_record = Some(i),
                SinkMessage::State { stream: s, .. } if s == stream => last_state = Some(i),
                _ => {}
            }
        }
        if let Some(record) = last_record {
            assert!(
                last_state.is_some_and(|state| state > record),
                "{what}: {stream} ends with records (the last at message {record}) after its \
                 last state ({last_state:?})"
            );
        }
    }
}

/// Restarts from the last states until the sync completes; the union is the org's rows.
async fn finish_and_compare(c: &Connected, first: MemorySink, extra_runs: usize) {
    let control = c.org.control();
    control.set_faults(Faults::default());
    control.advance_clock(86_400);
    let configured = configure(&c.catalog, &STREAMS, Some("incremental"));
    let mut states = States::default();
    states.update(&first, &STREAMS);
    let mut sinks = vec![first];
    for _ in 0..=extra_runs {
        let (result, sink) = run(
            &c.session,
            &c.config,
            &configured,
            &states.input(),
            &options(),
        )
        .await;
        let summary = result.unwrap();
        states.update(&sink, &STREAMS);
        sinks.push(sink);
        if summary
            .streams
            .iter()
            .all(|s| s.status == StreamStatus::Complete)
        {
            break;
        }
    }
    let all: Vec<&MemorySink> = sinks.iter().collect();
    for stream in STREAMS {
        let spec = c.catalog.stream(stream).unwrap();
        let horizon = c.config.start_date;
        let want = truth(&control, spec)
            .into_iter()
            .filter(|(_, row)| stamp(row, "SystemModstamp") >= horizon)
            .collect();
        assert_matches_truth(stream, &latest(&all, stream, spec), &want);
    }
}

/// A sync cut by the daily limit at `allowance` requests, then finished; returns how many
/// records the cut run emitted (streams run at once, so where the cut falls varies by a few
/// requests).
async fn limit_cut(seed: u64, force_bulk: bool, allowance: u64) -> u64 {
    let c = connect(org(seed), json!({"force_use_bulk_api": force_bulk})).await;
    let options = options_with(if force_bulk { 0 } else { 100_000 });
    let control = c.org.control();
    let configured = configure(&c.catalog, &STREAMS, Some("incremental"));
    let used = control.stats().api_usage.used;
    control.set_faults(Faults {
        daily_api_limit: used + allowance,
        ..Faults::default()
    });
    let (result, sink) = run(
        &c.session,
        &c.config,
        &configured,
        &Default::default(),
        &options,
    )
    .await;
    let summary = result.unwrap();
    assert!(
        summary
            .incomplete()
            .any(|(_, r)| matches!(r, IncompleteReason::ApiLimit { .. })),
        "{summary:?}"
    );
    let records = summary.records();
    assert_state_after_last_record(&sink, "daily limit");
    finish_and_compare(&c, sink, 2).await;
    c.org.shutdown().await;
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_inside_rest_windows_leaves_a_state_after_the_last_record() {
    let mut emitted = Vec::new();
    for allowance in [6, 9, 12] {
        emitted.push(limit_cut(41, false, allowance).await);
    }
    assert!(
        emitted.iter().any(|n| *n > 0),
        "no cut came after a record: {emitted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_inside_bulk_jobs_leaves_a_state_after_the_last_record() {
    // Enough for the describes, counts, job creations and polls, and for some of the results
    // pages each job downloads at once.
    let mut emitted = Vec::new();
    for allowance in [12, 18, 25, 40] {
        emitted.push(limit_cut(42, true, allowance).await);
    }
    assert!(
        emitted.iter().any(|n| *n > 0),
        "no cut came after a record: {emitted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_budget_leaves_a_state_after_the_last_record() {
    let org = start(org(43)).await;
    let control = org.control();
    control.set_faults(Faults {
        daily_api_limit: 1000,
        ..Faults::default()
    });
    let plain = sync_config(&org, json!({}));
    let plain_session = login(&plain).await;
    let catalog = sf_sync::discover(&plain_session, &plain).await.unwrap();
    let used = control.stats().api_usage.used;
    let budget = (used + 7) as f64 / 1000.0;
    let config = sync_config(&org, json!({ "api_budget": budget }));
    let session = login(&config).await;
    let configured = configure(&catalog, &STREAMS, Some("incremental"));
    let (result, sink) = run(
        &session,
        &config,
        &configured,
        &Default::default(),
        &options(),
    )
    .await;
    let summary = result.unwrap();
    assert!(summary.incomplete().count() >= 1, "{summary:?}");
    assert!(summary.records() > 0);
    assert_state_after_last_record(&sink, "api_budget");
    let c = Connected {
        org,
        config: plain,
        session: plain_session,
        catalog,
    };
    finish_and_compare(&c, sink, 2).await;
    c.org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_leaves_a_state_after_the_last_record() {
    for at in [30, 250, 700, 1200] {
        let c = connect(org(44), json!({})).await;
        let configured = configure(&c.catalog, &STREAMS, Some("incremental"));
        let (summary, sink) = read_cancelled_at(&c, &configured, at, &options()).await;
        assert!(
            summary
                .incomplete()
                .any(|(_, r)| matches!(r, IncompleteReason::Cancelled)),
            "cut at {at}: {summary:?}"
        );
        assert_state_after_last_record(&sink, &format!("cancelled at record {at}"));
        finish_and_compare(&c, sink, 1).await;
        c.org.shutdown().await;
    }
}

/// The daily limit reached while the catalog is described: the `Describe` stream, which would
/// hold only the objects described before it, is left for the next sync (no records, no state,
/// stopped at the limit), as every stream not described is; with the allowance back, the next
/// sync emits one record per object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cut_short_by_the_limit_is_not_written_as_complete() {
    let c = connect(org_config(57), json!({})).await;
    let control = c.org.control();
    let configured = configure(&c.catalog, &["Account", "Contact", "Describe"], None);
    let used = control.stats().api_usage.used;
    control.set_faults(Faults {
        daily_api_limit: used,
        ..Faults::default()
    });
    let (cut, sink) = run_fresh(&c.session, &c.config, &configured).await;
    let summary = cut.unwrap();
    assert!(summary.succeeded(), "{summary:?}");
    let describe = summary
        .streams
        .iter()
        .find(|s| s.stream == "Describe")
        .unwrap();
    assert!(
        matches!(
            describe.status,
            StreamStatus::Incomplete(IncompleteReason::ApiLimit { .. })
        ),
        "{describe:?}"
    );
    assert!(sink.records("Describe").is_empty());
    assert!(sink.last_state("Describe").is_none());

    control.set_faults(Faults::default());
    let (next, sink) = run_fresh(&c.session, &c.config, &configured).await;
    next.unwrap();
    let names: Vec<_> = sink
        .records("Describe")
        .iter()
        .filter_map(|r| r.get("name").and_then(|v| v.as_str()).map(str::to_string))
        .collect();
    assert_eq!(names, ["Account", "Contact"]);
    c.org.shutdown().await;
}

/// A state whose slice ends after the org's clock (edited, or written by a tool whose clock ran
/// ahead) is trusted as Airbyte's connector trusts it, nothing before that end read again, but
/// never silently: a WARN names the end, the org's clock and the fix.
#[tokio::test]
async fn a_state_ending_in_the_future_is_trusted_and_said() {
    let c = connect(org_config(91).rows("Account", 300), json!({})).await;
    let catalog = configure(&c.catalog, &["Account"], Some("incremental"));
    let state = json!({"Account": {"state_type": "date-range", "slices": [
        {"start": "2000-01-01T00:00:00.000Z", "end": "2031-01-01T00:00:00.000Z"}]}});
    let (result, sink) = run(
        &c.session,
        &c.config,
        &catalog,
        &InputState::from_value(&state).unwrap(),
        &fast_options(),
    )
    .await;
    result.unwrap();
    let warned: Vec<&str> = sink
        .logs()
        .into_iter()
        .filter(|(level, m)| *level == LogLevel::Warn && m.contains("after the org's clock"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", sink.logs());
    assert!(
        warned[0].contains("2031-01-01T00:00:00.000Z")
            && warned[0].contains("run a full refresh of Account"),
        "{warned:?}"
    );
    assert!(sink.records("Account").is_empty());
    c.org.shutdown().await;
}
