//! What a failure means for the user: the one mapping from sf-auth's [`ErrorKind`] (which every
//! lower crate's errors answer with) to the failure label of an error trace, and the advice that
//! goes with each label.

use sf_auth::ErrorKind;

use crate::error::Failure;

impl Failure {
    /// The label of a failure of this kind. The only place that maps kinds to labels.
    ///
    /// A refused login or token renewal is a config failure; a data call answered 401 comes
    /// after the session already renewed its token once and replayed the call (tokens revoked
    /// twice in a row, or a session killed by an admin mid-sync): the credentials worked a moment
    /// ago, so running again is the fix.
    pub fn of(kind: ErrorKind) -> Failure {
        use ErrorKind as K;
        match kind {
            K::LoginRefused
            | K::NotFound
            | K::ObjectNotQueryable
            | K::InsufficientAccess
            | K::PermissionRequired
            | K::FilterRequired
            | K::InvalidField
            | K::InvalidConfig => Failure::Config,
            K::Unauthenticated
            | K::DailyLimitExceeded
            | K::ConcurrentLimit
            | K::BulkJobLimit
            | K::QueryTimeout
            | K::TooManyResults
            | K::InvalidQueryLocator
            | K::JobAborted
            | K::JobTimedOut
            | K::JobNotFound
            | K::ResultsIncomplete
            | K::UnexpectedBody
            | K::Transient => Failure::Transient,
            K::MalformedQuery
            | K::ReplicationDateRefused
            | K::RequestTooLong
            | K::BulkNotSupported
            | K::JobFailed
            | K::ResultsInvalid
            | K::InvalidRequest
            | K::Other => Failure::System,
        }
    }

    /// `message` with what to do about a failure of this `kind` that is confined to one stream
    /// (the object or this user's access to it), when there is more to say than the label's
    /// [`Failure::advice`].
    pub(crate) fn with_fix(kind: ErrorKind, message: String) -> String {
        use ErrorKind as K;
        let fix = match kind {
            K::InsufficientAccess => {
                "give the Salesforce user read access to this object (its profile or a permission \
                 set), or remove the stream from the catalog"
            }
            K::FilterRequired => {
                "Salesforce serves this object only filtered as its message says, so a sync \
                 cannot read it whole: remove the stream from the catalog (discover leaves the \
                 objects known to need a filter out)"
            }
            K::ObjectNotQueryable | K::NotFound => {
                "the object is gone or this user may no longer query it: remove the stream from \
                 the catalog or run discover again"
            }
            _ => return message,
        };
        format!("{message}; {fix}")
    }

    /// As [`Failure::advice`], for `check` and `discover`, which are not syncs and have no
    /// state to resume from; the daily limit (`at_limit`) is said as such.
    pub fn advice_outside_a_sync(self, at_limit: bool) -> &'static str {
        match (self, at_limit) {
            (_, true) => {
                "the org's daily API allowance (counted over the last 24 hours, every client's \
                 requests) is used up: try again later, or ask Salesforce for a larger allowance"
            }
            (Failure::Transient, _) => "try again in a while",
            (Failure::System, _) => {
                "try again; if it keeps failing, report it with the log of this run"
            }
            (Failure::Config, _) => self.advice(),
        }
    }

    /// What to do about a failure with this label, appended to messages.
    pub fn advice(self) -> &'static str {
        match self {
            Failure::Config => "fix the config, the credentials or the catalog and run again",
            Failure::Transient => "run the sync again; it resumes from the last state emitted",
            Failure::System => {
                "run the sync again; if it keeps failing, report it with the log of this run"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>) -> sf_auth::ApiError {
        sf_auth::ApiError {
            status,
            error_code: code.map(str::to_string),
            message: "refused".into(),
            fields: Vec::new(),
        }
    }

    fn data_401() -> sf_auth::Error {
        sf_auth::Error::Api {
            operation: "GET jobs/query/750xx0000000001AAA".into(),
            api: api(401, Some("INVALID_SESSION_ID")),
        }
    }

    fn login_refusal() -> sf_auth::Error {
        sf_auth::Error::Login {
            failure: sf_auth::LoginFailure::ExpiredRefreshToken,
            api: api(400, Some("invalid_grant")),
        }
    }

    fn bulk(source: sf_auth::Error) -> sf_bulk::Error {
        sf_bulk::Error::JobPoll {
            job_id: "750xx0000000001AAA".into(),
            source: Box::new(source),
        }
    }

    #[test]
    fn labels() {
        use ErrorKind as A;
        assert_eq!(Failure::of(A::Transient), Failure::Transient);
        assert_eq!(Failure::of(A::MalformedQuery), Failure::System);
        assert_eq!(Failure::of(A::NotFound), Failure::Config);
        assert_eq!(Failure::of(A::ObjectNotQueryable), Failure::Config);
        assert_eq!(Failure::of(A::DailyLimitExceeded), Failure::Transient);
        let permission = sf_bulk::Error::JobCreate {
            source: Box::new(sf_auth::Error::Api {
                operation: "POST jobs/query".into(),
                api: api(400, Some("TXN_SECURITY_METERING_ERROR")),
            }),
        };
        assert_eq!(Failure::of(permission.kind()), Failure::Config);
        let short = sf_bulk::Error::ResultsPageCount {
            job_id: "750xx0000000001AAA".into(),
            locator: None,
            announced: 10,
            received: 9,
        };
        assert_eq!(Failure::of(short.kind()), Failure::Transient);
        assert!(Failure::Transient.advice().contains("resumes"));
        // Outside a sync nothing resumes; the daily limit is named.
        assert!(!Failure::Transient
            .advice_outside_a_sync(false)
            .contains("resumes"));
        assert!(Failure::Transient
            .advice_outside_a_sync(true)
            .contains("daily API allowance"));
    }

    #[test]
    fn a_401_after_a_renewal_is_transient_and_a_refused_login_is_config() {
        use ErrorKind as A;
        // A data call answered 401 (after the session renewed and replayed it).
        let data = data_401();
        assert_eq!(data.kind(), A::Unauthenticated);
        assert_eq!(Failure::of(data.kind()), Failure::Transient);
        assert_eq!(Failure::of(bulk(data_401()).kind()), Failure::Transient);
        // The token endpoint refusing the refresh token, through each crate.
        let login = login_refusal();
        assert_eq!(login.kind(), A::LoginRefused);
        assert_eq!(Failure::of(login.kind()), Failure::Config);
        assert_eq!(Failure::of(bulk(login_refusal()).kind()), Failure::Config);
        // Through discovery (a describe of the catalog's objects).
        let global = |source| sf_discovery::Error::GlobalRequest {
            source: Box::new(source),
        };
        assert_eq!(Failure::of(global(data_401()).kind()), Failure::Transient);
        assert_eq!(Failure::of(global(login_refusal()).kind()), Failure::Config);
    }
}
