//! What a stream task is given to do: an object stream set up ([`StreamSetup`], read in full or
//! by windows, [`Mode`]), or the `Describe` stream, or a stream that cannot be read ([`Job`]).

use std::sync::Arc;

use sf_discovery::StreamSpec;

use super::ParentFilter;
use crate::catalog::SyncMode;
use crate::compound::Compounds;
use crate::drift::Drift;
use crate::error::Error;
use crate::planner::ApiConstraint;
use crate::state::StreamState;

/// How an object stream is read.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// The whole object, once.
    Full,
    /// Windows on the cursor, from the state.
    Incremental {
        /// The cursor field.
        cursor: String,
        /// The state to continue from.
        state: StreamState,
    },
}

/// An object stream, set up.
#[derive(Debug, Clone)]
pub(crate) struct StreamSetup {
    /// The object as described now.
    pub(crate) spec: StreamSpec,
    /// The columns to query, in order (selected fields plus `Id`, the cursor and `IsDeleted`).
    pub(crate) columns: Vec<String>,
    /// What the object allows.
    pub(crate) constraint: ApiConstraint,
    /// Set when `columns` has compound fields: what a Bulk job selects instead (their
    /// components) and how its records are rebuilt into `columns`.
    pub(crate) compounds: Option<Arc<Compounds>>,
    /// Full or incremental.
    pub(crate) mode: Mode,
    /// Set for an object Salesforce serves only filtered by its parent's ids: read in full by
    /// batches of those ids.
    pub(crate) parent: Option<ParentFilter>,
    /// Fields whose type changed in the org since discovery: converted to the catalog's types.
    pub(crate) drift: Drift,
    /// The describe says `replicateable`: getDeleted lists its hard deletes (`deletes.rs`).
    pub(crate) replicateable: bool,
}

/// What a stream task does.
pub(crate) enum Job {
    /// The `Describe` stream: its records are ready.
    Describe {
        /// One per described object, by name: the describe's JSON text as sent, made a record
        /// only as it is emitted.
        records: Vec<Box<serde_json::value::RawValue>>,
    },
    /// An object stream.
    Object(Box<StreamSetup>),
    /// A stream that cannot be read (unknown object, missing fields, bad state).
    Failed {
        /// Why.
        error: Error,
        /// The configured mode.
        sync_mode: SyncMode,
    },
    /// A stream not started because the daily limit was reached before it.
    Limited {
        /// What was reached.
        detail: String,
        /// The configured mode.
        sync_mode: SyncMode,
    },
}

impl Job {
    /// The mode the stream is read in.
    pub(crate) fn sync_mode(&self) -> SyncMode {
        match self {
            Job::Describe { .. } => SyncMode::FullRefresh,
            Job::Object(setup) => match setup.mode {
                Mode::Full => SyncMode::FullRefresh,
                Mode::Incremental { .. } => SyncMode::Incremental,
            },
            Job::Failed { sync_mode, .. } | Job::Limited { sync_mode, .. } => *sync_mode,
        }
    }
}
