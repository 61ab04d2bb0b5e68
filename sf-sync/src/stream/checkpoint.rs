//! Checkpoints inside a window: how far a REST window read in cursor order was emitted, which
//! Bulk jobs a stream has in flight and how far their results were emitted, and the state a
//! stream emits when it stops early (the daily limit, the budget, cancellation), which covers
//! exactly what it emitted.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::{Msg, ObjectRun, Runner, Span, Stop};
use crate::sink::LogLevel;
use crate::state::{JobCheckpoint, StateSlice, StreamState};
use crate::window::Window;

/// Where an object stream's reading stands inside its current window.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// The REST window being read in cursor order, if any.
    partial: Option<Partial>,
    /// The Bulk job whose results are being emitted, at the next page not yet emitted.
    pub(super) current: Option<JobCheckpoint>,
    /// Jobs the input state had in flight, not picked up yet: each is continued when its window
    /// comes up through Bulk.
    pub(super) resumable: Vec<JobCheckpoint>,
    /// The longest window of the jobs continued from the input state: the window length the
    /// sync that wrote it planned, which planning the rest does not go below.
    pub(super) resumed_window: Option<std::time::Duration>,
}

impl Progress {
    /// The progress of a stream starting from `state`: its jobs in flight are to be continued.
    pub(super) fn from_state(state: Option<&mut StreamState>) -> Progress {
        let resumable = match state {
            Some(state) => {
                let jobs = state.jobs().to_vec();
                state.set_jobs(Vec::new());
                jobs
            }
            None => Vec::new(),
        };
        Progress {
            resumable,
            ..Progress::default()
        }
    }

    /// The windows of the jobs to continue, in order; the longest is remembered for planning
    /// the rest (see `resumed_window`).
    pub(super) fn resumable_windows(&mut self) -> Vec<Window> {
        let windows: Vec<Window> = self
            .resumable
            .iter()
            .map(|j| Window::new(j.start, j.end))
            .collect();
        self.resumed_window = windows.iter().map(Window::duration).max();
        windows
    }

    /// Takes the job to continue for `span`, if the state had one for exactly that window.
    pub(super) fn take_resumable(&mut self, span: &Span) -> Option<JobCheckpoint> {
        let window = (*span)?;
        let at = self
            .resumable
            .iter()
            .position(|j| j.start == window.start && j.end == window.end)?;
        Some(self.resumable.remove(at))
    }
}

/// A REST window read in `(cursor, Id)` order: every row with a cursor before `last` was emitted.
#[derive(Debug, Clone, Copy)]
struct Partial {
    start: DateTime<Utc>,
    /// The window's end: a row showing a cursor at or past it (changed while the query was
    /// read, were pages not a snapshot) never moves `last`, so a state never covers windows
    /// not read yet.
    end: DateTime<Utc>,
    /// The cursor value of the last record emitted.
    last: Option<DateTime<Utc>>,
    /// The largest cursor value emitted before `last`.
    below: Option<DateTime<Utc>>,
    /// Records emitted since the last checkpoint.
    since: u64,
}

impl Partial {
    /// A record with this cursor value was emitted.
    fn note(&mut self, cursor: Option<DateTime<Utc>>) {
        if let Some(c) = cursor.filter(|c| *c < self.end) {
            if self.last.is_none_or(|last| c > last) {
                self.below = self.last.max(self.below);
                self.last = Some(c);
            }
        }
        self.since += 1;
    }

    /// `[start, last)`: read completely, since rows come in cursor order and rows sharing `last`
    /// may not all have been emitted (they are read again, never skipped).
    fn slice(&self) -> Option<StateSlice> {
        let last = self.last?;
        (last > self.start).then_some(StateSlice {
            start: self.start,
            end: last,
            most_recent_cursor_value: self.below,
        })
    }
}

impl Runner {
    /// A REST read of `span` in cursor order starts: it checkpoints at page boundaries.
    pub(super) fn rest_ordered_start(&self, run: &mut ObjectRun, span: &Span) {
        run.progress.partial = match (span, &run.state) {
            (Some(window), Some(_)) => Some(Partial {
                start: window.start,
                end: window.end,
                last: None,
                below: None,
                since: 0,
            }),
            _ => None,
        };
    }

    /// The REST read of the current span ended (read whole, or given up for halves).
    pub(super) fn rest_ordered_end(&self, run: &mut ObjectRun) {
        run.progress.partial = None;
    }

    /// A record of a REST read in cursor order was emitted; every `page` records, the state
    /// records what was read completely and is emitted.
    pub(super) async fn rest_ordered_record(
        &mut self,
        run: &mut ObjectRun,
        cursor: Option<DateTime<Utc>>,
        page: u64,
    ) -> Result<(), Stop> {
        let Some(partial) = run.progress.partial.as_mut() else {
            return Ok(());
        };
        partial.note(cursor);
        if partial.since < page.max(1) {
            return Ok(());
        }
        let Some(slice) = partial.slice() else {
            return Ok(());
        };
        partial.since = 0;
        let Some(state) = run.state.as_mut() else {
            return Ok(());
        };
        let before = state.clone();
        state.add(slice);
        if *state == before {
            return Ok(());
        }
        // Tombstones still pending hold the state's `deletes_unknown_from` back to the first of
        // them: a sync that stops before they go out (at the window's end, or the stream's)
        // leaves them to the next, which lists from there.
        self.tombstones.note_in(state);
        let json = state.to_json();
        self.send(Msg::State(self.idx, json)).await
    }

    /// Emits `run`'s state with `jobs` as the Bulk jobs in flight, when they changed.
    pub(super) async fn jobs_checkpoint(
        &mut self,
        run: &mut ObjectRun,
        jobs: Vec<JobCheckpoint>,
    ) -> Result<(), Stop> {
        let Some(state) = run.state.as_mut() else {
            return Ok(());
        };
        let ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
        if state.jobs() != jobs.as_slice() {
            state.set_jobs(jobs);
            let json = state.to_json();
            self.send(Msg::State(self.idx, json)).await?;
        }
        // Named by the last state sent (or an earlier one, when unchanged).
        self.job_gate
            .named(self.states_sent.load(Ordering::Relaxed), &ids);
        Ok(())
    }

    /// Ends a stream stopped early (`at_limit`: by the daily limit or the budget, else
    /// cancelled) with a state after its last record, when it emitted records since its last
    /// state, or when it has windows read or Bulk jobs to name (which the last state emitted may
    /// name differently: jobs started ahead are aborted on cancellation).
    ///
    /// A full-refresh stream has nothing to resume: it ends with Airbyte's full-refresh state
    /// (`{"__ab_no_cursor_state_message": true}`) after its records, so a destination that
    /// commits up to each stream's last state keeps them, and its status says it is incomplete;
    /// the next sync reads it whole again, as a full refresh always does. (Continuing it in the
    /// next sync would hand an overwriting destination only the rows after the cut.)
    pub(super) async fn stop_checkpoint(&mut self, run: &mut ObjectRun, at_limit: bool) {
        // Tombstones still pending are not checked now (a check query would meet the limit,
        // or be cancelled): the state says deletes are unknown from the first of them, and the
        // next sync lists and checks them.
        if let Some(state) = run.state.as_mut() {
            self.tombstones.note_in(state);
        }
        let unstated = self.unstated.load(Ordering::Relaxed);
        let Some(state) = Runner::stop_state(run) else {
            if unstated {
                let _ = self
                    .send(Msg::State(self.idx, crate::state::full_refresh_state()))
                    .await;
                let why = if at_limit {
                    "the API limit"
                } else {
                    "cancellation"
                };
                self.log(
                    LogLevel::Info,
                    format!(
                        "{}: full refresh cut short by {why} after {} records; they are followed \
                         by a state so a destination keeps them, and the next sync reads the \
                         stream whole again",
                        self.name, self.records
                    ),
                )
                .await;
            }
            return;
        };
        let something = !(state.is_empty() && state.jobs().is_empty());
        if unstated || something {
            let _ = self.send(Msg::State(self.idx, state.to_json())).await;
        }
    }

    /// The state a stream stopped early emits: the windows read, the part of the REST window
    /// read in cursor order, and the Bulk jobs left on the org for the next sync (those the Bulk
    /// reader put in the state when it stopped, see `Runner::bulk`, and those the input state
    /// named and this sync did not pick up). `None` for a full refresh.
    pub(super) fn stop_state(run: &mut ObjectRun) -> Option<StreamState> {
        let partial = run.progress.partial.and_then(|p| p.slice());
        let state = run.state.as_mut()?;
        if let Some(slice) = partial {
            state.add(slice);
        }
        let mut jobs = state.jobs().to_vec();
        jobs.extend(std::mem::take(&mut run.progress.resumable));
        state.set_jobs(jobs);
        Some(state.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse_instant(s).unwrap_or_default()
    }

    #[test]
    fn a_partial_window_covers_up_to_the_last_cursor_inside_it() {
        let mut partial = Partial {
            start: t("2024-01-01T00:00:00Z"),
            end: t("2024-02-01T00:00:00Z"),
            last: None,
            below: None,
            since: 0,
        };
        assert!(partial.slice().is_none());
        partial.note(Some(t("2024-01-05T00:00:00Z")));
        partial.note(Some(t("2024-01-10T00:00:00Z")));
        // A row showing a cursor past the window (changed while the query was read) and one
        // without a cursor move nothing.
        partial.note(Some(t("2024-03-01T00:00:00Z")));
        partial.note(Some(t("2024-02-01T00:00:00Z")));
        partial.note(None);
        assert_eq!(partial.since, 5);
        assert_eq!(
            partial.slice(),
            Some(StateSlice {
                start: t("2024-01-01T00:00:00Z"),
                end: t("2024-01-10T00:00:00Z"),
                most_recent_cursor_value: Some(t("2024-01-05T00:00:00Z")),
            })
        );
    }
}
