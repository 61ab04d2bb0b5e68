//! The processes a benchmark drives: the emulated org (`bench_org`, its own process) and the
//! connector (`sfconnect`), measured from outside as a user would see them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench_http;

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat`.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// Requests served by the org, per kind, read as the org's `/__admin/stats` prints them (its
/// `requests` object: `token`, `describe_global`, `describe`, `composite`,
/// `composite_subrequests`, `bulk_poll`, ...; the emulator documents each kind), and the API
/// calls it charged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls {
    /// Requests per kind, by the org's name for the kind.
    requests: BTreeMap<String, u64>,
    /// API calls as the org counts them against its daily allowance (`DailyApiRequests`): every
    /// request but logins, a `composite` call once, each `composite/batch` subrequest once (its
    /// envelope not).
    pub api: u64,
}

/// How [`Calls::by_kind`] names the org's kinds, in its order.
const KIND_LABELS: [(&str, &str); 13] = [
    ("token", "login"),
    ("describe_global", "describeGlobal"),
    ("describe", "describe"),
    ("composite", "composite"),
    ("composite_batch", "composite/batch"),
    ("query", "query"),
    ("query_more", "queryMore"),
    ("bulk_create", "bulk create"),
    ("bulk_poll", "poll"),
    ("bulk_result_pages", "page lists"),
    ("bulk_results", "results"),
    ("bulk_delete", "delete"),
    ("get_deleted", "getDeleted"),
];

/// The kinds [`Calls::by_kind`] lists together as `other` (limits, aborts, other resources).
const OTHER_KINDS: [&str; 3] = ["limits", "bulk_abort", "other"];

impl Calls {
    /// Reads the org's `/__admin/stats` answer.
    pub fn from_stats(stats: &Value) -> Calls {
        let requests = stats["requests"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(kind, n)| (kind.clone(), n.as_u64().unwrap_or(0)))
            .collect();
        Calls {
            requests,
            api: stats["api_usage"]["used"].as_u64().unwrap_or(0),
        }
    }

    /// Requests of one kind, by the org's name for it (`describe`, `bulk_poll`, ...); 0 for a
    /// kind it has not counted.
    pub fn n(&self, kind: &str) -> u64 {
        self.requests.get(kind).copied().unwrap_or(0)
    }

    /// Calls with these `requests` per kind (as the org prints them) and `api` API calls.
    #[cfg(test)]
    pub fn of(requests: Value, api: u64) -> Calls {
        Calls::from_stats(&json!({ "requests": requests, "api_usage": { "used": api } }))
    }

    /// Requests of the kinds listed together as `other` (limits, aborts, other resources).
    pub fn other(&self) -> u64 {
        OTHER_KINDS.iter().map(|k| self.n(k)).sum()
    }

    /// The calls made between `before` and `self`.
    pub fn since(&self, before: &Calls) -> Calls {
        Calls {
            requests: self
                .requests
                .iter()
                .map(|(kind, n)| (kind.clone(), n.saturating_sub(before.n(kind))))
                .collect(),
            api: self.api.saturating_sub(before.api),
        }
    }

    /// A compact "kind count" list of the non-zero kinds.
    pub fn by_kind(&self) -> String {
        let parts: Vec<String> = KIND_LABELS
            .iter()
            .map(|(kind, label)| (*label, self.n(kind)))
            .chain([("other", self.other())])
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        parts.join(", ")
    }
}

/// How to configure an emulated org (the `bench_org` example's flags).
#[derive(Debug, Clone, Default)]
pub struct OrgSpec {
    /// Rows per object.
    pub rows: Vec<(String, u64)>,
    /// Extra custom objects.
    pub extra_objects: usize,
    /// Added latency per API round trip, ms.
    pub latency_ms: u64,
    /// Bulk job queued time, ms.
    pub bulk_queued_ms: u64,
    /// Bulk job running time, ms.
    pub bulk_running_ms: u64,
    /// Download bandwidth per connection, MB/s (0: unlimited).
    pub bandwidth_mb_per_s: f64,
    /// REST-only copies of an object's fields: `(from, name)`.
    pub rest_only_copies: Vec<(String, String)>,
}

impl OrgSpec {
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--latency-ms".to_string(),
            self.latency_ms.to_string(),
            "--bulk-queued-ms".to_string(),
            self.bulk_queued_ms.to_string(),
            "--bulk-running-ms".to_string(),
            self.bulk_running_ms.to_string(),
            "--extra-objects".to_string(),
            self.extra_objects.to_string(),
        ];
        for (object, n) in &self.rows {
            args.push("--rows".to_string());
            args.push(format!("{object}={n}"));
        }
        if self.bandwidth_mb_per_s > 0.0 {
            args.push("--bandwidth-mb-per-s".to_string());
            args.push(self.bandwidth_mb_per_s.to_string());
        }
        for (from, name) in &self.rest_only_copies {
            args.push("--rest-only-copy".to_string());
            args.push(format!("{from}={name}"));
        }
        args
    }
}

/// A running emulated org in its own process; stops when dropped.
pub struct Org {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The login info line (`login_url`, `client_id`, `client_secret`, `refresh_token`, `objects`).
    pub login: Value,
    authority: String,
}

impl Org {
    /// Starts `bench_org` and waits for its login line.
    pub fn start(binary: &Path, spec: &OrgSpec) -> Result<Org> {
        let mut child = Command::new(binary)
            .args(spec.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("no stdout from bench_org")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("cannot read the org's login line")?;
        let login: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("bench_org printed {line:?} instead of its login line: {e}");
            }
        };
        let base = login["login_url"].as_str().unwrap_or_default();
        let authority = bench_http::authority(base)?;
        Ok(Org {
            child,
            stdin,
            login,
            authority,
        })
    }

    /// `host:port` of the org.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The connector config (Airbyte source-salesforce's keys) that logs in to this org.
    pub fn connector_config(&self, extra: &[(&str, Value)]) -> Value {
        let mut config = json!({
            "client_id": self.login["client_id"],
            "client_secret": self.login["client_secret"],
            "refresh_token": self.login["refresh_token"],
            "login_url": self.login["login_url"],
        });
        for (k, v) in extra {
            config[*k] = v.clone();
        }
        config
    }

    /// Requests served so far.
    pub fn calls(&self) -> Result<Calls> {
        let stats =
            bench_http::send(&self.authority, "GET", "/__admin/stats", &[], None)?.json()?;
        Ok(Calls::from_stats(&stats))
    }

    /// Applies a mutation (`POST /__admin/mutate`); returns the org's answer.
    pub fn mutate(&self, mutation: &Value) -> Result<Value> {
        let body = mutation.to_string();
        let answer = bench_http::send(
            &self.authority,
            "POST",
            "/__admin/mutate",
            &[],
            Some(("application/json", body.as_bytes())),
        )?
        .json()?;
        if let Some(errors) = answer["errors"].as_array().filter(|e| !e.is_empty()) {
            bail!("mutation {mutation} failed: {errors:?}");
        }
        Ok(answer)
    }

    /// Moves the org clock forward.
    pub fn advance_clock(&self, secs: i64) -> Result<()> {
        let body = json!({ "advance_secs": secs }).to_string();
        bench_http::send(
            &self.authority,
            "POST",
            "/__admin/clock",
            &[],
            Some(("application/json", body.as_bytes())),
        )?
        .json()?;
        Ok(())
    }

    /// CPU seconds the org process has used so far.
    pub fn cpu_secs(&self) -> f64 {
        proc_cpu_secs(self.child.id()).unwrap_or(0.0)
    }
}

impl Drop for Org {
    fn drop(&mut self) {
        // Closing stdin asks the org to stop; kill it if it does not within a second.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) of a live process, from `/proc/<pid>/stat`.
fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_from_stat(&stat, 13)
}

/// CPU seconds of the children this process has waited for (`cutime + cstime` of
/// `/proc/self/stat`).
fn children_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| cpu_from_stat(&s, 15))
        .unwrap_or(0.0)
}

/// Sums two consecutive tick fields of a `/proc/<pid>/stat` line, `first` being the 0-based
/// index of the first field after the command name's closing parenthesis... counted as in
/// `proc(5)` (field 14 `utime` is index 13).
fn cpu_from_stat(stat: &str, first: usize) -> Option<f64> {
    // The command name may hold spaces: fields start after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), i.e. index 2.
    let a: f64 = fields.get(first - 2)?.parse().ok()?;
    let b: f64 = fields.get(first - 1)?.parse().ok()?;
    Some((a + b) / CLOCK_TICKS_PER_SEC)
}

/// CPU seconds all processes have used since boot (`/proc/stat`'s `cpu` line: user, nice,
/// system, irq, softirq, steal).
pub fn system_busy_secs() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| busy_from_proc_stat(&t))
        .unwrap_or(0.0)
}

fn busy_from_proc_stat(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| ticks.get(i).copied().unwrap_or(0.0))
        .sum::<f64>();
    Some(busy / CLOCK_TICKS_PER_SEC)
}

/// Waits until the machine has been idle for a second (less than `max_busy` of its cores busy),
/// at most `max_wait`; returns whether it became idle. Other people's builds on a shared machine
/// would otherwise land in the middle of a measurement.
pub fn wait_for_quiet(max_wait: Duration, max_busy: f64) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let deadline = Instant::now() + max_wait;
    loop {
        let before = system_busy_secs();
        std::thread::sleep(Duration::from_secs(1));
        let busy = (system_busy_secs() - before) / cores;
        if busy < max_busy {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// `VmHWM` (peak resident set) of a live process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What a connector run produced and cost.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Wall time from start to exit.
    pub seconds: f64,
    /// CPU seconds of the connector (user + system).
    pub cpu_secs: f64,
    /// Peak resident set of the connector (VmHWM sampled every 10 ms), KiB.
    pub peak_rss_kib: u64,
    /// Bytes written to stdout.
    pub bytes: u64,
    /// RECORD messages.
    pub records: u64,
    /// RECORD messages per stream.
    pub records_by_stream: Vec<(String, u64)>,
    /// Every message that is not a RECORD (states, logs, traces), in order.
    pub other_messages: Vec<Value>,
}

impl RunResult {
    /// The last STATE message of each stream (`state` objects), as a state file holds them.
    pub fn final_states(&self) -> Vec<Value> {
        let mut last: Vec<(String, Value)> = Vec::new();
        for m in &self.other_messages {
            if m["type"] != "STATE" {
                continue;
            }
            let name = m["state"]["stream"]["stream_descriptor"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match last.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = m["state"].clone(),
                None => last.push((name, m["state"].clone())),
            }
        }
        last.into_iter().map(|(_, v)| v).collect()
    }

    /// The sync's TRACE error messages, if any (not a failed stream's own, which the sync's
    /// repeats).
    pub fn errors(&self) -> Vec<String> {
        self.other_messages
            .iter()
            .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
            .filter(|m| m["trace"]["error"].get("stream_descriptor").is_none())
            .map(|m| {
                m["trace"]["error"]["message"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    }
}

/// Counts a stream of Airbyte messages without keeping the records: bytes, RECORD lines per
/// stream, and the other messages parsed.
#[derive(Default)]
pub struct MessageCounter {
    bytes: u64,
    by_stream: Vec<(String, u64)>,
    line: Vec<u8>,
    others: Vec<Value>,
}

/// What a [`MessageCounter`] saw.
#[derive(Debug, Default)]
pub struct Counted {
    /// Bytes.
    pub bytes: u64,
    /// RECORD messages per stream, in order of first appearance.
    pub by_stream: Vec<(String, u64)>,
    /// The other messages, parsed.
    pub others: Vec<Value>,
}

/// A RECORD line as the CLI writes it starts with this (any other layout is parsed as JSON).
const RECORD_PREFIX: &[u8] = b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"";
/// How much of a RECORD line is kept: enough for the stream name.
const RECORD_KEEP: usize = 256;

impl MessageCounter {
    /// Takes the next piece of output. The reader shares the machine with the connector and
    /// the org, so it spends as little as it can: line ends found with `memchr`, no allocation
    /// per record.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.bytes += data.len() as u64;
        while let Some(pos) = memchr::memchr(b'\n', data) {
            self.line_part(&data[..pos]);
            self.end_line();
            data = &data[pos + 1..];
        }
        self.line_part(data);
    }

    /// Keeps the head of a RECORD line, or the whole of any other line.
    fn line_part(&mut self, mut part: &[u8]) {
        if self.line.len() < RECORD_PREFIX.len() {
            let n = (RECORD_PREFIX.len() - self.line.len()).min(part.len());
            self.line.extend_from_slice(&part[..n]);
            part = &part[n..];
        }
        let room = if self.line.starts_with(RECORD_PREFIX) {
            RECORD_KEEP.saturating_sub(self.line.len())
        } else {
            part.len()
        };
        self.line.extend_from_slice(&part[..room.min(part.len())]);
    }

    fn count(&mut self, stream: &str) {
        match self.by_stream.iter_mut().find(|(s, _)| s == stream) {
            Some(slot) => slot.1 += 1,
            None => self.by_stream.push((stream.to_string(), 1)),
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let fast_name = line
            .strip_prefix(RECORD_PREFIX)
            .and_then(|rest| rest.iter().position(|&b| b == b'"').map(|end| &rest[..end]))
            .filter(|name| !name.contains(&b'\\'))
            .and_then(|name| std::str::from_utf8(name).ok());
        if let Some(name) = fast_name {
            self.count(name);
        } else if !line.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(&line) {
                Ok(v) if v["type"] == "RECORD" => {
                    let name = v["record"]["stream"].as_str().unwrap_or("?").to_string();
                    self.count(&name);
                }
                Ok(v) => self.others.push(v),
                Err(_) => self.others.push(json!({
                    "type": "NOT_JSON",
                    "line": String::from_utf8_lossy(&line[..line.len().min(200)]),
                })),
            }
        }
        self.line = line;
        self.line.clear();
    }

    /// Ends the stream (a last line without a newline counts).
    pub fn finish(mut self) -> Counted {
        if !self.line.is_empty() {
            self.end_line();
        }
        Counted {
            bytes: self.bytes,
            by_stream: self.by_stream,
            others: self.others,
        }
    }
}

/// Starts `binary` with `args`, stdout piped, stderr into the file `log`.
pub fn spawn_connector(binary: &Path, args: &[&str], log: &Path) -> Result<Child> {
    let log_file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))
}

/// Runs `sfconnect` with `args`; stdout goes through a pipe to a reader that counts and discards
/// records (the other messages are kept, and written to `log` with the extension
/// `messages.jsonl`), stderr to `log`.
pub fn run_connector(binary: &Path, args: &[&str], log: &Path) -> Result<RunResult> {
    let cpu_before = children_cpu_secs();
    let started = Instant::now();
    let mut child = spawn_connector(binary, args, log)?;
    let pid = child.id();
    let mut stdout = child.stdout.take().context("no stdout from sfconnect")?;
    let reader = std::thread::spawn(move || {
        let mut counter = MessageCounter::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => counter.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        counter.finish()
    });
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = peak_rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let status = child.wait().context("waiting for sfconnect")?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_secs = children_cpu_secs() - cpu_before;
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let counted = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the stdout reader panicked"))?;
    let other_messages = counted.others;
    // Keep the non-record messages (logs, states, statuses) next to the stderr log.
    let messages: String = other_messages.iter().map(|m| format!("{m}\n")).collect();
    let _ = std::fs::write(log.with_extension("messages.jsonl"), messages);
    let result = RunResult {
        seconds,
        cpu_secs,
        peak_rss_kib: peak.load(Ordering::Relaxed),
        bytes: counted.bytes,
        records: counted.by_stream.iter().map(|(_, n)| n).sum(),
        records_by_stream: counted.by_stream,
        other_messages,
    };
    if !status.success() {
        bail!(
            "`sfconnect {}` failed ({status}): {}; see {}",
            args.join(" "),
            result.errors().join("; "),
            log.display()
        );
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_counts_records_per_stream_and_keeps_the_rest_across_any_split() {
        let long = "x".repeat(5000);
        let text = format!(
            concat!(
                "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"A\",\"data\":{{\"Id\":\"1\",\"Long\":\"{}\"}}}}}}\n",
                "{{\"type\":\"LOG\",\"log\":{{\"level\":\"INFO\",\"message\":\"hi\"}}}}\n",
                "{{\"record\":{{\"stream\":\"B\",\"data\":{{}}}},\"type\":\"RECORD\"}}\n",
                "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"A\",\"data\":{{\"Id\":\"2\"}}}}}}\n",
                "{{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"stream\":{{\"stream_descriptor\":{{\"name\":\"A\"}},\"stream_state\":{{\"n\":1}}}}}}}}\n",
                "{{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"stream\":{{\"stream_descriptor\":{{\"name\":\"A\"}},\"stream_state\":{{\"n\":2}}}}}}}}\n",
                "not json",
            ),
            long
        );
        for split in [1, 2, 7, 16, 17, 64, 1000, 100_000] {
            let mut counter = MessageCounter::default();
            for piece in text.as_bytes().chunks(split) {
                counter.feed(piece);
                assert!(counter.line.len() <= RECORD_KEEP.max(400), "split {split}");
            }
            let counted = counter.finish();
            assert_eq!(counted.bytes, text.len() as u64, "split {split}");
            assert_eq!(
                counted.by_stream,
                vec![("A".to_string(), 2), ("B".to_string(), 1)],
                "split {split}"
            );
            let others = counted.others;
            assert_eq!(others.len(), 4, "split {split}");
            assert_eq!(others[0]["log"]["message"], "hi");
            assert_eq!(others[3]["type"], "NOT_JSON");
            let run = RunResult {
                other_messages: others,
                ..RunResult::default()
            };
            let states = run.final_states();
            assert_eq!(states.len(), 1);
            assert_eq!(states[0]["stream"]["stream_state"]["n"], 2);
            assert!(run.errors().is_empty());
        }
    }

    #[test]
    fn proc_stat_fields_are_read_after_the_command_name() {
        // pid (comm with spaces) state ppid ... utime(14) stime(15) cutime(16) cstime(17)
        let stat = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 1000 500 20 0";
        assert_eq!(cpu_from_stat(stat, 13), Some(3.0));
        assert_eq!(cpu_from_stat(stat, 15), Some(15.0));
        assert_eq!(cpu_from_stat("garbage", 13), None);
        assert!(peak_rss_kib(std::process::id()).is_some_and(|k| k > 0));
        let stat = "cpu  100 5 50 9000 7 3 2 40 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(busy_from_proc_stat(stat), Some(2.0));
        assert_eq!(busy_from_proc_stat("intr 1 2"), None);
        assert!(system_busy_secs() > 0.0);
        assert!(proc_cpu_secs(std::process::id()).is_some());
    }

    #[test]
    fn calls_subtract_and_list_their_kinds() {
        let stats = json!({
            "requests": {"token": 2, "describe": 5, "composite": 1, "composite_batch": 2, "composite_subrequests": 3, "batch_subrequests": 2, "query": 3, "bulk_poll": 4, "bulk_result_pages": 1, "get_deleted": 2, "limits": 1},
            "api_usage": {"used": 9, "max": 100}
        });
        let after = Calls::from_stats(&stats);
        let before = Calls::of(json!({"token": 1, "query": 1}), 3);
        let d = after.since(&before);
        assert_eq!(d.n("token"), 1);
        assert_eq!(d.n("query"), 2);
        assert_eq!(d.api, 6);
        assert_eq!(d.other(), 1);
        assert_eq!((d.n("composite"), d.n("composite_batch")), (1, 2));
        assert_eq!(
            (d.n("composite_subrequests"), d.n("batch_subrequests")),
            (3, 2)
        );
        assert_eq!(
            d.by_kind(),
            "login 1, describe 5, composite 1, composite/batch 2, query 2, poll 4, page lists 1, \
             getDeleted 2, other 1"
        );
    }
}
