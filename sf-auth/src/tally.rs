//! Requests counted by what they were sent for: a caller runs a future under a [`RequestTag`]
//! (`RequestTag::new("Account", "count").scope(future)`), and every API request the session
//! sends from inside it, retries and replays included, is counted under that tag, its method
//! and its path ([`Session::tally`](crate::Session::tally)). The tag follows the task, not the
//! session: a future spawned on another task carries it only if scoped again
//! ([`RequestTag::current`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::lock::lock;

tokio::task_local! {
    static TAG: RequestTag;
}

/// What a request is sent for: a name (e.g. a stream) and a purpose within it (e.g. `count`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestTag {
    /// The name, e.g. a stream.
    pub name: Arc<str>,
    /// The purpose, e.g. `count`; empty when none.
    pub purpose: &'static str,
}

impl RequestTag {
    /// A tag.
    pub fn new(name: impl Into<Arc<str>>, purpose: &'static str) -> RequestTag {
        RequestTag {
            name: name.into(),
            purpose,
        }
    }

    /// The tag the current task runs under, if any.
    pub fn current() -> Option<RequestTag> {
        TAG.try_with(Clone::clone).ok()
    }

    /// Runs `future` with this tag.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        TAG.scope(self, future).await
    }

    /// Runs `future` with `tag` when there is one (to carry a tag onto a spawned task).
    pub async fn scope_opt<F: Future>(tag: Option<RequestTag>, future: F) -> F::Output {
        match tag {
            Some(tag) => tag.scope(future).await,
            None => future.await,
        }
    }
}

/// Requests sent under one tag (or none) with one method to one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedRequests {
    /// The tag, when the request was sent under one.
    pub tag: Option<RequestTag>,
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// The path as requested (relative to the data API, or absolute on the instance), without
    /// the query string, a query locator or a Bulk job id as `*`.
    pub path: String,
    /// How many were sent.
    pub count: u64,
}

/// The counts, shared by a session's clones.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally(Arc<Mutex<HashMap<TallyKey, u64>>>);

/// Tag, method and path.
type TallyKey = (Option<RequestTag>, &'static str, String);

impl Tally {
    /// Counts one request of the current task.
    pub(crate) fn record(&self, method: &'static str, path: &str) {
        let key = (RequestTag::current(), method, counted_path(path));
        *lock(&self.0).entry(key).or_insert(0) += 1;
    }

    /// Every count so far.
    pub(crate) fn snapshot(&self) -> Vec<TaggedRequests> {
        lock(&self.0)
            .iter()
            .map(|((tag, method, path), count)| TaggedRequests {
                tag: tag.clone(),
                method,
                path: path.clone(),
                count: *count,
            })
            .collect()
    }
}

/// The path a request is counted under: a query locator (`query/01g...-2000`) and a Bulk job id
/// (`jobs/query/750.../results`) become `*`, so the counts grow with the kinds of request, not
/// with every page of a long REST read or every job of a long sync.
fn counted_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let (mut before, mut last) = ("", "");
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let varying = !segment.is_empty()
            && (matches!(last, "query" | "queryAll") && before != "jobs"
                || (before, last) == ("jobs", "query"));
        out.push_str(if varying { "*" } else { segment });
        (before, last) = (last, segment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_and_job_ids_are_counted_as_one_path() {
        for (path, counted) in [
            ("query", "query"),
            ("queryAll", "queryAll"),
            (
                "/services/data/v62.0/query/01gRO0000016PIAYA2-2000",
                "/services/data/v62.0/query/*",
            ),
            ("queryAll/01gRO0000016PIAYA2-4000", "queryAll/*"),
            ("jobs/query", "jobs/query"),
            ("jobs/query/750R0000000zlh9IAA", "jobs/query/*"),
            (
                "jobs/query/750R0000000zlh9IAA/results",
                "jobs/query/*/results",
            ),
            (
                "jobs/query/750R0000000zlh9IAA/resultPages",
                "jobs/query/*/resultPages",
            ),
            ("sobjects/Account/deleted", "sobjects/Account/deleted"),
            ("composite", "composite"),
        ] {
            assert_eq!(counted_path(path), counted, "{path}");
        }
        let tally = Tally::default();
        for page in 0..500 {
            tally.record("GET", &format!("query/01gRO0000016PIAYA2-{}", page * 2000));
        }
        let counts = tally.snapshot();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].count, 500);
    }

    #[tokio::test]
    async fn requests_are_counted_under_the_tag_of_their_task() {
        let tally = Tally::default();
        tally.record("GET", "sobjects");
        let account = RequestTag::new("Account", "");
        account
            .clone()
            .scope(async {
                tally.record("GET", "query");
                tally.record("GET", "query");
                RequestTag::new("Account", "count")
                    .scope(async { tally.record("GET", "query") })
                    .await;
                let carried = RequestTag::current();
                assert_eq!(carried.as_ref(), Some(&account));
                RequestTag::scope_opt(carried, async { tally.record("POST", "jobs/query") }).await;
            })
            .await;
        let mut counts: Vec<(Option<String>, &str, String, u64)> = tally
            .snapshot()
            .into_iter()
            .map(|t| {
                let tag = t.tag.map(|t| format!("{}/{}", t.name, t.purpose));
                (tag, t.method, t.path, t.count)
            })
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            [
                (None, "GET", "sobjects".to_string(), 1),
                (Some("Account/".into()), "GET", "query".into(), 2),
                (Some("Account/".into()), "POST", "jobs/query".into(), 1),
                (Some("Account/count".into()), "GET", "query".into(), 1),
            ]
        );
    }
}
