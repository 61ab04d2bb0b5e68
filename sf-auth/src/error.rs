//! Errors: Salesforce's error bodies, what each answer means ([`ErrorKind`]), and this crate's
//! error type.
//!
//! This module is the workspace's one reading of Salesforce's answers: the HTTP status, the REST
//! `errorCode`, the OAuth `error` and, where Salesforce says more in words than in codes, the
//! message. Every other crate keeps the [`Error`] it got as its source and asks [`Error::kind`].

use std::fmt;

use serde::Deserialize;

mod login;
pub use login::LoginFailure;

/// What a failure means: the one classification every crate of the workspace acts on.
///
/// The kinds that come from Salesforce's answers are decided here only ([`classify`],
/// [`classify_job_failure`]); the crates above add the kinds of their own failures (a Bulk job
/// that failed or was aborted, results cut short) from the same list, so a sync engine maps one
/// enum to its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The token endpoint refused the credentials (a login or a token renewal): the config must
    /// change.
    LoginRefused,
    /// A data call was answered 401 although the session had just renewed its token and
    /// replayed the call (the session was revoked twice, or killed by an admin): the credentials
    /// worked a moment ago, so another run is the fix.
    Unauthenticated,
    /// The org's daily API limit (`TotalRequests`) is used up, or this sync's API budget is.
    DailyLimitExceeded,
    /// Too many concurrent long-running requests; retry later.
    ConcurrentLimit,
    /// The org's daily allocation of Bulk query jobs (400 `LIMIT_EXCEEDED`) is used up.
    BulkJobLimit,
    /// The resource does not exist (404, `NOT_FOUND`).
    NotFound,
    /// The object does not exist or this user may not query it (`INVALID_TYPE`).
    ObjectNotQueryable,
    /// The user lacks access to the object or record (`INSUFFICIENT_ACCESS`,
    /// `INSUFFICIENT_ACCESS_OR_READONLY`).
    InsufficientAccess,
    /// The user lacks a permission that [`ApiError::required_permission`] names ("Implementation
    /// restriction" asks for [`VIEW_ALL_DATA`], `TXN_SECURITY_METERING_ERROR` for
    /// [`EXEMPT_FROM_TRANSACTION_SECURITY`]).
    PermissionRequired,
    /// Salesforce serves the object only with a `WHERE` clause its message spells out
    /// ("Implementation restriction: ContentDocumentLink requires a filter by a single Id ...",
    /// "... When querying the Vote object, you must filter using the following syntax: ..."): a
    /// query of the whole object is refused, and "View All Data" does not change that (the
    /// documented exception: Query All Files lets ContentDocumentLink be read unfiltered from
    /// API 59.0).
    FilterRequired,
    /// A selected field does not exist or is not visible (`INVALID_FIELD`).
    InvalidField,
    /// The SOQL is malformed (`MALFORMED_QUERY`, `INVALID_QUERY_FILTER_OPERATOR`).
    MalformedQuery,
    /// The query ran too long (`QUERY_TIMEOUT`, or a Bulk job that gave up on its size): a
    /// narrower query may succeed.
    QueryTimeout,
    /// The query locator expired or is unknown (`INVALID_QUERY_LOCATOR`).
    InvalidQueryLocator,
    /// The request's URI or headers were too long (414, 431).
    RequestTooLong,
    /// getDeleted refused its window (`INVALID_REPLICATION_DATE`): it starts before what the
    /// org's delete log keeps (or more than 30 days ago), spans more than 30 days or less than a
    /// minute.
    ReplicationDateRefused,
    /// The answer would hold more than Salesforce lists at once (`EXCEEDED_ID_LIMIT`: a
    /// getDeleted window of more than 600,000 ids): a narrower window may succeed.
    TooManyResults,
    /// Bulk API 2.0 cannot serve this query (`INVALIDENTITY` "... is not supported by the Bulk
    /// API", "Selecting compound data not supported in Bulk Query", "... does not support
    /// query"): read it through REST instead.
    BulkNotSupported,
    /// A Bulk job ended in `Failed` for a reason no other kind names.
    JobFailed,
    /// A Bulk job was aborted by someone else.
    JobAborted,
    /// A Bulk job ran longer than the caller allows and was aborted.
    JobTimedOut,
    /// A Bulk job or its results are gone (deleted, expired, unknown locator): start a new job.
    JobNotFound,
    /// An answer was cut short or held fewer rows than announced: read again from the last
    /// checkpoint.
    ResultsIncomplete,
    /// Results are not what was asked for (header, charset, a value of the wrong type): reading
    /// again will not help.
    ResultsInvalid,
    /// A successful answer's body could not be read as expected (a proxy's page, a cut body).
    UnexpectedBody,
    /// Worth retrying: network trouble, 5xx, 406, 408, 420, 429, `SERVER_UNAVAILABLE`, and the
    /// token endpoint's `invalid_grant` "token request is already being processed".
    Transient,
    /// A value given to the crate (a login URL, a Bulk setting, a job id) is not usable.
    InvalidConfig,
    /// The request could not be built (an invalid name, a row too wide to split).
    InvalidRequest,
    /// Anything else.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::LoginRefused => "login refused",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::DailyLimitExceeded => "daily api limit",
            ErrorKind::ConcurrentLimit => "concurrent request limit",
            ErrorKind::BulkJobLimit => "daily bulk job limit",
            ErrorKind::NotFound => "not found",
            ErrorKind::ObjectNotQueryable => "object not queryable",
            ErrorKind::InsufficientAccess => "insufficient access",
            ErrorKind::PermissionRequired => "permission required",
            ErrorKind::FilterRequired => "filter required",
            ErrorKind::InvalidField => "invalid field",
            ErrorKind::MalformedQuery => "query rejected",
            ErrorKind::QueryTimeout => "query timeout",
            ErrorKind::InvalidQueryLocator => "invalid query locator",
            ErrorKind::RequestTooLong => "request too long",
            ErrorKind::TooManyResults => "too many results",
            ErrorKind::ReplicationDateRefused => "replication date refused",
            ErrorKind::BulkNotSupported => "not supported by bulk",
            ErrorKind::JobFailed => "job failed",
            ErrorKind::JobAborted => "job aborted",
            ErrorKind::JobTimedOut => "job timed out",
            ErrorKind::JobNotFound => "job not found",
            ErrorKind::ResultsIncomplete => "results incomplete",
            ErrorKind::ResultsInvalid => "results invalid",
            ErrorKind::UnexpectedBody => "unexpected body",
            ErrorKind::Transient => "transient",
            ErrorKind::InvalidConfig => "config",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::Other => "other",
        })
    }
}

/// The permission "Implementation restriction" errors ask for.
pub const VIEW_ALL_DATA: &str = "View All Data";
/// The permission `TXN_SECURITY_METERING_ERROR` asks for.
pub const EXEMPT_FROM_TRANSACTION_SECURITY: &str = "Exempt from Transaction Security";

/// A Salesforce error answer: status, `errorCode` and message, from whichever body shape it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `errorCode` (REST) or `error` (OAuth); `None` when the body had neither.
    pub error_code: Option<String>,
    /// `message` (REST) or `error_description` (OAuth), or the raw body (trimmed) otherwise.
    pub message: String,
    /// `fields` of a REST error, when present.
    pub fields: Vec<String>,
}

#[derive(Deserialize)]
struct RestErrorWire {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "errorCode")]
    error_code: Option<String>,
    #[serde(default)]
    fields: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct OAuthErrorWire {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// How much of a non-JSON body is kept in a message.
const MAX_RAW_BODY: usize = 300;

impl ApiError {
    /// Parses an error body of any shape: the REST array `[{"message","errorCode","fields"}]`, a
    /// single REST object, the OAuth object `{"error","error_description"}`, or anything else
    /// (HTML, empty), which keeps the start of the body as the message.
    pub fn from_body(status: u16, body: &[u8]) -> ApiError {
        if let Ok(mut list) = serde_json::from_slice::<Vec<RestErrorWire>>(body) {
            if !list.is_empty() {
                let first = list.swap_remove(0);
                return ApiError {
                    status,
                    error_code: first.error_code,
                    message: first.message.unwrap_or_default(),
                    fields: first.fields.unwrap_or_default(),
                };
            }
        }
        if let Ok(oauth) = serde_json::from_slice::<OAuthErrorWire>(body) {
            return ApiError {
                status,
                error_code: Some(oauth.error),
                message: oauth.error_description.unwrap_or_default(),
                fields: Vec::new(),
            };
        }
        if let Ok(single) = serde_json::from_slice::<RestErrorWire>(body) {
            if single.error_code.is_some() || single.message.is_some() {
                return ApiError {
                    status,
                    error_code: single.error_code,
                    message: single.message.unwrap_or_default(),
                    fields: single.fields.unwrap_or_default(),
                };
            }
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = match text.char_indices().nth(MAX_RAW_BODY) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text.to_string(),
        };
        ApiError {
            status,
            error_code: None,
            message,
            fields: Vec::new(),
        }
    }

    /// This error with every occurrence of each of `secrets` in its text replaced by `***`: a
    /// proxy's or firewall's page may echo the request it refused, form or headers included.
    pub(crate) fn redacted<S: AsRef<str>>(mut self, secrets: &[S]) -> ApiError {
        self.message = crate::redact::redact(&self.message, secrets);
        if let Some(code) = &self.error_code {
            self.error_code = Some(crate::redact::redact(code, secrets));
        }
        for field in &mut self.fields {
            *field = crate::redact::redact(field, secrets);
        }
        self
    }

    /// The semantic kind of this error.
    pub fn kind(&self) -> ErrorKind {
        classify(self.status, self.error_code.as_deref(), &self.message)
    }

    /// True when this token-endpoint answer refuses a refresh only because another request
    /// with the same refresh token is being processed: `invalid_grant` "token request is already
    /// being processed", or, when `refresh_grant`, "expired authorization code", the wording of
    /// the same answer before September 2024 (the JWT bearer grant reads those words as an
    /// expired assertion, the code exchange as a used code). Worth retrying, and never kept as a
    /// refusal.
    pub(crate) fn refresh_in_progress(&self, refresh_grant: bool) -> bool {
        self.code_is("invalid_grant")
            && (token_request_in_progress(&self.message)
                || (refresh_grant
                    && self
                        .message
                        .to_ascii_lowercase()
                        .contains("expired authorization code")))
    }

    /// True when `errorCode` equals `code`.
    pub fn code_is(&self, code: &str) -> bool {
        self.error_code.as_deref() == Some(code)
    }

    /// The permission to grant the user when the kind is [`ErrorKind::PermissionRequired`]:
    /// [`VIEW_ALL_DATA`] or [`EXEMPT_FROM_TRANSACTION_SECURITY`].
    pub fn required_permission(&self) -> Option<&'static str> {
        required_permission(self.error_code.as_deref(), &self.message)
    }

    /// The field an `INVALID_FIELD` answer is about: the `X` of "No such column 'X' on entity
    /// 'Y'", else the first of `fields`.
    pub fn field_name(&self) -> Option<String> {
        field_in_message(&self.message).or_else(|| self.fields.first().cloned())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error_code {
            Some(code) => write!(f, "HTTP {} {}: {}", self.status, code, self.message),
            None if self.message.is_empty() => write!(f, "HTTP {} with an empty body", self.status),
            None => write!(f, "HTTP {}: {}", self.status, self.message),
        }
    }
}

/// Maps a Salesforce answer to its kind. With [`classify_job_failure`], this is the only place
/// in the workspace that reads Salesforce's codes and messages.
pub fn classify(status: u16, error_code: Option<&str>, message: &str) -> ErrorKind {
    if status == 401 {
        return ErrorKind::Unauthenticated;
    }
    if filter_required(message) {
        return ErrorKind::FilterRequired;
    }
    if required_permission(error_code, message).is_some() {
        return ErrorKind::PermissionRequired;
    }
    if error_code == Some("INVALIDENTITY") || bulk_refusal(message) {
        return ErrorKind::BulkNotSupported;
    }
    match (status, error_code) {
        (_, Some("REQUEST_LIMIT_EXCEEDED")) => {
            if message.contains("ConcurrentRequests") || message.contains("ConcurrentPerOrg") {
                ErrorKind::ConcurrentLimit
            } else {
                ErrorKind::DailyLimitExceeded
            }
        }
        (400, Some("LIMIT_EXCEEDED")) => ErrorKind::BulkJobLimit,
        (_, Some("QUERY_TIMEOUT")) => ErrorKind::QueryTimeout,
        (_, Some("INVALID_FIELD")) => ErrorKind::InvalidField,
        (_, Some("INVALID_TYPE")) => ErrorKind::ObjectNotQueryable,
        (_, Some("MALFORMED_QUERY" | "INVALID_QUERY_FILTER_OPERATOR")) => ErrorKind::MalformedQuery,
        (_, Some("INVALID_QUERY_LOCATOR")) => ErrorKind::InvalidQueryLocator,
        (_, Some("INSUFFICIENT_ACCESS" | "INSUFFICIENT_ACCESS_OR_READONLY")) => {
            ErrorKind::InsufficientAccess
        }
        (404, _) | (_, Some("NOT_FOUND")) => ErrorKind::NotFound,
        (414 | 431, _) => ErrorKind::RequestTooLong,
        (_, Some("EXCEEDED_ID_LIMIT")) => ErrorKind::TooManyResults,
        (_, Some("INVALID_REPLICATION_DATE")) => ErrorKind::ReplicationDateRefused,
        (406 | 408 | 420 | 429, _) => ErrorKind::Transient,
        (500..=599, _) => ErrorKind::Transient,
        // Salesforce's internal error (its recorded answers send it as a 500): passing whatever
        // status it comes with, as README's error table says.
        (_, Some("SERVER_UNAVAILABLE" | "UNKNOWN_EXCEPTION")) => ErrorKind::Transient,
        (_, Some("invalid_grant")) if token_request_in_progress(message) => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

/// True when the token endpoint says another token request with the same refresh token is
/// being processed: `invalid_grant` "token request is already being processed" (Salesforce
/// serializes the refreshes of one refresh token since Summer '24; the second of two concurrent
/// ones is answered so). Once the first is done, the same request succeeds: a passing failure,
/// not a refusal of the credentials.
fn token_request_in_progress(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("already being processed")
}

/// The kind of a Bulk job that ended in `Failed`, from its `errorMessage`: a permission it
/// lacks, a query Bulk cannot serve, a query too large or too slow for one job (Salesforce
/// retries a job internally and gives up with "Retried more than 15 times" or a time limit, so a
/// narrower window may succeed: [`ErrorKind::QueryTimeout`]), else [`ErrorKind::JobFailed`].
pub fn classify_job_failure(message: &str) -> ErrorKind {
    if filter_required(message) {
        return ErrorKind::FilterRequired;
    }
    if required_permission(None, message).is_some() {
        return ErrorKind::PermissionRequired;
    }
    if bulk_refusal(message) {
        return ErrorKind::BulkNotSupported;
    }
    let lower = message.to_ascii_lowercase();
    let for_size = [
        "retried more than",
        "timed out",
        "time limit",
        "too long",
        "too large",
    ];
    if for_size.iter().any(|needle| lower.contains(needle)) {
        ErrorKind::QueryTimeout
    } else {
        ErrorKind::JobFailed
    }
}

/// The permission an answer asks for, from its `errorCode` (if any) and message: a failed Bulk
/// job's `errorMessage` has no code.
pub fn required_permission(error_code: Option<&str>, message: &str) -> Option<&'static str> {
    if error_code == Some("TXN_SECURITY_METERING_ERROR") {
        Some(EXEMPT_FROM_TRANSACTION_SECURITY)
    } else if implementation_restriction(message) && !filter_required(message) {
        Some(VIEW_ALL_DATA)
    } else {
        None
    }
}

fn implementation_restriction(message: &str) -> bool {
    message
        .trim_start()
        .starts_with("Implementation restriction")
}

/// True when an "Implementation restriction" is about the query's filter, not the user's
/// permissions: the object is served only with a `WHERE` clause the message spells out. Seen
/// (Salesforce's documentation for ContentDocumentLink: "You can't run a query without filters";
/// the messages as users report them, sure of their wording up to punctuation):
/// "ContentDocumentLink requires a filter by a single Id on ContentDocumentId or LinkedEntityId
/// ...", "FieldDefinition requires a filter by a single Durable Id ...", "When querying the Vote
/// object, you must filter using the following syntax: ...", "When querying or searching the
/// Knowledge__kav object, you must filter using ...". Other restrictions (an activity
/// relationship a non-admin may read only with a `LIMIT`) stay a matter of "View All Data", as
/// Airbyte's connector treats them all.
fn filter_required(message: &str) -> bool {
    implementation_restriction(message)
        && (message.contains("requires a filter") || message.contains("must filter"))
}

/// True when a message says Bulk API 2.0 cannot serve the query.
fn bulk_refusal(message: &str) -> bool {
    let message = message.trim().trim_end_matches('.');
    message.contains("is not supported by the Bulk API")
        || message.contains("Selecting compound data not supported in Bulk Query")
        || message.ends_with("does not support query")
}

/// The field in Salesforce's `No such column 'X' on entity 'Y'` (a REST `INVALID_FIELD` message,
/// or a failed Bulk job's `errorMessage`).
pub fn field_in_message(message: &str) -> Option<String> {
    const MARK: &str = "No such column '";
    let start = message.find(MARK)? + MARK.len();
    let rest = &message[start..];
    let end = rest.find('\'')?;
    let name = &rest[..end];
    (!name.is_empty()).then(|| name.to_string())
}

/// This crate's error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The login URL in the config is not usable.
    #[error("invalid login_url `{url}`: {reason}")]
    InvalidLoginUrl {
        /// The URL as given.
        url: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The token endpoint refused the credentials.
    #[error("login failed ({api}): {}", failure.advice())]
    Login {
        /// What went wrong, in the user's terms.
        failure: LoginFailure,
        /// Salesforce's answer.
        api: ApiError,
    },
    /// Salesforce answered with an error.
    #[error("{operation} failed: {api}")]
    Api {
        /// What was being done (method and path, without the query string).
        operation: String,
        /// Salesforce's answer.
        api: ApiError,
    },
    /// The token endpoint answered with a redirect (3xx), which is not followed: the request's
    /// form carries the client secret and the refresh token (or the code and its verifier), and
    /// goes to the configured login host only.
    #[error(
        "{operation} was answered HTTP {status}, a redirect to {location}, which is not followed \
         (the request carries the credentials): set `login_url` to the host that answers token \
         requests, or check the network's proxy"
    )]
    Redirected {
        /// What was being done.
        operation: String,
        /// The 3xx status.
        status: u16,
        /// Where the redirect points: its scheme, host and port only, never its path or query.
        location: String,
    },
    /// The request never got an answer (connect error, timeout, reset).
    #[error("{operation} failed: network error: {message}")]
    Network {
        /// What was being done.
        operation: String,
        /// The transport's description (no URL, no headers).
        message: String,
        /// True when the failure was a timeout.
        timeout: bool,
    },
    /// A successful answer whose body could not be read as expected.
    #[error("{operation}: unexpected response body: {message}")]
    Decode {
        /// What was being done.
        operation: String,
        /// What was wrong with the body.
        message: String,
    },
    /// The request could not be built (a path that does not join onto the instance URL).
    #[error("{operation}: cannot build the request: {message}")]
    InvalidRequest {
        /// What was being done.
        operation: String,
        /// What was wrong.
        message: String,
    },
    /// The JWT bearer flow's private key cannot sign (never shown).
    #[error("invalid private_key: {reason}")]
    InvalidPrivateKey {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// This sync's share of the daily API limit (`api_budget`) is used up.
    #[error("the API budget is used up: {used} of {max} daily requests used, budget {budget}")]
    BudgetExhausted {
        /// Requests used in the rolling 24 hours.
        used: u64,
        /// The org's daily allocation.
        max: u64,
        /// The most this sync may let `used` reach.
        budget: u64,
    },
}

impl Error {
    /// The semantic kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidLoginUrl { .. }
            | Error::InvalidPrivateKey { .. }
            | Error::Redirected { .. } => ErrorKind::InvalidConfig,
            Error::Login { .. } => ErrorKind::LoginRefused,
            Error::Api { api, .. } => api.kind(),
            Error::Network { .. } => ErrorKind::Transient,
            Error::Decode { .. } => ErrorKind::UnexpectedBody,
            Error::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Error::BudgetExhausted { .. } => ErrorKind::DailyLimitExceeded,
        }
    }

    /// Salesforce's answer, when there was one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Login { api, .. } | Error::Api { api, .. } => Some(api),
            _ => None,
        }
    }

    /// Salesforce's `errorCode` (or OAuth `error`), when there was an answer with one.
    pub fn error_code(&self) -> Option<&str> {
        self.api_error().and_then(|api| api.error_code.as_deref())
    }
}

#[cfg(test)]
mod tests;
