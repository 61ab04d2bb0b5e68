//! Errors: Salesforce's error bodies, their semantic kinds, and this crate's error type.

use std::fmt;

use serde::Deserialize;

/// What an error means for the caller: the one classification every crate above relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The session or the credentials are not valid (401, or a token-endpoint refusal).
    Unauthenticated,
    /// The org's daily API limit (`TotalRequests`) is used up, or this sync's API budget is.
    DailyLimitExceeded,
    /// Too many concurrent long-running requests; retry later.
    ConcurrentLimit,
    /// The resource does not exist (404, `NOT_FOUND`).
    NotFound,
    /// A selected field does not exist or is not visible (`INVALID_FIELD`).
    InvalidField,
    /// The SOQL is malformed (`MALFORMED_QUERY`, `INVALID_TYPE`, ...).
    MalformedQuery,
    /// The query ran too long (`QUERY_TIMEOUT`): narrow it.
    QueryTimeout,
    /// The query locator expired or is unknown (`INVALID_QUERY_LOCATOR`).
    InvalidQueryLocator,
    /// Worth retrying: network trouble, 5xx, 406, 420, 429.
    Transient,
    /// Anything else.
    Other,
}

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

    /// The semantic kind of this error.
    pub fn kind(&self) -> ErrorKind {
        classify(self.status, self.error_code.as_deref(), &self.message)
    }

    /// True when `errorCode` equals `code`.
    pub fn code_is(&self, code: &str) -> bool {
        self.error_code.as_deref() == Some(code)
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

/// Maps a Salesforce answer to its semantic kind. This is the only place that does so.
pub fn classify(status: u16, error_code: Option<&str>, message: &str) -> ErrorKind {
    match (status, error_code) {
        (401, _) => ErrorKind::Unauthenticated,
        (_, Some("REQUEST_LIMIT_EXCEEDED")) => {
            if message.contains("ConcurrentRequests") || message.contains("ConcurrentPerOrg") {
                ErrorKind::ConcurrentLimit
            } else {
                ErrorKind::DailyLimitExceeded
            }
        }
        (_, Some("QUERY_TIMEOUT")) => ErrorKind::QueryTimeout,
        (_, Some("INVALID_FIELD")) => ErrorKind::InvalidField,
        (_, Some("MALFORMED_QUERY" | "INVALID_TYPE" | "INVALID_QUERY_FILTER_OPERATOR")) => {
            ErrorKind::MalformedQuery
        }
        (_, Some("INVALID_QUERY_LOCATOR")) => ErrorKind::InvalidQueryLocator,
        (404, _) | (_, Some("NOT_FOUND")) => ErrorKind::NotFound,
        (406 | 420 | 429, _) => ErrorKind::Transient,
        (500..=599, _) => ErrorKind::Transient,
        (_, Some("SERVER_UNAVAILABLE")) => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

/// Why logging in failed, in terms a user can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginFailure {
    /// `invalid_grant` "expired access/refresh token": the refresh token was revoked or expired.
    ExpiredRefreshToken,
    /// `invalid_grant` "authentication failure" and similar: the credentials or login host are wrong.
    AuthenticationFailure,
    /// `invalid_client_id`: the client id (consumer key) is unknown.
    UnknownClientId,
    /// `invalid_client`: the client secret is wrong.
    WrongClientSecret,
    /// client_credentials sent to a login host rather than a My Domain.
    WrongDomainForGrant,
    /// Any other refusal.
    Other,
}

impl LoginFailure {
    pub(crate) fn from_api(err: &ApiError) -> LoginFailure {
        let msg = err.message.to_ascii_lowercase();
        match err.error_code.as_deref() {
            Some("invalid_grant") if msg.contains("expired access/refresh token") => {
                LoginFailure::ExpiredRefreshToken
            }
            Some("invalid_grant") if msg.contains("not supported on this domain") => {
                LoginFailure::WrongDomainForGrant
            }
            Some("invalid_grant") => LoginFailure::AuthenticationFailure,
            Some("invalid_client_id") => LoginFailure::UnknownClientId,
            Some("invalid_client") => LoginFailure::WrongClientSecret,
            _ => LoginFailure::Other,
        }
    }

    /// What the user should do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            LoginFailure::ExpiredRefreshToken => {
                "the refresh token was revoked or has expired: re-authenticate and replace \
                 `refresh_token` in the config"
            }
            LoginFailure::AuthenticationFailure => {
                "check `client_id`, `client_secret` and `refresh_token`, and that the login host \
                 matches the org (`is_sandbox` for sandboxes, or `login_url` for a My Domain)"
            }
            LoginFailure::UnknownClientId => {
                "the connected app's consumer key is not known to this org: check `client_id` \
                 and the login host"
            }
            LoginFailure::WrongClientSecret => {
                "the consumer secret does not match the connected app: check `client_secret`"
            }
            LoginFailure::WrongDomainForGrant => {
                "the client credentials flow needs the org's My Domain: set `login_url` to \
                 https://<mydomain>.my.salesforce.com"
            }
            LoginFailure::Other => "check the connected app and the credentials in the config",
        }
    }
}

/// This crate's error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
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
            Error::InvalidLoginUrl { .. } => ErrorKind::Other,
            Error::Login { .. } => ErrorKind::Unauthenticated,
            Error::Api { api, .. } => api.kind(),
            Error::Network { .. } => ErrorKind::Transient,
            Error::Decode { .. } => ErrorKind::Transient,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_array_body() {
        let body = br#"[{"message":"No such column 'Foo' on entity 'Account'.","errorCode":"INVALID_FIELD","fields":["Foo"]}]"#;
        let e = ApiError::from_body(400, body);
        assert_eq!(e.error_code.as_deref(), Some("INVALID_FIELD"));
        assert_eq!(e.message, "No such column 'Foo' on entity 'Account'.");
        assert_eq!(e.fields, vec!["Foo".to_string()]);
        assert_eq!(e.kind(), ErrorKind::InvalidField);
    }

    #[test]
    fn oauth_object_body() {
        let e = ApiError::from_body(
            400,
            br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
        );
        assert_eq!(e.error_code.as_deref(), Some("invalid_grant"));
        assert_eq!(e.message, "expired access/refresh token");
        assert_eq!(
            LoginFailure::from_api(&e),
            LoginFailure::ExpiredRefreshToken
        );
    }

    #[test]
    fn empty_and_html_bodies() {
        let e = ApiError::from_body(503, b"");
        assert_eq!(e.error_code, None);
        assert_eq!(e.message, "");
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(e.to_string(), "HTTP 503 with an empty body");
        let html = format!("<html><body>{}</body></html>", "x".repeat(1000));
        let e = ApiError::from_body(502, html.as_bytes());
        assert!(e.message.starts_with("<html><body>xxx"));
        assert!(e.message.len() < 320, "long bodies are cut");
        // An empty JSON array is not an error list.
        let e = ApiError::from_body(500, b"[]");
        assert_eq!(e.message, "[]");
    }

    #[test]
    fn classification_table() {
        let cases: &[(u16, Option<&str>, &str, ErrorKind)] = &[
            (
                401,
                Some("INVALID_SESSION_ID"),
                "Session expired or invalid",
                ErrorKind::Unauthenticated,
            ),
            (
                403,
                Some("REQUEST_LIMIT_EXCEEDED"),
                "TotalRequests Limit exceeded.",
                ErrorKind::DailyLimitExceeded,
            ),
            (
                403,
                Some("REQUEST_LIMIT_EXCEEDED"),
                "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
                ErrorKind::ConcurrentLimit,
            ),
            (
                403,
                Some("REQUEST_LIMIT_EXCEEDED"),
                "ConcurrentPerOrgLongTxn Limit exceeded.",
                ErrorKind::ConcurrentLimit,
            ),
            (
                404,
                Some("NOT_FOUND"),
                "The requested resource does not exist",
                ErrorKind::NotFound,
            ),
            (
                400,
                Some("INVALID_FIELD"),
                "No such column",
                ErrorKind::InvalidField,
            ),
            (
                400,
                Some("MALFORMED_QUERY"),
                "unexpected token",
                ErrorKind::MalformedQuery,
            ),
            (
                400,
                Some("INVALID_TYPE"),
                "sObject type 'Foo__c' is not supported",
                ErrorKind::MalformedQuery,
            ),
            (
                400,
                Some("QUERY_TIMEOUT"),
                "Your query request was running for too long.",
                ErrorKind::QueryTimeout,
            ),
            (
                400,
                Some("INVALID_QUERY_LOCATOR"),
                "invalid query locator",
                ErrorKind::InvalidQueryLocator,
            ),
            (
                503,
                Some("SERVER_UNAVAILABLE"),
                "Server too busy",
                ErrorKind::Transient,
            ),
            (
                500,
                Some("UNKNOWN_EXCEPTION"),
                "An unexpected error occurred",
                ErrorKind::Transient,
            ),
            (406, None, "", ErrorKind::Transient),
            (420, None, "", ErrorKind::Transient),
            (429, None, "", ErrorKind::Transient),
            (403, Some("INSUFFICIENT_ACCESS"), "no", ErrorKind::Other),
            (
                400,
                Some("LIMIT_EXCEEDED"),
                "Max bulk v2 query jobs (10000) per 24 hrs has been reached (10021)",
                ErrorKind::Other,
            ),
            (410, None, "", ErrorKind::Other),
        ];
        for (status, code, msg, want) in cases {
            assert_eq!(
                classify(*status, *code, msg),
                *want,
                "{status} {code:?} {msg}"
            );
        }
    }
}
