//! The measured cases of `cargo xtask bench`: full-refresh reads (with the limit on the same
//! pages), discovery, the realistic-latency syncs and the component benchmarks, each against an
//! emulated org of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench::{Binaries, Quiet};
use crate::bench_catalog::{api_used, configured_catalog, selected, strings, Pick};
use crate::bench_proc::{run_connector, system_busy_secs, Calls, Org, OrgSpec, RunResult};
use crate::bench_raw::{self, RawDownload};

/// The columns the Bulk and the REST cases both select: ids, a boolean, strings, picklists, a
/// currency, an integer, datetimes and a date.
const SHARED_COLUMNS: [&str; 14] = [
    "Id",
    "IsDeleted",
    "OwnerId",
    "Name",
    "Type",
    "Phone",
    "Website",
    "Industry",
    "AnnualRevenue",
    "NumberOfEmployees",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "LastActivityDate",
];

/// The Bulk cases' other six: the address's parts and a double (none of the 20 is a compound
/// field, so the Bulk API can select them all).
pub const BULK_ONLY_COLUMNS: [&str; 6] = [
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "BillingLatitude",
];

/// The REST case's other six, with the compound `BillingAddress` (which Bulk reads as its
/// components since issue 17, so it no longer keeps Account on REST: the REST case reads
/// [`REST_OBJECT`]).
pub const REST_ONLY_COLUMNS: [&str; 6] = [
    "BillingAddress",
    "AccountNumber",
    "Rating",
    "AccountSource",
    "Description",
    "ParentId",
];

/// The object the REST case reads: a name on the Bulk API's denylist (`sf-bulk`'s
/// `BULK_UNSUPPORTED_OBJECTS`, Airbyte's too), which the benchmark's org makes a copy of
/// Account's fields (`bench_org --rest-only-copy Account=PartnerRole`), so the connector reads it
/// through REST whatever its volume, with the same columns as the Bulk cases.
pub const REST_OBJECT: &str = "PartnerRole";

/// The 20 Account columns of a read case: the shared ones and the case's `own` ones.
pub fn columns(own: &[&str]) -> Vec<String> {
    strings(&SHARED_COLUMNS)
        .into_iter()
        .chain(strings(own))
        .collect()
}

/// The six objects of the realistic-latency case, with rows over the org's three years of
/// history chosen so that the two years a default sync reads (by `SystemModstamp`) hold about
/// 40 to 3,000 of them.
pub const LATENCY_OBJECTS: [(&str, u64); 6] = [
    ("Account", 48),
    ("Contact", 450),
    ("Opportunity", 1_200),
    ("Lead", 2_250),
    ("Task", 3_000),
    ("Invoice__c", 3_600),
];

/// Changes made between the two syncs of the latency case, per object: updates, inserts,
/// deletes (50 per object, 300 in all).
pub const LATENCY_CHANGES: (usize, usize, usize) = (30, 12, 8);

/// The limit measured on the same result pages.
#[derive(Debug, Default)]
pub struct Limit {
    /// Download asking for gzip, as the connector does (bytes are compressed).
    pub raw_gzip: RawDownload,
    /// Download without compression (the CSV bytes themselves).
    pub raw_plain: RawDownload,
    /// Seconds the bare `csv` crate takes over the uncompressed pages.
    pub parse_secs: f64,
}

/// A full-refresh read of one object.
#[derive(Debug)]
pub struct Throughput {
    /// Case name.
    pub case: String,
    /// The object.
    pub object: String,
    /// Rows in the object (every one is read).
    pub rows: u64,
    /// Columns selected.
    pub columns: usize,
    /// The API the connector used, from its log.
    pub api: String,
    /// The connector run.
    pub run: RunResult,
    /// API calls during the run.
    pub calls: Calls,
    /// CPU seconds of the org process during the run.
    pub org_cpu_secs: f64,
    /// CPU seconds of every other process during the run (the benchmark's own output reader
    /// included): how much the shared machine got in the way.
    pub other_cpu_secs: f64,
    /// Configured Bulk job duration, seconds.
    pub job_secs: f64,
    /// The limit, for Bulk cases that measure it.
    pub limit: Option<Limit>,
}

/// `sfconnect discover` on a large org.
#[derive(Debug)]
pub struct Discovery {
    /// Objects in the org.
    pub objects: u64,
    /// Streams in the catalog.
    pub streams: u64,
    /// The run.
    pub run: RunResult,
    /// API calls.
    pub calls: Calls,
}

/// One sync of the latency case.
#[derive(Debug)]
pub struct SyncRun {
    /// The run.
    pub run: RunResult,
    /// API calls.
    pub calls: Calls,
}

/// The realistic-latency case.
#[derive(Debug)]
pub struct Latency {
    /// The first incremental sync.
    pub first: SyncRun,
    /// The next one, after the changes.
    pub next: SyncRun,
    /// Changes made in between.
    pub changes: u64,
    /// Bulk job duration configured, seconds.
    pub job_secs: f64,
}

/// Output of a component benchmark.
#[derive(Debug)]
pub struct Component {
    /// The command a person would run.
    pub command: String,
    /// What it printed.
    pub output: String,
}

/// A full-refresh read case.
#[derive(Debug, Clone)]
pub struct ReadCase {
    /// Its name in the tables.
    pub name: String,
    /// The object read.
    pub object: &'static str,
    /// Rows in the object.
    pub rows: u64,
    /// The fields selected.
    pub pick: Pick,
    /// The org (its `rows` are set from `object` and `rows`).
    pub spec: OrgSpec,
    /// Whether to measure the limit (raw download, bare parse) on the same pages.
    pub with_limit: bool,
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Runs `sfconnect discover` and returns the CATALOG message.
fn discover(bins: &Binaries, dir: &Path, org: &Org) -> Result<(Value, RunResult)> {
    let config = dir.join("config.json");
    write_json(&config, &org.connector_config(&[]))?;
    let run = run_connector(
        &bins.sfconnect,
        &["discover", "--config", path_str(&config)?],
        &dir.join("discover.log"),
    )?;
    let catalog = run
        .other_messages
        .iter()
        .find(|m| m["type"] == "CATALOG")
        .cloned()
        .context("discover printed no CATALOG message")?;
    Ok((catalog, run))
}

/// A read case's org, started, with its configured catalog and config written.
pub struct Prepared {
    /// The org.
    pub org: Org,
    /// The case's directory (logs, catalog, config).
    pub dir: PathBuf,
    /// The connector config file.
    pub config: PathBuf,
    /// The configured catalog file.
    pub catalog: PathBuf,
    /// The fields the catalog selects.
    pub columns: Vec<String>,
}

/// Starts a case's org (its `rows` set from the case), runs `sfconnect discover` and writes the
/// configured catalog and the config (`config_extra` on top of the login keys).
pub fn prepare(
    bins: &Binaries,
    work: &Path,
    case: &ReadCase,
    config_extra: &[(&str, Value)],
) -> Result<Prepared> {
    let (name, object, rows) = (case.name.as_str(), case.object, case.rows);
    eprintln!("bench: {name}: {rows} rows of {object}");
    let dir = work.join(name.replace([' ', ',', '/'], "_"));
    std::fs::create_dir_all(&dir)?;
    let mut spec = case.spec.clone();
    spec.rows.push((object.to_string(), rows));
    let org = Org::start(&bins.bench_org, &spec)?;
    let (catalog, _) = discover(bins, &dir, &org)?;
    let configured = configured_catalog(&catalog, &[(object, case.pick.clone(), false)])?;
    let columns = selected(&configured);
    let catalog_path = dir.join("catalog.json");
    write_json(&catalog_path, &configured)?;
    let config = dir.join("config.json");
    write_json(&config, &org.connector_config(config_extra))?;
    Ok(Prepared {
        org,
        dir,
        config,
        catalog: catalog_path,
        columns,
    })
}

/// Runs `sfconnect read --config <config>` on a prepared case `repeat` times (`extra` flags
/// after the files): the fastest run counts for time, the largest peak RSS for memory; a record
/// count other than the case's rows fails.
pub fn measure(
    bins: &Binaries,
    p: &Prepared,
    case: &ReadCase,
    repeat: usize,
    quiet: &Quiet,
    config: &Path,
    extra: &[String],
) -> Result<Throughput> {
    let (name, object, rows) = (case.name.as_str(), case.object, case.rows);
    let mut args: Vec<&str> = vec![
        "read",
        "--config",
        path_str(config)?,
        "--catalog",
        path_str(&p.catalog)?,
    ];
    args.extend(extra.iter().map(String::as_str));
    let log = p.dir.join(format!(
        "read-{}.log",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let mut best: Option<(RunResult, Calls, f64, f64)> = None;
    let mut peak_rss_kib = 0;
    for _ in 0..repeat.max(1) {
        quiet.settle();
        let calls_before = p.org.calls()?;
        let org_cpu_before = p.org.cpu_secs();
        let busy_before = system_busy_secs();
        let run = run_connector(&bins.sfconnect, &args, &log)?;
        let org_cpu_secs = p.org.cpu_secs() - org_cpu_before;
        let other_cpu_secs =
            (system_busy_secs() - busy_before - run.cpu_secs - org_cpu_secs).max(0.0);
        let calls = p.org.calls()?.since(&calls_before);
        if run.records_by_stream != [(object.to_string(), rows)] {
            bail!(
                "{name}: the connector emitted {:?} records for {rows} rows of {object}; see {}",
                run.records_by_stream,
                log.display()
            );
        }
        eprintln!(
            "bench: {name}{}: {:.2} s, {:.0} rows/s, peak RSS {:.1} MiB, {}",
            if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join(" "))
            },
            run.seconds,
            rows as f64 / run.seconds,
            run.peak_rss_kib as f64 / 1024.0,
            calls.by_kind()
        );
        peak_rss_kib = peak_rss_kib.max(run.peak_rss_kib);
        if best.as_ref().is_none_or(|(b, ..)| run.seconds < b.seconds) {
            best = Some((run, calls, org_cpu_secs, other_cpu_secs));
        }
    }
    let Some((mut run, calls, org_cpu_secs, other_cpu_secs)) = best else {
        bail!("{name}: no run");
    };
    run.peak_rss_kib = peak_rss_kib;
    let api = api_used(&run);
    Ok(Throughput {
        case: name.to_string(),
        object: object.to_string(),
        rows,
        columns: p.columns.len(),
        api,
        run,
        calls,
        org_cpu_secs,
        other_cpu_secs,
        job_secs: (case.spec.bulk_queued_ms + case.spec.bulk_running_ms) as f64 / 1000.0,
        limit: None,
    })
}

/// A full-refresh read of a case's object, in an org of its own, `repeat` times: the fastest
/// run counts for time, the largest peak RSS for memory.
pub fn throughput(
    bins: &Binaries,
    work: &Path,
    repeat: usize,
    quiet: &Quiet,
    case: &ReadCase,
) -> Result<Throughput> {
    let p = prepare(bins, work, case, &[])?;
    let mut t = measure(bins, &p, case, repeat, quiet, &p.config, &[])?;
    if case.with_limit {
        let soql = format!("SELECT {} FROM {}", p.columns.join(", "), case.object);
        t.limit = Some(limit(&p.org, case, &soql, repeat)?);
    }
    Ok(t)
}

/// The limit on the result pages of `soql` (the Bulk query the connector sends for the case):
/// the fastest of `repeat` raw downloads (gzip, as the connector asks, and uncompressed) and bare
/// parses.
pub fn limit(org: &Org, case: &ReadCase, soql: &str, repeat: usize) -> Result<Limit> {
    let soql = soql.to_string();
    let token = bench_raw::login(org)?;
    let mut out = Limit::default();
    let mut pages = Vec::new();
    for i in 0..repeat.max(1) {
        let gzip = bench_raw::download(org, &token, &soql, true, false)?;
        let plain = bench_raw::download(org, &token, &soql, false, i == 0)?;
        if gzip.rows != case.rows || plain.rows != case.rows {
            bail!(
                "{}: the raw download saw {}/{} rows, not {}",
                case.name,
                gzip.rows,
                plain.rows,
                case.rows
            );
        }
        let mut plain = plain;
        if i == 0 {
            pages = std::mem::take(&mut plain.kept);
        }
        let (parse_secs, parse_rows, _) = bench_raw::bare_parse(&pages)?;
        if parse_rows != case.rows {
            bail!("{}: the bare parse saw {parse_rows} rows", case.name);
        }
        if i == 0 || gzip.seconds < out.raw_gzip.seconds {
            out.raw_gzip = gzip;
        }
        if i == 0 || plain.seconds < out.raw_plain.seconds {
            out.raw_plain = plain;
        }
        if i == 0 || parse_secs < out.parse_secs {
            out.parse_secs = parse_secs;
        }
    }
    Ok(out)
}

/// `sfconnect discover` against an org of `objects` objects.
pub fn discovery(bins: &Binaries, work: &Path, quiet: &Quiet, objects: usize) -> Result<Discovery> {
    eprintln!("bench: discovery: {objects} objects");
    let dir = work.join("discovery");
    std::fs::create_dir_all(&dir)?;
    // The org's own objects first, to know how many extra ones make `objects`.
    let builtin = {
        let org = Org::start(&bins.bench_org, &OrgSpec::default())?;
        org.login["objects"].as_u64().context("no object count")?
    };
    let spec = OrgSpec {
        extra_objects: objects.saturating_sub(usize::try_from(builtin).unwrap_or(0)),
        ..OrgSpec::default()
    };
    let org = Org::start(&bins.bench_org, &spec)?;
    let before = org.calls()?;
    quiet.settle();
    let (catalog, run) = discover(bins, &dir, &org)?;
    let calls = org.calls()?.since(&before);
    Ok(Discovery {
        objects: org.login["objects"].as_u64().unwrap_or(0),
        streams: catalog["catalog"]["streams"]
            .as_array()
            .map_or(0, |s| s.len() as u64),
        run,
        calls,
    })
}

/// The realistic-latency case: six small objects, 100 ms per round trip, 12 s Bulk jobs; the
/// first incremental sync, a few hundred changes, the next sync.
pub fn latency(bins: &Binaries, work: &Path, quiet: &Quiet) -> Result<Latency> {
    eprintln!("bench: realistic latency: six objects, 100 ms per round trip, 12 s Bulk jobs");
    let dir = work.join("latency");
    std::fs::create_dir_all(&dir)?;
    let spec = OrgSpec {
        rows: LATENCY_OBJECTS
            .iter()
            .map(|(o, n)| (o.to_string(), *n))
            .collect(),
        latency_ms: 100,
        bulk_queued_ms: 2_000,
        bulk_running_ms: 10_000,
        ..OrgSpec::default()
    };
    let org = Org::start(&bins.bench_org, &spec)?;
    let (catalog, _) = discover(bins, &dir, &org)?;
    let picks: Vec<(&str, Pick, bool)> = LATENCY_OBJECTS
        .iter()
        .map(|(o, _)| (*o, Pick::All, true))
        .collect();
    let configured = configured_catalog(&catalog, &picks)?;
    let catalog_path = dir.join("catalog.json");
    write_json(&catalog_path, &configured)?;
    let config = dir.join("config.json");

    let sync = |name: &str, state: Option<&Path>| -> Result<SyncRun> {
        let before = org.calls()?;
        let mut args = vec![
            "read",
            "--config",
            path_str(&config)?,
            "--catalog",
            path_str(&catalog_path)?,
        ];
        if let Some(s) = state {
            args.push("--state");
            args.push(path_str(s)?);
        }
        quiet.settle();
        let run = run_connector(&bins.sfconnect, &args, &dir.join(format!("{name}.log")))?;
        let calls = org.calls()?.since(&before);
        eprintln!(
            "bench: latency {name}: {:.2} s, {} records, {} API calls ({})",
            run.seconds,
            run.records,
            calls.api,
            calls.by_kind()
        );
        Ok(SyncRun { run, calls })
    };
    let first = sync("first", None)?;
    let state_path = dir.join("state.json");
    write_json(&state_path, &Value::Array(first.run.final_states()))?;
    let (updates, inserts, deletes) = LATENCY_CHANGES;
    let mut changes = 0u64;
    for (object, _) in LATENCY_OBJECTS {
        let done = org.mutate(&json!({
            "object": object, "update": updates, "insert": inserts, "delete": deletes,
        }))?;
        for k in ["updated", "inserted", "deleted"] {
            changes += done[k].as_array().map_or(0, |a| a.len() as u64);
        }
    }
    // Let the changes fall inside what the next sync reads (the engine holds back a few
    // seconds of the org clock).
    org.advance_clock(60)?;
    let next = sync("next", Some(&state_path))?;
    if next.run.records < changes {
        bail!(
            "the next sync emitted {} records for {changes} changes",
            next.run.records
        );
    }
    Ok(Latency {
        first,
        next,
        changes,
        job_secs: (spec.bulk_queued_ms + spec.bulk_running_ms) as f64 / 1000.0,
    })
}

/// The component benchmarks: the Bulk page decoder and the emulator's Bulk rendering.
pub fn components(bins: &Binaries, quick: bool) -> Result<Vec<Component>> {
    let decode_args: &[&str] = if quick { &["100000", "5"] } else { &[] };
    let render_args: &[&str] = if quick { &["200000"] } else { &[] };
    let mut out = Vec::new();
    for (bin, args, command) in [
        (
            &bins.bench_decode,
            decode_args,
            "cargo run --release -p sf-bulk --example bench_decode",
        ),
        (
            &bins.bench_bulk_render,
            render_args,
            "cargo xtask bench-emulator",
        ),
    ] {
        eprintln!("bench: {command} {}", args.join(" "));
        let output = Command::new(bin)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        if !output.status.success() {
            bail!(
                "{command} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        out.push(Component {
            command: format!("{command} {}", args.join(" ")).trim().to_string(),
            output: String::from_utf8_lossy(&output.stdout).trim().to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_read_case_selects_twenty_distinct_columns() {
        for own in [&BULK_ONLY_COLUMNS, &REST_ONLY_COLUMNS] {
            let mut all = columns(own);
            assert_eq!(all.len(), 20);
            all.sort();
            all.dedup();
            assert_eq!(all.len(), 20, "{all:?}");
        }
    }
}
