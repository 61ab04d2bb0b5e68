//! This crate's error and its classification for the sync engine.

use sf_auth::ErrorKind as AuthKind;

use crate::soql::ResumeKey;

/// What an error means for the sync engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `QUERY_TIMEOUT`: the query ran too long; split the window and try the halves.
    QueryTimeout,
    /// `INVALID_FIELD`: a selected field does not exist or is hidden; the schema must be refreshed.
    InvalidField,
    /// `INVALID_QUERY_LOCATOR`: the cursor expired; resume the window after the last key read.
    InvalidQueryLocator,
    /// The org's daily API limit, or this sync's API budget, is used up.
    DailyLimitExceeded,
    /// The session or credentials are no longer valid.
    Unauthenticated,
    /// The object does not exist or is not queryable (`INVALID_TYPE`, 404).
    NotFound,
    /// The SOQL was refused (`MALFORMED_QUERY`, `INVALID_QUERY_FILTER_OPERATOR`, ...).
    MalformedQuery,
    /// The request's URI or headers were too long (414, 431).
    RequestTooLong,
    /// Transient trouble that outlasted the session's retries (network, 5xx, 429, ...).
    Transient,
    /// The request could not be built (invalid names, a row too wide to split).
    InvalidRequest,
    /// Anything else; see the errorCode.
    Other,
}

/// This crate's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query ran too long (`QUERY_TIMEOUT`).
    #[error("query on `{stream}` timed out (QUERY_TIMEOUT): split the window into smaller ones")]
    QueryTimeout {
        /// The stream (object) queried.
        stream: String,
        /// Salesforce's message.
        message: String,
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
    },
    /// The daily API limit (`REQUEST_LIMIT_EXCEEDED`) or the sync's API budget is used up.
    #[error("query on `{stream}` stopped: the daily API limit is reached ({message})")]
    DailyLimitExceeded {
        /// The stream (object) queried.
        stream: String,
        /// Salesforce's message, or the budget's figures.
        message: String,
    },
    /// Salesforce refused the query or a page of it, or no answer came.
    #[error("query on `{stream}` failed{}: {message}", error_code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    QueryRequest {
        /// The stream (object) queried.
        stream: String,
        /// The classification.
        kind: ErrorKind,
        /// HTTP status, `None` when no answer came.
        status: Option<u16>,
        /// Salesforce's `errorCode`, when it sent one.
        error_code: Option<String>,
        /// What went wrong.
        message: String,
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
    /// The classification the sync engine acts on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::QueryTimeout { .. } => ErrorKind::QueryTimeout,
            Error::InvalidField { .. } => ErrorKind::InvalidField,
            Error::InvalidQueryLocator { .. } => ErrorKind::InvalidQueryLocator,
            Error::DailyLimitExceeded { .. } => ErrorKind::DailyLimitExceeded,
            Error::QueryRequest { kind, .. } => *kind,
            Error::QueryDecode { .. } => ErrorKind::Transient,
            Error::QueryBuild { .. } | Error::Config { .. } => ErrorKind::InvalidRequest,
        }
    }

    /// Salesforce's `errorCode`, when the error came from one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Error::QueryTimeout { .. } => Some("QUERY_TIMEOUT"),
            Error::InvalidField { .. } => Some("INVALID_FIELD"),
            Error::InvalidQueryLocator { .. } => Some("INVALID_QUERY_LOCATOR"),
            Error::DailyLimitExceeded { .. } => Some("REQUEST_LIMIT_EXCEEDED"),
            Error::QueryRequest { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }

    /// Where to resume after an `INVALID_QUERY_LOCATOR`, when resuming is possible.
    pub fn resume_after(&self) -> Option<&ResumeKey> {
        match self {
            Error::InvalidQueryLocator { resume_after, .. } => resume_after.as_ref(),
            _ => None,
        }
    }

    /// Classifies an error from the session.
    pub(crate) fn from_session(
        stream: &str,
        err: sf_auth::Error,
        resume_after: impl FnOnce() -> Option<ResumeKey>,
    ) -> Error {
        let stream = stream.to_string();
        let api = err.api_error();
        let message = api
            .map(|a| a.message.trim().to_string())
            .unwrap_or_else(|| err.to_string());
        match err.kind() {
            AuthKind::QueryTimeout => Error::QueryTimeout { stream, message },
            AuthKind::InvalidField => {
                let field = invalid_field_name(&message)
                    .or_else(|| api.and_then(|a| a.fields.first().cloned()))
                    .unwrap_or_else(|| "?".to_string());
                Error::InvalidField {
                    stream,
                    field,
                    message,
                }
            }
            AuthKind::InvalidQueryLocator => Error::InvalidQueryLocator {
                stream,
                resume_after: resume_after(),
            },
            AuthKind::DailyLimitExceeded => Error::DailyLimitExceeded { stream, message },
            other => {
                let status = api.map(|a| a.status);
                let kind = match (other, status) {
                    (_, Some(414 | 431)) => ErrorKind::RequestTooLong,
                    (AuthKind::Unauthenticated, _) => ErrorKind::Unauthenticated,
                    (AuthKind::NotFound, _) => ErrorKind::NotFound,
                    (AuthKind::MalformedQuery, _) => {
                        if api.is_some_and(|a| a.code_is("INVALID_TYPE")) {
                            ErrorKind::NotFound
                        } else {
                            ErrorKind::MalformedQuery
                        }
                    }
                    (AuthKind::Transient | AuthKind::ConcurrentLimit, _) => ErrorKind::Transient,
                    _ => ErrorKind::Other,
                };
                Error::QueryRequest {
                    stream,
                    kind,
                    status,
                    error_code: api.and_then(|a| a.error_code.clone()),
                    message: if api.is_some() {
                        message.trim_end_matches('.').to_string()
                    } else {
                        err.to_string()
                    },
                }
            }
        }
    }
}

/// The field in `No such column 'X' on entity 'Y'`.
fn invalid_field_name(message: &str) -> Option<String> {
    const MARK: &str = "No such column '";
    let start = message.find(MARK)? + MARK.len();
    let rest = &message[start..];
    let end = rest.find('\'')?;
    let name = &rest[..end];
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_out_of_the_message() {
        let msg = "\nLastReferencedDate, Jigsaw, CleanStatus\n ^\nERROR at Row:1:Column:687\n\
                   No such column 'CleanStatus' on entity 'Account'. If you are attempting to use \
                   a custom field, be sure to append the '__c' after the custom field name.";
        assert_eq!(invalid_field_name(msg).as_deref(), Some("CleanStatus"));
        assert_eq!(invalid_field_name("No such column '' on entity"), None);
        assert_eq!(invalid_field_name("something else"), None);
        assert_eq!(invalid_field_name("No such column 'unterminated"), None);
    }

    #[test]
    fn messages_are_lowercase_and_unterminated() {
        let errors = [
            Error::QueryTimeout {
                stream: "Account".into(),
                message: "Your query request was running for too long.".into(),
            },
            Error::InvalidField {
                stream: "Account".into(),
                field: "Foo__c".into(),
                message: String::new(),
            },
            Error::InvalidQueryLocator {
                stream: "Account".into(),
                resume_after: Some(ResumeKey::id("001")),
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
