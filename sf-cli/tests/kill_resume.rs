#![allow(clippy::unwrap_used)]
//! Resume anywhere, held of the real process (issue 18): `sfconnect read` with small pages and
//! windows (its tuning flags) is SIGKILLed after a seeded random number of stdout lines, during
//! Bulk downloads, REST pages or job waits alike, and restarted from the last STATE of each
//! stream that reached stdout, until a run completes. For 20 seeds: the records of all runs are
//! exactly the org's rows (none lost, none extra, the last version of each equal to the org's),
//! no run creates a Bulk job but for a window it planned or a job gone, and over all seeds the
//! org created no more Bulk jobs than uninterrupted syncs plus one per kill (besides jobs gone).
//! A restart whose state names Bulk jobs continues them (its LOG says so), the first before it
//! emits a record of that stream; the only job re-created is one a run before had read to its
//! end and deleted before the state covering its window reached stdout (a WARN says it is gone).
//!
//! See it: `cargo test -p sf-cli --test kill_resume -- --nocapture` (it prints the kills and the
//! jobs continued, and per seed the jobs created against the bound).

mod harness;

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use fixtures::{OrgConfig, Scale};
use harness::{
    assert_no_duplicates, assert_rereads_explained, assert_union_is_truth, catalog, next_state,
    Env, Kill, Run,
};
use serde_json::{json, Value};

/// Account: 2,400 rows, read through Bulk in three windows of about 800 rows (jobs of 80 ms,
/// pages of 50 rows, two jobs in flight). Opportunity: 800 rows, read through REST in two
/// windows of about 400 rows, pages of 200.
fn org() -> OrgConfig {
    OrgConfig::new(51, Scale::Tiny)
        .rows("Account", 2400)
        .rows("Opportunity", 800)
        .default_batch_size(200)
        .clock_start(Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap())
        .bulk_timing(20, 60)
}

const STREAMS: [(&str, &str); 2] = [("Account", "incremental"), ("Opportunity", "incremental")];

/// The tuning flags that make the org above need several Bulk jobs and REST windows.
const TUNING: [&str; 14] = [
    "--rest-max-rows",
    "1000",
    "--rest-rows-per-window",
    "400",
    "--bulk-rows-per-window",
    "800",
    "--bulk-page-rows",
    "50",
    "--rest-page-rows",
    "200",
    "--bulk-jobs-in-flight",
    "2",
    // Every job created goes into a state at once.
    "--bulk-checkpoint-after",
    "0",
];

/// The config's default lookback (`PT10M`), in seconds.
const LOOKBACK_SECS: i64 = 600;

/// Seeds, and the orgs they run on at once (each lane its own org, its seeds one after another,
/// so each seed's Bulk jobs are the change of its org's count).
const SEEDS: u64 = 20;
const LANES: u64 = 4;

/// An org with the config and catalog files.
struct Lane {
    env: Env,
    config: PathBuf,
    catalog: PathBuf,
}

impl Lane {
    async fn start(name: &str) -> Lane {
        let env = Env::start(name, org()).await;
        // From a little before the oldest row (three years before the org's clock), so the
        // windows, planned on the counted rows spread evenly over the span, hold about as many
        // rows each.
        let config = env.write(
            "config.json",
            &env.config(json!({"num_workers": 2, "start_date": "2021-01-01T00:00:00Z"})),
        );
        let catalog = env.write("catalog.json", &catalog(&STREAMS));
        Lane {
            env,
            config,
            catalog,
        }
    }

    fn bulk_jobs_created(&self) -> u64 {
        self.env.org.control().stats().requests.bulk_create
    }

    /// `sfconnect read` with the tuning flags from `state`, SIGKILLed at `kill` if given.
    async fn read(&self, state: &Value, kill: Option<Kill>) -> Run {
        let state_file = self.env.write("state.json", state);
        let mut args = vec![
            "read",
            "--config",
            self.config.to_str().unwrap(),
            "--catalog",
            self.catalog.to_str().unwrap(),
            "--state",
            state_file.to_str().unwrap(),
        ];
        args.extend(TUNING);
        // sf-bulk's tracing names each job created (on stderr, unbuffered).
        self.env
            .run_for(&args, &[("RUST_LOG", "sf_bulk=info")], kill)
            .await
    }
}

/// The Bulk jobs `state` (a state file: one per-stream state per stream) names for `stream`,
/// with whether their download had begun (a locator past the first page).
fn named_jobs(state: &Value, stream: &str) -> Vec<(String, bool)> {
    state
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["stream"]["stream_descriptor"]["name"] == stream)
        .flat_map(|s| {
            s["stream"]["stream_state"]["bulk_jobs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|job| {
            let id = job["job_id"].as_str()?.to_string();
            Some((id, job["locator"].is_string()))
        })
        .collect()
}

/// The Bulk jobs `run` created (sf-bulk's `BulkJobCreated` lines on stderr).
fn jobs_created(run: &Run) -> Vec<String> {
    harness::plain(&run.stderr)
        .lines()
        .filter(|l| l.contains("BulkJobCreated"))
        .filter_map(|l| {
            let at = l.find("job_id=")? + "job_id=".len();
            l[at..].split_whitespace().next().map(str::to_string)
        })
        .collect()
}

/// One line per run: where it was killed, the jobs it created, continued and re-created, and
/// the jobs its last Account state named, for failure messages.
fn trail(runs: &[Run], kills: &[usize]) -> String {
    let mut out = String::new();
    for (k, run) in runs.iter().enumerate() {
        let named: Vec<String> = run
            .states("Account")
            .last()
            .map(|s| {
                named_jobs(&json!([s]), "Account")
                    .into_iter()
                    .map(|(id, begun)| format!("{id}{}", if begun { "@page" } else { "" }))
                    .collect()
            })
            .unwrap_or_default();
        let bulk_logs: Vec<String> = run
            .of_type("LOG")
            .into_iter()
            .filter_map(|m| m["log"]["message"].as_str())
            .filter(|t| t.starts_with("Account:") && t.contains("Bulk job"))
            .map(str::to_string)
            .collect();
        out.push_str(&format!(
            "run {k}{}: {} lines, {} Account records, created {:?}, last Account state \
             names {named:?}, logs {bulk_logs:?}\n",
            kills
                .get(k)
                .map(|at| format!(" (killed at line {at})"))
                .unwrap_or_default(),
            run.messages.len(),
            run.records("Account").len(),
            jobs_created(run),
        ));
    }
    out
}

/// How `run` treated the Bulk jobs `named` in its state, asserted: each one it got to is
/// continued (its LOG says so) or, when it is gone, re-created with a WARN saying so, and only
/// when a run before was reading it or deleted it (the connector deletes a job read to its end;
/// a kill before the state covering its window reached stdout leaves a state naming it). The
/// first one is handled before the run emits a record of the stream; a run that ends handles
/// every one. Returns whether a named job was continued, and how many were gone.
fn continuation(
    run: &Run,
    named: &[(String, bool)],
    before: &[Run],
    context: &str,
) -> (bool, usize) {
    let log_at = |needle: &str| {
        run.messages.iter().position(|m| {
            m["type"] == "LOG"
                && m["log"]["message"]
                    .as_str()
                    .is_some_and(|t| t.contains(needle))
        })
    };
    let other = run
        .logs_with("WARN", "creating a new job")
        .into_iter()
        .filter(|t| !t.contains(" is gone "))
        .collect::<Vec<_>>();
    assert!(
        other.is_empty(),
        "{context}: Bulk jobs re-created: {other:?}"
    );
    // sf-bulk's `BulkJobDeleted` lines of the runs before.
    let deleted_before: Vec<String> = before
        .iter()
        .flat_map(|r| {
            harness::plain(&r.stderr)
                .lines()
                .filter(|l| l.contains("BulkJobDeleted"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut continued = false;
    let mut gone = 0;
    let mut first_handled = usize::MAX;
    for (id, begun) in named {
        let went_on = log_at(&format!("Account: continuing Bulk job {id} "));
        let recreated = log_at(&format!("Bulk job {id} is gone"));
        if recreated.is_some() {
            // SIGKILL runs no cleanup and the org's clock stands still: only a run that read
            // the job to its end deleted it (its `BulkJobDeleted` line may be cut by the kill).
            assert!(
                *begun || deleted_before.iter().any(|l| l.contains(id.as_str())),
                "{context}: Bulk job {id} named in the state is gone, but no run before read it \
                 or deleted it:\n{}",
                run.dump()
            );
            gone += 1;
        }
        continued |= went_on.is_some();
        let handled = went_on.or(recreated);
        if !run.killed {
            assert!(
                handled.is_some(),
                "{context}: Bulk job {id} named in the state was neither continued nor \
                 re-created:\n{}",
                run.dump()
            );
        }
        first_handled = first_handled.min(handled.unwrap_or(usize::MAX));
    }
    let first_record = run
        .messages
        .iter()
        .position(|m| m["type"] == "RECORD" && m["record"]["stream"] == "Account");
    if let (Some(first_record), false) = (first_record, named.is_empty()) {
        assert!(
            first_handled < first_record,
            "{context}: the state named Bulk jobs {named:?}, but the run emitted Account records \
             before continuing one:\n{}",
            run.dump()
        );
    }
    (continued, gone)
}

/// The Bulk windows `run` planned for Account (its plan LOG, `...: N windows through BULK`);
/// `None` when that LOG did not reach stdout. Continued jobs' windows are not among them.
fn bulk_windows_planned(run: &Run) -> Option<usize> {
    let plan = run.logs_with("INFO", "Account: incremental on ");
    if plan.is_empty() {
        // Nothing planned (every window covered or continued) on a run that ran to its end.
        return (!run.killed).then_some(0);
    }
    plan.iter()
        .map(|text| {
            let (head, api) = text.split_once(" through ")?;
            let n = head.rsplit(": ").next()?.split(' ').next()?.parse().ok()?;
            Some(if api.starts_with("BULK") { n } else { 0 })
        })
        .sum()
}

/// What one seed's runs showed.
#[derive(Debug, Default)]
struct Seen {
    kills: usize,
    /// Restarts whose state named a Bulk job whose download had begun.
    mid_download: usize,
    /// Restarts that continued a job named in their state.
    continued: usize,
    /// Jobs named in a state that were gone (deleted by the run before, read to their end).
    gone: usize,
    /// Bulk jobs the org created over the seed's runs.
    created: u64,
    /// One uninterrupted sync's jobs plus one per kill.
    bound: u64,
    /// Jobs a killed run created that no STATE it printed named.
    lost: usize,
}

/// One seed: kills at up to three seeded points (1 to 90 % of a whole run's lines), then a run to
/// the end; every assertion of the module on its runs.
async fn one_seed(lane: &Lane, seed: u64, whole_lines: u64, whole_jobs: u64) -> Seen {
    let before = lane.bulk_jobs_created();
    let mut rng = harness::Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x1000_0000_01B3));
    let mut runs: Vec<Run> = Vec::new();
    let mut inputs: Vec<Value> = Vec::new();
    let mut kills = Vec::new();
    let mut seen = Seen::default();
    loop {
        assert!(
            runs.len() < 12,
            "seed {seed}: no run completed; kills at lines {kills:?}"
        );
        let kill_at = (kills.len() < 3).then(|| 1 + rng.below(whole_lines * 9 / 10) as usize);
        let state = next_state(&runs);
        let run = lane.read(&state, kill_at.map(Kill::AtLine)).await;
        run.assert_contract();
        let context = format!("seed {seed}, run {}, kills at lines {kills:?}", runs.len());
        let named = named_jobs(&state, "Account");
        if named.iter().any(|(_, begun)| *begun) {
            seen.mid_download += 1;
        }
        let (continued, gone) = continuation(&run, &named, &runs, &context);
        seen.continued += usize::from(continued);
        seen.gone += gone;
        // No job without a window planned for it or a job gone to replace.
        if let Some(planned) = bulk_windows_planned(&run) {
            let made = jobs_created(&run).len();
            assert!(
                made <= planned + gone,
                "{context}: {made} Bulk jobs created for {planned} windows planned and {gone} \
                 jobs gone:\n{}",
                run.dump()
            );
        }
        let done = !run.killed;
        if done {
            run.assert_success();
        } else {
            kills.push(kill_at.unwrap_or_default());
        }
        runs.push(run);
        inputs.push(state);
        if done {
            break;
        }
    }
    let created = lane.bulk_jobs_created() - before;
    // Jobs a killed run created that no STATE it printed named.
    seen.lost = runs
        .iter()
        .filter(|r| r.killed)
        .map(|r| {
            let named: Vec<String> = r
                .states("Account")
                .into_iter()
                .flat_map(|s| named_jobs(&json!([s]), "Account"))
                .map(|(id, _)| id)
                .collect();
            jobs_created(r)
                .into_iter()
                .filter(|id| !named.contains(id))
                .count()
        })
        .sum();
    seen.created = created;
    seen.bound = whole_jobs + kills.len() as u64;
    eprintln!(
        "seed {seed}: {created} Bulk jobs over {} runs ({whole_jobs} uninterrupted + {} kills \
         allow {}); {} named jobs gone, {} created and never named",
        runs.len(),
        kills.len(),
        seen.bound,
        seen.gone,
        seen.lost
    );
    // The bound, per seed: no more Bulk jobs than the uninterrupted sync plus one per
    // kill (every job is named by a STATE on stdout before the next is created, and deleted only
    // after the STATE covering its window is on stdout).
    assert!(
        created <= seen.bound,
        "seed {seed}: {created} Bulk jobs, {} allowed\n{}",
        seen.bound,
        trail(&runs, &kills)
    );
    assert_eq!(seen.gone, 0, "seed {seed}\n{}", trail(&runs, &kills));
    for (stream, _) in STREAMS {
        for run in &runs {
            assert_no_duplicates(run, stream);
        }
        assert_union_is_truth(&lane.env, &runs, stream);
        assert_rereads_explained(&runs, &inputs, stream, LOOKBACK_SECS);
    }
    seen.kills = kills.len();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilled_at_random_lines_and_restarted_from_the_last_state_reads_the_org_once_reusing_its_jobs(
) {
    // One uninterrupted sync: its lines and Bulk jobs; the plan it shows.
    let twin = Lane::start("kill-resume-twin").await;
    let whole = twin.read(&json!([]), None).await;
    whole.assert_success();
    let whole_jobs = twin.bulk_jobs_created();
    let whole_lines = whole.stdout.lines().count() as u64;
    assert!(whole_jobs >= 3, "{whole_jobs} Bulk jobs:\n{}", whole.dump());
    let created = jobs_created(&whole).len() as u64;
    assert_eq!(created, whole_jobs, "{}", whole.dump());
    // One job per window planned (and the plan LOG read as the restarts' checks read it).
    assert_eq!(
        bulk_windows_planned(&whole),
        Some(whole_jobs as usize),
        "{}",
        whole.dump()
    );
    assert!(
        !harness::plain(&whole.stderr).contains("object=Some(\"Opportunity\")"),
        "Opportunity is read through REST:\n{}",
        whole.dump()
    );
    // Two windows of four pages: a STATE per page.
    assert!(
        whole.states("Opportunity").len() >= 4,
        "Opportunity is read through REST in windows of pages:\n{}",
        whole.dump()
    );
    for (stream, _) in STREAMS {
        assert_union_is_truth(&twin.env, std::slice::from_ref(&whole), stream);
    }
    drop(twin);

    let mut lanes = Vec::new();
    for lane in 0..LANES {
        lanes.push(tokio::spawn(async move {
            let org = Lane::start(&format!("kill-resume-{lane}")).await;
            let mut seen = Vec::new();
            for seed in (1..=SEEDS).filter(|s| s % LANES == lane) {
                seen.push(one_seed(&org, seed, whole_lines, whole_jobs).await);
            }
            seen
        }));
    }
    let mut seen = Vec::new();
    for lane in lanes {
        seen.extend(lane.await.unwrap());
    }
    assert_eq!(seen.len() as u64, SEEDS);
    let kills: usize = seen.iter().map(|s| s.kills).sum();
    let mid_download: usize = seen.iter().map(|s| s.mid_download).sum();
    let continued: usize = seen.iter().map(|s| s.continued).sum();
    let gone: usize = seen.iter().map(|s| s.gone).sum();
    eprintln!(
        "{SEEDS} seeds: {kills} kills, {mid_download} restarts with a download begun, \
         {continued} restarts continued a job, {gone} named jobs gone (read to their end)"
    );
    // Kills landed during downloads, and later runs continued those jobs.
    assert!(kills >= SEEDS as usize, "{seen:?}");
    assert!(mid_download > 0, "{seen:?}");
    assert!(continued > 0, "{seen:?}");
    // The bound holds for each seed (asserted in `one_seed`), hence over all of them; no job a
    // state named was ever gone.
    let created: u64 = seen.iter().map(|s| s.created).sum();
    let bound: u64 = seen.iter().map(|s| s.bound).sum();
    assert!(
        created <= bound,
        "{created} Bulk jobs over all seeds, {bound} allowed: {seen:?}"
    );
    assert_eq!(gone, 0, "{seen:?}");
}
