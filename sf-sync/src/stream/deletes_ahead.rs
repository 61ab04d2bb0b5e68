//! getDeleted asked together, many streams at once. Each incremental stream asks getDeleted for
//! the span it is about to read (`deletes.rs`): one API call per stream and sync. When the sync
//! starts, the engine works out which streams will ask, and for what window, exactly as each
//! stream will ([`deletes_span`]), and groups them by [`GET_DELETED_BATCH`] in catalog order. The
//! first stream of a group to need its answer asks for the whole group as the subrequests of one
//! `composite` call (one API call, whatever it carries); the others of the group take theirs
//! from it. A group is asked for only when one of its streams gets there, so at most the answers
//! of the groups being read are held, never the whole catalog's.
//!
//! Nothing depends on it being right: a stream whose window came out other than worked out, or
//! whose group's call failed as a whole, asks alone, as without this. A subrequest Salesforce refused is the stream's error, handled as the direct
//! call's would be. With fewer than two streams to ask for there is nothing to save, and no group
//! is formed.
//!
//! Memory: a group's answers wait for their streams, perhaps for the whole sync, and Salesforce
//! lists up to 600,000 ids an answer. The answers a group keeps for later stay under
//! [`HELD_IDS_MAX`] ids in all (groups are asked one after another, as their streams get there;
//! a group's answers not taken are freed with it at the sync's end); the largest are let go first, and their streams ask alone when they get there (one
//! API call each, as without this). The asking stream's own answer is used at once and always
//! kept. The composite answer itself is read up to sf-rest's `GET_DELETED_BATCH_MAX_BYTES`
//! (32 MiB); a larger one fails the group's call, and each of its streams asks alone.

use std::sync::{Arc, Mutex};

use sf_auth::lock;
use sf_rest::{DeletedQuery, DeletedRecords, RestReader, GET_DELETED_BATCH};
use tokio::sync::OnceCell;

use super::deletes::{deletes_span, pieces};
use super::{Job, ObjectRun, Runner, Shared};
use crate::window::{Window, WindowParams};
use crate::LogLevel;

type Answer = Result<DeletedRecords, sf_rest::Error>;

/// The most deleted ids a group keeps for streams that have not yet taken their answers (about
/// 4 MiB as `DeletedRecord`s).
pub(crate) const HELD_IDS_MAX: usize = 50_000;

/// A stream's group, its place in the group, and its window; `None` when it asks nothing.
type Place = Option<(usize, usize, Window)>;

/// The streams' getDeleted windows, in groups asked for together.
#[derive(Debug, Default)]
pub(crate) struct DeletesAhead {
    rest: Option<RestReader>,
    /// Per stream (by index): its group, its place in the group, and its window.
    slots: Vec<Place>,
    groups: Vec<Group>,
}

/// Up to [`GET_DELETED_BATCH`] streams' windows, asked for in one call by the first of them to
/// need its answer.
#[derive(Debug)]
struct Group {
    queries: Vec<DeletedQuery>,
    /// Once asked: each stream's answer until it takes it; `None` when the call failed.
    answers: OnceCell<Option<Vec<Mutex<Option<Answer>>>>>,
}

/// The getDeleted window each of `jobs` will ask for (by index), when it is one piece.
pub(crate) fn wanted(
    jobs: &[&Job],
    params: &WindowParams,
    hard_deletes: bool,
) -> Vec<Option<(String, Window)>> {
    jobs.iter()
        .map(|job| {
            let Job::Object(setup) = job else {
                return None;
            };
            if setup.parent.is_some() {
                return None;
            }
            let run = ObjectRun::new((**setup).clone());
            let spans = crate::window::uncovered_spans(run.state.as_ref()?, params);
            let span =
                deletes_span(&run, &spans, hard_deletes, params).filter(|span| span.asks())?;
            // A window of more than one piece is asked alone, piece by piece.
            match pieces(span.window).as_slice() {
                [one] => Some((setup.spec.name.clone(), *one)),
                _ => None,
            }
        })
        .collect()
}

impl DeletesAhead {
    /// Groups `wanted` (by stream index) for `rest` to ask, unless fewer than two streams want
    /// anything.
    pub(crate) fn new(rest: RestReader, wanted: Vec<Option<(String, Window)>>) -> DeletesAhead {
        if wanted.iter().flatten().count() < 2 {
            return DeletesAhead::default();
        }
        let (slots, groups) = grouped(wanted);
        DeletesAhead {
            rest: Some(rest),
            slots,
            groups,
        }
    }
}

/// Per stream, its group and place in it; the groups, [`GET_DELETED_BATCH`] windows each, in
/// the streams' order.
fn grouped(wanted: Vec<Option<(String, Window)>>) -> (Vec<Place>, Vec<Group>) {
    let mut groups: Vec<Group> = Vec::new();
    let mut slots = Vec::with_capacity(wanted.len());
    for want in wanted {
        let Some((object, window)) = want else {
            slots.push(None);
            continue;
        };
        if groups
            .last()
            .is_none_or(|g| g.queries.len() == GET_DELETED_BATCH)
        {
            groups.push(Group {
                queries: Vec::new(),
                answers: OnceCell::new(),
            });
        }
        // The last group has room (one was just added if not).
        let place = groups.last().map_or(0, |g| g.queries.len());
        slots.push(Some((groups.len() - 1, place, window)));
        if let Some(group) = groups.last_mut() {
            group.queries.push(DeletedQuery {
                object,
                start: window.start,
                end: window.end,
            });
        }
    }
    (slots, groups)
}

impl Shared {
    /// The same, with the streams' getDeleted windows grouped to be asked together.
    pub(crate) fn with_deletes_ahead(mut self, ahead: DeletesAhead) -> Shared {
        self.deletes_ahead = Arc::new(ahead);
        self
    }

    /// The RestReader the streams read with (for [`DeletesAhead::new`]).
    pub(crate) fn rest(&self) -> RestReader {
        self.rest.clone()
    }
}

impl Runner {
    /// This stream's getDeleted answer for `piece` when its group was formed for exactly that
    /// window: asked for the whole group if no stream of it has yet, taken once. `None` to ask
    /// alone (another window, the group's call failed, or the sync is being cancelled).
    pub(super) async fn deletes_asked_ahead(&self, piece: Window) -> Option<Answer> {
        let ahead = &self.shared.deletes_ahead;
        let (group, place, window) = (*ahead.slots.get(self.idx)?)?;
        if window != piece {
            return None;
        }
        let (rest, group) = (ahead.rest.as_ref()?, ahead.groups.get(group)?);
        let ask = group.answers.get_or_init(|| async {
            let answers = rest.deleted_batch(&group.queries).await.ok()?;
            let kept = within(answers, place, HELD_IDS_MAX);
            let dropped = kept.iter().filter(|a| a.is_none()).count();
            if dropped > 0 {
                self.log(
                    LogLevel::Info,
                    format!(
                        "{}: getDeleted asked for {} streams in one composite call; {dropped} \
                         answer(s) listing more than {HELD_IDS_MAX} ids in all are not kept \
                         for later: those streams ask alone when they get there",
                        self.name,
                        group.queries.len()
                    ),
                )
                .await;
            }
            Some(kept.into_iter().map(Mutex::new).collect())
        });
        let answers = tokio::select! {
            biased;
            _ = self.shared.cancel.cancelled() => return None,
            answers = ask => answers.as_ref()?,
        };
        lock(answers.get(place)?).take()
    }
}

/// `answers` with the largest let go (`None`) until those kept for later (all but `own`'s) list
/// at most `max` ids in all. A refused answer lists none.
fn within(answers: Vec<Answer>, own: usize, max: usize) -> Vec<Option<Answer>> {
    let size = |a: &Answer| a.as_ref().map_or(0, |d| d.records.len());
    let mut order: Vec<(usize, usize)> = answers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != own)
        .map(|(i, a)| (size(a), i))
        .collect();
    // Smallest first: as many streams as fit keep their answers.
    order.sort_unstable();
    let mut keep = vec![false; answers.len()];
    if let Some(k) = keep.get_mut(own) {
        *k = true;
    }
    let mut held = 0usize;
    for (n, i) in order {
        if held + n > max {
            break;
        }
        held += n;
        keep[i] = true;
    }
    answers
        .into_iter()
        .zip(keep)
        .map(|(a, k)| k.then_some(a))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn windows_go_in_groups_of_25_in_the_streams_order() {
        let t = |h| Utc.with_ymd_and_hms(2024, 6, 1, h, 0, 0).unwrap();
        let window = Window::new(t(1), t(2));
        // 60 streams; every third asks nothing (a full refresh, say).
        let wanted: Vec<Option<(String, Window)>> = (0..60)
            .map(|i| (i % 3 != 2).then(|| (format!("O{i}__c"), window)))
            .collect();
        let (slots, groups) = grouped(wanted);
        assert_eq!(slots.len(), 60);
        assert_eq!(
            groups.iter().map(|g| g.queries.len()).collect::<Vec<_>>(),
            [25, 15]
        );
        for (i, slot) in slots.iter().enumerate() {
            match slot {
                None => assert_eq!(i % 3, 2),
                Some((group, place, w)) => {
                    assert_eq!(*w, window);
                    assert_eq!(groups[*group].queries[*place].object, format!("O{i}__c"));
                }
            }
        }
        assert!(
            groups.iter().all(|g| g.answers.get().is_none()),
            "nothing asked yet"
        );
    }

    #[test]
    fn answers_kept_for_later_stay_under_the_cap_the_largest_let_go_first() {
        let t = Utc.with_ymd_and_hms(2024, 6, 1, 1, 0, 0).unwrap();
        let answer = |n: usize| -> Answer {
            Ok(DeletedRecords {
                records: (0..n)
                    .map(|i| sf_rest::DeletedRecord {
                        id: format!("001{i:015}"),
                        deleted_date: t,
                    })
                    .collect(),
                earliest_date_available: None,
                latest_date_covered: None,
            })
        };
        let refused: Answer = Err(sf_rest::Error::QueryDecode {
            stream: "X".to_string(),
            message: "refused".to_string(),
        });
        let sizes = |kept: &[Option<Answer>]| -> Vec<Option<usize>> {
            kept.iter()
                .map(|a| {
                    a.as_ref()
                        .map(|a| a.as_ref().map_or(0, |d| d.records.len()))
                })
                .collect()
        };
        // The asker's own answer (place 1) is kept however large; the others fill 10 ids
        // smallest first: 0 + 3 + 4 fit, 6 does not, nor 9.
        let kept = within(
            vec![
                answer(6),
                answer(50),
                answer(3),
                refused,
                answer(9),
                answer(4),
            ],
            1,
            10,
        );
        assert_eq!(
            sizes(&kept),
            [None, Some(50), Some(3), Some(0), None, Some(4)]
        );
        assert!(
            matches!(kept[3], Some(Err(_))),
            "a refusal is kept as it is"
        );
        // Under the cap, nothing is let go.
        let kept = within(vec![answer(2), answer(2)], 0, 10);
        assert_eq!(sizes(&kept), [Some(2), Some(2)]);
    }
}
