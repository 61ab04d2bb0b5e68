//! getDeleted: `GET sobjects/{object}/deleted/?start=..&end=..`, the ids of an object's records
//! deleted in a window, read from the org's delete log. It lists records purged from the recycle
//! bin and hard-deleted ones, which `queryAll` no longer returns.
//!
//! What Salesforce documents (REST API guide, "sObject Get Deleted"; SOAP guide, `getDeleted()`):
//! only `replicateable` objects; seconds in `start` and `end` are ignored; the log keeps about
//! 15 days (less if it was purged); a window may span at most 30 days
//! ([`GET_DELETED_MAX_WINDOW`]); a window starting before what the log keeps, or too long, is
//! refused (`INVALID_REPLICATION_DATE`, which sf-auth classifies); more than 600,000 ids is
//! `EXCEEDED_ID_LIMIT`. One call is one API call; the answer is read whole (it is bounded).
//!
//! [`RestReader::deleted_batch`] asks for up to [`GET_DELETED_BATCH`] objects at once as the
//! subrequests of one `composite` call, which Salesforce counts as one API call whatever it
//! carries (REST API guide, "Composite": "The entire series of requests counts as a single call
//! toward your API limits"; composite serves "all sObject resources", getDeleted among them).
//! Sure of both; the subrequests' answers are the direct call's bodies and statuses. Its answer
//! is read up to [`GET_DELETED_BATCH_MAX_BYTES`]: 25 answers of up to 600,000 ids each would
//! otherwise be held at once; a larger one fails the batch, and each object asks alone.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sf_auth::composite::{composite_answers, composite_get};
use sf_auth::{ApiError, Request};

use crate::error::Error;
use crate::reader::RestReader;

/// The longest window one getDeleted call may ask for: 30 days.
pub const GET_DELETED_MAX_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// About how long the delete log keeps a deletion: 15 days (the org may purge it earlier).
pub const GET_DELETED_RETENTION: Duration = Duration::from_secs(15 * 86_400);

/// The most getDeleted subrequests one `composite` call carries (Salesforce's limit: 25).
pub const GET_DELETED_BATCH: usize = sf_auth::composite::COMPOSITE_MAX;

/// The most bytes of a [`RestReader::deleted_batch`] answer read: 32 MiB, about 450,000 deleted
/// ids in all (one direct answer may hold 600,000).
pub const GET_DELETED_BATCH_MAX_BYTES: usize = 32 << 20;

/// One object's getDeleted window, for [`RestReader::deleted_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedQuery {
    /// The object.
    pub object: String,
    /// The window's start (seconds are ignored).
    pub start: DateTime<Utc>,
    /// The window's end (at most [`GET_DELETED_MAX_WINDOW`] after the start).
    pub end: DateTime<Utc>,
}

/// One deleted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedRecord {
    /// The record's id.
    pub id: String,
    /// When it was deleted (its `SystemModstamp` at deletion).
    pub deleted_date: DateTime<Utc>,
}

/// The answer of one getDeleted call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletedRecords {
    /// The records deleted in the window, as listed.
    pub records: Vec<DeletedRecord>,
    /// The oldest deletion the log still knows of: a window starting earlier misses deletes.
    pub earliest_date_available: Option<DateTime<Utc>>,
    /// The log is complete up to here (at most the window's end): the next window should start
    /// no later.
    pub latest_date_covered: Option<DateTime<Utc>>,
}

/// The answer as sent; dates are borrowed from its text (an answer lists up to 600,000 records:
/// a `String` for each date would double what it holds).
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(default, rename = "deletedRecords", borrow)]
    deleted_records: Vec<WireRecord<'a>>,
    #[serde(default, rename = "earliestDateAvailable", borrow)]
    earliest_date_available: Option<Cow<'a, str>>,
    #[serde(default, rename = "latestDateCovered", borrow)]
    latest_date_covered: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireRecord<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "deletedDate", borrow)]
    deleted_date: Option<Cow<'a, str>>,
}

/// `2024-05-05T00:00:00+00:00`, the form Salesforce's guide writes (the session encodes `+`).
fn param(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

impl RestReader {
    /// The records of `object` deleted in `[start, end)` (at most [`GET_DELETED_MAX_WINDOW`];
    /// Salesforce ignores the seconds), in one API call.
    pub async fn deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedRecords, Error> {
        let build = |reason: String| Error::QueryBuild {
            object: object.to_string(),
            reason,
        };
        if !sf_discovery::is_valid_object_name(object) {
            return Err(build("not an object name".to_string()));
        }
        if start >= end {
            return Err(build(format!(
                "getDeleted window ends ({end}) before it starts ({start})"
            )));
        }
        let request = Request::get(format!("sobjects/{object}/deleted/"))
            .query("start", param(start))
            .query("end", param(end));
        let response = self
            .session
            .fetch(request)
            .await
            .map_err(|e| Error::from_session(object, e, || None))?;
        decode(object, &response.body)
    }
}

/// A timestamp for a subrequest's URL: [`param`]'s form with `:` and `+` percent-encoded (a
/// bare `+` in a query string reads as a space).
fn url_param(t: DateTime<Utc>) -> String {
    param(t).replace(':', "%3A").replace('+', "%2B")
}

impl RestReader {
    /// getDeleted for each of `queries` (at most [`GET_DELETED_BATCH`]) in one `composite`
    /// call: one API call for all of them. Answers come in the order of `queries`, matched by
    /// `referenceId`; a subrequest Salesforce refused is that query's error, as the direct call
    /// would have it. `Err` when the call fails as a whole, or its answer cannot be matched to
    /// the queries: then nothing is known, and each may be asked alone
    /// ([`RestReader::deleted`]).
    pub async fn deleted_batch(
        &self,
        queries: &[DeletedQuery],
    ) -> Result<Vec<Result<DeletedRecords, Error>>, Error> {
        self.deleted_batch_within(queries, GET_DELETED_BATCH_MAX_BYTES)
            .await
    }

    /// [`RestReader::deleted_batch`], reading at most `max_bytes` of the answer: a larger one
    /// is an `Err` (nothing is known; each query may be asked alone).
    pub async fn deleted_batch_within(
        &self,
        queries: &[DeletedQuery],
        max_bytes: usize,
    ) -> Result<Vec<Result<DeletedRecords, Error>>, Error> {
        let build = |reason: String| Error::QueryBuild {
            object: queries
                .iter()
                .map(|q| q.object.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            reason,
        };
        if queries.is_empty() || queries.len() > GET_DELETED_BATCH {
            return Err(build(format!(
                "{} getDeleted windows for one composite call (1 to {GET_DELETED_BATCH})",
                queries.len()
            )));
        }
        if let Some(bad) = queries
            .iter()
            .find(|q| !sf_discovery::is_valid_object_name(&q.object) || q.start >= q.end)
        {
            return Err(build(format!(
                "`{}`: not an object name, or a window ending before it starts",
                bad.object
            )));
        }
        let data_path = self.session.data_path();
        let urls: Vec<String> = queries
            .iter()
            .map(|q| {
                format!(
                    "{data_path}/sobjects/{}/deleted/?start={}&end={}",
                    q.object,
                    url_param(q.start),
                    url_param(q.end)
                )
            })
            .collect();
        let request = composite_get('g', urls.iter().map(String::as_str));
        let session_error = |e| Error::from_session("getDeleted (composite)", e, || None);
        let unreadable = |message: String| Error::QueryDecode {
            stream: "getDeleted (composite)".to_string(),
            message,
        };
        let body = self
            .session
            .send(request)
            .await
            .map_err(session_error)?
            .bytes_within(max_bytes, None)
            .await
            .map_err(|e| match e {
                sf_auth::Error::Decode { .. } => unreadable(format!(
                    "the composite answer is larger than {max_bytes} bytes; each object asks \
                     getDeleted alone"
                )),
                other => session_error(other),
            })?;
        let answers = composite_answers('g', queries.len(), &body)
            .map_err(|e| unreadable(format!("composite answer: {e}")))?;
        Ok(queries
            .iter()
            .zip(answers)
            .map(|(q, sub)| {
                if sub.is_success() {
                    serde_json::from_str::<Wire<'_>>(sub.body.get())
                        .map_err(|e| decode_error(&q.object, format!("getDeleted answer: {e}")))
                        .and_then(|wire| from_wire(&q.object, wire))
                } else {
                    let api = ApiError::from_body(sub.http_status_code, sub.body.get().as_bytes());
                    let source = sf_auth::Error::Api {
                        operation: format!("GET sobjects/{}/deleted (in composite)", q.object),
                        api,
                    };
                    Err(Error::from_session(&q.object, source, || None))
                }
            })
            .collect())
    }
}

fn decode_error(object: &str, message: String) -> Error {
    Error::QueryDecode {
        stream: object.to_string(),
        message,
    }
}

/// Reads a getDeleted answer; an entry without an id or a readable date makes the answer
/// unreadable (a tombstone needs both).
fn decode(object: &str, body: &[u8]) -> Result<DeletedRecords, Error> {
    let wire: Wire<'_> = serde_json::from_slice(body)
        .map_err(|e| decode_error(object, format!("getDeleted answer: {e}")))?;
    from_wire(object, wire)
}

fn from_wire(object: &str, wire: Wire<'_>) -> Result<DeletedRecords, Error> {
    let instant =
        |text: Option<Cow<'_, str>>| text.as_deref().and_then(sf_discovery::parse_datetime);
    let mut records = Vec::with_capacity(wire.deleted_records.len());
    for entry in wire.deleted_records {
        let deleted_date = instant(entry.deleted_date);
        match (entry.id.filter(|id| !id.is_empty()), deleted_date) {
            (Some(id), Some(deleted_date)) => records.push(DeletedRecord { id, deleted_date }),
            _ => {
                return Err(decode_error(
                    object,
                    "getDeleted answer: a deleted record without an id or a date".to_string(),
                ))
            }
        }
    }
    Ok(DeletedRecords {
        records,
        earliest_date_available: instant(wire.earliest_date_available),
        latest_date_covered: instant(wire.latest_date_covered),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates are borrowed from the answer's text; one written with an escape (which cannot be
    /// borrowed) reads the same.
    #[test]
    fn an_escaped_date_reads_as_the_plain_one() {
        let plain = br#"{"deletedRecords":[{"id":"a00D0000008pQRAIA2","deletedDate":"2013-05-07T22:07:19.000+0000"}]}"#;
        let escaped = br#"{"deletedRecords":[{"id":"a00D0000008pQRAIA2","deletedDate":"2013\u002D05-07T22:07:19.000+0000"}]}"#;
        let plain = decode("X__c", plain).ok();
        assert!(plain.as_ref().is_some_and(|d| d.records.len() == 1));
        assert_eq!(decode("X__c", escaped).ok(), plain);
    }

    #[test]
    fn decodes_the_documented_answer() {
        let body = br#"{"deletedRecords":[{"id":"a00D0000008pQRAIA2","deletedDate":"2013-05-07T22:07:19.000+0000"}],
            "earliestDateAvailable":"2013-05-03T15:57:00.000+0000","latestDateCovered":"2013-05-08T21:20:00.000+0000"}"#;
        let got = decode("Merchandise__c", body).ok();
        let t = |s: &str| sf_discovery::parse_datetime(s);
        assert_eq!(
            got,
            Some(DeletedRecords {
                records: vec![DeletedRecord {
                    id: "a00D0000008pQRAIA2".into(),
                    deleted_date: t("2013-05-07T22:07:19Z").unwrap_or_default(),
                }],
                earliest_date_available: t("2013-05-03T15:57:00Z"),
                latest_date_covered: t("2013-05-08T21:20:00Z"),
            })
        );
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        for body in [
            &b"<html>"[..],
            br#"{"deletedRecords":[{"id":"001"}]}"#,
            br#"{"deletedRecords":[{"deletedDate":"2013-05-07T22:07:19.000+0000"}]}"#,
            br#"{"deletedRecords":[{"id":"001","deletedDate":"yesterday"}]}"#,
            br#"{"deletedRecords":{}}"#,
        ] {
            let err = decode("Account", body).err();
            assert_eq!(
                err.map(|e| e.kind()),
                Some(crate::ErrorKind::UnexpectedBody),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            decode("Account", b"{}").ok(),
            Some(DeletedRecords::default())
        );
    }
}
