//! Reading a stream's spans through REST, and the one reading of `sf-rest`'s errors that every
//! REST read of a stream shares (its windows here, a parent's ids and their children in
//! [`super::substream`]).
//!
//! A Knowledge article version (`__kav`) is read unfiltered first: from API 47.0, with
//! Lightning Knowledge, that returns draft, published and archived versions [doc: Knowledge
//! Developer Guide, "Salesforce Knowledge with SOQL and SOSL"]. Where Salesforce refuses it
//! ("Implementation restriction ... must filter ... PublishStatus", an `ErrorKind::FilterRequired`;
//! the object reference documents that rule too), each span is read again once per status of
//! [`PUBLISH_STATUSES`], each query with `PublishStatus = '<status>'` as a top-level conjunct.
//! `Archived` is among them: Salesforce's own refusal names it as a filter it takes
//! ("PublishStatus = ['Online' or 'Archived' or 'Draft']", as users report the message), while
//! the Knowledge guide says archived versions are queried per article (`KnowledgeArticleId`,
//! `IsLatestVersion = false`) [doc, same page]. Which versions `Archived` alone returns is not
//! documented, so the WARN of the switch says that an article's older archived versions may not
//! be read; and where Salesforce refuses `Archived` alone, the stream reads on without it and a
//! second WARN says that archived versions are not read (a version read before it was archived
//! then keeps its last-read status downstream, and an overwriting full refresh leaves archived
//! versions out of the destination). Such a span checkpoints only at its end (its statuses are read one after the other, each in cursor
//! order), and the next sync tries the unfiltered query again.

use chrono::{DateTime, Utc};
use sf_discovery::ObjectKind;
use sf_rest::{ReadRequest, ResumeKey};

use super::{describe_span, ObjectRun, ParentFilter, Runner, Span, SpanError, SpanQueue, Stop};
use crate::error::{Error, Failure};
use crate::planner::Api;
use crate::sink::LogLevel;

/// The `PublishStatus` values a Knowledge article version is read by when Salesforce refuses
/// an unfiltered query: the picklist's values. [`ARCHIVED`] is left out for the rest of the
/// read once Salesforce refuses it alone.
pub(super) const PUBLISH_STATUSES: [&str; 3] = ["Online", "Draft", ARCHIVED];

/// The `PublishStatus` of archived versions, which Salesforce may serve only per article.
pub(super) const ARCHIVED: &str = "Archived";

/// Which REST read of a stream failed: it decides how the failure is named.
#[derive(Debug, Clone, Copy)]
pub(super) enum RestRead<'a> {
    /// A window of the stream, or the whole object.
    Span(&'a Span),
    /// The ids of a parent-filtered stream's parent.
    Parents(ParentFilter),
    /// The children of a batch of the parent's ids.
    Children(ParentFilter, &'a [String]),
}

/// What a failed REST read means for the stream.
pub(super) enum RestFailure {
    /// The query lost its cursor (`INVALID_QUERY_LOCATOR`): it may be run again.
    LostCursor,
    /// The query timed out (`QUERY_TIMEOUT`): what it covers may be read again in halves.
    TimedOut,
    /// Stop the stream.
    Stop(Stop),
}

impl Runner {
    /// What a failed REST read of this stream means. A lost cursor and a timeout are left to the
    /// caller (a parent's ids are not read in halves: a timeout there fails the stream, as any
    /// other failure the caller does not work around, through [`Runner::rest_error`]).
    pub(super) fn rest_failed(&self, read: RestRead<'_>, e: &sf_rest::Error) -> RestFailure {
        use sf_rest::ErrorKind as K;
        let stop = |error: Error| RestFailure::Stop(Stop::Failed(error));
        let fields_missing = |field: String| {
            stop(Error::StreamFieldsMissing {
                stream: self.name.to_string(),
                fields: vec![field],
            })
        };
        match (e.kind(), read) {
            (K::DailyLimitExceeded, _) => RestFailure::Stop(Stop::Limit(self.shared.hit_limit(e))),
            (K::InvalidQueryLocator, _) => RestFailure::LostCursor,
            (K::QueryTimeout, RestRead::Span(_) | RestRead::Children(..)) => RestFailure::TimedOut,
            (K::InvalidField, RestRead::Span(_) | RestRead::Children(..)) => match (e, read) {
                (sf_rest::Error::InvalidField { field, .. }, _) => fields_missing(field.clone()),
                (_, RestRead::Span(_)) => fields_missing("?".to_string()),
                _ => stop(self.rest_error(read, e)),
            },
            (K::NotFound | K::ObjectNotQueryable, RestRead::Span(_)) => {
                stop(Error::StreamUnknown {
                    stream: self.name.to_string(),
                    reason: e.to_string(),
                })
            }
            _ => stop(self.rest_error(read, e)),
        }
    }

    /// A REST read's failure as the stream's error, labelled, with what to do about it.
    pub(super) fn rest_error(&self, read: RestRead<'_>, e: &sf_rest::Error) -> Error {
        self.kind_error(e.kind(), e.to_string(), |message, failure| {
            self.rest_read_error(read, e.error_code().map(str::to_string), message, failure)
        })
    }

    /// A failed REST read of this stream, its message saying which read it was.
    pub(super) fn rest_read_error(
        &self,
        read: RestRead<'_>,
        error_code: Option<String>,
        message: String,
        failure: Failure,
    ) -> Error {
        let (window, message) = match read {
            RestRead::Span(span) => (describe_span(span), message),
            RestRead::Parents(filter) => (
                None,
                format!("reading the ids of its parent {}: {message}", filter.parent),
            ),
            RestRead::Children(filter, ids) => {
                let range = match (ids.first(), ids.last()) {
                    (Some(first), Some(last)) => format!(" {first} to {last}"),
                    _ => String::new(),
                };
                (
                    None,
                    format!(
                        "querying the children of {} {} ids{range}: {message}",
                        ids.len(),
                        filter.parent
                    ),
                )
            }
        };
        self.read_error(Api::Rest, window, error_code, message, failure)
    }

    /// Reads spans through REST, each timed-out span again in halves.
    pub(super) async fn rest_spans(
        &mut self,
        run: &mut ObjectRun,
        queue: &mut SpanQueue,
    ) -> Result<(), Stop> {
        while let Some(span) = queue.next() {
            self.may_continue()?;
            run.short = false;
            let before = run.state.as_ref().map(|s| s.slices().to_vec());
            match self.rest_span_all(run, &span).await {
                Ok(_) if run.short => {
                    self.rest_ordered_end(run);
                    self.span_held_back(run, before).await?
                }
                Ok(most_recent) => {
                    self.rest_ordered_end(run);
                    self.span_done(run, &span, most_recent).await?
                }
                Err(SpanError::Split(message)) => {
                    self.rest_ordered_end(run);
                    let (a, b) = self.split(Api::Rest, &span, &message).await?;
                    queue.push_front(Some(b));
                    queue.push_front(Some(a));
                }
                Err(SpanError::Fallback(fallback)) => {
                    return Err(Stop::Failed(self.rest_read_error(
                        RestRead::Span(&span),
                        None,
                        fallback.reason,
                        Failure::System,
                    )))
                }
                Err(SpanError::ByStatus(message)) => {
                    self.rest_ordered_end(run);
                    run.by_status = true;
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{}: Salesforce refused a query without a PublishStatus filter \
                             ({message}); reading its versions by PublishStatus ({}) instead. \
                             Salesforce documents an article's archived versions as queried per \
                             article (KnowledgeArticleId, IsLatestVersion = false): its older \
                             archived versions may not be read this way. An org with Lightning \
                             Knowledge serves every version unfiltered (API 47.0 and later)",
                            self.name,
                            PUBLISH_STATUSES.join(", ")
                        ),
                    )
                    .await;
                    queue.push_front(span);
                }
                Err(SpanError::Stop(stop)) => return Err(stop),
            }
        }
        Ok(())
    }

    /// Reads one span: once, or once per status of [`PUBLISH_STATUSES`] once Salesforce refused
    /// the stream's unfiltered query. Returns the largest cursor value seen.
    async fn rest_span_all(
        &mut self,
        run: &mut ObjectRun,
        span: &Span,
    ) -> Result<Option<DateTime<Utc>>, SpanError> {
        if !run.by_status {
            return self.rest_span(run, span, None).await;
        }
        let mut most_recent = None;
        for status in PUBLISH_STATUSES {
            if status == ARCHIVED && run.archived_refused {
                continue;
            }
            let read = match self.rest_span(run, span, Some(status)).await {
                Err(SpanError::ByStatus(message)) if status == ARCHIVED => {
                    self.archived_refused(run, &message).await;
                    continue;
                }
                read => read?,
            };
            most_recent = most_recent.max(read);
        }
        Ok(most_recent)
    }

    /// Salesforce refused `PublishStatus = 'Archived'` alone: the rest of the read goes without
    /// it, and a WARN says what that leaves downstream.
    async fn archived_refused(&self, run: &mut ObjectRun, message: &str) {
        run.archived_refused = true;
        self.log(
            LogLevel::Warn,
            format!(
                "{}: Salesforce refused PublishStatus = 'Archived' alone ({message}): archived \
                 versions are not read (Salesforce serves them only per article). A version read \
                 before it was archived keeps its last-read status downstream, and a full refresh \
                 with overwrite leaves every archived version out of the destination",
                self.name
            ),
        )
        .await;
    }

    /// Says in the LOG what a finished REST read met: a query whose pages carried a different
    /// number of rows than its `totalSize` (Salesforce's count of the query's rows), so a short
    /// read is never silent; and records of a read split into field chunks that changed between
    /// the chunk queries and were deleted before they could be read again (not emitted: they no
    /// longer exist). `what` names the read (`window [..)`, or the ids of a parent).
    ///
    /// Returns true when a query carried fewer rows than counted. `held_back` says the caller
    /// then leaves the read's window out of the state, so the next sync reads it again.
    pub(super) async fn rest_notes(
        &self,
        what: &str,
        stats: &sf_rest::ReadStats,
        held_back: bool,
    ) -> bool {
        if stats.vanished > 0 {
            self.log(
                LogLevel::Info,
                format!(
                    "{}: {what}: {} record(s) changed between the queries of the object's field \
                     chunks and were deleted before they could be read again; they are not \
                     emitted (Ids: {}{})",
                    self.name,
                    stats.vanished,
                    stats
                        .vanished_ids
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    if stats.vanished > 5 { ", ..." } else { "" }
                ),
            )
            .await;
        }
        if stats.pages_read_again > 0 {
            self.log(
                LogLevel::Warn,
                format!(
                    "{}: {what}: {} page(s) arrived unreadable and were asked for again ({}); \
                     the answers read again were whole",
                    self.name,
                    stats.pages_read_again,
                    stats.read_again_because.as_deref().unwrap_or("?"),
                ),
            )
            .await;
        }
        let mut short = false;
        for miscount in &stats.miscounted {
            let missing = miscount.received < miscount.counted;
            short |= missing;
            let what_now = match (missing, held_back) {
                (true, true) => {
                    "rows may be missing downstream, so the window is left out of the state: \
                     the next sync reads it again. If this repeats for the same window, a full \
                     refresh with overwrite reads the object again"
                }
                (true, false) => {
                    "rows may be missing downstream. If this repeats, a full refresh with \
                     overwrite reads the object again"
                }
                (false, _) => "the extra rows were written",
            };
            self.log(
                LogLevel::Warn,
                format!(
                    "{}: {what}: Salesforce counted {} rows for the query (totalSize) and its \
                     pages carried {}; {what_now}",
                    self.name, miscount.counted, miscount.received,
                ),
            )
            .await;
        }
        short
    }

    /// Reads one span through REST (only its rows of `PublishStatus = status`, when given);
    /// returns the largest cursor value seen.
    ///
    /// A read in cursor order (one query, not split into field chunks, whose rows come by
    /// `(cursor, Id)`) checkpoints every page's worth of records: the state then covers the
    /// window up to the last cursor value emitted. A read split into chunks merges them in `Id`
    /// order, so only the window's end is a point where every chunk has delivered its rows; so
    /// does a read by status, whose statuses come one after the other.
    async fn rest_span(
        &mut self,
        run: &mut ObjectRun,
        span: &Span,
        status: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, SpanError> {
        let where_eq: Vec<(String, String)> = status
            .map(|s| vec![("PublishStatus".to_string(), s.to_string())])
            .unwrap_or_default();
        // Rows read now: any of them cancels a tombstone (see `Tombstones::seen`).
        self.tombstones.snapshot = false;
        let mut most_recent: Option<DateTime<Utc>> = None;
        let mut after: Option<ResumeKey> = None;
        let mut resumes = 0u32;
        let probe = ReadRequest {
            fields: run.setup.columns.clone(),
            window: run.rest_window(span),
            include_deleted: run.include_deleted(),
            ..ReadRequest::default()
        };
        let in_cursor_order = cursor_ordered(self, run, &probe);
        if in_cursor_order && status.is_none() {
            self.rest_ordered_start(run, span);
        }
        let mut emitted = false;
        // A page short of its row offsets, in any query of the window (one resumed after a lost
        // cursor starts its count afresh): no page checkpoint from then on, and the window is
        // left out of the state, so a stop or a resume never moves the state past a missing row.
        let mut short_page = false;
        let page = self.shared.options.rest_batch_size.map_or(2_000, u64::from);
        'query: loop {
            let request = ReadRequest {
                fields: run.setup.columns.clone(),
                window: run.rest_window(span),
                include_deleted: run.include_deleted(),
                order: None,
                after: after.clone(),
                limit: None,
                where_in: None,
                where_eq: where_eq.clone(),
            };
            // A query resumed after a lost cursor carries a longer condition, which may split
            // its fields into chunks merged in `Id` order: then no page checkpoint is taken
            // until the window ends (they count on cursor order).
            if after.is_some() && in_cursor_order && !cursor_ordered(self, run, &request) {
                self.rest_ordered_end(run);
            }
            let mut records = self
                .shared
                .rest
                .read(&run.setup.spec, request)
                .map_err(|e| Stop::Failed(self.rest_error(RestRead::Span(span), &e)))?;
            loop {
                let item = self.next_from(&mut records).await?;
                let error = match item {
                    None => {
                        let what = format!(
                            "window {}",
                            describe_span(span).unwrap_or_else(|| "(whole object)".into())
                        );
                        // A window short of Salesforce's count is read again by the next
                        // sync (`rest_spans`); a whole-object read has no state to hold back.
                        let held = span.is_some() && run.state.is_some();
                        if self.rest_notes(&what, &records.stats(), held).await && held {
                            run.short = true;
                        }
                        if short_page && held && !run.short {
                            run.short = true;
                            self.log(
                                LogLevel::Warn,
                                format!(
                                    "{}: {what}: a page carried fewer rows than its place in the \
                                     query says (the offsets of its nextRecordsUrl); rows may be \
                                     missing downstream, so the window is left out of the \
                                     state: the next sync reads it again",
                                    self.name
                                ),
                            )
                            .await;
                        }
                        return Ok(most_recent);
                    }
                    Some(Ok(record)) => {
                        // A record read since the last lost cursor: the resumes count from zero.
                        resumes = 0;
                        if !short_page && records.short_pages() > 0 {
                            short_page = true;
                            self.rest_ordered_end(run);
                        }
                        let cursor = run.cursor_value(&record);
                        most_recent = most_recent.max(cursor);
                        emitted = true;
                        self.record(record).await?;
                        self.rest_ordered_record(run, cursor, page).await?;
                        continue;
                    }
                    Some(Err(e)) => e,
                };
                if (status.is_none() || status == Some(ARCHIVED))
                    && !emitted
                    && error.kind() == sf_rest::ErrorKind::FilterRequired
                    && ObjectKind::of(&run.setup.spec.name) == ObjectKind::KnowledgeArticleVersion
                {
                    return Err(SpanError::ByStatus(error.to_string()));
                }
                match self.rest_failed(RestRead::Span(span), &error) {
                    RestFailure::LostCursor if self.may_retry(&mut resumes) => {
                        if let Some(key) = error.resume_after() {
                            after = Some(key.clone());
                        }
                        self.log(
                            LogLevel::Warn,
                            format!(
                                "{}: {error}; resuming window {} {}",
                                self.name,
                                describe_span(span).unwrap_or_else(|| "(whole object)".into()),
                                match &after {
                                    Some(key) => format!("after Id {}", key.id),
                                    None => "from its start".to_string(),
                                }
                            ),
                        )
                        .await;
                        continue 'query;
                    }
                    RestFailure::LostCursor => {
                        return Err(
                            Stop::Failed(self.rest_error(RestRead::Span(span), &error)).into()
                        )
                    }
                    RestFailure::TimedOut => return Err(SpanError::Split(error.to_string())),
                    RestFailure::Stop(stop) => return Err(stop.into()),
                }
            }
        }
    }
}

/// Whether `request` is read in cursor order (one query, not field chunks merged by `Id`).
fn cursor_ordered(runner: &Runner, run: &ObjectRun, request: &ReadRequest) -> bool {
    matches!(
        runner
            .shared
            .rest
            .plan(&run.setup.spec, request)
            .map(|p| p.order),
        Ok(sf_rest::Order::CursorThenId(_))
    )
}
