//! The run report: per stream, the API used and why, windows, rows, Bulk jobs and polls, API
//! calls by kind and seconds, with the daily allowance before and after (`read --report`).
//!
//! The calls come from the session's tally ([`sf_auth::Session::tally`]): every request a
//! stream's task sends is counted under the stream's name, `SELECT COUNT()` calls under its
//! `count` purpose, and the rest (describes, `/limits`) as the run's own.

use std::collections::BTreeMap;

use serde::Serialize;
use sf_auth::{Session, TaggedRequests};

pub use crate::access::Allowance;
use crate::planner::Api;
use crate::sink::{StreamPlan, StreamStatus, StreamSummary, SyncSummary};

/// API calls by kind, as the org's statistics count them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    /// `SELECT COUNT()` queries (volume for the plan).
    pub count: u64,
    /// First pages of `query` / `queryAll`.
    pub query: u64,
    /// Follow-up pages (`nextRecordsUrl`).
    pub query_more: u64,
    /// Bulk query jobs created.
    pub bulk_create: u64,
    /// Bulk job polls.
    pub bulk_poll: u64,
    /// Bulk results pages.
    pub bulk_results: u64,
    /// Listings of a job's result pages (`jobs/query/{id}/resultPages`, to fetch them in
    /// parallel).
    pub bulk_result_pages: u64,
    /// Bulk jobs aborted.
    pub bulk_abort: u64,
    /// Bulk jobs deleted.
    pub bulk_delete: u64,
    /// `composite` calls (25 describes each).
    pub composite: u64,
    /// describeGlobal.
    pub describe_global: u64,
    /// `/limits`.
    pub limits: u64,
    /// getDeleted (`sobjects/{object}/deleted`: hard deletes).
    pub get_deleted: u64,
    /// Anything else.
    pub other: u64,
    /// All of the above.
    pub total: u64,
}

impl CallCounts {
    fn add(&mut self, purpose: &str, method: &str, path: &str, n: u64) {
        let trimmed = path.trim_start_matches('/');
        // Absolute paths (`nextRecordsUrl`) carry `services/data/vXX.X/` first.
        let relative = match trimmed.strip_prefix("services/data/") {
            Some(rest) => rest.split_once('/').map_or("", |(_, r)| r),
            None => trimmed,
        };
        let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
        let slot = match (method, parts.as_slice()) {
            (_, ["query" | "queryAll"]) if purpose == "count" => &mut self.count,
            (_, ["query" | "queryAll"]) => &mut self.query,
            (_, ["query" | "queryAll", _]) => &mut self.query_more,
            ("POST", ["jobs", "query"]) => &mut self.bulk_create,
            ("GET", ["jobs", "query", _]) => &mut self.bulk_poll,
            ("PATCH", ["jobs", "query", _]) => &mut self.bulk_abort,
            ("DELETE", ["jobs", "query", _]) => &mut self.bulk_delete,
            (_, ["jobs", "query", _, "results"]) => &mut self.bulk_results,
            (_, ["jobs", "query", _, "resultPages"]) => &mut self.bulk_result_pages,
            (_, ["composite"]) => &mut self.composite,
            (_, ["sobjects"]) => &mut self.describe_global,
            (_, ["limits"]) => &mut self.limits,
            (_, ["sobjects", _, "deleted"]) => &mut self.get_deleted,
            _ => &mut self.other,
        };
        *slot += n;
        self.total += n;
    }
}

/// One stream's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamReport {
    /// The stream.
    pub stream: String,
    /// `complete` or `incomplete`.
    pub status: &'static str,
    /// `rest` or `bulk` (the last one, after any fallback); `None` if never read.
    pub api: Option<&'static str>,
    /// Why that API.
    pub why: Option<String>,
    /// The rows the `SELECT COUNT()` announced, when counted.
    pub estimated_rows: Option<u64>,
    /// Records emitted.
    pub rows: u64,
    /// Windows completed.
    pub windows: u64,
    /// Bulk query jobs created.
    pub bulk_jobs: u64,
    /// Bulk job polls.
    pub bulk_polls: u64,
    /// API calls by kind.
    pub calls: CallCounts,
    /// Seconds from the stream's start to its end.
    pub seconds: f64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// Seconds the read took.
    pub seconds: f64,
    /// API requests the read sent (every retry included).
    pub api_requests: u64,
    /// The daily allowance before and after the read (each read by one `/limits` call, counted
    /// in `setup_calls`).
    pub allowance_before: Option<Allowance>,
    /// See `allowance_before`.
    pub allowance_after: Option<Allowance>,
    /// Calls not sent for one stream: describes, `/limits`.
    pub setup_calls: CallCounts,
    /// One entry per stream, in catalog order.
    pub streams: Vec<StreamReport>,
}

/// What a sink observed of one stream besides the summary: its plan and how long it ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamObservation {
    /// The last plan the stream sent.
    pub plan: Option<StreamPlan>,
    /// Seconds from `Started` to its final status.
    pub seconds: f64,
}

/// The daily allowance now, from `/limits` (`None` if it did not answer).
pub async fn allowance(session: &Session) -> Option<Allowance> {
    let limits = session.limits().await.ok()?;
    Some(Allowance {
        used: limits
            .daily_api_requests
            .max
            .saturating_sub(limits.daily_api_requests.remaining),
        max: limits.daily_api_requests.max,
    })
}

/// API calls by stream (tag name) and the rest, from a tally (or the difference of two).
pub fn calls_by_stream(tally: &[TaggedRequests]) -> (BTreeMap<String, CallCounts>, CallCounts) {
    let mut streams: BTreeMap<String, CallCounts> = BTreeMap::new();
    let mut setup = CallCounts::default();
    for t in tally {
        match &t.tag {
            Some(tag) => streams.entry(tag.name.to_string()).or_default().add(
                tag.purpose,
                t.method,
                &t.path,
                t.count,
            ),
            None => setup.add("", t.method, &t.path, t.count),
        }
    }
    (streams, setup)
}

/// `after` less `before`, per tag, method and path.
pub fn tally_since(before: &[TaggedRequests], after: &[TaggedRequests]) -> Vec<TaggedRequests> {
    after
        .iter()
        .map(|a| {
            let earlier = before
                .iter()
                .find(|b| b.tag == a.tag && b.method == a.method && b.path == a.path)
                .map_or(0, |b| b.count);
            TaggedRequests {
                count: a.count.saturating_sub(earlier),
                ..a.clone()
            }
        })
        .filter(|t| t.count > 0)
        .collect()
}

/// Builds the report of a read from its summary, what the sink observed per stream, the
/// session's tally over the read and the allowance around it.
pub fn build(
    summary: &SyncSummary,
    observed: &BTreeMap<String, StreamObservation>,
    tally: &[TaggedRequests],
    allowance_before: Option<Allowance>,
    allowance_after: Option<Allowance>,
    seconds: f64,
) -> RunReport {
    let (mut per_stream, setup_calls) = calls_by_stream(tally);
    let streams = summary
        .streams
        .iter()
        .map(|s: &StreamSummary| {
            let calls = per_stream.remove(&s.stream).unwrap_or_default();
            let seen = observed.get(&s.stream);
            let plan = seen.and_then(|o| o.plan.as_ref());
            StreamReport {
                stream: s.stream.clone(),
                status: match s.status {
                    StreamStatus::Complete => "complete",
                    _ => "incomplete",
                },
                api: s.api.map(|a| match a {
                    Api::Rest => "rest",
                    Api::Bulk => "bulk",
                }),
                why: plan.map(|p| p.reason.clone()),
                estimated_rows: plan.and_then(|p| p.estimated_rows),
                rows: s.records,
                windows: s.windows,
                bulk_jobs: calls.bulk_create,
                bulk_polls: calls.bulk_poll,
                seconds: seen.map_or(0.0, |o| o.seconds),
                calls,
            }
        })
        .collect();
    RunReport {
        seconds,
        api_requests: summary.api_requests.unwrap_or(0),
        allowance_before,
        allowance_after,
        setup_calls,
        streams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_auth::RequestTag;

    fn t(
        tag: Option<(&str, &'static str)>,
        method: &'static str,
        path: &str,
        count: u64,
    ) -> TaggedRequests {
        TaggedRequests {
            tag: tag.map(|(n, p)| RequestTag::new(n, p)),
            method,
            path: path.to_string(),
            count,
        }
    }

    #[test]
    fn calls_are_sorted_by_stream_and_kind() {
        let tally = [
            t(None, "GET", "sobjects", 1),
            t(None, "POST", "composite", 2),
            t(None, "GET", "limits", 2),
            t(Some(("Account", "count")), "GET", "query", 1),
            t(Some(("Account", "")), "POST", "jobs/query", 1),
            t(Some(("Account", "")), "GET", "jobs/query/750x", 3),
            t(Some(("Account", "")), "GET", "jobs/query/750x/results", 2),
            t(
                Some(("Account", "")),
                "GET",
                "jobs/query/750x/resultPages",
                1,
            ),
            t(Some(("Account", "")), "DELETE", "jobs/query/750x", 1),
            t(Some(("Lead", "")), "GET", "queryAll", 1),
            t(
                Some(("Lead", "")),
                "GET",
                "/services/data/v62.0/query/01g-2000",
                4,
            ),
        ];
        let (streams, setup) = calls_by_stream(&tally);
        assert_eq!(
            (
                setup.describe_global,
                setup.composite,
                setup.limits,
                setup.total
            ),
            (1, 2, 2, 5)
        );
        let account = &streams["Account"];
        assert_eq!(
            (
                account.count,
                account.bulk_create,
                account.bulk_poll,
                account.bulk_results,
                account.bulk_result_pages,
                account.bulk_delete,
                account.other,
                account.total
            ),
            (1, 1, 3, 2, 1, 1, 0, 9)
        );
        let lead = &streams["Lead"];
        assert_eq!((lead.query, lead.query_more, lead.total), (1, 4, 5));
        let since = tally_since(
            &tally[..2],
            &[
                t(None, "GET", "sobjects", 3),
                t(None, "POST", "composite", 2),
            ],
        );
        assert_eq!(since, [t(None, "GET", "sobjects", 2)]);
    }
}
