//! What a stopped sync leaves for the next one. Cancelled in the middle of a Bulk job's
//! download, a stream keeps that job on the org (its last state names it at the next page) and
//! aborts and deletes the jobs it started ahead; the next sync continues the kept job rather than
//! creating it again. A full-refresh stream cut short ends with Airbyte's full-refresh state
//! after its records, and the next sync reads it whole again.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fixtures::Faults;
use serde_json::json;
use sf_sync::plan::PlannerConfig;
use sf_sync::{
    read_with, CancellationToken, IncompleteReason, MemorySink, ReadOptions, SinkMessage,
    StreamStatus,
};

/// Account through Bulk: three windows of about 800 rows, pages of 50, two jobs in flight.
fn options() -> ReadOptions {
    ReadOptions {
        planner: PlannerConfig {
            rest_max_rows: 0,
            rest_rows_per_window: 400,
            bulk_rows_per_window: 800,
            ..PlannerConfig::default()
        },
        bulk_max_records: Some(50),
        rest_batch_size: Some(200),
        bulk_jobs_in_flight: 2,
        channel_capacity: 2,
        ..fast_options()
    }
}

fn org(seed: u64) -> fixtures::OrgConfig {
    org_config(seed)
        .rows("Account", 2400)
        .rows("Contact", 600)
        .default_batch_size(200)
        .bulk_timing(0, 0)
}

/// The ids of the Bulk jobs on the org.
async fn job_ids(session: &sf_auth::Session) -> Vec<String> {
    jobs_on_org(session)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// The index of `stream`'s last record and of its last state in `sink`.
fn last_record_and_state(sink: &MemorySink, stream: &str) -> (Option<usize>, Option<usize>) {
    let mut last = (None, None);
    for (i, message) in sink.messages().iter().enumerate() {
        match message {
            SinkMessage::Record { stream: s, .. } if s == stream => last.0 = Some(i),
            SinkMessage::State { stream: s, .. } if s == stream => last.1 = Some(i),
            _ => {}
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_mid_download_the_job_is_kept_and_the_next_sync_continues_it() {
    let c = connect(org(61), json!({})).await;
    let control = c.org.control();
    let configured = configure(&c.catalog, &["Account"], Some("incremental"));
    let before = control.stats().requests;
    // Record 130 is in the third page of the first window's job.
    let (summary, first) = read_cancelled_at(&c, &configured, 130, &options()).await;
    assert_eq!(
        summary.streams[0].status,
        StreamStatus::Incomplete(IncompleteReason::Cancelled)
    );
    let (record, state) = last_record_and_state(&first, "Account");
    assert!(state > record, "no state after the last record");
    let last = first.last_state("Account").unwrap().clone();
    let kept = last["bulk_jobs"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{last}");
    let job = kept[0]["job_id"].as_str().unwrap().to_string();
    assert!(kept[0]["locator"].is_string(), "{last}");
    // The state counts exactly the rows emitted: the pages before the locator, and the rows of
    // the page at it.
    let emitted = first.records("Account").len() as u64;
    let rows_done = kept[0]["rows_done"].as_u64().unwrap();
    let in_page = kept[0]["page_rows_emitted"].as_u64().unwrap();
    assert!(rows_done >= 100 && in_page < 50, "{last}");
    assert_eq!(rows_done + in_page, emitted, "{last}");
    // The job started ahead is gone; the kept one stays.
    let requests = control.stats().requests;
    let created = requests.bulk_create - before.bulk_create;
    assert_eq!(
        created, 2,
        "the first window's job and the one started ahead"
    );
    assert_eq!(requests.bulk_delete - before.bulk_delete, created - 1);
    assert_eq!(job_ids(&c.session).await, std::slice::from_ref(&job));

    let mut states = States::default();
    states.update(&first, &["Account"]);
    let before = control.stats().requests;
    let (result, next) = run(
        &c.session,
        &c.config,
        &configured,
        &states.input(),
        &options(),
    )
    .await;
    let summary = result.unwrap();
    assert_eq!(summary.streams[0].status, StreamStatus::Complete);
    assert!(
        next.logs()
            .iter()
            .any(|(_, m)| m.contains(&format!("continuing Bulk job {job}"))),
        "{:?}",
        next.logs()
    );
    let requests = control.stats().requests;
    // Every window but the kept job's gets a new job.
    assert_eq!(
        requests.bulk_create - before.bulk_create,
        summary.streams[0].windows - 1
    );
    assert_eq!(job_ids(&c.session).await, Vec::<String>::new());
    let spec = c.catalog.stream("Account").unwrap();
    let want = truth(&control, spec);
    assert_matches_truth("Account", &latest(&[&first, &next], "Account", spec), &want);
    // No row emitted twice: the rows of the page at the locator emitted before the stop are
    // skipped when the page is read again.
    assert_eq!(
        emitted + next.records("Account").len() as u64,
        want.len() as u64
    );
    c.org.shutdown().await;
}

/// A job continued from a state that says rows of its page were already emitted, stopped again
/// by the daily limit before it reads on (while it is looked up, or before its page is read
/// again), is named by the stop state with those rows still counted: the sync after skips them
/// rather than emitting them twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_job_stopped_again_keeps_the_rows_of_its_page_already_emitted() {
    let c = connect(org(63), json!({})).await;
    let control = c.org.control();
    let configured = configure(&c.catalog, &["Account"], Some("incremental"));
    let (_, first) = read_cancelled_at(&c, &configured, 130, &options()).await;
    let last = first.last_state("Account").unwrap().clone();
    let saved = last["bulk_jobs"][0].clone();
    let in_page = saved["page_rows_emitted"].as_u64().unwrap();
    assert!(in_page > 0, "{last}");
    let mut states = States::default();
    states.update(&first, &["Account"]);
    let mut named_again = 0;
    for allowance in 0..=6 {
        let used = control.stats().api_usage.used;
        control.set_faults(Faults {
            daily_api_limit: used + allowance,
            ..Faults::default()
        });
        let (result, cut) = run(
            &c.session,
            &c.config,
            &configured,
            &states.input(),
            &options(),
        )
        .await;
        result.unwrap();
        let Some(state) = cut.last_state("Account") else {
            continue;
        };
        let same = state["bulk_jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|j| j["job_id"] == saved["job_id"] && j["locator"] == saved["locator"]);
        if let Some(job) = same {
            named_again += 1;
            let emitted_now = cut.records("Account").len() as u64;
            assert_eq!(
                job["page_rows_emitted"].as_u64(),
                Some(in_page + emitted_now),
                "allowance {allowance}: {state}"
            );
        }
    }
    assert!(named_again > 0, "no stop fell before the job read on");
    control.set_faults(Faults::default());
    c.org.shutdown().await;
}

/// A state that says more rows of a job's page were emitted than the job holds (edited by
/// hand, or written for another job) drops rows that were never emitted: the sync says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_skipping_past_the_end_of_its_job_is_warned_about() {
    let c = connect(org(64), json!({})).await;
    let configured = configure(&c.catalog, &["Account"], Some("incremental"));
    let (_, first) = read_cancelled_at(&c, &configured, 130, &options()).await;
    let mut states = States::default();
    states.update(&first, &["Account"]);
    states.0.get_mut("Account").unwrap()["bulk_jobs"][0]["page_rows_emitted"] = json!(100_000);
    let (result, next) = run(
        &c.session,
        &c.config,
        &configured,
        &states.input(),
        &options(),
    )
    .await;
    result.unwrap();
    let warned: Vec<&str> = next
        .logs()
        .into_iter()
        .filter(|(level, m)| {
            *level == sf_sync::LogLevel::Warn
                && m.starts_with("Account: the Bulk job continued from the state ended")
        })
        .map(|(_, m)| m)
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", next.logs());
    // The job's rows after the locator are fewer than a window's 800.
    let short: u64 = warned[0]
        .split("ended ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(short > 100_000 - 800 && short < 100_000, "{}", warned[0]);
    assert!(warned[0].contains("records of this window may be missing"));
    c.org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_on_its_first_page_the_job_is_not_kept() {
    let c = connect(org(62), json!({})).await;
    let control = c.org.control();
    let configured = configure(&c.catalog, &["Account"], Some("incremental"));
    let before = control.stats().requests;
    let (_, first) = read_cancelled_at(&c, &configured, 10, &options()).await;
    // Nothing of the job passed a page: there is nothing to continue, and nothing is left.
    let last = first.last_state("Account").unwrap();
    assert!(last.get("bulk_jobs").is_none(), "{last}");
    let requests = control.stats().requests;
    assert_eq!(
        requests.bulk_delete - before.bulk_delete,
        requests.bulk_create - before.bulk_create
    );
    assert_eq!(job_ids(&c.session).await, Vec::<String>::new());
    c.org.shutdown().await;
}

/// A full-refresh read of Account (Bulk) and Contact (REST) stopped by `stop` after some records:
/// every stream that emitted records ends with the full-refresh state after them, and the next
/// sync reads each whole.
async fn full_refresh_cut(seed: u64, stop: &str) {
    let c = connect(org(seed), json!({})).await;
    let control = c.org.control();
    let streams = ["Account", "Contact"];
    let configured = configure(&c.catalog, &streams, Some("full_refresh"));
    let mut options = options();
    options.planner.rest_max_rows = 1000;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let at_limit = stop == "limit";
    let limiter = control.clone();
    let mut sink = ActingSink::new(300, move || {
        if at_limit {
            let used = limiter.stats().api_usage.used;
            limiter.set_faults(Faults {
                daily_api_limit: used,
                ..Faults::default()
            });
        } else {
            trigger.cancel();
        }
    });
    let summary = read_with(
        &c.session,
        &c.config,
        &configured,
        &Default::default(),
        &mut sink,
        cancel,
        &options,
    )
    .await
    .unwrap();
    let first = sink.inner;
    assert!(summary.incomplete().count() >= 1, "{stop}: {summary:?}");
    let mut cut = 0;
    for stream in streams {
        let (record, state) = last_record_and_state(&first, stream);
        if record.is_none() {
            continue;
        }
        assert!(
            state > record,
            "{stop}: {stream} has records after its last state"
        );
        assert_eq!(
            first.last_state(stream),
            Some(&json!({"__ab_no_cursor_state_message": true})),
            "{stop}: {stream}"
        );
        let status = &summary
            .streams
            .iter()
            .find(|s| s.stream == stream)
            .unwrap()
            .status;
        if *status != StreamStatus::Complete {
            cut += 1;
            assert!(
                first
                    .logs()
                    .iter()
                    .any(|(_, m)| m.starts_with(&format!("{stream}: full refresh cut short"))),
                "{stop}: {stream}: {:?}",
                first.logs()
            );
        }
    }
    assert!(cut >= 1, "{stop}: no stream was cut after a record");

    control.set_faults(Faults::default());
    control.advance_clock(86_400);
    let mut states = States::default();
    states.update(&first, &streams);
    let (result, next) = run(
        &c.session,
        &c.config,
        &configured,
        &states.input(),
        &options,
    )
    .await;
    let summary = result.unwrap();
    for stream in streams {
        let spec = c.catalog.stream(stream).unwrap();
        assert_eq!(
            summary
                .streams
                .iter()
                .find(|s| s.stream == stream)
                .unwrap()
                .status,
            StreamStatus::Complete
        );
        // Read whole again: every row, from this sync alone.
        assert_matches_truth(
            stream,
            &latest(&[&next], stream, spec),
            &truth(&control, spec),
        );
    }
    c.org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refresh_cancelled_ends_with_a_state_after_its_records() {
    full_refresh_cut(63, "cancel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refresh_cut_by_the_limit_ends_with_a_state_after_its_records() {
    full_refresh_cut(64, "limit").await;
}
