//! Requests and responses: what callers send through the session and what they get back.

use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{ApiError, Error};

/// HTTP methods the connector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    pub(crate) fn to_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

/// One API request, relative to the org's instance.
///
/// `path` is either relative to the versioned data API (`sobjects/Account/describe` →
/// `{instance}/services/data/v62.0/sobjects/Account/describe`) or an absolute path on the instance
/// (`/services/data/v62.0/query/01g...-2000`, as `nextRecordsUrl` gives it). Query parameters are
/// form-encoded (a space becomes `+`, a `+` becomes `%2B`).
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Bytes>,
    pub(crate) idempotent: bool,
    /// Sent even past the `api_budget` (`Request::past_budget`).
    pub(crate) past_budget: bool,
}

impl Request {
    /// A request with no body. GET, PATCH and DELETE count as idempotent, POST does not.
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            idempotent: method != Method::Post,
            past_budget: false,
        }
    }

    /// Marks a request sent even once the config's `api_budget` is used up: cleaning up after
    /// this connector (deleting or aborting its own Bulk jobs), one call each, which costs less
    /// than what it leaves behind. The org's own daily limit still refuses it.
    pub fn past_budget(mut self) -> Request {
        self.past_budget = true;
        self
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::Get, path)
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Request {
        Request::new(Method::Delete, path)
    }

    /// A request with a JSON body.
    pub fn json(method: Method, path: impl Into<String>, body: &serde_json::Value) -> Request {
        let mut req = Request::new(method, path);
        req.body = Some(Bytes::from(body.to_string()));
        req.headers
            .push(("content-type".to_string(), "application/json".to_string()));
        req
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Request {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Declares whether the request may be sent twice (e.g. a POST of read-only composite
    /// subrequests is). Timeouts are retried only for idempotent requests.
    pub fn idempotent(mut self, idempotent: bool) -> Request {
        self.idempotent = idempotent;
        self
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The path as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query parameters.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// What to call this request in errors and logs: method and path, never the query string.
    pub fn operation(&self) -> String {
        format!("{} {}", self.method.as_str(), self.path)
    }

    /// The URL of this request on the instance `base`: paths starting with `/` are absolute on
    /// the instance, others relative to the versioned data API `data_path`. A path that would
    /// leave the instance is refused: the bearer token goes only to the host it was issued for.
    pub(crate) fn url_on(&self, base: &Url, data_path: &str) -> Result<Url, Error> {
        let path = if self.path.starts_with('/') {
            self.path.clone()
        } else {
            format!("{data_path}/{}", self.path)
        };
        let url = base.join(&path).map_err(|e| Error::InvalidRequest {
            operation: self.operation(),
            message: format!("the path is not a URL: {e}"),
        })?;
        if url.host() != base.host() || url.port_or_known_default() != base.port_or_known_default()
        {
            return Err(Error::InvalidRequest {
                operation: self.operation(),
                message: "the path names another host; refusing to send the token there"
                    .to_string(),
            });
        }
        Ok(url)
    }
}

/// Response headers, names lower-cased.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub(crate) fn from_reqwest(map: &reqwest::header::HeaderMap) -> Headers {
        Headers(
            map.iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
        )
    }

    /// The first value of header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A successful response whose body has not been read yet: read it whole or as a byte stream.
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Headers,
    pub(crate) operation: String,
    pub(crate) inner: reqwest::Response,
}

/// Method and path, status and headers: not the URL, whose query string (a SOQL filter's values,
/// a locator) may be personal data, as in every message of this crate.
impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("operation", &self.operation)
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// A boxed stream of body chunks.
pub type ByteStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

impl Response {
    /// HTTP status (2xx).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The whole body (gzip already undone).
    pub async fn bytes(self) -> Result<Bytes, Error> {
        let operation = self.operation;
        self.inner
            .bytes()
            .await
            .map_err(|e| network_error(&operation, &e))
    }

    /// The whole body, refused past `max` bytes (an answer read at once is JSON: one that large
    /// is not Salesforce's, and would take the memory of the process) or past `within` (a
    /// server trickling bytes passes the read timeout forever).
    pub async fn bytes_within(self, max: usize, within: Option<Duration>) -> Result<Bytes, Error> {
        let operation = self.operation.clone();
        let timed_out = self.operation.clone();
        let read = async move {
            let mut chunks = self.bytes_stream();
            let mut body: Vec<u8> = Vec::new();
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                if body.len().saturating_add(chunk.len()) > max {
                    return Err(Error::Decode {
                        operation: operation.clone(),
                        message: format!("the answer is larger than {max} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Bytes::from(body))
        };
        match within {
            None => read.await,
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(result) => result,
                Err(_) => Err(Error::Network {
                    operation: timed_out,
                    message: format!(
                        "timed out: the answer did not arrive whole within {} s",
                        limit.as_secs()
                    ),
                    timeout: true,
                }),
            },
        }
    }

    /// The body as it arrives, chunk by chunk (gzip already undone).
    pub fn bytes_stream(self) -> ByteStream {
        let operation = self.operation;
        Box::pin(
            self.inner
                .bytes_stream()
                .map(move |chunk| chunk.map_err(|e| network_error(&operation, &e))),
        )
    }
}

/// A successful response read whole.
#[derive(Debug, Clone)]
pub struct FullResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// Response headers.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
    pub(crate) operation: String,
}

impl FullResponse {
    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            operation: self.operation.clone(),
            message: e.to_string(),
        })
    }
}

pub(crate) fn network_error(operation: &str, e: &reqwest::Error) -> Error {
    // The URL can carry a query string: errors name the method and path only.
    let timeout = e.is_timeout();
    let mut message = describe_reqwest(e);
    if timeout && !message.contains("timed out") {
        message = format!("timed out ({message})");
    }
    Error::Network {
        operation: operation.to_string(),
        message,
        timeout,
    }
}

pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = current {
        let part = err.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        current = err.source();
    }
    // reqwest prints "error sending request for url (...)": strip any URL it names.
    strip_urls(&text)
}

/// `text` with each URL reqwest put in it, `(http...)`, cut to its origin (scheme, host and
/// port: where the request went, which a user can check against `login_url`), its path and
/// query (which may carry a SOQL query or a token) and any user info dropped.
fn strip_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("(http") {
        let before = &rest[..pos];
        // The URL runs to the next whitespace (a `)` may sit inside its path or query), less the
        // closing `)` and a `:` after it.
        let tail = &rest[pos + 1..];
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let (token, after) = tail.split_at(end);
        let colon = token.ends_with(':');
        let url = token.trim_end_matches(':');
        let url = url.strip_suffix(')').unwrap_or(url);
        let origin = url::Url::parse(url)
            .ok()
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null");
        match (before.strip_suffix("for url "), origin) {
            (Some(lead), Some(origin)) => {
                out.push_str(lead);
                out.push_str("to ");
                out.push_str(&origin);
            }
            (None, Some(origin)) => {
                out.push_str(before);
                out.push('(');
                out.push_str(&origin);
                out.push(')');
            }
            (_, None) => out.push_str(before),
        }
        rest = match after.strip_prefix(" :") {
            Some(a) => {
                out.push(':');
                a
            }
            None => {
                if colon {
                    out.push(':');
                }
                after
            }
        };
    }
    out.push_str(rest);
    out.replace("  ", " ").trim().to_string()
}

/// A redirect (3xx) answering a token request, which is not followed (the form carries the
/// credentials): the error names the status and where the redirect points, by its scheme, host
/// and port only (a path or query may carry anything).
pub(crate) fn redirect_error(operation: &str, response: &reqwest::Response) -> Error {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map_or_else(
            || "nowhere (no Location header)".to_string(),
            |to| match response.url().join(to.trim()) {
                Ok(url) => match (url.host_str(), url.port()) {
                    (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
                    (Some(host), None) => format!("{}://{host}", url.scheme()),
                    (None, _) => "an address without a host".to_string(),
                },
                Err(_) => "an address that is not a URL".to_string(),
            },
        );
    Error::Redirected {
        operation: operation.to_string(),
        status: response.status().as_u16(),
        location,
    }
}

/// How large an error body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Salesforce's error answer: the status and the start of the body (at most 64 KiB), parsed.
/// What has arrived within `within` is all there is: a server trickling an error body a byte
/// now and then would pass the read timeout forever.
///
/// Every occurrence of each of `secrets` in the body is replaced by `***` before anything of it is
/// kept: a page echoing the request it refused (a proxy's, a firewall's) shows none of them, not
/// even the start of one cut at the end of what is kept.
pub(crate) async fn api_error<S: AsRef<str>>(
    response: reqwest::Response,
    within: Option<Duration>,
    secrets: &[S],
) -> ApiError {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    let _complete = read_body(response, &mut body, MAX_ERROR_BODY, within).await;
    let text = String::from_utf8_lossy(&body);
    let clean = crate::redact::redact(&text, secrets);
    ApiError::from_body(status, clean.as_bytes()).redacted(secrets)
}

/// How a body read by [`read_body`] ended short of its end.
#[derive(Debug)]
pub(crate) enum BodyCut {
    /// `max` bytes were read and there were more.
    TooLarge,
    /// The body did not arrive whole within the time allowed.
    TimedOut,
    /// The connection failed while the body arrived.
    Broken(reqwest::Error),
}

/// Reads `response`'s body into `body`, up to `max` bytes (what is past it is left unread)
/// and within `within`; `Ok` when the body came whole.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    body: &mut Vec<u8>,
    max: usize,
    within: Option<Duration>,
) -> Result<(), BodyCut> {
    let read = async {
        loop {
            match response.chunk().await {
                Ok(None) => return Ok(()),
                Ok(Some(chunk)) => {
                    let room = max.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if chunk.len() > room {
                        return Err(BodyCut::TooLarge);
                    }
                }
                Err(e) => return Err(BodyCut::Broken(e)),
            }
        }
    };
    match within {
        None => read.await,
        Some(limit) => tokio::time::timeout(limit, read)
            .await
            .unwrap_or(Err(BodyCut::TimedOut)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_stripped_from_network_messages() {
        // The origin stays (where the request went), the path and query go.
        assert_eq!(
            strip_urls("error sending request for url (http://127.0.0.1:1/services/data/v62.0/query?q=SELECT) : boom"),
            "error sending request to http://127.0.0.1:1: boom"
        );
        assert_eq!(
            strip_urls("redirected (https://user:pw@acme.my.salesforce.com/x?token=abc) twice"),
            "redirected (https://acme.my.salesforce.com) twice"
        );
        assert_eq!(strip_urls("odd (http not a url) end"), "odd not a url) end");
        // A `)` inside the URL lets none of its path or query through.
        assert_eq!(
            strip_urls(
                "error sending request for url (https://h.example/x/a)b?token=SECRET): boom"
            ),
            "error sending request to https://h.example: boom"
        );
        assert_eq!(strip_urls("no url here"), "no url here");
    }

    #[test]
    fn request_paths_and_operations() {
        let r = Request::get("query").query("q", "SELECT Id FROM Account");
        assert_eq!(r.operation(), "GET query");
        assert!(r.idempotent);
        let r = Request::json(Method::Post, "jobs/query", &serde_json::json!({}));
        assert!(!r.idempotent);
        assert!(r.clone().idempotent(true).idempotent);
    }
}
