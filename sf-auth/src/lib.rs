//! sf-auth: OAuth 2.0 login and the one authenticated session every request goes through.
//!
//! **Owns:** the credentials (held in [`Secret`], which prints `***`), the login host
//! ([`LoginUrl`]: production, sandbox, My Domain, or `http://` on loopback only), the
//! refresh-token, client-credentials and JWT bearer ([`JwtBearer`]) grants with refresh-token
//! rotation, and [`Session`]: bearer
//! auth on every call, one single-flight token renewal and replay on a 401, retries with
//! exponential backoff and jitter ([`RetryConfig`]) for transient failures, API usage from
//! `Sforce-Limit-Info` ([`ApiUsage`]) and `/limits`, the API budget, and the org's clock from the
//! `Date` header. Salesforce's error bodies become [`ApiError`]s, and this crate is the
//! workspace's one reader of Salesforce's answers: [`classify`] (status, `errorCode`, OAuth
//! `error`, and the message where Salesforce says more in words than in codes) and
//! [`classify_job_failure`] (a failed Bulk job's `errorMessage`) give the [`ErrorKind`] every
//! other crate acts on.
//!
//! **Must not know:** SOQL, describe, how Bulk jobs are run, sync state or the Airbyte protocol. It is the only
//! crate that names `reqwest`; the others see [`Request`], [`Response`] and [`FullResponse`].
//!
//! [`composite`] builds a `POST composite` of read-only subrequests (one API call for up to 25)
//! and matches its answers to them; what the subrequests ask is the caller's business.
//!
//! [`web_login`] is the web-server flow with PKCE from a terminal (authorize URL, a one-shot
//! callback listener on loopback, the code exchange), for `sfconnect login`.
//!
//! [`lock`], [`read_lock`] and [`write_lock`] take a std lock even if a holder panicked. The
//! `test-util` feature adds a test kit: `RetryConfig::immediate()` (retries without waiting) and
//! `SessionConfig::for_paused_time()` (no transport timers under tokio's paused time).
//!
//! ```no_run
//! use sf_auth::{Credentials, LoginUrl, Request, Secret, Session, SessionConfig};
//!
//! # async fn run() -> Result<(), sf_auth::Error> {
//! let credentials = Credentials {
//!     client_id: "3MVG9...".to_string(),
//!     client_secret: Secret::new("secret"),
//!     refresh_token: Some(Secret::new("5Aep861...")),
//! };
//! let config = SessionConfig::new(LoginUrl::resolve(false, None)?, credentials);
//! let session = Session::login(config).await?;
//! let global: serde_json::Value = session.get_json("sobjects", &[]).await?;
//! let page = session
//!     .fetch(Request::get("query").query("q", "SELECT Id FROM Account"))
//!     .await?;
//! println!("{} objects, {} bytes, usage {:?}", global["sobjects"].as_array().map_or(0, |a| a.len()),
//!     page.body.len(), session.api_usage());
//! # Ok(())
//! # }
//! ```

pub mod composite;
mod config;
mod error;
mod jwt;
mod lock;
mod redact;
mod request;
mod secret;
mod session;
mod tally;
#[cfg(any(test, feature = "test-util"))]
mod test_util;
mod usage;
pub mod web_login;

pub use config::{
    Credentials, Grant, LoginUrl, RetryConfig, SessionConfig, DEFAULT_API_VERSION,
    PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL,
};
pub use error::{
    classify, classify_job_failure, field_in_message, required_permission, ApiError, Error,
    ErrorKind, LoginFailure, EXEMPT_FROM_TRANSACTION_SECURITY, VIEW_ALL_DATA,
};
pub use jwt::{JwtBearer, ASSERTION_LIFETIME_SECS, JWT_BEARER_GRANT_TYPE};
pub use lock::{lock, read_lock, write_lock};
pub use request::{ByteStream, FullResponse, Headers, Method, Request, Response};
pub use secret::Secret;
pub use session::{Session, FETCH_MAX_BYTES};
pub use tally::{RequestTag, TaggedRequests};
pub use usage::{parse_limit_info, ApiUsage, Limit, Limits};
