//! An object stream being read: its setup, its cursor, where its state stands, and what its Bulk
//! jobs select.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sf_discovery::{FieldSpec, Record};

use super::{checkpoint, Mode, Span, StreamSetup};
use crate::planner::{Api, ApiConstraint};
use crate::state::StreamState;
use crate::time::parse_instant;

/// An object stream being read: its setup and where its state stands.
pub(super) struct ObjectRun {
    pub(super) setup: StreamSetup,
    pub(super) cursor: Option<String>,
    /// Where the cursor is among the columns (records of both APIs carry them in order).
    pub(super) cursor_index: Option<usize>,
    /// `Some` for an incremental stream.
    pub(super) state: Option<StreamState>,
    pub(super) constraint: ApiConstraint,
    /// The columns a Bulk job selects (`setup.columns`, or the compound fields' components).
    pub(super) bulk_columns: Vec<String>,
    pub(super) bulk_fields: Arc<[FieldSpec]>,
    /// Where reading stands inside the current window, and the Bulk jobs to continue.
    pub(super) progress: checkpoint::Progress,
    /// Set while this read reads the object whole for its formula fields (`formulas.rs`).
    pub(super) formula_refresh: Option<super::formulas::FormulaRefresh>,
    /// Set once Salesforce refused an unfiltered query of this Knowledge article version: its
    /// spans are read once per `PublishStatus` of [`super::rest::PUBLISH_STATUSES`].
    pub(super) by_status: bool,
    /// Set once Salesforce refused `PublishStatus = 'Archived'` alone: read by status without it.
    pub(super) archived_refused: bool,
    /// Set when a REST read of the current span carried fewer rows than Salesforce counted for
    /// it: the span is then left out of the state (`Runner::rest_spans`).
    pub(super) short: bool,
}

impl ObjectRun {
    pub(super) fn new(setup: StreamSetup) -> ObjectRun {
        let (cursor, mut state) = match &setup.mode {
            Mode::Full => (None, None),
            Mode::Incremental { cursor, state } => (Some(cursor.clone()), Some(state.clone())),
        };
        let progress = checkpoint::Progress::from_state(state.as_mut());
        let bulk_columns: Vec<String> = match &setup.compounds {
            Some(compounds) => compounds.bulk_columns().to_vec(),
            None => setup.columns.clone(),
        };
        let bulk_fields: Vec<FieldSpec> = bulk_columns
            .iter()
            .filter_map(|c| setup.spec.field(c).cloned())
            .collect();
        let cursor_index = cursor.as_deref().and_then(|c| {
            setup
                .columns
                .iter()
                .position(|col| col.eq_ignore_ascii_case(c))
        });
        ObjectRun {
            constraint: setup.constraint,
            setup,
            cursor,
            cursor_index,
            state,
            bulk_columns,
            bulk_fields: Arc::from(bulk_fields),
            progress,
            formula_refresh: None,
            by_status: false,
            archived_refused: false,
            short: false,
        }
    }

    /// A record read through Bulk, in the stream's columns (compound values rebuilt).
    pub(super) fn shape_bulk(&self, record: Record) -> Record {
        match &self.setup.compounds {
            Some(compounds) => compounds.rebuild(record),
            None => record,
        }
    }

    /// For the log: the compound fields a Bulk read rebuilds from their components.
    pub(super) fn compound_note(&self, api: Api) -> String {
        match (&self.setup.compounds, api) {
            (Some(compounds), Api::Bulk) => format!(
                "; {} selected as their components and rebuilt as REST shows them",
                compounds
                    .rebuilt()
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        }
    }

    pub(super) fn include_deleted(&self) -> bool {
        self.setup.spec.has_is_deleted
    }

    pub(super) fn rest_window(&self, span: &Span) -> Option<sf_rest::Window> {
        span.and_then(|w| sf_rest::Window::for_stream(&self.setup.spec, Some(w.start), Some(w.end)))
    }

    /// The largest cursor value of a record.
    pub(super) fn cursor_value(&self, record: &Record) -> Option<DateTime<Utc>> {
        let cursor = self.cursor.as_deref()?;
        let value = match self.cursor_index {
            Some(i) if record.columns.get(i).is_some_and(|c| c == cursor) => record.values.get(i),
            _ => record.get(cursor),
        };
        value?.as_str().and_then(parse_instant)
    }
}
