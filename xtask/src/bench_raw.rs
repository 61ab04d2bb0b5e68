//! The limit the connector is measured against: the same Bulk result pages downloaded by a client
//! that does no parsing (bytes to nowhere), and the same bytes parsed by the bare `csv` crate.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench_http::{self, form_encode};
use crate::bench_proc::Org;

/// The API version the connector uses by default.
const API: &str = "/services/data/v62.0";
/// The results page size the connector asks for (`sf-bulk`'s default `maxRecords`).
pub const MAX_RECORDS: u64 = 100_000;

/// A raw download of one Bulk job's result pages.
#[derive(Debug, Default)]
pub struct RawDownload {
    /// Seconds from the first results request to the end of the last page.
    pub seconds: f64,
    /// Bytes received (compressed when gzip was asked for).
    pub bytes: u64,
    /// Pages read.
    pub pages: u64,
    /// Rows, as `Sforce-NumberOfRecords` announced them.
    pub rows: u64,
    /// The pages' bytes, when asked to keep them.
    pub kept: Vec<Vec<u8>>,
}

/// Logs in with the org's refresh token; returns an access token.
pub fn login(org: &Org) -> Result<String> {
    let l = &org.login;
    let field = |k: &str| form_encode(l[k].as_str().unwrap_or_default());
    let form = format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
        field("client_id"),
        field("client_secret"),
        field("refresh_token")
    );
    let answer = bench_http::send(
        org.authority(),
        "POST",
        "/services/oauth2/token",
        &[],
        Some(("application/x-www-form-urlencoded", form.as_bytes())),
    )?
    .json()
    .context("login failed")?;
    answer["access_token"]
        .as_str()
        .map(str::to_string)
        .context("the token answer has no access_token")
}

/// Creates a `queryAll` Bulk job for `soql`, waits for it, downloads every results page
/// (`maxRecords` as the connector asks, `Accept-Encoding: gzip` when `gzip`), then deletes the
/// job. Only the download is timed.
pub fn download(org: &Org, token: &str, soql: &str, gzip: bool, keep: bool) -> Result<RawDownload> {
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let id = create_job(org, &auth, soql)?;
    wait_complete(
        org,
        &auth,
        &id,
        Duration::from_millis(2),
        "the raw download's",
    )?;
    let mut out = RawDownload::default();
    let mut headers: Vec<(&str, &str)> = auth.to_vec();
    if gzip {
        headers.push(("Accept-Encoding", "gzip"));
    }
    let started = Instant::now();
    let mut locator: Option<String> = None;
    loop {
        let mut path = format!("{API}/jobs/query/{id}/results?maxRecords={MAX_RECORDS}");
        if let Some(l) = &locator {
            path.push_str("&locator=");
            path.push_str(&form_encode(l));
        }
        let response = bench_http::send(org.authority(), "GET", &path, &headers, None)?;
        if response.status != 200 {
            let status = response.status;
            bail!("results page: HTTP {status}: {}", response.text()?);
        }
        let rows: u64 = response
            .header("sforce-numberofrecords")
            .and_then(|v| v.parse().ok())
            .context("a results page without Sforce-NumberOfRecords")?;
        let next = response.header("sforce-locator").map(str::to_string);
        let mut page = Vec::new();
        out.bytes += response.read_body(&mut |b| {
            if keep {
                page.extend_from_slice(b);
            }
        })?;
        if keep {
            out.kept.push(page);
        }
        out.rows += rows;
        out.pages += 1;
        match next {
            Some(l) if !l.is_empty() && l != "null" => locator = Some(l),
            _ => break,
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    delete_job(org, &auth, &id);
    Ok(out)
}

/// The minimal client's whole job: created, polled, downloaded.
#[derive(Debug, Default, Clone)]
pub struct JobWait {
    /// Seconds from just before the job's creation request to the last byte of the last page.
    pub seconds: f64,
    /// Seconds from the creation request to the poll that saw the job complete.
    pub seen_secs: f64,
    /// Polls of the job's state.
    pub polls: u64,
    /// Result pages downloaded.
    pub pages: u64,
    /// Bytes received (gzip, as the connector asks).
    pub bytes: u64,
    /// Rows, as `Sforce-NumberOfRecords` announced them.
    pub rows: u64,
}

/// What the minimal client of the job-wait case does, timed from job creation to the last byte:
/// creates a `queryAll` job for `soql`, polls its state every `poll_every` (first poll one
/// interval after creation), lists its result pages through `resultPages` (API 58.0+, five URLs
/// an answer) and downloads them `width` at a time on threads of its own (each page
/// `maxRecords` as the connector asks, gzip, bytes to nowhere), then deletes the job (not timed).
pub fn job_wait(
    org: &Org,
    token: &str,
    soql: &str,
    poll_every: Duration,
    width: usize,
) -> Result<JobWait> {
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let started = Instant::now();
    let id = create_job(org, &auth, soql)?;
    let mut out = JobWait {
        polls: wait_complete(org, &auth, &id, poll_every, "the minimal client's")?,
        ..JobWait::default()
    };
    out.seen_secs = started.elapsed().as_secs_f64();
    let mut urls = Vec::new();
    let mut listing = Some(format!(
        "{API}/jobs/query/{id}/resultPages?maxRecords={MAX_RECORDS}"
    ));
    while let Some(path) = listing.take() {
        let answer = bench_http::send(org.authority(), "GET", &path, &auth, None)?.json()?;
        for page in answer["resultPages"].as_array().into_iter().flatten() {
            let url = page["resultUrl"]
                .as_str()
                .context("a result page without resultUrl")?;
            let sep = if url.contains('?') { '&' } else { '?' };
            urls.push(format!("{url}{sep}maxRecords={MAX_RECORDS}"));
        }
        if answer["done"] != true {
            listing = answer["nextRecordsUrl"].as_str().map(str::to_string);
        }
    }
    let queue = std::sync::Mutex::new(urls.into_iter());
    let mut headers: Vec<(&str, &str)> = auth.to_vec();
    headers.push(("Accept-Encoding", "gzip"));
    let totals: Vec<Result<(u64, u64, u64)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..width.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<(u64, u64, u64)> {
                    let (mut pages, mut bytes, mut rows) = (0, 0, 0);
                    loop {
                        let next = queue
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .next();
                        let Some(path) = next else {
                            return Ok((pages, bytes, rows));
                        };
                        let response =
                            bench_http::send(org.authority(), "GET", &path, &headers, None)?;
                        if response.status != 200 {
                            let status = response.status;
                            bail!("results page: HTTP {status}: {}", response.text()?);
                        }
                        rows += response
                            .header("sforce-numberofrecords")
                            .and_then(|v| v.parse::<u64>().ok())
                            .context("a results page without Sforce-NumberOfRecords")?;
                        bytes += response.read_body(&mut |_| {})?;
                        pages += 1;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a page thread panicked")))
            })
            .collect()
    });
    for total in totals {
        let (pages, bytes, rows) = total?;
        out.pages += pages;
        out.bytes += bytes;
        out.rows += rows;
    }
    out.seconds = started.elapsed().as_secs_f64();
    delete_job(org, &auth, &id);
    Ok(out)
}

/// Parses CSV pages (each with its header row) with the bare `csv` crate, touching every field
/// and typing nothing; returns the seconds taken and the data rows seen.
pub fn bare_parse(pages: &[Vec<u8>]) -> Result<(f64, u64, u64)> {
    let started = Instant::now();
    let mut rows = 0u64;
    let mut field_bytes = 0u64;
    let mut record = csv::ByteRecord::new();
    for page in pages {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(page.as_slice());
        while reader.read_byte_record(&mut record)? {
            rows += 1;
            field_bytes += record.as_slice().len() as u64;
        }
    }
    Ok((started.elapsed().as_secs_f64(), rows, field_bytes))
}

/// Deletes job `id`, best effort (the org forgets it at exit anyway).
fn delete_job(org: &Org, auth: &[(&str, &str)], id: &str) {
    let _ = bench_http::send(
        org.authority(),
        "DELETE",
        &format!("{API}/jobs/query/{id}"),
        auth,
        None,
    )
    .and_then(|r| r.read_body(&mut |_| {}));
}

/// Polls job `id` every `every` (sleeping first) until it is complete; the polls sent. `who`
/// names the client in errors.
fn wait_complete(
    org: &Org,
    auth: &[(&str, &str)],
    id: &str,
    every: Duration,
    who: &str,
) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut polls = 0;
    loop {
        std::thread::sleep(every);
        polls += 1;
        let info: Value = bench_http::send(
            org.authority(),
            "GET",
            &format!("{API}/jobs/query/{id}"),
            auth,
            None,
        )?
        .json()?;
        match info["state"].as_str() {
            Some("JobComplete") => return Ok(polls),
            Some("Failed") | Some("Aborted") => bail!("{who} job ended {info}"),
            _ if Instant::now() > deadline => bail!("{who} job never completed"),
            _ => {}
        }
    }
}

/// Creates a `queryAll` Bulk job for `soql` (CSV, comma, LF, as the connector asks); its id.
fn create_job(org: &Org, auth: &[(&str, &str)], soql: &str) -> Result<String> {
    let body = json!({
        "operation": "queryAll",
        "query": soql,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    })
    .to_string();
    let job = bench_http::send(
        org.authority(),
        "POST",
        &format!("{API}/jobs/query"),
        auth,
        Some(("application/json", body.as_bytes())),
    )?
    .json()
    .context("creating the Bulk job")?;
    Ok(job["id"].as_str().context("the job has no id")?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_parse_counts_rows_of_every_page_without_headers() {
        let pages = vec![
            b"\"Id\",\"Name\"\n\"001\",\"a, \"\"quoted\"\"\nline\"\n\"002\",\"\"\n".to_vec(),
            b"\"Id\",\"Name\"\n\"003\",\"c\"\n".to_vec(),
            b"\"Id\",\"Name\"\n".to_vec(),
        ];
        let (_, rows, field_bytes) = bare_parse(&pages).unwrap();
        assert_eq!(rows, 3);
        // 001 + a, "quoted"\nline + 002 + 003 + c
        assert_eq!(field_bytes, 3 + 16 + 3 + 3 + 1);
        assert!(bare_parse(&[b"\"a\"\n\"1\",\"2\"\n".to_vec()]).is_err());
    }
}
