//! Tests of the stream task's batching and span queue.

use super::*;

#[test]
fn batches_are_cut_by_records_or_by_values() {
    // 20 columns: 256 records a batch.
    assert!(!batch_full(255, 20, 256));
    assert!(batch_full(256, 20, 256));
    // 300 columns: 256 × 32 = 8,192 values, 28 records (27 hold 8,100).
    assert!(!batch_full(27, 300, 256));
    assert!(batch_full(28, 300, 256));
    // Exactly 32 columns: both bounds at 256 records.
    assert!(!batch_full(255, 32, 256));
    assert!(batch_full(256, 32, 256));
    // A batch of one record is full at once however wide, and at the smallest bound.
    assert!(batch_full(1, 100_000, 256));
    assert!(batch_full(1, 1, 1));
}

#[test]
fn queue_puts_pushed_spans_first() {
    let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default();
    let planned = vec![
        Some(Window::new(t(0), t(10))),
        Some(Window::new(t(10), t(20))),
    ];
    let mut queue = SpanQueue::new(planned.into_iter());
    let first = queue.next();
    assert_eq!(first, Some(Some(Window::new(t(0), t(10)))));
    queue.push_front(Some(Window::new(t(5), t(10))));
    queue.push_front(Some(Window::new(t(0), t(5))));
    let rest: Vec<Span> = std::iter::from_fn(|| queue.next()).collect();
    assert_eq!(
        rest,
        [
            Some(Window::new(t(0), t(5))),
            Some(Window::new(t(5), t(10))),
            Some(Window::new(t(10), t(20)))
        ]
    );
}
