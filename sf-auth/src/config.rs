//! What a session needs: where to log in, the credentials, the API version, retry and budget policy.

use std::net::IpAddr;
use std::time::Duration;

use url::Url;

use crate::error::Error;
use crate::jwt::JwtBearer;
use crate::secret::Secret;

/// The production login host.
pub const PRODUCTION_LOGIN_URL: &str = "https://login.salesforce.com";
/// The sandbox login host.
pub const SANDBOX_LOGIN_URL: &str = "https://test.salesforce.com";
/// The API version used unless the config names another.
pub const DEFAULT_API_VERSION: &str = "62.0";

/// A validated login host: `https://...`, or `http://` on a loopback host only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUrl(Url);

impl LoginUrl {
    /// `https://login.salesforce.com`.
    pub fn production() -> LoginUrl {
        LoginUrl(Url::parse(PRODUCTION_LOGIN_URL).expect("constant URL parses"))
    }

    /// `https://test.salesforce.com`.
    pub fn sandbox() -> LoginUrl {
        LoginUrl(Url::parse(SANDBOX_LOGIN_URL).expect("constant URL parses"))
    }

    /// Parses an explicit login URL (a My Domain such as `https://acme.my.salesforce.com`, or an
    /// emulated org on loopback). A path, query or fragment is refused, as is plain `http://` on a
    /// host that is not loopback.
    pub fn parse(url: &str) -> Result<LoginUrl, Error> {
        let bad = |reason: &str| Error::InvalidLoginUrl {
            url: LoginUrl::redacted(url),
            reason: reason.to_string(),
        };
        let parsed = Url::parse(url.trim()).map_err(|e| {
            bad(&format!(
                "{e}; expected a URL such as https://acme.my.salesforce.com"
            ))
        })?;
        // Before anything that names the URL: credentials in it are never kept or printed.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            // Never keep (or later print) credentials embedded in a URL.
            return Err(Error::InvalidLoginUrl {
                url: "<a URL with credentials in it>".to_string(),
                reason: "user names and passwords do not belong in login_url; give only the \
                         scheme and host, and the credentials in client_id, client_secret and \
                         refresh_token"
                    .to_string(),
            });
        }
        check_scheme(&parsed).map_err(|reason| bad(&reason))?;
        if parsed.path() != "/" && !parsed.path().is_empty() {
            return Err(bad(
                "give only the scheme and host (e.g. https://acme.my.salesforce.com), no path",
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("a query string or fragment is not allowed"));
        }
        Ok(LoginUrl(parsed))
    }

    /// `url` as it may be shown in an error: its scheme, host and port, with `/...` when it has a
    /// path, `?...` when it has a query or fragment, and never a user name, password, query or
    /// fragment (where tokens are put by mistake). Text that is not a URL with a host (a token
    /// pasted into `login_url` by mistake, `scheme:rest`) is never shown: only its length, as
    /// `<not a URL: 42 characters>`.
    pub fn redacted(url: &str) -> String {
        let url = url.trim();
        match Url::parse(url) {
            Ok(parsed) if parsed.has_host() => {
                let mut shown = format!("{}://", parsed.scheme());
                if !parsed.username().is_empty() || parsed.password().is_some() {
                    shown.push_str("<credentials>@");
                }
                shown.push_str(parsed.host_str().unwrap_or_default());
                if let Some(port) = parsed.port() {
                    shown.push_str(&format!(":{port}"));
                }
                if parsed.path() != "/" && !parsed.path().is_empty() {
                    shown.push_str("/...");
                }
                if parsed.query().is_some() || parsed.fragment().is_some() {
                    shown.push_str("?...");
                }
                shown
            }
            _ => match url.chars().count() {
                1 => "<not a URL: 1 character>".to_string(),
                n => format!("<not a URL: {n} characters>"),
            },
        }
    }

    /// The login host the config asks for: an explicit `login_url` wins, then `is_sandbox`.
    pub fn resolve(is_sandbox: bool, login_url: Option<&str>) -> Result<LoginUrl, Error> {
        match login_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => LoginUrl::parse(url),
            None if is_sandbox => Ok(LoginUrl::sandbox()),
            None => Ok(LoginUrl::production()),
        }
    }

    /// The token endpoint, `{login}/services/oauth2/token`.
    pub fn token_url(&self) -> Url {
        let mut url = self.0.clone();
        url.set_path("/services/oauth2/token");
        url
    }

    /// The URL as a string, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
}

/// `https` anywhere; `http` only to a loopback host.
pub(crate) fn check_scheme(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "plain http is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https://{}",
            url.host_str().unwrap_or("<host>")
        )),
        other => Err(format!("scheme `{other}` is not supported; use https")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The connected app's credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Consumer key.
    pub client_id: String,
    /// Consumer secret.
    pub client_secret: Secret,
    /// Refresh token (needed for the refresh_token grant).
    pub refresh_token: Option<Secret>,
}

/// Which OAuth 2.0 grant to log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grant {
    /// `grant_type=refresh_token` (the default; Airbyte's `auth_type: Client`).
    #[default]
    RefreshToken,
    /// `grant_type=client_credentials`, to a My Domain login URL.
    ClientCredentials,
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with an assertion signed by
    /// [`SessionConfig::jwt_bearer`]'s key; renewal signs a new one.
    JwtBearer,
}

/// Retry policy: exponential backoff with jitter.
///
/// Defaults: 5 retries after the first try, backoff starting at 500 ms, doubling, capped at 30 s,
/// each wait drawn uniformly from its upper half (`[b/2, b]`). A request Salesforce refused for
/// its concurrency limits (403 `REQUEST_LIMIT_EXCEEDED` naming `ConcurrentPerOrgLongTxn` or
/// `ConcurrentRequests`) waits for a slot that a request of 20 s or more holds, so it is tried
/// longer: up to 12 retries, each wait at least 5 s (about 3.5 minutes in all).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first wait.
    pub initial_backoff: Duration,
    /// No wait is longer than this.
    pub max_backoff: Duration,
    /// Growth factor between waits.
    pub multiplier: f64,
    /// Draw each wait from `[b/2, b]` instead of waiting exactly `b`.
    pub jitter: bool,
    /// Retries of a request refused for the org's concurrency limits (at least `max_retries`).
    pub concurrent_limit_retries: u32,
    /// The shortest wait before retrying such a request.
    pub concurrent_limit_wait: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: true,
            concurrent_limit_retries: 12,
            concurrent_limit_wait: Duration::from_secs(5),
        }
    }
}

impl RetryConfig {
    /// The wait before retry number `retry` (0-based); `unit` is a random number in `[0, 1)`.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(retry as i32);
        let capped = base.min(self.max_backoff.as_secs_f64()).max(0.0);
        let secs = if self.jitter {
            capped * (0.5 + 0.5 * unit.clamp(0.0, 1.0))
        } else {
            capped
        };
        Duration::from_secs_f64(secs)
    }
}

/// Everything a [`crate::Session`] needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Where to log in.
    pub login_url: LoginUrl,
    /// The connected app's credentials.
    pub credentials: Credentials,
    /// The OAuth grant.
    pub grant: Grant,
    /// The username and key of the JWT bearer grant (needed when `grant` is
    /// [`Grant::JwtBearer`]).
    pub jwt_bearer: Option<JwtBearer>,
    /// REST API version, e.g. `62.0` (no `v`).
    pub api_version: String,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Time allowed to connect; `None`: no limit.
    pub connect_timeout: Option<Duration>,
    /// Time allowed between two reads of a response (not the whole response: Bulk results are
    /// long); `None`: no limit.
    pub read_timeout: Option<Duration>,
    /// How long an idle pooled connection is kept; `None`: until the server closes it.
    pub pool_idle_timeout: Option<Duration>,
    /// Time allowed for the whole body of an answer read at once ([`crate::Session::fetch`]:
    /// JSON answers, never the streamed Bulk results): a server trickling a byte now and then
    /// passes `read_timeout` forever; past this the try fails as a timeout, retried like one.
    /// `None`: no limit.
    pub body_timeout: Option<Duration>,
    /// A ceiling on the org's daily API usage (all clients, as `Sforce-Limit-Info` counts it)
    /// as a share of the limit (e.g. `0.5`): no request starts once the usage reaches it;
    /// `None`: no cap besides the limit itself.
    pub api_budget: Option<f64>,
}

impl SessionConfig {
    /// A config with the documented defaults: API `62.0`, refresh-token grant, default retries,
    /// 30 s connect and 120 s read timeouts, 10 minutes for a body read whole, idle connections
    /// kept 90 s, no budget.
    pub fn new(login_url: LoginUrl, credentials: Credentials) -> SessionConfig {
        SessionConfig {
            login_url,
            credentials,
            grant: Grant::RefreshToken,
            jwt_bearer: None,
            api_version: DEFAULT_API_VERSION.to_string(),
            retry: RetryConfig::default(),
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            body_timeout: Some(Duration::from_secs(600)),
            api_budget: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_hosts() {
        assert_eq!(
            LoginUrl::resolve(false, None).unwrap().as_str(),
            PRODUCTION_LOGIN_URL
        );
        assert_eq!(
            LoginUrl::resolve(true, None).unwrap().as_str(),
            SANDBOX_LOGIN_URL
        );
        assert_eq!(
            LoginUrl::resolve(true, Some("https://acme.my.salesforce.com/"))
                .unwrap()
                .as_str(),
            "https://acme.my.salesforce.com"
        );
        assert_eq!(
            LoginUrl::resolve(false, Some("  ")).unwrap().as_str(),
            PRODUCTION_LOGIN_URL
        );
        assert_eq!(
            LoginUrl::production().token_url().as_str(),
            "https://login.salesforce.com/services/oauth2/token"
        );
    }

    #[test]
    fn http_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:8765",
            "http://localhost:1",
            "http://[::1]:80",
            "http://127.1.2.3",
        ] {
            assert!(LoginUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://acme.my.salesforce.com",
            "http://10.0.0.1",
            "http://localhost.evil.com",
        ] {
            let err = LoginUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("only allowed for loopback"), "{bad}: {err}");
            assert!(err.contains("login_url"), "{err}");
        }
        let err = LoginUrl::parse("https://admin:hunter2@acme.my.salesforce.com")
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not belong in login_url"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = LoginUrl::parse("ftp://x").unwrap_err().to_string();
        assert!(err.contains("scheme `ftp`"), "{err}");
        let err = LoginUrl::parse("acme.my.salesforce.com")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a URL such as"), "{err}");
        let err = LoginUrl::parse("https://acme.my.salesforce.com/services")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no path"), "{err}");
    }

    #[test]
    fn a_login_url_is_never_shown_with_what_may_be_a_secret() {
        for (given, secret) in [
            ("http://admin:hunter2@acme.my.salesforce.com", "hunter2"),
            ("https://admin:hunter2@ac me.com", "hunter2"),
            ("ftp://admin:hunter2@x", "hunter2"),
            (
                "https://acme.my.salesforce.com/?access_token=00Dxx!AQ",
                "00Dxx",
            ),
            ("https://acme.my.salesforce.com/#token=00Dxx", "00Dxx"),
            (
                "https://acme.my.salesforce.com/services/oauth2/00Dxx",
                "00Dxx",
            ),
            ("00Dxx!AQ hunter2", "hunter2"),
            // A token pasted into login_url: no character of it that a shape would not show.
            ("00D5e000001N20Q!AQ4AQFakeAccessToken", "00D5e"),
            ("5Aep861FakeRefreshToken.abc", "5Aep861"),
            ("token:5Aep861FakeRefreshToken", "5Aep861"),
        ] {
            let err = LoginUrl::parse(given).unwrap_err().to_string();
            assert!(!err.contains(secret), "{given}: {err}");
            assert!(err.contains("login_url"), "{err}");
            assert!(!LoginUrl::redacted(given).contains(secret), "{given}");
        }
        assert_eq!(
            LoginUrl::redacted("http://admin:pw@localhost:8080/x?y#z"),
            "http://<credentials>@localhost:8080/...?..."
        );
        assert_eq!(
            LoginUrl::redacted(" https://acme.my.salesforce.com "),
            "https://acme.my.salesforce.com"
        );
        // Text that is not a URL with a host is shown by its length only (this echoed it when
        // it held no `@`, `?`, `#` or whitespace).
        assert_eq!(
            LoginUrl::redacted("acme.my.salesforce.com"),
            "<not a URL: 22 characters>"
        );
        assert_eq!(
            LoginUrl::redacted(" 00D5e000001N20Q!AQ4AQ "),
            "<not a URL: 21 characters>"
        );
        assert_eq!(LoginUrl::redacted("x"), "<not a URL: 1 character>");
        assert_eq!(
            LoginUrl::redacted("mailto:admin@acme.com"),
            "<not a URL: 21 characters>"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let exact = RetryConfig {
            jitter: false,
            ..RetryConfig::default()
        };
        assert_eq!(exact.backoff(0, 0.3), Duration::from_millis(500));
        assert_eq!(exact.backoff(1, 0.3), Duration::from_secs(1));
        assert_eq!(exact.backoff(3, 0.3), Duration::from_secs(4));
        assert_eq!(exact.backoff(20, 0.3), Duration::from_secs(30));
        let jittered = RetryConfig::default();
        assert_eq!(jittered.backoff(2, 0.0), Duration::from_secs(1));
        assert_eq!(jittered.backoff(2, 0.999_999).as_millis(), 1999);
    }
}
