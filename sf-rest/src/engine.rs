//! The paging state machine behind [`crate::RecordStream`]: one query followed page by page, or
//! several chunk queries over the same rows merged on `Id`.
//!
//! Memory: two pages per chunk (the one being yielded and the next, asked for as soon as its
//! `nextRecordsUrl` is known, read ahead of the current page's records when it comes before
//! them as Salesforce writes pages, so that the round trip overlaps the parsing, shaping and
//! yielding of the current one), plus at most `refetch_batch` records held back while records missing from a
//! chunk wait to be re-fetched.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use serde_json::Value;
use sf_auth::{FullResponse, Request, Session};
use sf_discovery::{Columns, Record};

use crate::error::Error;
use crate::plan::{form_encoded_len, RequestBudget};
use crate::reader::{Miscount, QueryPlan, ReadStats};
use crate::shape::Shape;
use crate::soql::{quote, CursorPoint, CursorValue, Order, ResumeKey, Soql};
use crate::wire::{decode_page, QueryPage};
use ahead::{Pending, Prefetch};
pub(crate) use followed::path_of;
use followed::Followed;

/// Where a query goes next.
#[derive(Debug, Clone)]
enum Next {
    /// The query has not been sent yet.
    First(String),
    /// The next page's path.
    Url(String),
    /// No more pages.
    Done,
}

/// One row of one chunk.
#[derive(Debug)]
struct Row {
    id: Option<String>,
    values: Vec<Value>,
}

/// One chunk query in flight.
struct Chunk {
    fields: Vec<String>,
    shape: Shape,
    /// For each of the chunk's columns, its position in the output.
    out: Vec<usize>,
    next: Next,
    buffer: VecDeque<Row>,
    last_id: Option<String>,
    followed: Followed,
    /// The page `next` names, when already asked for.
    prefetch: Prefetch,
    /// `totalSize` of the chunk's query as its first page said, and the rows its pages have
    /// carried since: a query's pages hold exactly that many rows, so a difference at its last
    /// page is reported.
    counted: Option<u64>,
    received: u64,
}

/// A record held back until the records missing from a chunk before it have been re-fetched.
#[derive(Debug)]
struct Held {
    id: String,
    values: Vec<Value>,
    missing: Vec<bool>,
    was_incomplete: bool,
}

pub(crate) struct Engine {
    session: Session,
    stream: String,
    object: String,
    endpoint: &'static str,
    batch_header: Option<String>,
    budget: RequestBudget,
    refetch_batch: usize,
    /// Pages larger than this get no next page asked ahead (`RestConfig::prefetch_max_page_bytes`).
    pub(crate) prefetch_max_page_bytes: usize,
    columns: Columns,
    chunks: Vec<Chunk>,
    merge: bool,
    id_col: Option<usize>,
    cursor_col: Option<(String, usize)>,
    resumable: bool,
    ready: VecDeque<Record>,
    held: VecDeque<Held>,
    last_key: Option<ResumeKey>,
    finished: bool,
    stats: Arc<Mutex<ReadStats>>,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        session: Session,
        stream: String,
        plan: QueryPlan,
        shapes: Vec<Shape>,
        batch_header: Option<String>,
        budget: RequestBudget,
        refetch_batch: usize,
        stats: Arc<Mutex<ReadStats>>,
    ) -> Engine {
        let position = |name: &str| plan.columns.iter().position(|c| c == name);
        let chunks: Vec<Chunk> = plan
            .chunks
            .into_iter()
            .zip(shapes)
            .map(|(chunk, shape)| Chunk {
                out: chunk
                    .fields
                    .iter()
                    .map(|f| position(f).unwrap_or(usize::MAX))
                    .collect(),
                fields: chunk.fields,
                shape,
                next: Next::First(chunk.soql),
                buffer: VecDeque::new(),
                last_id: None,
                followed: Followed::default(),
                prefetch: Prefetch::None,
                counted: None,
                received: 0,
            })
            .collect();
        let id_col = plan
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case("Id"));
        let cursor_col = match &plan.order {
            Order::CursorThenId(field) => plan
                .columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(field))
                .map(|i| (field.clone(), i)),
            _ => None,
        };
        let resumable = match &plan.order {
            Order::Unordered => false,
            Order::Id => true,
            Order::CursorThenId(_) => cursor_col.is_some(),
        };
        let object = stream.clone();
        Engine {
            session,
            stream,
            object,
            endpoint: plan.endpoint,
            batch_header,
            budget,
            refetch_batch,
            prefetch_max_page_bytes: usize::MAX,
            columns: plan.columns,
            merge: chunks.len() > 1,
            chunks,
            id_col,
            cursor_col,
            resumable,
            ready: VecDeque::new(),
            held: VecDeque::new(),
            last_key: None,
            finished: false,
            stats,
        }
    }

    /// The next record, an error (after which the stream ends), or `None` at the end.
    pub async fn next(&mut self) -> Option<Result<Record, Error>> {
        loop {
            if !self.ready.is_empty() && self.ready.len().is_multiple_of(DRIVE_EVERY) {
                // Keep the pages asked for ahead moving while records are yielded.
                std::future::poll_fn(|cx| {
                    self.drive(cx);
                    Poll::Ready(())
                })
                .await;
            }
            if let Some(record) = self.ready.pop_front() {
                if self.resumable {
                    self.last_key = self.key_of(&record);
                }
                self.with_stats(|s| s.records += 1);
                return Some(Ok(record));
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.step().await {
                // Records merged but not yet yielded lie after the error's resume key: a resumed
                // read gets them again, so they are not yielded after the error.
                self.finished = true;
                self.held.clear();
                self.ready.clear();
                return Some(Err(e));
            }
        }
    }

    /// Makes progress: fetches the pages the merge waits for, or merges buffered rows into
    /// records, or re-fetches held records, or notices the end.
    async fn step(&mut self) -> Result<(), Error> {
        let wanted: Vec<usize> = (0..self.chunks.len())
            .filter(|&c| {
                self.chunks[c].buffer.is_empty() && !matches!(self.chunks[c].next, Next::Done)
            })
            .collect();
        if !wanted.is_empty() {
            let mut answers = Vec::with_capacity(wanted.len());
            if let [c] = wanted[..] {
                answers.push(self.page_answer(c).await);
            } else {
                // Chunks waiting together are fetched together.
                let mut fetches = Vec::with_capacity(wanted.len());
                for &c in &wanted {
                    let pending: Option<Pending> =
                        match std::mem::replace(&mut self.chunks[c].prefetch, Prefetch::None) {
                            Prefetch::Arrived(answer) => Some(Box::pin(std::future::ready(answer))),
                            Prefetch::InFlight(pending) => Some(pending),
                            Prefetch::None => {
                                self.page_request(&self.chunks[c].next)
                                    .map(|request| -> Pending {
                                        let session = self.session.clone();
                                        self.with_stats(|s| s.requests += 1);
                                        Box::pin(async move { session.fetch(request).await })
                                    })
                            }
                        };
                    fetches.push(pending);
                }
                let joined =
                    futures_util::future::join_all(fetches.into_iter().map(|pending| async move {
                        match pending {
                            Some(p) => Some(p.await),
                            None => None,
                        }
                    }))
                    .await;
                answers.extend(joined);
            }
            for (c, answer) in wanted.into_iter().zip(answers) {
                let Some(answer) = answer else { continue };
                // A large page (a wide object's rows) is not joined by the next one in memory;
                // else the next is asked for before this one is parsed when its URL comes ahead
                // of the records, so the server prepares it meanwhile.
                let large = matches!(&answer, Ok(a) if a.body.len() > self.prefetch_max_page_bytes);
                let ahead = (!large).then(|| self.ask_ahead(c, &answer)).flatten();
                if ahead.is_some() {
                    std::future::poll_fn(|cx| {
                        self.drive(cx);
                        Poll::Ready(())
                    })
                    .await;
                }
                let asked = self.chunks[c].next.clone();
                let page = self.read_page(c, &asked, answer).await?;
                self.accept_page(c, page)?;
                match (&ahead, &self.chunks[c].next) {
                    (Some(asked), Next::Url(next)) if asked == next => {}
                    _ => {
                        self.chunks[c].prefetch = Prefetch::None;
                        if !large {
                            self.prefetch(c);
                        }
                    }
                }
            }
            // Send the requests asked ahead now, not at the first record.
            std::future::poll_fn(|cx| {
                self.drive(cx);
                Poll::Ready(())
            })
            .await;
            return Ok(());
        }
        if self.chunks.iter().all(|c| c.buffer.is_empty()) {
            if self.held.is_empty() {
                self.finished = true;
            } else {
                self.flush().await?;
            }
            return Ok(());
        }
        if !self.merge {
            let columns = self.columns.clone();
            let rows = std::mem::take(&mut self.chunks[0].buffer);
            self.ready.extend(rows.into_iter().map(|row| Record {
                columns: columns.clone(),
                values: row.values,
            }));
            return Ok(());
        }
        self.merge_buffered().await
    }

    /// Merges rows while every chunk that has more pages still has a buffered row.
    async fn merge_buffered(&mut self) -> Result<(), Error> {
        loop {
            let waiting = self
                .chunks
                .iter()
                .any(|c| c.buffer.is_empty() && !matches!(c.next, Next::Done));
            if waiting {
                return Ok(());
            }
            let Some(min) = self
                .chunks
                .iter()
                .filter_map(|c| c.buffer.front().and_then(|r| r.id.as_deref()))
                .min()
                .map(str::to_string)
            else {
                return Ok(());
            };
            let mut values = vec![Value::Null; self.columns.len()];
            let mut missing = vec![false; self.chunks.len()];
            for (c, chunk) in self.chunks.iter_mut().enumerate() {
                let matches = chunk
                    .buffer
                    .front()
                    .is_some_and(|r| r.id.as_deref() == Some(min.as_str()));
                match chunk.buffer.pop_front() {
                    Some(row) if matches => place(&mut values, &chunk.out, row.values),
                    Some(row) => {
                        chunk.buffer.push_front(row);
                        missing[c] = true;
                    }
                    None => missing[c] = true,
                }
            }
            let incomplete = missing.iter().any(|&m| m);
            if !incomplete && self.held.is_empty() {
                self.ready.push_back(Record {
                    columns: self.columns.clone(),
                    values,
                });
            } else {
                if incomplete {
                    tracing::debug!(stream = %self.stream, id = %min, "RecordMissingFromChunk");
                }
                self.held.push_back(Held {
                    id: min,
                    values,
                    missing,
                    was_incomplete: incomplete,
                });
                if self.held.len() >= self.refetch_batch {
                    self.flush().await?;
                }
            }
        }
    }

    /// Re-fetches, by `Id`, the chunks missing from held records, then releases the held records
    /// in order; records no chunk query or re-fetch found again are reported and dropped.
    async fn flush(&mut self) -> Result<(), Error> {
        let index: HashMap<String, usize> = self
            .held
            .iter()
            .enumerate()
            .map(|(i, h)| (h.id.clone(), i))
            .collect();
        for c in 0..self.chunks.len() {
            let ids: Vec<String> = self
                .held
                .iter()
                .filter(|h| h.missing[c])
                .map(|h| h.id.clone())
                .collect();
            for batch in self.id_batches(c, &ids)? {
                let soql = Soql::select(self.object.clone(), self.chunks[c].fields.clone())
                    .where_in("Id", batch)
                    .build()?;
                let mut next = Next::First(soql);
                let mut followed = Followed::default();
                while let Some(request) = self.page_request(&next) {
                    self.with_stats(|s| s.requests += 1);
                    let answer = self.session.fetch(request).await;
                    let page = self.read_page(c, &next, answer).await?;
                    next = self.next_of(&page)?;
                    followed.refuse_repeat(&self.stream, &next)?;
                    self.with_stats(|s| s.pages += 1);
                    let chunk = &self.chunks[c];
                    for row_values in page.records {
                        let id = chunk
                            .shape
                            .id_index()
                            .and_then(|i| row_values.get(i))
                            .and_then(Value::as_str);
                        let Some(&h) = id.and_then(|id| index.get(id)) else {
                            continue;
                        };
                        if let Some(held) = self.held.get_mut(h) {
                            if held.missing[c] {
                                place(&mut held.values, &chunk.out, row_values);
                                held.missing[c] = false;
                            }
                        }
                    }
                }
            }
        }
        let mut refetched = 0;
        let mut vanished = Vec::new();
        for held in self.held.drain(..) {
            if held.missing.iter().any(|&m| m) {
                tracing::warn!(
                    stream = %self.stream,
                    id = %held.id,
                    "RecordVanished: the record changed between the chunk queries and can no \
                     longer be read; it was probably deleted"
                );
                vanished.push(held.id);
            } else {
                refetched += u64::from(held.was_incomplete);
                self.ready.push_back(Record {
                    columns: self.columns.clone(),
                    values: held.values,
                });
            }
        }
        self.with_stats(|s| {
            s.refetched += refetched;
            s.vanished += vanished.len() as u64;
            let room = 100usize.saturating_sub(s.vanished_ids.len());
            s.vanished_ids.extend(vanished.into_iter().take(room));
        });
        Ok(())
    }

    /// Splits `ids` into `Id IN (...)` lists that keep a re-fetch of chunk `c` within the
    /// request limit.
    fn id_batches(&self, c: usize, ids: &[String]) -> Result<Vec<Vec<String>>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let empty = Soql::select(self.object.clone(), self.chunks[c].fields.clone())
            .where_in("Id", Vec::<String>::new())
            .build()?;
        let base = self.budget.request_bytes(&empty);
        let comma = form_encoded_len(",");
        let mut batches = Vec::new();
        let mut current: Vec<String> = Vec::new();
        let mut size = base;
        for id in ids {
            let cost = form_encoded_len(&quote(id)) + comma;
            if !current.is_empty()
                && (size + cost > self.budget.max || current.len() >= self.refetch_batch)
            {
                batches.push(std::mem::take(&mut current));
                size = base;
            }
            if size + cost > self.budget.max {
                return Err(Error::QueryBuild {
                    object: self.object.clone(),
                    reason: "a re-fetch by Id does not fit in a request".to_string(),
                });
            }
            current.push(id.clone());
            size += cost;
        }
        batches.push(current);
        Ok(batches)
    }

    fn page_request(&self, next: &Next) -> Option<Request> {
        let request = match next {
            Next::First(soql) => Request::get(self.endpoint).query("q", soql.as_str()),
            Next::Url(path) => Request::get(path.as_str()),
            Next::Done => return None,
        };
        Some(match &self.batch_header {
            Some(options) => request.header("Sforce-Query-Options", options.as_str()),
            None => request,
        })
    }

    /// Parses `answer`, chunk `c`'s page at `asked`. A page that arrived but cannot be read is
    /// asked for once more (a query page is read again by its URL, the first page by sending
    /// the query again): such pages come from what lies between the client and Salesforce, and
    /// the next answer is usually whole. A second failure ends the read.
    ///
    /// Salesforce's SOAP guide says to use each query locator once ("QueryLocator"); no REST
    /// page says whether a `nextRecordsUrl` may be read twice, and clients (Airbyte's CDK) do
    /// retry it. Should Salesforce refuse it, the answer is `INVALID_QUERY_LOCATOR`, which
    /// carries the resume key of the last record yielded, so the caller resumes after it: no
    /// row is lost either way (sure of the docs' wording; unsure of REST's behaviour).
    async fn read_page(
        &mut self,
        c: usize,
        asked: &Next,
        answer: Result<FullResponse, sf_auth::Error>,
    ) -> Result<QueryPage, Error> {
        let why = match self.decode(c, answer) {
            Err(Error::QueryDecode { message, .. }) => message,
            read => return read,
        };
        let Some(request) = self.page_request(asked) else {
            return Err(Error::QueryDecode {
                stream: self.stream.clone(),
                message: why,
            });
        };
        self.with_stats(|s| {
            s.requests += 1;
            s.pages_read_again += 1;
            s.read_again_because.get_or_insert(why);
        });
        let answer = self.session.fetch(request).await;
        self.decode(c, answer)
    }

    /// Parses a page of chunk `c`, its rows shaped by the chunk's columns.
    fn decode(
        &self,
        c: usize,
        answer: Result<FullResponse, sf_auth::Error>,
    ) -> Result<QueryPage, Error> {
        let response =
            answer.map_err(|e| Error::from_session(&self.stream, e, || self.last_key.clone()))?;
        let shape = &self.chunks[c].shape;
        decode_page(&response.body, shape).map_err(|e| Error::QueryDecode {
            stream: self.stream.clone(),
            message: e.to_string(),
        })
    }

    fn next_of(&self, page: &QueryPage) -> Result<Next, Error> {
        if page.done == Some(true) {
            return Ok(Next::Done);
        }
        match page.next_records_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Ok(Next::Url(path_of(url).ok_or_else(|| {
                Error::QueryDecode {
                    stream: self.stream.clone(),
                    message: format!("nextRecordsUrl `{url}` is not a path on the instance"),
                }
            })?)),
            _ if page.done == Some(false) => Err(Error::QueryDecode {
                stream: self.stream.clone(),
                message: "a page says more follow but has no nextRecordsUrl".to_string(),
            }),
            _ => Ok(Next::Done),
        }
    }

    fn accept_page(&mut self, c: usize, page: QueryPage) -> Result<(), Error> {
        let next = self.next_of(&page)?;
        self.chunks[c].followed.refuse_repeat(&self.stream, &next)?;
        let short = followed::short_page(&self.chunks[c].next, &next, page.records.len() as u64);
        let first_of_first = c == 0 && matches!(self.chunks[0].next, Next::First(_));
        let total = page.total_size;
        let merge = self.merge;
        let stream = self.stream.clone();
        let chunk = &mut self.chunks[c];
        if matches!(chunk.next, Next::First(_)) {
            chunk.counted = total;
            chunk.received = 0;
        }
        chunk.received += page.records.len() as u64;
        let miscounted = match (&next, chunk.counted) {
            (Next::Done, Some(counted)) if counted != chunk.received => {
                Some((counted, chunk.received))
            }
            _ => None,
        };
        chunk.next = next;
        for values in page.records {
            let id = chunk
                .shape
                .id_index()
                .and_then(|i| values.get(i))
                .and_then(Value::as_str)
                .map(str::to_string);
            if merge {
                let Some(id) = &id else {
                    return Err(Error::QueryDecode {
                        stream,
                        message: "a record of a split query has no Id".to_string(),
                    });
                };
                if chunk.last_id.as_ref().is_some_and(|last| last >= id) {
                    return Err(Error::QueryDecode {
                        stream,
                        message: format!(
                            "records of a split query are not in Id order (`{id}` after `{}`)",
                            chunk.last_id.as_deref().unwrap_or_default()
                        ),
                    });
                }
                chunk.last_id = Some(id.clone());
            }
            chunk.buffer.push_back(Row { id, values });
        }
        let rows = chunk.buffer.len();
        tracing::debug!(stream = %self.stream, chunk = c, rows, "QueryPageReceived");
        if let Some((counted, received)) = miscounted {
            // Salesforce's `totalSize` is the query's row count, repeated on every page [doc];
            // that its pages always carry exactly that many rows is belief (no documented
            // exception found), so a difference is reported, not refused.
            tracing::warn!(
                stream = %self.stream,
                chunk = c,
                total_size = counted,
                received,
                "QueryMiscounted: the query's pages carried a different number of rows than its \
                 totalSize"
            );
        }
        self.with_stats(|s| {
            s.pages += 1;
            s.short_pages += u64::from(short);
            if first_of_first {
                s.total_size = total;
            }
            if let Some((counted, received)) = miscounted {
                s.miscounted.push(Miscount { counted, received });
            }
        });
        Ok(())
    }

    /// The key to resume after `record`, in the order records come out.
    fn key_of(&self, record: &Record) -> Option<ResumeKey> {
        let id = record.values.get(self.id_col?)?.as_str()?.to_string();
        match &self.cursor_col {
            None => Some(ResumeKey { id, cursor: None }),
            Some((field, i)) => {
                let value = CursorValue::parse(record.values.get(*i)?.as_str()?)?;
                Some(ResumeKey {
                    id,
                    cursor: Some(CursorPoint {
                        field: field.clone(),
                        value,
                    }),
                })
            }
        }
    }

    fn with_stats(&self, f: impl FnOnce(&mut ReadStats)) {
        f(&mut sf_auth::lock(&self.stats));
    }
}

/// Records yielded between two polls of the pages asked for ahead.
const DRIVE_EVERY: usize = 64;

/// Puts a chunk's values into their output positions.
fn place(values: &mut [Value], out: &[usize], row: Vec<Value>) {
    for (&i, v) in out.iter().zip(row) {
        if let Some(slot) = values.get_mut(i) {
            *slot = v;
        }
    }
}

mod ahead;
mod followed;
#[cfg(test)]
mod tests;
