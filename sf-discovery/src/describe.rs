//! Describes in `composite` calls: 25 objects a call (one API call of the daily allowance), a
//! bounded number of calls in flight, failed subrequests retried alone.

use futures_util::stream::{self, Stream, StreamExt};
use serde_json::value::RawValue;
use serde_json::Value;
use sf_auth::composite::{composite_answers_borrowed, composite_get};
use sf_auth::{ApiError, ErrorKind, Request, Session};

use crate::error::Error;
use crate::model::{FieldSpec, FieldType, StreamSpec};
use crate::options::{DiscoveryOptions, DiscoveryWarning};
use crate::wire::DescribeWire;

/// One object's describe: its stream, the describe itself, and what was odd about it.
#[derive(Debug, Clone)]
pub struct ObjectDescribe {
    /// The stream built from the describe.
    pub stream: StreamSpec,
    /// The describe as Salesforce sent it, as raw JSON text (its size once, where a `Value`
    /// tree takes several times it): the record of the `Describe` stream. `None` once a caller
    /// has taken it (or let it go: a read that does not sync `Describe` keeps none).
    pub describe: Option<Box<RawValue>>,
    /// The describe says `replicateable: true`: getDeleted lists the object's deleted ids
    /// (hard deletes and purged rows included).
    pub replicateable: bool,
    /// Fields of unknown types (typed as strings).
    pub warnings: Vec<DiscoveryWarning>,
}

impl PartialEq for ObjectDescribe {
    fn eq(&self, other: &ObjectDescribe) -> bool {
        self.stream == other.stream
            && self.describe.as_ref().map(|d| d.get()) == other.describe.as_ref().map(|d| d.get())
            && self.replicateable == other.replicateable
            && self.warnings == other.warnings
    }
}

impl ObjectDescribe {
    /// Builds the stream from a describe payload (`GET sobjects/{name}/describe`).
    ///
    /// `requested` names the object in errors when the payload has no usable name. A describe
    /// that says `queryable: false` is [`Error::NotQueryable`].
    pub fn from_json(requested: &str, describe: Value) -> Result<ObjectDescribe, Error> {
        let raw =
            serde_json::value::to_raw_value(&describe).map_err(|e| Error::DescribeDecode {
                object: requested.to_string(),
                message: e.to_string(),
            })?;
        ObjectDescribe::from_raw(requested, raw)
    }

    /// As [`ObjectDescribe::from_json`], from the describe's JSON text as sent: only the few
    /// members a stream needs are decoded, no tree of the whole describe is built.
    pub fn from_raw(requested: &str, describe: Box<RawValue>) -> Result<ObjectDescribe, Error> {
        let mut object = ObjectDescribe::from_raw_ref(requested, &describe, false)?;
        object.describe = Some(describe);
        Ok(object)
    }

    /// As [`ObjectDescribe::from_raw`], from borrowed text, copied into
    /// [`ObjectDescribe::describe`] only when `keep`.
    pub fn from_raw_ref(
        requested: &str,
        describe: &RawValue,
        keep: bool,
    ) -> Result<ObjectDescribe, Error> {
        let wire: DescribeWire =
            serde_json::from_str(describe.get()).map_err(|e| Error::DescribeDecode {
                object: requested.to_string(),
                message: e.to_string(),
            })?;
        if !wire.queryable {
            return Err(Error::NotQueryable { object: wire.name });
        }
        let mut warnings = Vec::new();
        let fields: Vec<FieldSpec> = wire
            .fields
            .into_iter()
            .map(|f| {
                let field_type = FieldType::from_wire(&f.field_type);
                // `calculated` is an old spelling of a formula's type: loosely a string, as Airbyte
                // reads it, and nothing to warn about.
                if matches!(&field_type, FieldType::Unknown(t) if !t.eq_ignore_ascii_case("calculated"))
                {
                    tracing::warn!(object = %wire.name, field = %f.name, type_name = %f.field_type, "UnknownFieldType");
                    warnings.push(DiscoveryWarning::UnknownFieldType {
                        object: wire.name.clone(),
                        field: f.name.clone(),
                        type_name: f.field_type.clone(),
                    });
                }
                FieldSpec {
                    name: f.name,
                    field_type,
                    calculated: f.calculated,
                    compound_field_name: f.compound_field_name,
                    filterable: f.filterable,
                    sortable: f.sortable,
                    custom: f.custom,
                }
            })
            .collect();
        Ok(ObjectDescribe {
            replicateable: wire.replicateable,
            stream: StreamSpec::from_fields(wire.name, wire.custom, fields),
            describe: keep.then(|| describe.to_owned()),
            warnings,
        })
    }
}

/// True for an sObject API name: an ASCII letter, then letters, digits and `_`
/// (`Account`, `Invoice__c`, `ns__Thing__History`). Names are checked before they go into a
/// request path, so `../limits` or `Account/describe` never reach the org.
pub fn is_valid_object_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Describes the named objects through `POST composite`, yielding one result per object, in the
/// order given.
///
/// `options.describe_batch_size` objects go in one call (25 by default), at most
/// `options.describe_batches_in_flight` calls run at once, so N objects cost ⌈N/25⌉ HTTP requests
/// when every describe succeeds, and as many API calls of the daily allowance: Salesforce counts
/// a composite call once, whatever it carries. Each describe is a subrequest named by its
/// `referenceId` (`d0`, `d1`, ...), and answers are matched to objects by it; with `allOrNone`
/// false a failing subrequest leaves the others be. A subrequest that fails is retried alone
/// (`GET sobjects/{name}/describe`, one API call each) up to `options.describe_retries` times,
/// unless the object is not there (`NOT_FOUND`), not accessible (`INSUFFICIENT_ACCESS`) or not
/// queryable (`INVALID_TYPE`), the allowance is spent or the session refused;
/// one that keeps failing yields [`Error::Describe`] naming the object, and the stream goes on
/// with the other objects. An answer that cannot be matched to the subrequests counts as a
/// failure of each (each is then tried alone), and so does a call that fails as a whole for a
/// passing reason (a server error or a timeout past the session's retries: each object is asked
/// alone at least once). A call refused otherwise (the daily limit spent, the session refused,
/// the envelope refused) yields one [`Error::BatchRequest`] for its objects.
///
/// Memory stays bounded: at most the batches in flight are held, whatever the number of objects.
/// Names are checked first ([`Error::InvalidObjectName`]), as are the options.
pub fn describe_objects(
    session: &Session,
    names: Vec<String>,
    options: &DiscoveryOptions,
) -> Result<impl Stream<Item = Result<ObjectDescribe, Error>> + Send + 'static, Error> {
    options.validate()?;
    if let Some(bad) = names.iter().find(|n| !is_valid_object_name(n)) {
        return Err(Error::InvalidObjectName { name: bad.clone() });
    }
    let session = session.clone();
    let retries = options.describe_retries;
    let keep = options.keep_describes;
    let chunks: Vec<Vec<String>> = names
        .chunks(options.describe_batch_size)
        .map(<[String]>::to_vec)
        .collect();
    Ok(stream::iter(chunks)
        .map(move |chunk| describe_batch(session.clone(), chunk, retries, keep))
        .buffered(options.describe_batches_in_flight)
        .flat_map(stream::iter))
}

/// `a, b and 23 more`: how errors name the objects of a batch.
fn summarize(names: &[String]) -> String {
    match names {
        [] => "no objects".to_string(),
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` and `{b}`"),
        [a, b, rest @ ..] => format!("`{a}`, `{b}` and {} more", rest.len()),
    }
}

async fn describe_batch(
    session: Session,
    names: Vec<String>,
    retries: u32,
    keep: bool,
) -> Vec<Result<ObjectDescribe, Error>> {
    let data_path = session.data_path();
    let urls: Vec<String> = names
        .iter()
        .map(|name| format!("{data_path}/sobjects/{name}/describe"))
        .collect();
    let request = composite_get('d', urls.iter().map(String::as_str));
    tracing::debug!(objects = names.len(), "DescribeBatchSent");
    let response = match session.fetch(request).await {
        Ok(response) => response,
        // A call that failed for a reason another call may not meet (a server error past the
        // session's retries, a timeout): each object is asked alone, so one bad call fails at
        // most its own objects, each named, and not the whole catalog.
        Err(source) if source.kind() == ErrorKind::Transient => {
            tracing::warn!(objects = names.len(), error = %source, "DescribeBatchFailed");
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                out.push(retry_alone(&session, name, source.clone(), retries.max(1), keep).await);
            }
            return out;
        }
        Err(source) => {
            return vec![Err(Error::BatchRequest {
                objects: summarize(&names),
                source: Box::new(source),
            })]
        }
    };
    // Borrowed from the answer's bytes: only what each stream needs is decoded, and a describe
    // is copied only when kept.
    let answers = composite_answers_borrowed('d', names.len(), &response.body);
    let answers = match answers {
        Ok(answers) => answers,
        Err(message) => {
            // An answer that cannot be matched to the describes: each object is tried alone
            // rather than all of them lost.
            tracing::warn!(objects = names.len(), error = %message, "DescribeBatchUnreadable");
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let failure = sf_auth::Error::Decode {
                    operation: format!(
                        "POST composite (describes of {})",
                        summarize(std::slice::from_ref(&name))
                    ),
                    message: message.to_string(),
                };
                out.push(retry_alone(&session, name, failure, retries, keep).await);
            }
            return out;
        }
    };
    let mut out = Vec::with_capacity(names.len());
    for (name, sub) in names.into_iter().zip(answers) {
        if sub.is_success() {
            out.push(ObjectDescribe::from_raw_ref(&name, sub.body, keep));
            continue;
        }
        let api = ApiError::from_body(sub.http_status_code, sub.body.get().as_bytes());
        let failure = sf_auth::Error::Api {
            operation: format!("GET sobjects/{name}/describe (in composite)"),
            api,
        };
        out.push(retry_alone(&session, name, failure, retries, keep).await);
    }
    out
}

/// Whether a failed describe may succeed alone: not when the allowance is spent, the session is
/// refused, the object is not there (`NOT_FOUND`: deleted since describeGlobal, or not visible),
/// the user may not see it (`INSUFFICIENT_ACCESS`) or it cannot be queried (`INVALID_TYPE`),
/// where another try only spends an API call.
fn worth_retrying(error: &sf_auth::Error) -> bool {
    !matches!(
        error.kind(),
        ErrorKind::DailyLimitExceeded
            | ErrorKind::LoginRefused
            | ErrorKind::Unauthenticated
            | ErrorKind::NotFound
            | ErrorKind::InsufficientAccess
            | ErrorKind::ObjectNotQueryable
    )
}

async fn retry_alone(
    session: &Session,
    name: String,
    mut last: sf_auth::Error,
    retries: u32,
    keep: bool,
) -> Result<ObjectDescribe, Error> {
    let mut attempts: u32 = 1;
    while attempts <= retries && worth_retrying(&last) {
        attempts += 1;
        tracing::info!(object = %name, attempt = attempts, error = %last, "DescribeRetriedAlone");
        match session
            .fetch(Request::get(format!("sobjects/{name}/describe")))
            .await
        {
            Ok(response) => {
                let describe: &RawValue =
                    serde_json::from_slice(&response.body).map_err(|e| Error::DescribeDecode {
                        object: name.clone(),
                        message: e.to_string(),
                    })?;
                return ObjectDescribe::from_raw_ref(&name, describe, keep);
            }
            Err(e) => last = e,
        }
    }
    Err(Error::Describe {
        object: name,
        attempts,
        source: Box::new(last),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_names_are_checked() {
        for good in ["Account", "Invoice__c", "ns__Thing__History", "A1"] {
            assert!(is_valid_object_name(good), "{good}");
        }
        for bad in [
            "",
            "1Account",
            "Account/describe",
            "Acc ount",
            "../limits",
            "Ä",
        ] {
            assert!(!is_valid_object_name(bad), "{bad}");
        }
    }

    #[test]
    fn batches_are_named_briefly() {
        let names: Vec<String> = ["Account", "Contact", "Lead", "User"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(summarize(&names[..1]), "`Account`");
        assert_eq!(summarize(&names[..2]), "`Account` and `Contact`");
        assert_eq!(summarize(&names), "`Account`, `Contact` and 2 more");
    }

    #[test]
    fn describes_that_cannot_succeed_are_not_retried_alone() {
        let failure = |status: u16, code: &str| sf_auth::Error::Api {
            operation: "GET sobjects/Thing__c/describe (in composite)".to_string(),
            api: ApiError::from_body(
                status,
                format!(r#"[{{"errorCode":"{code}","message":"no"}}]"#).as_bytes(),
            ),
        };
        for (status, code) in [
            (404, "NOT_FOUND"),
            (403, "INSUFFICIENT_ACCESS"),
            (403, "INSUFFICIENT_ACCESS_OR_READONLY"),
            (400, "INVALID_TYPE"),
            (403, "REQUEST_LIMIT_EXCEEDED"),
            (401, "INVALID_SESSION_ID"),
        ] {
            assert!(!worth_retrying(&failure(status, code)), "{code}");
        }
        for (status, code) in [
            (500, "UNKNOWN_EXCEPTION"),
            (503, "SERVER_UNAVAILABLE"),
            (400, "API_ERROR"),
        ] {
            assert!(worth_retrying(&failure(status, code)), "{code}");
        }
    }

    #[test]
    fn a_describe_becomes_a_stream() {
        let describe = json!({
            "name": "Thing__c", "custom": true, "queryable": true,
            "fields": [
                {"name": "Id", "type": "id", "filterable": true, "sortable": true},
                {"name": "IsDeleted", "type": "boolean"},
                {"name": "Total__c", "type": "currency", "calculated": true, "custom": true},
                {"name": "Blob__c", "type": "quantumfoam", "custom": true},
                {"name": "Old__c", "type": "calculated", "custom": true},
                {"name": "CreatedDate", "type": "datetime"},
                {"name": "Notes__c", "type": "textarea", "filterable": false, "sortable": false}
            ]
        });
        let d = ObjectDescribe::from_json("Thing__c", describe.clone()).unwrap();
        let kept: Value =
            serde_json::from_str(d.describe.as_ref().map_or("", |d| d.get())).unwrap();
        assert_eq!(kept, describe);
        assert!(!d.replicateable, "absent: not replicateable");
        let mut replicable = describe.clone();
        replicable["replicateable"] = json!(true);
        assert!(
            ObjectDescribe::from_json("Thing__c", replicable)
                .unwrap()
                .replicateable
        );
        let s = &d.stream;
        assert_eq!(s.name, "Thing__c");
        assert!(s.custom);
        assert_eq!(s.primary_key.as_deref(), Some("Id"));
        assert_eq!(s.cursor_field.as_deref(), Some("CreatedDate"));
        assert!(s.supports_incremental);
        assert!(s.has_is_deleted);
        assert_eq!(
            s.formula_fields()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>(),
            ["Total__c"]
        );
        let notes = s.field("notes__c").unwrap();
        assert!(!notes.filterable && !notes.sortable);
        assert_eq!(
            d.warnings,
            vec![DiscoveryWarning::UnknownFieldType {
                object: "Thing__c".into(),
                field: "Blob__c".into(),
                type_name: "quantumfoam".into(),
            }]
        );
        assert_eq!(
            s.json_schema()["properties"]["Blob__c"],
            json!({"type": ["string", "null"]})
        );
    }

    #[test]
    fn malformed_and_unqueryable_describes_are_errors_not_panics() {
        for bad in [
            json!(null),
            json!([]),
            json!({"name": "X"}),
            json!({"name": "X", "fields": [{"name": "Id"}]}),
            json!({"name": "X", "fields": [{"type": "id"}]}),
            json!({"name": 3, "fields": []}),
        ] {
            match ObjectDescribe::from_json("X", bad.clone()) {
                Err(Error::DescribeDecode { object, .. }) => assert_eq!(object, "X"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let err =
            ObjectDescribe::from_json("Y", json!({"name": "Y", "queryable": false, "fields": []}))
                .unwrap_err();
        assert!(matches!(&err, Error::NotQueryable { object } if object == "Y"));
        assert!(err.is_inaccessible());
    }
}
