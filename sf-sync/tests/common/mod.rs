//! Helpers shared by the engine's tests against the emulated org.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use chrono::{DateTime, TimeZone, Utc};
use fixtures::{EmulatedOrg, OrgConfig, OrgControl, Scale};
use serde_json::{json, Map, Value};
use sf_auth::{RetryConfig, Session};
use sf_discovery::{Catalog, FieldType, Record, StreamSpec, ValueKind};
use sf_sync::{
    read_with, CancellationToken, ConfiguredCatalog, Error, InputState, LogLevel, MemorySink,
    ReadOptions, Sink, StreamStatus, SyncConfig, SyncSummary,
};

pub fn clock_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap()
}

/// A tiny org with a frozen clock at [`clock_start`].
pub fn org_config(seed: u64) -> OrgConfig {
    OrgConfig::new(seed, Scale::Tiny)
        .clock_start(clock_start())
        .bulk_timing(5, 20)
}

pub async fn start(config: OrgConfig) -> EmulatedOrg {
    EmulatedOrg::start(config).await.unwrap()
}

/// A config for `org`; `extra` overrides keys. The start date reaches before all generated rows.
pub fn sync_config(org: &EmulatedOrg, extra: Value) -> SyncConfig {
    let login = org.login_info();
    let mut config = json!({
        "client_id": login.client_id, "client_secret": login.client_secret,
        "refresh_token": login.refresh_token, "login_url": login.login_url,
        "start_date": "2021-01-01",
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    SyncConfig::from_value(&config, org.control().now())
        .unwrap()
        .config
}

pub async fn login(config: &SyncConfig) -> Session {
    let mut session = config.session_config();
    session.retry = RetryConfig::immediate();
    Session::login(session).await.unwrap()
}

/// An org started, a config for it, a session logged in with that config and the org's catalog
/// as discovered through it.
pub struct Connected {
    pub org: EmulatedOrg,
    pub config: SyncConfig,
    pub session: Session,
    pub catalog: Catalog,
}

/// Lets the org answer `calls` more API requests today, then refuses the rest as the daily
/// limit does.
pub fn allow_calls(control: &OrgControl, calls: u64) {
    let used = control.stats().api_usage.used;
    control.set_faults(fixtures::Faults {
        daily_api_limit: used + calls,
        ..fixtures::Faults::default()
    });
}

/// Whether a stream's state (its JSON) covers a window read: a slice that is not the empty
/// placeholder written before any is.
pub fn windows_read(state: &Value) -> bool {
    state["slices"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["start"] != s["end"]))
}

/// Starts an org from `org`, logs in with a config for it (`extra` overrides keys, as in
/// [`sync_config`]) and discovers its catalog.
pub async fn connect(org: OrgConfig, extra: Value) -> Connected {
    let org = start(org).await;
    let config = sync_config(&org, extra);
    let session = login(&config).await;
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    Connected {
        org,
        config,
        session,
        catalog,
    }
}

/// Options for fast tests: Bulk polled often.
pub fn fast_options() -> ReadOptions {
    ReadOptions {
        bulk_poll: sf_bulk::PollSchedule {
            first: Duration::from_millis(20),
            second: Duration::from_millis(40),
            growth: 2.0,
            min_wait: Duration::from_millis(20),
            max_wait: Duration::from_millis(100),
        },
        ..ReadOptions::default()
    }
}

/// A configured catalog of `names` from a discovered catalog: every field selected, incremental
/// where the stream supports it unless `mode` says otherwise.
pub fn configure(catalog: &Catalog, names: &[&str], mode: Option<&str>) -> ConfiguredCatalog {
    let streams: Vec<Value> = names
        .iter()
        .map(|name| {
            if *name == "Describe" {
                return json!({"stream": {"name": "Describe", "json_schema": {}},
                              "sync_mode": "full_refresh"});
            }
            let spec = catalog
                .stream(name)
                .unwrap_or_else(|| panic!("{name} not discovered"));
            let sync_mode = mode.unwrap_or(if spec.supports_incremental {
                "incremental"
            } else {
                "full_refresh"
            });
            json!({"stream": {"name": spec.name, "json_schema": spec.json_schema()},
                   "sync_mode": sync_mode, "destination_sync_mode": "append"})
        })
        .collect();
    ConfiguredCatalog::from_value(&json!({ "streams": streams })).unwrap()
}

/// Runs one read into a fresh memory sink.
pub async fn run(
    session: &Session,
    config: &SyncConfig,
    catalog: &ConfiguredCatalog,
    state: &InputState,
    options: &ReadOptions,
) -> (Result<SyncSummary, sf_sync::Error>, MemorySink) {
    let mut sink = MemorySink::new();
    let result = read_with(
        session,
        config,
        catalog,
        state,
        &mut sink,
        CancellationToken::new(),
        options,
    )
    .await;
    (result, sink)
}

/// Runs one read from no state with [`fast_options`], into a fresh memory sink.
pub async fn run_fresh(
    session: &Session,
    config: &SyncConfig,
    catalog: &ConfiguredCatalog,
) -> (Result<SyncSummary, sf_sync::Error>, MemorySink) {
    run(
        session,
        config,
        catalog,
        &InputState::default(),
        &fast_options(),
    )
    .await
}

/// A truth row as the connector emits it: datetimes `...sssZ`, numbers compared as numbers.
pub fn normalize(spec: &StreamSpec, row: &Value) -> Map<String, Value> {
    // Field kinds by lower-cased name, looked up once per row rather than scanned per value (a
    // wide object's rows would otherwise cost columns² comparisons each).
    let kinds: std::collections::HashMap<String, ValueKind> = spec
        .fields
        .iter()
        .map(|f| (f.name.to_ascii_lowercase(), f.value_kind()))
        .collect();
    let mut out = Map::new();
    for (k, v) in row.as_object().unwrap() {
        let kind = kinds.get(&k.to_ascii_lowercase()).copied();
        out.insert(k.clone(), normalize_value(kind, v));
    }
    out
}

fn normalize_value(kind: Option<ValueKind>, v: &Value) -> Value {
    match (kind, v) {
        (Some(ValueKind::DateTime), Value::String(s)) => {
            Value::String(sf_discovery::normalize_datetime(s).unwrap_or_else(|| s.clone()))
        }
        (_, Value::Number(n)) => json!(n.as_f64().unwrap()),
        (_, Value::Object(map)) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalize_value(None, v)))
                .collect(),
        ),
        _ => v.clone(),
    }
}

/// A record as JSON, normalised as [`normalize`] does.
pub fn record_json(spec: &StreamSpec, record: &Record) -> Map<String, Value> {
    normalize(spec, &Value::Object(record.to_json()))
}

/// The truth rows of `object` by Id, normalised.
pub fn truth(control: &OrgControl, spec: &StreamSpec) -> BTreeMap<String, Map<String, Value>> {
    control
        .truth(&spec.name)
        .iter()
        .map(|row| {
            (
                row["Id"].as_str().unwrap().to_string(),
                normalize(spec, row),
            )
        })
        .collect()
}

/// The LOG lines of `sink` at `level` that contain `needle`.
pub fn logs_with<'a>(sink: &'a MemorySink, level: LogLevel, needle: &str) -> Vec<&'a str> {
    sink.logs()
        .into_iter()
        .filter(|(l, m)| *l == level && m.contains(needle))
        .map(|(_, m)| m)
        .collect()
}

/// Asserts that `stream` emitted `count` records, each once.
pub fn assert_each_once(sink: &MemorySink, stream: &str, count: usize) {
    let records = sink.records(stream);
    let ids: BTreeSet<&str> = records.iter().map(|r| r.id().unwrap()).collect();
    assert_eq!(records.len(), count, "{stream}: records");
    assert_eq!(ids.len(), count, "{stream}: each record once");
}

/// The last version of every record emitted for `stream`, by Id (later records win, as a dedup
/// destination keeps them).
pub fn latest(
    sinks: &[&MemorySink],
    stream: &str,
    spec: &StreamSpec,
) -> BTreeMap<String, Map<String, Value>> {
    let mut out = BTreeMap::new();
    for sink in sinks {
        for record in sink.records(stream) {
            out.insert(record.id().unwrap().to_string(), record_json(spec, record));
        }
    }
    out
}

/// Asserts that every emitted record equals its truth row on the emitted columns, and that the
/// ids are exactly the truth's.
pub fn assert_matches_truth(
    stream: &str,
    got: &BTreeMap<String, Map<String, Value>>,
    want: &BTreeMap<String, Map<String, Value>>,
) {
    let got_ids: BTreeSet<&String> = got.keys().collect();
    let want_ids: BTreeSet<&String> = want.keys().collect();
    assert_eq!(got_ids, want_ids, "{stream}: ids differ");
    for (id, record) in got {
        let truth = &want[id];
        for (column, value) in record {
            assert_eq!(
                Some(value),
                truth.get(column),
                "{stream} {id} column {column}"
            );
        }
    }
}

/// The cursor value of a truth row.
pub fn stamp(row: &Map<String, Value>, cursor: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(row[cursor].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// True for a field type the Bulk API cannot select.
pub fn bulk_unservable(t: &FieldType) -> bool {
    t.bulk_unservable()
}

/// The state a restarted sync is given: each stream's last state over all runs so far.
#[derive(Debug, Clone, Default)]
pub struct States(pub Map<String, Value>);

impl States {
    /// Takes the last state each stream emitted into `sink`.
    pub fn update(&mut self, sink: &MemorySink, streams: &[&str]) {
        for stream in streams {
            if let Some(state) = sink.last_state(stream) {
                self.0.insert((*stream).to_string(), state.clone());
            }
        }
    }

    /// As the input of the next run (Airbyte's per-stream legacy object form).
    pub fn input(&self) -> InputState {
        InputState::from_value(&Value::Object(self.0.clone())).unwrap()
    }
}

/// A sink that acts on the org when it takes its `at`-th record.
pub struct ActingSink {
    pub inner: MemorySink,
    act: Box<dyn Fn() + Send>,
    seen: AtomicUsize,
    at: usize,
}

impl ActingSink {
    pub fn new(at: usize, act: impl Fn() + Send + 'static) -> ActingSink {
        ActingSink {
            inner: MemorySink::new(),
            act: Box::new(act),
            seen: AtomicUsize::new(0),
            at,
        }
    }
}

/// Reads `configured` from no state with `options` into an [`ActingSink`] that runs `act` at
/// its `at`th record: something that happens to the org in the middle of a read.
pub async fn read_acting(
    session: &Session,
    config: &SyncConfig,
    configured: &ConfiguredCatalog,
    options: &ReadOptions,
    (at, act): (usize, impl Fn() + Send + 'static),
) -> (Result<SyncSummary, Error>, ActingSink) {
    let mut sink = ActingSink::new(at, act);
    let result = read_with(
        session,
        config,
        configured,
        &InputState::default(),
        &mut sink,
        CancellationToken::new(),
        options,
    )
    .await;
    (result, sink)
}

#[async_trait]
impl Sink for ActingSink {
    async fn record(&mut self, stream: &str, record: Record) -> Result<(), Error> {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
            (self.act)();
        }
        self.inner.record(stream, record).await
    }
    async fn state(&mut self, stream: &str, state: Value) -> Result<(), Error> {
        self.inner.state(stream, state).await
    }
    async fn log(&mut self, level: LogLevel, message: &str) -> Result<(), Error> {
        self.inner.log(level, message).await
    }
    async fn status(&mut self, stream: &str, status: StreamStatus) -> Result<(), Error> {
        self.inner.status(stream, status).await
    }
    async fn summary(&mut self, summary: &SyncSummary) -> Result<(), Error> {
        self.inner.summary(summary).await
    }
}

/// A read of `configured` from no state, cancelled when the sink takes its `at`-th record.
pub async fn read_cancelled_at(
    c: &Connected,
    configured: &ConfiguredCatalog,
    at: usize,
    options: &ReadOptions,
) -> (SyncSummary, MemorySink) {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut sink = ActingSink::new(at, move || trigger.cancel());
    let summary = read_with(
        &c.session,
        &c.config,
        configured,
        &InputState::default(),
        &mut sink,
        cancel,
        options,
    )
    .await
    .unwrap();
    (summary, sink.inner)
}

/// The Bulk jobs on the org, as `GET jobs/query` lists them: `(id, state)`.
pub async fn jobs_on_org(session: &Session) -> Vec<(String, String)> {
    let list: Value = session.get_json("jobs/query", &[]).await.unwrap();
    list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["id"].as_str().unwrap().to_string(),
                j["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The next sync of `catalog` from `states`, with [`fast_options`].
pub async fn run_from(
    c: &Connected,
    catalog: &ConfiguredCatalog,
    states: &States,
) -> (Result<SyncSummary, Error>, MemorySink) {
    run(
        &c.session,
        &c.config,
        catalog,
        &states.input(),
        &fast_options(),
    )
    .await
}
