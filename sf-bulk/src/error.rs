//! This crate's error, the decoder's error, and what each failure means for the sync engine.

use sf_auth::ApiError;

/// What a failure means: sf-auth's one classification, which this crate's errors answer with
/// ([`Error::kind`]). The kinds this crate acts on: [`ErrorKind::BulkNotSupported`] (read the
/// object through REST), [`ErrorKind::BulkJobLimit`], [`ErrorKind::DailyLimitExceeded`],
/// [`ErrorKind::JobFailed`], [`ErrorKind::JobAborted`], [`ErrorKind::JobTimedOut`],
/// [`ErrorKind::JobNotFound`], [`ErrorKind::PermissionRequired`],
/// [`ErrorKind::ResultsIncomplete`] (read again from the last checkpoint) and
/// [`ErrorKind::ResultsInvalid`].
pub use sf_auth::ErrorKind;
pub use sf_auth::{EXEMPT_FROM_TRANSACTION_SECURITY, VIEW_ALL_DATA};

/// This crate's error.
///
/// Variants are named by operation and stage; those that come from a Salesforce answer keep it
/// as their source (an [`sf_auth::Error`], which classified it). Use [`Error::kind`] to decide
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A [`crate::BulkConfig`] field is out of range.
    #[error("invalid bulk config: `{field}` {reason}")]
    Config {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A job id is not a Salesforce id (letters and digits only).
    #[error("invalid bulk job id `{job_id}`: expected up to 40 letters and digits")]
    InvalidJobId {
        /// The id as given (cut to 60 characters).
        job_id: String,
    },
    /// `POST jobs/query` failed.
    #[error("creating the bulk query job failed: {source}{}", advice(source))]
    JobCreate {
        /// Salesforce's answer or the transport failure.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// `GET jobs/query/{id}` failed.
    #[error("polling bulk job {job_id} failed: {source}{}", advice(source))]
    JobPoll {
        /// The job.
        job_id: String,
        /// Salesforce's answer or the transport failure.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// The job info named a state this crate does not know.
    #[error("bulk job {job_id} is in an unknown state `{state}`")]
    JobState {
        /// The job.
        job_id: String,
        /// The state as sent.
        state: String,
    },
    /// The job ended in `Failed`.
    #[error(
        "bulk job {job_id} failed: {}{}",
        if error_message.trim().is_empty() { "Salesforce gave no errorMessage" } else { error_message },
        message_advice(error_message)
    )]
    JobFailed {
        /// The job.
        job_id: String,
        /// Salesforce's `errorMessage` (empty when it sent none).
        error_message: String,
    },
    /// The job ended in `Aborted` without this crate asking for it.
    #[error("bulk job {job_id} was aborted")]
    JobAborted {
        /// The job.
        job_id: String,
    },
    /// The job did not complete in time; it was aborted.
    #[error(
        "bulk job {job_id} did not complete within {timeout_secs} s (job_timeout) and was aborted"
    )]
    JobTimedOut {
        /// The job.
        job_id: String,
        /// The configured timeout, in seconds.
        timeout_secs: u64,
    },
    /// `PATCH jobs/query/{id}` (abort) failed.
    #[error("aborting bulk job {job_id} failed: {source}")]
    JobAbort {
        /// The job.
        job_id: String,
        /// Salesforce's answer or the transport failure.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// `DELETE jobs/query/{id}` failed.
    #[error("deleting bulk job {job_id} failed: {source}")]
    JobDelete {
        /// The job.
        job_id: String,
        /// Salesforce's answer or the transport failure.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// `GET jobs/query/{id}/results` was refused or never answered.
    #[error(
        "requesting results page {} of bulk job {job_id} failed: {source}{}",
        page(locator),
        advice(source)
    )]
    ResultsRequest {
        /// The job.
        job_id: String,
        /// The page's locator (`None`: the first page).
        locator: Option<String>,
        /// Salesforce's answer or the transport failure.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// The body of a results page broke off.
    #[error(
        "reading results page {} of bulk job {job_id} failed: {source}",
        page(locator)
    )]
    ResultsRead {
        /// The job.
        job_id: String,
        /// The page's locator (`None`: the first page).
        locator: Option<String>,
        /// The transport failure.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// `GET jobs/query/{id}/resultPages` (the listing of pages to fetch in parallel) was
    /// refused, never answered, or answered with something else than a listing of this job's
    /// pages.
    #[error("listing the result pages of bulk job {job_id} (resultPages) failed: {reason}")]
    ResultPages {
        /// The job.
        job_id: String,
        /// What was wrong (Salesforce's answer or the transport failure is also the source).
        reason: String,
        /// Salesforce's answer or the transport failure, when there was one.
        #[source]
        source: Option<Box<sf_auth::Error>>,
    },
    /// A results page could not be decoded.
    #[error(
        "decoding results page {} of bulk job {job_id} failed: {source}",
        page(locator)
    )]
    ResultsDecode {
        /// The job.
        job_id: String,
        /// The page's locator (`None`: the first page).
        locator: Option<String>,
        /// What was wrong.
        #[source]
        source: DecodeError,
    },
    /// A page held a different number of rows than its `Sforce-NumberOfRecords` header said.
    #[error(
        "results page {} of bulk job {job_id} held {received} rows but Sforce-NumberOfRecords \
         announced {announced}",
        page(locator)
    )]
    ResultsPageCount {
        /// The job.
        job_id: String,
        /// The page's locator (`None`: the first page).
        locator: Option<String>,
        /// Rows announced by the header.
        announced: u64,
        /// Rows decoded.
        received: u64,
    },
    /// The pages together held a different number of rows than `numberRecordsProcessed`.
    #[error(
        "bulk job {job_id} processed {processed} records but its results held {received} rows"
    )]
    ResultsTotalCount {
        /// The job.
        job_id: String,
        /// `numberRecordsProcessed` of the completed job.
        processed: u64,
        /// Rows read over all pages (including those before a resume point).
        received: u64,
    },
    /// A results page broke the protocol (an unreadable header, a locator that does not advance).
    #[error("results page {} of bulk job {job_id}: {message}", page(locator))]
    ResultsProtocol {
        /// The job.
        job_id: String,
        /// The page's locator (`None`: the first page).
        locator: Option<String>,
        /// What was wrong.
        message: String,
    },
}

/// Why a results page could not be decoded. Rows are numbered from 1, the header row excluded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The header row does not name the requested columns.
    #[error("the header row {found:?} does not match the requested columns {expected:?}")]
    Header {
        /// The requested columns.
        expected: Vec<String>,
        /// The header row as received.
        found: Vec<String>,
    },
    /// A row has the wrong number of fields.
    #[error("row {row} has {found} fields, expected {expected}")]
    FieldCount {
        /// The row.
        row: u64,
        /// The number of requested columns.
        expected: usize,
        /// The number of fields found.
        found: usize,
    },
    /// A value does not convert to its column's type.
    #[error("row {row}, column `{column}`: `{value}` is not a valid {expected}")]
    Value {
        /// The row.
        row: u64,
        /// The column.
        column: String,
        /// The value (cut to 100 characters).
        value: String,
        /// The type it should have had (`number`, `integer`, `boolean`, `datetime`).
        expected: &'static str,
    },
    /// A row is not valid in the page's charset (row 0: the header).
    #[error("row {row} is not valid {charset}")]
    Encoding {
        /// The row.
        row: u64,
        /// The charset.
        charset: &'static str,
    },
    /// The `Content-Type` names a charset this crate does not decode.
    #[error(
        "charset `{charset}` is not supported (UTF-8, US-ASCII, ISO-8859-1 and windows-1252 are)"
    )]
    Charset {
        /// The charset as sent.
        charset: String,
    },
    /// One record holds more bytes or fields than any Salesforce record can: a quote never
    /// closed, most likely, which would otherwise make the rest of the page one value held in
    /// memory.
    #[error(
        "row {row} holds more than {limit} {what}, more than any Salesforce record: the page is \
         malformed (a quote never closed?)"
    )]
    RecordTooLarge {
        /// The row.
        row: u64,
        /// The limit passed.
        limit: usize,
        /// `bytes` or `fields`.
        what: &'static str,
    },
    /// The page ended inside a quoted value: the body was cut short.
    #[error("the page ends inside a quoted value in row {row}: the body was cut short")]
    Truncated {
        /// The row that was cut.
        row: u64,
    },
}

impl DecodeError {
    /// What this failure means for the caller.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::Truncated { .. } | DecodeError::FieldCount { .. } => {
                ErrorKind::ResultsIncomplete
            }
            _ => ErrorKind::ResultsInvalid,
        }
    }
}

fn page(locator: &Option<String>) -> String {
    match locator {
        None => "1 (no locator)".to_string(),
        Some(l) => format!("at locator `{l}`"),
    }
}

fn advice(source: &sf_auth::Error) -> String {
    source
        .api_error()
        .and_then(sf_auth::ApiError::required_permission)
        .map(grant)
        .unwrap_or_default()
}

fn message_advice(message: &str) -> String {
    sf_auth::required_permission(None, message)
        .map(grant)
        .unwrap_or_default()
}

fn grant(permission: &str) -> String {
    format!("; grant the Salesforce user the \"{permission}\" permission")
}

/// The kind of a failed request to create a job: a refusal with 403 or 404 that names no other
/// reason means Bulk 2.0 is not available for it (Airbyte's connector falls back to REST on any
/// other 403 at job creation, e.g. the Bulk API is not enabled for the user; a 404 means the API
/// version has no Bulk 2.0 query).
fn creation_kind(source: &sf_auth::Error) -> ErrorKind {
    let kind = source.kind();
    let status = source.api_error().map_or(0, |api| api.status);
    match kind {
        ErrorKind::PermissionRequired
        | ErrorKind::FilterRequired
        | ErrorKind::BulkNotSupported
        | ErrorKind::BulkJobLimit
        | ErrorKind::DailyLimitExceeded
        // A concurrency limit (403 `REQUEST_LIMIT_EXCEEDED` "ConcurrentPerOrgLongTxn") still
        // refusing after the session's longer retries passes with time: it is no sign that Bulk
        // cannot serve the object, and reading a large object through REST instead would cost
        // an API call per 2,000 rows.
        | ErrorKind::ConcurrentLimit
        | ErrorKind::Transient
        | ErrorKind::Unauthenticated => kind,
        _ if matches!(status, 403 | 404) => ErrorKind::BulkNotSupported,
        _ => kind,
    }
}

/// The kind of a failed request about an existing job: a job or locator Salesforce does not
/// know any more is gone.
fn job_request_kind(source: &sf_auth::Error) -> ErrorKind {
    match source.kind() {
        ErrorKind::NotFound | ErrorKind::InvalidQueryLocator => ErrorKind::JobNotFound,
        kind => kind,
    }
}

impl Error {
    /// What this failure means for the caller.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } | Error::InvalidJobId { .. } => ErrorKind::InvalidConfig,
            Error::JobCreate { source } => creation_kind(source),
            Error::JobPoll { source, .. }
            | Error::JobAbort { source, .. }
            | Error::JobDelete { source, .. }
            | Error::ResultsRequest { source, .. }
            | Error::ResultsRead { source, .. } => job_request_kind(source),
            Error::JobState { .. } => ErrorKind::Other,
            Error::JobFailed { error_message, .. } => sf_auth::classify_job_failure(error_message),
            Error::JobAborted { .. } => ErrorKind::JobAborted,
            Error::JobTimedOut { .. } => ErrorKind::JobTimedOut,
            Error::ResultsDecode { source, .. } => source.kind(),
            Error::ResultsPageCount { .. } | Error::ResultsTotalCount { .. } => {
                ErrorKind::ResultsIncomplete
            }
            Error::ResultsProtocol { .. } => ErrorKind::ResultsInvalid,
            Error::ResultPages { source, .. } => source
                .as_deref()
                .map_or(ErrorKind::ResultsInvalid, job_request_kind),
        }
    }

    /// Salesforce's `errorCode`, when the failure came with one.
    pub fn error_code(&self) -> Option<&str> {
        self.session_error().and_then(sf_auth::Error::error_code)
    }

    /// Salesforce's error answer, when the failure came with one.
    pub fn api_error(&self) -> Option<&ApiError> {
        self.session_error().and_then(sf_auth::Error::api_error)
    }

    /// The session's error under this one, when a request failed.
    pub fn session_error(&self) -> Option<&sf_auth::Error> {
        match self {
            Error::JobCreate { source }
            | Error::JobPoll { source, .. }
            | Error::JobAbort { source, .. }
            | Error::JobDelete { source, .. }
            | Error::ResultsRequest { source, .. }
            | Error::ResultsRead { source, .. } => Some(source),
            Error::ResultPages { source, .. } => source.as_deref(),
            _ => None,
        }
    }

    /// The permission to grant the Salesforce user ([`VIEW_ALL_DATA`] or
    /// [`EXEMPT_FROM_TRANSACTION_SECURITY`]) when the kind is [`ErrorKind::PermissionRequired`].
    pub fn required_permission(&self) -> Option<&'static str> {
        match self {
            Error::JobFailed { error_message, .. } => {
                sf_auth::required_permission(None, error_message)
            }
            _ => self
                .api_error()
                .and_then(sf_auth::ApiError::required_permission),
        }
    }

    /// The job this failure concerns, when there is one.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            Error::Config { .. } | Error::InvalidJobId { .. } | Error::JobCreate { .. } => None,
            Error::JobPoll { job_id, .. }
            | Error::JobState { job_id, .. }
            | Error::JobFailed { job_id, .. }
            | Error::JobAborted { job_id }
            | Error::JobTimedOut { job_id, .. }
            | Error::JobAbort { job_id, .. }
            | Error::JobDelete { job_id, .. }
            | Error::ResultsRequest { job_id, .. }
            | Error::ResultsRead { job_id, .. }
            | Error::ResultsDecode { job_id, .. }
            | Error::ResultsPageCount { job_id, .. }
            | Error::ResultsTotalCount { job_id, .. }
            | Error::ResultsProtocol { job_id, .. }
            | Error::ResultPages { job_id, .. } => Some(job_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, message: &str) -> Box<sf_auth::Error> {
        Box::new(sf_auth::Error::Api {
            operation: "POST jobs/query".to_string(),
            api: ApiError {
                status,
                error_code: Some(code.to_string()),
                message: message.to_string(),
                fields: Vec::new(),
            },
        })
    }

    #[test]
    fn creation_failures_are_classified() {
        let cases = [
            (
                400,
                "INVALIDENTITY",
                "Account is not supported by the Bulk API",
                ErrorKind::BulkNotSupported,
            ),
            (
                400,
                "FUNCTIONALITY_NOT_ENABLED",
                "Selecting compound data not supported in Bulk Query",
                ErrorKind::BulkNotSupported,
            ),
            (
                400,
                "API_ERROR",
                "Entity 'CaseStatus' does not support query",
                ErrorKind::BulkNotSupported,
            ),
            (
                400,
                "LIMIT_EXCEEDED",
                "Max bulk v2 query jobs (10000) per 24 hrs has been reached (10021)",
                ErrorKind::BulkJobLimit,
            ),
            (
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                ErrorKind::DailyLimitExceeded,
            ),
            (
                400,
                "API_ERROR",
                "Implementation restriction: ContentDocumentLink requires a filter",
                ErrorKind::FilterRequired,
            ),
            (
                400,
                "TXN_SECURITY_METERING_ERROR",
                "We can't complete the action because enabled transaction security policies took too long to complete.",
                ErrorKind::PermissionRequired,
            ),
            (
                403,
                "API_DISABLED_FOR_ORG",
                "The REST API is not enabled",
                ErrorKind::BulkNotSupported,
            ),
            (
                400,
                "INVALID_FIELD",
                "No such column 'Foo' on entity 'Account'",
                ErrorKind::InvalidField,
            ),
            (
                400,
                "INVALID_TYPE",
                "sObject type 'Foo__c' is not supported",
                ErrorKind::ObjectNotQueryable,
            ),
            (503, "SERVER_UNAVAILABLE", "busy", ErrorKind::Transient),
            // A concurrency limit still refusing after the session's retries is no reason to
            // read through REST: it passes with time.
            (
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentPerOrgLongTxn Limit exceeded.",
                ErrorKind::ConcurrentLimit,
            ),
            (400, "API_ERROR", "something else", ErrorKind::Other),
        ];
        for (status, code, message, want) in cases {
            let err = Error::JobCreate {
                source: api(status, code, message),
            };
            assert_eq!(err.kind(), want, "{status} {code} {message}");
            assert_eq!(err.error_code(), Some(code));
        }
    }

    #[test]
    fn permission_errors_name_the_permission() {
        let err = Error::JobCreate {
            source: api(
                400,
                "API_ERROR",
                "Implementation restriction: you need more",
            ),
        };
        assert_eq!(err.required_permission(), Some(VIEW_ALL_DATA));
        assert!(err.to_string().contains("\"View All Data\""), "{err}");
        let err = Error::ResultsRequest {
            job_id: "750x".to_string(),
            locator: None,
            source: api(400, "TXN_SECURITY_METERING_ERROR", "took too long"),
        };
        assert_eq!(err.kind(), ErrorKind::PermissionRequired);
        assert!(
            err.to_string()
                .contains("\"Exempt from Transaction Security\""),
            "{err}"
        );
        let err = Error::JobFailed {
            job_id: "750x".to_string(),
            error_message: "Implementation restriction: filter on Id".to_string(),
        };
        assert_eq!(err.kind(), ErrorKind::PermissionRequired);
        assert_eq!(err.required_permission(), Some(VIEW_ALL_DATA));
    }

    #[test]
    fn not_found_after_creation_means_the_job_is_gone() {
        let err = Error::JobPoll {
            job_id: "750x".to_string(),
            source: api(404, "NOT_FOUND", "The requested resource does not exist"),
        };
        assert_eq!(err.kind(), ErrorKind::JobNotFound);
        assert_eq!(err.job_id(), Some("750x"));
        let err = Error::JobFailed {
            job_id: "750x".to_string(),
            error_message: "Unexpected exception encountered in query processing".to_string(),
        };
        assert_eq!(err.kind(), ErrorKind::JobFailed);
        assert_eq!(err.required_permission(), None);
        assert_eq!(
            err.to_string(),
            "bulk job 750x failed: Unexpected exception encountered in query processing"
        );
    }
}
