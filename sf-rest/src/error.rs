//! This crate's error and its classification for the sync engine.

use crate::soql::ResumeKey;

/// What an error means: sf-auth's one classification, which this crate's errors answer with
/// ([`Error::kind`]).
pub use sf_auth::ErrorKind;

/// This crate's error. Those that come from a Salesforce answer (or from no answer) keep the
/// session's error as their source, which classified it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query ran too long (`QUERY_TIMEOUT`).
    #[error("query on `{stream}` timed out (QUERY_TIMEOUT): split the window into smaller ones")]
    QueryTimeout {
        /// The stream (object) queried.
        stream: String,
        /// Salesforce's message.
        message: String,
        /// The session's error.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// A selected field does not exist or is not visible to the user (`INVALID_FIELD`).
    #[error(
        "field `{field}` requested by stream `{stream}` does not exist in Salesforce or is not \
         visible to this user (INVALID_FIELD): refresh the schema of the connection"
    )]
    InvalidField {
        /// The stream (object) queried.
        stream: String,
        /// The field Salesforce named, or `?` when it named none.
        field: String,
        /// Salesforce's message.
        message: String,
        /// The session's error.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// The query locator expired or is unknown (`INVALID_QUERY_LOCATOR`).
    #[error(
        "query on `{stream}` lost its cursor (INVALID_QUERY_LOCATOR): {}",
        match resume_after {
            Some(key) => format!("resume the window after Id `{}`", key.id),
            None => "restart the window".to_string(),
        }
    )]
    InvalidQueryLocator {
        /// The stream (object) queried.
        stream: String,
        /// The key of the last record this read yielded, when the query was ordered so that
        /// reading strictly after it resumes the window; `None` to restart the window.
        resume_after: Option<ResumeKey>,
        /// The session's error.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// The daily API limit (`REQUEST_LIMIT_EXCEEDED`) or the sync's API budget is used up.
    #[error(
        "query on `{stream}` stopped: {}",
        match source.as_ref() {
            // Its message says the budget and the usage.
            sf_auth::Error::BudgetExhausted { .. } => message.clone(),
            _ => format!("the daily API limit is reached ({message})"),
        }
    )]
    DailyLimitExceeded {
        /// The stream (object) queried.
        stream: String,
        /// Salesforce's message, or the budget's figures.
        message: String,
        /// The session's error.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// Salesforce refused the query or a page of it, or no answer came.
    #[error(
        "query on `{stream}` failed{}: {}{}",
        source.error_code().map(|c| format!(" ({c})")).unwrap_or_default(),
        answer(source),
        grant(source)
    )]
    QueryRequest {
        /// The stream (object) queried.
        stream: String,
        /// The session's error, which classified the failure.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// A page arrived but was not the JSON a query answers with.
    #[error("query on `{stream}` returned an unexpected page: {message}")]
    QueryDecode {
        /// The stream (object) queried.
        stream: String,
        /// What was wrong.
        message: String,
    },
    /// The query could not be built.
    #[error("cannot build a query on `{object}`: {reason}")]
    QueryBuild {
        /// The object.
        object: String,
        /// Why.
        reason: String,
    },
    /// The configuration is not usable.
    #[error("invalid REST config: `{field}` {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// What the failure means (sf-auth's classification of Salesforce's answer, or this crate's
    /// own for a page it could not read or a query it could not build).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::QueryTimeout { .. } => ErrorKind::QueryTimeout,
            Error::InvalidField { .. } => ErrorKind::InvalidField,
            Error::InvalidQueryLocator { .. } => ErrorKind::InvalidQueryLocator,
            Error::DailyLimitExceeded { .. } => ErrorKind::DailyLimitExceeded,
            Error::QueryRequest { source, .. } => source.kind(),
            Error::QueryDecode { .. } => ErrorKind::UnexpectedBody,
            Error::QueryBuild { .. } | Error::Config { .. } => ErrorKind::InvalidRequest,
        }
    }

    /// Salesforce's `errorCode`, when the error came from one.
    pub fn error_code(&self) -> Option<&str> {
        self.session_error().and_then(sf_auth::Error::error_code)
    }

    /// The session's error under this one, when a request failed.
    pub fn session_error(&self) -> Option<&sf_auth::Error> {
        match self {
            Error::QueryTimeout { source, .. }
            | Error::InvalidField { source, .. }
            | Error::InvalidQueryLocator { source, .. }
            | Error::DailyLimitExceeded { source, .. }
            | Error::QueryRequest { source, .. } => Some(source),
            Error::QueryDecode { .. } | Error::QueryBuild { .. } | Error::Config { .. } => None,
        }
    }

    /// Where to resume after an `INVALID_QUERY_LOCATOR`, when resuming is possible.
    pub fn resume_after(&self) -> Option<&ResumeKey> {
        match self {
            Error::InvalidQueryLocator { resume_after, .. } => resume_after.as_ref(),
            _ => None,
        }
    }

    /// Wraps an error from the session, by the kind sf-auth gave it.
    pub(crate) fn from_session(
        stream: &str,
        err: sf_auth::Error,
        resume_after: impl FnOnce() -> Option<ResumeKey>,
    ) -> Error {
        let stream = stream.to_string();
        let message = err
            .api_error()
            .map(|a| a.message.trim().to_string())
            .unwrap_or_else(|| err.to_string());
        let source = Box::new(err);
        match source.kind() {
            ErrorKind::QueryTimeout => Error::QueryTimeout {
                stream,
                message,
                source,
            },
            ErrorKind::InvalidField => Error::InvalidField {
                stream,
                field: source
                    .api_error()
                    .and_then(sf_auth::ApiError::field_name)
                    .unwrap_or_else(|| "?".to_string()),
                message,
                source,
            },
            ErrorKind::InvalidQueryLocator => Error::InvalidQueryLocator {
                stream,
                resume_after: resume_after(),
                source,
            },
            ErrorKind::DailyLimitExceeded => Error::DailyLimitExceeded {
                stream,
                message,
                source,
            },
            _ => Error::QueryRequest { stream, source },
        }
    }
}

/// What to grant the Salesforce user, when the answer names a permission it lacks.
fn grant(err: &sf_auth::Error) -> String {
    err.api_error()
        .and_then(sf_auth::ApiError::required_permission)
        .map(|p| format!("; grant the Salesforce user the \"{p}\" permission"))
        .unwrap_or_default()
}

/// Salesforce's message (trimmed, without its final period), or the session error's own words
/// when no answer came. An answer that is not Salesforce's JSON (no error code: a proxy's or a
/// gateway's page) is said with its HTTP status, and its HTML tags left out.
fn answer(err: &sf_auth::Error) -> String {
    match err.api_error() {
        Some(api) if err.error_code().is_none() => {
            let text = without_tags(&api.message);
            match text.trim().trim_end_matches('.') {
                "" => format!("HTTP {}", api.status),
                text => format!("HTTP {}: {text}", api.status),
            }
        }
        Some(api) => api.message.trim().trim_end_matches('.').to_string(),
        None => err.to_string(),
    }
}

/// `text` without anything between `<` and `>`, its runs of whitespace made one space.
fn without_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_that_is_not_salesforces_says_its_status_without_html() {
        let error = |message: &str| {
            Error::from_session(
                "Task",
                sf_auth::Error::Api {
                    operation: "GET query".into(),
                    api: sf_auth::ApiError {
                        status: 429,
                        error_code: None,
                        message: message.into(),
                        fields: Vec::new(),
                    },
                },
                || None,
            )
            .to_string()
        };
        assert_eq!(
            error("<html><body>Enhance your calm: too many requests</body></html>"),
            "query on `Task` failed: HTTP 429: Enhance your calm: too many requests"
        );
        assert_eq!(error("<html></html>"), "query on `Task` failed: HTTP 429");
    }

    fn session_error(status: u16, code: &str) -> Box<sf_auth::Error> {
        Box::new(sf_auth::Error::Api {
            operation: "GET query".into(),
            api: sf_auth::ApiError {
                status,
                error_code: Some(code.into()),
                message: "refused.".into(),
                fields: Vec::new(),
            },
        })
    }

    #[test]
    fn session_errors_keep_their_source_and_kind() {
        let e = Error::from_session("Account", *session_error(400, "INVALID_TYPE"), || None);
        assert_eq!(e.kind(), ErrorKind::ObjectNotQueryable);
        assert_eq!(e.error_code(), Some("INVALID_TYPE"));
        assert_eq!(
            e.to_string(),
            "query on `Account` failed (INVALID_TYPE): refused"
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::from_session("Account", *session_error(400, "INVALID_FIELD"), || None);
        assert!(
            matches!(&e, Error::InvalidField { field, .. } if field == "?"),
            "{e:?}"
        );
        let e = Error::from_session(
            "Account",
            *session_error(400, "TXN_SECURITY_METERING_ERROR"),
            || None,
        );
        assert_eq!(e.kind(), ErrorKind::PermissionRequired);
        assert!(
            e.to_string().ends_with(
                "; grant the Salesforce user the \"Exempt from Transaction Security\" permission"
            ),
            "{e}"
        );
        let e = Error::from_session("Account", *session_error(414, "URI_TOO_LONG"), || None);
        assert_eq!(e.kind(), ErrorKind::RequestTooLong);
        let network = sf_auth::Error::Network {
            operation: "GET query".into(),
            message: "connection reset".into(),
            timeout: false,
        };
        let e = Error::from_session("Account", network, || None);
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(e.error_code(), None);
        assert!(e.to_string().contains("connection reset"), "{e}");
    }

    #[test]
    fn messages_are_lowercase_and_unterminated() {
        let errors = [
            Error::QueryTimeout {
                stream: "Account".into(),
                message: "Your query request was running for too long.".into(),
                source: session_error(400, "QUERY_TIMEOUT"),
            },
            Error::InvalidField {
                stream: "Account".into(),
                field: "Foo__c".into(),
                message: String::new(),
                source: session_error(400, "INVALID_FIELD"),
            },
            Error::InvalidQueryLocator {
                stream: "Account".into(),
                resume_after: Some(ResumeKey::id("001")),
                source: session_error(400, "INVALID_QUERY_LOCATOR"),
            },
            Error::QueryBuild {
                object: "Account".into(),
                reason: "no fields selected".into(),
            },
        ];
        for e in errors {
            let text = e.to_string();
            assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
    }
}
