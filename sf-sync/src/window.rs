//! Windows on the cursor: which half-open spans `[start, end)` an incremental sync reads.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use crate::config::SyncConfig;
use crate::state::{StateSlice, StreamState};
use crate::time::{add, delta, format_instant, sub};

/// The shortest window: Salesforce stamps records to the second, so a window shorter than a
/// second cannot be narrowed usefully. A window of less than two seconds is not split further.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);

/// How far behind the org's clock a sync stops: the `Date` header has one-second resolution and
/// records of the current second may still be committing. Records after the hold-back are read by
/// the next sync.
pub const CLOCK_HOLD_BACK: Duration = Duration::from_secs(5);

/// A half-open span of cursor values `[start, end)`: `cursor >= start AND cursor < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Inclusive lower bound.
    pub start: DateTime<Utc>,
    /// Exclusive upper bound.
    pub end: DateTime<Utc>,
}

impl Window {
    /// The window `[start, end)`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Window {
        Window { start, end }
    }

    /// True when the window holds no instant (`end <= start`).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Its length (zero when empty).
    pub fn duration(&self) -> Duration {
        (self.end - self.start).to_std().unwrap_or(Duration::ZERO)
    }

    /// True when `t` lies in the window.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// Splits the window in two halves (for a query that timed out), at the millisecond midpoint;
    /// `None` when a half would be shorter than `min` (at least [`MIN_WINDOW`] is used).
    pub fn split(&self, min: Duration) -> Option<(Window, Window)> {
        let min = delta(min.max(MIN_WINDOW));
        let len = self.end - self.start;
        let half = TimeDelta::milliseconds(len.num_milliseconds() / 2);
        if half < min || len - half < min {
            return None;
        }
        let mid = self.start + half;
        Some((Window::new(self.start, mid), Window::new(mid, self.end)))
    }

    /// Consecutive windows of length `step` covering this one (the last may be shorter), produced
    /// lazily. `step` is at least [`MIN_WINDOW`].
    pub fn chunks(&self, step: Duration) -> Chunks {
        Chunks {
            next: self.start,
            end: self.end,
            step: delta(step.max(MIN_WINDOW)),
        }
    }

    /// The state slice recording that this window was read, with the largest cursor value seen.
    pub fn to_slice(&self, most_recent_cursor_value: Option<DateTime<Utc>>) -> StateSlice {
        StateSlice {
            start: self.start,
            end: self.end,
            most_recent_cursor_value,
        }
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}, {})",
            format_instant(self.start),
            format_instant(self.end)
        )
    }
}

/// The windows of [`Window::chunks`].
#[derive(Debug, Clone)]
pub struct Chunks {
    next: DateTime<Utc>,
    end: DateTime<Utc>,
    step: TimeDelta,
}

impl Iterator for Chunks {
    type Item = Window;

    fn next(&mut self) -> Option<Window> {
        if self.next >= self.end {
            return None;
        }
        let start = self.next;
        let end = add(start, self.step).min(self.end);
        self.next = end;
        Some(Window::new(start, end))
    }
}

/// What windows depend on besides the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowParams {
    /// The config's `start_date`: nothing before it is read.
    pub start_date: DateTime<Utc>,
    /// The config's exclusive `end_date`, if any.
    pub end_date: Option<DateTime<Utc>>,
    /// Read up to here: the org's clock minus [`CLOCK_HOLD_BACK`] (see [`WindowParams::new`]).
    pub now: DateTime<Utc>,
    /// Re-read this much before the end of what the state covers (`lookback_window`).
    pub lookback: Duration,
    /// Window length when nothing is known about volume (`stream_slice_step`).
    pub step: Duration,
}

impl WindowParams {
    /// The parameters for `config`, reading up to `org_now` minus [`CLOCK_HOLD_BACK`], in whole
    /// seconds.
    pub fn new(config: &SyncConfig, org_now: DateTime<Utc>) -> WindowParams {
        WindowParams {
            start_date: config.start_date,
            end_date: config.end_date,
            now: sub(org_now, delta(CLOCK_HOLD_BACK)).trunc_subsecs(0),
            lookback: config.lookback_window.as_std(),
            step: config.stream_slice_step.as_std(),
        }
    }

    /// The exclusive upper bound of reads: `min(end_date, now)`.
    pub fn upper(&self) -> DateTime<Utc> {
        self.end_date.map_or(self.now, |end| end.min(self.now))
    }
}

/// The spans an incremental sync must read, sorted, disjoint and not touching (reference §6.3,
/// plus lookback on every gap).
///
/// Within `[start_date, min(end_date, now))`: the part before the first slice; each gap between
/// slices, from `prev.end − lookback`; and after the last slice, from `last.end − lookback`. With
/// no state, the whole range. Airbyte applies the lookback only after the last slice; here it
/// applies after every slice, because the end of any slice may have been "now" when it was read
/// (a sync whose first window failed leaves such a gap), and rows still committing then must not
/// be lost. Overlapping spans are merged.
pub fn uncovered_spans(state: &StreamState, params: &WindowParams) -> Vec<Window> {
    let lower = params.start_date;
    let upper = params.upper();
    if lower >= upper {
        return Vec::new();
    }
    let lookback = delta(params.lookback);
    let slices = state.slices();
    let mut raw = Vec::with_capacity(slices.len() + 1);
    match slices.first() {
        None => raw.push(Window::new(lower, upper)),
        Some(first) => {
            raw.push(Window::new(lower, first.start));
            for pair in slices.windows(2) {
                raw.push(Window::new(sub(pair[0].end, lookback), pair[1].start));
            }
            if let Some(last) = slices.last() {
                raw.push(Window::new(sub(last.end, lookback), upper));
            }
        }
    }
    let mut spans: Vec<Window> = Vec::with_capacity(raw.len());
    for w in raw {
        let w = Window::new(w.start.max(lower), w.end.min(upper));
        if w.is_empty() {
            continue;
        }
        match spans.last_mut() {
            Some(last) if w.start <= last.end => last.end = last.end.max(w.end),
            _ => spans.push(w),
        }
    }
    spans
}

/// The windows to read when nothing is known about volume: [`uncovered_spans`] cut into
/// `params.step`, lazily (a long range with a short step never builds a long list).
pub fn plan_windows(state: &StreamState, params: &WindowParams) -> impl Iterator<Item = Window> {
    let step = params.step;
    uncovered_spans(state, params)
        .into_iter()
        .flat_map(move |span| span.chunks(step))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SavedState;
    use crate::time::parse_instant;
    use proptest::prelude::*;

    fn t(text: &str) -> DateTime<Utc> {
        parse_instant(text).unwrap()
    }

    fn w(start: &str, end: &str) -> Window {
        Window::new(t(start), t(end))
    }

    const DAY: u64 = 86_400;

    fn params(start: &str, now: &str, step_days: u64) -> WindowParams {
        WindowParams {
            start_date: t(start),
            end_date: None,
            now: t(now),
            lookback: Duration::from_secs(600),
            step: Duration::from_secs(step_days * DAY),
        }
    }

    #[test]
    fn no_state_reads_from_start_in_steps() {
        // Airbyte's test_slice_generation: start 15 days ago → one slice; 40 days ago → two.
        let p = params("2019-12-17", "2020-01-01", 30);
        let got: Vec<_> = plan_windows(&StreamState::new(), &p).collect();
        assert_eq!(got, [w("2019-12-17", "2020-01-01")]);
        let p = params("2019-11-22", "2020-01-01", 30);
        let got: Vec<_> = plan_windows(&StreamState::new(), &p).collect();
        assert_eq!(
            got,
            [w("2019-11-22", "2019-12-22"), w("2019-12-22", "2020-01-01")]
        );
    }

    #[test]
    fn legacy_state_resumes_from_value_minus_lookback() {
        // Airbyte's test_bulk_stream_request_params_states: LastModifiedDate 2023-01-01T10:20:10Z,
        // 10-minute lookback, P30D.
        let saved = SavedState::Legacy {
            cursor_field: "LastModifiedDate".into(),
            value: t("2023-01-01T10:20:10Z"),
        };
        let state = saved
            .resolve("Account", "LastModifiedDate", t("2023-01-01"))
            .unwrap();
        let p = params("2023-01-01", "2023-04-01", 30);
        let windows: Vec<_> = plan_windows(&state, &p).collect();
        assert_eq!(
            windows,
            [
                w("2023-01-01T10:10:10Z", "2023-01-31T10:10:10Z"),
                w("2023-01-31T10:10:10Z", "2023-03-02T10:10:10Z"),
                w("2023-03-02T10:10:10Z", "2023-04-01T00:00:00Z"),
            ]
        );
        // Reading them all leaves one slice from start_date to now.
        let mut after = state;
        for window in windows {
            after.add(window.to_slice(None));
        }
        assert_eq!(
            after.to_json()["slices"],
            serde_json::json!([{"start": "2023-01-01T00:00:00.000Z", "end": "2023-04-01T00:00:00.000Z",
                               "most_recent_cursor_value": "2023-01-01T10:20:10.000Z"}])
        );
    }

    #[test]
    fn gaps_are_filled_with_lookback() {
        let state = StreamState::from_slices([
            w("2023-01-10", "2023-01-20").to_slice(None),
            w("2023-02-01", "2023-02-10").to_slice(None),
        ]);
        let p = params("2023-01-01", "2023-03-01", 30);
        assert_eq!(
            uncovered_spans(&state, &p),
            [
                w("2023-01-01", "2023-01-10"),
                w("2023-01-19T23:50:00Z", "2023-02-01"),
                w("2023-02-09T23:50:00Z", "2023-03-01"),
            ]
        );
        // Slices shorter than the lookback: the spans around them merge.
        let state = StreamState::from_slices([
            w("2023-01-10T00:00:00Z", "2023-01-10T00:05:00Z").to_slice(None),
            w("2023-01-10T00:06:00Z", "2023-01-10T00:07:00Z").to_slice(None),
        ]);
        assert_eq!(uncovered_spans(&state, &p), [w("2023-01-01", "2023-03-01")]);
    }

    #[test]
    fn bounds_clip_everything() {
        let state = StreamState::from_slices([w("2022-06-01", "2023-01-15").to_slice(None)]);
        // start_date inside the state: nothing before it, the lookback tail after it.
        let p = params("2023-01-01", "2023-02-01", 30);
        assert_eq!(
            uncovered_spans(&state, &p),
            [w("2023-01-14T23:50:00Z", "2023-02-01")]
        );
        // end_date before now bounds reads.
        let p = WindowParams {
            end_date: Some(t("2023-01-20")),
            ..p
        };
        assert_eq!(
            uncovered_spans(&state, &p),
            [w("2023-01-14T23:50:00Z", "2023-01-20")]
        );
        // State reaching past now (clock moved back): nothing to read.
        let p = params("2023-01-01", "2023-01-10", 30);
        assert!(uncovered_spans(&state, &p).is_empty());
        // start_date at or after now: nothing.
        let p = params("2023-03-01", "2023-03-01", 30);
        assert!(uncovered_spans(&StreamState::new(), &p).is_empty());
    }

    #[test]
    fn params_from_config_hold_back_from_the_org_clock() {
        let parsed = SyncConfig::from_json(
            r#"{"client_id": "id", "client_secret": "s", "refresh_token": "r",
                "start_date": "2023-01-01", "end_date": "2023-06-01T00:00:00Z",
                "stream_slice_step": "P7D", "lookback_window": "PT1H"}"#,
            t("2024-01-01"),
        )
        .unwrap();
        let p = WindowParams::new(&parsed.config, t("2023-03-01T12:00:00.750Z"));
        assert_eq!(p.now, t("2023-03-01T11:59:55Z"));
        assert_eq!(p.upper(), t("2023-03-01T11:59:55Z"));
        assert_eq!(p.start_date, t("2023-01-01"));
        assert_eq!(p.end_date, Some(t("2023-06-01")));
        assert_eq!(p.step, Duration::from_secs(7 * DAY));
        assert_eq!(p.lookback, Duration::from_secs(3600));
        let p = WindowParams::new(&parsed.config, t("2023-07-01"));
        assert_eq!(p.upper(), t("2023-06-01"));
    }

    #[test]
    fn windows_split_down_to_the_minimum() {
        let window = w("2023-01-01T00:00:00Z", "2023-01-01T00:00:05Z");
        let (a, b) = window.split(MIN_WINDOW).unwrap();
        assert_eq!(a, w("2023-01-01T00:00:00Z", "2023-01-01T00:00:02.500Z"));
        assert_eq!(b, w("2023-01-01T00:00:02.500Z", "2023-01-01T00:00:05Z"));
        let two = w("2023-01-01T00:00:00Z", "2023-01-01T00:00:02Z");
        assert_eq!(
            two.split(Duration::ZERO),
            Some((
                w("2023-01-01T00:00:00Z", "2023-01-01T00:00:01Z"),
                w("2023-01-01T00:00:01Z", "2023-01-01T00:00:02Z")
            ))
        );
        assert_eq!(
            w("2023-01-01T00:00:00Z", "2023-01-01T00:00:01.999Z").split(MIN_WINDOW),
            None
        );
        assert_eq!(window.split(Duration::from_secs(3)), None);
        // Splitting repeatedly ends, at windows of 1 to 2 seconds.
        let mut queue = vec![w("2023-01-01", "2023-01-31")];
        let mut done = Vec::new();
        while let Some(x) = queue.pop() {
            match x.split(MIN_WINDOW) {
                Some((a, b)) => queue.extend([a, b]),
                None => done.push(x),
            }
        }
        assert!(done
            .iter()
            .all(|x| x.duration() >= MIN_WINDOW && x.duration() < 2 * MIN_WINDOW));
        assert_eq!(
            done.iter().map(Window::duration).sum::<Duration>(),
            Duration::from_secs(30 * DAY)
        );
        assert_eq!(
            w("2023-01-01", "2023-01-02").to_string(),
            "[2023-01-01T00:00:00.000Z, 2023-01-02T00:00:00.000Z)"
        );
    }

    #[test]
    fn chunks_are_lazy_and_exact() {
        let huge = w("2000-01-01", "2030-01-01");
        let mut chunks = huge.chunks(Duration::ZERO);
        assert_eq!(
            chunks.next(),
            Some(w("2000-01-01T00:00:00Z", "2000-01-01T00:00:01Z"))
        );
        assert_eq!(
            huge.chunks(Duration::from_secs(40 * 365 * DAY))
                .collect::<Vec<_>>(),
            [huge]
        );
        assert_eq!(w("2023-01-02", "2023-01-01").chunks(MIN_WINDOW).count(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Reading every planned window and recording it covers everything from start_date to
        /// the upper bound, and windows are disjoint, ordered and no longer than the step.
        #[test]
        fn planned_windows_complete_the_state(
            raw in proptest::collection::vec((0i64..1000, 1i64..100), 0..6),
            start in 0i64..300,
            now in 700i64..1200,
            lookback in 0u64..50,
            step in 1u64..200,
        ) {
            let base = t("2024-01-01");
            let state = StreamState::from_slices(raw.iter().map(|&(s, len)| {
                Window::new(base + TimeDelta::seconds(s), base + TimeDelta::seconds(s + len))
                    .to_slice(None)
            }));
            let p = WindowParams {
                start_date: base + TimeDelta::seconds(start),
                end_date: None,
                now: base + TimeDelta::seconds(now),
                lookback: Duration::from_secs(lookback),
                step: Duration::from_secs(step),
            };
            let windows: Vec<Window> = plan_windows(&state, &p).collect();
            for pair in windows.windows(2) {
                prop_assert!(pair[0].end <= pair[1].start);
            }
            let mut after = state.clone();
            for window in &windows {
                prop_assert!(!window.is_empty());
                prop_assert!(window.duration() <= Duration::from_secs(step));
                prop_assert!(window.start >= p.start_date && window.end <= p.upper());
                after.add(window.to_slice(None));
            }
            for sec in start..now {
                prop_assert!(after.covers(base + TimeDelta::seconds(sec)));
            }
            // Every slice end before now is re-read from `end - lookback` (clipped to start).
            for slice in state.slices() {
                if slice.end < p.upper() && slice.end > p.start_date {
                    let from = (slice.end - TimeDelta::seconds(lookback as i64)).max(p.start_date);
                    prop_assert!(
                        windows.iter().any(|w| w.contains(from)),
                        "no window re-reads from {}", from
                    );
                }
            }
        }
    }
}
