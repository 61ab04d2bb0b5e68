#![allow(clippy::unwrap_used)]
//! The fault matrix: `sfconnect read` against an emulated org that misbehaves the way Salesforce
//! does. For each fault: no panic; the exit status and TRACE error the README documents (0 and no
//! TRACE error when the sync succeeded or stopped early at the daily limit, with a LOG saying so;
//! 1 and a TRACE error otherwise); and, running again from the last state emitted until a run
//! succeeds, the records of all runs add up to the org's ground truth, with a record read twice
//! only where a documented re-read explains it.

mod harness;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use fixtures::{Faults, Mutation, OrgConfig, Scale};
use harness::{
    assert_no_duplicates, assert_rereads_explained, assert_union_is_truth, catalog, id_counts,
    next_state, Env, Kill, Run,
};
use serde_json::{json, Value};

/// A small org on a frozen clock, with enough rows in Account, Contact and Invoice__c for several
/// REST pages of 200 rows.
fn org(seed: u64) -> OrgConfig {
    OrgConfig::new(seed, Scale::Tiny)
        .rows("Account", 2000)
        .rows("Contact", 1500)
        .rows("Invoice__c", 600)
        .default_batch_size(200)
        .clock_start(Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap())
        .bulk_timing(5, 10)
}

/// The lookback every config here uses, in seconds (`PT10M`).
const LOOKBACK_SECS: i64 = 600;

/// Runs `read` from the last state emitted until a run succeeds (at most `max` runs); every run
/// keeps the README's contract. Returns the runs and the state each one started from.
async fn read_until_done(
    env: &Env,
    config: &Value,
    streams: &[(&str, &str)],
    max: usize,
    between: impl Fn(usize),
) -> (Vec<Run>, Vec<Value>) {
    let config = env.write("config.json", config);
    let catalog = env.write("catalog.json", &catalog(streams));
    let mut runs: Vec<Run> = Vec::new();
    let mut inputs = Vec::new();
    for attempt in 0..max {
        let state = next_state(&runs);
        let run = env.read(&config, &catalog, Some(&state), &[]).await;
        run.assert_contract();
        inputs.push(state);
        let done = run.code == Some(0) && run.logs_with("WARN", "stopped early").is_empty();
        runs.push(run);
        if done {
            return (runs, inputs);
        }
        between(attempt);
    }
    panic!(
        "no run succeeded in {max}; the last:\n{}",
        runs.last().map(Run::dump).unwrap_or_default()
    );
}

fn stream_names<'a>(streams: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = &'a str> {
    streams.iter().map(|(name, _)| *name)
}

/// Counts the log lines of the session's retries of failed requests, per status.
fn retried(run: &Run, status: u16) -> usize {
    harness::plain(&run.stderr)
        .lines()
        .filter(|l| l.contains("ApiRequestFailed") && l.contains(&format!("status={status}")))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn access_tokens_expiring_every_few_seconds_are_renewed() {
    let env = Env::start("token-expiry", org(11)).await;
    env.org.control().set_faults(Faults {
        token_lifetime_secs: Some(3),
        latency_ms: 2,
        ..Faults::default()
    });
    // The org clock moves 2 s for every 2 data requests served, so a token (3 s) serves two or
    // three requests, however fast the machine: expiry follows the sync's progress, not time.
    let control = env.org.control();
    let ticking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let ticker = {
        let ticking = ticking.clone();
        std::thread::spawn(move || {
            let mut last = 0;
            while ticking.load(std::sync::atomic::Ordering::SeqCst) {
                let r = control.stats().requests;
                let served = r.query + r.query_more + r.bulk_create + r.bulk_poll + r.bulk_results;
                if served >= last + 2 {
                    control.advance_clock(2);
                    last = served;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let streams = [
        ("Account", "incremental"),
        ("Contact", "full_refresh"),
        ("Invoice__c", "incremental"),
    ];
    let config = env.write(
        "config.json",
        &env.config(json!({"stream_slice_step": "P90D"})),
    );
    let catalog = env.write("catalog.json", &catalog(&streams));
    let run = env
        .read(&config, &catalog, None, &[("RUST_LOG", "sf_auth=info")])
        .await;
    ticking.store(false, std::sync::atomic::Ordering::SeqCst);
    ticker.join().unwrap();
    run.assert_success();
    let renewals = harness::plain(&run.stderr)
        .matches("SessionExpired")
        .count();
    assert!(
        renewals >= 2,
        "the tokens did not expire during the sync ({renewals} renewals)\n{}",
        run.dump()
    );
    assert!(env.org.control().stats().requests.token >= 3);
    let runs = [run];
    for stream in stream_names(&streams) {
        assert_union_is_truth(&env, &runs, stream);
        assert_no_duplicates(&runs[0], stream);
    }
}

/// Every access token revoked (as an admin's "revoke sessions" does) a few times while the sync
/// runs: each request refused with 401 logs in again once and is replayed.
#[tokio::test(flavor = "multi_thread")]
async fn access_tokens_revoked_during_the_sync_are_renewed() {
    let env = Env::start("token-revoked", org(23)).await;
    env.org.control().set_faults(Faults {
        latency_ms: 40,
        ..Faults::default()
    });
    let streams = [
        ("Account", "incremental"),
        ("Invoice__c", "incremental"),
        ("Contact", "full_refresh"),
    ];
    let config = env.write("config.json", &env.config(json!({})));
    let catalog = env.write("catalog.json", &catalog(&streams));
    let control = env.org.control();
    // Revoke as the sync progresses (after its first query), not after a time: every query
    // after the revocation meets an expired session, however fast the machine. (Revoking again
    // while a replay is in flight would meet sf-auth's rule that a 401 right after a renewal is
    // an error, not a loop.)
    let revoker = std::thread::spawn(move || {
        for after_queries in [1] {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while control.stats().requests.query < after_queries
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            control.revoke_access_tokens();
        }
    });
    let run = env
        .read(&config, &catalog, None, &[("RUST_LOG", "sf_auth=info")])
        .await;
    revoker.join().unwrap();
    run.assert_success();
    let logins = harness::plain(&run.stderr)
        .matches("SessionLoggedIn")
        .count();
    assert!(
        logins >= 2,
        "no token was renewed ({logins} logins)\n{}",
        run.dump()
    );
    let runs = [run];
    for stream in stream_names(&streams) {
        assert_union_is_truth(&env, &runs, stream);
        assert_no_duplicates(&runs[0], stream);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_errors_on_every_seventh_request_are_retried_through_rest_and_bulk() {
    let env = Env::start("every-7th", org(12)).await;
    env.org.control().set_faults(Faults {
        fail_every_nth: Some(7),
        fail_statuses: vec![503, 500, 420],
        ..Faults::default()
    });
    let streams = [
        ("Account", "incremental"),
        ("Contact", "full_refresh"),
        ("Invoice__c", "incremental"),
    ];
    let catalog = env.write("catalog.json", &catalog(&streams));
    for (name, bulk) in [("rest", false), ("bulk", true)] {
        let config = env.write(
            &format!("config-{name}.json"),
            &env.config(json!({"stream_slice_step": "P180D", "force_use_bulk_api": bulk})),
        );
        let run = env.read(&config, &catalog, None, &[]).await;
        run.assert_success();
        let failures = retried(&run, 503) + retried(&run, 500) + retried(&run, 420);
        assert!(
            failures >= 3,
            "{name}: only {failures} retries\n{}",
            run.dump()
        );
        for status in [503, 500, 420] {
            assert!(
                retried(&run, status) >= 1,
                "{name}: no {status} seen\n{}",
                run.dump()
            );
        }
        if bulk {
            assert!(env.org.control().stats().requests.bulk_create > 0);
        }
        let runs = [run];
        for stream in stream_names(&streams) {
            assert_union_is_truth(&env, &runs, stream);
            assert_no_duplicates(&runs[0], stream);
        }
    }
}

/// API requests a whole sync of `streams` takes on a fresh org like `org(seed)`.
async fn requests_of_a_whole_sync(seed: u64, config: Value, streams: &[(&str, &str)]) -> u64 {
    let twin = Env::start("twin", org(seed)).await;
    let mut twin_config = twin.config(json!({}));
    if let (Some(c), Value::Object(extra)) = (twin_config.as_object_mut(), config) {
        c.extend(extra);
    }
    let config = twin.write("config.json", &twin_config);
    let catalog = twin.write("catalog.json", &catalog(streams));
    let run = twin.read(&config, &catalog, None, &[]).await;
    run.assert_success();
    twin.org.control().stats().api_usage.used
}

/// Runs `streams` with the daily API limit at `limit` requests, then (once a run stopped early)
/// with the limit lifted until a run completes. The first run must end with exit 0, no TRACE
/// error, a LOG saying the sync stopped early and `stopped` INCOMPLETE; the runs together must
/// read the org's ground truth, re-reading only what the state did not cover.
async fn daily_limit(
    env: &Env,
    extra: Value,
    streams: &[(&str, &str)],
    limit: u64,
    stopped: &str,
) -> Vec<Run> {
    env.org.control().set_faults(Faults {
        daily_api_limit: limit,
        ..Faults::default()
    });
    let config = env.config(extra);
    let control = env.org.control();
    let (runs, inputs) = read_until_done(env, &config, streams, 4, |_| {
        control.set_faults(Faults::default())
    })
    .await;
    assert!(runs.len() >= 2, "the limit did not stop the first run");
    let first = &runs[0];
    assert_eq!(first.code, Some(0), "{}", first.dump());
    assert!(first.trace_error().is_none());
    assert!(
        !first
            .logs_with("WARN", "the sync stopped early and succeeded")
            .is_empty(),
        "no LOG says the sync stopped early:\n{}",
        first.dump()
    );
    let incomplete = first.of_type("TRACE").iter().any(|m| {
        m["trace"]["stream_status"]["status"] == "INCOMPLETE"
            && m["trace"]["stream_status"]["stream_descriptor"]["name"] == stopped
    });
    assert!(incomplete, "{stopped} is not INCOMPLETE:\n{}", first.dump());
    // One WARN says the stream stopped at the limit; its incomplete status is an INFO, not a
    // second WARN (an org of a thousand streams got two thousand).
    assert_eq!(
        first
            .logs_with("WARN", &format!("{stopped}: stopped at the API limit"))
            .len(),
        1,
        "{}",
        first.dump()
    );
    assert!(
        first
            .logs_with("WARN", &format!("stream {stopped} is incomplete"))
            .is_empty(),
        "{}",
        first.dump()
    );
    for stream in stream_names(streams) {
        assert_union_is_truth(env, &runs, stream);
        for run in &runs {
            assert_no_duplicates(run, stream);
        }
        assert_rereads_explained(&runs, &inputs, stream, LOOKBACK_SECS);
    }
    runs
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_limit_in_the_middle_of_a_rest_stream_ends_the_sync_early_and_resumes() {
    let streams = [("Account", "incremental"), ("Invoice__c", "incremental")];
    let extra = json!({"num_workers": 1});
    // Account takes ten pages of 200 rows: half the sync's requests end inside them.
    let whole = requests_of_a_whole_sync(13, extra.clone(), &streams).await;
    let env = Env::start("daily-limit-rest", org(13)).await;
    let runs = daily_limit(&env, extra, &streams, whole / 2, "Account").await;
    let read = runs[0].records("Account").len();
    assert!(
        read > 0 && read < env.org.control().truth("Account").len(),
        "the limit did not fall among Account's pages ({read} records read)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_limit_in_the_middle_of_a_bulk_stream_ends_the_sync_early_and_resumes() {
    let streams = [("Account", "incremental")];
    let extra = json!({"force_use_bulk_api": true});
    // A Bulk read of Account: describe, count, then the job: create, poll, results, delete. The
    // limit leaves out the last two: the job is created and completes, its results are refused.
    let whole = requests_of_a_whole_sync(14, extra.clone(), &streams).await;
    let env = Env::start("daily-limit-bulk", org(14)).await;
    let runs = daily_limit(&env, extra, &streams, whole - 2, "Account").await;
    assert!(runs[0].records("Account").is_empty());
    let stats = env.org.control().stats().requests;
    assert!(
        stats.bulk_create >= 2,
        "the first run created no job: {stats:?}"
    );
}

/// Reads `streams` through Bulk with `faults` set before the first run; returns the runs and
/// their input states once a run succeeded.
async fn bulk_with(env: &Env, faults: Faults, streams: &[(&str, &str)]) -> (Vec<Run>, Vec<Value>) {
    env.org.control().set_faults(faults);
    let config = env.config(json!({"force_use_bulk_api": true, "stream_slice_step": "P180D"}));
    read_until_done(env, &config, streams, 3, |_| {}).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_bulk_job_is_replaced_then_read_through_rest() {
    let env = Env::start("bulk-failed", org(15)).await;
    let streams = [("Account", "incremental")];
    let (runs, _) = bulk_with(
        &env,
        Faults {
            bulk_fail_next: 2,
            ..Faults::default()
        },
        &streams,
    )
    .await;
    assert_eq!(runs.len(), 1, "{}", runs[0].dump());
    let run = &runs[0];
    assert!(
        !run.logs_with("WARN", "switching to REST").is_empty(),
        "{}",
        run.dump()
    );
    assert!(env.org.control().stats().requests.bulk_create >= 2);
    assert_union_is_truth(&env, &runs, "Account");
    assert_no_duplicates(run, "Account");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aborted_bulk_job_fails_the_stream_and_the_next_run_resumes() {
    let env = Env::start("bulk-aborted", org(16)).await;
    let streams = [("Account", "incremental"), ("Contact", "incremental")];
    let (runs, inputs) = bulk_with(
        &env,
        Faults {
            bulk_abort_next: 1,
            ..Faults::default()
        },
        &streams,
    )
    .await;
    let first = &runs[0];
    assert_eq!(first.code, Some(1), "{}", first.dump());
    let error = first.trace_error().unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("bort"),
        "the TRACE error does not say the job was aborted: {error}"
    );
    assert_eq!(error["failure_type"], "transient_error", "{error}");
    assert_eq!(runs.len(), 2);
    for stream in stream_names(&streams) {
        assert_union_is_truth(&env, &runs, stream);
        for run in &runs {
            assert_no_duplicates(run, stream);
        }
        assert_rereads_explained(&runs, &inputs, stream, LOOKBACK_SECS);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_results_page_cut_mid_row_is_read_again_from_its_checkpoint() {
    let env = Env::start("bulk-truncated", org(17)).await;
    let streams = [("Account", "incremental")];
    let (runs, _) = bulk_with(
        &env,
        Faults {
            truncate_results_next: 1,
            ..Faults::default()
        },
        &streams,
    )
    .await;
    assert_eq!(runs.len(), 1, "{}", runs[0].dump());
    let run = &runs[0];
    let resumed = run.logs_with("WARN", "resuming job");
    assert_eq!(resumed.len(), 1, "{}", run.dump());
    assert!(env.org.control().stats().requests.bulk_results >= 2);
    assert_union_is_truth(&env, &runs, "Account");
    // The rows of the cut page that came before the cut are read again when the page is, and
    // nothing else: the page is one job's, so every row read twice is of the same window.
    let counts = id_counts([run], "Account");
    assert!(counts.values().all(|n| *n <= 2), "{counts:?}");
}

/// A REST page that fails to arrive whole (`fault`): the page is read again, or the stream fails
/// with a TRACE error; either way the next run from the state (with the faults cleared)
/// completes the data.
async fn rest_page_fault(name: &str, seed: u64, faults: Faults) -> (Vec<Run>, Vec<Value>, Env) {
    let env = Env::start(name, org(seed)).await;
    env.org.control().set_faults(faults);
    let streams = [("Account", "incremental"), ("Contact", "full_refresh")];
    let config = env.config(json!({"stream_slice_step": "P180D"}));
    let control = env.org.control();
    let (runs, inputs) = read_until_done(&env, &config, &streams, 3, |_| {
        control.set_faults(Faults::default())
    })
    .await;
    for stream in stream_names(&streams) {
        assert_union_is_truth(&env, &runs, stream);
        for run in &runs {
            assert_no_duplicates(run, stream);
        }
    }
    assert_rereads_explained(&runs, &inputs, "Account", LOOKBACK_SECS);
    (runs, inputs, env)
}

/// A page that arrives unreadable (JSON cut short by something between the client and
/// Salesforce, yet ending cleanly) is asked for once more: the sync completes in one run,
/// without a duplicate, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_json_page_is_asked_for_again() {
    let (runs, _, _env) = rest_page_fault(
        "malformed-page-again",
        18,
        Faults {
            malformed_query_next: 1,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(runs.len(), 1, "{}", runs[0].dump());
    runs[0].assert_success();
    let warned = runs[0].logs_with("WARN", "arrived unreadable and were asked for again");
    assert_eq!(warned.len(), 1, "{}", runs[0].dump());
    assert!(warned[0].contains("1 page(s)"), "{}", warned[0]);
}

/// Every page unreadable, the second answer too: the streams fail with a TRACE error and the
/// next run resumes.
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_json_page_twice_fails_the_stream_and_the_next_run_resumes() {
    let (runs, _, _env) = rest_page_fault(
        "malformed-page",
        18,
        Faults {
            malformed_query_next: 1_000,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(runs.len(), 2, "{}", runs[0].dump());
    let first = &runs[0];
    assert_eq!(first.code, Some(1), "{}", first.dump());
    let error = first.trace_error().unwrap();
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("unexpected page"), "{message}");
    assert!(message.contains("run the sync again"), "{message}");
    assert_eq!(error["failure_type"], "transient_error", "{error}");
}

/// A page cut off mid-body by a connection reset: the session reads the page again (a GET of a
/// query page is idempotent), so the sync completes in one run without a duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_reset_mid_body_is_read_again() {
    let (runs, _, _env) = rest_page_fault(
        "reset-page",
        19,
        Faults {
            reset_query_next: 1,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(runs.len(), 1, "{}", runs[0].dump());
    let stderr = harness::plain(&runs[0].stderr);
    assert_eq!(
        stderr.matches("ApiResponseBodyFailed").count(),
        1,
        "the reset was not seen: {stderr}"
    );
}

/// Eventual consistency: writes become visible to queries 60 s after the time they are stamped
/// with, less than the 10-minute lookback. A sync that runs in between misses them (its state
/// moves past them); the next sync re-reads the lookback and finds them.
#[tokio::test(flavor = "multi_thread")]
async fn rows_visible_late_are_read_by_the_next_syncs_lookback() {
    let env = Env::start("eventual", org(20)).await;
    let streams = [("Account", "incremental")];
    let config = env.write(
        "config.json",
        &env.config(json!({"lookback_window": "PT10M"})),
    );
    let catalog = env.write("catalog.json", &catalog(&streams));
    let control = env.org.control();
    let first = env.read(&config, &catalog, None, &[]).await;
    first.assert_success();

    control.set_faults(Faults {
        visibility_delay_secs: 60,
        ..Faults::default()
    });
    control.advance_clock(30);
    let changed = control.mutate(Mutation::new("Account").insert(3).update(3).delete(2));
    assert!(changed.errors.is_empty(), "{:?}", changed.errors);
    let changed_ids: Vec<String> = changed
        .inserted
        .iter()
        .chain(&changed.updated)
        .chain(&changed.deleted)
        .cloned()
        .collect();
    // 20 s later: past the sync's 5 s hold-back, before the writes are visible.
    control.advance_clock(20);
    let mut runs = vec![first];
    let mut inputs = vec![Value::Null];
    let state = next_state(&runs);
    let second = env.read(&config, &catalog, Some(&state), &[]).await;
    second.assert_success();
    let seen = id_counts([&second], "Account");
    for id in &changed_ids {
        assert!(!seen.contains_key(id), "{id} was visible before its delay");
    }
    runs.push(second);
    inputs.push(state);

    control.advance_clock(120);
    let state = next_state(&runs);
    let third = env.read(&config, &catalog, Some(&state), &[]).await;
    third.assert_success();
    let seen = id_counts([&third], "Account");
    for id in &changed_ids {
        assert!(seen.contains_key(id), "{id} was never read");
    }
    runs.push(third);
    inputs.push(state);
    assert_union_is_truth(&env, &runs, "Account");
    for run in &runs {
        assert_no_duplicates(run, "Account");
    }
    assert_rereads_explained(&runs, &inputs, "Account", LOOKBACK_SECS);
}

/// The process killed with SIGKILL at random points, each time restarted from the last state
/// it emitted, until a run completes. A kill point is a random line of stdout, uniform over 1.25
/// times the lines of a whole run (counted on a twin org), so a run may also finish; the first
/// run is always killed. Incremental streams lose nothing
/// and re-read only what the state did not cover; the full-refresh stream is read whole by the
/// run that completes.
#[tokio::test(flavor = "multi_thread")]
async fn killed_at_random_points_and_restarted_from_the_last_state_until_done() {
    let faults = Faults {
        latency_ms: 5,
        ..Faults::default()
    };
    let streams = [
        ("Account", "incremental"),
        ("Invoice__c", "incremental"),
        ("Opportunity", "incremental"),
        ("Contact", "full_refresh"),
    ];
    let whole_lines = {
        let twin = Env::start("sigkill-twin", org(22)).await;
        twin.org.control().set_faults(faults.clone());
        let config = twin.write("config.json", &twin.config(json!({"num_workers": 2})));
        let catalog = twin.write("catalog.json", &catalog(&streams));
        let run = twin.read(&config, &catalog, None, &[]).await;
        run.assert_success();
        run.stdout.lines().count() as u64
    };
    let env = Env::start("sigkill", org(22)).await;
    env.org.control().set_faults(faults);
    let config = env.write("config.json", &env.config(json!({"num_workers": 2})));
    let catalog = env.write("catalog.json", &catalog(&streams));
    let seed = 0x5EED_u64;
    let mut rng = harness::Rng(seed);
    let mut runs: Vec<Run> = Vec::new();
    let mut inputs = Vec::new();
    let mut kills = Vec::new();
    loop {
        assert!(
            runs.len() < 60,
            "no run completed; a whole run prints {whole_lines} lines; kills at lines {kills:?}"
        );
        // The first run is always killed, somewhere in its first 80 %.
        let span = if runs.is_empty() {
            whole_lines * 4 / 5
        } else {
            whole_lines * 5 / 4
        };
        let kill_at = 1 + rng.below(span) as usize;
        let state = next_state(&runs);
        let run = env
            .read_for(
                &config,
                &catalog,
                Some(&state),
                &[],
                Some(Kill::AtLine(kill_at)),
            )
            .await;
        run.assert_contract();
        inputs.push(state);
        let done = !run.killed;
        if run.killed {
            kills.push(kill_at);
        } else {
            run.assert_success();
        }
        runs.push(run);
        if done {
            break;
        }
    }
    let context = format!("seed {seed:#x}, {whole_lines} lines in a whole run, kills at {kills:?}");
    assert!(
        !kills.is_empty(),
        "the first run finished before its kill: {context}"
    );
    for (stream, mode) in streams {
        for run in &runs {
            assert_no_duplicates(run, stream);
        }
        eprintln!("{stream}: {context}");
        if mode == "incremental" {
            assert_union_is_truth(&env, &runs, stream);
            assert_rereads_explained(&runs, &inputs, stream, LOOKBACK_SECS);
        } else {
            assert_union_is_truth(&env, std::slice::from_ref(runs.last().unwrap()), stream);
        }
    }
}

/// A full-refresh stream whose destination replaces its data on success (overwrite), cut short
/// by the daily limit: the sync must not end as a success (Airbyte's platform would mark the
/// stream complete and the destination keep only the part read), while the same cut on an
/// append stream still ends with success; either way the incremental stream's state is kept.
#[tokio::test(flavor = "multi_thread")]
async fn the_daily_limit_cutting_an_overwrite_stream_does_not_end_as_a_success() {
    let streams = [("Account", "full_refresh"), ("Invoice__c", "incremental")];
    let extra = json!({"num_workers": 1});
    let whole = requests_of_a_whole_sync(14, extra.clone(), &streams).await;
    for (destination, code) in [("overwrite", 1), ("append", 0)] {
        let env = Env::start("daily-limit-overwrite", org(14)).await;
        env.org.control().set_faults(Faults {
            daily_api_limit: whole / 2,
            ..Faults::default()
        });
        let mut catalog = catalog(&streams);
        catalog["streams"][0]["destination_sync_mode"] = json!(destination);
        let config = env.write("config.json", &env.config(extra.clone()));
        let catalog = env.write("catalog.json", &catalog);
        let run = env.read(&config, &catalog, None, &[]).await;
        run.assert_contract();
        assert_eq!(run.code, Some(code), "{destination}: {}", run.dump());
        let read = run.records("Account").len();
        assert!(
            read < env.org.control().truth("Account").len(),
            "{destination}: the limit did not cut Account short ({read} records)"
        );
        if destination == "overwrite" {
            let error = run.trace_error().expect("a TRACE error");
            assert_eq!(error["failure_type"], "transient_error", "{error}");
            let message = error["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("before `Account` finished; their destination replaces")
                    && message.contains("the data already there stays")
                    && !message.contains("  "),
                "{message}"
            );
            assert!(run
                .logs_with("WARN", "stopped early and succeeded")
                .is_empty());
        } else {
            assert!(run.trace_error().is_none(), "{}", run.dump());
            assert!(!run
                .logs_with("WARN", "stopped early and succeeded")
                .is_empty());
        }
    }
}

/// The daily limit on a sync of many streams: the stream whose request met it says so, the
/// streams stopped or never started because of it are named together in one WARN (at most 20
/// per mode, then counted), and the closing line gives the limit once; not a line per stream,
/// nor a closing line that repeats the limit's detail for each (an org of a thousand streams got
/// 1,124 WARN lines and a closing line of 274 KB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_on_many_streams_is_said_in_a_few_bounded_lines() {
    let env = Env::start("daily-limit-many", org(15).extra_custom_objects(60, 30)).await;
    let mut extra: Vec<String> = env
        .org
        .control()
        .object_names()
        .into_iter()
        .filter(|n| n.ends_with("__c") && n != "Invoice__c" && !n.starts_with("Wide"))
        .collect();
    extra.sort();
    assert!(extra.len() >= 60, "{extra:?}");
    let streams: Vec<(&str, &str)> = extra
        .iter()
        .take(60)
        .enumerate()
        .map(|(i, n)| {
            let mode = if i % 4 == 3 {
                "full_refresh"
            } else {
                "incremental"
            };
            (n.as_str(), mode)
        })
        .collect();
    let used = env.org.control().stats().api_usage.used;
    env.org.control().set_faults(Faults {
        daily_api_limit: used + 12,
        ..Faults::default()
    });
    let config = env.write("config.json", &env.config(json!({"num_workers": 1})));
    let catalog = env.write("catalog.json", &catalog(&streams));
    let run = env.read(&config, &catalog, None, &[]).await;
    run.assert_contract();
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let warns = run.logs_with("WARN", "");
    let own = run.logs_with("WARN", ": stopped at the API limit (");
    let together = run.logs_with(
        "WARN",
        "stopped or did not start because a request of the sync",
    );
    let closing = run.logs_with("WARN", "the sync stopped early and succeeded");
    assert_eq!(
        (own.len(), together.len(), closing.len()),
        (1, 1, 1),
        "{warns:#?}"
    );
    assert!(warns.len() <= 4, "{warns:#?}");
    for line in together.iter().chain(&closing) {
        assert!(line.len() < 3_000, "{} bytes: {line}", line.len());
        assert!(line.contains(" more"), "{line}");
        assert!(
            line.contains("full-refresh") && line.contains("incremental"),
            "{line}"
        );
        assert_eq!(line.matches("api-usage").count(), 1, "{line}");
    }
    // The streams' INFO lines do not repeat the limit's detail either: only the INFO of the
    // stream whose request met it gives it.
    assert_eq!(
        run.logs_with("INFO", "api-usage").len(),
        1,
        "{}",
        run.dump()
    );
    // Every stream the limit stopped is named: in its own WARN, or in the joint one (by name or
    // in its count).
    let stopped = run
        .of_type("TRACE")
        .iter()
        .filter(|m| m["trace"]["stream_status"]["status"] == "INCOMPLETE")
        .count();
    assert!(stopped > 40, "{}", run.dump());
    let line = &together[0];
    let said: usize = line.split(' ').next().unwrap().parse().unwrap();
    let named = |marker: &str| -> usize {
        let names = line.split_once(marker).unwrap().1;
        let names = names.split("; ").next().unwrap();
        match names.split_once(" and ") {
            Some((listed, more)) => {
                listed.split(", ").count()
                    + more.trim_end_matches(" more").parse::<usize>().unwrap()
            }
            None => names.split(", ").count(),
        }
    };
    let counted = named("read on from their state (if any): ") + named("read whole again: ");
    assert_eq!((said, counted + own.len()), (counted, stopped), "{line}");
    assert_eq!(
        run.logs_with(
            "INFO",
            "another request of the sync met the API limit first"
        )
        .len(),
        counted
    );
}
