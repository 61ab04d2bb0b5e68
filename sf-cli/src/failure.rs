//! A failure the CLI reports as a TRACE error and a non-zero exit.

use crate::protocol::FailureType;

/// What failed, for the user, and how Airbyte should classify it.
#[derive(Debug)]
pub struct Failure {
    /// The message (what failed and what to do).
    pub message: String,
    /// Airbyte's failure type.
    pub failure_type: FailureType,
}

impl Failure {
    /// The user must fix the config, catalog or state.
    pub fn config(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            failure_type: FailureType::Config,
        }
    }

    /// Something unexpected.
    pub fn system(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            failure_type: FailureType::System,
        }
    }

    /// Worth retrying later.
    pub fn transient(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            failure_type: FailureType::Transient,
        }
    }

    /// From a session error (login or API call), labelled by sf-sync's one mapping.
    pub fn from_auth(context: &str, e: &sf_auth::Error) -> Failure {
        Failure::labelled(format!("{context}: {e}"), sf_sync::Failure::of(e.kind()))
    }

    /// From a sync engine error.
    pub fn from_sync(context: &str, e: &sf_sync::Error) -> Failure {
        Failure::labelled(format!("{context}: {e}"), e.failure())
    }

    /// `message` with the label sf-sync gave the failure.
    pub fn labelled(message: String, failure: sf_sync::Failure) -> Failure {
        match failure {
            sf_sync::Failure::Config => Failure::config(message),
            sf_sync::Failure::Transient => Failure::transient(message),
            sf_sync::Failure::System => Failure::system(message),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
