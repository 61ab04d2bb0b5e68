//! What the reliability and security tests share: an emulated org with a scratch folder, runs of
//! the `sfconnect` binary (to the end, or killed), the Airbyte messages they printed, and the
//! check that the records of several runs add up to the org's ground truth.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fixtures::{EmulatedOrg, OrgConfig};
use serde_json::{json, Map, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_sfconnect");

/// Every config starts here: before the oldest generated row (three years before the org's
/// clock), so incremental reads cover the whole org.
pub const START_DATE: &str = "2015-01-01T00:00:00Z";

/// An emulated org and a scratch folder for config, catalog and state files.
pub struct Env {
    pub org: EmulatedOrg,
    pub dir: PathBuf,
}

impl Env {
    pub async fn start(name: &str, config: OrgConfig) -> Env {
        let org = EmulatedOrg::start(config).await.unwrap();
        // One folder per env, even for two of one name in one test binary (two tests each
        // starting a `twin` at once wrote each other's config).
        static ENVS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = ENVS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sfconnect-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Env { org, dir }
    }

    /// A config for this org, with `extra` keys on top.
    pub fn config(&self, extra: Value) -> Value {
        let info = self.org.login_info();
        let mut config = json!({
            "client_id": info.client_id,
            "client_secret": info.client_secret,
            "refresh_token": info.refresh_token,
            "login_url": info.login_url,
            "start_date": START_DATE,
        });
        if let (Some(config), Value::Object(extra)) = (config.as_object_mut(), extra) {
            config.extend(extra);
        }
        config
    }

    /// Writes `value` as JSON to `name` in the scratch folder.
    pub fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path
    }

    /// Runs the binary to its end, off the async runtime (the org keeps serving meanwhile).
    pub async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_for(args, env, None).await
    }

    /// Runs the binary; with `kill`, kills it (SIGKILL) at that point if still running.
    pub async fn run_for(&self, args: &[&str], env: &[(&str, &str)], kill: Option<Kill>) -> Run {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(BIN);
            command
                .args(&args)
                .current_dir(dir)
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for (k, v) in &env {
                command.env(k, v);
            }
            let mut child = command.spawn().unwrap();
            // Drain both pipes from the start (a child blocked on a full pipe would stall),
            // counting stdout lines for a kill at a line.
            let lines = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let drain = |mut pipe: Box<dyn std::io::Read + Send>, count: bool| {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    let mut bytes = Vec::new();
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = pipe.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if count {
                            let newlines = buf[..n].iter().filter(|b| **b == b'\n').count();
                            lines.fetch_add(newlines, std::sync::atomic::Ordering::SeqCst);
                        }
                        bytes.extend_from_slice(&buf[..n]);
                    }
                    bytes
                })
            };
            let stdout = drain(Box::new(child.stdout.take().unwrap()), true);
            let stderr = drain(Box::new(child.stderr.take().unwrap()), false);
            let started = std::time::Instant::now();
            let mut killed = false;
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                let due = match kill {
                    Some(Kill::After(after)) => started.elapsed() >= after,
                    Some(Kill::AtLine(n)) => lines.load(std::sync::atomic::Ordering::SeqCst) >= n,
                    None => false,
                };
                if due {
                    // `Child::kill` sends SIGKILL on Unix: no cleanup, no flush.
                    child.kill().unwrap();
                    killed = true;
                    break child.wait().unwrap();
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let output = std::process::Output {
                status,
                stdout: stdout.join().unwrap(),
                stderr: stderr.join().unwrap(),
            };
            Run::new(output, killed)
        })
        .await
        .unwrap()
    }

    /// `sfconnect read` with these files; the state file is written from `state` when given.
    pub async fn read(
        &self,
        config: &Path,
        catalog: &Path,
        state: Option<&Value>,
        env: &[(&str, &str)],
    ) -> Run {
        self.read_for(config, catalog, state, env, None).await
    }

    /// `sfconnect read`, killed at `kill` if given.
    pub async fn read_for(
        &self,
        config: &Path,
        catalog: &Path,
        state: Option<&Value>,
        env: &[(&str, &str)],
        kill: Option<Kill>,
    ) -> Run {
        let mut args = vec![
            "read".to_string(),
            "--config".to_string(),
            config.display().to_string(),
            "--catalog".to_string(),
            catalog.display().to_string(),
        ];
        if let Some(state) = state {
            let path = self.write("state.json", state);
            args.push("--state".to_string());
            args.push(path.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run_for(&args, env, kill).await
    }
}

/// When to kill a run.
#[derive(Debug, Clone, Copy)]
pub enum Kill {
    /// After this long.
    After(Duration),
    /// Once it has printed this many lines on stdout.
    AtLine(usize),
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A configured catalog for `streams` (name, mode), every field selected (a schema without
/// `properties`), cursor `SystemModstamp` for incremental ones.
pub fn catalog(streams: &[(&str, &str)]) -> Value {
    let entries: Vec<Value> = streams
        .iter()
        .map(|(name, mode)| {
            let mut entry = json!({
                "stream": {"name": name, "json_schema": {"type": "object"},
                           "supported_sync_modes": ["full_refresh", "incremental"]},
                "sync_mode": mode,
                "destination_sync_mode": "append",
            });
            if *mode == "incremental" {
                entry["cursor_field"] = json!(["SystemModstamp"]);
                entry["primary_key"] = json!([["Id"]]);
            }
            entry
        })
        .collect();
    json!({ "streams": entries })
}

/// One run of the binary: its exit, the messages on stdout, and stderr.
pub struct Run {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub killed: bool,
    pub messages: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn new(output: std::process::Output, killed: bool) -> Run {
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let lines: Vec<&str> = stdout.lines().collect();
        let mut messages = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Value>(line) {
                Ok(v) => {
                    assert!(v["type"].is_string(), "a message without a type: {line}");
                    messages.push(v);
                }
                // A process killed mid-write leaves at most its last line cut.
                Err(_) if killed && i + 1 == lines.len() && !stdout.ends_with('\n') => {}
                Err(e) => panic!("stdout line {} is not JSON ({e}): {line}\n{stderr}", i + 1),
            }
        }
        Run {
            code: output.status.code(),
            killed,
            messages,
            stdout,
            stderr,
        }
    }

    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == t).collect()
    }

    /// The records of `stream`, in order.
    pub fn records(&self, stream: &str) -> Vec<&Map<String, Value>> {
        self.of_type("RECORD")
            .into_iter()
            .filter(|m| m["record"]["stream"] == stream)
            .filter_map(|m| m["record"]["data"].as_object())
            .collect()
    }

    /// The STATE messages' `state` objects of `stream`, in order.
    pub fn states(&self, stream: &str) -> Vec<&Value> {
        self.of_type("STATE")
            .into_iter()
            .filter(|m| m["state"]["stream"]["stream_descriptor"]["name"] == stream)
            .map(|m| &m["state"])
            .collect()
    }

    /// The sync's TRACE error, if any: the one naming no stream (a failed stream's own error,
    /// with a `stream_descriptor`, comes before it), else the first.
    pub fn trace_error(&self) -> Option<&Value> {
        let errors = || {
            self.messages
                .iter()
                .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
                .map(|m| &m["trace"]["error"])
        };
        errors()
            .find(|e| e.get("stream_descriptor").is_none())
            .or_else(|| errors().next())
    }

    /// LOG messages at `level` whose text contains `needle`.
    pub fn logs_with(&self, level: &str, needle: &str) -> Vec<String> {
        self.of_type("LOG")
            .into_iter()
            .filter(|m| m["log"]["level"] == level)
            .filter_map(|m| m["log"]["message"].as_str())
            .filter(|t| t.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// Everything the process printed, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            if self.killed { " (killed)" } else { "" },
            tail(&self.stdout, 6000),
            tail(&plain(&self.stderr), 4000)
        )
    }

    /// No panic, stdout all protocol messages (checked on parse), and the README's contract: exit
    /// 0 without a TRACE error, or exit 1 with one that carries a message and a failure type.
    pub fn assert_contract(&self) {
        assert!(
            !self.stderr.contains("panicked"),
            "the process panicked:\n{}",
            self.dump()
        );
        if self.killed {
            return;
        }
        match (self.code, self.trace_error()) {
            (Some(0), None) => {}
            (Some(1), Some(error)) => {
                assert!(
                    error["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{error}"
                );
                assert!(
                    ["config_error", "system_error", "transient_error"]
                        .contains(&error["failure_type"].as_str().unwrap_or("")),
                    "{error}"
                );
            }
            _ => panic!(
                "exit status and TRACE error disagree with the README:\n{}",
                self.dump()
            ),
        }
    }

    pub fn assert_success(&self) {
        self.assert_contract();
        assert_eq!(self.code, Some(0), "{}", self.dump());
    }
}

/// `text` without ANSI colour codes (the log lines on stderr are coloured).
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in @..~
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The state file for the next run: the last state each stream emitted in any run so far.
pub fn next_state(runs: &[Run]) -> Value {
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    for run in runs {
        for m in run.of_type("STATE") {
            if let Some(name) = m["state"]["stream"]["stream_descriptor"]["name"].as_str() {
                last.insert(name.to_string(), m["state"].clone());
            }
        }
    }
    Value::Array(last.into_values().collect())
}

/// `2024-01-02T03:04:05.000+0000` as records write it (`...000Z`); anything else as is.
fn normalize(value: &Value) -> Value {
    if let Value::String(s) = value {
        if s.len() == 28 && s.ends_with("+0000") && s.as_bytes().get(10) == Some(&b'T') {
            return Value::String(format!("{}Z", &s[..23]));
        }
    }
    value.clone()
}

fn same_value(truth: &Value, got: &Value) -> bool {
    match (normalize(truth), got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| same_value(v, w)))
        }
        (a, b) => &a == b,
    }
}

/// The Ids read of `stream` in every run, counted.
pub fn id_counts<'a>(
    runs: impl IntoIterator<Item = &'a Run>,
    stream: &str,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for run in runs {
        for r in run.records(stream) {
            let id = r["Id"].as_str().unwrap().to_string();
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

/// The records of `stream` across `runs` add up to the org's ground truth: every row is read,
/// nothing else is, and the last version read of each row equals the row now, field by field
/// (datetimes in the records' form; numbers compared as numbers).
pub fn assert_union_is_truth(env: &Env, runs: &[Run], stream: &str) {
    let truth = env.org.control().truth(stream);
    assert!(!truth.is_empty(), "{stream}: the org has no rows");
    let mut last: BTreeMap<String, &Map<String, Value>> = BTreeMap::new();
    for run in runs {
        for r in run.records(stream) {
            last.insert(r["Id"].as_str().unwrap().to_string(), r);
        }
    }
    let want: BTreeSet<String> = truth
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect();
    let got: BTreeSet<String> = last.keys().cloned().collect();
    let missing: Vec<&String> = want.difference(&got).collect();
    let extra: Vec<&String> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{stream}: {} rows lost {missing:?}, {} rows not in the org {extra:?}",
        missing.len(),
        extra.len()
    );
    for row in &truth {
        let id = row["Id"].as_str().unwrap();
        let record = last[id];
        for (field, value) in record {
            let expected = row.get(field).unwrap_or(&Value::Null);
            assert!(
                same_value(expected, value),
                "{stream} {id}.{field}: read {value}, the org has {expected}"
            );
        }
    }
}

/// The cursor value of a record (its `SystemModstamp`).
pub fn cursor_of(record: &Map<String, Value>) -> String {
    record["SystemModstamp"].as_str().unwrap_or("").to_string()
}

/// Whether `cursor` lies in a slice of `state` (a stream's `state` message) far enough from its
/// end that the lookback does not re-read it: `[start, end - lookback)`.
pub fn covered_beyond_lookback(state: &Value, cursor: &str, lookback_secs: i64) -> bool {
    let Some(slices) = state["stream"]["stream_state"]["slices"].as_array() else {
        return false;
    };
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(cursor) else {
        return false;
    };
    slices.iter().any(|s| {
        let (Some(start), Some(end)) = (s["start"].as_str(), s["end"].as_str()) else {
            return false;
        };
        let (Ok(start), Ok(end)) = (
            chrono::DateTime::parse_from_rfc3339(start),
            chrono::DateTime::parse_from_rfc3339(end),
        ) else {
            return false;
        };
        start <= t && t < end - chrono::TimeDelta::seconds(lookback_secs)
    })
}

/// Every record of `stream` that `runs[k]` read again (an Id some earlier run read already) lies
/// where run `k`'s input state did not cover it (beyond the lookback): only a documented re-read
/// explains a duplicate across runs.
pub fn assert_rereads_explained(runs: &[Run], inputs: &[Value], stream: &str, lookback_secs: i64) {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (k, run) in runs.iter().enumerate() {
        let state = inputs
            .get(k)
            .and_then(Value::as_array)
            .and_then(|states| {
                states
                    .iter()
                    .find(|s| s["stream"]["stream_descriptor"]["name"] == stream)
            })
            .cloned()
            .unwrap_or(Value::Null);
        let mut this_run = BTreeSet::new();
        for r in run.records(stream) {
            let id = r["Id"].as_str().unwrap().to_string();
            if seen.contains(&id) && !this_run.contains(&id) {
                let cursor = cursor_of(r);
                assert!(
                    !covered_beyond_lookback(&state, &cursor, lookback_secs),
                    "{stream}: run {k} read {id} (cursor {cursor}) again although its input \
                     state covered it: {state}"
                );
            }
            this_run.insert(id);
        }
        seen.extend(this_run);
    }
}

/// No Id of `stream` appears twice within one run.
pub fn assert_no_duplicates(run: &Run, stream: &str) {
    let dups: Vec<(String, usize)> = id_counts([run], stream)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(dups.is_empty(), "{stream}: read twice in one run: {dups:?}");
}

/// A small deterministic generator for kill points and times (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    /// The next number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}
