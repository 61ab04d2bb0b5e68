//! getDeleted asked ahead, many streams at once. Each incremental stream asks getDeleted for the
//! span it is about to read (`deletes.rs`): one API call per stream and sync. When the sync starts,
//! the engine works out which streams will ask, and for what window, exactly as each stream will
//! ([`deletes_span`]), and a task asks for all of them as the subrequests of `composite` calls,
//! [`GET_DELETED_BATCH`] objects a call (one API call each, whatever it carries). A stream then
//! takes its answer instead of calling alone.
//!
//! Nothing depends on it being right: a stream whose window came out other than asked ahead (a
//! resumed Bulk job read first moves it), or whose answer is missing (the composite call failed
//! as a whole, the sync was cancelled), asks alone, as without this. A subrequest Salesforce
//! refused is the stream's error, handled as the direct call's would be. With fewer than two
//! streams to ask for there is nothing to save, and nothing is asked ahead.

use std::sync::{Arc, Mutex};

use sf_auth::lock;
use sf_rest::{DeletedQuery, DeletedRecords, RestReader, GET_DELETED_BATCH};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::deletes::{deletes_span, pieces};
use super::{Job, ObjectRun, Runner, Shared};
use crate::window::{Window, WindowParams};

type Answer = Result<DeletedRecords, sf_rest::Error>;

/// A stream's window asked ahead, and where its answer arrives.
type Slot = Mutex<Option<(Window, oneshot::Receiver<Answer>)>>;

/// Per stream (by index), the window asked ahead and where its answer arrives.
#[derive(Debug, Default)]
pub(crate) struct DeletesAhead {
    slots: Vec<Slot>,
    /// The asking task: stopped once no stream can take an answer any more.
    task: Option<tokio::task::AbortHandle>,
}

impl Drop for DeletesAhead {
    /// The streams have ended (the shared state goes with the last of them): nothing asked
    /// ahead is wanted any more, and no call outlives the read.
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The getDeleted window each of `jobs` will ask for (by index), when it is one piece.
pub(crate) fn wanted(
    jobs: &[&Job],
    params: &WindowParams,
    hard_deletes: bool,
) -> Vec<Option<(String, Window)>> {
    jobs.iter()
        .map(|job| {
            let Job::Object(setup) = job else {
                return None;
            };
            if setup.parent.is_some() {
                return None;
            }
            let run = ObjectRun::new((**setup).clone());
            let spans = crate::window::uncovered_spans(run.state.as_ref()?, params);
            let span =
                deletes_span(&run, &spans, hard_deletes, params.now).filter(|span| span.asks())?;
            // A window of more than one piece is asked alone, piece by piece.
            (pieces(span.window).len() == 1)
                .then(|| (setup.spec.name.clone(), pieces(span.window)[0]))
        })
        .collect()
}

impl DeletesAhead {
    /// Starts asking for `wanted` (by stream index) on a task of its own, unless fewer than two
    /// streams want anything. The task stops when `cancel` is.
    pub(crate) fn start(
        rest: RestReader,
        wanted: Vec<Option<(String, Window)>>,
        cancel: CancellationToken,
    ) -> DeletesAhead {
        if wanted.iter().flatten().count() < 2 {
            return DeletesAhead::default();
        }
        let mut slots = Vec::with_capacity(wanted.len());
        let mut asks: Vec<(DeletedQuery, oneshot::Sender<Answer>)> = Vec::new();
        for want in wanted {
            match want {
                Some((object, window)) => {
                    let (tx, rx) = oneshot::channel();
                    slots.push(Mutex::new(Some((window, rx))));
                    let query = DeletedQuery {
                        object,
                        start: window.start,
                        end: window.end,
                    };
                    asks.push((query, tx));
                }
                None => slots.push(Mutex::new(None)),
            }
        }
        let task = tokio::spawn(async move {
            let mut asks = asks.into_iter().peekable();
            while asks.peek().is_some() {
                let chunk: Vec<_> = asks.by_ref().take(GET_DELETED_BATCH).collect();
                let queries: Vec<DeletedQuery> = chunk.iter().map(|(q, _)| q.clone()).collect();
                let answers = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    answers = rest.deleted_batch(&queries) => answers,
                };
                // A call that failed as a whole (the daily limit, say) ends the asking: every
                // stream not answered asks alone, as without this (its log line then counts its
                // own calls).
                let Ok(answers) = answers else {
                    return;
                };
                for ((_, tx), answer) in chunk.into_iter().zip(answers) {
                    let _ = tx.send(answer);
                }
            }
        });
        DeletesAhead {
            slots,
            task: Some(task.abort_handle()),
        }
    }
}

impl Shared {
    /// The same, with getDeleted asked ahead for its streams.
    pub(crate) fn with_deletes_ahead(mut self, ahead: DeletesAhead) -> Shared {
        self.deletes_ahead = Arc::new(ahead);
        self
    }

    /// The RestReader the streams read with (for [`DeletesAhead::start`]).
    pub(crate) fn rest(&self) -> RestReader {
        self.rest.clone()
    }
}

impl Runner {
    /// This stream's getDeleted answer for `piece` if it was asked ahead for exactly that
    /// window and arrived (taken once); `None` to ask alone.
    pub(super) async fn deletes_asked_ahead(&self, piece: Window) -> Option<Answer> {
        let (window, answer) = lock(self.shared.deletes_ahead.slots.get(self.idx)?).take()?;
        if window != piece {
            return None;
        }
        tokio::select! {
            biased;
            _ = self.shared.cancel.cancelled() => None,
            answer = answer => answer.ok(),
        }
    }
}
