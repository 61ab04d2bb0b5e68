//! Written records go back to the stream that made them, to be freed there.
//!
//! A record's values are allocated on the stream's task (Bulk decodes its pages there, and
//! compound fields are rebuilt there) and, without this, freed by the engine once the sink wrote
//! them. A multi-threaded allocator charges a free on another thread far more than a local one
//! (mimalloc, `sfconnect read` of 1,000,000 Bulk rows: freeing on the sink's side was about 15 %
//! of the connector's CPU with 20 plain columns and a third with two compound addresses; never
//! freeing them at all, as a measurement, showed it). So a sink that only writes records leaves
//! them in the batch ([`crate::Sink::records`]), the engine hands the batch back here, and the
//! stream drops it on its own task at its next flush, reusing the batch's buffer. Measured
//! the same way, this took the connector's CPU from 9.1–10.2 s to 7.3–7.9 s (compound) and from
//! 3.7–3.8 s to 3.3 s (plain).
//!
//! Memory stays bounded: a stream holds at most [`WAITING`] returned batches (more are freed
//! where they are), and once it has ended ([`Returns::close`]) batches are freed by the engine.

use std::sync::Mutex;

use sf_discovery::Record;

/// Returned batches a stream may hold before the engine frees further ones itself (the engine's
/// channel holds four batches by default, so a stream rarely has more waiting).
pub(crate) const WAITING: usize = 4;

/// Per stream (by index), the written batches waiting to be freed by it.
#[derive(Debug, Default)]
pub(crate) struct Returns {
    slots: Vec<Mutex<Slot>>,
}

#[derive(Debug, Default)]
struct Slot {
    /// False once the stream ended: nothing more is kept for it.
    open: bool,
    batches: Vec<Vec<Record>>,
}

impl Returns {
    /// Slots for `streams` streams, all open.
    pub(crate) fn new(streams: usize) -> Returns {
        Returns {
            slots: (0..streams)
                .map(|_| {
                    Mutex::new(Slot {
                        open: true,
                        batches: Vec::new(),
                    })
                })
                .collect(),
        }
    }

    fn slot(&self, idx: usize) -> Option<std::sync::MutexGuard<'_, Slot>> {
        let slot = self.slots.get(idx)?;
        Some(
            slot.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The engine: a batch the sink has written, back to stream `idx`. Freed here instead when
    /// the stream has ended, already holds [`WAITING`] batches, or is unknown.
    pub(crate) fn give_back(&self, idx: usize, batch: Vec<Record>) {
        if batch.capacity() == 0 {
            return;
        }
        let refused = match self.slot(idx) {
            Some(mut slot) if slot.open && slot.batches.len() < WAITING => {
                slot.batches.push(batch);
                None
            }
            _ => Some(batch),
        };
        // Freed outside the lock.
        drop(refused);
    }

    /// The stream: frees every batch returned to it (here, on its own task) and hands back one
    /// emptied buffer to fill next, if any came back.
    pub(crate) fn take(&self, idx: usize) -> Option<Vec<Record>> {
        let batches = std::mem::take(&mut self.slot(idx)?.batches);
        let mut spare: Option<Vec<Record>> = None;
        for mut batch in batches {
            batch.clear();
            if spare
                .as_ref()
                .is_none_or(|s| s.capacity() < batch.capacity())
            {
                spare = Some(batch);
            }
        }
        spare
    }

    /// The stream ended: what waits for it is freed, and later batches are freed by the engine.
    pub(crate) fn close(&self, idx: usize) {
        let batches = self.slot(idx).map(|mut slot| {
            slot.open = false;
            std::mem::take(&mut slot.batches)
        });
        drop(batches);
    }
}

impl Drop for super::Runner {
    /// The stream ended: batches still coming back are freed by the engine.
    fn drop(&mut self) {
        self.shared.returns.close(self.idx);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;
    use sf_discovery::Columns;

    use super::*;

    fn batch(columns: &Columns, n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                columns: columns.clone(),
                values: vec![Value::String(format!("r{i}"))],
            })
            .collect()
    }

    #[test]
    fn a_returned_batch_is_freed_by_its_stream_and_its_buffer_reused() {
        let columns: Columns = Arc::from(vec!["Id".to_string()]);
        let returns = Returns::new(2);
        returns.give_back(1, batch(&columns, 3));
        returns.give_back(1, batch(&columns, 10));
        // Records held: 13 plus ours.
        assert_eq!(Arc::strong_count(&columns), 14);
        // Stream 0 got nothing.
        assert!(returns.take(0).is_none());
        let spare = returns.take(1).expect("a buffer to reuse");
        assert!(spare.is_empty());
        assert!(spare.capacity() >= 10, "the larger buffer is kept");
        // Every record was freed by `take`.
        assert_eq!(Arc::strong_count(&columns), 1);
        assert!(returns.take(1).is_none());
    }

    #[test]
    fn a_stream_holds_at_most_waiting_batches_and_nothing_once_closed() {
        let columns: Columns = Arc::from(vec!["Id".to_string()]);
        let returns = Returns::new(1);
        for _ in 0..WAITING + 3 {
            returns.give_back(0, batch(&columns, 2));
        }
        // The batches past WAITING were freed at once.
        assert_eq!(Arc::strong_count(&columns), 1 + 2 * WAITING);
        returns.close(0);
        assert_eq!(Arc::strong_count(&columns), 1);
        returns.give_back(0, batch(&columns, 5));
        assert_eq!(
            Arc::strong_count(&columns),
            1,
            "a closed stream keeps nothing"
        );
        // An unknown stream keeps nothing either.
        returns.give_back(7, batch(&columns, 5));
        assert_eq!(Arc::strong_count(&columns), 1);
        assert!(returns.take(0).is_none());
    }
}
