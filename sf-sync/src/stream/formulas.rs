//! Formula freshness (`formula_refresh`): a formula field's value changes when what it reads
//! changes (a parent record, a rate, `TODAY()`) without touching the record's `SystemModstamp`,
//! so incremental windows keep serving the old value. With `formula_refresh` set, an incremental
//! stream whose selected fields include a formula (describe `calculated: true`) is read whole
//! again, from `start_date`, once its last whole read is older than that duration (less a tenth
//! of it, at most an hour); the read is planned as a first read is (a `COUNT()`, then REST or
//! Bulk by volume), emits complete records (a destination deduplicating on `Id` then holds
//! current values), and its end writes `formula_refreshed_at` (when it began, on the org's
//! clock) into the stream's state. A first read counts as a whole read, and its states carry the
//! key from the start, so a first read cut short is continued, not started over; a state without
//! the key (written by another tool) is due at once. Streams without formula fields, or
//! refreshed recently, are read incrementally as always. A refresh cut short (the daily limit, a
//! cancel) leaves the old time and, in `formula_refresh_began` and `formula_refresh_reached`,
//! when it began and how far it read: the next sync continues it from there.

use chrono::{DateTime, Utc};

use super::{Msg, ObjectRun, Runner, Stop};
use crate::sink::LogLevel;
use crate::time::{add, delta, format_instant, sub};

/// A read of the whole object that refreshes its formula values.
#[derive(Debug, Clone)]
pub(super) struct FormulaRefresh {
    /// When the read began, on the org's clock: written as `formula_refreshed_at` when it
    /// completes (and from the start for a first read).
    at: DateTime<Utc>,
    /// Set when the stream had been read before (a refresh, logged); unset for a first read.
    before: Option<Cost>,
    /// A refresh cut short by an earlier sync, continued: it read every row before this.
    from: Option<DateTime<Utc>>,
}

impl FormulaRefresh {
    /// True for a first read of the stream (nothing to refresh: it reads everything anyway).
    pub(super) fn is_first_read(&self) -> bool {
        self.before.is_none()
    }

    /// When the read began, on the org's clock: what `formula_refreshed_at` says once it ends.
    pub(super) fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Where a refresh an earlier sync cut short continues: it read every row before this.
    pub(super) fn continues_from(&self) -> Option<DateTime<Utc>> {
        self.from
    }
}

/// What the stream had spent when the refresh began.
#[derive(Debug, Clone, Copy)]
struct Cost {
    calls: u64,
    records: u64,
    tombstones: u64,
}

impl Runner {
    /// API calls sent so far under this stream's name (its task and its Bulk job tasks).
    fn stream_calls(&self) -> u64 {
        self.shared
            .session
            .tally()
            .iter()
            .filter(|t| t.tag.as_ref().is_some_and(|tag| *tag.name == *self.name))
            .map(|t| t.count)
            .sum()
    }

    /// Whether this read of an incremental stream reads the object whole for its formula
    /// fields: with `formula_refresh` set and formula fields selected, on a first read (noted
    /// only) or when the last whole read is older than `formula_refresh` (logged).
    pub(super) async fn formula_refresh(&self, run: &ObjectRun) -> Option<FormulaRefresh> {
        let every = self.shared.formula_refresh?;
        let state = run.state.as_ref()?;
        let formulas: Vec<&str> = run
            .setup
            .columns
            .iter()
            .filter(|c| run.setup.spec.field(c).is_some_and(|f| f.calculated))
            .map(String::as_str)
            .collect();
        if formulas.is_empty() {
            return None;
        }
        // The org's clock, not the read's upper bound: formula values are computed when read,
        // and the due check compares with the clock (an `end_date` in the past made every sync
        // due).
        let at = self.shared.params.now;
        if state.is_empty() {
            return Some(FormulaRefresh {
                at,
                before: None,
                from: None,
            });
        }
        // Due a little early (a tenth of the period, at most an hour): a sync scheduled every
        // period that reaches this point a second sooner than the last would otherwise wait a
        // whole period more.
        let last = state.formula_refreshed_at();
        let now = self.shared.params.now;
        if last
            .is_some_and(|last| add(last, delta(every.as_std())) > add(now, slack(every.as_std())))
        {
            return None;
        }
        let since = match last {
            Some(last) => format!("last read whole at {}", format_instant(last)),
            None => "its state does not say when it was last read whole".to_string(),
        };
        // A refresh an earlier sync cut short goes on from where it was: started over each
        // time, one that never fits in a sync would never end.
        let progress = state.refresh_progress();
        let what = match progress {
            Some(p) => format!(
                "continuing the refresh begun at {} from {} (the cursor it had reached)",
                format_instant(p.began),
                format_instant(p.reached)
            ),
            None => "reading the object whole again from start_date".to_string(),
        };
        self.log(
            LogLevel::Info,
            format!(
                "{}: formula refresh: {} ({since}, formula_refresh {every}): {what}",
                self.name,
                formulas
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        )
        .await;
        Some(FormulaRefresh {
            at: progress.map_or(at, |p| p.began),
            before: Some(Cost {
                calls: self.stream_calls(),
                records: self.records,
                tombstones: self.tombstones.emitted,
            }),
            from: progress.map(|p| p.reached),
        })
    }

    /// After a whole read that refreshed the formula values: the time into the state (emitted
    /// again) and, for a refresh, a LOG line of what it cost.
    pub(super) async fn finish_refresh(&mut self, run: &mut ObjectRun) -> Result<(), Stop> {
        let Some(refresh) = run.formula_refresh.take() else {
            return Ok(());
        };
        let Some(state) = run.state.as_mut() else {
            return Ok(());
        };
        *state = std::mem::take(state).with_formula_refreshed_at(Some(refresh.at));
        state.set_refresh_progress(None);
        let json = state.to_json();
        self.send(Msg::State(self.idx, json)).await?;
        if let Some(before) = refresh.before {
            let calls = self.stream_calls().saturating_sub(before.calls);
            // Rows read, not the tombstones emitted on the way.
            let tombstones = self.tombstones.emitted.saturating_sub(before.tombstones);
            let records = self
                .records
                .saturating_sub(before.records)
                .saturating_sub(tombstones);
            self.log(
                LogLevel::Info,
                format!(
                    "{}: formula refresh done: {records} record{} re-read whole through {} in \
                     {calls} API call{}; next refresh after {}",
                    self.name,
                    if records == 1 { "" } else { "s" },
                    self.api.map_or("REST", |a| a.as_str()).to_uppercase(),
                    if calls == 1 { "" } else { "s" },
                    self.shared
                        .formula_refresh
                        .map(|every| format_instant(sub(
                            add(refresh.at, delta(every.as_std())),
                            slack(every.as_std())
                        )))
                        .unwrap_or_default(),
                ),
            )
            .await;
        }
        Ok(())
    }
}

/// How early a refresh is due: a tenth of the period, at most an hour.
fn slack(every: std::time::Duration) -> chrono::TimeDelta {
    delta(every / 10).min(chrono::TimeDelta::hours(1))
}
