//! `cargo xtask bench`: the connector's throughput, memory and API calls, measured end to end
//! against the emulated org and against the limit (a raw download and a bare CSV parse of the
//! same bytes), in one run; the table goes to `BENCHMARKS.md`.
//!
//! The org runs in its own process (`fixtures`' `bench_org` example), the connector is the real
//! `target/release/sfconnect` binary, and its stdout goes through a pipe to a reader that counts
//! records and discards them, so the connector does all of its serialisation work.
//!
//! This file runs the whole benchmark; the cases live in `bench_cases`, the options in
//! `bench_options`, the org and connector processes in `bench_proc`, the report in
//! `bench_report`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::bench_cases::{
    columns, components, discovery, latency, throughput, Component, Discovery, Latency, ReadCase,
    Throughput, BULK_ONLY_COLUMNS, REST_OBJECT, REST_ONLY_COLUMNS,
};
use crate::bench_catalog::Pick;
use crate::bench_issue17::{self as issue17, Issue17};
use crate::bench_options::{Options, Sizes};
use crate::bench_proc::{wait_for_quiet, OrgSpec};
use crate::bench_report::{self, Machine};

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
    /// Issue 17's cases.
    pub issue17: Issue17,
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
    pub fn settle(&self) {
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
pub struct Binaries {
    /// The connector.
    pub sfconnect: PathBuf,
    /// The emulated org (`fixtures`' example).
    pub bench_org: PathBuf,
    /// sf-bulk's page decoder benchmark.
    pub bench_decode: PathBuf,
    /// The emulator's Bulk rendering benchmark.
    pub bench_bulk_render: PathBuf,
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
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", crate::bench_options::USAGE);
        return Ok(());
    }
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
        pick: Pick::Columns(columns(&BULK_ONLY_COLUMNS)),
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
            object: REST_OBJECT,
            pick: Pick::Columns(columns(&REST_ONLY_COLUMNS)),
            spec: OrgSpec {
                rest_only_copies: vec![("Account".to_string(), REST_OBJECT.to_string())],
                ..OrgSpec::default()
            },
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
    // Issue 17. A 12 s job (and a read throttled to a few MB/s) is measured once: its time is
    // the job's (the bandwidth's), not the connector's.
    let mut issue17 = Issue17::default();
    for (queued_ms, running_ms) in [(500, 1_500), (2_000, 10_000)] {
        let repeat = if queued_ms + running_ms > 5_000 {
            1
        } else {
            options.repeat
        };
        issue17.job_waits.push(issue17::job_wait(
            &bins,
            &work,
            &quiet,
            repeat,
            sizes.job_wait_rows,
            (queued_ms, running_ms),
        )?);
    }
    issue17.compound = Some(issue17::compound(
        &bins,
        &work,
        &quiet,
        options.repeat,
        sizes.compound_rows,
    )?);
    issue17.bandwidth = Some(issue17::bandwidth(
        &bins,
        &work,
        &quiet,
        1,
        sizes.bandwidth_rows,
    )?);
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
        issue17,
    };
    let section = bench_report::render(&results);
    println!("{section}");
    bench_report::write(&options.out, &section)?;
    eprintln!("bench: table written to {}", options.out.display());
    Ok(())
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
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(crate::CONNECTOR_CRATES);
    let changed = git(&status).is_some_and(|s| !s.is_empty());
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
