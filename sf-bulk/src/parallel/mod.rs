//! Parallel result pages (API 58.0+): `GET jobs/query/{id}/resultPages` lists a finished job's
//! pages, up to five URLs an answer (Salesforce, "Get Parallel Results for a Query Job"; sure:
//! `resultPages[].resultUrl`, `nextRecordsUrl` (the docs' table spells it `nextRecordUrl`:
//! both are read), `done`; the job must be complete; another API version than the job's is a 409).
//!
//! [`Pages`] keeps up to [`BulkConfig::parallel_pages`](crate::BulkConfig) pages downloading at
//! once, each on its own task and connection; the run decodes them one at a time, in page order,
//! as their bytes arrive. Memory stays flat: every byte downloaded and not yet decoded, the page
//! being emitted included, is held under one budget
//! ([`BulkConfig::parallel_buffer_bytes`](crate::BulkConfig), see [`budget`]); a page that finds
//! its share spent stops reading its connection until the decoder has caught up. The page being
//! emitted has a share of its own, so nothing waits on itself.

mod budget;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use sf_auth::{ByteStream, Request, RequestTag};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::error::{Error, ErrorKind};
use crate::job::BulkClient;
use budget::{Budget, Held};

/// The response headers a page's checks need.
pub(crate) struct PageHead {
    pub(crate) number_of_records: Option<String>,
    pub(crate) locator: Option<String>,
    pub(crate) content_type: Option<String>,
}

impl PageHead {
    pub(crate) fn of(response: &sf_auth::Response) -> PageHead {
        let get = |name: &str| response.header(name).map(str::to_string);
        PageHead {
            number_of_records: get("sforce-numberofrecords"),
            locator: get("sforce-locator"),
            content_type: get("content-type"),
        }
    }
}

type Chunk = Result<(Bytes, Held), sf_auth::Error>;
type Opened = Result<(PageHead, mpsc::UnboundedReceiver<Chunk>), Error>;

/// A page started and not yet emitted.
struct Pending {
    locator: Option<String>,
    opened: oneshot::Receiver<Opened>,
}

#[derive(Deserialize)]
struct PagesWire {
    #[serde(rename = "resultPages", default)]
    result_pages: Vec<PageUrlWire>,
    #[serde(rename = "nextRecordsUrl", alias = "nextRecordUrl", default)]
    next: Option<String>,
    #[serde(default)]
    done: Option<bool>,
}

#[derive(Deserialize)]
struct PageUrlWire {
    #[serde(rename = "resultUrl", alias = "resultLink")]
    url: String,
}

/// The pages of one job, downloading ahead of the one being emitted.
pub(crate) struct Pages {
    client: BulkClient,
    job_id: String,
    width: usize,
    budget: Arc<Budget>,
    /// Listed, not started, in page order.
    listed: VecDeque<Option<String>>,
    /// The next listing's path and query; `None` once the list is done.
    next_listing: Option<(String, Vec<(String, String)>)>,
    pending: VecDeque<Pending>,
    /// Index of the page being emitted.
    head: watch::Sender<u64>,
    started: u64,
    emitted: u64,
    tasks: Vec<AbortHandle>,
    tag: Option<RequestTag>,
}

impl Drop for Pages {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The value of `name` in a URL's query string, percent-decoded.
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Pages {
    /// Lists the job's pages and positions on `from` (the first page when `None`). `Ok(None)`:
    /// parallel pages are not to be had (width 1, API version before 58.0, resultPages answers
    /// 404 or lists no page, or `from` is not among the listed pages): read page by page with
    /// locators.
    pub(crate) async fn open(
        client: &BulkClient,
        job_id: &str,
        from: Option<&str>,
    ) -> Result<Option<Pages>, Error> {
        let config = client.config();
        let version: f64 = client.session().api_version().parse().unwrap_or(0.0);
        if config.parallel_pages <= 1 || version < 58.0 {
            return Ok(None);
        }
        let mut first = Vec::new();
        if let Some(max) = config.max_records {
            first.push(("maxRecords".to_string(), max.to_string()));
        }
        let (head, _) = watch::channel(0);
        let mut pages = Pages {
            client: client.clone(),
            job_id: job_id.to_string(),
            width: config.parallel_pages,
            budget: Budget::new(config.parallel_buffer_bytes),
            listed: VecDeque::new(),
            next_listing: Some((format!("jobs/query/{job_id}/resultPages"), first)),
            pending: VecDeque::new(),
            head,
            started: 0,
            emitted: 0,
            tasks: Vec::new(),
            tag: RequestTag::current(),
        };
        match pages.list_more().await {
            Ok(()) => {}
            Err(Error::ResultPages {
                source: Some(source),
                ..
            }) if matches!(source.kind(), ErrorKind::NotFound | ErrorKind::JobNotFound)
                && source.api_error().is_some_and(|a| a.status == 404) =>
            {
                tracing::info!(
                    job_id,
                    "BulkResultPagesUnavailable: resultPages answered 404, reading page by page"
                );
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        // A first listing of no page (an empty result, or an answer whose pages are under
        // another key): page by page, which reads an empty result as well and loses nothing.
        if pages.listed.is_empty() && pages.next_listing.is_none() {
            tracing::info!(
                job_id,
                "BulkResultPagesEmpty: resultPages listed no page, reading page by page"
            );
            return Ok(None);
        }
        if let Some(from) = from {
            // Skip to the page to resume from; not listed: read on page by page from it.
            loop {
                match pages.listed.front() {
                    Some(Some(l)) if l == from => break,
                    Some(_) => {
                        pages.listed.pop_front();
                    }
                    None if pages.next_listing.is_some() => pages.list_more().await?,
                    None => {
                        tracing::info!(job_id, "BulkResultPagesResumeUnlisted: the resume locator is not among resultPages, reading page by page");
                        return Ok(None);
                    }
                }
            }
        }
        tracing::debug!(job_id, width = pages.width, "BulkResultPagesParallel");
        Ok(Some(pages))
    }

    fn protocol(&self, message: String) -> Error {
        Error::ResultPages {
            job_id: self.job_id.clone(),
            reason: message,
            source: None,
        }
    }

    /// One `resultPages` answer into `listed`.
    async fn list_more(&mut self) -> Result<(), Error> {
        let Some((path, query)) = self.next_listing.take() else {
            return Ok(());
        };
        let mut request = Request::get(path.clone());
        for (k, v) in &query {
            request = request.query(k.clone(), v.clone());
        }
        let request_error = |source: sf_auth::Error| Error::ResultPages {
            job_id: self.job_id.clone(),
            reason: source.to_string(),
            source: Some(Box::new(source)),
        };
        let answer = self
            .client
            .session()
            .fetch(request)
            .await
            .map_err(request_error)?;
        let wire: PagesWire = answer.json().map_err(request_error)?;
        let results_path = format!("/jobs/query/{}/results", self.job_id);
        for page in wire.result_pages {
            let (url_path, url_query) = page.url.split_once('?').unwrap_or((&page.url, ""));
            if !url_path.ends_with(&results_path) {
                return Err(self.protocol(format!(
                    "resultUrl `{}` is not a results page of this job",
                    page.url.chars().take(200).collect::<String>()
                )));
            }
            self.listed
                .push_back(query_value(url_query, "locator").filter(|l| !l.is_empty()));
        }
        let more = wire.done == Some(false) || (wire.done.is_none() && wire.next.is_some());
        if !more {
            return Ok(());
        }
        let Some(next) = wire.next.filter(|n| !n.trim().is_empty()) else {
            return Err(self.protocol(
                "resultPages says more pages follow but has no nextRecordsUrl".to_string(),
            ));
        };
        let (next_path, next_query) = next.split_once('?').unwrap_or((&next, ""));
        let listing = format!("/jobs/query/{}/resultPages", self.job_id);
        if !next_path.starts_with('/')
            || next_path.starts_with("//")
            || !next_path.ends_with(&listing)
        {
            return Err(self.protocol(format!(
                "nextRecordsUrl `{}` is not this job's resultPages",
                next.chars().take(200).collect::<String>()
            )));
        }
        let pairs: Vec<(String, String)> = next_query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        if next_path == path && pairs == query {
            return Err(self.protocol(
                "nextRecordsUrl names the resultPages answer just read again".to_string(),
            ));
        }
        self.next_listing = Some((next_path.to_string(), pairs));
        Ok(())
    }

    /// Whether a page is left after the one being emitted: downloading, listed, or in a listing
    /// not yet asked for.
    pub(crate) fn has_more(&self) -> bool {
        !self.pending.is_empty() || !self.listed.is_empty() || self.next_listing.is_some()
    }

    /// The locator of the next page listed, when the listings asked for so far name one.
    pub(crate) fn next_listed(&self) -> Option<String> {
        match self.pending.front() {
            Some(page) => page.locator.clone(),
            None => self.listed.front().cloned().flatten(),
        }
    }

    /// Starts pages until `width` are downloading (the one being emitted included).
    async fn fill(&mut self) -> Result<(), Error> {
        while self.pending.len() < self.width {
            if self.listed.is_empty() {
                if self.next_listing.is_none() {
                    return Ok(());
                }
                self.list_more().await?;
                continue;
            }
            let Some(locator) = self.listed.pop_front() else {
                return Ok(());
            };
            let (opened_tx, opened) = oneshot::channel();
            let task = tokio::spawn(RequestTag::scope_opt(
                self.tag.clone(),
                fetch(
                    self.client.clone(),
                    self.job_id.clone(),
                    self.started,
                    locator.clone(),
                    self.head.subscribe(),
                    Arc::clone(&self.budget),
                    opened_tx,
                ),
            ));
            self.tasks.retain(|t| !t.is_finished());
            self.tasks.push(task.abort_handle());
            self.started += 1;
            self.pending.push_back(Pending { locator, opened });
        }
        Ok(())
    }

    /// The next page in order: its locator, headers and body; `None` after the last.
    pub(crate) async fn next_page(
        &mut self,
    ) -> Result<Option<(Option<String>, PageHead, ByteStream)>, Error> {
        self.fill().await?;
        let Some(page) = self.pending.pop_front() else {
            return Ok(None);
        };
        self.head.send_replace(self.emitted);
        self.emitted += 1;
        let (head, chunks) = page.opened.await.map_err(|_| Error::ResultsProtocol {
            job_id: self.job_id.clone(),
            locator: page.locator.clone(),
            message: "the page's download stopped before it answered".to_string(),
        })??;
        let body: ByteStream = Box::pin(futures_util::stream::unfold(
            chunks,
            |mut chunks| async move {
                // The chunk's bytes leave the budget here: they are being decoded.
                let item = chunks.recv().await?.map(|(bytes, _held)| bytes);
                Some((item, chunks))
            },
        ));
        Ok(Some((page.locator, head, body)))
    }
}

/// Downloads page `index`: answers its headers on `opened`, then its bytes in order, each
/// piece held under the budget until it is decoded (see [`budget`]).
async fn fetch(
    client: BulkClient,
    job_id: String,
    index: u64,
    locator: Option<String>,
    mut head: watch::Receiver<u64>,
    budget: Arc<Budget>,
    opened: oneshot::Sender<Opened>,
) {
    let mut request =
        Request::get(format!("jobs/query/{job_id}/results")).header("accept", "text/csv");
    if let Some(max) = client.config().max_records {
        request = request.query("maxRecords", max.to_string());
    }
    if let Some(locator) = &locator {
        request = request.query("locator", locator.clone());
    }
    let response = match client.session().send(request).await {
        Ok(response) => response,
        Err(source) => {
            let _ = opened.send(Err(Error::ResultsRequest {
                job_id,
                locator,
                source: Box::new(source),
            }));
            return;
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    if opened.send(Ok((PageHead::of(&response), rx))).is_err() {
        return;
    }
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let mut rest = match chunk {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        while !rest.is_empty() {
            let piece = rest.split_to(rest.len().min(budget.piece()));
            let held = tokio::select! {
                held = budget.hold(piece.len(), index, &mut head) => held,
                // The page was dropped unread (a failed run): stop.
                () = tx.closed() => None,
            };
            let Some(held) = held else {
                return;
            };
            if tx.send(Ok((piece, held))).is_err() {
                return;
            }
        }
    }
}
