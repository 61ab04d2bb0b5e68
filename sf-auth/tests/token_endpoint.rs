#![allow(clippy::unwrap_used)]
//! The token request's answers that are no refusal of the credentials, and what it never does
//! with them: a refresh another process is making with the same refresh token (retried), a
//! proxy's 408 (retried), a lost answer (tried again), a redirect (never followed with the
//! form), a rotated refresh token in an answer that cannot be used otherwise (kept).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sf_auth::{
    Credentials, Error, ErrorKind, Grant, LoginFailure, LoginUrl, RetryConfig, Secret, Session,
    SessionConfig,
};

const CLIENT_SECRET: &str = "test-secret";
const REFRESH_TOKEN: &str = "test-refresh";

/// A config logging in at `url` with the test credentials and retries that do not wait.
fn config_at(url: &str) -> SessionConfig {
    let mut config = SessionConfig::new(
        LoginUrl::parse(url).unwrap(),
        Credentials {
            client_id: "test-client-id".to_string(),
            client_secret: Secret::new(CLIENT_SECRET),
            refresh_token: Some(Secret::new(REFRESH_TOKEN)),
        },
    );
    config.retry = RetryConfig::immediate();
    config
}

/// A token answer for an org on `base`.
fn token_answer(base: &str) -> String {
    format!(
        r#"{{"access_token":"00D1!TOKEN_1","instance_url":"{base}","id":"x","token_type":"Bearer","issued_at":"1","signature":"x"}}"#
    )
}

/// The token endpoint's answer to a refresh another process makes with the same refresh token
/// at the same moment: today's wording, and the wording before September 2024.
const IN_PROGRESS: [&str; 2] = [
    "token request is already being processed",
    "expired authorization code",
];

fn refusal(description: &str) -> String {
    format!(r#"{{"error":"invalid_grant","error_description":"{description}"}}"#)
}

#[tokio::test]
async fn a_refresh_already_being_processed_is_retried_not_a_credential_refusal() {
    for description in IN_PROGRESS {
        let mut server = mockito::Server::new_async().await;
        let busy = server
            .mock("POST", "/services/oauth2/token")
            .with_status(400)
            .with_header("content-type", "application/json")
            .with_body(refusal(description))
            .expect(1)
            .create_async()
            .await;
        let ok = server
            .mock("POST", "/services/oauth2/token")
            .with_header("content-type", "application/json")
            .with_body(token_answer(&server.url()))
            .expect(1)
            .create_async()
            .await;
        let session = Session::login(config_at(&server.url())).await.unwrap();
        busy.assert_async().await;
        ok.assert_async().await;
        assert_eq!(session.login_count(), 1, "{description}");
        assert_eq!(session.instance_url(), server.url());
    }
}

#[tokio::test]
async fn a_refresh_still_in_progress_after_the_retries_is_not_a_refusal() {
    for description in IN_PROGRESS {
        let mut server = mockito::Server::new_async().await;
        let busy = server
            .mock("POST", "/services/oauth2/token")
            .with_status(400)
            .with_header("content-type", "application/json")
            .with_body(refusal(description))
            .expect(2)
            .create_async()
            .await;
        let mut config = config_at(&server.url());
        config.retry.max_retries = 1;
        let err = Session::login(config).await.unwrap_err();
        busy.assert_async().await;
        // Not a login refusal: a renewal that failed so is not kept as permanent.
        assert!(
            !matches!(err, Error::Login { .. }),
            "{description}: {err:?}"
        );
        assert_ne!(err.kind(), ErrorKind::LoginRefused);
        // Either wording: a passing failure (the next sync may pass), as its twin is.
        assert_eq!(err.kind(), ErrorKind::Transient, "{description}");
        assert_eq!(err.api_error().map(|a| a.status), Some(400));
        assert!(!err.to_string().contains(REFRESH_TOKEN));
        assert!(!err.to_string().contains(CLIENT_SECRET));
    }
}

#[tokio::test]
async fn an_expired_authorization_code_is_no_clock_problem_without_the_jwt_grant() {
    // The client credentials grant holds no refresh token: the words are a refusal, not a
    // concurrent refresh, and not "check this machine's clock" either (that is the JWT grant's).
    let mut server = mockito::Server::new_async().await;
    let refused = server
        .mock("POST", "/services/oauth2/token")
        .with_status(400)
        .with_header("content-type", "application/json")
        .with_body(refusal("expired authorization code"))
        .expect(1)
        .create_async()
        .await;
    let mut config = config_at(&server.url());
    config.grant = Grant::ClientCredentials;
    config.credentials.refresh_token = None;
    let err = Session::login(config).await.unwrap_err();
    refused.assert_async().await;
    assert!(
        matches!(
            err,
            Error::Login {
                failure: LoginFailure::Other,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("clock"), "{err}");
}

#[tokio::test]
async fn a_proxy_timeout_at_the_token_endpoint_is_transient_not_a_credential_refusal() {
    let mut server = mockito::Server::new_async().await;
    let busy = server
        .mock("POST", "/services/oauth2/token")
        .with_status(408)
        .with_header("content-type", "text/html")
        .with_body("<html><body>Request Timeout</body></html>")
        .expect(2)
        .create_async()
        .await;
    let mut config = config_at(&server.url());
    config.retry.max_retries = 1;
    let err = Session::login(config).await.unwrap_err();
    busy.assert_async().await;
    assert!(!matches!(err, Error::Login { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(err.api_error().map(|a| a.status), Some(408));
}

#[tokio::test]
async fn a_redirected_token_request_is_not_followed() {
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
    let err = Session::login(config_at(&server.url())).await.unwrap_err();
    moved.assert_async().await;
    // The form (client secret, refresh token) never went to the redirect's target.
    target.assert_async().await;
    assert!(
        matches!(err, Error::Redirected { status: 307, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let text = err.to_string();
    assert!(
        text.contains("HTTP 307") && text.contains(&elsewhere.url()),
        "{text}"
    );
    for hidden in ["n3xt", REFRESH_TOKEN, CLIENT_SECRET] {
        assert!(!text.contains(hidden), "{text}");
    }
}

/// Reads one HTTP request whole (head, and the body its `content-length` announces); `false`
/// when the client closed the connection first.
async fn read_request(sock: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = sock.read(&mut chunk).await else {
            return false;
        };
        if n == 0 {
            return false;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return true;
            }
        }
    }
}

/// A server that reads each request whole, counts it, and closes the connection unanswered:
/// the request arrived, its answer was lost.
async fn answer_losing_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                if read_request(&mut sock).await {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                drop(sock);
            });
        }
    });
    (base, requests)
}

/// A token request whose answer is lost after it was sent (the connection closed without an
/// answer) is tried again, whatever the grant.
#[tokio::test]
async fn a_token_request_whose_answer_was_lost_is_tried_again() {
    let (base, requests) = answer_losing_server().await;
    for grant in [Grant::RefreshToken, Grant::ClientCredentials] {
        let before = requests.load(Ordering::SeqCst);
        let mut config = config_at(&base);
        config.grant = grant;
        if grant == Grant::ClientCredentials {
            config.credentials.refresh_token = None;
        }
        config.retry.max_retries = 2;
        let err = Session::login(config).await.unwrap_err();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Transient);
        let text = err.to_string();
        assert!(!text.contains(REFRESH_TOKEN) && !text.contains(CLIENT_SECRET));
        assert_eq!(
            requests.load(Ordering::SeqCst) - before,
            3,
            "{grant:?}: the first try and 2 retries"
        );
    }
}

/// A renewal whose answer rotates the refresh token but names an instance that cannot be used
/// fails, and still hands the new refresh token on to be written: Salesforce invalidated the
/// one sent, so dropping the new one would lose the grant.
#[tokio::test]
async fn a_rotated_refresh_token_is_kept_even_when_the_rest_of_the_answer_is_unusable() {
    let mut server = mockito::Server::new_async().await;
    let first = server
        .mock("POST", "/services/oauth2/token")
        .with_header("content-type", "application/json")
        .with_body(token_answer(&server.url()))
        .expect(1)
        .create_async()
        .await;
    let session = Session::login(config_at(&server.url())).await.unwrap();
    first.assert_async().await;
    server
        .mock("POST", "/services/oauth2/token")
        .with_header("content-type", "application/json")
        .with_body(
            r#"{"access_token":"00D1!TOKEN_2","instance_url":"ftp://elsewhere.example","refresh_token":"rotated-refresh","id":"x","token_type":"Bearer","issued_at":"2","signature":"x"}"#,
        )
        .create_async()
        .await;
    server
        .mock("GET", "/services/data/v62.0/limits")
        .with_status(401)
        .with_header("content-type", "application/json")
        .with_body(r#"[{"errorCode":"INVALID_SESSION_ID","message":"Session expired or invalid"}]"#)
        .create_async()
        .await;
    let error = session.limits().await.unwrap_err();
    assert!(error.to_string().contains("instance_url"), "{error}");
    assert!(!error.to_string().contains("rotated-refresh"), "{error}");
    assert_eq!(
        session
            .subscribe_rotation()
            .borrow()
            .as_ref()
            .map(Secret::expose),
        Some("rotated-refresh")
    );
    assert_eq!(
        session.refresh_token().as_ref().map(Secret::expose),
        Some("rotated-refresh")
    );
}

/// An answer read whole that does not arrive within the session's `body_timeout` (a server
/// sending a byte now and then passes the read timeout forever) fails as a timeout, after the
/// retries, instead of holding the sync.
#[tokio::test]
async fn an_answer_trickling_in_fails_as_a_timeout() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", "/services/oauth2/token")
        .with_header("content-type", "application/json")
        .with_body(token_answer(&server.url()))
        .create_async()
        .await;
    let slow = server
        .mock("GET", "/services/data/v62.0/sobjects")
        .with_header("content-type", "application/json")
        .with_chunked_body(|w| {
            for _ in 0..40 {
                w.write_all(b" ")?;
                w.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            w.write_all(b"{}")
        })
        .expect_at_least(1)
        .create_async()
        .await;
    let mut config = config_at(&server.url());
    config.body_timeout = Some(std::time::Duration::from_millis(300));
    let session = Session::login(config).await.unwrap();
    let error = session
        .fetch(sf_auth::Request::get("sobjects"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Network { timeout: true, message, .. }
            if message.contains("did not arrive whole within")),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::Transient);
    slow.assert_async().await;
}

/// A token answer that does not arrive whole within `body_timeout` is tried again, then fails
/// as a timeout: the login never waits on it forever.
#[tokio::test]
async fn a_token_answer_trickling_in_is_retried_then_fails_as_a_timeout() {
    let mut server = mockito::Server::new_async().await;
    let base = server.url();
    let slow = server
        .mock("POST", "/services/oauth2/token")
        .with_header("content-type", "application/json")
        .with_chunked_body(move |w| {
            for _ in 0..20 {
                w.write_all(b" ")?;
                w.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            w.write_all(token_answer(&base).as_bytes())
        })
        .expect_at_least(2)
        .create_async()
        .await;
    let mut config = config_at(&server.url());
    config.body_timeout = Some(std::time::Duration::from_millis(200));
    let error = match Session::login(config).await {
        Ok(_) => panic!("a token answer past body_timeout logged in"),
        Err(e) => e,
    };
    assert!(
        matches!(&error, Error::Network { timeout: true, message, .. }
            if message.contains("token answer did not arrive whole")),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::Transient);
    slow.assert_async().await;
}

/// A token answer of megabytes is not Salesforce's: refused, naming `login_url`, not read into
/// memory whole.
#[tokio::test]
async fn a_token_answer_too_large_is_refused_naming_login_url() {
    let mut server = mockito::Server::new_async().await;
    let huge = format!("{{\"padding\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    server
        .mock("POST", "/services/oauth2/token")
        .with_header("content-type", "application/json")
        .with_body(huge)
        .expect(1)
        .create_async()
        .await;
    let error = match Session::login(config_at(&server.url())).await {
        Ok(_) => panic!("a 2 MiB token answer logged in"),
        Err(e) => e,
    };
    assert!(
        matches!(&error, Error::Decode { message, .. }
            if message.contains("larger than") && message.contains("login_url")),
        "{error}"
    );
}

/// An error answer trickling in is read for `body_timeout` at most, then judged on what came:
/// here only the spaces before its JSON, so no error code.
#[tokio::test]
async fn an_error_answer_trickling_in_is_judged_on_what_came_in_time() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", "/services/oauth2/token")
        .with_header("content-type", "application/json")
        .with_body(token_answer(&server.url()))
        .create_async()
        .await;
    server
        .mock("GET", "/services/data/v62.0/sobjects")
        .with_status(400)
        .with_header("content-type", "application/json")
        .with_chunked_body(|w| {
            for _ in 0..20 {
                w.write_all(b" ")?;
                w.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            w.write_all(br#"[{"errorCode":"MALFORMED_QUERY","message":"late"}]"#)
        })
        .create_async()
        .await;
    let mut config = config_at(&server.url());
    config.body_timeout = Some(std::time::Duration::from_millis(200));
    let session = Session::login(config).await.unwrap();
    let error = session
        .fetch(sf_auth::Request::get("sobjects"))
        .await
        .unwrap_err();
    let api = error.api_error().expect("an API error");
    assert_eq!(api.status, 400);
    assert_eq!(api.error_code, None, "{error}");
}

/// Refusals of the refresh-token grant get advice about that grant: the user's approval of the
/// app (not the JWT flow's `username`), a deactivated user, an address or hours the profile
/// refuses.
#[tokio::test]
async fn refusals_of_the_refresh_grant_get_advice_for_that_grant() {
    for (description, failure, advice) in [
        (
            "user hasn't approved this consumer",
            LoginFailure::AppNotApproved,
            "re-authenticate",
        ),
        ("inactive user", LoginFailure::InactiveUser, "reactivate it"),
        (
            "ip restricted or invalid login hours",
            LoginFailure::IpOrHoursRestricted,
            "Login IP Ranges",
        ),
        (
            "audience is invalid",
            LoginFailure::Other,
            "check the connected app",
        ),
    ] {
        let mut server = mockito::Server::new_async().await;
        server
            .mock("POST", "/services/oauth2/token")
            .with_status(400)
            .with_header("content-type", "application/json")
            .with_body(refusal(description))
            .expect(1)
            .create_async()
            .await;
        let err = Session::login(config_at(&server.url())).await.unwrap_err();
        let Error::Login { failure: got, .. } = &err else {
            panic!("{description}: not a login refusal: {err:?}");
        };
        assert_eq!(*got, failure, "{description}");
        assert!(
            got.advice().contains(advice),
            "{description}: {}",
            got.advice()
        );
        assert!(!got.advice().contains("`username`"), "{description}");
        assert_eq!(err.kind(), ErrorKind::LoginRefused);
    }
}
