//! The authenticated session: every request to Salesforce goes through [`Session`].
//!
//! Token renewal lives in `token`, the one retry loop in `retry`.

mod retry;
mod token;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::{watch, Mutex};

use crate::config::{Grant, SessionConfig};
use crate::error::{ApiError, Error, ErrorKind, LoginFailure};
use crate::request::{api_error, describe_reqwest, network_error, FullResponse, Headers};
use crate::request::{Request, Response};
use crate::secret::Secret;
use crate::usage::{parse_limit_info, ApiUsage, Limits, UsageTracker};
use retry::Attempt;
use token::{FailedRenewal, Token};

struct Inner {
    http: reqwest::Client,
    /// The token request's client: it follows no redirect (`request::redirect_error`).
    token_http: reqwest::Client,
    config: SessionConfig,
    token: RwLock<Token>,
    refresh_token: RwLock<Option<Secret>>,
    refresh_lock: Mutex<()>,
    /// The last renewal that failed, shared with every request waiting on the same generation.
    failed_renewal: std::sync::Mutex<Option<FailedRenewal>>,
    logins: AtomicU64,
    /// API requests sent (token requests not included), retries and replays included.
    requests: AtomicU64,
    /// The same requests by tag, method and path.
    tally: crate::tally::Tally,
    usage: UsageTracker,
    rotation: watch::Sender<Option<Secret>>,
    /// Org clock minus local clock, in milliseconds, from the last `Date` header.
    clock_skew_ms: AtomicI64,
    clock_known: AtomicBool,
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

impl Session {
    /// Logs in and returns the session.
    pub async fn login(config: SessionConfig) -> Result<Session, Error> {
        Session::login_with_rotation(config, watch::channel(None).0).await
    }

    /// As [`Session::login`], handing every rotated refresh token to `rotation` (which
    /// [`Session::subscribe_rotation`] then returns) from the first login on. A caller that
    /// subscribed before calling keeps a token Salesforce rotated even when the login then
    /// fails (an unusable `instance_url` in the same answer, say): the token sent is already
    /// spent, so the new one is the grant.
    pub async fn login_with_rotation(
        config: SessionConfig,
        rotation: watch::Sender<Option<Secret>>,
    ) -> Result<Session, Error> {
        let http = http_client(&config, reqwest::redirect::Policy::default())?;
        // The token form carries the client secret and the refresh token (or a signed
        // assertion): a redirect, to whatever host or scheme, is never followed with it.
        let token_http = http_client(&config, reqwest::redirect::Policy::none())?;
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
        if config.grant == Grant::JwtBearer && config.jwt_bearer.is_none() {
            return Err(Error::InvalidPrivateKey {
                reason: "the JWT bearer grant needs `username` and `private_key`".to_string(),
            });
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
        let placeholder = Token {
            access: Secret::new(""),
            instance_url: config.login_url.token_url(),
            generation: 0,
            org_id: None,
            identity_url: None,
        };
        let session = Session {
            inner: Arc::new(Inner {
                http,
                token_http,
                config,
                token: RwLock::new(placeholder),
                refresh_token: RwLock::new(refresh_token),
                refresh_lock: Mutex::new(()),
                failed_renewal: std::sync::Mutex::new(None),
                logins: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                tally: crate::tally::Tally::default(),
                usage: UsageTracker::default(),
                rotation,
                clock_skew_ms: AtomicI64::new(0),
                clock_known: AtomicBool::new(false),
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

    /// The logged-in user's id (15 characters), from the identity URL of the token answer.
    pub fn user_id(&self) -> Option<String> {
        self.read_token(|t| t.identity_url.as_deref().and_then(token::user_id_of))
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

    /// The requests [`Session::request_count`] counts, by the [`crate::RequestTag`] they were
    /// sent under, method and path.
    pub fn tally(&self) -> Vec<crate::TaggedRequests> {
        self.inner.tally.snapshot()
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
        shifted(chrono::Utc::now(), skew)
    }

    /// True once a response has told the org's time.
    pub fn org_clock_known(&self) -> bool {
        self.inner.clock_known.load(Ordering::Relaxed)
    }

    /// `GET limits`.
    pub async fn limits(&self) -> Result<Limits, Error> {
        self.limits_of(Request::get("limits")).await
    }

    /// `GET limits`, sent even past the `api_budget`, its `DailyApiRequests` taken as the
    /// session's usage now ([`Session::api_usage`]). Response headers update the usage too, but
    /// within a minute of a higher reading a lower one is taken for an older answer arriving
    /// late and left aside. Once a reading reaches the budget, the session refuses every
    /// request not marked [`Request::past_budget`] (`BudgetExhausted`), so no new header comes:
    /// a session kept for longer than a sync calls this to learn that the rolling 24-hour count
    /// has gone down. It costs one API request. Salesforce says `/limits` figures are accurate
    /// within five minutes of use (the Limits resource's page; sure), so the reading may lag a
    /// little behind; the next response header that says more takes its place.
    pub async fn refresh_usage(&self) -> Result<ApiUsage, Error> {
        let limits = self.limits_of(Request::get("limits").past_budget()).await?;
        let daily = limits.daily_api_requests;
        let usage = ApiUsage {
            used: u64::try_from(daily.max.saturating_sub(daily.remaining)).unwrap_or(0),
            max: u64::try_from(daily.max).unwrap_or(0),
        };
        self.inner.usage.set(usage);
        Ok(usage)
    }

    async fn limits_of(&self, request: Request) -> Result<Limits, Error> {
        let all = self.fetch(request).await?.json()?;
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

    /// Sends a request and reads the whole body; a body cut off in transit, or not whole within
    /// the config's `body_timeout`, is retried like any transient failure (for idempotent
    /// requests). A body past [`FETCH_MAX_BYTES`] is an error, not retried: answers read whole
    /// are JSON.
    pub async fn fetch(&self, req: Request) -> Result<FullResponse, Error> {
        let operation = req.operation();
        let (req, operation) = (&req, &operation);
        self.with_retries("ApiResponseBodyFailed", operation, move || async move {
            let response = self.send(req.clone()).await?;
            let (status, headers) = (response.status, response.headers.clone());
            let within = self.inner.config.body_timeout;
            match response.bytes_within(FETCH_MAX_BYTES, within).await {
                Ok(body) => Ok(Attempt::Done(FullResponse {
                    status,
                    headers,
                    body,
                    operation: operation.clone(),
                })),
                Err(e) => {
                    let retryable = body_retryable(&e, req.idempotent);
                    Attempt::failed(e, retryable, None)
                }
            }
        })
        .await
    }

    /// Sends a request: renews the token once on a 401, retries transient failures, and returns
    /// the response once its status is a success, with the body still unread.
    pub async fn send(&self, req: Request) -> Result<Response, Error> {
        let operation = req.operation();
        let renewed = AtomicBool::new(false);
        let (req, operation, renewed) = (&req, &operation, &renewed);
        self.with_retries("ApiRequestFailed", operation, move || {
            self.send_once(req, operation, renewed)
        })
        .await
    }

    /// One try of `req`; a 401 renews the token and asks for a replay unless `renewed` says this
    /// request already did (a 401 for a token replaced meanwhile is replayed without renewing).
    async fn send_once(
        &self,
        req: &Request,
        operation: &str,
        renewed: &AtomicBool,
    ) -> Result<Attempt<Response>, Error> {
        if !req.past_budget {
            self.check_budget()?;
        }
        // Token and instance are read together on every attempt: a renewal may move the org
        // to another instance, and the replay must follow it.
        let (generation, token, base) =
            self.read_token(|t| (t.generation, t.access.clone(), t.instance_url.clone()));
        let url = req.url_on(&base, &self.data_path())?;
        let mut builder = self
            .inner
            .http
            .request(req.method().to_reqwest(), url)
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
        self.inner.tally.record(req.method().as_str(), req.path());
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                let retryable = e.is_connect() || req.idempotent;
                return Attempt::failed(network_error(operation, &e), retryable, None);
            }
        };
        self.observe(response.headers());
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(Attempt::Done(Response {
                status,
                headers: Headers::from_reqwest(response.headers()),
                operation: operation.to_string(),
                inner: response,
            }));
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // A page echoing the request shows the access token sent.
        let api = api_error(response, self.inner.config.body_timeout, &[token.expose()]).await;
        // A token another request has replaced since this one was sent says nothing of the new
        // one: replayed with it, and not counted as this request's renewal (with many requests
        // in flight a token can be replaced, and then refused, while one waits for its answer).
        if status == 401 && self.read_token(|t| t.generation) != generation {
            return Ok(Attempt::Replay);
        }
        if status == 401 && !renewed.swap(true, Ordering::Relaxed) {
            tracing::info!(operation = %operation, "SessionExpired");
            self.refresh_if_generation(generation).await?;
            return Ok(Attempt::Replay);
        }
        let retryable = matches!(
            api.kind(),
            ErrorKind::Transient | ErrorKind::ConcurrentLimit
        );
        let error = Error::Api {
            operation: operation.to_string(),
            api,
        };
        Attempt::failed(error, retryable, retry_after)
    }

    fn check_budget(&self) -> Result<(), Error> {
        let (Some(share), Some(usage)) = (self.inner.config.api_budget, self.inner.usage.get())
        else {
            return Ok(());
        };
        let budget = usage.budget(share);
        if usage.over_budget(share) {
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
}

/// The largest body [`Session::fetch`] reads: 256 MiB, far above any JSON answer of
/// Salesforce's (25 describes of the widest objects are tens of MB, a getDeleted answer of
/// 600,000 ids about 45 MB), so only a server gone wrong meets it.
pub const FETCH_MAX_BYTES: usize = 256 * 1024 * 1024;

/// Whether a body that failed to arrive whole (`e`) is asked for again: only one cut off in
/// transit or too slow, of an idempotent request. An answer past [`FETCH_MAX_BYTES`] would be as
/// large again.
fn body_retryable(e: &Error, idempotent: bool) -> bool {
    idempotent && matches!(e, Error::Network { .. })
}

/// The largest clock skew a `Date` header may tell: 200 years (an emulated org may run years
/// from the local clock; a `Date` near chrono's end would only move the overflow into the
/// callers' arithmetic).
const MAX_SKEW_MS: u64 = 200 * 366 * 24 * 3600 * 1000;

/// `now` moved by `skew_ms`: the local clock where the sum is out of chrono's range (a `Date`
/// header in the year 262142 is well formed, and must not panic the process).
fn shifted(now: chrono::DateTime<chrono::Utc>, skew_ms: i64) -> chrono::DateTime<chrono::Utc> {
    // A `Date` centuries off is no clock to go by.
    if skew_ms.unsigned_abs() > MAX_SKEW_MS {
        return now;
    }
    chrono::TimeDelta::try_milliseconds(skew_ms)
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now)
}

/// An HTTP client with the config's timeouts, following redirects as `redirects` says.
fn http_client(
    config: &SessionConfig,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .gzip(true)
        .pool_idle_timeout(config.pool_idle_timeout)
        .redirect(redirects)
        .user_agent(concat!("sfconnect/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = config.connect_timeout {
        builder = builder.connect_timeout(t);
    }
    if let Some(t) = config.read_timeout {
        builder = builder.read_timeout(t);
    }
    builder.build().map_err(|e| Error::Network {
        operation: "building the HTTP client".to_string(),
        message: describe_reqwest(&e),
        timeout: false,
    })
}

#[cfg(test)]
mod clock_tests {
    use super::shifted;

    #[test]
    fn a_date_header_far_in_the_future_does_not_panic_the_org_clock() {
        let now = chrono::Utc::now();
        let far = chrono::DateTime::parse_from_rfc2822("31 Dec 262142 23:59:58 +0000")
            .map(|d| d.timestamp_millis())
            .unwrap_or(0);
        assert!(far > now.timestamp_millis(), "the header parses");
        let skew = far - now.timestamp_millis();
        // Within chrono's range as a date, past it once a second has gone by.
        assert_eq!(
            shifted(now + chrono::TimeDelta::seconds(2), skew),
            now + chrono::TimeDelta::seconds(2)
        );
        assert_eq!(shifted(now, i64::MAX), now);
        assert_eq!(shifted(now, i64::MIN), now);
        assert_eq!(
            shifted(now, 1_500),
            now + chrono::TimeDelta::milliseconds(1_500)
        );
        assert_eq!(shifted(now, -60_000), now - chrono::TimeDelta::minutes(1));
        // Centuries off: no clock to go by; years off (an emulated org): followed.
        let centuries: i64 = 300 * 366 * 24 * 3600 * 1000;
        assert_eq!(shifted(now, centuries), now);
        assert_eq!(shifted(now, -centuries), now);
        let years: i64 = 3 * 365 * 24 * 3600 * 1000;
        assert_eq!(shifted(now, -years), now - chrono::TimeDelta::days(3 * 365));
    }
}

#[cfg(test)]
mod body_tests {
    use super::{body_retryable, Error};

    #[test]
    fn only_a_body_cut_off_or_too_slow_is_asked_for_again() {
        let cut = Error::Network {
            operation: "GET query".to_string(),
            message: "connection reset".to_string(),
            timeout: false,
        };
        let too_large = Error::Decode {
            operation: "GET query".to_string(),
            message: "the answer is larger than 268435456 bytes".to_string(),
        };
        assert!(body_retryable(&cut, true));
        assert!(!body_retryable(&cut, false));
        assert!(!body_retryable(&too_large, true));
    }
}
