//! What the lower crates' errors mean here: the failure label, and the advice a user gets.

use crate::error::Failure;

/// The label of a session failure.
pub(crate) fn auth_failure(kind: sf_auth::ErrorKind) -> Failure {
    use sf_auth::ErrorKind as K;
    match kind {
        K::Unauthenticated | K::NotFound | K::InvalidField => Failure::Config,
        K::Transient
        | K::ConcurrentLimit
        | K::DailyLimitExceeded
        | K::QueryTimeout
        | K::InvalidQueryLocator => Failure::Transient,
        _ => Failure::System,
    }
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
            kind => auth_failure(kind),
        },
    }
}

/// The label of a REST read failure.
pub(crate) fn rest_failure(kind: sf_rest::ErrorKind) -> Failure {
    use sf_rest::ErrorKind as K;
    match kind {
        K::InvalidField | K::Unauthenticated | K::NotFound => Failure::Config,
        K::QueryTimeout | K::InvalidQueryLocator | K::DailyLimitExceeded | K::Transient => {
            Failure::Transient
        }
        _ => Failure::System,
    }
}

/// The label of a Bulk failure that was not worked around.
pub(crate) fn bulk_failure(kind: sf_bulk::ErrorKind) -> Failure {
    use sf_bulk::ErrorKind as K;
    match kind {
        K::PermissionRequired | K::Unauthenticated => Failure::Config,
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

    #[test]
    fn labels() {
        assert_eq!(
            auth_failure(sf_auth::ErrorKind::Unauthenticated),
            Failure::Config
        );
        assert_eq!(
            auth_failure(sf_auth::ErrorKind::Transient),
            Failure::Transient
        );
        assert_eq!(
            auth_failure(sf_auth::ErrorKind::MalformedQuery),
            Failure::System
        );
        assert_eq!(rest_failure(sf_rest::ErrorKind::NotFound), Failure::Config);
        assert_eq!(
            rest_failure(sf_rest::ErrorKind::QueryTimeout),
            Failure::Transient
        );
        assert_eq!(
            rest_failure(sf_rest::ErrorKind::MalformedQuery),
            Failure::System
        );
        assert_eq!(
            bulk_failure(sf_bulk::ErrorKind::PermissionRequired),
            Failure::Config
        );
        assert_eq!(
            bulk_failure(sf_bulk::ErrorKind::ResultsIncomplete),
            Failure::Transient
        );
        assert_eq!(
            bulk_failure(sf_bulk::ErrorKind::ResultsInvalid),
            Failure::System
        );
        assert!(advice(Failure::Transient).contains("resumes"));
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
