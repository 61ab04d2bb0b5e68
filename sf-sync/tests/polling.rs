//! How often a Bulk job is polled: the default cadence against the emulated org's job timing, on
//! paused time (the org's jobs age on tokio's clock), counting the org's poll requests.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use fixtures::Faults;
use serde_json::json;
use sf_sync::plan::PollSchedule;
use sf_sync::{Api, InputState, ReadOptions};

/// Reads Account in full through one Bulk job that stays queued `queued_ms` and runs
/// `running_ms`, with `options`; returns the polls the org answered.
async fn polls_for_one_job(queued_ms: u64, running_ms: u64, options: ReadOptions) -> u64 {
    polls_with_latency(queued_ms, running_ms, options, 0)
        .await
        .0
}

/// As [`polls_for_one_job`], every request taking `latency_ms` to answer; also returns how long
/// the read took (on tokio's paused clock, which only sleeps move).
async fn polls_with_latency(
    queued_ms: u64,
    running_ms: u64,
    options: ReadOptions,
    latency_ms: u64,
) -> (u64, Duration) {
    let org = start(org_config(31).bulk_timing(queued_ms, running_ms)).await;
    org.control().set_faults(Faults {
        latency_ms,
        ..Faults::default()
    });
    let config = sync_config(&org, json!({"force_use_bulk_api": true}));
    let session = login(&config).await;
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    let configured = configure(&catalog, &["Account"], Some("full_refresh"));
    let before = org.control().stats().requests;
    let started = tokio::time::Instant::now();
    let (result, sink) = run(
        &session,
        &config,
        &configured,
        &InputState::default(),
        &options,
    )
    .await;
    let took = started.elapsed();
    let summary = result.unwrap();
    assert_eq!(summary.streams[0].api, Some(Api::Bulk));
    assert!(!sink.records("Account").is_empty());
    let after = org.control().stats().requests;
    assert_eq!(after.bulk_create - before.bulk_create, 1);
    org.shutdown().await;
    (after.bulk_poll - before.bulk_poll, took)
}

#[tokio::test(start_paused = true)]
async fn a_twelve_second_job_is_polled_eleven_times_and_a_quick_one_once() {
    // Polls at 0.1, 1.1, 2.1, 3.1, 4.1, 5.1, 6.12, 7.34, 8.81, 10.57 and 12.69 s: the last sees
    // the job complete, 0.69 s after it was done.
    assert_eq!(
        polls_for_one_job(2_000, 10_000, ReadOptions::default()).await,
        11
    );
    // The former cadence (0.5 s doubling to 30 s) polled five times: 0.5, 1.5, 3.5, 7.5 and
    // 15.5 s; one poll per 5 s (Airbyte's cadence) three times.
    let doubling = ReadOptions {
        bulk_poll: PollSchedule {
            first: Duration::from_millis(500),
            second: Duration::from_millis(1_500),
            growth: 2.0,
            min_wait: Duration::from_millis(500),
            max_wait: Duration::from_secs(30),
        },
        ..ReadOptions::default()
    };
    assert_eq!(polls_for_one_job(2_000, 10_000, doubling).await, 5);
    let every_five_seconds = ReadOptions {
        bulk_poll: PollSchedule::every(Duration::from_secs(5)),
        ..ReadOptions::default()
    };
    assert_eq!(
        polls_for_one_job(2_000, 10_000, every_five_seconds).await,
        3
    );
    // A job done within a tenth of a second is seen at the first poll.
    assert_eq!(polls_for_one_job(20, 60, ReadOptions::default()).await, 1);
    // One done in a second is seen at the second poll, at 1.1 s.
    assert_eq!(polls_for_one_job(200, 800, ReadOptions::default()).await, 2);
}

#[tokio::test(start_paused = true)]
async fn a_long_job_is_polled_every_thirty_seconds_at_most() {
    // A five-minute job: 0.1 s, a second apart to 5.1 s, then by a fifth of its age until the
    // waits reach 30 s (at about 163 s), then every 30 s to 312.9 s.
    assert_eq!(
        polls_for_one_job(30_000, 270_000, ReadOptions::default()).await,
        30
    );
}

#[tokio::test(start_paused = true)]
async fn a_poll_answered_late_moves_the_later_ones() {
    // On the former default schedule (0.1 s, 12.5 s, then by half the job's age, 5 to 30 s
    // apart): every request takes 20 s; the job is done 62 s after it is created. Poll 1 goes at
    // 0.1 s and is answered at 20.1 s; poll 2 waits the least wait, 5 s, from that answer (25.1 s,
    // answered 45.1 s); poll 3 goes at 1.5 times that (67.65 s) and sees the job done. Polls
    // counted from their planned times (0.1, 12.5, 18.75 ...) would have gone back to back, 4 of
    // them.
    let former = ReadOptions {
        bulk_poll: PollSchedule {
            first: Duration::from_millis(100),
            second: Duration::from_millis(12_500),
            growth: 1.5,
            min_wait: Duration::from_secs(5),
            max_wait: Duration::from_secs(30),
        },
        ..ReadOptions::default()
    };
    assert_eq!(polls_with_latency(2_000, 60_000, former, 20_000).await.0, 3);
}

/// Polls of the default schedule for jobs of 2 s, 12 s, a minute and an hour, and how late each
/// is seen done: within a fifth of its age, at least 1 s, at most 30 s. One poll per 5 s
/// (Airbyte's cadence) would cost 1, 3, 12 and 720 polls and see the 2 s job 3 s late.
#[tokio::test(start_paused = true)]
async fn a_job_is_seen_done_within_a_fifth_of_its_age() {
    for (job_secs, polls) in [(2u64, 3u64), (12, 11), (60, 20), (3_600, 140)] {
        let job = Duration::from_secs(job_secs);
        let queued = job_secs * 1_000 / 4;
        let (counted, took) =
            polls_with_latency(queued, job_secs * 1_000 - queued, ReadOptions::default(), 0).await;
        assert_eq!(counted, polls, "polls for a {job_secs} s job");
        let late = took.saturating_sub(job);
        let bound = (job / 5).clamp(Duration::from_secs(1), Duration::from_secs(30));
        assert!(took >= job, "a {job_secs} s job read in {took:?}");
        assert!(
            late <= bound,
            "a {job_secs} s job seen {late:?} late, more than {bound:?}"
        );
    }
}
