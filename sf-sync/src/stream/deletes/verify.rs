//! Ids getDeleted lists that the sync's read did not show: checked with `queryAll` before they
//! become tombstones.
//!
//! getDeleted lists soft deletes (rows still in the recycle bin) as well as hard deletes and
//! purges. A soft-deleted row whose deletion falls inside the windows this sync reads usually
//! comes back from the read itself (`IsDeleted: true`: deleting updates `SystemModstamp`), which
//! cancels its tombstone (`Tombstones::seen`). But not always:
//! - the listing can start before the read: after an answer complete only up to its
//!   `latestDateCovered`, or a piece that failed, the next sync lists from there while its
//!   windows start at the state's end; a state Airbyte left with a gap between slices lists from
//!   the gap, and its windows skip the slice after it;
//! - a cursor other than `SystemModstamp` (`CreatedDate` of a history object) does not move when
//!   a row is deleted;
//! - a row undeleted after the listing and before its window's query moved its `SystemModstamp`
//!   past the window's end: the read does not show it, though it is live (the listing is asked
//!   ahead for up to 25 streams at once, so the time between can be long).
//!
//! A tombstone for such an id would blank a row that still exists. So every listed id the read
//! did not show is read again by `Id` through `queryAll`, 200 at a time, with the stream's
//! columns: a row that comes back is emitted as it is now (deleted in the bin, or undeleted),
//! and only ids that do not come back (purged, hard-deleted) become tombstones. A row emptied
//! from the recycle bin may still come back from `queryAll` for about a day (emptyRecycleBin's
//! documentation: "typically 24 hours"; sure): it then goes out as the deleted row it is
//! (`IsDeleted: true`, every column), which tells the destination the same as a tombstone.
//!
//! One REST call per 200 such ids: hard deletes and purges are what is left once the read has
//! shown the soft deletes. The ids wait until 200 are due at a window's end, or the stream's last window
//! (`Runner::span_done`, `Runner::finish_tombstones`), so the check costs about a call per 200
//! tombstones, none when there is none; a sync that stops first leaves them to the next.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sf_discovery::StreamSpec;
use sf_rest::{Order, ReadRequest};

use super::super::{ObjectRun, Runner, Stop};
use crate::error::Failure;
use crate::sink::LogLevel;

/// Ids per `Id IN (...)` query: about 4 KB of request.
pub(super) const IDS_PER_QUERY: usize = 200;

/// How to check a stream's listed ids.
#[derive(Debug)]
pub(in crate::stream) struct Verify {
    spec: StreamSpec,
    fields: Vec<String>,
}

impl Verify {
    pub(in crate::stream) fn new(run: &ObjectRun) -> Arc<Verify> {
        Arc::new(Verify {
            spec: run.setup.spec.clone(),
            fields: run.setup.columns.clone(),
        })
    }
}

impl Runner {
    /// `due` (deletion time, id), less the ids `queryAll` still returns, whose rows are emitted
    /// instead (see the module doc): the tombstones to emit. A query that fails for a passing
    /// reason (a 5xx, a page unreadable twice) puts its ids back, with a WARN: the state says
    /// deletes are unknown from the first of them, and the next sync lists and checks them
    /// again, rather than a tombstone blanking a row that may still exist. One that fails for
    /// good (the query refused) leaves its ids as tombstones, with a WARN, so a stream whose
    /// check can never run still gets its tombstones. A stop (the daily limit, the budget, a
    /// cancel), before or during the check, is returned beside them: the ids settled so far are
    /// still emitted, and the ones not checked yet (checked in deletion order) are pending
    /// again, so the next sync checks on from the first of them rather than from the start
    /// (under an `api_budget` smaller than the whole check, every sync would otherwise stop at
    /// the same place).
    pub(in crate::stream) async fn drop_still_there(
        &mut self,
        due: Vec<(DateTime<Utc>, String)>,
    ) -> (Vec<(DateTime<Utc>, String)>, Option<Stop>) {
        let Some(verify) = self.tombstones.verify.clone() else {
            return (due, None);
        };
        let check = due;
        let mut gone = Vec::with_capacity(check.len());
        if check.is_empty() {
            return (gone, None);
        }
        if let Err(stop) = self.may_continue() {
            for (at, id) in check {
                self.tombstones.put_back(id, at);
            }
            return (gone, Some(stop));
        }
        let mut stopped = None;
        let mut still = 0usize;
        let mut failed: Option<String> = None;
        let mut put_off: Option<String> = None;
        let mut chunks = check.chunks(IDS_PER_QUERY);
        while let Some(chunk) = chunks.next() {
            let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
            match self.rows_by_id(&verify, ids).await {
                Ok(Ok(found)) => {
                    still += found.len();
                    gone.extend(chunk.iter().filter(|(_, id)| !found.contains(id)).cloned());
                }
                Ok(Err((found, e, passing))) => {
                    still += found.len();
                    let unsettled = chunk.iter().filter(|(_, id)| !found.contains(id));
                    if passing {
                        put_off.get_or_insert(e);
                        for (at, id) in unsettled {
                            self.tombstones.put_back(id.clone(), *at);
                        }
                    } else {
                        failed.get_or_insert(e);
                        gone.extend(unsettled.cloned());
                    }
                }
                Err(stop) => {
                    for (at, id) in chunk.iter().chain(chunks.flatten()) {
                        self.tombstones.put_back(id.clone(), *at);
                    }
                    stopped = Some(stop);
                    break;
                }
            }
        }
        gone.sort();
        let name = self.name.clone();
        if still > 0 {
            self.log(
                LogLevel::Info,
                format!(
                    "{name}: {still} record{} listed as deleted and not shown by the read are \
                     still in the org (in the recycle bin, or undeleted): emitted as they are \
                     now, not as tombstones",
                    if still == 1 { "" } else { "s" }
                ),
            )
            .await;
        }
        if let Some(e) = failed {
            self.log(
                LogLevel::Warn,
                format!(
                    "{name}: checking whether records listed as deleted are still in the org \
                     failed ({e}); they are emitted as tombstones"
                ),
            )
            .await;
        }
        if let Some(e) = put_off {
            self.log(
                LogLevel::Warn,
                format!(
                    "{name}: checking whether records listed as deleted are still in the org \
                     failed ({e}); their tombstones are put off: the next sync lists and checks \
                     them again"
                ),
            )
            .await;
        }
        (gone, stopped)
    }

    /// The rows of `ids` `queryAll` returns, emitted; their ids. `Ok(Err)` when the query
    /// failed: the ids emitted before it did, the error, and whether it was a passing one
    /// (transient: the next sync may well succeed).
    #[allow(clippy::type_complexity)]
    async fn rows_by_id(
        &mut self,
        verify: &Verify,
        ids: Vec<String>,
    ) -> Result<Result<HashSet<String>, (HashSet<String>, String, bool)>, Stop> {
        let passing = |e: &sf_rest::Error| Failure::of(e.kind()) == Failure::Transient;
        let request = ReadRequest {
            fields: verify.fields.clone(),
            include_deleted: true,
            order: Some(Order::Unordered),
            where_in: Some(("Id".to_string(), ids)),
            ..ReadRequest::default()
        };
        let mut found = HashSet::new();
        let mut rows = match self.shared.rest.read(&verify.spec, request) {
            Ok(rows) => rows,
            Err(e) => return Ok(Err((found, e.to_string(), passing(&e)))),
        };
        loop {
            match self.next_from(&mut rows).await? {
                None => return Ok(Ok(found)),
                Some(Ok(record)) => {
                    if let Some(id) = record.id() {
                        found.insert(id.to_string());
                    }
                    self.record(record).await?;
                }
                Some(Err(e)) if e.kind() == sf_rest::ErrorKind::DailyLimitExceeded => {
                    return Err(Stop::Limit(self.shared.hit_limit(&e)));
                }
                Some(Err(e)) => return Ok(Err((found, e.to_string(), passing(&e)))),
            }
        }
    }
}
