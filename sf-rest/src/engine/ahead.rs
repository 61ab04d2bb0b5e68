//! The next page of a chunk asked for ahead of need: sent as soon as its URL is known, polled
//! whenever the stream is, and taken when the chunk needs it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use sf_auth::FullResponse;

use super::followed::path_of;
use super::{Engine, Next};
use crate::wire::next_url_ahead;

/// A page asked for ahead of need.
pub(super) type Pending =
    Pin<Box<dyn Future<Output = Result<FullResponse, sf_auth::Error>> + Send>>;

/// The next page of a chunk, asked for before the current one is used up.
pub(super) enum Prefetch {
    /// Nothing asked ahead.
    None,
    /// The request is on its way; polled whenever the stream is.
    InFlight(Pending),
    /// The answer came.
    Arrived(Result<FullResponse, sf_auth::Error>),
}

impl Engine {
    /// Polls the pages asked for ahead once, keeping the answers that came.
    pub(super) fn drive(&mut self, cx: &mut Context<'_>) {
        for chunk in &mut self.chunks {
            if let Prefetch::InFlight(pending) = &mut chunk.prefetch {
                if let Poll::Ready(answer) = pending.as_mut().poll(cx) {
                    chunk.prefetch = Prefetch::Arrived(answer);
                }
            }
        }
    }

    /// Asks for chunk `c`'s next page ahead of need, if it has one.
    pub(super) fn prefetch(&mut self, c: usize) {
        let next = self.chunks[c].next.clone();
        self.ask(c, &next);
    }

    /// Asks for `next` ahead of need as chunk `c`'s next page; false when there is none.
    fn ask(&mut self, c: usize, next: &Next) -> bool {
        let Some(request) = self.page_request(next) else {
            return false;
        };
        let session = self.session.clone();
        self.with_stats(|s| s.requests += 1);
        self.chunks[c].prefetch =
            Prefetch::InFlight(Box::pin(async move { session.fetch(request).await }));
        true
    }

    /// Asks for chunk `c`'s next page from the URL ahead of `answer`'s records
    /// ([`next_url_ahead`]); the path asked for, if any.
    pub(super) fn ask_ahead(
        &mut self,
        c: usize,
        answer: &Result<FullResponse, sf_auth::Error>,
    ) -> Option<String> {
        let path = path_of(next_url_ahead(&answer.as_ref().ok()?.body)?.trim())?;
        // A page read already is refused after the parse, never asked for again.
        if self.chunks[c].followed.has(&path) {
            return None;
        }
        self.ask(c, &Next::Url(path.clone())).then_some(path)
    }

    /// The answer for chunk `c`'s next page: the one asked ahead, or a request sent now.
    pub(super) async fn page_answer(
        &mut self,
        c: usize,
    ) -> Option<Result<FullResponse, sf_auth::Error>> {
        match std::mem::replace(&mut self.chunks[c].prefetch, Prefetch::None) {
            Prefetch::Arrived(answer) => Some(answer),
            Prefetch::InFlight(pending) => Some(pending.await),
            Prefetch::None => {
                let request = self.page_request(&self.chunks[c].next)?;
                self.with_stats(|s| s.requests += 1);
                Some(self.session.fetch(request).await)
            }
        }
    }
}
