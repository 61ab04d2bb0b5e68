//! Token renewal: the grant's token request, one single-flight renewal per expired token, a
//! failed renewal shared with every request that waited on it, and refresh-token rotation.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::retry::Attempt;
use super::Session;
use crate::config::{check_scheme, Credentials, Grant};
use crate::error::{ApiError, Error, ErrorKind, LoginFailure};
use crate::lock::{read_lock, write_lock};
use crate::redact::{form_secrets, token_answer_problem};
use crate::request::{api_error, network_error, read_body, redirect_error, BodyCut};
use crate::secret::Secret;

/// What errors and logs call the token request.
const TOKEN_OPERATION: &str = "POST /services/oauth2/token";

/// The largest token answer read: Salesforce's is well under a few KiB (an access token, URLs,
/// a signature); anything this large is not its token endpoint.
const TOKEN_MAX_BYTES: usize = 1024 * 1024;

/// How long a renewal that failed for a transient reason answers for its generation. A refused
/// grant (wrong or revoked credentials) answers for good: retrying cannot fix it. A refresh
/// answered "already being processed" (another process renews with the same refresh token) is
/// transient.
const FAILED_RENEWAL_TTL: Duration = Duration::from_secs(10);

/// The access token in force and the instance it was issued for.
pub(super) struct Token {
    pub(super) access: Secret,
    pub(super) instance_url: Url,
    /// How many logins produced this token: 0 before the first.
    pub(super) generation: u64,
    pub(super) org_id: Option<String>,
    /// The identity URL of the token answer, `.../id/{orgId}/{userId}`: who is logged in.
    pub(super) identity_url: Option<String>,
}

/// A renewal that failed: requests that saw the same expired token get its error instead of
/// logging in again, one after another, each with a full retry budget.
pub(super) struct FailedRenewal {
    generation: u64,
    at: std::time::Instant,
    error: Error,
}

/// A token answer. Every key but the refresh token is checked after the answer is read, so a
/// rotated refresh token in an answer missing the rest is still kept.
#[derive(Deserialize)]
struct TokenWire {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    instance_url: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    /// The identity URL, `https://{login host}/id/{orgId}/{userId}`.
    #[serde(default)]
    id: Option<String>,
}

impl Session {
    /// Logs in again unless another task already did since `generation` was current.
    pub(super) async fn refresh_if_generation(&self, generation: u64) -> Result<(), Error> {
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
        // A rotated refresh token is kept (and handed on to be written) before anything else
        // of the answer is checked: Salesforce has already invalidated the one sent, so losing
        // the new one to an unusable `instance_url` would lose the grant.
        if let Some(new) = token.refresh_token.as_ref().filter(|t| !t.is_empty()) {
            let new = Secret::new(new.clone());
            let changed = self.refresh_token().as_ref() != Some(&new);
            if changed {
                if let Ok(mut guard) = self.inner.refresh_token.write() {
                    *guard = Some(new.clone());
                }
                tracing::info!("RefreshTokenRotated");
                self.inner.rotation.send_replace(Some(new));
            }
        }
        let missing = |key: &str| Error::Decode {
            operation: TOKEN_OPERATION.to_string(),
            message: format!("token response: missing field `{key}`"),
        };
        let access = token.access_token.ok_or_else(|| missing("access_token"))?;
        let instance_url = token.instance_url.ok_or_else(|| missing("instance_url"))?;
        let instance_url = Url::parse(instance_url.trim()).map_err(|e| Error::Decode {
            operation: TOKEN_OPERATION.to_string(),
            message: format!("instance_url is not a URL: {e}"),
        })?;
        check_scheme(&instance_url).map_err(|reason| Error::Decode {
            operation: TOKEN_OPERATION.to_string(),
            message: format!("refusing instance_url: {reason}"),
        })?;
        *write_lock(&self.inner.token) = Token {
            access: Secret::new(access),
            instance_url,
            generation: generation + 1,
            org_id: token.id.as_deref().and_then(org_id_of),
            identity_url: token.id.clone(),
        };
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!(generation = generation + 1, "SessionLoggedIn");
        Ok(())
    }

    /// Reads the token in force.
    pub(super) fn read_token<R>(&self, f: impl FnOnce(&Token) -> R) -> R {
        f(&read_lock(&self.inner.token))
    }

    fn failed_renewal_of(&self, generation: u64) -> Option<Error> {
        let slot = self.inner.failed_renewal.lock().ok()?;
        let failed = slot.as_ref()?;
        let permanent = matches!(failed.error, Error::Login { .. });
        (failed.generation == generation && (permanent || failed.at.elapsed() < FAILED_RENEWAL_TTL))
            .then(|| failed.error.clone())
    }

    /// The token request, retried on transient answers and on network failures.
    async fn request_token(&self) -> Result<TokenWire, Error> {
        self.with_retries("LoginRequestFailed", TOKEN_OPERATION, move || async move {
            // Built for each attempt: the JWT bearer grant signs a new assertion every time, so
            // a retry after long waits never presents one that has expired meanwhile.
            let body = self.token_body()?;
            self.request_token_once(body).await
        })
        .await
    }

    /// The token request's form for the configured grant.
    fn token_body(&self) -> Result<String, Error> {
        let config = &self.inner.config;
        match (config.grant, &config.jwt_bearer) {
            (Grant::JwtBearer, Some(jwt)) => {
                jwt.token_form(&config.credentials.client_id, &config.login_url)
            }
            _ => Ok(token_form(
                config.grant,
                &config.credentials,
                self.refresh_token().as_ref(),
            )),
        }
    }

    async fn request_token_once(&self, body: String) -> Result<Attempt<TokenWire>, Error> {
        let grant = self.inner.config.grant;
        // What an answer echoing the form must not show.
        let secrets = form_secrets(&body);
        let answer = self
            .inner
            .token_http
            .post(self.inner.config.login_url.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await;
        let response = match answer {
            Ok(r) => r,
            // Tried again, whatever the grant. A refresh whose answer was lost after Salesforce
            // took it, under refresh token rotation, has spent the token sent: not sending it
            // again would not save the grant (the next renewal or run sends the same one), and
            // retrying saves the run whenever the request never arrived.
            Err(e) => return Attempt::failed(network_error(TOKEN_OPERATION, &e), true, None),
        };
        if response.status().is_redirection() {
            return Err(redirect_error(TOKEN_OPERATION, &response));
        }
        let within = self.inner.config.body_timeout;
        if response.status().is_success() {
            let mut bytes = Vec::new();
            match read_body(response, &mut bytes, TOKEN_MAX_BYTES, within).await {
                Ok(()) => {}
                // Cut off in transit or trickled past the time allowed: tried again, as a
                // request whose answer never came (above).
                Err(BodyCut::Broken(e)) => {
                    return Attempt::failed(network_error(TOKEN_OPERATION, &e), true, None)
                }
                Err(BodyCut::TimedOut) => {
                    let message = format!(
                        "timed out: the token answer did not arrive whole within {} s",
                        within.map_or(0, |w| w.as_secs())
                    );
                    let error = Error::Network {
                        operation: TOKEN_OPERATION.to_string(),
                        message,
                        timeout: true,
                    };
                    return Attempt::failed(error, true, None);
                }
                Err(BodyCut::TooLarge) => {
                    return Err(Error::Decode {
                        operation: TOKEN_OPERATION.to_string(),
                        message: format!(
                            "the token answer is larger than {TOKEN_MAX_BYTES} bytes: not \
                             Salesforce's token endpoint (check login_url)"
                        ),
                    })
                }
            }
            return serde_json::from_slice(&bytes)
                .map(Attempt::Done)
                .map_err(|e| Error::Decode {
                    operation: TOKEN_OPERATION.to_string(),
                    message: token_answer_problem(&e),
                });
        }
        let api = api_error(response, within, &secrets).await;
        // A 4xx that only says "later" (429, 420, 408: a rate limit or a proxy's timeout; a
        // refresh "already being processed" by another process with the same refresh token) is
        // no refusal of the credentials: it is retried, and a failed renewal is not kept as
        // permanent (`failed_renewal_of`).
        let mut api = api;
        let in_progress = api.refresh_in_progress(grant == Grant::RefreshToken);
        if in_progress && api.kind() != ErrorKind::Transient {
            // The older wording ("expired authorization code") of the refresh grant's answer
            // to a concurrent refresh: said as what it means, so it ends as the passing failure
            // its twin is once the retries are spent.
            api.message = format!(
                "token request is already being processed (Salesforce's words: {})",
                api.message
            );
        }
        let retryable = api.kind() == ErrorKind::Transient || in_progress;
        let error = if (400..500).contains(&api.status) && !retryable {
            Error::Login {
                failure: login_failure(&api, grant),
                api,
            }
        } else {
            Error::Api {
                operation: TOKEN_OPERATION.to_string(),
                api,
            }
        };
        Attempt::failed(error, retryable, None)
    }
}

/// What a refusal of the token request means for `grant`: the answers about an assertion
/// ("expired authorization code", its audience or signature) and "user hasn't approved this
/// consumer" read as the JWT bearer grant's only for that grant.
fn login_failure(api: &ApiError, grant: Grant) -> LoginFailure {
    let jwt = grant == Grant::JwtBearer;
    match LoginFailure::from_api(api) {
        LoginFailure::JwtUserNotApproved if !jwt => LoginFailure::AppNotApproved,
        LoginFailure::JwtExpired | LoginFailure::JwtAudience | LoginFailure::JwtSignature
            if !jwt =>
        {
            LoginFailure::Other
        }
        failure => failure,
    }
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

/// The user id (the first 15 characters) from an identity URL `.../id/{orgId}/{userId}`.
pub(super) fn user_id_of(identity_url: &str) -> Option<String> {
    org_id_of(identity_url)?;
    let user = identity_url.trim_end_matches('/').rsplit('/').next()?;
    (user.len() >= 15 && user.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| user[..15].to_string())
}

/// The token request's form body (kept out of async code: the serializer is not `Send`).
fn token_form(grant: Grant, creds: &Credentials, refresh: Option<&Secret>) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    match grant {
        Grant::RefreshToken => {
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("client_id", &creds.client_id);
            // Optional for this grant (a connected app may not require it): left out when
            // empty rather than sent blank.
            if !creds.client_secret.expose().is_empty() {
                form.append_pair("client_secret", creds.client_secret.expose());
            }
            form.append_pair("refresh_token", refresh.map(Secret::expose).unwrap_or(""));
        }
        Grant::ClientCredentials => {
            form.append_pair("grant_type", "client_credentials");
            form.append_pair("client_id", &creds.client_id);
            form.append_pair("client_secret", creds.client_secret.expose());
        }
        // `Session::login` refuses this grant without a key, so this arm is never reached.
        Grant::JwtBearer => {
            form.append_pair("grant_type", crate::jwt::JWT_BEARER_GRANT_TYPE);
        }
    }
    form.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_client_secret_is_left_out_of_the_refresh_token_request() {
        let creds = |secret: &str| Credentials {
            client_id: "3MVG9abc".to_string(),
            client_secret: Secret::new(secret),
            refresh_token: None,
        };
        let refresh = Secret::new("5Aep-token");
        let form = token_form(Grant::RefreshToken, &creds(""), Some(&refresh));
        assert_eq!(
            form,
            "grant_type=refresh_token&client_id=3MVG9abc&refresh_token=5Aep-token"
        );
        let form = token_form(Grant::RefreshToken, &creds("s3cr3t"), Some(&refresh));
        assert!(form.contains("&client_secret=s3cr3t&"), "{form}");
    }

    #[test]
    fn an_expired_authorization_code_is_an_expired_assertion_for_the_jwt_grant_only() {
        let api = ApiError::from_body(
            400,
            br#"{"error":"invalid_grant","error_description":"expired authorization code"}"#,
        );
        assert_eq!(
            login_failure(&api, Grant::JwtBearer),
            LoginFailure::JwtExpired
        );
        assert_eq!(
            login_failure(&api, Grant::ClientCredentials),
            LoginFailure::Other
        );
        // For the refresh-token grant the words are a concurrent refresh: retried, not refused.
        assert!(api.refresh_in_progress(true));
        assert!(!api.refresh_in_progress(false));
        let refused = ApiError::from_body(
            400,
            br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
        );
        assert_eq!(
            login_failure(&refused, Grant::RefreshToken),
            LoginFailure::ExpiredRefreshToken
        );
        assert!(!refused.refresh_in_progress(true));
    }

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
        assert_eq!(
            user_id_of("https://login.salesforce.com/id/00D5e000001N20QEAS/0055e000003E8ooAAC")
                .as_deref(),
            Some("0055e000003E8oo")
        );
        assert_eq!(user_id_of("https://x/id/00D5e000001N20QEAS/005"), None);
        assert_eq!(
            user_id_of("https://x/other/00D5e000001N20QEAS/0055e000003E8ooAAC"),
            None
        );
        assert_eq!(org_id_of("https://x/other/00D5e000001N20QEAS/005"), None);
        assert_eq!(org_id_of("https://x/id/short/005"), None);
    }
}
