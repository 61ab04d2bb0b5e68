//! The command line of `cargo xtask bench` and the sizes of its cases (issue 9's, or about a
//! tenth of them with `--quick`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// What `cargo xtask bench --help` prints.
pub const USAGE: &str = "cargo xtask bench [OPTIONS]

Reads the emulated org with the release `sfconnect` and writes the measured table to
BENCHMARKS.md (between its bench:begin and bench:end markers).

options:
  --quick            about a tenth of the rows; about a minute
  --out FILE         write the table to FILE instead of BENCHMARKS.md
  --repeat N         runs of each read, the fastest counts (default 3; 1 with --quick)
  --quiet-wait SECS  wait up to SECS for an idle machine before each read (default 30; 0 with
                     --quick)
  --no-build         use the release binaries already built
  -h, --help         print this";

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
                     --repeat N, --quiet-wait SECS; --help lists them)"
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
    /// Issue 17's job-wait cases (2 s and 12 s jobs).
    pub job_wait_rows: u64,
    /// Issue 17's compound-fields case.
    pub compound_rows: u64,
    /// Issue 17's bandwidth-capped case.
    pub bandwidth_rows: u64,
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
                job_wait_rows: 50_000,
                compound_rows: 100_000,
                bandwidth_rows: 500_000,
            }
        } else {
            Sizes {
                bulk_rows: 1_000_000,
                rest_rows: 200_000,
                wide_rows: 100_000,
                curve: [100_000, 1_000_000, 5_000_000],
                slow_bulk_rows: 100_000,
                discovery_objects: 1_000,
                job_wait_rows: 200_000,
                compound_rows: 1_000_000,
                bandwidth_rows: 5_000_000,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_catalog::strings;

    #[test]
    fn usage_lists_every_option_parse_takes() {
        let root = Path::new("/r");
        let listed: Vec<&str> = USAGE
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-')))
            .filter(|w| w.starts_with("--") && *w != "--help")
            .collect();
        for flag in ["--quick", "--out", "--repeat", "--quiet-wait", "--no-build"] {
            assert!(listed.contains(&flag), "{flag} missing from USAGE");
        }
        for flag in listed {
            let args = match flag {
                "--out" => vec![flag, "x.md"],
                "--repeat" | "--quiet-wait" => vec![flag, "2"],
                _ => vec![flag],
            };
            assert!(
                Options::parse(&strings(&args), root).is_ok(),
                "USAGE lists {flag}, which parse refuses"
            );
        }
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
        assert!(
            quick.job_wait_rows > 20_000
                && quick.compound_rows > 20_000
                && quick.bandwidth_rows > 20_000
        );
        // Issue 17's sizes.
        assert_eq!(
            (full.job_wait_rows, full.compound_rows, full.bandwidth_rows),
            (200_000, 1_000_000, 5_000_000)
        );
    }
}
