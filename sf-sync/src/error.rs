//! The one error type of this crate.

use std::fmt;

use crate::planner::Api;

/// How a failure is labelled for the user (Airbyte's `failure_type` of an error trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The user must change something: the config, the credentials, the catalog, the state or
    /// the Salesforce user's permissions.
    Config,
    /// A failure worth another run as is: network trouble, an overloaded or rate-limited org.
    Transient,
    /// Anything else: a bug here or an answer from Salesforce this connector does not expect.
    System,
}

/// What went wrong, named by operation and stage.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The config is not a JSON object.
    #[error("config parse: {reason}")]
    ConfigParse {
        /// Why it could not be read.
        reason: String,
    },
    /// The config was read but some keys hold values that cannot be used.
    #[error("invalid config: {}", join(problems))]
    ConfigInvalid {
        /// One entry per bad key, in key order.
        problems: Vec<ConfigProblem>,
    },
    /// A text that should be an ISO 8601 duration is not one.
    #[error("`{value}` is not an ISO 8601 duration: {reason}")]
    DurationParse {
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The state input does not have any of the shapes Airbyte writes.
    #[error("state parse at `{path}`: {reason}")]
    StateParse {
        /// Where in the state JSON (e.g. `[2].stream.stream_state.slices[0].end`).
        path: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// A stream's saved state was written for another cursor field than the stream has now.
    #[error(
        "state of stream `{stream}` is kept on `{state_field}` but the stream's cursor is \
         `{cursor_field}`; reset the stream (drop its state) to sync it again from start_date"
    )]
    StateCursorMismatch {
        /// The stream.
        stream: String,
        /// The cursor field named in the saved state.
        state_field: String,
        /// The stream's cursor field.
        cursor_field: String,
    },
    /// A stream's saved state was written by a sync of another org than the one the config logs
    /// in to: its windows say nothing about this org's records.
    #[error(
        "state of stream `{stream}` belongs to org {state_org}; the config logs in to org \
         {config_org}; use that org's state or start without state"
    )]
    StateOtherOrg {
        /// The stream.
        stream: String,
        /// The org named in the state (`org_id`).
        state_org: String,
        /// The org the session logged in to.
        config_org: String,
    },
    /// One stream's saved state cannot be read.
    #[error("state of stream `{stream}` at `{path}`: {reason}")]
    StateInvalid {
        /// The stream.
        stream: String,
        /// Where in the state JSON.
        path: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// The configured catalog is not JSON or not an object.
    #[error("configured catalog parse: {reason}")]
    CatalogParse {
        /// Why it could not be read.
        reason: String,
    },
    /// A value in the configured catalog cannot be used.
    #[error("configured catalog `{path}`: {problem}")]
    CatalogInvalid {
        /// JSON path of the bad value, e.g. `streams[3].sync_mode`.
        path: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The sink refused a message (e.g. stdout closed); the sync stops.
    #[error("sink write: {message}")]
    SinkWrite {
        /// What the sink reported.
        message: String,
    },
    /// `check`: listing the org's objects (describeGlobal) failed; `message` says so.
    #[error("{message}; {}", failure.advice_outside_a_sync(*at_limit))]
    CheckRequest {
        /// Salesforce's `errorCode`, when it sent one.
        error_code: Option<String>,
        /// What failed (the display adds what to do about it, from `failure`).
        message: String,
        /// How the failure is labelled.
        failure: Failure,
        /// Whether it was the daily API limit (the advice says so).
        at_limit: bool,
    },
    /// `discover`: listing or describing the org's objects failed.
    #[error(
        "discover failed{}: {message}; {}",
        code(error_code),
        failure.advice_outside_a_sync(*at_limit)
    )]
    DiscoverRequest {
        /// Salesforce's `errorCode`, when it sent one.
        error_code: Option<String>,
        /// What failed (the display adds what to do about it, from `failure`).
        message: String,
        /// How the failure is labelled.
        failure: Failure,
        /// Whether it was the daily API limit (the advice says so).
        at_limit: bool,
    },
    /// `read`: describing the configured catalog's objects failed.
    #[error(
        "describing the catalog's streams failed{}: {message}; {}",
        code(error_code),
        failure.advice()
    )]
    DescribeRequest {
        /// Salesforce's `errorCode`, when it sent one.
        error_code: Option<String>,
        /// What failed (the display adds what to do about it, from `failure`).
        message: String,
        /// How the failure is labelled.
        failure: Failure,
    },
    /// A configured stream is not an object of the org, or not one this user may query.
    #[error(
        "stream `{stream}` is not an object this org has or lets this user query ({reason}); \
         remove it from the configured catalog or run discover again"
    )]
    StreamUnknown {
        /// The stream.
        stream: String,
        /// What Salesforce said.
        reason: String,
    },
    /// A configured stream selects fields the object no longer has (or hides from this user).
    #[error(
        "stream `{stream}` selects {} that no longer exist in Salesforce or are not visible to \
         this user: refresh the schema of the connection (run discover again) and re-select the \
         stream's fields",
        fields_list(fields)
    )]
    StreamFieldsMissing {
        /// The stream.
        stream: String,
        /// The fields, as the catalog names them.
        fields: Vec<String>,
    },
    /// Salesforce refused to renew the session while a stream was read (the refresh token was
    /// revoked, or the connected app changed): no stream can go on, so the whole sync fails.
    #[error(
        "Salesforce refused to renew the session while reading stream `{stream}`: {message}; {}",
        Failure::Config.advice()
    )]
    SessionRefused {
        /// The stream that met the refusal first.
        stream: String,
        /// What the token endpoint answered.
        message: String,
    },
    /// Reading a stream failed.
    #[error(
        "reading stream `{stream}` through {}{} failed{}: {message}; {}",
        api.as_str(),
        window.as_ref().map(|w| format!(" in window {w}")).unwrap_or_default(),
        code(error_code),
        failure.advice()
    )]
    StreamRead {
        /// The stream.
        stream: String,
        /// The API it was read through.
        api: Api,
        /// The window being read (`[start, end)`), `None` for a full read.
        window: Option<String>,
        /// Salesforce's `errorCode`, when it sent one.
        error_code: Option<String>,
        /// What failed (the display adds what to do about it, from `failure`).
        message: String,
        /// How the failure is labelled.
        failure: Failure,
    },
}

impl Error {
    /// A sink failure, for [`crate::Sink`] implementations outside this crate.
    pub fn sink(message: impl fmt::Display) -> Error {
        Error::SinkWrite {
            message: message.to_string(),
        }
    }

    /// How the CLI labels this error in its trace: a config error the user must fix, a transient
    /// one worth another run, or a system error.
    pub fn failure(&self) -> Failure {
        match self {
            Error::ConfigParse { .. }
            | Error::ConfigInvalid { .. }
            | Error::DurationParse { .. }
            | Error::StateParse { .. }
            | Error::StateCursorMismatch { .. }
            | Error::StateOtherOrg { .. }
            | Error::StateInvalid { .. }
            | Error::CatalogParse { .. }
            | Error::CatalogInvalid { .. }
            | Error::StreamUnknown { .. }
            | Error::StreamFieldsMissing { .. }
            | Error::SessionRefused { .. } => Failure::Config,
            Error::SinkWrite { .. } => Failure::System,
            Error::CheckRequest { failure, .. }
            | Error::DiscoverRequest { failure, .. }
            | Error::DescribeRequest { failure, .. }
            | Error::StreamRead { failure, .. } => *failure,
        }
    }

    /// True for a failure that ends the whole sync (the sink refused a message, or Salesforce
    /// refused the session's credentials mid-sync), false for one of a stream's own: the other
    /// streams ran and the summary lists each failed stream (see [`crate::read`]).
    pub fn ends_sync(&self) -> bool {
        matches!(self, Error::SinkWrite { .. } | Error::SessionRefused { .. })
    }

    /// Salesforce's `errorCode`, when the failure came with one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Error::CheckRequest { error_code, .. }
            | Error::DiscoverRequest { error_code, .. }
            | Error::DescribeRequest { error_code, .. }
            | Error::StreamRead { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }
}

fn code(error_code: &Option<String>) -> String {
    error_code
        .as_ref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

fn fields_list(fields: &[String]) -> String {
    let names: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
    match names.as_slice() {
        [one] => format!("field {one}"),
        _ => format!("fields {}", names.join(", ")),
    }
}

/// One bad config key: the key, the value given (masked for secrets) and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The config key, e.g. `stream_slice_step`.
    pub key: String,
    /// The value as given (JSON), `None` when the key is missing; secrets show as `***`.
    pub given: Option<String>,
    /// What is wrong with it and what to use instead.
    pub expected: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.given {
            Some(given) => write!(f, "`{}`: `{}` {}", self.key, given, self.expected),
            None => write!(f, "`{}` is missing; {}", self.key, self.expected),
        }
    }
}

fn join(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
