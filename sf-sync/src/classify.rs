//! What the lower crates' errors mean here: the failure label, and the advice a user gets.

use crate::error::Failure;

/// The label of a session failure; `api` is Salesforce's answer, when there was one.
///
/// `Unauthenticated` is a config failure only when the token endpoint refused the credentials
/// (a login or a renewal: see [`login_refused`]). A data call answered 401 comes after the
/// session already renewed its token once and replayed the call (tokens revoked twice in a row,
/// or a session killed by an admin mid-sync): the credentials worked a moment ago, so running
/// again is the fix.
pub(crate) fn auth_failure(kind: sf_auth::ErrorKind, api: Option<&sf_auth::ApiError>) -> Failure {
    use sf_auth::ErrorKind as K;
    match kind {
        K::Unauthenticated
            if !login_refused(
                api.map(|a| a.status),
                api.and_then(|a| a.error_code.as_deref()),
            ) =>
        {
            Failure::Transient
        }
        K::Unauthenticated | K::NotFound | K::InvalidField => Failure::Config,
        K::Transient
        | K::ConcurrentLimit
        | K::DailyLimitExceeded
        | K::QueryTimeout
        | K::InvalidQueryLocator => Failure::Transient,
        _ => Failure::System,
    }
}

/// True when an `Unauthenticated` failure is the token endpoint refusing the credentials rather
/// than a data call answered 401. The lower crates give both the same kind; they differ in
/// Salesforce's answer: the token endpoint answers with an OAuth error code in lower case
/// (`invalid_grant`, `invalid_client_id`, `invalid_client`) and mostly HTTP 400, the data API
/// with HTTP 401 and an upper-case code (`INVALID_SESSION_ID`).
pub(crate) fn login_refused(status: Option<u16>, error_code: Option<&str>) -> bool {
    let oauth_code = error_code
        .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    oauth_code || status.is_some_and(|s| s != 401)
}

/// The session's error under a discovery error, if there is one.
fn session_error(e: &sf_discovery::Error) -> Option<&sf_auth::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(auth) = s.downcast_ref::<sf_auth::Error>() {
            return Some(auth);
        }
        if let Some(auth) = s.downcast_ref::<Box<sf_auth::Error>>() {
            return Some(auth);
        }
        source = s.source();
    }
    None
}

/// The label of a discovery failure.
pub(crate) fn discovery_failure(e: &sf_discovery::Error) -> Failure {
    match e {
        sf_discovery::Error::InvalidConfig { .. }
        | sf_discovery::Error::InvalidCriterion { .. }
        | sf_discovery::Error::InvalidObjectName { .. } => Failure::Config,
        _ if e.is_inaccessible() => Failure::Config,
        _ => match e.kind() {
            sf_auth::ErrorKind::Other => Failure::System,
            kind => auth_failure(kind, session_error(e).and_then(sf_auth::Error::api_error)),
        },
    }
}

/// The label of a REST read failure.
pub(crate) fn rest_failure(e: &sf_rest::Error) -> Failure {
    use sf_rest::ErrorKind as K;
    match e.kind() {
        K::Unauthenticated => {
            let status = match e {
                sf_rest::Error::QueryRequest { status, .. } => *status,
                _ => None,
            };
            if login_refused(status, e.error_code()) {
                Failure::Config
            } else {
                Failure::Transient
            }
        }
        K::InvalidField | K::NotFound => Failure::Config,
        K::QueryTimeout | K::InvalidQueryLocator | K::DailyLimitExceeded | K::Transient => {
            Failure::Transient
        }
        _ => Failure::System,
    }
}

/// The label of a Bulk failure that was not worked around.
pub(crate) fn bulk_failure(e: &sf_bulk::Error) -> Failure {
    use sf_bulk::ErrorKind as K;
    match e.kind() {
        K::Unauthenticated => {
            let api = e.api_error();
            if login_refused(api.map(|a| a.status), e.error_code()) {
                Failure::Config
            } else {
                Failure::Transient
            }
        }
        K::PermissionRequired => Failure::Config,
        K::BulkJobLimit
        | K::DailyLimitExceeded
        | K::JobAborted
        | K::JobTimedOut
        | K::JobNotFound
        | K::ResultsIncomplete
        | K::Transient => Failure::Transient,
        _ => Failure::System,
    }
}

/// What to do about a failure with this label, appended to messages.
pub(crate) fn advice(failure: Failure) -> &'static str {
    match failure {
        Failure::Config => "fix the config, the credentials or the catalog and run again",
        Failure::Transient => "run the sync again; it resumes from the last state emitted",
        Failure::System => {
            "run the sync again; if it keeps failing, report it with the log of this run"
        }
    }
}

/// True when a failed Bulk job's message says the query was too large or too slow for one job,
/// so a narrower window may succeed (Salesforce retries a job internally and gives up with
/// "Retried more than 15 times" or a time limit).
pub(crate) fn bulk_failed_for_size(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "retried more than",
        "timed out",
        "time limit",
        "too long",
        "too large",
    ]
    .iter()
    .any(|needle| m.contains(needle))
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

    fn rest(kind: sf_rest::ErrorKind, status: Option<u16>, code: Option<&str>) -> sf_rest::Error {
        sf_rest::Error::QueryRequest {
            stream: "Account".into(),
            kind,
            status,
            error_code: code.map(str::to_string),
            message: "refused".into(),
        }
    }

    fn bulk(source: sf_auth::Error) -> sf_bulk::Error {
        sf_bulk::Error::JobPoll {
            job_id: "750xx0000000001AAA".into(),
            source: Box::new(source),
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

    #[test]
    fn labels() {
        use sf_auth::ErrorKind as A;
        assert_eq!(auth_failure(A::Transient, None), Failure::Transient);
        assert_eq!(auth_failure(A::MalformedQuery, None), Failure::System);
        assert_eq!(auth_failure(A::NotFound, None), Failure::Config);
        assert_eq!(
            rest_failure(&rest(sf_rest::ErrorKind::NotFound, Some(404), None)),
            Failure::Config
        );
        assert_eq!(
            rest_failure(&sf_rest::Error::QueryTimeout {
                stream: "Account".into(),
                message: String::new()
            }),
            Failure::Transient
        );
        assert_eq!(
            rest_failure(&rest(
                sf_rest::ErrorKind::MalformedQuery,
                Some(400),
                Some("MALFORMED_QUERY")
            )),
            Failure::System
        );
        let permission = sf_bulk::Error::JobCreate {
            source: Box::new(sf_auth::Error::Api {
                operation: "POST jobs/query".into(),
                api: api(400, Some("TXN_SECURITY_METERING_ERROR")),
            }),
        };
        assert_eq!(bulk_failure(&permission), Failure::Config);
        let short = sf_bulk::Error::ResultsPageCount {
            job_id: "750xx0000000001AAA".into(),
            locator: None,
            announced: 10,
            received: 9,
        };
        assert_eq!(bulk_failure(&short), Failure::Transient);
        assert!(advice(Failure::Transient).contains("resumes"));
    }

    #[test]
    fn a_401_after_a_renewal_is_transient_and_a_refused_login_is_config() {
        use sf_auth::ErrorKind as A;
        // A data call answered 401 (after the session renewed and replayed it).
        let data = data_401();
        assert_eq!(data.kind(), A::Unauthenticated);
        assert_eq!(
            auth_failure(data.kind(), data.api_error()),
            Failure::Transient
        );
        assert_eq!(bulk_failure(&bulk(data)), Failure::Transient);
        assert_eq!(
            rest_failure(&rest(
                sf_rest::ErrorKind::Unauthenticated,
                Some(401),
                Some("INVALID_SESSION_ID")
            )),
            Failure::Transient
        );
        // A 401 with an empty body is a data call too.
        assert_eq!(
            rest_failure(&rest(sf_rest::ErrorKind::Unauthenticated, Some(401), None)),
            Failure::Transient
        );
        // The token endpoint refusing the refresh token, through each crate.
        let login = login_refusal();
        assert_eq!(login.kind(), A::Unauthenticated);
        assert_eq!(
            auth_failure(login.kind(), login.api_error()),
            Failure::Config
        );
        assert_eq!(bulk_failure(&bulk(login)), Failure::Config);
        assert_eq!(
            rest_failure(&rest(
                sf_rest::ErrorKind::Unauthenticated,
                Some(400),
                Some("invalid_grant")
            )),
            Failure::Config
        );
        // Through discovery (a describe of the catalog's objects).
        let global = |source| sf_discovery::Error::GlobalRequest {
            source: Box::new(source),
        };
        assert_eq!(discovery_failure(&global(data_401())), Failure::Transient);
        assert_eq!(discovery_failure(&global(login_refusal())), Failure::Config);
        // A refusal answered 401 still names an OAuth code.
        assert!(login_refused(Some(401), Some("invalid_client")));
        assert!(!login_refused(Some(401), Some("INVALID_SESSION_ID")));
        assert!(!login_refused(None, None));
    }

    #[test]
    fn failed_for_size() {
        assert!(bulk_failed_for_size("Retried more than 15 times"));
        assert!(bulk_failed_for_size(
            "Query timed out: the query took too long"
        ));
        assert!(!bulk_failed_for_size(
            "Unexpected exception encountered in query processing. Please contact support with \
             the Job Id."
        ));
        assert!(!bulk_failed_for_size(
            "insufficient access rights on cross-reference id"
        ));
    }
}
