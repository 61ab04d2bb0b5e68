//! `sfconnect demo`: a whole sync against an in-process emulated org, written to a folder.

use std::io::{BufRead, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use fixtures::{EmulatedOrg, Mutation, OrgConfig, RequestCounts, Scale};
use serde_json::{json, Value};

use crate::commands;
use crate::protocol::Output;

/// Objects the demo changes between the two reads.
const MUTATED: [&str; 4] = ["Account", "Contact", "Opportunity", "Invoice__c"];

/// What one step did, read back from the file it wrote.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StepSummary {
    /// The step's name.
    pub step: String,
    /// The messages file.
    pub file: PathBuf,
    /// Streams with at least one record or state.
    pub streams: usize,
    /// RECORD messages.
    pub records: u64,
    /// Records with `IsDeleted: true`.
    pub deletes: u64,
    /// STATE messages.
    pub states: u64,
    /// HTTP requests by kind, as the org counted them (describes inside a composite call are
    /// counted as describes too).
    pub calls: RequestCounts,
    /// API calls charged against the org's daily limit (a composite call counts once).
    pub charged: u64,
    /// Wall time.
    pub seconds: f64,
    /// The run report of a read step.
    pub report: Option<PathBuf>,
}

fn file_output(path: &Path) -> Result<Arc<Output>> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Arc::new(Output::new(Box::new(BufWriter::new(file)))))
}

/// Reads a messages file back: counts, and the last state of each stream.
pub fn summarise(step: &str, file: &Path) -> Result<(StepSummary, Vec<Value>)> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let mut summary = StepSummary {
        step: step.to_string(),
        file: file.to_path_buf(),
        ..StepSummary::default()
    };
    let mut streams = std::collections::BTreeSet::new();
    let mut last_states: std::collections::BTreeMap<String, Value> = Default::default();
    for line in reader.lines() {
        let line = line?;
        let message: Value = serde_json::from_str(&line)
            .with_context(|| format!("{} holds a line that is not JSON", file.display()))?;
        match message["type"].as_str() {
            Some("RECORD") => {
                summary.records += 1;
                if message["record"]["data"]["IsDeleted"] == json!(true) {
                    summary.deletes += 1;
                }
                if let Some(s) = message["record"]["stream"].as_str() {
                    streams.insert(s.to_string());
                }
            }
            Some("STATE") => {
                summary.states += 1;
                if let Some(s) = message["state"]["stream"]["stream_descriptor"]["name"].as_str() {
                    streams.insert(s.to_string());
                    last_states.insert(s.to_string(), message["state"].clone());
                }
            }
            _ => {}
        }
    }
    summary.streams = streams.len();
    Ok((summary, last_states.into_values().collect()))
}

fn calls_between(before: &RequestCounts, after: &RequestCounts) -> RequestCounts {
    RequestCounts {
        token: after.token - before.token,
        describe_global: after.describe_global - before.describe_global,
        describe: after.describe - before.describe,
        composite: after.composite - before.composite,
        composite_batch: after.composite_batch - before.composite_batch,
        composite_describes: after.composite_describes - before.composite_describes,
        composite_subrequests: after.composite_subrequests - before.composite_subrequests,
        batch_subrequests: after.batch_subrequests - before.batch_subrequests,
        query: after.query - before.query,
        query_more: after.query_more - before.query_more,
        bulk_create: after.bulk_create - before.bulk_create,
        bulk_poll: after.bulk_poll - before.bulk_poll,
        bulk_results: after.bulk_results - before.bulk_results,
        bulk_result_pages: after.bulk_result_pages - before.bulk_result_pages,
        bulk_abort: after.bulk_abort - before.bulk_abort,
        bulk_delete: after.bulk_delete - before.bulk_delete,
        limits: after.limits - before.limits,
        get_deleted: after.get_deleted - before.get_deleted,
        other: after.other - before.other,
    }
}

/// HTTP requests to the API: every kind counted, less the subrequests of composite envelopes
/// (counted under their own kind too: a describe, a getDeleted), so an envelope is one request
/// however much it carries.
fn total_requests(c: &RequestCounts) -> u64 {
    let every = c.describe_global
        + c.describe
        + c.composite
        + c.composite_batch
        + c.query
        + c.query_more
        + c.bulk_create
        + c.bulk_poll
        + c.bulk_results
        + c.bulk_result_pages
        + c.bulk_abort
        + c.bulk_delete
        + c.limits
        + c.get_deleted
        + c.other;
    every.saturating_sub(c.composite_subrequests + c.batch_subrequests)
}

/// Builds a configured catalog selecting every discovered stream: incremental (append + dedup on
/// `Id`) where the stream supports it, full refresh (overwrite) otherwise.
pub fn configured_catalog(catalog_message: &Value) -> Value {
    let streams: Vec<Value> = catalog_message["catalog"]["streams"]
        .as_array()
        .map(|s| s.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|stream| {
            let incremental = stream["supported_sync_modes"]
                .as_array()
                .is_some_and(|m| m.iter().any(|v| v == "incremental"));
            let mut entry = json!({
                "stream": stream,
                "sync_mode": if incremental { "incremental" } else { "full_refresh" },
                "destination_sync_mode": if incremental { "append_dedup" } else { "overwrite" },
            });
            if incremental {
                entry["cursor_field"] = stream["default_cursor_field"].clone();
            }
            if let Some(pk) = stream.get("source_defined_primary_key") {
                entry["primary_key"] = pk.clone();
            }
            entry
        })
        .collect();
    json!({"streams": streams})
}

/// Runs the demo in `dir`; returns what each step did.
pub async fn run(dir: &Path, seed: u64, scale: Scale) -> Result<Vec<StepSummary>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let org = EmulatedOrg::start(OrgConfig::new(seed, scale))
        .await
        .context("cannot start the emulated org")?;
    let control = org.control();
    let info = org.login_info();
    let config = json!({
        "client_id": info.client_id,
        "client_secret": info.client_secret,
        "refresh_token": info.refresh_token,
        "login_url": info.login_url,
    });
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config)?)?;
    let mut steps = Vec::new();

    // check
    let before = control.stats();
    let started = Instant::now();
    let file = dir.join("check.jsonl");
    let out = file_output(&file)?;
    crate::check::run(&config_path, None, out.clone())
        .await
        .map_err(|f| anyhow::anyhow!("check: {f}"))?;
    out.flush()?;
    let (mut s, _) = summarise("check", &file)?;
    let after = control.stats();
    s.calls = calls_between(&before.requests, &after.requests);
    s.charged = after.api_usage.used.saturating_sub(before.api_usage.used);
    s.seconds = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string(&file)?;
    if !status.contains("\"SUCCEEDED\"") {
        bail!("the connection check failed; see {}", file.display());
    }
    steps.push(s);

    // discover
    let before = control.stats();
    let started = Instant::now();
    let file = dir.join("discover.jsonl");
    let out = file_output(&file)?;
    let catalog = commands::discover(&config_path, out.clone())
        .await
        .map_err(|f| anyhow::anyhow!("discover: {f}"))?;
    out.flush()?;
    let (mut s, _) = summarise("discover", &file)?;
    s.streams = catalog["catalog"]["streams"].as_array().map_or(0, Vec::len);
    let after = control.stats();
    s.calls = calls_between(&before.requests, &after.requests);
    s.charged = after.api_usage.used.saturating_sub(before.api_usage.used);
    s.seconds = started.elapsed().as_secs_f64();
    steps.push(s);
    let catalog_path = dir.join("configured_catalog.json");
    std::fs::write(
        &catalog_path,
        serde_json::to_string_pretty(&configured_catalog(&catalog))?,
    )?;

    // first read: everything
    let state_1 = dir.join("state-1.json");
    steps.push(
        read_step(
            &control,
            "read (first sync)",
            &config_path,
            &catalog_path,
            None,
            &dir.join("read-1.jsonl"),
            &state_1,
        )
        .await?,
    );

    // change the org: inserts, updates and deletes, then let the org clock move past them
    for object in MUTATED {
        let result = control.mutate(Mutation::new(object).insert(5).update(5).delete(2));
        if !result.errors.is_empty() {
            bail!("mutating {object} failed: {}", result.errors.join("; "));
        }
    }
    control.advance_clock(120);

    // second read: incremental from the state of the first
    let state_2 = dir.join("state-2.json");
    steps.push(
        read_step(
            &control,
            "read (incremental)",
            &config_path,
            &catalog_path,
            Some(&state_1),
            &dir.join("read-2.jsonl"),
            &state_2,
        )
        .await?,
    );
    org.shutdown().await;
    Ok(steps)
}

async fn read_step(
    control: &fixtures::OrgControl,
    step: &str,
    config: &Path,
    catalog: &Path,
    state: Option<&Path>,
    file: &Path,
    state_out: &Path,
) -> Result<StepSummary> {
    let before = control.stats();
    let started = Instant::now();
    let out = file_output(file)?;
    let report = file.with_extension("report.json");
    commands::read(config, catalog, state, Some(&report), out.clone())
        .await
        .map_err(|f| anyhow::anyhow!("{step}: {f}"))?;
    out.flush()?;
    let (mut s, states) = summarise(step, file)?;
    let after = control.stats();
    s.calls = calls_between(&before.requests, &after.requests);
    s.charged = after.api_usage.used.saturating_sub(before.api_usage.used);
    s.seconds = started.elapsed().as_secs_f64();
    s.report = Some(report);
    std::fs::write(
        state_out,
        serde_json::to_string_pretty(&Value::Array(states))?,
    )?;
    Ok(s)
}

/// The summary table.
pub fn table(steps: &[StepSummary]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<20} {:>7} {:>8} {:>7} {:>6} {:>8} {:>8}  {:<40} {:>7}\n",
        "step",
        "streams",
        "records",
        "deletes",
        "states",
        "requests",
        "charged",
        "by kind",
        "seconds"
    ));
    for s in steps {
        let c = &s.calls;
        let kinds = format!(
            "query {} more {} bulk {}/{}/{} meta {}",
            c.query,
            c.query_more,
            c.bulk_create,
            c.bulk_poll,
            c.bulk_results,
            c.composite + c.composite_batch + c.describe_global
        );
        out.push_str(&format!(
            "{:<20} {:>7} {:>8} {:>7} {:>6} {:>8} {:>8}  {:<40} {:>7.2}\n",
            s.step,
            s.streams,
            s.records,
            s.deletes,
            s.states,
            total_requests(c),
            s.charged,
            kinds,
            s.seconds
        ));
    }
    out.push_str(
        "requests: HTTP calls to the API; charged: what the org's daily API limit counted (a \
         composite call counts once, whatever it carries: 25 describes, or 25 streams' \
         getDeleted)\nbulk = jobs created/polls/result pages; meta = describeGlobal and \
         composite calls; deletes = records with IsDeleted: true (soft deletes read through \
         queryAll, and tombstones of hard deletes)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_one_request_whatever_it_carries() {
        // 2 composite envelopes carrying 3 describes and 16 getDeleted, a composite/batch
        // envelope of 2 queries, 21 queries in all, 1 getDeleted asked alone, 2 /limits.
        let c = RequestCounts {
            composite: 2,
            composite_subrequests: 19,
            describe: 3,
            get_deleted: 17,
            composite_batch: 1,
            batch_subrequests: 2,
            query: 21,
            limits: 2,
            ..RequestCounts::default()
        };
        assert_eq!(total_requests(&c), 2 + 1 + (21 - 2) + 1 + 2);
        assert_eq!(total_requests(&RequestCounts::default()), 0);
    }
}
