//! Resume anywhere: a sync killed at any moment (its runtime dropped, so no cleanup runs: no job
//! is aborted, nothing more is sent) and restarted from the last state each stream emitted ends
//! with exactly the org's rows, and creates no more Bulk jobs over all its runs than one
//! uninterrupted sync plus one per kill: jobs in flight are continued from the page after the
//! last one emitted, REST windows from the last cursor value emitted.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use fixtures::{EmulatedOrg, OrgConfig};
use serde_json::{json, Map, Value};
use sf_discovery::{Catalog, Record};
use sf_sync::plan::PlannerConfig;
use sf_sync::{
    read_with, CancellationToken, ConfiguredCatalog, Error, InputState, LogLevel, MemorySink,
    ReadOptions, Sink, SinkMessage, StreamStatus, SyncConfig, SyncSummary,
};

/// Account through Bulk (three jobs of about 800 rows, pages of 50), Opportunity through REST
/// (two windows of about 400 rows, pages of 200).
const STREAMS: [&str; 2] = ["Account", "Opportunity"];

fn org(seed: u64) -> OrgConfig {
    org_config(seed)
        .rows("Account", 2400)
        .rows("Opportunity", 800)
        .default_batch_size(200)
        .bulk_timing(5, 10)
}

fn options() -> ReadOptions {
    ReadOptions {
        planner: PlannerConfig {
            rest_max_rows: 1000,
            rest_rows_per_window: 400,
            bulk_rows_per_window: 800,
            ..PlannerConfig::default()
        },
        bulk_max_records: Some(50),
        rest_batch_size: Some(200),
        bulk_jobs_in_flight: 2,
        channel_capacity: 8,
        // Every job created goes into a state at once.
        checkpoint_jobs_after: Duration::ZERO,
        ..fast_options()
    }
}

/// A sink shared with the test; at its `kill_at`-th message it stops taking any (the runtime
/// is then dropped under it).
struct KillSink {
    messages: Arc<Mutex<Vec<SinkMessage>>>,
    kill_at: Option<usize>,
}

impl KillSink {
    async fn push(&mut self, message: SinkMessage) -> Result<(), Error> {
        let n = {
            let mut messages = self.messages.lock().unwrap();
            if self.kill_at.is_some_and(|at| messages.len() >= at) {
                None
            } else {
                messages.push(message);
                Some(messages.len())
            }
        };
        if n.is_none() {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for KillSink {
    async fn record(&mut self, stream: &str, record: Record) -> Result<(), Error> {
        self.push(SinkMessage::Record {
            stream: stream.to_string(),
            record,
        })
        .await
    }
    async fn state(&mut self, stream: &str, state: Value) -> Result<(), Error> {
        self.push(SinkMessage::State {
            stream: stream.to_string(),
            state,
        })
        .await
    }
    async fn log(&mut self, level: LogLevel, message: &str) -> Result<(), Error> {
        self.push(SinkMessage::Log {
            level,
            message: message.to_string(),
        })
        .await
    }
    async fn status(&mut self, stream: &str, status: StreamStatus) -> Result<(), Error> {
        self.push(SinkMessage::Status {
            stream: stream.to_string(),
            status,
        })
        .await
    }
    async fn summary(&mut self, summary: &SyncSummary) -> Result<(), Error> {
        self.push(SinkMessage::Summary(summary.clone())).await
    }
}

/// One run on a runtime of its own, killed (the runtime dropped) once the sink took `kill_at`
/// messages. Returns the messages and whether it ran to its end.
fn run_once(
    config: &SyncConfig,
    catalog: &ConfiguredCatalog,
    state: &InputState,
    kill_at: Option<usize>,
) -> (Vec<SinkMessage>, bool) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let mut sink = KillSink {
        messages: messages.clone(),
        kill_at,
    };
    let (config, catalog, state) = (config.clone(), catalog.clone(), state.clone());
    let task = runtime.spawn(async move {
        let session = login(&config).await;
        read_with(
            &session,
            &config,
            &catalog,
            &state,
            &mut sink,
            CancellationToken::new(),
            &options(),
        )
        .await
    });
    let finished = loop {
        if task.is_finished() {
            break true;
        }
        if kill_at.is_some_and(|at| messages.lock().unwrap().len() >= at) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if finished {
        let result = runtime.block_on(task).unwrap();
        let summary = result.unwrap();
        assert!(summary.succeeded(), "{summary:?}");
    }
    // A kill: every task is dropped where it stands.
    runtime.shutdown_background();
    let messages = messages.lock().unwrap().clone();
    (messages, finished)
}

/// Each stream's last state over `runs`, as the next run's input.
fn next_state(runs: &[Vec<SinkMessage>]) -> InputState {
    let mut last = Map::new();
    for run in runs {
        for m in run {
            if let SinkMessage::State { stream, state } = m {
                last.insert(stream.clone(), state.clone());
            }
        }
    }
    InputState::from_value(&Value::Object(last)).unwrap()
}

fn union(
    runs: &[Vec<SinkMessage>],
    catalog: &Catalog,
    stream: &str,
) -> BTreeMap<String, Map<String, Value>> {
    let spec = catalog.stream(stream).unwrap();
    let mut out = BTreeMap::new();
    for run in runs {
        for m in run {
            if let SinkMessage::Record { stream: s, record } = m {
                if s == stream {
                    out.insert(record.id().unwrap().to_string(), record_json(spec, record));
                }
            }
        }
    }
    out
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// An org, a config and the configured catalog, on the test's own runtime.
fn setup(main: &tokio::runtime::Runtime, seed: u64) -> (EmulatedOrg, SyncConfig, Catalog) {
    main.block_on(async {
        let Connected {
            org,
            config,
            catalog,
            ..
        } = connect(org(seed), json!({"num_workers": 2})).await;
        (org, config, catalog)
    })
}

#[test]
fn a_sync_killed_anywhere_and_restarted_reads_the_org_once_and_reuses_its_jobs() {
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // An uninterrupted sync: its messages and jobs.
    let (twin, config, catalog) = setup(&main, 51);
    let configured = configure(&catalog, &STREAMS, Some("incremental"));
    let before = twin.control().stats().requests.bulk_create;
    let (whole, done) = run_once(&config, &configured, &InputState::default(), None);
    assert!(done);
    let whole_jobs = twin.control().stats().requests.bulk_create - before;
    assert!(whole_jobs >= 3, "{whole_jobs} jobs");
    let whole_messages = whole.len() as u64;
    main.block_on(twin.shutdown());

    let mut continued_total = 0;
    for seed in 1..=20u64 {
        let (org, config, catalog) = setup(&main, 51);
        let control = org.control();
        let configured = configure(&catalog, &STREAMS, Some("incremental"));
        let before = control.stats().requests.bulk_create;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x1000_0000_01B3));
        let mut runs: Vec<Vec<SinkMessage>> = Vec::new();
        let mut kills = Vec::new();
        loop {
            assert!(
                runs.len() < 40,
                "seed {seed}: no run completed; kills {kills:?}"
            );
            // Killed somewhere in the first 90 % of a whole run's messages, three times at most.
            let kill_at =
                (kills.len() < 3).then(|| 1 + rng.below(whole_messages * 9 / 10) as usize);
            let (messages, finished) = run_once(&config, &configured, &next_state(&runs), kill_at);
            continued_total += messages
                .iter()
                .filter(|m| matches!(m, SinkMessage::Log { message, .. } if message.contains("continuing Bulk job")))
                .count();
            runs.push(messages);
            if finished {
                break;
            }
            kills.push(kill_at.unwrap_or_default());
        }
        let created = control.stats().requests.bulk_create - before;
        let logs: Vec<Vec<&str>> = runs
            .iter()
            .map(|run| {
                run.iter()
                    .filter_map(|m| match m {
                        SinkMessage::Log { message, .. } => Some(message.as_str()),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        assert!(
            created <= whole_jobs + kills.len() as u64,
            "seed {seed}: {created} jobs over {} runs, an uninterrupted sync creates {whole_jobs}; \
             kills at {kills:?}; each run's log: {logs:#?}",
            runs.len()
        );
        for stream in STREAMS {
            let spec = catalog.stream(stream).unwrap();
            assert_matches_truth(
                stream,
                &union(&runs, &catalog, stream),
                &truth(&control, spec),
            );
        }
        main.block_on(org.shutdown());
    }
    // Kills during downloads left jobs that later runs continued.
    assert!(continued_total > 0);
}

/// The job ids the states among `messages` name.
fn named_jobs(messages: &[SinkMessage]) -> std::collections::BTreeSet<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            SinkMessage::State { state, .. } => state["bulk_jobs"].as_array(),
            _ => None,
        })
        .flatten()
        .filter_map(|job| job["job_id"].as_str().map(str::to_string))
        .collect()
}

/// A sink that refuses the first state covering a window read: the state the stream waits
/// for the sink to take before deleting the window's job.
struct RefusesState(MemorySink);

#[async_trait]
impl Sink for RefusesState {
    async fn record(&mut self, stream: &str, record: Record) -> Result<(), Error> {
        self.0.record(stream, record).await
    }
    async fn state(&mut self, stream: &str, state: Value) -> Result<(), Error> {
        // A window read: its slice is in the state (states naming jobs before have none but
        // the empty placeholder, `start` = `end`).
        let window_done = common::windows_read(&state);
        if !window_done {
            return self.0.state(stream, state).await;
        }
        Err(Error::sink(format!(
            "the destination refused {stream}'s state"
        )))
    }
    async fn log(&mut self, level: LogLevel, message: &str) -> Result<(), Error> {
        self.0.log(level, message).await
    }
    async fn status(&mut self, stream: &str, status: StreamStatus) -> Result<(), Error> {
        self.0.status(stream, status).await
    }
    async fn summary(&mut self, summary: &SyncSummary) -> Result<(), Error> {
        self.0.summary(summary).await
    }
}

/// A stream naming every job at once waits for the sink to take the state naming a job before
/// deleting it; a sink that fails on that very state ends the sync with its error, and no
/// stream waits for it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_failing_on_the_state_a_stream_waits_for_ends_the_sync() {
    let org = EmulatedOrg::start(org(47)).await.unwrap();
    let config = sync_config(&org, json!({"force_use_bulk_api": true}));
    let session = login(&config).await;
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    let configured = configure(&catalog, &["Account"], Some("incremental"));
    let mut sink = RefusesState(MemorySink::new());
    let (state, options) = (InputState::default(), options());
    let read = read_with(
        &session,
        &config,
        &configured,
        &state,
        &mut sink,
        CancellationToken::new(),
        &options,
    );
    // A guard against a hang only: the read ends in well under a second.
    let result = tokio::time::timeout(Duration::from_secs(300), read)
        .await
        .expect("the sync ended");
    let err = result.unwrap_err();
    assert!(
        err.to_string()
            .contains("the destination refused Account's state"),
        "{err}"
    );
    assert!(!sink.0.records("Account").is_empty(), "it read before");
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_stopped_at_any_message_leaves_at_most_one_job_no_state_names() {
    // Three jobs in flight: without the gate, all three exist before the first state.
    let mut options = options();
    options.bulk_jobs_in_flight = 3;
    for kill_at in [1, 2, 3, 4, 6, 10, 40, 120, 400, 900] {
        let c = connect(org(52), json!({})).await;
        let configured = configure(&c.catalog, &["Account"], Some("incremental"));
        let before = c.org.control().stats().requests.bulk_create;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let mut sink = KillSink {
            messages: messages.clone(),
            kill_at: Some(kill_at),
        };
        // The sink stops taking messages at `kill_at`; the sync is given time to create what it
        // would, then dropped where it stands.
        let empty = InputState::default();
        let read = read_with(
            &c.session,
            &c.config,
            &configured,
            &empty,
            &mut sink,
            CancellationToken::new(),
            &options,
        );
        let _ = tokio::time::timeout(Duration::from_millis(400), read).await;
        let created = c.org.control().stats().requests.bulk_create - before;
        let named = named_jobs(&messages.lock().unwrap());
        assert!(
            created <= named.len() as u64 + 1,
            "stopped at message {kill_at}: {created} jobs created, {} named: {named:?}",
            named.len()
        );
        c.org.shutdown().await;
    }
}
