//! The one error type of this crate.

use std::fmt;

/// What went wrong, named by operation and stage.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
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
}

impl Error {
    /// A sink failure, for [`crate::Sink`] implementations outside this crate.
    pub fn sink(message: impl fmt::Display) -> Error {
        Error::SinkWrite {
            message: message.to_string(),
        }
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
