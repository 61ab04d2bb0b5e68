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
//! and only ids that do not come back (purged, hard-deleted) become tombstones. One REST call
//! per 200 such ids: hard deletes and purges are what is left once the read has shown the soft
//! deletes, so the check costs a call per 200 tombstones, none when there is none.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sf_discovery::StreamSpec;
use sf_rest::{Order, ReadRequest};

use super::super::{ObjectRun, Runner, Stop};
use crate::sink::LogLevel;

/// Ids per `Id IN (...)` query: about 4 KB of request.
const IDS_PER_QUERY: usize = 200;

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
    /// instead (see the module doc): the tombstones to emit. A query that fails leaves its ids
    /// as tombstones, as before this check, with a WARN. A stop (the daily limit, the budget, a
    /// cancel) is returned beside them: the ids settled so far are still emitted, and the ones
    /// not checked yet (checked in deletion order) are pending again, so the state says deletes
    /// are unknown from the first of them and the next sync checks on from there rather than
    /// from the start (under an `api_budget` smaller than the whole check, every sync would
    /// otherwise stop at the same place).
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
        let mut stopped = None;
        let mut still = 0usize;
        let mut failed: Option<String> = None;
        let mut chunks = check.chunks(IDS_PER_QUERY);
        while let Some(chunk) = chunks.next() {
            let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
            match self.rows_by_id(&verify, ids).await {
                Ok(Ok(found)) => {
                    still += found.len();
                    gone.extend(chunk.iter().filter(|(_, id)| !found.contains(id)).cloned());
                }
                Ok(Err((found, e))) => {
                    still += found.len();
                    failed.get_or_insert(e);
                    gone.extend(chunk.iter().filter(|(_, id)| !found.contains(id)).cloned());
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
        (gone, stopped)
    }

    /// The rows of `ids` `queryAll` returns, emitted; their ids. `Ok(Err)` when the query
    /// failed (with the ids emitted before it did).
    #[allow(clippy::type_complexity)]
    async fn rows_by_id(
        &mut self,
        verify: &Verify,
        ids: Vec<String>,
    ) -> Result<Result<HashSet<String>, (HashSet<String>, String)>, Stop> {
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
            Err(e) => return Ok(Err((found, e.to_string()))),
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
                Some(Err(e)) => return Ok(Err((found, e.to_string()))),
            }
        }
    }
}
