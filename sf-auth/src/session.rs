//! The authenticated session: every request to Salesforce goes through [`Session`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::{watch, Mutex};
use url::Url;

use crate::config::{check_scheme, Grant, SessionConfig};
use crate::error::{ApiError, Error, ErrorKind, LoginFailure};
use crate::lock::{read_lock, write_lock};
use crate::secret::Secret;
use crate::usage::{parse_limit_info, ApiUsage, Limits, UsageTracker};

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
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn to_reqwest(self) -> reqwest::Method {
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
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
    idempotent: bool,
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
        }
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
}

/// Response headers, names lower-cased.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    fn from_reqwest(map: &reqwest::header::HeaderMap) -> Headers {
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
#[derive(Debug)]
pub struct Response {
    status: u16,
    headers: Headers,
    operation: String,
    inner: reqwest::Response,
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
    operation: String,
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

fn network_error(operation: &str, e: &reqwest::Error) -> Error {
    // `without_url`: the URL can carry a query string; keep errors to method and path.
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

fn describe_reqwest(e: &reqwest::Error) -> String {
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

fn strip_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("(http") {
        out.push_str(&rest[..pos]);
        match rest[pos..].find(')') {
            Some(end) => rest = &rest[pos + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("  ", " ").trim().to_string()
}

#[derive(Deserialize)]
struct TokenWire {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    refresh_token: Option<String>,
    /// The identity URL, `https://{login host}/id/{orgId}/{userId}`.
    #[serde(default)]
    id: Option<String>,
}

/// The org id (the first 15 characters: the 18-character form adds a checksum) from an identity
/// URL `.../id/{orgId}/{userId}`.
fn org_id_of(identity_url: &str) -> Option<String> {
    let mut parts = identity_url.trim_end_matches('/').rsplit('/');
    let _user = parts.next()?;
    let org = parts.next()?;
    let marker = parts.next()?;
    (marker == "id" && org.len() >= 15 && org.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| org[..15].to_string())
}

/// A renewal that failed: requests that saw the same expired token get its error instead of
/// logging in again, one after another, each with a full retry budget.
struct FailedRenewal {
    generation: u64,
    at: std::time::Instant,
    error: Error,
}

/// How long a renewal that failed for a transient reason answers for its generation. A refused
/// grant (wrong or revoked credentials) answers for good: retrying cannot fix it.
const FAILED_RENEWAL_TTL: Duration = Duration::from_secs(10);

struct Token {
    access: Secret,
    instance_url: Url,
    generation: u64,
    org_id: Option<String>,
}

struct Inner {
    http: reqwest::Client,
    config: SessionConfig,
    token: RwLock<Token>,
    refresh_token: RwLock<Option<Secret>>,
    refresh_lock: Mutex<()>,
    /// The last renewal that failed, shared with every request waiting on the same generation.
    failed_renewal: std::sync::Mutex<Option<FailedRenewal>>,
    logins: AtomicU64,
    /// API requests sent (token requests not included), retries and replays included.
    requests: AtomicU64,
    usage: UsageTracker,
    rotation: watch::Sender<Option<Secret>>,
    /// Org clock minus local clock, in milliseconds, from the last `Date` header.
    clock_skew_ms: AtomicI64,
    clock_known: std::sync::atomic::AtomicBool,
    rng: AtomicU64,
}

/// The one authenticated session every crate sends its requests through.
///
/// It logs in with the configured grant, sends every call to the org's `instance_url` with the
/// bearer token, renews the token once on a 401 (single-flight: concurrent 401s cause one login),
/// retries transient failures with exponential backoff and jitter, tracks API usage from
/// `Sforce-Limit-Info`, and enforces the API budget. Cloning is cheap and shares all of it.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("instance_url", &self.instance_url())
            .field("api_version", &self.inner.config.api_version)
            .field("access_token", &"***")
            .finish()
    }
}

/// How large an error body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;

impl Session {
    /// Logs in and returns the session.
    pub async fn login(config: SessionConfig) -> Result<Session, Error> {
        let mut builder = reqwest::Client::builder()
            .gzip(true)
            .pool_idle_timeout(config.pool_idle_timeout)
            .user_agent(concat!("sfconnect/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = config.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        if let Some(t) = config.read_timeout {
            builder = builder.read_timeout(t);
        }
        let http = builder.build().map_err(|e| Error::Network {
            operation: "building the HTTP client".to_string(),
            message: describe_reqwest(&e),
            timeout: false,
        })?;
        let refresh_token = config.credentials.refresh_token.clone();
        if config.grant == Grant::RefreshToken
            && refresh_token.as_ref().is_none_or(Secret::is_empty)
        {
            return Err(Error::Login {
                failure: LoginFailure::AuthenticationFailure,
                api: ApiError {
                    status: 0,
                    error_code: Some("invalid_request".to_string()),
                    message: "no refresh_token in the config; the refresh_token grant needs one"
                        .to_string(),
                    fields: Vec::new(),
                },
            });
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
        let (rotation, _) = watch::channel(None);
        let placeholder = Token {
            access: Secret::new(""),
            instance_url: config.login_url.token_url(),
            generation: 0,
            org_id: None,
        };
        let session = Session {
            inner: Arc::new(Inner {
                http,
                config,
                token: RwLock::new(placeholder),
                refresh_token: RwLock::new(refresh_token),
                refresh_lock: Mutex::new(()),
                failed_renewal: std::sync::Mutex::new(None),
                logins: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                usage: UsageTracker::default(),
                rotation,
                clock_skew_ms: AtomicI64::new(0),
                clock_known: std::sync::atomic::AtomicBool::new(false),
                rng: AtomicU64::new(seed),
            }),
        };
        session.refresh_if_generation(0).await?;
        Ok(session)
    }

    /// The org's instance URL, e.g. `https://acme.my.salesforce.com` (no trailing slash).
    pub fn instance_url(&self) -> String {
        self.read_token(|t| t.instance_url.as_str().trim_end_matches('/').to_string())
    }

    /// The org's id (15 characters), from the identity URL of the token answer, when it names
    /// one. It tells one org's state from another's.
    pub fn org_id(&self) -> Option<String> {
        self.read_token(|t| t.org_id.clone())
    }

    /// The REST API version, e.g. `62.0`.
    pub fn api_version(&self) -> &str {
        &self.inner.config.api_version
    }

    /// The versioned data API path, e.g. `/services/data/v62.0`.
    pub fn data_path(&self) -> String {
        format!("/services/data/v{}", self.inner.config.api_version)
    }

    /// The last reported daily API usage, if any response has reported it yet.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        self.inner.usage.get()
    }

    /// How many logins (initial and renewals) this session has made.
    pub fn login_count(&self) -> u64 {
        self.inner.logins.load(Ordering::Relaxed)
    }

    /// How many HTTP requests to the API this session has sent (each retry and replay counts;
    /// logins do not), whatever else the org serves. Salesforce's daily limit may charge more: each
    /// subrequest of a `composite/batch` call counts there.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// The refresh token now in force (a rotated one after rotation).
    pub fn refresh_token(&self) -> Option<Secret> {
        self.inner
            .refresh_token
            .read()
            .ok()
            .and_then(|guard| guard.clone())
    }

    /// Watches refresh-token rotation: the value becomes `Some(new token)` each time Salesforce
    /// issues a different refresh token, which the caller must persist.
    pub fn subscribe_rotation(&self) -> watch::Receiver<Option<Secret>> {
        self.inner.rotation.subscribe()
    }

    /// The org's current time, from the last `Date` header seen (local time if none yet).
    pub fn org_now(&self) -> chrono::DateTime<chrono::Utc> {
        let skew = self.inner.clock_skew_ms.load(Ordering::Relaxed);
        chrono::Utc::now() + chrono::Duration::milliseconds(skew)
    }

    /// True once a response has told the org's time.
    pub fn org_clock_known(&self) -> bool {
        self.inner.clock_known.load(Ordering::Relaxed)
    }

    /// `GET limits`.
    pub async fn limits(&self) -> Result<Limits, Error> {
        let all = self.get_json("limits", &[]).await?;
        Limits::from_json(all).map_err(|message| Error::Decode {
            operation: "GET limits".to_string(),
            message,
        })
    }

    /// `GET path` with query parameters, parsed as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, Error> {
        let mut req = Request::get(path);
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        self.fetch(req).await?.json()
    }

    /// Sends a request and reads the whole body; a body cut off in transit is retried like any
    /// transient failure (for idempotent requests).
    pub async fn fetch(&self, req: Request) -> Result<FullResponse, Error> {
        let mut retry = 0;
        loop {
            let response = self.send(req.clone()).await?;
            let status = response.status;
            let headers = response.headers.clone();
            let operation = response.operation.clone();
            match response.bytes().await {
                Ok(body) => {
                    return Ok(FullResponse {
                        status,
                        headers,
                        body,
                        operation,
                    })
                }
                Err(e) if req.idempotent && retry < self.inner.config.retry.max_retries => {
                    tracing::warn!(operation = %operation, retry, error = %e, "ApiResponseBodyFailed");
                    self.sleep_backoff(retry, None).await;
                    retry += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a request: renews the token once on a 401, retries transient failures, and returns
    /// the response once its status is a success, with the body still unread.
    pub async fn send(&self, req: Request) -> Result<Response, Error> {
        let operation = req.operation();
        let mut retry: u32 = 0;
        let mut renewed = false;
        loop {
            self.check_budget()?;
            // Token and instance are read together on every attempt: a renewal may move the org
            // to another instance, and the replay must follow it.
            let (generation, token, base) =
                self.read_token(|t| (t.generation, t.access.clone(), t.instance_url.clone()));
            let url = url_for(&base, &req, &self.data_path())?;
            let mut builder = self
                .inner
                .http
                .request(req.method.to_reqwest(), url.clone())
                .bearer_auth(token.expose());
            if !req.query.is_empty() {
                builder = builder.query(&req.query);
            }
            for (k, v) in &req.headers {
                builder = builder.header(k.as_str(), v.as_str());
            }
            if let Some(body) = &req.body {
                builder = builder.body(body.clone());
            }
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            let answer = builder.send().await;
            let response = match answer {
                Ok(r) => r,
                Err(e) => {
                    let err = network_error(&operation, &e);
                    let retryable = e.is_connect() || req.idempotent;
                    if retryable && retry < self.inner.config.retry.max_retries {
                        tracing::warn!(operation = %operation, retry, error = %err, "ApiRequestFailed");
                        self.sleep_backoff(retry, None).await;
                        retry += 1;
                        continue;
                    }
                    return Err(err);
                }
            };
            self.observe(response.headers());
            let status = response.status().as_u16();
            if response.status().is_success() {
                return Ok(Response {
                    status,
                    headers: Headers::from_reqwest(response.headers()),
                    operation,
                    inner: response,
                });
            }
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = read_capped(response, MAX_ERROR_BODY).await;
            let api = ApiError::from_body(status, &body);
            if status == 401 && !renewed {
                tracing::info!(operation = %operation, "SessionExpired");
                renewed = true;
                self.refresh_if_generation(generation).await?;
                continue;
            }
            let kind = api.kind();
            let retryable = matches!(kind, ErrorKind::Transient | ErrorKind::ConcurrentLimit);
            if retryable && retry < self.inner.config.retry.max_retries {
                tracing::warn!(operation = %operation, retry, status, error_code = ?api.error_code, "ApiRequestFailed");
                self.sleep_backoff(retry, retry_after).await;
                retry += 1;
                continue;
            }
            return Err(Error::Api { operation, api });
        }
    }

    fn read_token<R>(&self, f: impl FnOnce(&Token) -> R) -> R {
        f(&read_lock(&self.inner.token))
    }

    fn check_budget(&self) -> Result<(), Error> {
        let (Some(share), Some(usage)) = (self.inner.config.api_budget, self.inner.usage.get())
        else {
            return Ok(());
        };
        let budget = (usage.max as f64 * share).floor() as u64;
        if usage.used >= budget {
            return Err(Error::BudgetExhausted {
                used: usage.used,
                max: usage.max,
                budget,
            });
        }
        Ok(())
    }

    fn observe(&self, headers: &reqwest::header::HeaderMap) {
        if let Some(usage) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_limit_info)
        {
            self.inner.usage.record(usage);
        }
        if let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        {
            let skew = date.timestamp_millis() - chrono::Utc::now().timestamp_millis();
            // The header has one-second resolution: ignore sub-second noise.
            let skew = if skew.abs() < 1000 { 0 } else { skew };
            self.inner.clock_skew_ms.store(skew, Ordering::Relaxed);
            self.inner.clock_known.store(true, Ordering::Relaxed);
        }
    }

    async fn sleep_backoff(&self, retry: u32, at_least: Option<Duration>) {
        let unit = self.next_unit();
        let mut wait = self.inner.config.retry.backoff(retry, unit);
        if let Some(floor) = at_least {
            wait = wait.max(floor.min(self.inner.config.retry.max_backoff));
        }
        tokio::time::sleep(wait).await;
    }

    fn next_unit(&self) -> f64 {
        // xorshift64: jitter needs spread, not cryptographic quality.
        let mut x = self.inner.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.inner.rng.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Logs in again unless another task already did since `generation` was current.
    async fn refresh_if_generation(&self, generation: u64) -> Result<(), Error> {
        let _guard = self.inner.refresh_lock.lock().await;
        if self.read_token(|t| t.generation) != generation {
            return Ok(());
        }
        if let Some(error) = self.failed_renewal_of(generation) {
            return Err(error);
        }
        let token = match self.request_token().await {
            Ok(token) => token,
            Err(error) => {
                if let Ok(mut slot) = self.inner.failed_renewal.lock() {
                    *slot = Some(FailedRenewal {
                        generation,
                        at: std::time::Instant::now(),
                        error: error.clone(),
                    });
                }
                return Err(error);
            }
        };
        let instance_url = Url::parse(token.instance_url.trim()).map_err(|e| Error::Decode {
            operation: "POST /services/oauth2/token".to_string(),
            message: format!("instance_url is not a URL: {e}"),
        })?;
        check_scheme(&instance_url).map_err(|reason| Error::Decode {
            operation: "POST /services/oauth2/token".to_string(),
            message: format!("refusing instance_url: {reason}"),
        })?;
        if let Some(new) = token.refresh_token.filter(|t| !t.is_empty()) {
            let new = Secret::new(new);
            let changed = self.refresh_token().as_ref() != Some(&new);
            if changed {
                if let Ok(mut guard) = self.inner.refresh_token.write() {
                    *guard = Some(new.clone());
                }
                tracing::info!("RefreshTokenRotated");
                self.inner.rotation.send_replace(Some(new));
            }
        }
        *write_lock(&self.inner.token) = Token {
            access: Secret::new(token.access_token),
            instance_url,
            generation: generation + 1,
            org_id: token.id.as_deref().and_then(org_id_of),
        };
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!(generation = generation + 1, "SessionLoggedIn");
        Ok(())
    }

    fn failed_renewal_of(&self, generation: u64) -> Option<Error> {
        let slot = self.inner.failed_renewal.lock().ok()?;
        let failed = slot.as_ref()?;
        let permanent = matches!(failed.error, Error::Login { .. });
        (failed.generation == generation && (permanent || failed.at.elapsed() < FAILED_RENEWAL_TTL))
            .then(|| failed.error.clone())
    }

    async fn request_token(&self) -> Result<TokenWire, Error> {
        let config = &self.inner.config;
        let operation = "POST /services/oauth2/token".to_string();
        let creds = &config.credentials;
        let refresh = self.refresh_token();
        let body = token_form(config.grant, creds, refresh.as_ref());
        let mut retry = 0;
        loop {
            let answer = self
                .inner
                .http
                .post(config.login_url.token_url())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body.clone())
                .send()
                .await;
            let response = match answer {
                Ok(r) => r,
                Err(e) => {
                    let err = network_error(&operation, &e);
                    if retry < config.retry.max_retries {
                        tracing::warn!(retry, error = %err, "LoginRequestFailed");
                        self.sleep_backoff(retry, None).await;
                        retry += 1;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = response.status().as_u16();
            if response.status().is_success() {
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| network_error(&operation, &e))?;
                return serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
                    operation,
                    message: format!("token response: {e}"),
                });
            }
            let body = read_capped(response, MAX_ERROR_BODY).await;
            let api = ApiError::from_body(status, &body);
            if (status >= 500 || matches!(status, 406 | 420 | 429))
                && retry < config.retry.max_retries
            {
                tracing::warn!(retry, status, "LoginRequestFailed");
                self.sleep_backoff(retry, None).await;
                retry += 1;
                continue;
            }
            if (400..500).contains(&status) {
                return Err(Error::Login {
                    failure: LoginFailure::from_api(&api),
                    api,
                });
            }
            return Err(Error::Api { operation, api });
        }
    }
}

/// The URL of `req` on the instance `base`: paths starting with `/` are absolute on the instance,
/// others relative to the versioned data API.
fn url_for(base: &Url, req: &Request, data_path: &str) -> Result<Url, Error> {
    let path = if req.path.starts_with('/') {
        req.path.clone()
    } else {
        format!("{data_path}/{}", req.path)
    };
    let url = base.join(&path).map_err(|e| Error::Decode {
        operation: req.operation(),
        message: format!("cannot build a URL from the path: {e}"),
    })?;
    // The bearer token goes only to the instance it was issued for.
    if url.host() != base.host() || url.port_or_known_default() != base.port_or_known_default() {
        return Err(Error::Decode {
            operation: req.operation(),
            message: "the path names another host; refusing to send the token there".to_string(),
        });
    }
    Ok(url)
}

/// The token request's form body (kept out of async code: the serializer is not `Send`).
fn token_form(
    grant: Grant,
    creds: &crate::config::Credentials,
    refresh: Option<&Secret>,
) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    match grant {
        Grant::RefreshToken => {
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("client_id", &creds.client_id);
            form.append_pair("client_secret", creds.client_secret.expose());
            form.append_pair("refresh_token", refresh.map(Secret::expose).unwrap_or(""));
        }
        Grant::ClientCredentials => {
            form.append_pair("grant_type", "client_credentials");
            form.append_pair("client_id", &creds.client_id);
            form.append_pair("client_secret", creds.client_secret.expose());
        }
    }
    form.finish()
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_ids_come_from_identity_urls() {
        assert_eq!(
            org_id_of("https://login.salesforce.com/id/00D5e000001N20QEAS/0055e000003E8ooAAC")
                .as_deref(),
            Some("00D5e000001N20Q")
        );
        assert_eq!(
            org_id_of("https://x/id/00D5e000001N20Q/005").as_deref(),
            Some("00D5e000001N20Q")
        );
        assert_eq!(org_id_of("x"), None);
        assert_eq!(org_id_of("https://x/other/00D5e000001N20QEAS/005"), None);
        assert_eq!(org_id_of("https://x/id/short/005"), None);
    }

    #[test]
    fn urls_are_stripped_from_network_messages() {
        assert_eq!(
            strip_urls("error sending request for url (http://127.0.0.1:1/services/data/v62.0/query?q=SELECT) : boom"),
            "error sending request for url : boom"
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
