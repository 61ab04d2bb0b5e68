//! `cargo xtask bench`: the connector's throughput, memory and API calls, measured end to end
//! against the emulated org and against the limit (a raw download and a bare CSV parse of the
//! same bytes), in one run; the table goes to `BENCHMARKS.md`.
//!
//! The org runs in its own process (`fixtures`' `bench_org` example), the connector is the real
//! `target/release/sfconnect` binary, and its stdout goes through a pipe to a reader that counts
//! records and discards them, so the connector does all of its serialisation work.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench_proc::{
    run_connector, system_busy_secs, wait_for_quiet, Calls, Org, OrgSpec, RunResult,
};
use crate::bench_raw::{self, RawDownload};
use crate::bench_report::{self, Machine};

/// The 20 columns of the Bulk cases: ids, a boolean, strings, picklists, a double, a currency,
/// an integer, datetimes and a date (Account has no compound field among them).
pub const BULK_COLUMNS: [&str; 20] = [
    "Id",
    "IsDeleted",
    "OwnerId",
    "Name",
    "Type",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "BillingLatitude",
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

/// The 20 columns of the REST case: the compound `BillingAddress` is what keeps a large object on
/// REST (the Bulk API cannot select it).
pub const REST_COLUMNS: [&str; 20] = [
    "Id",
    "IsDeleted",
    "OwnerId",
    "Name",
    "Type",
    "BillingAddress",
    "Phone",
    "Website",
    "Industry",
    "AnnualRevenue",
    "NumberOfEmployees",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "LastActivityDate",
    "AccountNumber",
    "Rating",
    "AccountSource",
    "Description",
    "ParentId",
];

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

/// Airbyte source-salesforce on the realistic-latency org (issue 9): first sync, then the next.
pub const AIRBYTE_FIRST: (f64, u64) = (29.6, 475);
/// See [`AIRBYTE_FIRST`].
pub const AIRBYTE_NEXT: (f64, u64) = (22.2, 31);

/// Command-line options of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Smaller sizes, so the whole run takes about a minute.
    pub quick: bool,
    /// Where the table goes.
    pub out: PathBuf,
    /// Skip `cargo build --release` (the binaries must exist).
    pub no_build: bool,
    /// Runs of each read; the fastest counts (the machine is shared and noisy). Default 3, or 1
    /// with `--quick`.
    pub repeat: usize,
    /// Before each read, wait up to this many seconds for the machine to be idle (0: never
    /// wait). Default 30, or 0 with `--quick`.
    pub quiet_wait_secs: Option<u64>,
}

impl Options {
    /// Reads `--quick`, `--out FILE`, `--no-build`, `--repeat N`, `--quiet-wait SECS`.
    pub fn parse(args: &[String], root: &Path) -> Result<Options> {
        let mut options = Options {
            quick: false,
            out: root.join("BENCHMARKS.md"),
            no_build: false,
            repeat: 0,
            quiet_wait_secs: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--no-build" => options.no_build = true,
                "--out" => {
                    let path = it.next().context("--out needs a file name")?;
                    options.out = PathBuf::from(path);
                }
                "--quiet-wait" => {
                    let n = it
                        .next()
                        .context("--quiet-wait needs a number of seconds")?;
                    options.quiet_wait_secs = Some(
                        n.parse::<u64>()
                            .with_context(|| format!("--quiet-wait {n}: expected seconds"))?,
                    );
                }
                "--repeat" => {
                    let n = it.next().context("--repeat needs a number")?;
                    options.repeat = n
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .with_context(|| format!("--repeat {n}: expected a number from 1 up"))?;
                }
                other => bail!(
                    "unknown option `{other}` (expected --quick, --out FILE, --no-build, \
                     --repeat N, --quiet-wait SECS)"
                ),
            }
        }
        if options.repeat == 0 {
            options.repeat = if options.quick { 1 } else { 3 };
        }
        if options.quiet_wait_secs.is_none() {
            options.quiet_wait_secs = Some(if options.quick { 0 } else { 30 });
        }
        Ok(options)
    }
}

impl Options {
    /// The command line that gives these options (defaults left out, `--out` too).
    pub fn command_line(&self) -> String {
        let defaults = Options::parse(
            &(if self.quick {
                vec!["--quick".to_string()]
            } else {
                Vec::new()
            }),
            Path::new("."),
        )
        .ok();
        let mut line = "cargo xtask bench".to_string();
        if self.quick {
            line.push_str(" --quick");
        }
        if defaults.as_ref().is_some_and(|d| d.repeat != self.repeat) {
            line.push_str(&format!(" --repeat {}", self.repeat));
        }
        if defaults
            .as_ref()
            .is_some_and(|d| d.quiet_wait_secs != self.quiet_wait_secs)
        {
            line.push_str(&format!(
                " --quiet-wait {}",
                self.quiet_wait_secs.unwrap_or(0)
            ));
        }
        line
    }
}

/// Sizes of the cases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizes {
    /// Bulk, 20 columns (also the middle of the scale curve).
    pub bulk_rows: u64,
    /// REST, 20 columns.
    pub rest_rows: u64,
    /// The 300-column object.
    pub wide_rows: u64,
    /// The scale curve: small, middle (= `bulk_rows`), large.
    pub curve: [u64; 3],
    /// The Bulk job with realistic latency.
    pub slow_bulk_rows: u64,
    /// Objects of the discovery case.
    pub discovery_objects: usize,
}

impl Sizes {
    /// The sizes of issue 9, or a tenth of them (about) with `quick`.
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                bulk_rows: 100_000,
                rest_rows: 40_000,
                wide_rows: 25_000,
                curve: [50_000, 100_000, 500_000],
                slow_bulk_rows: 30_000,
                discovery_objects: 1_000,
            }
        } else {
            Sizes {
                bulk_rows: 1_000_000,
                rest_rows: 200_000,
                wide_rows: 100_000,
                curve: [100_000, 1_000_000, 5_000_000],
                slow_bulk_rows: 100_000,
                discovery_objects: 1_000,
            }
        }
    }
}

/// Which fields a configured stream selects.
#[derive(Debug, Clone)]
pub enum Pick {
    /// Every field.
    All,
    /// These fields.
    Columns(Vec<String>),
    /// The first `n` fields in name order.
    First(usize),
}

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

/// Everything one run measured.
#[derive(Debug)]
pub struct Results {
    /// `--quick` or not.
    pub quick: bool,
    /// The machine.
    pub machine: Machine,
    /// `/proc/loadavg` (1, 5, 15 minutes) before and after the run.
    pub load: (String, String),
    /// Runs of each read (the fastest counts).
    pub repeat: usize,
    /// Measured runs that started on a busy machine (the wait for quiet timed out), of all.
    pub busy_runs: (usize, usize),
    /// The longest wait for quiet before a run, seconds.
    pub quiet_wait_secs: u64,
    /// The command line.
    pub command: String,
    /// The commit measured, with a note when the connector's sources differ from it.
    pub revision: String,
    /// Bulk 20 columns, REST 20 columns, 300 columns, slow Bulk job.
    pub cases: Vec<Throughput>,
    /// The scale curve's small and large points (the middle one is the Bulk case).
    pub curve: Vec<Throughput>,
    /// Discovery.
    pub discovery: Discovery,
    /// Realistic latency.
    pub latency: Latency,
    /// Component figures.
    pub components: Vec<Component>,
}

/// Waits for an idle machine before each measured run, and counts the waits that timed out.
pub struct Quiet {
    wait: std::time::Duration,
    timeouts: std::cell::Cell<usize>,
    runs: std::cell::Cell<usize>,
}

impl Quiet {
    /// Waits at most `secs` seconds per run (0: never waits).
    pub fn new(secs: u64) -> Quiet {
        Quiet {
            wait: std::time::Duration::from_secs(secs),
            timeouts: std::cell::Cell::new(0),
            runs: std::cell::Cell::new(0),
        }
    }

    /// Called before a measured run.
    fn settle(&self) {
        self.runs.set(self.runs.get() + 1);
        if self.wait.is_zero() {
            return;
        }
        if !wait_for_quiet(self.wait, 0.15) {
            self.timeouts.set(self.timeouts.get() + 1);
            eprintln!("bench: the machine stayed busy; measuring anyway");
        }
    }
}

/// Paths of the release binaries.
struct Binaries {
    sfconnect: PathBuf,
    bench_org: PathBuf,
    bench_decode: PathBuf,
    bench_bulk_render: PathBuf,
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

fn build(root: &Path, options: &Options) -> Result<Binaries> {
    if !options.no_build {
        crate::run(
            root,
            &[
                "build",
                "--release",
                "-p",
                "sf-cli",
                "-p",
                "fixtures",
                "-p",
                "sf-bulk",
                "-p",
                "xtask",
                "--bin",
                "sfconnect",
                "--bin",
                "xtask",
                "--example",
                "bench_org",
                "--example",
                "bench_decode",
                "--example",
                "bench_bulk_render",
            ],
        )?;
    }
    let release = target_dir(root).join("release");
    let binaries = Binaries {
        sfconnect: release.join("sfconnect"),
        bench_org: release.join("examples").join("bench_org"),
        bench_decode: release.join("examples").join("bench_decode"),
        bench_bulk_render: release.join("examples").join("bench_bulk_render"),
    };
    for path in [
        &binaries.sfconnect,
        &binaries.bench_org,
        &binaries.bench_decode,
        &binaries.bench_bulk_render,
    ] {
        if !path.exists() {
            bail!("{} is missing; run without --no-build", path.display());
        }
    }
    Ok(binaries)
}

/// Runs every case and writes the table.
///
/// `cargo xtask` builds this task without optimisations; the benchmark's own work (reading the
/// connector's output, the raw download, the bare CSV parse) must not be slowed by that, so an
/// unoptimised build builds everything in release and hands over to the release `xtask`.
pub fn main(args: &[String]) -> Result<()> {
    let root = crate::workspace_root();
    let options = Options::parse(args, &root)?;
    let bins = build(&root, &options)?;
    if cfg!(debug_assertions) {
        let release = target_dir(&root).join("release").join("xtask");
        let mut forwarded: Vec<String> = vec!["bench".to_string(), "--no-build".to_string()];
        forwarded.extend(args.iter().filter(|a| *a != "--no-build").cloned());
        if !args.iter().any(|a| a == "--out") {
            forwarded.push("--out".to_string());
            forwarded.push(options.out.display().to_string());
        }
        let status = Command::new(&release)
            .args(&forwarded)
            .current_dir(&root)
            .status()
            .with_context(|| format!("cannot start {}", release.display()))?;
        if !status.success() {
            bail!("the release benchmark failed ({status})");
        }
        return Ok(());
    }
    let work = target_dir(&root).join("bench");
    std::fs::create_dir_all(&work)?;
    let sizes = Sizes::new(options.quick);
    let machine = Machine::probe();
    eprintln!(
        "bench: {} ({} cores, {})",
        machine.cpu, machine.cores, machine.memory
    );

    let load_before = load_average();
    let quiet = Quiet::new(options.quiet_wait_secs.unwrap_or(0));
    let bulk_case = |name: &str, rows: u64, limit: bool| ReadCase {
        name: name.to_string(),
        object: "Account",
        rows,
        pick: Pick::Columns(strings(&BULK_COLUMNS)),
        spec: OrgSpec::default(),
        with_limit: limit,
    };
    let slow_spec = OrgSpec {
        latency_ms: 100,
        bulk_queued_ms: 2_000,
        bulk_running_ms: 10_000,
        ..OrgSpec::default()
    };
    let plan = [
        bulk_case("bulk-20", sizes.bulk_rows, true),
        ReadCase {
            pick: Pick::Columns(strings(&REST_COLUMNS)),
            ..bulk_case("rest-20", sizes.rest_rows, false)
        },
        ReadCase {
            object: "Wide__c",
            pick: Pick::First(300),
            ..bulk_case("wide-300", sizes.wide_rows, true)
        },
        ReadCase {
            spec: slow_spec,
            ..bulk_case("bulk-20, 100 ms RTT, 12 s job", sizes.slow_bulk_rows, false)
        },
    ];
    let mut cases = Vec::new();
    for case in plan {
        // A 12 s job is measured once: its time is the job's, not the connector's.
        let repeat = if case.spec.bulk_running_ms > 0 {
            1
        } else {
            options.repeat
        };
        cases.push(throughput(&bins, &work, repeat, &quiet, &case)?);
    }
    let mut curve = Vec::new();
    for rows in sizes.curve {
        if rows == sizes.bulk_rows {
            continue;
        }
        let case = bulk_case(&format!("curve-{rows}"), rows, false);
        curve.push(throughput(&bins, &work, options.repeat, &quiet, &case)?);
    }
    let discovery = discovery(&bins, &work, &quiet, sizes.discovery_objects)?;
    let latency = latency(&bins, &work, &quiet)?;
    let components = components(&bins, options.quick)?;

    let results = Results {
        quick: options.quick,
        machine,
        load: (load_before, load_average()),
        busy_runs: (quiet.timeouts.get(), quiet.runs.get()),
        quiet_wait_secs: options.quiet_wait_secs.unwrap_or(0),
        repeat: options.repeat,
        command: options.command_line(),
        revision: revision(&root),
        curve,
        cases,
        discovery,
        latency,
        components,
    };
    let section = bench_report::render(&results);
    println!("{section}");
    bench_report::write(&options.out, &section)?;
    eprintln!("bench: table written to {}", options.out.display());
    Ok(())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
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

/// A configured catalog over `picks` from a CATALOG message. Incremental streams get their
/// default cursor and `append_dedup`; full refresh gets `overwrite`.
pub fn configured_catalog(catalog: &Value, picks: &[(&str, Pick, bool)]) -> Result<Value> {
    let streams = catalog["catalog"]["streams"]
        .as_array()
        .context("the CATALOG message has no streams")?;
    let mut configured = Vec::new();
    for (name, pick, incremental) in picks {
        let mut stream = streams
            .iter()
            .find(|s| s["name"] == *name)
            .cloned()
            .with_context(|| format!("the catalog has no stream {name}"))?;
        let properties = stream["json_schema"]["properties"]
            .as_object()
            .cloned()
            .with_context(|| format!("stream {name} has no properties"))?;
        let kept: serde_json::Map<String, Value> = match pick {
            Pick::All => properties,
            Pick::Columns(columns) => {
                for c in columns {
                    if !properties.contains_key(c) {
                        bail!("stream {name} has no field {c}");
                    }
                }
                properties
                    .into_iter()
                    .filter(|(k, _)| columns.contains(k))
                    .collect()
            }
            Pick::First(n) => {
                if properties.len() < *n {
                    bail!(
                        "stream {name} has {} fields, fewer than {n}",
                        properties.len()
                    );
                }
                properties.into_iter().take(*n).collect()
            }
        };
        stream["json_schema"]["properties"] = Value::Object(kept);
        let mut entry = json!({
            "stream": stream,
            "sync_mode": if *incremental { "incremental" } else { "full_refresh" },
            "destination_sync_mode": if *incremental { "append_dedup" } else { "overwrite" },
            "primary_key": [["Id"]],
        });
        if *incremental {
            entry["cursor_field"] = stream["default_cursor_field"].clone();
        }
        configured.push(entry);
    }
    Ok(json!({ "streams": configured }))
}

/// The fields a configured catalog's first stream selects, in its order.
fn selected(configured: &Value) -> Vec<String> {
    configured["streams"][0]["stream"]["json_schema"]["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The API the connector says it chose (`... through BULK`/`REST`), from its LOG messages.
fn api_used(run: &RunResult) -> String {
    let mut apis = Vec::new();
    for m in &run.other_messages {
        let text = m["log"]["message"].as_str().unwrap_or_default();
        for api in ["BULK", "REST"] {
            if text.contains(&format!("through {api}")) && !apis.contains(&api) {
                apis.push(api);
            }
        }
    }
    if apis.is_empty() {
        "?".to_string()
    } else {
        apis.join("+")
    }
}

/// `git rev-parse --short HEAD`, and whether tracked files of the connector differ from it.
fn revision(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_string();
    };
    let changed = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "sf-auth",
        "sf-discovery",
        "sf-bulk",
        "sf-rest",
        "sf-sync",
        "sf-cli",
        "fixtures",
    ])
    .is_some_and(|s| !s.is_empty());
    if changed {
        format!("{head} with uncommitted changes to the crates")
    } else {
        head
    }
}

/// `/proc/loadavg`'s three load averages, or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".to_string())
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

/// A full-refresh read of a case's object, in an org of its own, `repeat` times: the fastest
/// run counts for time, the largest peak RSS for memory.
fn throughput(
    bins: &Binaries,
    work: &Path,
    repeat: usize,
    quiet: &Quiet,
    case: &ReadCase,
) -> Result<Throughput> {
    let (name, object, rows) = (case.name.as_str(), case.object, case.rows);
    eprintln!("bench: {name}: {rows} rows of {object}");
    let dir = work.join(name.replace([' ', ',', '/'], "_"));
    std::fs::create_dir_all(&dir)?;
    let mut spec = case.spec.clone();
    spec.rows = vec![(object.to_string(), rows)];
    let org = Org::start(&bins.bench_org, &spec)?;
    let (catalog, _) = discover(bins, &dir, &org)?;
    let configured = configured_catalog(&catalog, &[(object, case.pick.clone(), false)])?;
    let columns = selected(&configured);
    let catalog_path = dir.join("catalog.json");
    write_json(&catalog_path, &configured)?;
    let config = dir.join("config.json");

    let mut best: Option<(RunResult, Calls, f64, f64)> = None;
    let mut peak_rss_kib = 0;
    for _ in 0..repeat.max(1) {
        quiet.settle();
        let calls_before = org.calls()?;
        let org_cpu_before = org.cpu_secs();
        let busy_before = system_busy_secs();
        let run = run_connector(
            &bins.sfconnect,
            &[
                "read",
                "--config",
                path_str(&config)?,
                "--catalog",
                path_str(&catalog_path)?,
            ],
            &dir.join("read.log"),
        )?;
        let org_cpu_secs = org.cpu_secs() - org_cpu_before;
        let other_cpu_secs =
            (system_busy_secs() - busy_before - run.cpu_secs - org_cpu_secs).max(0.0);
        let calls = org.calls()?.since(&calls_before);
        if run.records_by_stream != [(object.to_string(), rows)] {
            bail!(
                "{name}: the connector emitted {:?} records for {rows} rows of {object}; see {}",
                run.records_by_stream,
                dir.join("read.log").display()
            );
        }
        eprintln!(
            "bench: {name}: {:.2} s, {:.0} rows/s, peak RSS {:.1} MiB, {}",
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
    let limit = if case.with_limit {
        Some(limit(&org, case, &columns, repeat)?)
    } else {
        None
    };
    Ok(Throughput {
        case: name.to_string(),
        object: object.to_string(),
        rows,
        columns: columns.len(),
        api,
        run,
        calls,
        org_cpu_secs,
        other_cpu_secs,
        job_secs: (spec.bulk_queued_ms + spec.bulk_running_ms) as f64 / 1000.0,
        limit,
    })
}

/// The limit on the case's result pages: the fastest of `repeat` raw downloads (gzip, as the
/// connector asks, and uncompressed) and bare parses.
fn limit(org: &Org, case: &ReadCase, columns: &[String], repeat: usize) -> Result<Limit> {
    let soql = format!("SELECT {} FROM {}", columns.join(", "), case.object);
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
fn discovery(bins: &Binaries, work: &Path, quiet: &Quiet, objects: usize) -> Result<Discovery> {
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
fn latency(bins: &Binaries, work: &Path, quiet: &Quiet) -> Result<Latency> {
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
fn components(bins: &Binaries, quick: bool) -> Result<Vec<Component>> {
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

    fn catalog() -> Value {
        json!({"type": "CATALOG", "catalog": {"streams": [
            {"name": "Account", "default_cursor_field": ["SystemModstamp"],
             "json_schema": {"properties": {"Id": {}, "Name": {}, "SystemModstamp": {}, "Zed": {}}}},
            {"name": "Task", "json_schema": {"properties": {"Id": {}}}}
        ]}})
    }

    #[test]
    fn configured_catalogs_select_the_picked_fields() {
        let c = configured_catalog(
            &catalog(),
            &[
                ("Account", Pick::Columns(strings(&["Id", "Zed"])), false),
                ("Task", Pick::All, false),
            ],
        )
        .unwrap();
        assert_eq!(selected(&c), ["Id", "Zed"]);
        assert_eq!(c["streams"][0]["sync_mode"], "full_refresh");
        assert_eq!(c["streams"][0]["destination_sync_mode"], "overwrite");
        assert!(c["streams"][0].get("cursor_field").is_none());
        assert_eq!(c["streams"][1]["stream"]["name"], "Task");

        let c = configured_catalog(&catalog(), &[("Account", Pick::First(3), true)]).unwrap();
        assert_eq!(selected(&c), ["Id", "Name", "SystemModstamp"]);
        assert_eq!(c["streams"][0]["sync_mode"], "incremental");
        assert_eq!(c["streams"][0]["cursor_field"], json!(["SystemModstamp"]));
        assert_eq!(c["streams"][0]["primary_key"], json!([["Id"]]));
    }

    #[test]
    fn configured_catalogs_refuse_what_the_catalog_lacks() {
        let missing_field = configured_catalog(
            &catalog(),
            &[("Account", Pick::Columns(strings(&["Nope"])), false)],
        );
        assert!(missing_field
            .unwrap_err()
            .to_string()
            .contains("no field Nope"));
        let missing_stream = configured_catalog(&catalog(), &[("Lead", Pick::All, false)]);
        assert!(missing_stream
            .unwrap_err()
            .to_string()
            .contains("no stream Lead"));
        let too_few = configured_catalog(&catalog(), &[("Task", Pick::First(2), false)]);
        assert!(too_few.unwrap_err().to_string().contains("fewer than 2"));
    }

    #[test]
    fn the_api_comes_from_the_connector_log() {
        let run = RunResult {
            other_messages: vec![
                json!({"type": "LOG", "log": {"message": "Account: full refresh through BULK (x)"}}),
                json!({"type": "LOG", "log": {"message": "Task: incremental ... through REST"}}),
                json!({"type": "LOG", "log": {"message": "Lead: incremental ... through REST"}}),
            ],
            ..RunResult::default()
        };
        assert_eq!(api_used(&run), "BULK+REST");
        assert_eq!(api_used(&RunResult::default()), "?");
    }

    #[test]
    fn options_and_sizes() {
        let root = Path::new("/r");
        let o = Options::parse(&strings(&["--quick", "--out", "x.md"]), root).unwrap();
        assert!(o.quick && !o.no_build);
        assert_eq!(o.out, PathBuf::from("x.md"));
        assert_eq!(o.repeat, 1);
        assert_eq!(Options::parse(&[], root).unwrap().repeat, 3);
        let o = Options::parse(&strings(&["--repeat", "5", "--no-build"]), root).unwrap();
        assert_eq!((o.repeat, o.no_build), (5, true));
        assert!(Options::parse(&strings(&["--repeat", "0"]), root).is_err());
        assert!(Options::parse(&strings(&["--repeat", "x"]), root).is_err());
        assert_eq!(Options::parse(&[], root).unwrap().quiet_wait_secs, Some(30));
        let o = Options::parse(&strings(&["--quick"]), root).unwrap();
        assert_eq!(o.quiet_wait_secs, Some(0));
        let o = Options::parse(&strings(&["--quiet-wait", "5"]), root).unwrap();
        assert_eq!(o.quiet_wait_secs, Some(5));
        assert!(Options::parse(&strings(&["--quiet-wait", "-1"]), root).is_err());
        let line = |args: &[&str]| Options::parse(&strings(args), root).unwrap().command_line();
        assert_eq!(line(&["--out", "x", "--no-build"]), "cargo xtask bench");
        assert_eq!(
            line(&["--quick", "--repeat", "1"]),
            "cargo xtask bench --quick"
        );
        assert_eq!(
            line(&["--quiet-wait", "90", "--repeat", "5"]),
            "cargo xtask bench --repeat 5 --quiet-wait 90"
        );
        assert_eq!(
            Options::parse(&[], root).unwrap().out,
            root.join("BENCHMARKS.md")
        );
        assert!(Options::parse(&strings(&["--fast"]), root).is_err());
        assert!(Options::parse(&strings(&["--out"]), root).is_err());
        let full = Sizes::new(false);
        assert_eq!(full.bulk_rows, 1_000_000);
        assert_eq!(full.curve, [100_000, 1_000_000, 5_000_000]);
        let quick = Sizes::new(true);
        assert!(quick.curve.contains(&quick.bulk_rows) && full.curve.contains(&full.bulk_rows));
        // Bulk cases stay above the planner's 20,000-row REST threshold even when quick.
        assert!(
            quick.wide_rows > 20_000 && quick.slow_bulk_rows > 20_000 && quick.curve[0] > 20_000
        );
    }
}
