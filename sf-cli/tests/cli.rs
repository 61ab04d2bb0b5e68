#![allow(clippy::unwrap_used)]
//! Process-level tests of `sfconnect` against the emulated org.

use std::path::{Path, PathBuf};
use std::process::Output;

use fixtures::{EmulatedOrg, OrgConfig, Scale};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_sfconnect");

struct Env {
    org: EmulatedOrg,
    dir: PathBuf,
}

impl Env {
    async fn new(name: &str) -> Env {
        Env::with(name, OrgConfig::new(7, Scale::Tiny)).await
    }

    async fn with(name: &str, org: OrgConfig) -> Env {
        let org = EmulatedOrg::start(org).await.unwrap();
        let dir = std::env::temp_dir().join(format!("sfconnect-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Env { org, dir }
    }

    /// A config reading the whole history (the emulated org has rows older than two years).
    fn config(&self) -> Value {
        let info = self.org.login_info();
        json!({
            "client_id": info.client_id,
            "client_secret": info.client_secret,
            "refresh_token": info.refresh_token,
            "login_url": info.login_url,
            "start_date": "2000-01-01",
        })
    }

    fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path
    }

    /// `sfconnect read --config C --catalog K [--state S]`.
    async fn read(&self, config: &str, catalog: &str, state: Option<&str>) -> Run {
        let mut args = vec!["read", "--config", config, "--catalog", catalog];
        if let Some(state) = state {
            args.extend(["--state", state]);
        }
        self.run(&args).await
    }

    /// Runs the binary off the async runtime (the org keeps serving meanwhile).
    async fn run(&self, args: &[&str]) -> Run {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let dir = self.dir.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(BIN)
                .args(&args)
                .current_dir(dir)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        Run::new(output)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Run {
    code: i32,
    messages: Vec<Value>,
    stdout: String,
    stderr: String,
}

const KNOWN_TYPES: [&str; 9] = [
    "SPEC",
    "CONNECTION_STATUS",
    "CATALOG",
    "RECORD",
    "STATE",
    "LOG",
    "TRACE",
    "CONTROL",
    "ESTIMATE",
];

impl Run {
    fn new(output: Output) -> Run {
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        let messages: Vec<Value> = stdout
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                let t = v["type"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no type: {line}"));
                assert!(KNOWN_TYPES.contains(&t), "unknown message type {t}");
                v
            })
            .collect();
        Run {
            code: output.status.code().unwrap_or(-1),
            messages,
            stdout,
            stderr,
        }
    }

    fn of_type(&self, t: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == t).collect()
    }

    fn records(&self, stream: &str) -> Vec<&Value> {
        self.of_type("RECORD")
            .into_iter()
            .filter(|m| m["record"]["stream"] == stream)
            .map(|m| &m["record"]["data"])
            .collect()
    }

    /// The sync's TRACE error (a failed stream's own, naming it, comes before).
    fn trace_error(&self) -> &Value {
        self.messages
            .iter()
            .find(|m| {
                m["type"] == "TRACE"
                    && m["trace"]["type"] == "ERROR"
                    && m["trace"]["error"].get("stream_descriptor").is_none()
            })
            .unwrap_or_else(|| panic!("no TRACE error in:\n{}\n{}", self.stdout, self.stderr))
    }
}

fn configured(catalog: &Value, streams: &[(&str, &str)]) -> Value {
    let all = catalog["catalog"]["streams"].as_array().unwrap();
    let chosen: Vec<Value> = streams
        .iter()
        .map(|(name, mode)| {
            let stream = all
                .iter()
                .find(|s| s["name"] == *name)
                .unwrap_or_else(|| panic!("{name} not discovered"));
            let mut entry = json!({
                "stream": stream,
                "sync_mode": mode,
                "destination_sync_mode": if *mode == "incremental" { "append_dedup" } else { "overwrite" },
                // fields the platform sends that this connector does not use
                "generation_id": 3, "minimum_generation_id": 0, "sync_id": 42,
            });
            if *mode == "incremental" {
                entry["cursor_field"] = stream["default_cursor_field"].clone();
                entry["primary_key"] = json!([["Id"]]);
            }
            entry
        })
        .collect();
    json!({"streams": chosen})
}

async fn discovered(env: &Env, config: &Path) -> Value {
    let run = env
        .run(&["discover", "--config", config.to_str().unwrap()])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.of_type("CATALOG")[0].clone()
}

fn ids(records: &[&Value]) -> std::collections::BTreeSet<String> {
    records
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn spec_is_a_json_schema_for_every_config_key() {
    let env = Env::new("spec").await;
    let run = env.run(&["spec"]).await;
    assert_eq!(run.code, 0);
    assert_eq!(run.messages.len(), 1);
    let spec = &run.messages[0]["spec"]["connectionSpecification"];
    assert_eq!(spec["type"], "object");
    for key in [
        "client_id",
        "client_secret",
        "refresh_token",
        "is_sandbox",
        "auth_type",
        "start_date",
        "end_date",
        "streams_criteria",
        "stream_slice_step",
        "lookback_window",
        "force_use_bulk_api",
        "preserve_na_values",
        "login_url",
        "api_version",
        "num_workers",
        "api_budget",
    ] {
        assert!(
            spec["properties"][key].is_object(),
            "{key} missing from the spec"
        );
    }
    assert_eq!(spec["properties"]["client_secret"]["airbyte_secret"], true);
    assert_eq!(spec["properties"]["refresh_token"]["airbyte_secret"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_succeeds_and_fails_with_a_status() {
    let env = Env::new("check").await;
    let good = env.write("config", &env.config());
    let run = env
        .run(&["check", "--config", good.to_str().unwrap()])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"],
        "SUCCEEDED"
    );

    let mut bad = env.config();
    bad["client_secret"] = json!("wrong-secret");
    let bad = env.write("bad.conf", &bad);
    let run = env.run(&["check", "--config", bad.to_str().unwrap()]).await;
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("client_secret"),
        "{status}"
    );
    assert!(!run.stdout.contains("wrong-secret") && !run.stderr.contains("wrong-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_lists_streams_and_describe() {
    let env = Env::new("discover").await;
    let config = env.write("config.json", &env.config());
    let catalog = discovered(&env, &config).await;
    let streams = catalog["catalog"]["streams"].as_array().unwrap();
    let account = streams.iter().find(|s| s["name"] == "Account").unwrap();
    assert_eq!(account["default_cursor_field"], json!(["SystemModstamp"]));
    assert_eq!(account["source_defined_primary_key"], json!([["Id"]]));
    assert!(account["json_schema"]["properties"]["BillingAddress"].is_object());
    assert!(streams.iter().any(|s| s["name"] == "Describe"));
    assert!(streams.iter().any(|s| s["name"] == "User"));
}

#[tokio::test(flavor = "multi_thread")]
async fn read_equals_the_org_and_resumes_from_state() {
    let env = Env::new("read").await;
    let config = env.write("config", &env.config());
    let catalog = discovered(&env, &config).await;
    let catalog_file = env.write(
        "catalog",
        &configured(
            &catalog,
            &[
                ("Account", "incremental"),
                ("Contact", "full_refresh"),
                ("Invoice__c", "incremental"),
            ],
        ),
    );
    let state = env.write("state", &json!([]));
    let run = env
        .read(
            config.to_str().unwrap(),
            catalog_file.to_str().unwrap(),
            Some(state.to_str().unwrap()),
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for stream in ["Account", "Contact", "Invoice__c"] {
        let truth = env.org.control().truth(stream);
        let live: Vec<&Value> = truth
            .iter()
            .filter(|r| r["IsDeleted"] != json!(true))
            .collect();
        let got = run.records(stream);
        assert!(!got.is_empty(), "{stream}: no records");
        // Incremental streams read queryAll (deleted rows too); full refresh at least every live row.
        assert!(ids(&got).is_superset(&ids(&live)), "{stream}: rows missing");
        for r in run.of_type("RECORD") {
            assert!(r["record"]["emitted_at"].is_i64());
        }
    }
    let states = run.of_type("STATE");
    assert!(!states.is_empty());
    let last_states: Vec<Value> = ["Account", "Invoice__c"]
        .iter()
        .map(|s| {
            states
                .iter()
                .rev()
                .find(|m| m["state"]["stream"]["stream_descriptor"]["name"] == *s)
                .unwrap()["state"]
                .clone()
        })
        .collect();
    // Change the org, then read again from the state: only changes come back.
    let changed = env.org.control().mutate(
        fixtures::Mutation::new("Account")
            .insert(2)
            .update(2)
            .delete(1),
    );
    env.org.control().advance_clock(120);
    let state = env.write("state2", &Value::Array(last_states));
    let catalog_file = env.write(
        "catalog2",
        &configured(
            &catalog,
            &[("Account", "incremental"), ("Invoice__c", "incremental")],
        ),
    );
    let run = env
        .read(
            config.to_str().unwrap(),
            catalog_file.to_str().unwrap(),
            Some(state.to_str().unwrap()),
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = ids(&run.records("Account"));
    for id in changed
        .inserted
        .iter()
        .chain(&changed.updated)
        .chain(&changed.deleted)
    {
        assert!(got.contains(id), "change {id} not read");
    }
    let account = run.records("Account");
    let deleted = account
        .iter()
        .find(|r| r["Id"] == json!(changed.deleted[0]))
        .unwrap();
    assert_eq!(deleted["IsDeleted"], true);
    // Far fewer records than the first read: only the lookback window and the changes.
    assert!(
        run.records("Account").len() < 50,
        "{}",
        run.records("Account").len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_get_a_trace_naming_file_and_fix() {
    let env = Env::new("badfiles").await;
    let config = env.write("config.json", &env.config());
    let catalog = discovered(&env, &config).await;
    let good_catalog = env.write(
        "catalog.json",
        &configured(&catalog, &[("Account", "full_refresh")]),
    );

    // missing config file
    let run = env
        .read("nope.json", good_catalog.to_str().unwrap(), None)
        .await;
    assert_ne!(run.code, 0);
    let error = &run.trace_error()["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("config file `nope.json` does not exist"),
        "{error}"
    );

    // invalid JSON in the catalog
    std::fs::write(env.dir.join("broken"), "{\"streams\": [").unwrap();
    let run = env.read(config.to_str().unwrap(), "broken", None).await;
    assert_ne!(run.code, 0);
    let message = run.trace_error()["trace"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("catalog file `broken` is not valid JSON"),
        "{message}"
    );

    // a bad config value
    let mut bad = env.config();
    bad["stream_slice_step"] = json!("P221S");
    let bad = env.write("bad-config", &bad);
    let run = env
        .read(bad.to_str().unwrap(), good_catalog.to_str().unwrap(), None)
        .await;
    assert_ne!(run.code, 0);
    let message = run.trace_error()["trace"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("stream_slice_step"), "{message}");

    // a stream unknown to the org
    let mut unknown = configured(&catalog, &[("Account", "full_refresh")]);
    unknown["streams"][0]["stream"]["name"] = json!("Nope__c");
    let unknown = env.write("unknown-stream", &unknown);
    let run = env
        .read(config.to_str().unwrap(), unknown.to_str().unwrap(), None)
        .await;
    assert_ne!(run.code, 0);
    let error = &run.trace_error()["trace"]["error"];
    assert!(
        error["message"].as_str().unwrap().contains("Nope__c"),
        "{error}"
    );
    assert!(run.of_type("RECORD").is_empty());

    // a selected field that no longer exists: since issue 15 the stream is read without it and a
    // WARN LOG names it with the fix (the stream fails only when nothing selected is left)
    let mut gone = configured(&catalog, &[("Account", "full_refresh")]);
    gone["streams"][0]["stream"]["json_schema"]["properties"]["Gone__c"] =
        json!({"type": ["null", "string"]});
    let gone = env.write("gone-field", &gone);
    let run = env
        .read(config.to_str().unwrap(), gone.to_str().unwrap(), None)
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let warned: Vec<&str> = run
        .of_type("LOG")
        .into_iter()
        .filter(|m| m["log"]["level"] == "WARN")
        .filter_map(|m| m["log"]["message"].as_str())
        .filter(|m| m.contains("Gone__c"))
        .collect();
    assert_eq!(warned.len(), 1, "{}", run.stdout);
    assert!(
        warned[0].contains("Account") && warned[0].contains("refresh the schema"),
        "{}",
        warned[0]
    );
    let records = run.records("Account");
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| r.get("Gone__c").is_none()));

    // a bad state file, for an incremental stream (one read in full reads no state)
    std::fs::write(env.dir.join("state"), "{\"Account\": 5}").unwrap();
    let incremental = env.write(
        "incremental.json",
        &configured(&catalog, &[("Account", "incremental")]),
    );
    let run = env
        .read(
            config.to_str().unwrap(),
            incremental.to_str().unwrap(),
            Some("state"),
        )
        .await;
    assert_ne!(run.code, 0);
    let message = run.trace_error()["trace"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("state file `state`"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_state_and_full_refresh_only_streams() {
    let env = Env::new("legacy").await;
    let config = env.write("config.json", &env.config());
    let catalog = discovered(&env, &config).await;
    let streams = catalog["catalog"]["streams"].as_array().unwrap();
    let full_only = streams
        .iter()
        .find(|s| s["supported_sync_modes"] == json!(["full_refresh"]) && s["name"] != "Describe")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    // Ask for incremental on a stream that only supports full refresh: read in full, with a warning.
    let mut asked = configured(
        &catalog,
        &[(&full_only, "full_refresh"), ("Account", "incremental")],
    );
    asked["streams"][0]["sync_mode"] = json!("incremental");
    let asked = env.write("catalog.json", &asked);
    // Airbyte's legacy whole-state object.
    let state = env.write(
        "state.json",
        &json!({"Account": {"SystemModstamp": "2100-01-01T00:00:00.000Z"}}),
    );
    let run = env
        .read(
            config.to_str().unwrap(),
            asked.to_str().unwrap(),
            Some(state.to_str().unwrap()),
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let warned = run.of_type("LOG").iter().any(|m| {
        m["log"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&full_only)
    });
    assert!(warned, "no warning about {full_only}: {}", run.stdout);
    assert!(!run.records(&full_only).is_empty() || env.org.control().truth(&full_only).is_empty());
    // A legacy state in the future: nothing of Account is read again.
    assert!(run.records("Account").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_writes_every_step_and_its_summary_matches_the_files() {
    let dir = std::env::temp_dir().join(format!("sfconnect-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_str = dir.to_str().unwrap().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(["demo", "--dir", &dir_str, "--scale", "tiny"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "check.jsonl",
        "discover.jsonl",
        "read-1.jsonl",
        "read-2.jsonl",
        "state-1.json",
        "configured_catalog.json",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    // The table's record counts are the files' RECORD lines.
    for (step, file) in [
        ("read (first sync)", "read-1.jsonl"),
        ("read (incremental)", "read-2.jsonl"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let records = text
            .lines()
            .filter(|l| l.contains("\"type\":\"RECORD\""))
            .count();
        let deletes = text
            .lines()
            .filter(|l| l.contains("\"type\":\"RECORD\"") && l.contains("\"IsDeleted\":true"))
            .count();
        let row = stdout.lines().find(|l| l.starts_with(step)).unwrap();
        let cols: Vec<&str> = row[step.len()..].split_whitespace().collect();
        assert_eq!(cols[1], records.to_string(), "{row}");
        assert_eq!(cols[2], deletes.to_string(), "{row}");
    }
    let second = stdout
        .lines()
        .find(|l| l.starts_with("read (incremental)"))
        .unwrap();
    let cols: Vec<&str> = second["read (incremental)".len()..]
        .split_whitespace()
        .collect();
    assert!(
        cols[2].parse::<u64>().unwrap() >= 1,
        "the incremental read saw no delete: {second}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sfconnect read` of `catalog` (slow answers, so it is still running), interrupted (SIGINT)
/// as soon as a stream has started: its exit code and stdout lines.
async fn interrupted_read(env: &Env, catalog: Value) -> (Option<i32>, Vec<String>) {
    signalled_read(env, catalog, "-INT").await
}

/// As [`interrupted_read`], with the signal `kill` sends (`-INT`, `-TERM`).
async fn signalled_read(
    env: &Env,
    catalog: Value,
    signal: &'static str,
) -> (Option<i32>, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut faults = env.org.control().faults();
    faults.latency_ms = 150;
    env.org.control().set_faults(faults);
    let config = env.write("config.json", &env.config());
    let catalog = env.write("catalog.json", &catalog);
    let dir = env.dir.clone();
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(BIN)
            .args([
                "read",
                "--config",
                config.to_str().unwrap(),
                "--catalog",
                catalog.to_str().unwrap(),
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let mut interrupted = false;
        while reader.read_line(&mut line).unwrap() > 0 {
            if !interrupted && line.contains("\"STREAM_STATUS\"") {
                // Ctrl-C as soon as the sync has started.
                std::process::Command::new("kill")
                    .args([signal, &child.id().to_string()])
                    .status()
                    .unwrap();
                interrupted = true;
            }
            lines.push(std::mem::take(&mut line));
        }
        (child.wait().unwrap().code(), lines)
    })
    .await
    .unwrap()
}

/// The TRACE error among `lines`.
fn trace_error_of(lines: &[String]) -> Value {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| {
            m["type"] == "TRACE"
                && m["trace"]["type"] == "ERROR"
                && m["trace"]["error"].get("stream_descriptor").is_none()
        })
        .unwrap_or_else(|| panic!("no TRACE error: {lines:?}"))["trace"]["error"]
        .clone()
}

const INTERRUPTED_STREAMS: [(&str, &str); 4] = [
    ("Account", "full_refresh"),
    ("Contact", "full_refresh"),
    ("Task", "full_refresh"),
    ("Opportunity", "full_refresh"),
];

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_read_is_not_a_success() {
    let env = Env::new("interrupt").await;
    let config = env.write("config.json", &env.config());
    let catalog = discovered(&env, &config).await;
    let (code, lines) = interrupted_read(&env, configured(&catalog, &INTERRUPTED_STREAMS)).await;
    assert_eq!(code, Some(1), "{lines:?}");
    let error = trace_error_of(&lines);
    assert_eq!(error["failure_type"], "transient_error");
    assert!(error["message"].as_str().unwrap().contains("interrupted"));
}

/// SIGTERM (how Airbyte's platform and most schedulers cancel a sync) stops a read as Ctrl-C
/// does: a TRACE error, a state for each stream cut short, exit 1 (it ended the process at once,
/// status 143, with no state, and Bulk jobs left running).
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_read_as_ctrl_c_does() {
    let env = Env::new("sigterm").await;
    let config = env.write("config.json", &env.config());
    let catalog = discovered(&env, &config).await;
    let (code, lines) =
        signalled_read(&env, configured(&catalog, &INTERRUPTED_STREAMS), "-TERM").await;
    assert_eq!(code, Some(1), "{lines:?}");
    let error = trace_error_of(&lines);
    assert_eq!(error["failure_type"], "transient_error");
    assert!(error["message"].as_str().unwrap().contains("interrupted"));
    let messages: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m["type"] == "TRACE" && m["trace"]["stream_status"]["status"] == "INCOMPLETE"),
        "{lines:?}"
    );
}

/// An interrupted read in which a stream had failed on its own says both, and keeps the failed
/// stream's config label: running it again would not mend that stream.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_read_still_names_the_streams_that_failed() {
    let env = Env::new("interrupt-failed").await;
    let config = env.write("config.json", &env.config());
    let catalog = discovered(&env, &config).await;
    let mut configured = configured(&catalog, &INTERRUPTED_STREAMS);
    configured["streams"].as_array_mut().unwrap().insert(
        0,
        json!({"stream": {"name": "Nope__c", "json_schema": {},
                              "supported_sync_modes": ["full_refresh"]},
                   "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}),
    );
    let (code, lines) = interrupted_read(&env, configured).await;
    assert_eq!(code, Some(1), "{lines:?}");
    let error = trace_error_of(&lines);
    assert_eq!(error["failure_type"], "config_error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("interrupted") && message.contains("`Nope__c`: "),
        "{message}"
    );
    // The interrupted streams are not said to have completed.
    assert!(message.contains("stopped early"), "{message}");
    assert!(
        !message.contains("The other 4 streams completed"),
        "{message}"
    );
}

/// A second Ctrl-C ends the process at once (exit 130) while the stop the first one began is
/// still under way: here the stop aborts a running Bulk job on an org that now takes 3 s to
/// answer. Without it the handler, installed for good by the first, would swallow the second.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_interrupt_exits_at_once() {
    let env = Env::with(
        "interrupt-twice",
        OrgConfig::new(7, Scale::Tiny).bulk_timing(60_000, 60_000),
    )
    .await;
    let mut config = env.config();
    config["force_use_bulk_api"] = json!(true);
    let config = env.write("config.json", &config);
    let catalog = discovered(&env, &config).await;
    let catalog = env.write(
        "catalog.json",
        &configured(&catalog, &[("Account", "full_refresh")]),
    );
    let control = env.org.control();
    let (config, catalog, dir) = (config.clone(), catalog.clone(), env.dir.clone());
    let (code, waited) = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(BIN)
            .args([
                "read",
                "--config",
                config.to_str().unwrap(),
                "--catalog",
                catalog.to_str().unwrap(),
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        let interrupt = || {
            std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap();
        };
        // Once the job exists, every answer takes 3 s: the stop's abort is slow.
        let started = std::time::Instant::now();
        while control.stats().requests.bulk_create == 0 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "no job"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut faults = control.faults();
        faults.latency_ms = 3_000;
        control.set_faults(faults);
        interrupt();
        // Again until it ends (a signal sent before the second wait began is not seen).
        let interrupted = std::time::Instant::now();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if let Some(status) = child.try_wait().unwrap() {
                return (status.code(), interrupted.elapsed());
            }
            if interrupted.elapsed() > std::time::Duration::from_secs(60) {
                child.kill().unwrap();
                return (None, interrupted.elapsed());
            }
            interrupt();
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(130), "after {waited:?}");
}
