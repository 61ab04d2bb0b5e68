//! The OAuth 2.0 web-server flow with PKCE, from a terminal: the authorize URL, a one-shot
//! callback listener on loopback, and the code exchange (`authorization_code` grant).
//!
//! The listener answers one redirect from the browser on `127.0.0.1`, at
//! `http://localhost:{port}/OauthRedirect` (the Salesforce CLI's callback, which connected apps
//! often list already): a `state` other than the one sent is answered 400 and waited past
//! (another page cannot feed it a code, nor end the login; a stale tab of an earlier login
//! neither), `error=access_denied` is the user's Deny, anything else on another path is 404.
//! The exchange posts `grant_type=authorization_code`, `code`, `client_id`, `client_secret` (when
//! given), `redirect_uri` and `code_verifier`, follows no redirect (the form carries the code,
//! its verifier and the secret), and gives up after 30 s without a connection or 120 s in all;
//! Salesforce answers with a refresh token when the scope asked for `refresh_token`
//! [Salesforce's web-server flow documentation; sure].

use std::net::{Ipv4Addr, SocketAddr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_util::future::{select, Either};
use futures_util::stream::{FuturesUnordered, StreamExt};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::config::LoginUrl;
use crate::error::{Error, LoginFailure};
use crate::redact::{form_secrets, token_answer_problem};
use crate::request::{api_error, network_error, redirect_error};
use crate::secret::Secret;

/// The callback path.
pub const CALLBACK_PATH: &str = "/OauthRedirect";
/// The scopes asked for: the API, and a refresh token for unattended syncs.
pub const LOGIN_SCOPES: &str = "api refresh_token";

/// What the exchange operation is called in errors.
const EXCHANGE: &str = "POST /services/oauth2/token (authorization_code)";

/// How long the code exchange may take to connect.
const EXCHANGE_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long the code exchange may take in all.
const EXCHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The page a redirect to the callback with another `state` gets (HTTP 400).
const OTHER_STATE_PAGE: &str = "This is not the login sfconnect is waiting for: the redirect's \
     state does not match the one sent, so its code was not used. Finish the consent from the \
     URL the running sfconnect login printed; it is still waiting.";

/// A PKCE pair: the secret verifier (kept) and its S256 challenge (sent in the authorize URL).
pub struct Pkce {
    /// `code_verifier`: 43 base64url characters from 32 random bytes.
    pub verifier: Secret,
    /// `code_challenge`: base64url(SHA-256(verifier)), unpadded.
    pub challenge: String,
}

impl Pkce {
    /// A new random pair.
    pub fn new() -> Result<Pkce, Error> {
        let verifier = random_token()?;
        let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            verifier.as_bytes(),
        ));
        Ok(Pkce {
            verifier: Secret::new(verifier),
            challenge,
        })
    }
}

/// 32 random bytes as 43 base64url characters (a PKCE verifier, an OAuth `state`).
pub fn random_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::InvalidRequest {
            operation: "web login".to_string(),
            message: "the system's random number generator failed".to_string(),
        })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The authorize URL of the web-server flow with PKCE S256.
pub fn authorize_url(
    login_url: &LoginUrl,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    code_challenge: &str,
) -> Url {
    let mut url = login_url.token_url();
    url.set_path("/services/oauth2/authorize");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", LOGIN_SCOPES)
        .append_pair("state", state)
        .append_pair("code_challenge", code_challenge)
        .append_pair("code_challenge_method", "S256");
    url
}

/// Why the browser's redirect brought no code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The user pressed Deny (`error=access_denied`).
    #[error("the consent was denied in the browser (error=access_denied): run the login again and choose Allow, as the user whose data is synced")]
    Denied,
    /// Salesforce redirected with another error.
    #[error("Salesforce answered the consent with error `{error}`: {description}")]
    Refused {
        /// OAuth `error`.
        error: String,
        /// OAuth `error_description`.
        description: String,
    },
    /// The listener failed.
    #[error("the callback listener failed: {message}")]
    Io {
        /// The I/O error's kind (e.g. `AddrInUse`).
        kind: std::io::ErrorKind,
        /// The I/O error's message.
        message: String,
    },
}

/// The one-shot listener the browser is redirected to.
pub struct CallbackListener {
    listener: TcpListener,
    port: u16,
}

impl CallbackListener {
    /// Listens on `127.0.0.1:port` (`0`: any free port).
    pub async fn bind(port: u16) -> std::io::Result<CallbackListener> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let port = listener.local_addr()?.port();
        Ok(CallbackListener { listener, port })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The callback URL to register in the connected app: `http://localhost:{port}/OauthRedirect`.
    pub fn redirect_uri(&self) -> String {
        format!("http://localhost:{}{CALLBACK_PATH}", self.port)
    }

    /// Waits for the browser's redirect to the callback and returns its code (a secret). Other
    /// paths (a browser's `favicon.ico`) are answered 404 and waited past; a redirect whose
    /// `state` is not the one sent (a stale tab of an earlier login, another page) is answered
    /// 400 and waited past too, so only this login's redirect ends the wait (the caller bounds
    /// it with a timeout).
    ///
    /// Connections are read side by side: a browser may open one ahead and send nothing on it
    /// (a preconnect), and the redirect must not wait behind it. One that sends no request
    /// within [`REQUEST_WAIT`] is dropped; at most [`OPEN_CONNECTIONS`] are read at once.
    pub async fn code(self, expected_state: &str) -> Result<Secret, CallbackError> {
        let mut reading = FuturesUnordered::new();
        loop {
            // Both futures are cancel-safe: the one that loses is dropped and made again.
            let event = if reading.is_empty() {
                Either::Left(self.listener.accept().await)
            } else {
                match select(Box::pin(self.listener.accept()), reading.next()).await {
                    Either::Left((accepted, _)) => Either::Left(accepted),
                    Either::Right((read, _)) => Either::Right(read),
                }
            };
            let (mut stream, target) = match event {
                Either::Left(accepted) => {
                    let (stream, _) = accepted.map_err(|e| CallbackError::Io {
                        kind: e.kind(),
                        message: e.to_string(),
                    })?;
                    if reading.len() < OPEN_CONNECTIONS {
                        reading.push(read_request(stream));
                    }
                    continue;
                }
                Either::Right(Some(read)) => read,
                Either::Right(None) => continue,
            };
            let Some(target) = target else {
                continue;
            };
            let Ok(url) = Url::parse("http://localhost").and_then(|b| b.join(&target)) else {
                respond(&mut stream, 400, "Bad request").await;
                continue;
            };
            if url.path() != CALLBACK_PATH {
                respond(&mut stream, 404, "Not found").await;
                continue;
            }
            let get = |k: &str| {
                url.query_pairs()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.into_owned())
            };
            if get("state").as_deref() != Some(expected_state) {
                respond(&mut stream, 400, OTHER_STATE_PAGE).await;
                continue;
            }
            let outcome = if let Some(code) = get("code").filter(|c| !c.is_empty()) {
                Ok(Secret::new(code))
            } else {
                let error = get("error").unwrap_or_else(|| "no code".to_string());
                if error == "access_denied" {
                    Err(CallbackError::Denied)
                } else {
                    Err(CallbackError::Refused {
                        error,
                        description: get("error_description").unwrap_or_default(),
                    })
                }
            };
            let page = match &outcome {
                // Said before the code is exchanged (a wrong client secret, say, fails only
                // then): the terminal has the last word.
                Ok(_) => "Logged in to Salesforce, and sfconnect authorized. Return to the \
                          terminal: it finishes the login and says whether it worked. You can \
                          close this tab."
                    .to_string(),
                Err(e) => format!("Not logged in: {e}"),
            };
            respond(&mut stream, 200, &page).await;
            return outcome;
        }
    }
}

/// How long a connection to the callback may take to send its request.
const REQUEST_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The most connections to the callback read at once.
const OPEN_CONNECTIONS: usize = 16;

/// A connection and its request target, if it sent one within [`REQUEST_WAIT`].
async fn read_request(mut stream: TcpStream) -> (TcpStream, Option<String>) {
    let target = tokio::time::timeout(REQUEST_WAIT, request_target(&mut stream))
        .await
        .ok()
        .flatten();
    (stream, target)
}

/// The request target of an HTTP/1.1 request line (`GET /path?query HTTP/1.1`), read up to the
/// end of the headers (8 KiB at most).
async fn request_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut words = text.lines().next()?.split_whitespace();
    let _method = words.next()?;
    words.next().map(String::from)
}

async fn respond(stream: &mut TcpStream, status: u16, text: &str) {
    let html = format!(
        "<!DOCTYPE html><html><head><title>sfconnect login</title></head><body><p>{}</p></body></html>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    );
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
        html.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// What the code exchange gives.
#[derive(Debug, Clone)]
pub struct CodeTokens {
    /// The refresh token (absent when the connected app's scopes lack `refresh_token`).
    pub refresh_token: Option<Secret>,
    /// The org's instance URL.
    pub instance_url: String,
}

#[derive(Deserialize)]
struct CodeWire {
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    instance_url: String,
}

/// The exchange of the code for tokens: what [`exchange_code`] sends.
pub struct CodeExchange<'a> {
    /// Where to log in.
    pub login_url: &'a LoginUrl,
    /// The consumer key.
    pub client_id: &'a str,
    /// The consumer secret, when the connected app requires it for this flow.
    pub client_secret: Option<&'a Secret>,
    /// The code from the callback.
    pub code: &'a Secret,
    /// The PKCE verifier of the authorize URL's challenge.
    pub code_verifier: &'a Secret,
    /// The callback URL sent in the authorize URL (it must be the same).
    pub redirect_uri: &'a str,
}

/// Exchanges the code (`authorization_code` grant). A refusal is [`Error::Login`], whose
/// advice names what to fix (a redirect URI that differs from the authorize request's, a code
/// used or expired, a wrong secret).
pub async fn exchange_code(x: CodeExchange<'_>) -> Result<CodeTokens, Error> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code");
    form.append_pair("code", x.code.expose());
    form.append_pair("client_id", x.client_id);
    if let Some(secret) = x.client_secret {
        form.append_pair("client_secret", secret.expose());
    }
    form.append_pair("redirect_uri", x.redirect_uri);
    form.append_pair("code_verifier", x.code_verifier.expose());
    let body = form.finish();
    // What an answer echoing the form must not show.
    let secrets = form_secrets(&body);
    let http = reqwest::Client::builder()
        .user_agent(concat!("sfconnect/", env!("CARGO_PKG_VERSION")))
        // The form carries the code, its verifier and the client secret: never sent on.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(EXCHANGE_CONNECT_TIMEOUT)
        .timeout(EXCHANGE_TIMEOUT)
        .build()
        .map_err(|e| network_error(EXCHANGE, &e))?;
    let response = http
        .post(x.login_url.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| network_error(EXCHANGE, &e))?;
    if response.status().is_redirection() {
        return Err(redirect_error(EXCHANGE, &response));
    }
    if !response.status().is_success() {
        // The exchange's whole-request timeout bounds this read too.
        let api = api_error(response, None, &secrets).await;
        return Err(if (400..500).contains(&api.status) {
            // The JWT grant's "expired authorization code" is this grant's used or old code.
            let failure = match LoginFailure::from_api(&api) {
                LoginFailure::JwtExpired => LoginFailure::CodeExpired,
                other => other,
            };
            Error::Login { failure, api }
        } else {
            Error::Api {
                operation: EXCHANGE.to_string(),
                api,
            }
        });
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| network_error(EXCHANGE, &e))?;
    let wire: CodeWire = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
        operation: EXCHANGE.to_string(),
        message: token_answer_problem(&e),
    })?;
    Ok(CodeTokens {
        refresh_token: wire
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        instance_url: wire.instance_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_idle_connection_does_not_hold_up_the_redirect() {
        let listener = CallbackListener::bind(0).await.expect("bind");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, listener.port()));
        let waiting = tokio::spawn(async move { listener.code("st8").await });
        // A browser's preconnect: open, and silent.
        let _idle = TcpStream::connect(addr).await.expect("connect");
        let mut redirect = TcpStream::connect(addr).await.expect("connect");
        redirect
            .write_all(b"GET /OauthRedirect?code=c0de&state=st8 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        redirect.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let code = waiting.await.expect("join").expect("code");
        assert_eq!(code.expose(), "c0de");
    }

    /// A redirect with another `state` (a stale tab, another page) is answered 400 and does not
    /// end the wait: the right redirect that follows is taken.
    #[tokio::test]
    async fn a_redirect_with_another_state_is_refused_and_the_wait_goes_on() {
        let listener = CallbackListener::bind(0).await.expect("bind");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, listener.port()));
        let waiting = tokio::spawn(async move { listener.code("st8").await });
        for forged in [
            "GET /OauthRedirect?code=f0rged&state=other HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /OauthRedirect?code=f0rged HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /OauthRedirect?error=access_denied&state=st HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(forged.as_bytes()).await.expect("write");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.expect("read");
            assert!(answer.starts_with("HTTP/1.1 400"), "{forged}: {answer}");
            assert!(answer.contains("state does not match"), "{answer}");
            assert!(!answer.contains("f0rged"), "{answer}");
        }
        assert!(
            !waiting.is_finished(),
            "a wrong redirect does not end the login"
        );
        let mut redirect = TcpStream::connect(addr).await.expect("connect");
        redirect
            .write_all(b"GET /OauthRedirect?code=c0de&state=st8 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        redirect.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let code = waiting.await.expect("join").expect("code");
        assert_eq!(code.expose(), "c0de");
    }

    /// A redirect answering the code exchange is not followed: its target never sees the form.
    #[tokio::test]
    async fn a_redirected_code_exchange_is_not_followed() {
        let mut server = mockito::Server::new_async().await;
        let mut elsewhere = mockito::Server::new_async().await;
        let target = elsewhere
            .mock("POST", mockito::Matcher::Any)
            .expect(0)
            .create_async()
            .await;
        let moved = server
            .mock("POST", "/services/oauth2/token")
            .with_status(307)
            .with_header(
                "location",
                &format!("{}/services/oauth2/token?next=n3xt", elsewhere.url()),
            )
            .expect(1)
            .create_async()
            .await;
        let login_url = LoginUrl::parse(&server.url()).expect("a loopback URL");
        let (code, verifier, secret) = (
            Secret::new("c0de"),
            Secret::new("v3rifier"),
            Secret::new("s3cret"),
        );
        let err = exchange_code(CodeExchange {
            login_url: &login_url,
            client_id: "3MVG9key",
            client_secret: Some(&secret),
            code: &code,
            code_verifier: &verifier,
            redirect_uri: "http://localhost:1717/OauthRedirect",
        })
        .await
        .expect_err("a redirect is refused");
        moved.assert_async().await;
        target.assert_async().await;
        assert!(
            matches!(err, Error::Redirected { status: 307, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&elsewhere.url()), "{text}");
        for hidden in ["n3xt", "c0de", "v3rifier", "s3cret"] {
            assert!(!text.contains(hidden), "{text}");
        }
    }

    #[test]
    fn pkce_pairs_are_random_and_s256() {
        let a = Pkce::new().expect("pair");
        let b = Pkce::new().expect("pair");
        assert_eq!(a.verifier.expose().len(), 43);
        assert_ne!(a.verifier, b.verifier);
        let sha = ring::digest::digest(&ring::digest::SHA256, a.verifier.expose().as_bytes());
        assert_eq!(a.challenge, URL_SAFE_NO_PAD.encode(sha));
        assert!(!a.challenge.contains('=') && !a.challenge.contains('+'));
    }

    #[test]
    fn the_authorize_url_asks_for_a_code_with_pkce() {
        let url = authorize_url(
            &LoginUrl::sandbox(),
            "3MVG9key",
            "http://localhost:1717/OauthRedirect",
            "st8",
            "chall",
        );
        assert_eq!(
            url.as_str(),
            "https://test.salesforce.com/services/oauth2/authorize?response_type=code&client_id=3MVG9key\
             &redirect_uri=http%3A%2F%2Flocalhost%3A1717%2FOauthRedirect&scope=api+refresh_token\
             &state=st8&code_challenge=chall&code_challenge_method=S256"
        );
    }
}
