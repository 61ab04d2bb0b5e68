//! Small queries read whole: the rows of a setup object (`Organization`, `PermissionSet`, ...)
//! as JSON objects, for callers that ask a question of the org rather than extract a stream.

use serde::Deserialize;
use serde_json::{Map, Value};
use sf_auth::Request;

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
        let decode = |message: String| Error::QueryDecode {
            stream: object.to_string(),
            message,
        };
        let mut rows = Vec::new();
        let mut request = Request::get("query").query("q", soql);
        for _ in 0..MAX_PAGES {
            let response = self
                .session
                .fetch(request)
                .await
                .map_err(|e| Error::from_session(object, e, || None))?;
            let page: RowsPage = serde_json::from_slice(&response.body)
                .map_err(|e| decode(format!("query answer: {e}")))?;
            rows.extend(page.records.into_iter().map(|mut row| {
                row.remove("attributes");
                row
            }));
            match page.next_records_url.filter(|u| !u.trim().is_empty()) {
                Some(url) if page.done != Some(true) => {
                    let path = crate::engine::path_of(url.trim())
                        .ok_or_else(|| decode(format!("nextRecordsUrl `{url}` is not a path")))?;
                    request = Request::get(path);
                }
                _ => return Ok(rows),
            }
        }
        Err(decode(format!("more than {MAX_PAGES} pages")))
    }
}
