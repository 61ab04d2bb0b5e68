//! The bytes parallel result pages hold in memory: downloaded (gzip already undone, so counted
//! as the decoder will see them) and not yet handed to the decoder, the page being emitted
//! included.
//!
//! The budget is split in two. The page being emitted draws on its own share ([`head_share`]),
//! so it never waits on the pages ahead of it: its bytes are taken by the decoder, which frees
//! them. The pages downloading ahead draw on the rest; one that finds it spent stops reading its
//! connection (what the server sends then waits in the kernel's socket buffer, outside the
//! process) until the decoder has caught up or the page's turn comes. Bytes are held in pieces
//! of at most [`Budget::piece`], so the bound holds exactly whatever the size of the chunks
//! the HTTP client yields.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// The share of `total` kept for the page being emitted: a quarter, at least 1 byte and at most
/// 1 MiB (the decoder takes it at well over 100 MB/s; more buys nothing).
pub(crate) fn head_share(total: usize) -> usize {
    (total / 4).clamp(1, 1 << 20).min(total.max(1))
}

/// The byte budget of one job's parallel pages.
pub(crate) struct Budget {
    head: Arc<Semaphore>,
    ahead: Arc<Semaphore>,
    piece: usize,
    held: AtomicUsize,
    peak: AtomicUsize,
}

/// Bytes held under the budget; dropping it gives them back.
pub(crate) struct Held {
    _permit: OwnedSemaphorePermit,
    bytes: usize,
    budget: Arc<Budget>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Budget {
    /// A budget of `total` bytes (at least 1), [`head_share`] of it for the page being emitted.
    pub(crate) fn new(total: usize) -> Arc<Budget> {
        let total = total.max(1);
        let head = head_share(total);
        let ahead = total - head;
        Arc::new(Budget {
            head: Arc::new(Semaphore::new(head)),
            ahead: Arc::new(Semaphore::new(ahead)),
            piece: head.min(ahead).clamp(1, u32::MAX as usize),
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// The most bytes one [`Budget::hold`] may ask for: a chunk is held in pieces of this size.
    pub(crate) fn piece(&self) -> usize {
        self.piece
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The most bytes held at once so far.
    #[cfg(test)]
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Holds `bytes` (at most [`Budget::piece`]) of page `index`: from the head's share once
    /// `head` names the page, else from the share of the pages ahead, whichever comes first.
    /// `None` when the pages are gone (the semaphores never close otherwise).
    pub(crate) async fn hold(
        self: &Arc<Self>,
        bytes: usize,
        index: u64,
        head: &mut watch::Receiver<u64>,
    ) -> Option<Held> {
        debug_assert!(bytes <= self.piece, "a piece of {bytes} bytes");
        let n = u32::try_from(bytes.clamp(1, self.piece)).ok()?;
        let permit = if *head.borrow() == index {
            Arc::clone(&self.head).acquire_many_owned(n).await.ok()?
        } else {
            tokio::select! {
                permit = Arc::clone(&self.ahead).acquire_many_owned(n) => permit.ok()?,
                at_head = async { head.wait_for(|h| *h == index).await.is_ok() } => {
                    if !at_head {
                        return None;
                    }
                    Arc::clone(&self.head).acquire_many_owned(n).await.ok()?
                }
            }
        };
        let now = self.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
        Some(Held {
            _permit: permit,
            bytes,
            budget: Arc::clone(self),
        })
    }
}
