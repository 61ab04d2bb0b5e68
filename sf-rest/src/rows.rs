//! Queries the caller writes, their rows as JSON objects as Salesforce sent them: small ones read
//! whole (the rows of a setup object: `Organization`, `PermissionSet`, ...), for callers that ask
//! a question of the org, and any size streamed a page at a time.

use std::collections::{HashSet, VecDeque};

use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Map, Value};
use sf_auth::{Request, Session};

use crate::error::Error;
use crate::reader::RestReader;

/// Pages followed at most by [`RestReader::query_rows`]: a question, not an extraction.
const MAX_PAGES: usize = 50;

#[derive(Deserialize)]
struct RowsPage {
    #[serde(default)]
    done: Option<bool>,
    #[serde(default, rename = "nextRecordsUrl")]
    next_records_url: Option<String>,
    #[serde(default)]
    records: Vec<Map<String, Value>>,
}

impl RestReader {
    /// Runs `soql` (a query on `object`, named in errors) through `query` and returns every row
    /// as Salesforce sent it, without `attributes`, following `nextRecordsUrl`. For small
    /// answers only: the rows are held in memory, and an answer of more than 50 pages is an
    /// error (`UnexpectedBody`), no row returned. Large reads go through [`RestReader::read`].
    pub async fn query_rows(
        &self,
        object: &str,
        soql: &str,
    ) -> Result<Vec<Map<String, Value>>, Error> {
        let mut pager = Pager {
            session: self.session.clone(),
            object: object.to_string(),
            batch_header: None,
            next: Some(Request::get("query").query("q", soql)),
            followed: HashSet::new(),
            rows: VecDeque::new(),
        };
        for _ in 0..MAX_PAGES {
            pager.next_page().await?;
            if pager.next.is_none() {
                return Ok(pager.rows.into());
            }
        }
        Err(Error::QueryDecode {
            stream: object.to_string(),
            message: format!("more than {MAX_PAGES} pages"),
        })
    }
}

impl RestReader {
    /// Runs `soql` (a query on `object`, named in errors) through `query`, or `queryAll` with
    /// `include_deleted`, and streams its rows as Salesforce sent them, without `attributes`,
    /// following `nextRecordsUrl` with one page in memory at a time (its size set by
    /// `RestConfig::batch_size`). A page named twice ends the stream with an error, as does any
    /// failure; nothing follows an error. Unlike [`RestReader::read`], the rows are not shaped
    /// by a stream's fields (numbers and datetimes stay as Salesforce wrote them) and a lost
    /// cursor is not resumed.
    pub fn query_stream(
        &self,
        object: &str,
        soql: &str,
        include_deleted: bool,
    ) -> impl Stream<Item = Result<Map<String, Value>, Error>> + Send + 'static {
        let endpoint = if include_deleted { "queryAll" } else { "query" };
        let pager = Pager {
            session: self.session.clone(),
            object: object.to_string(),
            batch_header: self.batch_header(),
            next: Some(Request::get(endpoint).query("q", soql)),
            followed: HashSet::new(),
            rows: VecDeque::new(),
        };
        futures_util::stream::unfold(pager, |mut pager| async move {
            loop {
                if let Some(row) = pager.rows.pop_front() {
                    return Some((Ok(row), pager));
                }
                pager.next.as_ref()?;
                if let Err(e) = pager.next_page().await {
                    pager.next = None;
                    return Some((Err(e), pager));
                }
            }
        })
    }
}

/// A query followed page by page for [`RestReader::query_stream`].
struct Pager {
    session: Session,
    object: String,
    /// `Sforce-Query-Options` of every page asked for.
    batch_header: Option<String>,
    /// The next page's request; `None` after the last page or an error.
    next: Option<Request>,
    /// The `nextRecordsUrl`s followed.
    followed: HashSet<String>,
    /// The rows of the page being yielded.
    rows: VecDeque<Map<String, Value>>,
}

impl Pager {
    /// Reads the page `next` names into `rows` and names the one after it, if any.
    async fn next_page(&mut self) -> Result<(), Error> {
        let Some(request) = self.next.take() else {
            return Ok(());
        };
        let decode = |message: String| Error::QueryDecode {
            stream: self.object.clone(),
            message,
        };
        let request = match &self.batch_header {
            Some(options) => request.header("Sforce-Query-Options", options.as_str()),
            None => request,
        };
        let response = self
            .session
            .fetch(request)
            .await
            .map_err(|e| Error::from_session(&self.object, e, || None))?;
        let page: RowsPage = serde_json::from_slice(&response.body)
            .map_err(|e| decode(format!("query answer: {e}")))?;
        // The page's rows are kept only once the page after it is known: nothing follows an
        // error.
        let records = page.records;
        if let Some(url) = page.next_records_url.filter(|u| !u.trim().is_empty()) {
            if page.done != Some(true) {
                let path = crate::engine::path_of(url.trim())
                    .ok_or_else(|| decode(format!("nextRecordsUrl `{url}` is not a path")))?;
                if !self.followed.insert(path.clone()) {
                    return Err(decode(format!(
                        "nextRecordsUrl `{url}` names a page already read"
                    )));
                }
                self.next = Some(Request::get(path));
            }
        } else if page.done == Some(false) {
            return Err(decode(
                "a page says more follow but has no nextRecordsUrl".to_string(),
            ));
        }
        self.rows.extend(records.into_iter().map(|mut row| {
            row.remove("attributes");
            row
        }));
        Ok(())
    }
}
