//! One query run as a stream: create, wait, page through the results, verify, delete.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;
use futures_util::StreamExt;
use sf_auth::{ByteStream, Request};
use sf_discovery::{FieldSpec, Record};

use crate::decode::{PageDecoder, Schema};
use crate::error::{Error, ErrorKind};
use crate::job::{check_job_id, BulkClient, JobInfo, Operation};
use crate::parallel::{PageHead, Pages};

/// What a run yields, in order: `JobCreated` (queries only), `JobCompleted`, then for each page
/// its `Record`s followed by its `PageDone`.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkItem {
    /// A job was created (again, when a failed one is replaced): keep its id to re-attach with
    /// [`BulkClient::resume`] or to [`BulkClient::abort`] it.
    JobCreated {
        /// The job id.
        job_id: String,
    },
    /// The job completed; its results are read next.
    JobCompleted(JobInfo),
    /// One record, typed, with the requested columns.
    Record(Record),
    /// A results page was read whole and its row count checked: a checkpoint.
    PageDone(PageProgress),
}

/// How far a download has come, after one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageProgress {
    /// The job.
    pub job_id: String,
    /// The locator of the page just read (`None`: the first page).
    pub locator: Option<String>,
    /// The locator of the next page; `None` when this was the last page.
    pub next_locator: Option<String>,
    /// Rows in this page.
    pub rows: u64,
    /// Rows read so far over all pages (including those before a resume point).
    pub rows_total: u64,
}

impl PageProgress {
    /// Where to resume after this page; `None` when the download is complete.
    pub fn resume_point(&self) -> Option<ResumePoint> {
        self.next_locator.as_ref().map(|locator| ResumePoint {
            job_id: self.job_id.clone(),
            locator: Some(locator.clone()),
            rows_done: self.rows_total,
        })
    }
}

/// Where to pick a download up: a job, the locator of the next page to read, and how many rows
/// were read before it (for the job's total count check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// The job id.
    pub job_id: String,
    /// The next page's locator; `None` for the first page.
    pub locator: Option<String>,
    /// Rows read before `locator`.
    pub rows_done: u64,
}

impl ResumePoint {
    /// The start of a job's results.
    pub fn start(job_id: impl Into<String>) -> ResumePoint {
        ResumePoint {
            job_id: job_id.into(),
            locator: None,
            rows_done: 0,
        }
    }
}

/// The stream a run yields.
pub type BulkStream = Pin<Box<dyn Stream<Item = Result<BulkItem, Error>> + Send>>;

enum Phase {
    Create,
    Wait { delay_first: bool },
    Download,
    Finish,
    Done,
}

/// A results page being read.
struct Page {
    locator: Option<String>,
    next_locator: Option<String>,
    /// The page's `Sforce-Locator` said it is the last (`null` or empty), as opposed to not
    /// being there at all (a proxy may drop it).
    said_last: bool,
    announced: Option<u64>,
    body: ByteStream,
    decoder: PageDecoder,
}

pub(crate) struct Run {
    client: BulkClient,
    schema: Arc<Schema>,
    query: Option<(Operation, String)>,
    failed_retries_left: u32,
    job_id: String,
    phase: Phase,
    /// The next page to read: `None` before the first page.
    locator: Option<String>,
    rows_total: u64,
    expected_total: Option<u64>,
    /// Whether a page without `Sforce-NumberOfRecords` was warned about (once per run).
    warned_page_count: bool,
    /// The locators read so far in this run: a page chain that comes back to one is refused
    /// (it would emit the same records without end).
    seen: HashSet<String>,
    page: Option<Page>,
    /// Whether `resultPages` was asked for yet, and the parallel downloads when it serves them.
    parallel_tried: bool,
    pages: Option<Pages>,
    ready: VecDeque<Record>,
    /// Yielded once `ready` is drained (a page's checkpoint, or an error found at its end).
    after: Option<Result<BulkItem, Error>>,
}

impl Run {
    /// A run with nothing read yet; the constructors below set what differs.
    fn base(client: BulkClient, fields: &[FieldSpec]) -> Run {
        Run {
            client,
            schema: Arc::new(Schema::new(fields)),
            query: None,
            failed_retries_left: 0,
            job_id: String::new(),
            phase: Phase::Create,
            locator: None,
            rows_total: 0,
            expected_total: None,
            warned_page_count: false,
            seen: HashSet::new(),
            page: None,
            parallel_tried: false,
            pages: None,
            ready: VecDeque::new(),
            after: None,
        }
    }

    pub(crate) fn new_query(
        client: BulkClient,
        operation: Operation,
        soql: String,
        fields: &[FieldSpec],
    ) -> Run {
        let retries = client.inner.config.failed_job_retries;
        Run {
            query: Some((operation, soql)),
            failed_retries_left: retries,
            ..Run::base(client, fields)
        }
    }

    pub(crate) fn new_resume(client: BulkClient, from: ResumePoint, fields: &[FieldSpec]) -> Run {
        Run {
            job_id: from.job_id,
            phase: Phase::Wait { delay_first: false },
            locator: from.locator.filter(|l| !is_last(l)),
            rows_total: from.rows_done,
            ..Run::base(client, fields)
        }
    }

    pub(crate) fn into_stream(self) -> BulkStream {
        // Boxed: `unfold` moves its state in and out for every item, and a record is an item,
        // so a pointer is moved rather than the whole run (a measurable share of the CPU).
        Box::pin(futures_util::stream::unfold(
            Box::new(self),
            |mut run| async move {
                let item = run.next_item().await?;
                Some((item, run))
            },
        ))
    }

    /// Ends the run with `error`; records decoded but not yielded are dropped (they were not
    /// checkpointed).
    fn fail(&mut self, error: Error) -> Option<Result<BulkItem, Error>> {
        self.phase = Phase::Done;
        self.page = None;
        self.pages = None;
        self.ready.clear();
        self.after = None;
        Some(Err(error))
    }

    async fn next_item(&mut self) -> Option<Result<BulkItem, Error>> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Some(Ok(BulkItem::Record(record)));
            }
            if let Some(item) = self.after.take() {
                if item.is_err() {
                    self.phase = Phase::Done;
                    self.page = None;
                    // The pages downloading ahead are stopped, their connections closed.
                    self.pages = None;
                }
                return Some(item);
            }
            match self.phase {
                Phase::Create => {
                    let Some((operation, soql)) = &self.query else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    match self.client.create_job(*operation, soql).await {
                        Ok(info) => {
                            self.job_id = info.id;
                            self.phase = Phase::Wait { delay_first: true };
                            return Some(Ok(BulkItem::JobCreated {
                                job_id: self.job_id.clone(),
                            }));
                        }
                        Err(e) => return self.fail(e),
                    }
                }
                Phase::Wait { delay_first } => {
                    match self.client.wait(&self.job_id, delay_first).await {
                        Ok(info) => {
                            self.expected_total = info.records_processed;
                            self.phase = Phase::Download;
                            return Some(Ok(BulkItem::JobCompleted(info)));
                        }
                        Err(e) => {
                            let terminal = matches!(
                                e,
                                Error::JobFailed { .. }
                                    | Error::JobAborted { .. }
                                    | Error::JobTimedOut { .. }
                                    | Error::JobState { .. }
                            );
                            if terminal {
                                self.client.delete_best_effort(&self.job_id).await;
                            }
                            // A job Salesforce gave up on, for its size or no stated
                            // reason, may pass on another try.
                            let retry = matches!(e, Error::JobFailed { .. })
                                && matches!(
                                    e.kind(),
                                    ErrorKind::JobFailed | ErrorKind::QueryTimeout
                                )
                                && self.query.is_some()
                                && self.failed_retries_left > 0;
                            if retry {
                                self.failed_retries_left -= 1;
                                tracing::warn!(job_id = %self.job_id, error = %e, "BulkJobRetried");
                                self.phase = Phase::Create;
                                continue;
                            }
                            return self.fail(e);
                        }
                    }
                }
                Phase::Download => {
                    if self.page.is_none() {
                        match self.open_page().await {
                            Ok(Some(page)) => self.page = Some(page),
                            // Parallel pages listed none (an empty result): the job ends.
                            Ok(None) => {
                                self.end_of_results();
                                continue;
                            }
                            Err(e) => return self.fail(e),
                        }
                    }
                    if let Err(e) = self.read_page().await {
                        return self.fail(e);
                    }
                }
                Phase::Finish => {
                    self.client.delete_best_effort(&self.job_id).await;
                    self.phase = Phase::Done;
                }
                Phase::Done => return None,
            }
        }
    }

    /// `GET jobs/query/{id}/results`, with `maxRecords` and the locator.
    /// The next page in order: from the parallel downloads when `resultPages` serves them (see
    /// `parallel.rs`), else `GET results` with the locator; `None` when no page is left.
    async fn open_page(&mut self) -> Result<Option<Page>, Error> {
        check_job_id(&self.job_id)?;
        if !self.parallel_tried {
            self.parallel_tried = true;
            self.pages = Pages::open(&self.client, &self.job_id, self.locator.as_deref()).await?;
        }
        let (head, body) = match self.pages.as_mut() {
            Some(pages) => match pages.next_page().await? {
                Some((locator, head, body)) => {
                    self.locator = locator;
                    (head, body)
                }
                None => return Ok(None),
            },
            None => {
                let response = self.request_page().await?;
                (PageHead::of(&response), response.bytes_stream())
            }
        };
        self.page_from(head, body).map(Some)
    }

    /// `GET jobs/query/{id}/results`, with `maxRecords` and the locator.
    async fn request_page(&mut self) -> Result<sf_auth::Response, Error> {
        let mut request = Request::get(format!("jobs/query/{}/results", self.job_id))
            .header("accept", "text/csv");
        if let Some(max) = self.client.inner.config.max_records {
            request = request.query("maxRecords", max.to_string());
        }
        if let Some(locator) = &self.locator {
            request = request.query("locator", locator.clone());
        }
        self.client
            .inner
            .session
            .send(request)
            .await
            .map_err(|source| Error::ResultsRequest {
                job_id: self.job_id.clone(),
                locator: self.locator.clone(),
                source: Box::new(source),
            })
    }

    /// A page from its response headers and body; the headers are checked.
    fn page_from(&mut self, head: PageHead, body: ByteStream) -> Result<Page, Error> {
        let protocol = |message: String| Error::ResultsProtocol {
            job_id: self.job_id.clone(),
            locator: self.locator.clone(),
            message,
        };
        let announced = match head.number_of_records.as_deref() {
            None => None,
            Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                protocol(format!(
                    "Sforce-NumberOfRecords `{text}` is not a row count"
                ))
            })?),
        };
        let next_locator = head
            .locator
            .as_deref()
            .map(str::trim)
            .filter(|l| !is_last(l))
            .map(str::to_string);
        if next_locator.is_some() && next_locator == self.locator {
            return Err(protocol(
                "Sforce-Locator names the page just requested again".to_string(),
            ));
        }
        if let Some(locator) = &self.locator {
            self.seen.insert(locator.clone());
        }
        if let Some(next) = next_locator.as_ref().filter(|n| self.seen.contains(*n)) {
            return Err(protocol(format!(
                "Sforce-Locator `{next}` names a page this run already read"
            )));
        }
        let decoder =
            PageDecoder::with_schema(Arc::clone(&self.schema), head.content_type.as_deref())
                .map_err(|source| Error::ResultsDecode {
                    job_id: self.job_id.clone(),
                    locator: self.locator.clone(),
                    source,
                })?;
        let said_last = head.locator.as_deref().is_some_and(is_last);
        Ok(Page {
            locator: self.locator.clone(),
            next_locator,
            said_last,
            announced,
            body,
            decoder,
        })
    }

    /// Reads the next chunk of the open page into `ready`; at the page's end, checks it and sets
    /// up its checkpoint (or the job's end).
    async fn read_page(&mut self) -> Result<(), Error> {
        let Some(page) = self.page.as_mut() else {
            return Ok(());
        };
        let decode_error = |page: &Page, source| Error::ResultsDecode {
            job_id: self.job_id.clone(),
            locator: page.locator.clone(),
            source,
        };
        match page.body.next().await {
            Some(Ok(chunk)) => {
                page.decoder
                    .push(&chunk, &mut self.ready)
                    .map_err(|source| decode_error(page, source))?;
                // More rows than the job holds (pages served twice): refused at once, the rows
                // past the job's total never yielded.
                // Saturating: `rows_total` may start from a state's `rows_done`, any count a user wrote.
                let received = self.rows_total.saturating_add(page.decoder.rows());
                if let Some(processed) = self.expected_total.filter(|p| received > *p) {
                    let excess = usize::try_from(received - processed).unwrap_or(usize::MAX);
                    self.ready.truncate(self.ready.len().saturating_sub(excess));
                    self.page = None;
                    self.pages = None;
                    self.after = Some(Err(Error::ResultsTotalCount {
                        job_id: self.job_id.clone(),
                        processed,
                        received,
                    }));
                }
                Ok(())
            }
            Some(Err(source)) => Err(Error::ResultsRead {
                job_id: self.job_id.clone(),
                locator: page.locator.clone(),
                source: Box::new(source),
            }),
            None => {
                let rows = page
                    .decoder
                    .finish(&mut self.ready)
                    .map_err(|source| decode_error(page, source))?;
                let Some(page) = self.page.take() else {
                    return Ok(());
                };
                self.rows_total = self.rows_total.saturating_add(rows);
                tracing::debug!(job_id = %self.job_id, locator = ?page.locator, rows, "BulkResultsPageRead");
                // More rows than the job holds (the last row, decoded only at the body's end):
                // refused at once as above, not at an end a repeating chain never reaches.
                if let Some(processed) = self.expected_total.filter(|p| self.rows_total > *p) {
                    let excess = usize::try_from(self.rows_total - processed).unwrap_or(usize::MAX);
                    self.ready.truncate(self.ready.len().saturating_sub(excess));
                    self.pages = None;
                    self.after = Some(Err(Error::ResultsTotalCount {
                        job_id: self.job_id.clone(),
                        processed,
                        received: self.rows_total,
                    }));
                    return Ok(());
                }
                match page.announced {
                    Some(announced) if announced != rows => {
                        // The page's records go out first; the error takes its checkpoint's
                        // place. The job is kept, so the page can be read again.
                        self.after = Some(Err(Error::ResultsPageCount {
                            job_id: self.job_id.clone(),
                            locator: page.locator,
                            announced,
                            received: rows,
                        }));
                        return Ok(());
                    }
                    Some(_) => {}
                    None if !self.warned_page_count => {
                        self.warned_page_count = true;
                        tracing::warn!(
                            job_id = %self.job_id,
                            locator = ?page.locator,
                            rows,
                            "BulkResultsCountMissing: the page came without Sforce-NumberOfRecords, so its row count was not checked"
                        );
                    }
                    None => {
                        tracing::debug!(job_id = %self.job_id, locator = ?page.locator, rows, "BulkResultsCountMissing");
                    }
                }
                // The listed pages must go on where this one ended. Salesforce documents no page
                // size for `resultPages` (the listing may not follow `maxRecords`, which `results`
                // honours), so a page whose `Sforce-Locator` is not the next listed locator (or
                // names a page after the listing's last, or says it is the last while the
                // listing goes on) ends the parallel reading: the pages fetched ahead are dropped
                // unread and the rest is read page by page from this page's own locator, or the
                // job ends here. Nothing is emitted twice and nothing is skipped.
                if let Some(pages) = self.pages.as_ref() {
                    let listed = pages.next_listed();
                    let misaligned = match page.next_locator.as_ref() {
                        Some(served) => listed.as_deref() != Some(served.as_str()),
                        None => page.said_last && pages.has_more(),
                    };
                    if misaligned {
                        tracing::info!(
                            job_id = %self.job_id,
                            served = ?page.next_locator,
                            listed = ?listed,
                            "BulkResultPagesMisaligned: the listed pages do not go on where the page \
                             read ended; reading the rest page by page"
                        );
                        self.pages = None;
                    }
                }
                // Parallel pages come from the `resultPages` listing: a page answered without
                // its `Sforce-Locator` (a proxy may drop it) is not the last while the listing
                // goes on; the next listed page is the next one.
                let listed_more = self.pages.as_ref().is_some_and(Pages::has_more);
                let next_locator = page
                    .next_locator
                    .clone()
                    .or_else(|| self.pages.as_ref().and_then(Pages::next_listed));
                let progress = PageProgress {
                    job_id: self.job_id.clone(),
                    locator: page.locator,
                    next_locator: next_locator.clone(),
                    rows,
                    rows_total: self.rows_total,
                };
                match next_locator {
                    Some(next) => self.locator = Some(next),
                    None if listed_more => {}
                    None => {
                        if !self.end_of_results() {
                            return Ok(());
                        }
                    }
                }
                self.after = Some(Ok(BulkItem::PageDone(progress)));
                Ok(())
            }
        }
    }

    /// The last page was read: checks the job's total. False when it does not match (the error
    /// is set up in `after`).
    fn end_of_results(&mut self) -> bool {
        match self.expected_total {
            Some(processed) if processed != self.rows_total => {
                // The job is kept (see `BulkClient::query`): the caller may read
                // again from its last checkpoint, or delete the job.
                self.after = Some(Err(Error::ResultsTotalCount {
                    job_id: self.job_id.clone(),
                    processed,
                    received: self.rows_total,
                }));
                false
            }
            Some(_) => {
                self.phase = Phase::Finish;
                true
            }
            None => {
                tracing::warn!(
                    job_id = %self.job_id,
                    rows = self.rows_total,
                    "BulkJobTotalMissing: the completed job reported no numberRecordsProcessed, so the total was not checked"
                );
                self.phase = Phase::Finish;
                true
            }
        }
    }
}

/// `Sforce-Locator` says there are no more pages: the literal `null`, or empty.
pub(crate) fn is_last(locator: &str) -> bool {
    let locator = locator.trim();
    locator.is_empty() || locator == "null"
}
