//! `read --report run.json`: the run report (its schema is in README, "The run report"), written
//! when the read ends, failed streams included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sf_auth::{Session, TaggedRequests};
use sf_sync::report::{self, Allowance, StreamObservation};
use sf_sync::SyncSummary;

use crate::failure::Failure;

/// What the report needs from before the read.
pub struct Watch {
    path: PathBuf,
    started: Instant,
    tally: Vec<TaggedRequests>,
    allowance: Option<Allowance>,
}

impl Watch {
    /// Checks that the report can go where asked (its directory exists), so a wrong path is
    /// found before the read rather than after it, then reads the allowance (one `/limits` call)
    /// and the session's tally before the read.
    pub async fn start(session: &Session, path: &Path) -> Result<Watch, Failure> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if path.is_dir() {
            return Err(Failure::config(format!(
                "`--report {}`: {} is a directory; give a file name in it, e.g. `--report {}`",
                path.display(),
                path.display(),
                path.join("run.json").display()
            )));
        }
        if !dir.is_dir() {
            return Err(Failure::config(format!(
                "`--report {}`: {} is not a directory; give a file in an existing directory, \
                 e.g. `--report run.json`",
                path.display(),
                dir.display()
            )));
        }
        // The tally first: the report counts the `/limits` call that reads the allowance.
        let tally = session.tally();
        let started = Instant::now();
        let allowance = report::allowance(session).await;
        Ok(Watch {
            path: path.to_path_buf(),
            started,
            tally,
            allowance,
        })
    }

    /// Reads the allowance again and writes the report.
    pub async fn finish(
        &self,
        session: &Session,
        summary: &SyncSummary,
        observed: &BTreeMap<String, StreamObservation>,
    ) -> Result<(), Failure> {
        let seconds = self.started.elapsed().as_secs_f64();
        let after = report::allowance(session).await;
        let tally = report::tally_since(&self.tally, &session.tally());
        let run = report::build(summary, observed, &tally, self.allowance, after, seconds);
        let text = serde_json::to_string_pretty(&run)
            .map_err(|e| Failure::system(format!("cannot write the run report: {e}")))?;
        crate::files::write_atomically(&self.path, text.as_bytes(), false).map_err(|e| {
            Failure::system(format!(
                "cannot write the run report to {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// The streams of a report that cost the most API calls, as a table (the demo's summary).
pub fn table(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let run: serde_json::Value = serde_json::from_str(&text)?;
    let mut streams: Vec<&serde_json::Value> = run["streams"]
        .as_array()
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    streams.sort_by_key(|s| std::cmp::Reverse(s["calls"]["total"].as_u64().unwrap_or(0)));
    let mut out = format!(
        "{:<28} {:<5} {:>9} {:>7} {:>9} {:>6} {:>6} {:>8}  why\n",
        "stream (most API calls)",
        "api",
        "rows",
        "windows",
        "bulk jobs",
        "polls",
        "calls",
        "seconds"
    );
    for s in streams.iter().take(8) {
        out.push_str(&format!(
            "{:<28} {:<5} {:>9} {:>7} {:>9} {:>6} {:>6} {:>8.2}  {}\n",
            s["stream"].as_str().unwrap_or("?"),
            s["api"].as_str().unwrap_or("-"),
            s["rows"].as_u64().unwrap_or(0),
            s["windows"].as_u64().unwrap_or(0),
            s["bulk_jobs"].as_u64().unwrap_or(0),
            s["bulk_polls"].as_u64().unwrap_or(0),
            s["calls"]["total"].as_u64().unwrap_or(0),
            s["seconds"].as_f64().unwrap_or(0.0),
            s["why"].as_str().unwrap_or(""),
        ));
    }
    let used = |key: &str| {
        run[key]["used"]
            .as_i64()
            .map_or("?".to_string(), |u| u.to_string())
    };
    out.push_str(&format!(
        "{} streams, {} API requests; daily allowance used {} before, {} after\n",
        streams.len(),
        run["api_requests"].as_u64().unwrap_or(0),
        used("allowance_before"),
        used("allowance_after"),
    ));
    Ok(out)
}
