//! A finished job's results as Salesforce sends them: one CSV page at a time, its bytes
//! unparsed, for a caller that keeps or parses the CSV itself rather than taking typed records.

use sf_auth::{ByteStream, Request};

use crate::error::Error;
use crate::job::{check_job_id, BulkClient};
use crate::run::is_last;

/// One page of a job's results (`GET jobs/query/{id}/results`), its body unread.
pub struct RawPage {
    /// The rows the page holds, as `Sforce-NumberOfRecords` announces them (`None` when the
    /// header is absent).
    pub records: Option<u64>,
    /// The locator of the next page; `None` after the last (`Sforce-Locator: null`).
    pub next_locator: Option<String>,
    /// The CSV (gzip already undone), header row first, as it arrives.
    pub body: ByteStream,
}

impl std::fmt::Debug for RawPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPage")
            .field("records", &self.records)
            .field("next_locator", &self.next_locator)
            .finish_non_exhaustive()
    }
}

impl BulkClient {
    /// The results page of finished job `job_id` at `locator` (the first page with `None`),
    /// with `BulkConfig::max_records` rows at most. Loop on [`RawPage::next_locator`] until it
    /// is `None`. Nothing is checked against the job's count, and the job is not deleted:
    /// [`BulkClient::query`] does both for typed records; here the caller deletes the job
    /// ([`BulkClient::delete`]) once it has what it needs. A page whose next locator is its own
    /// is an error (`ResultsInvalid`), so a loop on it ends.
    pub async fn results_page(
        &self,
        job_id: &str,
        locator: Option<&str>,
    ) -> Result<RawPage, Error> {
        check_job_id(job_id)?;
        let mut request =
            Request::get(format!("jobs/query/{job_id}/results")).header("accept", "text/csv");
        if let Some(max) = self.inner.config.max_records {
            request = request.query("maxRecords", max.to_string());
        }
        if let Some(locator) = locator {
            request = request.query("locator", locator);
        }
        let response =
            self.inner
                .session
                .send(request)
                .await
                .map_err(|source| Error::ResultsRequest {
                    job_id: job_id.to_string(),
                    locator: locator.map(str::to_string),
                    source: Box::new(source),
                })?;
        let protocol = |message: String| Error::ResultsProtocol {
            job_id: job_id.to_string(),
            locator: locator.map(str::to_string),
            message,
        };
        let records = match response.header("sforce-numberofrecords") {
            None => None,
            Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                protocol(format!(
                    "Sforce-NumberOfRecords `{text}` is not a row count"
                ))
            })?),
        };
        let next_locator = response
            .header("sforce-locator")
            .map(str::trim)
            .filter(|l| !is_last(l))
            .map(str::to_string);
        if next_locator.is_some() && next_locator.as_deref() == locator {
            return Err(protocol(
                "Sforce-Locator names the page just requested again".to_string(),
            ));
        }
        Ok(RawPage {
            records,
            next_locator,
            body: response.bytes_stream(),
        })
    }
}
