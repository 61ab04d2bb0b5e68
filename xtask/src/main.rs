//! Project tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! - `ci`: what a submission must pass: `cargo fmt --check`, clippy with `-D warnings`, and the
//!   README's test command `cargo test --workspace`.
//! - `bench [--quick] [--out FILE] [--repeat N] [--quiet-wait SECS] [--no-build]`: the
//!   connector end to end against the emulated org (throughput, peak memory, API calls, the
//!   scale curve, discovery, realistic latency) and against the limit (a raw download and a bare
//!   CSV parse of the same bytes); writes the table to `BENCHMARKS.md` (release build; takes
//!   minutes, or about one with `--quick`).
//! - `bench-emulator`: how fast the emulated org serves a Bulk result of 1,000,000 rows × 20
//!   columns (release build).
//! - `fuzz [--seconds N] [TARGET...]`: each cargo-fuzz target under `fuzz/` for a bounded time
//!   (30 s by default); not part of `cargo test`.
//! - `tidy`: the repository checks (crate docs, forbidden dependencies, layering, files of at
//!   most 700 lines, only sf-auth maps Salesforce's answers to error kinds and only sf-sync maps
//!   kinds to failure types) on their own, one line per problem; they also run as a plain
//!   `#[test]` inside `cargo test`.
//!
//! xtask links none of the workspace's crates: it builds and drives their binaries
//! (`sfconnect`, fixtures' examples) from outside, as a user would.

mod bench;
mod bench_cases;
mod bench_catalog;
mod bench_compound;
mod bench_http;
mod bench_issue17;
mod bench_options;
mod bench_proc;
mod bench_raw;
mod bench_report;
mod bench_report17;
mod fuzz;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    match task {
        "ci" => ci(),
        "bench" => bench::main(&args[1..]),
        "bench-emulator" => run(
            &workspace_root(),
            &[
                "run",
                "--release",
                "-p",
                "fixtures",
                "--example",
                "bench_bulk_render",
            ],
        ),
        "fuzz" => fuzz::run(&workspace_root(), &args[1..]),
        "tidy" => {
            let problems = tidy::check_workspace(&workspace_root())?;
            if problems.is_empty() {
                println!("tidy: ok");
                Ok(())
            } else {
                for p in &problems {
                    eprintln!("tidy: {p}");
                }
                bail!("{} tidy problem(s)", problems.len())
            }
        }
        "help" | "--help" | "-h" => {
            println!("cargo xtask <task>\n\ntasks:\n  ci              fmt check, clippy -D warnings, cargo test --workspace\n  bench           connector throughput, memory and API calls vs the limit -> BENCHMARKS.md\n                  (--quick: small sizes; --out FILE; --repeat N; --quiet-wait SECS; --no-build)\n  bench-emulator  rows/s the emulated org serves for a 1M-row Bulk result\n  fuzz            each fuzz target for a bounded time: [--seconds N] [TARGET...]\n  tidy            repository checks (crate docs, dependencies, layering, file length,\n                  who maps errors)");
            Ok(())
        }
        other => bail!("unknown task `{other}`; run `cargo xtask help` for the list"),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn ci() -> Result<()> {
    let root = workspace_root();
    run(&root, &["fmt", "--all", "--", "--check"])?;
    run(
        &root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run(&root, &["test", "--workspace"])?;
    println!("xtask ci: all gates passed");
    Ok(())
}

/// The connector's crates (every workspace member but this one), as `git` and `cargo` name them.
pub(crate) const CONNECTOR_CRATES: [&str; 7] = [
    "sf-auth",
    "sf-discovery",
    "sf-bulk",
    "sf-rest",
    "sf-sync",
    "sf-cli",
    "fixtures",
];

/// The cargo that started this task (`$CARGO`), or the one on the `PATH`.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn run(dir: &Path, args: &[&str]) -> Result<()> {
    let cargo = cargo();
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("could not start `{cargo}`"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs `cargo <args>` in `dir` and returns what it printed; fails with its stderr if it fails.
pub(crate) fn cargo_stdout(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let line = format!("cargo {}", args.join(" "));
    let out = Command::new(cargo())
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("could not run `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out.stdout)
}
