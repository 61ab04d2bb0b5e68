//! The Bulk jobs a stream created and has not finished with, and the state that named each:
//! what lets a stream that names every job at once create the next job only when the sink has
//! every earlier one in a state.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{watch, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;

/// The Bulk jobs a stream created and that have not ended, each with the state that named it
/// (its number among the stream's states sent). A stream that names every job at once
/// (`checkpoint_jobs_after` zero) creates a job only when every job it created before is named
/// by a state the sink has taken, one creation at a time, and names each in a state before the
/// next record or as it waits: a sync killed at any moment leaves at most one job that no state
/// the destination got names.
pub(super) struct JobGate {
    jobs: watch::Sender<HashMap<String, Option<u64>>>,
    /// How many of the stream's states the sink took (`None`: not told; sent counts).
    taken: Option<watch::Receiver<u64>>,
    creating: Arc<tokio::sync::Mutex<()>>,
}

impl JobGate {
    pub(super) fn new(taken: Option<watch::Receiver<u64>>) -> JobGate {
        JobGate {
            jobs: watch::Sender::new(HashMap::new()),
            taken,
            creating: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Job `id` was created.
    pub(super) fn created(&self, id: &str) {
        self.jobs.send_modify(|jobs| {
            jobs.insert(id.to_string(), None);
        });
    }

    /// The `state`-th state sent named the jobs `ids`.
    pub(super) fn named(&self, state: u64, ids: &[String]) {
        self.jobs.send_if_modified(|jobs| {
            let mut changed = false;
            for id in ids {
                if let Some(slot @ None) = jobs.get_mut(id) {
                    *slot = Some(state);
                    changed = true;
                }
            }
            changed
        });
    }

    /// Job `id` ended (read, failed, aborted or given up): it needs no naming.
    pub(super) fn forget(&self, id: &str) {
        self.jobs.send_if_modified(|jobs| jobs.remove(id).is_some());
    }

    /// The stream's Bulk reading ended: the jobs left are named by its last state or aborted.
    pub(super) fn clear(&self) {
        self.jobs.send_if_modified(|jobs| {
            let any = !jobs.is_empty();
            jobs.clear();
            any
        });
    }

    /// A job was created that no state sent names yet.
    pub(super) fn unnamed(&self) -> bool {
        self.jobs.borrow().values().any(Option::is_none)
    }

    fn all_taken(&self) -> bool {
        let taken = self.taken.as_ref().map_or(u64::MAX, |t| *t.borrow());
        self.jobs
            .borrow()
            .values()
            .all(|named| named.is_some_and(|state| state <= taken))
    }

    /// Waits until the sink took the stream's first `sent` states (at once when not told), or
    /// until `stop` is cancelled: a sink that failed takes nothing more, and the engine cancels
    /// the streams then.
    pub(super) async fn taken(&self, sent: u64, stop: &CancellationToken) {
        if let Some(taken) = &self.taken {
            let mut taken = taken.clone();
            tokio::select! {
                biased;
                _ = stop.cancelled() => {}
                _ = taken.wait_for(|n| *n >= sent) => {}
            }
        }
    }

    /// Waits until this task may create a job: no other is being created, and every job
    /// created before is named by a state the sink took. The guard is held until the job
    /// exists. `None` once `stop` is cancelled.
    pub(super) async fn admit(&self, stop: &CancellationToken) -> Option<OwnedMutexGuard<()>> {
        let guard = tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            guard = self.creating.clone().lock_owned() => guard,
        };
        let mut jobs = self.jobs.subscribe();
        let mut taken = self.taken.clone();
        loop {
            if self.all_taken() {
                return Some(guard);
            }
            let taken_changed = async {
                match taken.as_mut() {
                    Some(t) => t.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let still = tokio::select! {
                biased;
                _ = stop.cancelled() => return None,
                changed = jobs.changed() => changed.is_ok(),
                changed = taken_changed => changed,
            };
            // The consumer is gone (the sync is ending): no wait can end well.
            if !still {
                return Some(guard);
            }
        }
    }
}
