//! Discovery options and what discovery reports besides streams.

use serde::{Deserialize, Serialize};

use crate::criteria::StreamCriteria;
use crate::error::Error;

/// The most subrequests one `composite` call may carry.
pub const MAX_BATCH_SIZE: usize = 25;

/// How discovery runs.
///
/// Defaults (in [`DiscoveryOptions::default`]): no criteria, 25 describes per `composite` call,
/// 4 calls in flight, a failed describe retried alone once, an inaccessible object fails
/// discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryOptions {
    /// Which objects become streams, by name (Airbyte's `streams_criteria`); empty → all.
    pub streams_criteria: StreamCriteria,
    /// Describes per `composite` call, 1 to 25 (each call is one API call, whatever it carries).
    pub describe_batch_size: usize,
    /// `composite` calls in flight at once, at least 1.
    pub describe_batches_in_flight: usize,
    /// How many times a describe that failed inside a composite call is retried alone (each retry is one
    /// `GET sobjects/{name}/describe`, which the session itself retries on transient failures).
    pub describe_retries: u32,
    /// Drop an object whose describe says it does not exist, is not accessible or not queryable,
    /// or whose describe fails for a lasting reason of its own (`API_ERROR`, a
    /// describe that cannot be read: [`Error::is_confined_to_object`]), with a warning in the
    /// catalog naming it and why, instead of failing. The daily limit, a refused composite call,
    /// a refused session and a passing failure (a server error that outlasts the retries) still
    /// fail, as does every describe failing.
    pub skip_inaccessible: bool,
    /// Keep each describe's JSON text in [`crate::ObjectDescribe::describe`] (for the
    /// `Describe` stream). Without it nothing of a describe is copied but what its stream
    /// needs, and the answers of the calls in flight are the only describes held.
    pub keep_describes: bool,
}

impl Default for DiscoveryOptions {
    fn default() -> DiscoveryOptions {
        DiscoveryOptions {
            streams_criteria: StreamCriteria::all(),
            describe_batch_size: MAX_BATCH_SIZE,
            describe_batches_in_flight: 4,
            describe_retries: 1,
            skip_inaccessible: false,
            keep_describes: true,
        }
    }
}

impl DiscoveryOptions {
    /// Checks the values, naming the field that is wrong.
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=MAX_BATCH_SIZE).contains(&self.describe_batch_size) {
            return Err(Error::InvalidConfig {
                field: "describe_batch_size".to_string(),
                reason: format!(
                    "{} is out of range; a composite call takes 1 to {MAX_BATCH_SIZE} subrequests",
                    self.describe_batch_size
                ),
            });
        }
        if self.describe_batches_in_flight == 0 {
            return Err(Error::InvalidConfig {
                field: "describe_batches_in_flight".to_string(),
                reason: "must be at least 1".to_string(),
            });
        }
        Ok(())
    }
}

/// Something discovery noticed that did not stop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryWarning {
    /// A field of a type this crate does not know: it is typed as a string.
    UnknownFieldType {
        /// The object.
        object: String,
        /// The field.
        field: String,
        /// The type describe gave.
        type_name: String,
    },
    /// An object was left out because its describe said it is missing, inaccessible or not
    /// queryable, or kept failing for a reason of its own (only with
    /// [`DiscoveryOptions::skip_inaccessible`]).
    ObjectSkipped {
        /// The object.
        object: String,
        /// Salesforce's `errorCode`, when there was one.
        error_code: Option<String>,
        /// Why.
        reason: String,
    },
    /// An entry of describeGlobal's list could not be read (no name, a name that cannot be an
    /// object's, a flag of the wrong type): it is left out, never described.
    ListingEntrySkipped {
        /// Its position in describeGlobal's `sobjects`, from 0.
        index: usize,
        /// Its `name`, when it has a text one.
        name: Option<String>,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for DiscoveryWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscoveryWarning::UnknownFieldType {
                object,
                field,
                type_name,
            } => write!(
                f,
                "`{object}.{field}` has the unknown type `{type_name}`; it is read as a string"
            ),
            DiscoveryWarning::ObjectSkipped { object, reason, .. } => {
                write!(f, "`{object}` is left out: {reason}")
            }
            DiscoveryWarning::ListingEntrySkipped {
                index,
                name: Some(name),
                reason,
            } => write!(
                f,
                "describeGlobal's entry {index} (`{name}`) is left out: {reason}"
            ),
            DiscoveryWarning::ListingEntrySkipped {
                index,
                name: None,
                reason,
            } => write!(f, "describeGlobal's entry {index} is left out: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_valid_and_bounds_name_the_field() {
        DiscoveryOptions::default().validate().unwrap();
        for (opts, field) in [
            (
                DiscoveryOptions {
                    describe_batch_size: 26,
                    ..Default::default()
                },
                "describe_batch_size",
            ),
            (
                DiscoveryOptions {
                    describe_batch_size: 0,
                    ..Default::default()
                },
                "describe_batch_size",
            ),
            (
                DiscoveryOptions {
                    describe_batches_in_flight: 0,
                    ..Default::default()
                },
                "describe_batches_in_flight",
            ),
        ] {
            match opts.validate() {
                Err(Error::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{opts:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn options_deserialize_with_defaults() {
        let opts: DiscoveryOptions = serde_json::from_value(json!({
            "streams_criteria": [{"criteria": "starts with", "value": "Acc"}],
            "describe_batches_in_flight": 2
        }))
        .unwrap();
        assert_eq!(opts.describe_batches_in_flight, 2);
        assert_eq!(opts.describe_batch_size, 25);
        assert_eq!(opts.streams_criteria.0.len(), 1);
        assert!(serde_json::from_value::<DiscoveryOptions>(json!({"batch": 3})).is_err());
    }
}
