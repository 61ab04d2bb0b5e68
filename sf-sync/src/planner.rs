//! Volume-aware planning: REST or Bulk per stream, and window sizes from what is known of the
//! data, so a small object is read in one cheap request instead of two dozen Bulk jobs.

use std::time::Duration;

use crate::window::{Chunks, Window, MIN_WINDOW};

/// The API a stream is read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// REST `queryAll`, paged by `nextRecordsUrl`.
    Rest,
    /// Bulk API 2.0 query jobs.
    Bulk,
}

impl Api {
    /// `rest` or `bulk`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Rest => "rest",
            Api::Bulk => "bulk",
        }
    }
}

/// What the stream's object allows, decided before volume is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiConstraint {
    /// Either API; volume decides.
    Any,
    /// REST only: the object is on the Bulk denylist, or has fields Bulk cannot serve (base64,
    /// compound) and `force_use_bulk_api` is off, or Bulk failed as "not supported".
    RestOnly,
    /// Bulk only: `force_use_bulk_api` with fields dropped.
    BulkOnly,
}

/// Rows counted in a span (`SELECT COUNT() ... WHERE cursor >= start AND cursor < end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanCount {
    /// The span counted.
    pub span: Window,
    /// Rows in it.
    pub rows: u64,
}

/// What is known of a stream's volume over the spans to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Volume {
    /// Nothing.
    Unknown,
    /// Counts over (parts of) the spans; parts no count covers are unknown.
    Counted(Vec<SpanCount>),
    /// A rate seen before (a previous sync or earlier windows of this one), assumed uniform.
    Rate {
        /// Rows per day of cursor time.
        rows_per_day: f64,
    },
}

/// Thresholds of the planner. Defaults, tuned for Bulk jobs' fixed cost (a job costs at least
/// four requests and, on real orgs, 10–15 s) against REST's 2,000 rows per request:
/// `rest_max_rows` 20,000; `rest_rows_per_window` 100,000; `bulk_rows_per_window` 500,000;
/// `count_min_span` one day; `min_window` one second.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannerConfig {
    /// At most this many rows in all the spans: REST (at most ten pages), else Bulk.
    pub rest_max_rows: u64,
    /// Target rows per window read through REST (each window ends with a state message).
    pub rest_rows_per_window: u64,
    /// Target rows per Bulk job (one job per window; several run at once).
    pub bulk_rows_per_window: u64,
    /// Spans shorter than this in total are assumed small without counting (the tail since the
    /// previous sync, typically): REST, no `COUNT()` request.
    pub count_min_span: Duration,
    /// No planned window is shorter than this.
    pub min_window: Duration,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            rest_max_rows: 20_000,
            rest_rows_per_window: 100_000,
            bulk_rows_per_window: 500_000,
            count_min_span: Duration::from_secs(86_400),
            min_window: MIN_WINDOW,
        }
    }
}

/// A span read in windows of one length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedSpan {
    /// The span.
    pub span: Window,
    /// The length of its windows (the last may be shorter).
    pub window: Duration,
}

impl PlannedSpan {
    /// Its windows, lazily.
    pub fn windows(&self) -> Chunks {
        self.span.chunks(self.window)
    }

    /// Widens its windows to at least `len` each (as many whole windows of `len` as fit, at
    /// least one, sharing the span equally), so a sync resumed from a state plans no more
    /// windows over the rest of a span than the sync that wrote the state did: that one's
    /// windows were `len` long, and a fresh count of the rest may cut it finer.
    pub fn at_least(&mut self, len: Duration) {
        if len <= self.window {
            return;
        }
        let span = self.span.duration();
        let whole = (span.as_millis() / len.as_millis().max(1)).max(1);
        self.window = div_ceil_ms(span, u64::try_from(whole).unwrap_or(u64::MAX));
    }
}

/// How to read a stream: the API and the windows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    /// The API.
    pub api: Api,
    /// The spans, in order, each with its window length.
    pub spans: Vec<PlannedSpan>,
    /// Rows expected, when every span's volume was known or estimated.
    pub estimated_rows: Option<u64>,
}

impl ReadPlan {
    /// Every window, in order, lazily.
    pub fn windows(&self) -> impl Iterator<Item = Window> + '_ {
        self.spans.iter().flat_map(PlannedSpan::windows)
    }
}

/// A piece of a span with its known or unknown row count.
#[derive(Debug, Clone, Copy)]
struct Segment {
    span: Window,
    rows: Option<u64>,
}

impl PlannerConfig {
    /// The API for `rows` rows (`None`: unknown, which means Bulk, as Airbyte does), within
    /// `constraint`.
    pub fn choose_api(&self, rows: Option<u64>, constraint: ApiConstraint) -> Api {
        match constraint {
            ApiConstraint::RestOnly => Api::Rest,
            ApiConstraint::BulkOnly => Api::Bulk,
            ApiConstraint::Any => match rows {
                Some(rows) if rows <= self.rest_max_rows => Api::Rest,
                _ => Api::Bulk,
            },
        }
    }

    /// True when a `COUNT()` over `spans` would change the plan enough to pay for itself: volume
    /// unknown and the spans at least `count_min_span` long, or a rate that does not clearly
    /// put the spans under `rest_max_rows` (half of it, for safety).
    pub fn needs_count(&self, spans: &[Window], volume: &Volume) -> bool {
        let total: Duration = spans.iter().map(Window::duration).sum();
        if total.is_zero() {
            return false;
        }
        match volume {
            Volume::Counted(_) => false,
            Volume::Unknown => total >= self.count_min_span,
            Volume::Rate { rows_per_day } => {
                estimate(*rows_per_day, total) > self.rest_max_rows as f64 / 2.0
            }
        }
    }

    /// Plans a stream's reads over `spans` (from [`crate::plan::uncovered_spans`]).
    ///
    /// The API: [`PlannerConfig::choose_api`] on the total rows (spans shorter in total than
    /// `count_min_span` and otherwise unknown count as small). The windows, per span: counted
    /// pieces are grouped greedily, in order, while a group stays within the API's rows per
    /// window, and each group is one window (empty pieces cost nothing); a piece above the target
    /// is cut into equal windows of about the target; unknown pieces use `step`. Windows never
    /// cross from one span to another (the state between them is already read).
    pub fn plan(
        &self,
        spans: &[Window],
        volume: &Volume,
        step: Duration,
        constraint: ApiConstraint,
    ) -> ReadPlan {
        let total_span: Duration = spans.iter().map(Window::duration).sum();
        let short = total_span < self.count_min_span;
        let per_span: Vec<Vec<Segment>> =
            spans.iter().map(|span| segments(*span, volume)).collect();
        let all_known = per_span.iter().flatten().all(|s| s.rows.is_some());
        let estimated_rows = all_known.then(|| {
            per_span
                .iter()
                .flatten()
                .filter_map(|s| s.rows)
                .fold(0u64, u64::saturating_add)
        });
        let api = match (estimated_rows, short) {
            (None, true) => self.choose_api(Some(0), constraint),
            (rows, _) => self.choose_api(rows, constraint),
        };
        let target = match api {
            Api::Rest => self.rest_rows_per_window,
            Api::Bulk => self.bulk_rows_per_window,
        }
        .max(1);
        let mut planned = Vec::new();
        for segs in per_span {
            let mut group: Option<(Window, u64)> = None;
            for seg in segs {
                match seg.rows {
                    Some(rows) if rows <= target => match &mut group {
                        Some((w, n)) if *n + rows <= target => {
                            w.end = seg.span.end;
                            *n += rows;
                        }
                        _ => {
                            flush(&mut planned, group.take());
                            group = Some((seg.span, rows));
                        }
                    },
                    Some(rows) => {
                        flush(&mut planned, group.take());
                        let parts = rows.div_ceil(target);
                        let len = seg.span.duration();
                        let window = div_ceil_ms(len, parts).max(self.min_window);
                        planned.push(PlannedSpan {
                            span: seg.span,
                            window,
                        });
                    }
                    None => {
                        flush(&mut planned, group.take());
                        planned.push(PlannedSpan {
                            span: seg.span,
                            window: step.max(self.min_window),
                        });
                    }
                }
            }
            flush(&mut planned, group);
        }
        ReadPlan {
            api,
            spans: planned,
            estimated_rows,
        }
    }
}

/// A group becomes one window.
fn flush(planned: &mut Vec<PlannedSpan>, group: Option<(Window, u64)>) {
    if let Some((span, _)) = group {
        planned.push(PlannedSpan {
            span,
            window: span.duration().max(MIN_WINDOW),
        });
    }
}

/// `len / parts`, rounded up to a millisecond, so `parts` windows cover `len` exactly.
fn div_ceil_ms(len: Duration, parts: u64) -> Duration {
    let ms = u64::try_from(len.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(ms.div_ceil(parts.max(1)))
}

fn estimate(rows_per_day: f64, span: Duration) -> f64 {
    (rows_per_day.max(0.0) * span.as_secs_f64() / 86_400.0).ceil()
}

/// The pieces of `span`, in order, with their counts where known.
fn segments(span: Window, volume: &Volume) -> Vec<Segment> {
    match volume {
        Volume::Unknown => vec![Segment { span, rows: None }],
        Volume::Rate { rows_per_day } => {
            let rows = estimate(*rows_per_day, span.duration());
            vec![Segment {
                span,
                rows: Some(if rows >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    rows as u64
                }),
            }]
        }
        Volume::Counted(counts) => {
            let mut inside: Vec<&SpanCount> = counts
                .iter()
                .filter(|c| {
                    !c.span.is_empty() && span.start <= c.span.start && c.span.end <= span.end
                })
                .collect();
            inside.sort_by_key(|c| c.span);
            let mut out = Vec::new();
            let mut at = span.start;
            for count in inside {
                if count.span.start < at {
                    // Overlaps a count already used: ignore it rather than count rows twice.
                    continue;
                }
                if count.span.start > at {
                    out.push(Segment {
                        span: Window::new(at, count.span.start),
                        rows: None,
                    });
                }
                out.push(Segment {
                    span: count.span,
                    rows: Some(count.rows),
                });
                at = count.span.end;
            }
            if at < span.end {
                out.push(Segment {
                    span: Window::new(at, span.end),
                    rows: None,
                });
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_instant;

    fn w(start: &str, end: &str) -> Window {
        Window::new(parse_instant(start).unwrap(), parse_instant(end).unwrap())
    }

    fn count(start: &str, end: &str, rows: u64) -> SpanCount {
        SpanCount {
            span: w(start, end),
            rows,
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_resumed_plan_keeps_windows_no_shorter_than_the_state_s() {
        let span = w("2024-01-01T00:00:00Z", "2024-01-11T00:10:00Z");
        // A fresh count would cut ten days and ten minutes in two; the state's windows were ten
        // days long: one window, the span whole.
        let mut planned = PlannedSpan {
            span,
            window: span.duration() / 2 + Duration::from_millis(1),
        };
        planned.at_least(10 * DAY);
        assert_eq!(planned.windows().collect::<Vec<_>>(), [span]);
        // Twenty-one days: two windows of about ten and a half days.
        let span = w("2024-01-01T00:00:00Z", "2024-01-22T00:00:00Z");
        let mut planned = PlannedSpan { span, window: DAY };
        planned.at_least(10 * DAY);
        let windows: Vec<Window> = planned.windows().collect();
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].duration(), Duration::from_secs(21 * 86_400 / 2));
        // Windows already longer stay as planned.
        let mut planned = PlannedSpan {
            span,
            window: 30 * DAY,
        };
        planned.at_least(10 * DAY);
        assert_eq!(planned.window, 30 * DAY);
    }

    #[test]
    fn api_choice() {
        let p = PlannerConfig::default();
        for (rows, constraint, want) in [
            (Some(0), ApiConstraint::Any, Api::Rest),
            (Some(20_000), ApiConstraint::Any, Api::Rest),
            (Some(20_001), ApiConstraint::Any, Api::Bulk),
            (None, ApiConstraint::Any, Api::Bulk),
            (Some(5_000_000), ApiConstraint::RestOnly, Api::Rest),
            (None, ApiConstraint::RestOnly, Api::Rest),
            (Some(3), ApiConstraint::BulkOnly, Api::Bulk),
        ] {
            assert_eq!(
                p.choose_api(rows, constraint),
                want,
                "{rows:?} {constraint:?}"
            );
        }
        assert_eq!(Api::Bulk.as_str(), "bulk");
    }

    #[test]
    fn when_to_count() {
        let p = PlannerConfig::default();
        let two_years = [w("2022-01-01", "2024-01-01")];
        let tail = [w("2024-01-01T00:00:00Z", "2024-01-01T06:00:00Z")];
        for (spans, volume, want) in [
            (&two_years[..], Volume::Unknown, true),
            (&tail[..], Volume::Unknown, false),
            (&two_years[..], Volume::Counted(vec![]), false),
            (&two_years[..], Volume::Rate { rows_per_day: 5.0 }, false),
            (&two_years[..], Volume::Rate { rows_per_day: 20.0 }, true),
            (&tail[..], Volume::Rate { rows_per_day: 1e6 }, true),
            (&[][..], Volume::Unknown, false),
        ] {
            assert_eq!(p.needs_count(spans, &volume), want, "{spans:?} {volume:?}");
        }
    }

    /// (name, spans, volume, constraint, api, planned spans with window lengths, estimated rows)
    #[test]
    fn plans() {
        let p = PlannerConfig::default();
        let step = 30 * DAY;
        let two_years = w("2022-01-01", "2024-01-01");
        let year1 = w("2022-01-01", "2023-01-01");
        let year2 = w("2023-01-01", "2024-01-01");
        type Case = (
            &'static str,
            Vec<Window>,
            Volume,
            ApiConstraint,
            Api,
            Vec<(Window, Duration)>,
            Option<u64>,
        );
        let cases: Vec<Case> = vec![
            (
                "small object, first sync: one REST window instead of 25 Bulk jobs",
                vec![two_years],
                Volume::Counted(vec![SpanCount {
                    span: two_years,
                    rows: 3_000,
                }]),
                ApiConstraint::Any,
                Api::Rest,
                vec![(two_years, two_years.duration())],
                Some(3_000),
            ),
            (
                "nothing known over two years: Airbyte's plan, Bulk in steps",
                vec![two_years],
                Volume::Unknown,
                ApiConstraint::Any,
                Api::Bulk,
                vec![(two_years, step)],
                None,
            ),
            (
                "short tail, nothing known: assumed small, REST, no count",
                vec![w("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z")],
                Volume::Unknown,
                ApiConstraint::Any,
                Api::Rest,
                vec![(w("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"), step)],
                None,
            ),
            (
                "large object: Bulk, windows of about 500,000 rows",
                vec![two_years],
                Volume::Counted(vec![SpanCount {
                    span: two_years,
                    rows: 2_000_000,
                }]),
                ApiConstraint::Any,
                Api::Bulk,
                vec![(two_years, two_years.duration() / 4)],
                Some(2_000_000),
            ),
            (
                "skewed counts: the quiet year is one job, the busy year is cut",
                vec![two_years],
                Volume::Counted(vec![
                    SpanCount {
                        span: year1,
                        rows: 10_000,
                    },
                    SpanCount {
                        span: year2,
                        rows: 1_200_000,
                    },
                ]),
                ApiConstraint::Any,
                Api::Bulk,
                vec![(year1, year1.duration()), (year2, year2.duration() / 3)],
                Some(1_210_000),
            ),
            (
                "counted pieces merge while under the target; empty pieces are free",
                vec![two_years],
                Volume::Counted(vec![
                    count("2022-01-01", "2022-07-01", 0),
                    count("2022-07-01", "2023-01-01", 60_000),
                    count("2023-01-01", "2023-07-01", 50_000),
                    count("2023-07-01", "2024-01-01", 0),
                ]),
                ApiConstraint::RestOnly,
                Api::Rest,
                vec![
                    (
                        w("2022-01-01", "2023-01-01"),
                        w("2022-01-01", "2023-01-01").duration(),
                    ),
                    (
                        w("2023-01-01", "2024-01-01"),
                        w("2023-01-01", "2024-01-01").duration(),
                    ),
                ],
                Some(110_000),
            ),
            (
                "a gap in the counts is read in steps, and makes the total unknown",
                vec![two_years],
                Volume::Counted(vec![count("2022-01-01", "2023-01-01", 10)]),
                ApiConstraint::Any,
                Api::Bulk,
                vec![(year1, year1.duration()), (year2, step)],
                None,
            ),
            (
                "spans are planned separately",
                vec![w("2022-01-01", "2022-02-01"), w("2022-03-01", "2022-04-01")],
                Volume::Counted(vec![
                    count("2022-01-01", "2022-02-01", 5),
                    count("2022-03-01", "2022-04-01", 7),
                ]),
                ApiConstraint::Any,
                Api::Rest,
                vec![
                    (w("2022-01-01", "2022-02-01"), 31 * DAY),
                    (w("2022-03-01", "2022-04-01"), 31 * DAY),
                ],
                Some(12),
            ),
            (
                "a rate from before: the tail of a busy object goes to Bulk in sized windows",
                vec![w("2024-01-01", "2024-01-11")],
                Volume::Rate {
                    rows_per_day: 100_000.0,
                },
                ApiConstraint::Any,
                Api::Bulk,
                vec![(w("2024-01-01", "2024-01-11"), 5 * DAY)],
                Some(1_000_000),
            ),
            (
                "force_use_bulk_api keeps Bulk even when small",
                vec![two_years],
                Volume::Counted(vec![SpanCount {
                    span: two_years,
                    rows: 40,
                }]),
                ApiConstraint::BulkOnly,
                Api::Bulk,
                vec![(two_years, two_years.duration())],
                Some(40),
            ),
            (
                "a dense second is never cut below the minimum window",
                vec![w("2024-01-01T00:00:00Z", "2024-01-01T00:00:02Z")],
                Volume::Counted(vec![count(
                    "2024-01-01T00:00:00Z",
                    "2024-01-01T00:00:02Z",
                    9_000_000,
                )]),
                ApiConstraint::Any,
                Api::Bulk,
                vec![(
                    w("2024-01-01T00:00:00Z", "2024-01-01T00:00:02Z"),
                    MIN_WINDOW,
                )],
                Some(9_000_000),
            ),
        ];
        for (name, spans, volume, constraint, api, want, rows) in cases {
            let plan = p.plan(&spans, &volume, step, constraint);
            assert_eq!(plan.api, api, "{name}");
            let got: Vec<(Window, Duration)> =
                plan.spans.iter().map(|s| (s.span, s.window)).collect();
            assert_eq!(got, want, "{name}");
            assert_eq!(plan.estimated_rows, rows, "{name}");
            // The windows cover the spans exactly.
            let covered: Duration = plan.windows().map(|w| w.duration()).sum();
            assert_eq!(
                covered,
                spans.iter().map(Window::duration).sum::<Duration>(),
                "{name}"
            );
        }
    }

    #[test]
    fn window_counts() {
        let p = PlannerConfig::default();
        let two_years = w("2022-01-01", "2024-01-01");
        let windows = |volume: &Volume, constraint: ApiConstraint| {
            p.plan(&[two_years], volume, 30 * DAY, constraint)
                .windows()
                .count()
        };
        let rows = |rows: u64| {
            Volume::Counted(vec![SpanCount {
                span: two_years,
                rows,
            }])
        };
        assert_eq!(windows(&Volume::Unknown, ApiConstraint::Any), 25);
        assert_eq!(windows(&rows(2_000_000), ApiConstraint::Any), 4);
        assert_eq!(windows(&rows(1_200_000), ApiConstraint::RestOnly), 12);
        // Overlapping counts are not added twice.
        let plan = p.plan(
            &[two_years],
            &Volume::Counted(vec![
                count("2022-01-01", "2023-01-01", 7),
                count("2022-06-01", "2023-06-01", 9),
            ]),
            30 * DAY,
            ApiConstraint::Any,
        );
        assert_eq!(plan.estimated_rows, None);
        assert_eq!(
            plan.spans[0],
            PlannedSpan {
                span: w("2022-01-01", "2023-01-01"),
                window: w("2022-01-01", "2023-01-01").duration()
            }
        );
    }
}
