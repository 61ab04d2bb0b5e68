//! Hard deletes: records purged from the recycle bin, hard-deleted, or deleted on objects that
//! skip the bin never come back from `queryAll`, so an incremental sync alone leaves them in the
//! destination for ever. Before reading an incremental stream's windows, its task asks
//! getDeleted (`sobjects/{object}/deleted`, sf-rest's [`RestReader::deleted`]) for the span the
//! sync reads, in pieces of at most 30 days; each deleted id becomes a tombstone record (`Id`,
//! `IsDeleted: true`, the deletion time in the cursor field), which a destination deduplicating
//! on `Id` by the cursor keeps as the record's latest row (Airbyte's typed destinations replace
//! the whole row, so its other columns become null).
//!
//! Tombstones go out at the end of a window their deletion time falls in or precedes, once 200
//! are due (each is first checked by `Id`, 200 to a query: `verify.rs`), else at the end of the
//! stream's last window; until they are out, the state's `deletes_unknown_from` goes back to
//! the earliest of them, so a state never covers a deletion whose tombstone was not emitted,
//! and a sync stopped (or killed) before then asks getDeleted for them again. An id the read
//! emits in a row that shows the delete (a soft delete still in the bin, read with `IsDeleted:
//! true`) or what came after it (a row undeleted since, its cursor at or after the deletion)
//! gets no tombstone: the row itself says what became of the record. A row older than the deletion (from a Bulk job a
//! previous sync created, whose results are a snapshot of then) does not cancel it: the
//! tombstone follows it.
//!
//! Cost: one API call per stream per sync and 30 days read, or a 25th of one when the stream's
//! window was asked ahead with others' in a `composite` call (`deletes_ahead.rs`); none for a
//! stream read for the first time, whose destination holds nothing to delete, none for objects
//! the describe does not call `replicateable`, none with the config's `hard_deletes: false`;
//! and one query per 200 listed ids the read did not show (`verify.rs`), none when there is
//! none.
//! Salesforce keeps deleted ids about 15 days: a state older than that gets
//! a WARN naming the fix (a full refresh of the stream), and the deletes the org still knows.
//!
//! [`RestReader::deleted`]: sf_rest::RestReader::deleted

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;
use sf_discovery::Record;
use sf_rest::{GET_DELETED_MAX_WINDOW, GET_DELETED_RETENTION};

use super::{Msg, ObjectRun, Runner, Stop};
use crate::sink::LogLevel;
use crate::time::{add, delta, format_instant, sub};
use crate::window::Window;

/// How far inside the documented 15 days a window may start: the org's clock moves on while a
/// sync runs, and the log's horizon with it. Kept short: the deletes inside the margin are
/// still in the log, and a start the log no longer reaches is refused and then asked from the
/// log's earliest date (`INVALID_REPLICATION_DATE`, below), at two calls more.
const RETENTION_MARGIN: TimeDelta = TimeDelta::minutes(5);

/// `t` cut to the minute (getDeleted ignores seconds).
fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// The getDeleted windows covering `span`: from its start cut to the minute, at most 30 days
/// each, and at least a minute: Salesforce refuses a shorter one (`INVALID_REPLICATION_DATE`:
/// "startDate must chronologically precede endDate by at least one minute"), so a span shorter
/// than that (a sync run again seconds after the last, with no lookback) is asked from a minute
/// before its end, which lists more, never less.
pub(crate) fn pieces(span: Window) -> Vec<Window> {
    let mut out = Vec::new();
    let mut start = minute(span.start);
    while start < span.end {
        let end = add(start, delta(GET_DELETED_MAX_WINDOW)).min(span.end);
        let least = minute(sub(end, TimeDelta::minutes(1)));
        out.push(Window::new(start.min(least), end));
        start = end;
    }
    out
}

/// `piece` in two at a minute near its middle, each at least a minute long; `None` for a piece
/// under two minutes (getDeleted asks at least a minute).
pub(crate) fn halves(piece: Window) -> Option<(Window, Window)> {
    let mid = minute(add(piece.start, (piece.end - piece.start) / 2));
    let long_enough = |a: DateTime<Utc>, b: DateTime<Utc>| b - a >= TimeDelta::minutes(1);
    (long_enough(piece.start, mid) && long_enough(mid, piece.end))
        .then(|| (Window::new(piece.start, mid), Window::new(mid, piece.end)))
}

/// What getDeleted is asked for one stream about to read `spans`: from the first span its state
/// had read before (`from`; earlier spans hold nothing the destination has) to the end of the
/// last, but not before what the org's log keeps (`horizon`). `None` when nothing is asked: not
/// incremental, a first read, `hard_deletes: false`, an object that is not replicateable or has
/// no `Id`.
pub(super) struct DeletesSpan {
    pub(super) from: DateTime<Utc>,
    /// Where the deletes known downstream end (the last listing, or where a listing failed),
    /// without the lookback: what a WARN that the state is too old names.
    pub(super) reach: DateTime<Utc>,
    pub(super) horizon: DateTime<Utc>,
    /// `[max(from, horizon), end of the last span)`: empty when the horizon cuts the whole span
    /// (an `end_date` further back than the log keeps), and then nothing is asked.
    pub(super) window: Window,
}

impl DeletesSpan {
    /// Whether there is anything to ask for.
    pub(super) fn asks(&self) -> bool {
        !self.window.is_empty()
    }
}

/// `known` less the lookback, but not before `horizon` when `known` itself is within the log:
/// only a listing that ended before the log's horizon left deletes that can no longer be known.
fn back_from(
    known: DateTime<Utc>,
    lookback: std::time::Duration,
    horizon: DateTime<Utc>,
) -> DateTime<Utc> {
    let back = sub(known, delta(lookback));
    if known >= horizon {
        back.max(horizon)
    } else {
        back
    }
}

pub(super) fn deletes_span(
    run: &ObjectRun,
    spans: &[Window],
    hard_deletes: bool,
    params: &crate::window::WindowParams,
) -> Option<DeletesSpan> {
    let now = params.now;
    let state = run.state.as_ref()?;
    run.cursor.as_ref()?;
    if !hard_deletes || !run.setup.replicateable || run.setup.spec.primary_key.is_none() {
        return None;
    }
    let to = spans.last()?.end;
    let horizon = add(sub(now, delta(GET_DELETED_RETENTION)), RETENTION_MARGIN);
    let from = match state.slices().first() {
        // Read before: the spans after the first window read.
        Some(first) => {
            let from = spans
                .iter()
                .map(|s| s.start)
                .find(|start| *start >= first.start)?;
            // Deletes before what the last sync listed (or, before any listing, before the
            // first sync began) concern no record downstream: asked from there, on the org's
            // clock, and not from the cursor, which lags far behind it while a first sync cut
            // short is resumed.
            // The lookback applies here too, as it does to the cursor: a delete committing late
            // is listed by the next sync.
            // A key past the org's clock (edited, or copied) is read as now, or nothing would
            // be listed until the clock passed it.
            // A lookback reaching past the log's horizon (15 days or more) asks from the
            // horizon: what the last sync listed is all still in the log, so nothing is lost.
            let (from, reach) = match state.deletes_known_to() {
                Some(known) => (
                    back_from(known.min(now), params.lookback, horizon).max(first.start),
                    known.min(now),
                ),
                None => (from, from),
            };
            // Deletes a sync before could not list are asked for again.
            match state.deletes_unknown_from() {
                Some(unknown) if unknown < from => {
                    let unknown = unknown.max(first.start);
                    (unknown, unknown)
                }
                _ => (from, reach),
            }
        }
        // No window read, but rows downstream: a first sync stopped inside its first Bulk jobs
        // (named by the state, or cut on a first page and not kept: `deletes_unknown_from`).
        // Their rows are as they were when each job ran, after its window's end was set, so a
        // record deleted before then was never emitted live (a soft delete came as `IsDeleted:
        // true`) and only later deletes need a tombstone. Salesforce deletes jobs after seven
        // days, so what the log keeps covers the jobs; but when the sync that began them is
        // older than the log (`deletes_known_to`), the rows it emitted may have been deleted
        // out of it: that is said (the state is too old), as for a state with windows.
        None => {
            let jobs = run.progress.resumable.iter().chain(state.jobs());
            let read_from = jobs
                .map(|j| j.end)
                .chain(state.deletes_unknown_from())
                .min()?;
            let from = read_from.max(spans.first()?.start);
            match state.deletes_known_to() {
                Some(known) if known.min(now) < horizon => {
                    (sub(known.min(now), delta(params.lookback)), known.min(now))
                }
                _ => (from.max(horizon), from.max(horizon)),
            }
        }
    };
    let (from, reach) = from;
    Some(DeletesSpan {
        from,
        reach,
        horizon,
        window: Window::new(from.max(horizon), to),
    })
}

impl Runner {
    /// Asks getDeleted for what an incremental stream is about to read (the spans after the
    /// first one its state covers) and keeps the tombstones for the windows to emit. Not for a
    /// first read, nor for objects that are not replicateable. A refused window is a WARN, never
    /// a failure of the stream; the daily limit stops the stream as any call does.
    pub(super) async fn fetch_deletes(
        &mut self,
        run: &mut ObjectRun,
        spans: &[Window],
    ) -> Result<(), Stop> {
        let (Some(span), Some(cursor)) = (
            deletes_span(run, spans, self.shared.hard_deletes, &self.shared.params),
            run.cursor.as_deref(),
        ) else {
            // A first sync: a record deleted before it began is never emitted, so the deletes
            // that matter to the next sync start here, however far its cursor lags behind.
            let tracked = self.shared.hard_deletes
                && run.setup.replicateable
                && run.setup.spec.primary_key.is_some()
                && run.cursor.is_some();
            // Salesforce lists the deletions of replicateable objects only: said, so a record
            // purged from such a stream is not left downstream in silence.
            let untracked = self.shared.hard_deletes
                && !run.setup.replicateable
                && run.setup.spec.primary_key.is_some()
                && run.cursor.is_some()
                && run.state.as_ref().is_some_and(|s| !s.is_empty());
            if untracked {
                let name = &self.name;
                self.log(
                    LogLevel::Info,
                    format!(
                        "{name}: hard deletes are not listed: Salesforce's getDeleted serves \
                         only objects whose describe says replicateable, and {name}'s does not; \
                         records purged or hard-deleted from it stay in the destination until a \
                         full refresh of {name}"
                    ),
                )
                .await;
            }
            if let Some(state) = run.state.as_ref().filter(|_| tracked) {
                let first = state.is_empty()
                    && state.jobs().is_empty()
                    && run.progress.resumable.is_empty()
                    && state.deletes_unknown_from().is_none()
                    && state.deletes_known_to().is_none();
                if first {
                    self.tombstones.known_to = Some(self.shared.params.now);
                    self.tombstones.read_floor = Some(self.shared.params.now);
                }
            }
            return Ok(());
        };
        // Rows this sync emits were read after the last listing (a job it continues was made
        // after it): a delete before then needs no tombstone (see `Tombstones::read_before`).
        self.tombstones.read_floor = run.state.as_ref().and_then(|s| s.deletes_known_to());
        let name = self.name.clone();
        let mut warned = false;
        if span.from < span.horizon {
            self.too_old(span.reach, span.horizon).await;
            warned = true;
        }
        if !span.asks() {
            return Ok(());
        }
        let (start, to) = (span.window.start, span.window.end);
        let columns: sf_discovery::Columns = Arc::from(vec![
            "Id".to_string(),
            "IsDeleted".to_string(),
            cursor.to_string(),
        ]);
        self.tombstones.columns = Some(columns);
        self.tombstones.verify = Some(verify::Verify::new(run));
        let mut calls = 0u32;
        let mut listed = 0usize;
        // Where the deletes stop being known: a piece that failed, or an answer complete only
        // up to some instant before its end (getDeleted's `latestDateCovered`).
        let mut unknown: Option<DateTime<Utc>> = None;
        // How far the last piece's answer covered (`latestDateCovered`).
        let mut last_covered: Option<DateTime<Utc>> = None;
        // The first answer complete only up to before its end.
        let mut short_of_end: Option<DateTime<Utc>> = None;
        let mut failed = 0u32;
        let mut split = 0u32;
        let mut probed = false;
        let mut queue: VecDeque<Window> = pieces(Window::new(start, to)).into();
        while let Some(piece) = queue.pop_front() {
            self.may_continue()?;
            // Asked ahead with other streams' in one composite call (`deletes_ahead.rs`), when
            // that asked for exactly this window.
            let answer = match self.deletes_asked_ahead(piece).await {
                Some(answer) => answer,
                None => {
                    calls += 1;
                    self.ask_deleted(&run.setup.spec.name, piece).await?
                }
            };
            match answer {
                Ok(answer) => {
                    if let Some(earliest) = answer.earliest_date_available {
                        if earliest > piece.start && !warned {
                            self.too_old(piece.start, earliest).await;
                            warned = true;
                        }
                    }
                    last_covered = answer.latest_date_covered;
                    if let Some(covered) = answer.latest_date_covered {
                        if covered < minute(piece.end) {
                            unknown = unknown.or(Some(covered.max(piece.start)));
                            short_of_end = short_of_end.or(Some(covered.max(piece.start)));
                        }
                    }
                    listed += answer.records.len();
                    for record in answer.records {
                        self.tombstones.add(record.id, record.deleted_date);
                    }
                }
                Err(e) if e.kind() == sf_rest::ErrorKind::DailyLimitExceeded => {
                    return Err(Stop::Limit(self.shared.hit_limit(&e)));
                }
                // More deleted ids than one answer lists (600,000, after a mass delete): each
                // half is asked, down to a minute. Left failing, the same window would be asked
                // again by every sync until the log no longer reached its start.
                // A start before what the org's log keeps (purged early under heavy deletes:
                // it keeps less than the 15 days the horizon assumes): the log's earliest date,
                // from a one-minute listing, and the rest asked from there, once. Left failing,
                // every sync would ask from the same start, refused for good.
                Err(e) if e.kind() == sf_rest::ErrorKind::ReplicationDateRefused && !probed => {
                    probed = true;
                    if let Some(kept) = self.earliest_listed(&run.setup.spec.name).await? {
                        // On a minute (getDeleted ignores seconds), not before what is kept.
                        let earliest = match minute(kept) {
                            m if m < kept => add(m, TimeDelta::minutes(1)),
                            m => m,
                        };
                        if earliest > piece.start && earliest < to {
                            if !warned {
                                self.too_old(piece.start, earliest).await;
                                warned = true;
                            }
                            calls += 1;
                            queue = pieces(Window::new(earliest, to)).into();
                            continue;
                        }
                    }
                    failed += 1;
                    unknown = unknown.or(Some(piece.start));
                    self.could_not_list(piece, &e).await;
                }
                Err(e) if e.kind() == sf_rest::ErrorKind::TooManyResults => {
                    if let Some((a, b)) = halves(piece) {
                        split += 1;
                        queue.push_front(b);
                        queue.push_front(a);
                        continue;
                    }
                    // A minute is the least getDeleted asks: it can never be listed, so it
                    // is not asked again (every later sync would, at full cost, until the log
                    // dropped it).
                    failed += 1;
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{name}: more records were purged or hard-deleted in the minute from \
                             {} than getDeleted lists at once ({e}), which no narrower window \
                             can list: they get no tombstone; run a full refresh of {name} to \
                             drop them from the destination",
                            format_instant(piece.start)
                        ),
                    )
                    .await;
                }
                Err(e) => {
                    failed += 1;
                    unknown = unknown.or(Some(piece.start));
                    self.could_not_list(piece, &e).await;
                }
            }
        }
        self.log(
            LogLevel::Info,
            format!(
                "{name}: hard deletes from {} to {}: {listed} deleted id{} listed by getDeleted \
                 ({}{}{}); records the read does not return get a tombstone (IsDeleted: true){}",
                format_instant(start),
                format_instant(to),
                if listed == 1 { "" } else { "s" },
                match split {
                    0 => String::new(),
                    n => format!(
                        "{n} window(s) split in halves for holding more ids than one answer \
                         lists; "
                    ),
                },
                match failed {
                    0 => String::new(),
                    n => format!("{n} piece(s) could not be listed, see the warning; "),
                },
                match calls {
                    0 => "asked with other streams in one composite call".to_string(),
                    1 => "1 API call".to_string(),
                    n => format!("{n} API calls"),
                },
                match short_of_end {
                    Some(covered) => format!(
                        "; Salesforce's answer is complete only up to {} (latestDateCovered): \
                         the deletes after that are asked for by the next sync",
                        format_instant(covered)
                    ),
                    None => String::new(),
                },
            ),
        )
        .await;
        self.tombstones.unknown = unknown;
        self.tombstones.asked = true;
        // Listed up to the minute of the end (getDeleted ignores seconds), or as far as the last
        // answer covered; what failed before is in `unknown`.
        self.tombstones.known_to = Some(last_covered.unwrap_or(minute(to)).min(minute(to)));
        if let Some(state) = run.state.as_mut() {
            self.tombstones.note_in(state);
        }
        Ok(())
    }

    /// The WARN of a getDeleted window that failed.
    async fn could_not_list(&self, piece: Window, e: &sf_rest::Error) {
        let name = &self.name;
        self.log(
            LogLevel::Warn,
            format!(
                "{name}: records purged or hard-deleted from {} to {} could not be listed ({e}); \
                 the state keeps where they stop being known, and the next sync asks for them \
                 again (the org keeps deleted ids about 15 days: past that, run a full refresh of \
                 {name} to drop them)",
                format_instant(piece.start),
                format_instant(piece.end)
            ),
        )
        .await;
    }

    /// getDeleted for `object` over `window`, alone (one API call), unless the sync is cancelled.
    async fn ask_deleted(
        &self,
        object: &str,
        window: Window,
    ) -> Result<Result<sf_rest::DeletedRecords, sf_rest::Error>, Stop> {
        tokio::select! {
            biased;
            _ = self.shared.cancel.cancelled() => Err(Stop::Cancelled),
            answer = self.shared.rest.deleted(object, window.start, window.end) => Ok(answer),
        }
    }

    /// The earliest deletion the org's log still keeps for `object` (getDeleted's
    /// `earliestDateAvailable`), from a listing of the last minute; `None` when that fails too.
    async fn earliest_listed(&self, object: &str) -> Result<Option<DateTime<Utc>>, Stop> {
        let now = minute(self.shared.params.now);
        let last_minute = Window::new(sub(now, TimeDelta::minutes(1)), now);
        match self.ask_deleted(object, last_minute).await? {
            Ok(answer) => Ok(answer.earliest_date_available),
            Err(e) if e.kind() == sf_rest::ErrorKind::DailyLimitExceeded => {
                Err(Stop::Limit(self.shared.hit_limit(&e)))
            }
            Err(_) => Ok(None),
        }
    }

    /// The WARN of a state older than the org's delete log reaches.
    async fn too_old(&self, from: DateTime<Utc>, kept: DateTime<Utc>) {
        let name = &self.name;
        self.log(
            LogLevel::Warn,
            format!(
                "{name}: this stream's state goes back to {}, but the org keeps deleted record \
                 ids only from about {} (about 15 days): records purged or hard-deleted before \
                 then cannot be known and may remain in the destination; run a full refresh of \
                 {name} (reset the stream) to drop them",
                format_instant(from),
                format_instant(kept)
            ),
        )
        .await;
    }

    /// Emits the tombstones deleted before `until` (all with `None`) that the read did not
    /// return, or the rows of those still in the org (`verify.rs`); true when it emitted any.
    /// `batched`: only once a whole check query's worth is due (a window's end), so the check
    /// costs a call per 200 ids, not one per window; the rest wait for a later window or the
    /// stream's end, the state meanwhile saying deletes are unknown from the first of them.
    pub(super) async fn emit_tombstones(
        &mut self,
        until: Option<DateTime<Utc>>,
        batched: bool,
    ) -> Result<bool, Stop> {
        if self.tombstones.is_empty() {
            return Ok(false);
        }
        if batched && self.tombstones.due_before(until) < verify::IDS_PER_QUERY {
            return Ok(false);
        }
        let due = self.tombstones.take_before(until);
        let Some(columns) = self.tombstones.columns.clone() else {
            return Ok(false);
        };
        // Listed ids the read did not show: rows still in the org go out as they are.
        let before = self.records;
        let (due, stopped) = self.drop_still_there(due).await;
        let any = !due.is_empty() || self.records > before;
        for (at, id) in due {
            self.tombstones.emitted += 1;
            let record = Record {
                columns: columns.clone(),
                values: vec![
                    Value::String(id),
                    Value::Bool(true),
                    Value::String(format_instant(at)),
                ],
            };
            self.record(record).await?;
        }
        // A stop during the check, after the ids it settled went out.
        if let Some(stop) = stopped {
            return Err(stop);
        }
        Ok(any)
    }

    /// After the last window: the tombstones left (deleted after it), then the state again.
    pub(super) async fn finish_tombstones(&mut self, run: &mut ObjectRun) -> Result<(), Stop> {
        if self.emit_tombstones(None, false).await? {
            if let Some(state) = run.state.as_mut() {
                self.tombstones.note_in(state);
                let json = state.to_json();
                self.send(Msg::State(self.idx, json)).await?;
            }
        }
        if self.tombstones.emitted > 0 {
            self.log(
                LogLevel::Info,
                format!(
                    "{}: {} tombstone{} emitted for records purged or hard-deleted",
                    self.name,
                    self.tombstones.emitted,
                    if self.tombstones.emitted == 1 {
                        ""
                    } else {
                        "s"
                    }
                ),
            )
            .await;
        }
        Ok(())
    }
}

mod tombstones;
mod verify;

pub(super) use tombstones::Tombstones;

#[cfg(test)]
mod tests;
