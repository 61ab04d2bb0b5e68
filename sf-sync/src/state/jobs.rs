//! The Bulk jobs a stream had in flight, kept in its state beside the slices so a restarted sync
//! continues them instead of creating them again.
//!
//! In JSON they are the date-range state's extra key `bulk_jobs`:
//!
//! ```json
//! {"state_type": "date-range", "slices": [...],
//!  "bulk_jobs": [{"start": "2024-01-01T00:00:00.000Z", "end": "2024-02-01T00:00:00.000Z",
//!                 "job_id": "750...", "locator": "MTAwMDA", "rows_done": 10000,
//!                 "page_rows_emitted": 420, "query": "5f1c0a3e9b2d4c71"}]}
//! ```
//!
//! `page_rows_emitted` (absent: 0) counts the rows of the page at `locator` a stopped sync
//! emitted before it stopped; the next sync reads that page again and skips them. A results page
//! is a stored file read at an offset (the locator), so the same locator gives the same rows in
//! the same order (believed from Salesforce's description of locators as positions in the
//! stored results; the emulated org serves them so). `page_last_id` (absent: not checked) is the
//! `Id` of the last of those rows: a page read again whose row at that place has another `Id`
//! (the stopped sync got the page with a row missing before it, say) is emitted whole again,
//! duplicates rather than a row skipped unseen.
//!
//! Airbyte's source-salesforce (CDK date-range converter) reads only `state_type` and `slices`
//! and writes only those back, so the key is ignored by it and dropped when it writes the state:
//! a sync that continues from such a state simply creates the jobs again.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::config::json_kind;
use crate::error::Error;
use crate::time::{format_instant, parse_instant};

/// The key of the in-flight jobs in a date-range state.
pub(crate) const JOBS_KEY: &str = "bulk_jobs";

/// A Bulk job reading the window `[start, end)` of a stream, and how far its results were
/// emitted: every page before `locator` (all of them before the first page when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCheckpoint {
    /// The window's inclusive lower bound.
    pub start: DateTime<Utc>,
    /// The window's exclusive upper bound.
    pub end: DateTime<Utc>,
    /// The job's id (`750...`).
    pub job_id: String,
    /// The locator of the next results page not yet emitted; `None` for the first page.
    pub locator: Option<String>,
    /// Rows emitted before `locator` (for the job's total count check).
    pub rows_done: u64,
    /// Rows of the page at `locator` already emitted (a sync stopped inside the page): skipped
    /// when the page is read again.
    pub page_rows_emitted: u64,
    /// The `Id` of the last of those rows, when known: the skip is checked against it.
    pub page_last_id: Option<String>,
    /// What identifies the job's query: [`query_hash`] of its operation, SOQL and API version.
    /// A job whose query differs from the one the window needs now is not continued.
    pub query: String,
}

impl JobCheckpoint {
    /// `rows` of the page at `locator` emitted, the last with `id`: copied into the string
    /// already held (no allocation after a page's first row: this runs for every Bulk row).
    pub(crate) fn emitted(&mut self, rows: u64, id: Option<&str>) {
        self.page_rows_emitted = rows;
        if let Some(id) = id {
            match &mut self.page_last_id {
                Some(last) => {
                    last.clear();
                    last.push_str(id);
                }
                None => self.page_last_id = Some(id.to_string()),
            }
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut job = json!({
            "start": format_instant(self.start),
            "end": format_instant(self.end),
            "job_id": self.job_id,
            "locator": self.locator,
            "rows_done": self.rows_done,
            "page_rows_emitted": self.page_rows_emitted,
            "query": self.query,
        });
        if let (Some(id), Some(obj)) = (&self.page_last_id, job.as_object_mut()) {
            obj.insert("page_last_id".to_string(), Value::String(id.clone()));
        }
        job
    }
}

/// A short, stable digest of a job's query (FNV-1a, 64 bits, as 16 hex digits): the operation,
/// the SOQL and the API version (results must be read with the version that created the job).
/// It identifies, it does not protect: the state is the user's own file.
pub fn query_hash(operation: &str, soql: &str, api_version: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [operation, "\n", soql, "\n", api_version] {
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Reads `bulk_jobs` of a date-range state (absent or `null`: none).
pub(crate) fn parse_jobs(
    stream: &str,
    obj: &Map<String, Value>,
    path: &str,
) -> Result<Vec<JobCheckpoint>, Error> {
    let invalid = |at: String, reason: String| Error::StateInvalid {
        stream: stream.to_string(),
        path: at,
        reason,
    };
    let entries = match obj.get(JOBS_KEY) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(invalid(
                format!("{path}.{JOBS_KEY}"),
                format!("expected a list of Bulk jobs, got {}", json_kind(other)),
            ))
        }
    };
    let mut jobs = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("{path}.{JOBS_KEY}[{i}]");
        let text = |key: &str| -> Result<Option<&str>, Error> {
            match entry.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.as_str())),
                Some(other) => Err(invalid(
                    format!("{at}.{key}"),
                    format!("expected a non-empty string, got {}", json_kind(other)),
                )),
            }
        };
        let required = |key: &str| -> Result<&str, Error> {
            text(key)?.ok_or_else(|| invalid(format!("{at}.{key}"), "missing".to_string()))
        };
        let instant = |key: &str| -> Result<DateTime<Utc>, Error> {
            let value = required(key)?;
            parse_instant(value).ok_or_else(|| {
                invalid(
                    format!("{at}.{key}"),
                    format!("`{value}` is not a datetime such as `2023-01-01T00:00:00.000Z`"),
                )
            })
        };
        if !entry.is_object() {
            return Err(invalid(
                at,
                format!("expected a Bulk job object, got {}", json_kind(entry)),
            ));
        }
        let (start, end) = (instant("start")?, instant("end")?);
        if end <= start {
            return Err(invalid(at, "its window ends before it starts".to_string()));
        }
        let count = |key: &str| -> Result<u64, Error> {
            match entry.get(key) {
                None | Some(Value::Null) => Ok(0),
                Some(v) => v.as_u64().ok_or_else(|| {
                    invalid(
                        format!("{at}.{key}"),
                        format!("expected a count of rows, got {}", json_kind(v)),
                    )
                }),
            }
        };
        let rows_done = count("rows_done")?;
        let page_rows_emitted = count("page_rows_emitted")?;
        jobs.push(JobCheckpoint {
            start,
            end,
            job_id: required("job_id")?.to_string(),
            locator: text("locator")?.map(str::to_string),
            rows_done,
            page_rows_emitted,
            page_last_id: text("page_last_id")?.map(str::to_string),
            query: required("query")?.to_string(),
        });
    }
    jobs.sort_by_key(|j| (j.start, j.end));
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_tells_queries_apart() {
        let a = query_hash("queryAll", "SELECT Id FROM Account", "62.0");
        assert_eq!(a, query_hash("queryAll", "SELECT Id FROM Account", "62.0"));
        assert_eq!(a.len(), 16);
        assert_ne!(a, query_hash("query", "SELECT Id FROM Account", "62.0"));
        assert_ne!(a, query_hash("queryAll", "SELECT Id FROM Account", "61.0"));
        assert_ne!(
            a,
            query_hash("queryAll", "SELECT Id, Name FROM Account", "62.0")
        );
        // FNV-1a of the empty input is its offset basis.
        assert_eq!(query_hash("", "", ""), {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in b"\n\n" {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            format!("{h:016x}")
        });
    }

    #[test]
    fn bad_entries_are_named_by_path() {
        let parse = |v: Value| parse_jobs("Account", v.as_object().unwrap(), "$").map(|_| ());
        let err = |v: Value| parse(v).unwrap_err().to_string();
        assert!(parse(json!({})).is_ok());
        assert!(parse(json!({"bulk_jobs": null})).is_ok());
        assert!(err(json!({"bulk_jobs": 3})).contains("$.bulk_jobs"));
        let good = json!({"start": "2024-01-01T00:00:00.000Z", "end": "2024-01-02T00:00:00.000Z",
                          "job_id": "750x", "locator": null, "rows_done": 0, "query": "ab"});
        assert!(parse(json!({ "bulk_jobs": [good.clone()] })).is_ok());
        let mut no_id = good.clone();
        no_id["job_id"] = Value::Null;
        assert!(err(json!({ "bulk_jobs": [no_id] })).contains("$.bulk_jobs[0].job_id"));
        let mut backwards = good.clone();
        backwards["end"] = json!("2023-01-01T00:00:00.000Z");
        assert!(err(json!({ "bulk_jobs": [backwards] })).contains("ends before it starts"));
        let mut rows = good.clone();
        rows["rows_done"] = json!(-1);
        assert!(err(json!({ "bulk_jobs": [rows] })).contains("$.bulk_jobs[0].rows_done"));
        let mut page = good.clone();
        page["page_rows_emitted"] = json!("many");
        assert!(err(json!({ "bulk_jobs": [page] })).contains("$.bulk_jobs[0].page_rows_emitted"));
    }

    #[test]
    fn rows_emitted_inside_a_page_round_trip_and_default_to_none() {
        let entry = json!({"start": "2024-01-01T00:00:00.000Z", "end": "2024-01-02T00:00:00.000Z",
                           "job_id": "750x", "locator": "NTA", "rows_done": 50, "query": "ab"});
        let jobs = parse_jobs(
            "Account",
            json!({ "bulk_jobs": [entry] }).as_object().unwrap(),
            "$",
        )
        .unwrap();
        assert_eq!(jobs[0].page_rows_emitted, 0);
        let mut job = jobs[0].clone();
        job.page_rows_emitted = 17;
        let written = json!({ "bulk_jobs": [job.to_json()] });
        assert_eq!(written["bulk_jobs"][0]["page_rows_emitted"], json!(17));
        let read = parse_jobs("Account", written.as_object().unwrap(), "$").unwrap();
        assert_eq!(read, vec![job]);
    }
}
