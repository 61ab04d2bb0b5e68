//! The tombstones of one stream still to emit: the ids getDeleted listed, by deletion time,
//! less those a row read since settles (see `deletes.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sf_discovery::Record;

use super::verify;
use crate::state::StreamState;

/// The tombstones of one stream still to emit, by deletion time.
#[derive(Debug, Default)]
pub(in crate::stream) struct Tombstones {
    /// Deletion time → ids deleted then. Each id is one shared allocation with its entry in
    /// `ids` (a getDeleted answer lists up to 600,000 of them).
    pub(in crate::stream) pending: BTreeMap<DateTime<Utc>, Vec<Arc<str>>>,
    /// Ids in `pending` and their deletion time (a record read that shows the delete, or what
    /// came after it, removes its id).
    pub(in crate::stream) ids: HashMap<Arc<str>, DateTime<Utc>>,
    /// Where the deletes stop being known for this sync: a getDeleted piece that failed, or an
    /// answer complete only up to some instant.
    pub(in crate::stream) unknown: Option<DateTime<Utc>>,
    /// Whether getDeleted was asked this sync (else the state's `deletes_unknown_from` stays as
    /// the input had it).
    pub(in crate::stream) asked: bool,
    /// Whether the rows being read come from a Bulk job a previous sync created: a snapshot of
    /// when it ran, before the deletes this sync listed.
    pub(in crate::stream) snapshot: bool,
    /// `Id`, `IsDeleted` and the cursor: the columns of a tombstone.
    pub(in crate::stream) columns: Option<sf_discovery::Columns>,
    /// Tombstones emitted, for the stream's log line.
    pub(in crate::stream) emitted: u64,
    /// Before when deletes concern nothing downstream, for the state (`deletes_known_to`): the
    /// end of this sync's listing, or when a first sync began.
    pub(in crate::stream) known_to: Option<DateTime<Utc>>,
    /// An instant of the org's clock before which no row this sync emits was read: the input
    /// state's `deletes_known_to`, or when a first sync began.
    pub(in crate::stream) read_floor: Option<DateTime<Utc>>,
    /// How listed ids the read did not show are checked before they become tombstones
    /// (`verify.rs`); set once getDeleted is asked.
    pub(in crate::stream) verify: Option<Arc<verify::Verify>>,
}

impl Tombstones {
    /// Whether no tombstone waits (then records cost nothing to check).
    pub(in crate::stream) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A record was read: its id needs no tombstone, for a row read now shows what became of
    /// the record (`IsDeleted: true` in the bin, or undeleted since). A row of a results
    /// snapshot taken before this sync listed the deletes (`snapshot`) cancels it only when it
    /// shows the delete or what came after it (its cursor at or after the deletion); an older
    /// one leaves the tombstone to follow it.
    pub(in crate::stream) fn seen(&mut self, record: &Record) {
        let Some(id) = record.id() else {
            return;
        };
        let Some(&deleted) = self.ids.get(id) else {
            return;
        };
        if !self.snapshot {
            self.ids.remove(id);
            return;
        }
        let shows_delete = record.get("IsDeleted") == Some(&Value::Bool(true));
        let cursor = self
            .columns
            .as_ref()
            .and_then(|c| c.get(2))
            .and_then(|name| record.get(name))
            .and_then(Value::as_str)
            .and_then(crate::time::parse_instant);
        if shows_delete || cursor.is_some_and(|c| c >= deleted) {
            self.ids.remove(id);
        }
    }

    /// An id taken out to emit and not settled (a stop came first): pending again.
    pub(in crate::stream) fn put_back(&mut self, id: String, at: DateTime<Utc>) {
        self.add(id, at);
    }

    pub(in crate::stream) fn add(&mut self, id: String, at: DateTime<Utc>) {
        let id: Arc<str> = Arc::from(id);
        if let std::collections::hash_map::Entry::Vacant(slot) = self.ids.entry(id.clone()) {
            slot.insert(at);
            self.pending.entry(at).or_default().push(id);
        }
    }

    /// Where the deletes stop being known if the sync ended now: where getDeleted could not
    /// list them, or the earliest deletion whose tombstone is not out yet.
    pub(in crate::stream) fn unknown_from(&self) -> Option<DateTime<Utc>> {
        let earliest = self
            .pending
            .iter()
            .find(|(_, ids)| ids.iter().any(|id| self.ids.contains_key(id)))
            .map(|(at, _)| *at);
        match (self.unknown, earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Rows of a job whose window ends at `end` went downstream, and the job is not named by the
    /// state (a first page cut short by a cancel): the next sync asks getDeleted from there.
    pub(in crate::stream) fn read_before(&mut self, end: DateTime<Utc>) {
        // The window's end is on the cursor's clock, which lags far behind the org's while a
        // first sync is resumed: when the rows are known to have been read after some instant
        // of the org's clock (`read_floor`), deletes before it need no tombstone.
        let end = self.read_floor.map_or(end, |floor| end.max(floor));
        self.unknown = Some(self.unknown.map_or(end, |u| u.min(end)));
        self.asked = true;
    }

    /// Writes [`Tombstones::unknown_from`] into `state`, once getDeleted was asked.
    pub(in crate::stream) fn note_in(&self, state: &mut StreamState) {
        if let Some(known) = self.known_to {
            state.set_deletes_known_to(known);
        }
        if self.asked {
            state.set_deletes_unknown_from(self.unknown_from());
        }
    }

    /// How many tombstones deleted before `until` (all of them with `None`) are still due.
    pub(in crate::stream) fn due_before(&self, until: Option<DateTime<Utc>>) -> usize {
        let due = match until {
            Some(t) => self.pending.range(..t),
            None => self.pending.range(..),
        };
        due.flat_map(|(_, ids)| ids)
            .filter(|id| self.ids.contains_key(*id))
            .count()
    }

    /// The tombstones deleted before `until` (all of them with `None`) not seen since, in
    /// deletion order, taken out of the pending ones.
    pub(in crate::stream) fn take_before(
        &mut self,
        until: Option<DateTime<Utc>>,
    ) -> Vec<(DateTime<Utc>, String)> {
        let later = match until {
            Some(t) => self.pending.split_off(&t),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.pending, later);
        let mut out = Vec::new();
        for (at, ids) in due {
            for id in ids {
                if self.ids.remove(&id).is_some() {
                    out.push((at, id.to_string()));
                }
            }
        }
        out
    }
}
