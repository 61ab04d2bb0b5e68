//! Reading a stream's spans through Bulk API 2.0: jobs of later spans created while one
//! downloads, a cut download resumed from its last page, failures sorted into splitting the
//! span, switching to REST or stopping, and the stream's jobs aborted when it stops early.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sf_auth::lock;
use sf_bulk::{BulkItem, BulkStream, Operation, ResumePoint};
use sf_rest::Soql;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::bulk_resume::{checkpoint, continue_job, query_of, slot_checkpoint, Continued, JobSlot};
use super::{describe_span, Fallback, ObjectRun, Runner, Span, SpanError, SpanQueue, Stop};
use crate::error::{Error, Failure};
use crate::planner::Api;
use crate::sink::LogLevel;
use crate::state::JobCheckpoint;

/// A task creating a Bulk job (or continuing one the state names) and waiting for it; `None`
/// when it was stopped.
struct Preparing {
    task: JoinHandle<Option<Result<Prepared, sf_bulk::Error>>>,
    /// The job's resume point once its id is known.
    slot: JobSlot,
    /// What identifies the job's query (for the state).
    query: String,
}

/// A Bulk job created and complete, its results not read yet.
struct Prepared {
    stream: BulkStream,
    job_id: Option<String>,
    /// An item that arrived before `JobCompleted` was seen (not expected).
    first: Option<BulkItem>,
    /// Where its results are read from: the first page, or the page after the last one a
    /// stopped sync emitted.
    from: Option<ResumePoint>,
    /// Why a job the state named was not continued, for the log.
    note: Option<String>,
    /// A job the state named, continued.
    continued: bool,
    /// Rows at the start of `from`'s page a stopped sync already emitted: skipped.
    skip: u64,
    /// The `Id` of the last of them, when the state said it: checked when skipped.
    skip_last_id: Option<String>,
}
impl Runner {
    fn bulk_soql(&self, run: &ObjectRun, span: &Span) -> Result<String, Stop> {
        Soql::select(run.setup.spec.name.clone(), run.bulk_columns.iter())
            .maybe_window(run.rest_window(span))
            .build()
            .map_err(|e| {
                Stop::Failed(self.read_error(
                    Api::Bulk,
                    describe_span(span),
                    None,
                    e.to_string(),
                    Failure::System,
                ))
            })
    }

    /// Starts a job for `span` on its own task, which returns once the job is complete, or
    /// `None` once `stop` is cancelled (a job being created is created first, so its id is
    /// known and it can be aborted).
    fn spawn_prepare(
        &self,
        run: &mut ObjectRun,
        span: &Span,
        stop: &CancellationToken,
        created: &Arc<Notify>,
    ) -> Result<Preparing, Stop> {
        let soql = self.bulk_soql(run, span)?;
        let bulk = self.shared.bulk.clone();
        let fields = run.bulk_fields.clone();
        let jobs = self.jobs.clone();
        let stop = stop.clone();
        let created = created.clone();
        let gate = self.job_gate.clone();
        let gated = self.shared.options.checkpoint_jobs_after.is_zero() && run.state.is_some();
        let operation = if run.include_deleted() {
            Operation::QueryAll
        } else {
            Operation::Query
        };
        let query = query_of(operation, &soql, self.shared.session.api_version());
        let saved = run.progress.take_resumable(span);
        let object = run.setup.spec.name.clone();
        let slot: JobSlot = Arc::new(Mutex::new(None));
        let task_slot = slot.clone();
        let task_query = query.clone();
        // The job's requests count under the stream's tag, on the task that sends them.
        let tag = sf_auth::RequestTag::current();
        let task = tokio::spawn(sf_auth::RequestTag::scope_opt(tag, async move {
            if stop.is_cancelled() {
                return None;
            }
            let mut note = None;
            if let Some(saved) = saved {
                lock(&jobs).insert(saved.job_id.clone());
                let from = ResumePoint {
                    job_id: saved.job_id.clone(),
                    locator: saved.locator.clone(),
                    rows_done: saved.rows_done,
                };
                // Rows of the page at the locator a stopped sync emitted: kept in every state
                // naming the job until its stream reads on.
                *lock(&task_slot) = Some((
                    from.clone(),
                    saved.page_rows_emitted,
                    saved.page_last_id.clone(),
                ));
                let continued = continue_job(
                    &bulk,
                    &saved,
                    &object,
                    operation,
                    &task_query,
                    &fields,
                    &stop,
                )
                .await;
                match continued {
                    Continued::Yes(stream) => {
                        return Some(Ok(Prepared {
                            stream,
                            job_id: Some(saved.job_id),
                            first: None,
                            from: Some(from),
                            note: None,
                            continued: true,
                            skip: saved.page_rows_emitted,
                            skip_last_id: saved.page_last_id,
                        }))
                    }
                    Continued::Stop(error) => return error.map(Err),
                    Continued::No(why) => {
                        lock(&jobs).remove(&saved.job_id);
                        *lock(&task_slot) = None;
                        // The state named it, so it is this connector's: not left on the org.
                        let gone = super::bulk_cleanup::abort_and_delete(&bulk, &saved.job_id)
                            .await
                            .map(|(_, line)| format!(" ({line})"))
                            .unwrap_or_default();
                        note = Some(format!("{why}{gone}"));
                    }
                }
            }
            let mut admitted = match gated {
                true => Some(gate.admit(&stop).await?),
                false => None,
            };
            let mut stream = bulk.query(operation, soql, &fields);
            let mut job_id: Option<String> = None;
            loop {
                let item = tokio::select! {
                    biased;
                    _ = stop.cancelled(), if job_id.is_some() => {
                        if let Some(id) = &job_id {
                            gate.forget(id);
                        }
                        return None;
                    }
                    item = stream.next() => item,
                };
                let first = match item {
                    Some(Ok(BulkItem::JobCreated { job_id: id })) => {
                        lock(&jobs).insert(id.clone());
                        *lock(&task_slot) = Some((ResumePoint::start(id.clone()), 0, None));
                        gate.created(&id);
                        admitted.take();
                        created.notify_one();
                        job_id = Some(id);
                        continue;
                    }
                    Some(Ok(BulkItem::JobCompleted(_))) | None => None,
                    Some(Ok(other)) => Some(other),
                    Some(Err(e)) => {
                        let ended = matches!(
                            e,
                            sf_bulk::Error::JobFailed { .. } | sf_bulk::Error::JobAborted { .. }
                        ) || e.kind() == sf_bulk::ErrorKind::BulkNotSupported;
                        if let (Some(id), true) = (&job_id, ended) {
                            lock(&jobs).remove(id);
                        }
                        if let Some(id) = &job_id {
                            gate.forget(id);
                        }
                        return Some(Err(e));
                    }
                };
                return Some(Ok(Prepared {
                    from: job_id.as_ref().map(ResumePoint::start),
                    stream,
                    job_id,
                    first,
                    note,
                    continued: false,
                    skip: 0,
                    skip_last_id: None,
                }));
            }
        }));
        Ok(Preparing { task, slot, query })
    }

    /// Reads spans through Bulk, with jobs of later spans in flight while one downloads. Returns
    /// `Some(why)` when the stream must switch to REST (the unread spans are back in `queue`).
    pub(super) async fn bulk_spans(
        &mut self,
        run: &mut ObjectRun,
        queue: &mut SpanQueue,
    ) -> Result<Option<Fallback>, Stop> {
        let stop = self.shared.cancel.child_token();
        let created = Arc::new(Notify::new());
        let mut inflight: VecDeque<(Span, Preparing)> = VecDeque::new();
        let result = self
            .bulk_loop(run, queue, &mut inflight, &stop, &created)
            .await;
        // Whatever ended the loop, nothing started ahead is needed any more: the tasks stop once
        // the jobs they create have ids, and every job still running is aborted and deleted;
        // except at the daily limit (or the budget), where the jobs stay on the org and the
        // stream's last state names them, with the page each continues at, for the next sync to
        // continue; and on cancellation, where a job whose results were emitted in part (by
        // this sync or the one before) stays, named by the last state, and the others go.
        stop.cancel();
        let mut ahead: Vec<JobCheckpoint> = Vec::new();
        for (span, preparing) in inflight {
            let _ = preparing.task.await;
            if let Some(window) = span {
                ahead.extend(slot_checkpoint(window, &preparing.slot, &preparing.query));
            }
        }
        let current = run.progress.current.take();
        // A page or more of the job is downstream, emitted by this sync or (a job continued
        // from the input state, still being looked up) by the one before.
        let emitted_in_part = |c: &JobCheckpoint| c.locator.is_some();
        let kept: Vec<JobCheckpoint> = match &result {
            Err(Stop::Limit(_)) => current.into_iter().chain(ahead).collect(),
            Err(Stop::Cancelled) if self.shared.cancel.is_cancelled() => {
                let (kept, dropped): (Vec<_>, Vec<_>) =
                    current.into_iter().chain(ahead).partition(emitted_in_part);
                // Rows of a first page cut short are downstream though no state names their
                // job: the next sync asks getDeleted for what became of them.
                for job in dropped.iter().filter(|j| j.page_rows_emitted > 0) {
                    self.tombstones.read_before(job.end);
                }
                kept
            }
            _ => Vec::new(),
        };
        if let Some(state) = run.state.as_mut() {
            let mut jobs = lock(&self.jobs);
            if matches!(result, Err(Stop::Limit(_))) {
                // Nothing is aborted at the limit (it would be refused, or spend what is left).
                jobs.clear();
            }
            for job in &kept {
                jobs.remove(&job.job_id);
            }
            drop(jobs);
            state.set_jobs(kept);
        }
        if !matches!(result, Ok(None)) {
            self.abort_jobs().await;
        }
        self.job_gate.clear();
        result
    }

    async fn bulk_loop(
        &mut self,
        run: &mut ObjectRun,
        queue: &mut SpanQueue,
        inflight: &mut VecDeque<(Span, Preparing)>,
        stop: &CancellationToken,
        created: &Arc<Notify>,
    ) -> Result<Option<Fallback>, Stop> {
        let ahead = self.shared.options.bulk_jobs_in_flight.max(1);
        loop {
            self.may_continue()?;
            while inflight.len() < ahead {
                let Some(span) = queue.next() else { break };
                let handle = self.spawn_prepare(run, &span, stop, created)?;
                inflight.push_back((span, handle));
            }
            let Some((span, mut handle)) = inflight.pop_front() else {
                return Ok(None);
            };
            // A job that takes a while: the jobs in flight go into a state, so a sync stopped
            // now continues them; again whenever another job is created while waiting.
            let wait_checkpoint = tokio::time::sleep(self.shared.options.checkpoint_jobs_after);
            tokio::pin!(wait_checkpoint);
            let mut waited = false;
            let prepared = loop {
                tokio::select! {
                    biased;
                    _ = self.shared.cancel.cancelled() => {
                        inflight.push_front((span, handle));
                        return Err(Stop::Cancelled);
                    }
                    joined = &mut handle.task => break joined,
                    _ = &mut wait_checkpoint, if !waited => waited = true,
                    _ = created.notified(), if waited => {}
                }
                let jobs = in_flight(&span, &handle, inflight);
                self.jobs_checkpoint(run, jobs).await?;
            };
            let outcome = match prepared {
                Ok(Some(Ok(mut prepared))) => {
                    if let (Some(note), Some(window)) = (prepared.note.take(), span) {
                        self.log(
                            LogLevel::Warn,
                            format!(
                                "{}: {note}; creating a new job for window {window}",
                                self.name
                            ),
                        )
                        .await;
                    } else if let (Some(from), true) = (&prepared.from, prepared.continued) {
                        self.log(
                            LogLevel::Info,
                            format!(
                                "{}: continuing Bulk job {} of window {} {}",
                                self.name,
                                from.job_id,
                                describe_span(&span).unwrap_or_default(),
                                match &from.locator {
                                    Some(l) => {
                                        format!("at locator {l} (after {} rows)", from.rows_done)
                                    }
                                    None => "from its first page".to_string(),
                                },
                            ) + &match prepared.skip {
                                0 => String::new(),
                                n => {
                                    format!(", skipping the {n} rows of that page already emitted")
                                }
                            },
                        )
                        .await;
                    }
                    let ahead: Vec<(Span, JobSlot, String)> = inflight
                        .iter()
                        .map(|(s, p)| (*s, p.slot.clone(), p.query.clone()))
                        .collect();
                    let id = prepared.job_id.clone();
                    let downloaded = self
                        .bulk_download(run, &span, &handle.query, prepared, &ahead)
                        .await;
                    // Read, or given up (kept by a state, aborted, or split): no more naming.
                    if let Some(id) = id {
                        self.job_gate.forget(&id);
                    }
                    downloaded
                }
                Ok(Some(Err(e))) => Err(self.bulk_span_error(&span, e)),
                Ok(None) => Err(SpanError::Stop(Stop::Cancelled)),
                Err(join) => Err(SpanError::Stop(Stop::Failed(self.read_error(
                    Api::Bulk,
                    describe_span(&span),
                    None,
                    format!("the Bulk job's task ended abnormally: {join}"),
                    Failure::System,
                )))),
            };
            match (&outcome, span) {
                // At the limit the job stays on the org: the last state names it.
                (Err(SpanError::Stop(Stop::Limit(_))), Some(window)) => {
                    if run.progress.current.is_none() {
                        run.progress.current = slot_checkpoint(window, &handle.slot, &handle.query);
                    }
                }
                // Cancelled mid-download: the job stays if a page of it was emitted.
                (Err(SpanError::Stop(Stop::Cancelled)), Some(_))
                    if self.shared.cancel.is_cancelled() => {}
                _ => run.progress.current = None,
            }
            match outcome {
                Ok((most_recent, rest)) => {
                    // The state after the window names the jobs started ahead.
                    let jobs = inflight
                        .iter()
                        .filter_map(|(s, p)| slot_checkpoint((*s)?, &p.slot, &p.query))
                        .collect();
                    if let Some(state) = run.state.as_mut() {
                        state.set_jobs(jobs);
                    }
                    let done = self.span_done(run, &span, most_recent).await;
                    // Only now, the window's state emitted, is the job deleted: a sync killed
                    // in between finds the job its last state names. Naming every job at once,
                    // the stream waits for the sink to have taken that state.
                    if self.shared.options.checkpoint_jobs_after.is_zero() && done.is_ok() {
                        let sent = self.states_sent.load(std::sync::atomic::Ordering::Relaxed);
                        self.job_gate.taken(sent, &self.shared.cancel).await;
                    }
                    // Stopped meanwhile: the job is left to `abort_jobs` with the others.
                    if let (Some((id, mut rest)), false) = (rest, self.shared.cancel.is_cancelled())
                    {
                        while rest.next().await.is_some() {}
                        lock(&self.jobs).remove(&id);
                    }
                    done?
                }
                Err(SpanError::Split(message)) => {
                    let (a, b) = self.split(Api::Bulk, &span, &message).await?;
                    let second = self.spawn_prepare(run, &Some(b), stop, created)?;
                    inflight.push_front((Some(b), second));
                    let first = self.spawn_prepare(run, &Some(a), stop, created)?;
                    inflight.push_front((Some(a), first));
                }
                Err(SpanError::Fallback(fallback)) => {
                    // This span and those started ahead go back, in order, ahead of the queue;
                    // the jobs started ahead are stopped and aborted by the caller.
                    let ahead: Vec<Span> = inflight.iter().map(|(s, _)| *s).collect();
                    for s in ahead.into_iter().rev() {
                        queue.push_front(s);
                    }
                    queue.push_front(span);
                    return Ok(Some(fallback));
                }
                Err(SpanError::Stop(stop)) => return Err(stop),
                // Only a REST read asks for it; a Bulk read never does.
                Err(SpanError::ByStatus(message)) => {
                    let window = describe_span(&span);
                    return Err(Stop::Failed(self.read_error(
                        Api::Bulk,
                        window,
                        None,
                        message,
                        Failure::System,
                    )));
                }
            }
        }
    }

    /// Classifies a Bulk failure of one span.
    fn bulk_span_error(&self, span: &Span, e: sf_bulk::Error) -> SpanError {
        use sf_bulk::ErrorKind as K;
        match e.kind() {
            K::DailyLimitExceeded => SpanError::Stop(Stop::Limit(self.shared.hit_limit(&e))),
            K::BulkNotSupported | K::JobFailed => Fallback::unsupported(e.to_string()),
            // Other streams need not try: REST requests are a separate allowance.
            K::BulkJobLimit => SpanError::Fallback(Fallback {
                reason: e.to_string(),
                job_limit: true,
            }),
            // A job Salesforce gave up on for its size, or one that ran too long: a narrower
            // window may pass.
            K::QueryTimeout | K::JobTimedOut if span.is_some() => SpanError::Split(e.to_string()),
            K::QueryTimeout => Fallback::unsupported(e.to_string()),
            K::InvalidField => SpanError::Stop(Stop::Failed(Error::StreamFieldsMissing {
                stream: self.name.to_string(),
                fields: vec![e
                    .api_error()
                    .and_then(sf_auth::ApiError::field_name)
                    .unwrap_or_else(|| "?".to_string())],
            })),
            kind => SpanError::Stop(Stop::Failed(self.kind_error(
                kind,
                e.to_string(),
                |message, failure| {
                    self.read_error(
                        Api::Bulk,
                        describe_span(span),
                        e.error_code().map(str::to_string),
                        message,
                        failure,
                    )
                },
            ))),
        }
    }

    /// Reads a complete job's results, resuming from the last page read when the download is cut.
    ///
    /// After each page but the last, the state names this job at the next page (and the jobs
    /// started `ahead`), so a sync stopped mid-download continues at that page.
    async fn bulk_download(
        &mut self,
        run: &mut ObjectRun,
        span: &Span,
        query: &str,
        prepared: Prepared,
        ahead: &[(Span, JobSlot, String)],
    ) -> Result<(Option<DateTime<Utc>>, Option<(String, BulkStream)>), SpanError> {
        let Prepared {
            mut stream,
            job_id,
            mut first,
            from,
            skip,
            mut skip_last_id,
            continued,
            ..
        } = prepared;
        // A job continued from the input state holds rows as they were when it ran, before the
        // deletes this sync listed: its rows cancel a tombstone only when they show the delete.
        self.tombstones.snapshot = continued;
        let mut most_recent: Option<DateTime<Utc>> = None;
        let mut resume: Option<ResumePoint> =
            from.or_else(|| job_id.as_ref().map(ResumePoint::start));
        // Where the rows being skipped start, and how many: read again from there whole if the
        // last one skipped is not the last one emitted (`skip_last_id`).
        let mut skip_from = resume.clone();
        let mut skipping = skip;
        // Rows to drop before emitting (emitted by an earlier sync or read attempt), and rows of
        // the page at `resume` emitted: what a state written now counts as done inside the page.
        let mut skip = skip;
        let mut in_page = skip;
        if let (Some(window), Some(point)) = (span, &resume) {
            let mut current = checkpoint(*window, point, query);
            current.page_rows_emitted = in_page;
            current.page_last_id = skip_last_id.clone();
            run.progress.current = Some(current);
        }
        // Every job at once in a state (`checkpoint_jobs_after` zero): the job, and those
        // started ahead, before its first record.
        let at_once = self.shared.options.checkpoint_jobs_after.is_zero();
        if at_once {
            self.download_checkpoint(run, span, ahead).await?;
        }
        let mut resumes = 0u32;
        loop {
            let item = match first.take() {
                Some(item) => Some(Ok(item)),
                None => self.next_from(&mut stream).await?,
            };
            match item {
                None => {
                    self.skipped_past_the_end(skip).await;
                    if let Some(id) = &job_id {
                        lock(&self.jobs).remove(id);
                    }
                    return Ok((most_recent, None));
                }
                // The last page, the job's total checked: every row is out. The rest of the
                // stream (deleting the job) is left to the caller, after the window's state.
                Some(Ok(BulkItem::PageDone(progress))) if progress.next_locator.is_none() => {
                    self.skipped_past_the_end(skip).await;
                    return Ok((most_recent, Some((progress.job_id, stream))));
                }
                Some(Ok(BulkItem::Record(record))) if skip > 0 => {
                    skip -= 1;
                    let expected = if skip == 0 { skip_last_id.take() } else { None };
                    // The last row skipped is not the last one the stopped sync emitted: those
                    // were not the page's first rows (a row was missing from it then).
                    if expected.is_some_and(|id| record.id().is_some_and(|got| got != id)) {
                        if let Some(point) = skip_from.clone() {
                            self.page_again(&point, skipping).await;
                            // The state counts from that page's start again (the page the
                            // skip ran into, if any, comes after it).
                            if let Some(window) = span {
                                run.progress.current = Some(checkpoint(*window, &point, query));
                            }
                            self.download_checkpoint(run, span, ahead).await?;
                            in_page = 0;
                            resume = Some(point.clone());
                            stream = self.shared.bulk.resume(point, &run.bulk_fields);
                        }
                    }
                }
                Some(Ok(BulkItem::Record(record))) => {
                    in_page += 1;
                    if let Some(current) = run.progress.current.as_mut() {
                        current.emitted(in_page, record.id());
                    }
                    let record = run.shape_bulk(record);
                    most_recent = most_recent.max(run.cursor_value(&record));
                    self.record(record).await?;
                    if at_once && self.job_gate.unnamed() {
                        self.download_checkpoint(run, span, ahead).await?;
                    }
                }
                Some(Ok(BulkItem::PageDone(progress))) => {
                    // A page read whole since the last cut: the resumes count from zero again.
                    resumes = 0;
                    let next = progress.resume_point();
                    // Rows still to skip belong to the next page (read with smaller pages than
                    // the sync that emitted them).
                    in_page = skip;
                    if let (Some(window), Some(point)) = (span, &next) {
                        let mut current = checkpoint(*window, point, query);
                        current.page_rows_emitted = in_page;
                        if skip > 0 {
                            current.page_last_id = skip_last_id.clone();
                        }
                        run.progress.current = Some(current);
                        self.download_checkpoint(run, span, ahead).await?;
                    }
                    resume = next.or(resume);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let resumable = matches!(
                        e.kind(),
                        sf_bulk::ErrorKind::ResultsIncomplete
                            | sf_bulk::ErrorKind::Transient
                            | sf_bulk::ErrorKind::ConcurrentLimit
                            | sf_bulk::ErrorKind::UnexpectedBody
                    );
                    match (&resume, resumable) {
                        (Some(point), true) if self.may_retry(&mut resumes) => {
                            self.log(
                                LogLevel::Warn,
                                format!(
                                    "{}: reading Bulk results failed ({e}); resuming job {} {}",
                                    self.name,
                                    point.job_id,
                                    match &point.locator {
                                        Some(l) => format!("at locator {l}"),
                                        None => "from its first page".to_string(),
                                    }
                                ),
                            )
                            .await;
                            // The page is read again from its start. Cut in transit, the rows
                            // of it already emitted were its first ones: they are skipped. A
                            // page that came whole with the wrong number of rows (a row twice,
                            // or one missing) may differ anywhere from the page read again: it
                            // is emitted whole again (duplicates, never a row skipped unseen).
                            let miscounted = matches!(
                                e,
                                sf_bulk::Error::ResultsPageCount { .. }
                                    | sf_bulk::Error::ResultsTotalCount { .. }
                            );
                            if miscounted {
                                in_page = 0;
                                if let Some(current) = run.progress.current.as_mut() {
                                    current.page_rows_emitted = 0;
                                    current.page_last_id = None;
                                }
                                self.download_checkpoint(run, span, ahead).await?;
                            }
                            skip = in_page;
                            // The rows skipped are checked against the last one emitted.
                            skipping = skip;
                            skip_from = Some(point.clone());
                            skip_last_id = run
                                .progress
                                .current
                                .as_ref()
                                .and_then(|c| c.page_last_id.clone());
                            stream = self.shared.bulk.resume(point.clone(), &run.bulk_fields);
                        }
                        _ => return Err(self.bulk_span_error(span, e)),
                    }
                }
            }
        }
    }

    /// Emits the state naming the job being downloaded (at the page, and the row of it,
    /// reached) and the jobs started `ahead`, when they changed.
    async fn download_checkpoint(
        &mut self,
        run: &mut ObjectRun,
        span: &Span,
        ahead: &[(Span, JobSlot, String)],
    ) -> Result<(), Stop> {
        if span.is_none() {
            return Ok(());
        }
        let jobs = run
            .progress
            .current
            .iter()
            .cloned()
            .chain(
                ahead
                    .iter()
                    .filter_map(|(s, slot, q)| slot_checkpoint((*s)?, slot, q)),
            )
            .collect();
        self.jobs_checkpoint(run, jobs).await
    }
}

/// The jobs in flight while the stream waits for `front`'s: it, then those started ahead.
fn in_flight(
    span: &Span,
    front: &Preparing,
    inflight: &VecDeque<(Span, Preparing)>,
) -> Vec<JobCheckpoint> {
    std::iter::once((span, front))
        .chain(inflight.iter().map(|(s, p)| (s, p)))
        .filter_map(|(s, p)| slot_checkpoint((*s)?, &p.slot, &p.query))
        .collect()
}
