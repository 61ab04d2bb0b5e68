//! `cargo xtask fuzz [--seconds N] [--sanitizer address] [TARGET...]`: runs each cargo-fuzz target
//! of `fuzz/` for a bounded time, one after the other, and fails on the first crash.
//!
//! The targets live in `fuzz/` (a crate outside the workspace: libFuzzer needs compiler flags only
//! a nightly toolchain accepts, so on a stable one the build sets `RUSTC_BOOTSTRAP=1`). Each run
//! starts from the committed seeds in `fuzz/seeds/<target>/` and keeps what it learns in
//! `fuzz/corpus/<target>/` (ignored by git); a crashing input lands in `fuzz/artifacts/<target>/`
//! and the command prints how to replay it. This never runs inside `cargo test`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 30;

/// The options of one `cargo xtask fuzz` call.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FuzzArgs {
    /// Time budget per target.
    pub(crate) seconds: u64,
    /// `none` (the default: the fuzzed crates forbid `unsafe`, so the address sanitizer would
    /// only slow the search) or a sanitizer cargo-fuzz knows (`address`, ...).
    pub(crate) sanitizer: String,
    /// Targets to run; empty: every target `cargo fuzz list` names.
    pub(crate) targets: Vec<String>,
}

/// Reads the arguments after `fuzz`.
pub(crate) fn parse_args(args: &[String]) -> Result<FuzzArgs> {
    let mut parsed = FuzzArgs {
        seconds: DEFAULT_SECONDS,
        sanitizer: "none".to_string(),
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = it.next().context("`--seconds` needs a number")?;
                parsed.seconds = value.parse().ok().filter(|s| *s > 0).with_context(|| {
                    format!("`--seconds {value}`: expected a whole number of seconds above 0")
                })?;
            }
            "--sanitizer" => {
                parsed.sanitizer = it
                    .next()
                    .context("`--sanitizer` needs a name (none, address, ...)")?
                    .clone();
            }
            flag if flag.starts_with("--") => {
                bail!("unknown option `{flag}`; use --seconds N, --sanitizer NAME and target names")
            }
            target => parsed.targets.push(target.to_string()),
        }
    }
    Ok(parsed)
}

/// Runs the targets.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let args = parse_args(args)?;
    let fuzz_dir = root.join("fuzz");
    let cargo = crate::cargo();
    let version = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .with_context(|| format!("could not start `{cargo} fuzz`"))?;
    if !version.status.success() {
        bail!("cargo-fuzz is not installed; install it with `cargo install cargo-fuzz`");
    }
    let targets = if args.targets.is_empty() {
        list_targets(&fuzz_dir)?
    } else {
        args.targets.clone()
    };
    for target in &targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create {}", corpus.display()))?;
        let mut command = Command::new(&cargo);
        command
            .current_dir(&fuzz_dir)
            .args(["fuzz", "run", "--debug-assertions", "--sanitizer"])
            .arg(&args.sanitizer)
            .arg(target)
            .arg(&corpus);
        let seeds = fuzz_dir.join("seeds").join(target);
        if seeds.is_dir() {
            command.arg(&seeds);
        }
        command.args([
            "--".to_string(),
            format!("-max_total_time={}", args.seconds),
            "-timeout=20".to_string(),
            "-rss_limit_mb=2048".to_string(),
            "-print_final_stats=1".to_string(),
        ]);
        if !toolchain_is_nightly() {
            command.env("RUSTC_BOOTSTRAP", "1");
        }
        eprintln!("xtask fuzz: {target} for {} s", args.seconds);
        let status = command
            .status()
            .with_context(|| format!("could not start `cargo fuzz run {target}`"))?;
        if !status.success() {
            bail!(
                "fuzz target `{target}` failed ({status}); the crashing input is under \
                 fuzz/artifacts/{target}/ — replay it with \
                 `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer {} {target} <file>`",
                args.sanitizer
            );
        }
    }
    eprintln!(
        "xtask fuzz: {} target(s) ran without a crash",
        targets.len()
    );
    Ok(())
}

fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let out = crate::cargo_stdout(fuzz_dir, &["fuzz", "list"])?;
    let targets: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if targets.is_empty() {
        bail!(
            "`cargo fuzz list` names no target in {}",
            fuzz_dir.display()
        );
    }
    Ok(targets)
}

fn toolchain_is_nightly() -> bool {
    Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("nightly"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse_args(&[]).unwrap(),
            FuzzArgs {
                seconds: DEFAULT_SECONDS,
                sanitizer: "none".into(),
                targets: vec![]
            }
        );
        assert_eq!(
            parse_args(&strings(&[
                "--seconds",
                "5",
                "state",
                "--sanitizer",
                "address"
            ]))
            .unwrap(),
            FuzzArgs {
                seconds: 5,
                sanitizer: "address".into(),
                targets: vec!["state".into()]
            }
        );
        for bad in [
            &["--seconds"][..],
            &["--seconds", "0"],
            &["--seconds", "x"],
            &["--fast"],
        ] {
            assert!(parse_args(&strings(bad)).is_err(), "{bad:?}");
        }
    }
}
