//! This crate's error.

use sf_auth::ErrorKind;

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value is not usable.
    #[error("invalid config `{field}`: {reason}")]
    InvalidConfig {
        /// The config key, e.g. `streams_criteria[0].value`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A stream criterion is not one of the eight known ones.
    #[error("invalid config `streams_criteria[{index}].criteria`: unknown criterion `{given}`; allowed: {allowed}")]
    InvalidCriterion {
        /// Position in `streams_criteria`.
        index: usize,
        /// The criterion as given.
        given: String,
        /// The allowed criteria.
        allowed: &'static str,
    },
    /// An object name that cannot be an sObject's API name (letters, digits and `_` only).
    #[error("`{name}` is not a valid object name (letters, digits and `_` only)")]
    InvalidObjectName {
        /// The name as given.
        name: String,
    },
    /// describeGlobal (`GET sobjects`) failed.
    #[error("listing the org's objects failed: {source}")]
    GlobalRequest {
        /// The session's error.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// describeGlobal answered with a body that is not a describeGlobal result.
    #[error("listing the org's objects: unexpected response body: {message}")]
    GlobalDecode {
        /// What was wrong.
        message: String,
    },
    /// A `composite` call of describes failed as a whole (e.g. the daily API limit is spent, or
    /// the call was refused).
    #[error("describing {objects} (composite) failed: {source}")]
    BatchRequest {
        /// The objects of the call, e.g. `Account, Contact and 23 more`.
        objects: String,
        /// The session's error.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// The `composite` call for these objects could not be built. (An answer that is not a
    /// composite result for the call, one answer per subrequest matched by `referenceId`, makes
    /// each object be described alone instead; a lasting failure is [`Error::Describe`].)
    #[error("describing {objects} (composite): {message}")]
    BatchDecode {
        /// The objects of the call.
        objects: String,
        /// What was wrong.
        message: String,
    },
    /// The describe of one object kept failing, in its composite call and when retried alone.
    #[error(
        "describing `{object}` failed after {attempts} attempt{}: {source}",
        if *attempts == 1 { "" } else { "s" }
    )]
    Describe {
        /// The object.
        object: String,
        /// How many times it was asked for (in a composite call, then alone).
        attempts: u32,
        /// The last failure; its `api_error()` carries Salesforce's `errorCode`.
        #[source]
        source: Box<sf_auth::Error>,
    },
    /// The object's describe says it cannot be queried (`queryable: false`).
    #[error("`{object}` cannot be queried (its describe says queryable: false)")]
    NotQueryable {
        /// The object.
        object: String,
    },
    /// The describe of one object is not a describe result.
    #[error("describing `{object}`: unexpected response body: {message}")]
    DescribeDecode {
        /// The object.
        object: String,
        /// What was wrong.
        message: String,
    },
}

impl Error {
    /// Salesforce's `errorCode`, when the failure carries one.
    pub fn error_code(&self) -> Option<&str> {
        self.session_error().and_then(sf_auth::Error::error_code)
    }

    /// What the failure means: the session's classification of Salesforce's answer when a
    /// request failed; [`ErrorKind::InvalidConfig`] for a config value, a criterion or an object
    /// name that cannot be used; [`ErrorKind::ObjectNotQueryable`] for an object whose describe
    /// says it cannot be queried; [`ErrorKind::ResultsInvalid`] for an answer that is not what
    /// was asked for.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidConfig { .. }
            | Error::InvalidCriterion { .. }
            | Error::InvalidObjectName { .. } => ErrorKind::InvalidConfig,
            Error::GlobalRequest { source }
            | Error::BatchRequest { source, .. }
            | Error::Describe { source, .. } => source.kind(),
            Error::NotQueryable { .. } => ErrorKind::ObjectNotQueryable,
            Error::GlobalDecode { .. }
            | Error::BatchDecode { .. }
            | Error::DescribeDecode { .. } => ErrorKind::ResultsInvalid,
        }
    }

    /// The object the error is about, when it is about one.
    pub fn object(&self) -> Option<&str> {
        match self {
            Error::Describe { object, .. }
            | Error::DescribeDecode { object, .. }
            | Error::NotQueryable { object } => Some(object),
            Error::InvalidObjectName { name } => Some(name),
            _ => None,
        }
    }

    /// True when the error says one object does not exist for this user, is not accessible or
    /// cannot be queried: a reason to leave the object out rather than to fail.
    pub fn is_inaccessible(&self) -> bool {
        matches!(self, Error::NotQueryable { .. } | Error::Describe { .. })
            && matches!(
                self.kind(),
                ErrorKind::NotFound | ErrorKind::ObjectNotQueryable | ErrorKind::InsufficientAccess
            )
    }

    /// True when the failure is one object's own and lasting: its describe was refused for the
    /// object (`API_ERROR`, a permission), could not be read, or says the object cannot be
    /// queried. Not for a reason that would stop any request (the daily allowance or the API
    /// budget spent, the concurrent-request limit, the session refused), nor for a passing one
    /// (a server error or a timeout that outlasted the retries): a catalog without the object
    /// would tell the platform it is gone, and it may drop the stream from the connection, so
    /// discovery fails and is run again, as Airbyte's connector does. With
    /// [`crate::DiscoveryOptions::skip_inaccessible`] such an object is left out with a warning
    /// rather than failing discovery. Every [`Error::is_inaccessible`] error is one.
    pub fn is_confined_to_object(&self) -> bool {
        matches!(
            self,
            Error::Describe { .. } | Error::DescribeDecode { .. } | Error::NotQueryable { .. }
        ) && !matches!(
            self.kind(),
            ErrorKind::DailyLimitExceeded
                | ErrorKind::ConcurrentLimit
                | ErrorKind::LoginRefused
                | ErrorKind::Unauthenticated
                | ErrorKind::Transient
        )
    }

    /// The session's error under this one, when a request failed.
    pub fn session_error(&self) -> Option<&sf_auth::Error> {
        match self {
            Error::GlobalRequest { source }
            | Error::BatchRequest { source, .. }
            | Error::Describe { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe_failure(status: u16, body: &str) -> Error {
        Error::Describe {
            object: "Thing__c".to_string(),
            attempts: 2,
            source: Box::new(sf_auth::Error::Api {
                operation: "GET sobjects/Thing__c/describe".to_string(),
                api: sf_auth::ApiError::from_body(status, body.as_bytes()),
            }),
        }
    }

    #[test]
    fn only_an_objects_own_failures_are_confined_to_it() {
        for own in [
            describe_failure(400, r#"[{"errorCode":"API_ERROR","message":"x"}]"#),
            describe_failure(404, r#"[{"errorCode":"NOT_FOUND","message":"x"}]"#),
            describe_failure(
                403,
                r#"[{"errorCode":"INSUFFICIENT_ACCESS","message":"x"}]"#,
            ),
            Error::DescribeDecode {
                object: "Thing__c".to_string(),
                message: "invalid type: integer `7`, expected a sequence".to_string(),
            },
            Error::NotQueryable {
                object: "Thing__c".to_string(),
            },
        ] {
            assert!(own.is_confined_to_object(), "{own}");
            assert_eq!(own.object(), Some("Thing__c"));
        }
        for shared in [
            // Passing: a server error that outlasted the retries.
            describe_failure(500, r#"[{"errorCode":"UNKNOWN_EXCEPTION","message":"x"}]"#),
            describe_failure(
                403,
                r#"[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"TotalRequests Limit exceeded."}]"#,
            ),
            describe_failure(
                403,
                r#"[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"ConcurrentPerOrgLongTxn Limit exceeded."}]"#,
            ),
            describe_failure(401, r#"[{"errorCode":"INVALID_SESSION_ID","message":"x"}]"#),
            Error::Describe {
                object: "Thing__c".to_string(),
                attempts: 1,
                source: Box::new(sf_auth::Error::BudgetExhausted {
                    used: 90,
                    max: 100,
                    budget: 90,
                }),
            },
            Error::BatchRequest {
                objects: "`Thing__c`".to_string(),
                source: Box::new(sf_auth::Error::Api {
                    operation: "POST composite".to_string(),
                    api: sf_auth::ApiError::from_body(
                        400,
                        br#"[{"errorCode":"JSON_PARSER_ERROR","message":"x"}]"#,
                    ),
                }),
            },
            Error::InvalidObjectName {
                name: "Thing/../x".to_string(),
            },
        ] {
            assert!(!shared.is_confined_to_object(), "{shared}");
        }
    }
}
