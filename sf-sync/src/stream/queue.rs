//! The spans a stream still has to read.

use std::collections::VecDeque;

use super::Span;

/// The spans still to read, in order: pushed-back spans first, then the planned ones, lazily.
pub(super) struct SpanQueue {
    front: VecDeque<Span>,
    rest: Box<dyn Iterator<Item = Span> + Send>,
}

impl SpanQueue {
    pub(super) fn new(rest: impl Iterator<Item = Span> + Send + 'static) -> SpanQueue {
        SpanQueue {
            front: VecDeque::new(),
            rest: Box::new(rest),
        }
    }

    pub(super) fn next(&mut self) -> Option<Span> {
        self.front.pop_front().or_else(|| self.rest.next())
    }

    pub(super) fn push_front(&mut self, span: Span) {
        self.front.push_front(span);
    }
}
