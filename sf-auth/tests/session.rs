#![allow(clippy::unwrap_used)]
//! The session against recorded Salesforce exchanges served by mockito.

use std::time::Duration;

use fixtures::recorded::Scenario;
use sf_auth::{
    ApiUsage, Credentials, Error, ErrorKind, Grant, LoginFailure, LoginUrl, Request, RetryConfig,
    Secret, Session, SessionConfig,
};

const CLIENT_SECRET: &str = "test-secret";
const REFRESH_TOKEN: &str = "test-refresh";

fn config(server: &mockito::Server) -> SessionConfig {
    config_at(&server.url())
}

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

/// Eight concurrent `GET sobjects` calls on one session.
async fn eight_calls(session: &Session) -> Vec<Result<serde_json::Value, Error>> {
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let s = session.clone();
            tokio::spawn(async move { s.get_json::<serde_json::Value>("sobjects", &[]).await })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    results
}

async fn server_with(scenarios: &[(&str, &str)]) -> (mockito::ServerGuard, Vec<mockito::Mock>) {
    server_expecting(scenarios, &[]).await
}

/// Mounts the scenarios; `expect` lists (exchange index across all scenarios, exact hits).
async fn server_expecting(
    scenarios: &[(&str, &str)],
    expect: &[(usize, usize)],
) -> (mockito::ServerGuard, Vec<mockito::Mock>) {
    let mut server = mockito::Server::new_async().await;
    let mut mocks = Vec::new();
    for (area, name) in scenarios {
        let mut scenario = Scenario::load(area, name).unwrap();
        for (index, hits) in expect {
            if let Some(local) = index.checked_sub(mocks.len()) {
                scenario = scenario.expecting(local, *hits);
            }
        }
        mocks.extend(scenario.mount_async(&mut server).await);
    }
    (server, mocks)
}

#[tokio::test]
async fn refresh_token_grant_logs_in_and_calls_the_instance() {
    let (server, _mocks) = server_with(&[("auth", "session_expired_then_ok")]).await;
    let session = Session::login(config(&server)).await.unwrap();
    assert_eq!(session.instance_url(), server.url());
    assert_eq!(session.org_id().as_deref(), Some("00D000000000001"));
    assert_eq!(session.login_count(), 1);
    assert!(session.refresh_token().is_some());
    // The first token is expired: one renewal, one replay, success.
    let global: serde_json::Value = session.get_json("sobjects", &[]).await.unwrap();
    assert_eq!(global["maxBatchSize"], 200);
    assert_eq!(session.login_count(), 2);
    assert_eq!(
        session.api_usage(),
        Some(ApiUsage {
            used: 3,
            max: 15000
        })
    );
}

#[tokio::test]
async fn a_second_401_is_an_error_not_a_loop() {
    let (server, mocks) =
        server_expecting(&[("auth", "session_always_expired")], &[(0, 2), (1, 2)]).await;
    let session = Session::login(config(&server)).await.unwrap();
    let err = session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("INVALID_SESSION_ID"), "{err}");
    // One initial login plus exactly one renewal; the data call was sent twice.
    assert_eq!(session.login_count(), 2);
    assert_eq!(session.request_count(), 2);
    mocks[0].assert_async().await;
    mocks[1].assert_async().await;
}

/// Reads one HTTP request (head and, for the token POST, the form body) from `sock`; `None`
/// when the client closed it first.
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap();
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(text);
            }
        }
    }
}

/// Answers `status` with the JSON `body` and closes the connection.
async fn reply(mut sock: tokio::net::TcpStream, status: u16, body: &str) {
    use tokio::io::AsyncWriteExt;
    let reply = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(reply.as_bytes()).await.unwrap();
    let _ = sock.shutdown().await;
}

/// The token answer for login `n`: access token `00D1!TOKEN_<n>` on `base`.
fn token_answer(n: usize, base: &str) -> String {
    format!(
        r#"{{"access_token":"00D1!TOKEN_{n}","instance_url":"{base}","id":"x","token_type":"Bearer","issued_at":"1","signature":"x"}}"#
    )
}

const EXPIRED: &str =
    r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;

/// A tiny HTTP server for the single-flight test: it holds every request made with the first
/// token until eight of them have arrived, then answers them all 401, so all eight really see an
/// expired session at once. It counts logins.
async fn gated_server(
    renewal_fails: bool,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let logins = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let (logins2, base2) = (logins.clone(), base.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (logins, barrier, base) = (logins2.clone(), barrier.clone(), base2.clone());
            tokio::spawn(async move {
                let Some(text) = read_request(&mut sock).await else {
                    return;
                };
                if text.starts_with("POST /services/oauth2/token") {
                    let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
                    if n > 1 && renewal_fails {
                        let body = r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#;
                        return reply(sock, 400, body).await;
                    }
                    reply(sock, 200, &token_answer(n, &base)).await
                } else if text.contains("Bearer 00D1!TOKEN_1") {
                    barrier.wait().await;
                    reply(sock, 401, EXPIRED).await
                } else {
                    reply(sock, 200, r#"{"sobjects":[]}"#).await
                }
            });
        }
    });
    (base, logins)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_401s_cause_exactly_one_login() {
    let (base, logins) = gated_server(false).await;
    let config = config_at(&base);
    let session = Session::login(config).await.unwrap();
    for result in eight_calls(&session).await {
        result.unwrap();
    }
    // The barrier released only once all eight held the expired token: one renewal served them all.
    assert_eq!(logins.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(session.login_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_401_for_a_token_replaced_meanwhile_is_not_the_request_s_own_renewal() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // Request A is sent with token 1 and held; request B, also with token 1, is refused, renews
    // (token 2) and succeeds. Then A is refused too, for the token B replaced; its replay with
    // token 2 is refused as well (token 2 expired meanwhile). A renews once itself (token 3) and
    // succeeds: the first refusal was not its renewal.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let logins = Arc::new(AtomicUsize::new(0));
    let token_1_seen = Arc::new(AtomicUsize::new(0));
    let token_2_seen = Arc::new(AtomicUsize::new(0));
    let a_held = Arc::new(tokio::sync::Notify::new());
    let b_done = Arc::new(tokio::sync::Notify::new());
    {
        let (logins, base) = (logins.clone(), base.clone());
        let (t1, t2) = (token_1_seen.clone(), token_2_seen.clone());
        let (a_held, b_done) = (a_held.clone(), b_done.clone());
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let (logins, base) = (logins.clone(), base.clone());
                let (t1, t2) = (t1.clone(), t2.clone());
                let (a_held, b_done) = (a_held.clone(), b_done.clone());
                tokio::spawn(async move {
                    let Some(text) = read_request(&mut sock).await else {
                        return;
                    };
                    if text.starts_with("POST /services/oauth2/token") {
                        let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
                        return reply(sock, 200, &token_answer(n, &base)).await;
                    }
                    if text.contains("Bearer 00D1!TOKEN_1") {
                        if t1.fetch_add(1, Ordering::SeqCst) == 0 {
                            // A: held until B has renewed and been served.
                            a_held.notify_one();
                            b_done.notified().await;
                        }
                        return reply(sock, 401, EXPIRED).await;
                    }
                    if text.contains("Bearer 00D1!TOKEN_2") {
                        if t2.fetch_add(1, Ordering::SeqCst) == 0 {
                            // B's replay succeeds; A's replay, later, finds token 2 expired.
                            reply(sock, 200, r#"{"who":"B"}"#).await;
                            b_done.notify_one();
                            return;
                        }
                        return reply(sock, 401, EXPIRED).await;
                    }
                    reply(sock, 200, r#"{"who":"A"}"#).await
                });
            }
        });
    }
    let session = Session::login(config_at(&base)).await.unwrap();
    let a = {
        let s = session.clone();
        tokio::spawn(async move { s.get_json::<serde_json::Value>("sobjects", &[]).await })
    };
    a_held.notified().await;
    let b = session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap();
    assert_eq!(b, serde_json::json!({"who": "B"}));
    let a = a.await.unwrap().unwrap();
    assert_eq!(a, serde_json::json!({"who": "A"}));
    // The first login, B's renewal, A's own renewal.
    assert_eq!(logins.load(Ordering::SeqCst), 3);
    assert_eq!(token_2_seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn rotated_refresh_token_is_exposed_for_persisting() {
    let (server, _mocks) = server_with(&[("auth", "refresh_rotated")]).await;
    let session = Session::login(config(&server)).await.unwrap();
    let rotated = session.subscribe_rotation().borrow().clone();
    assert_eq!(
        rotated.as_ref().map(Secret::expose),
        Some("5Aep861ROTATED_REFRESH_TOKEN")
    );
    assert_eq!(
        session.refresh_token().as_ref().map(Secret::expose),
        Some("5Aep861ROTATED_REFRESH_TOKEN")
    );
}

#[tokio::test]
async fn no_rotation_without_a_new_refresh_token() {
    let (server, _mocks) = server_with(&[("auth", "refresh_ok")]).await;
    let session = Session::login(config(&server)).await.unwrap();
    assert!(session.subscribe_rotation().borrow().is_none());
    assert_eq!(
        session.refresh_token().as_ref().map(Secret::expose),
        Some(REFRESH_TOKEN)
    );
}

#[tokio::test]
async fn client_credentials_grant() {
    let (server, mocks) = server_with(&[("auth", "client_credentials_ok")]).await;
    let mut config = config(&server);
    config.grant = Grant::ClientCredentials;
    config.credentials.refresh_token = None;
    let session = Session::login(config).await.unwrap();
    assert_eq!(session.instance_url(), server.url());
    mocks[0].assert_async().await;
}

#[tokio::test]
async fn refresh_grant_without_a_refresh_token_is_refused_before_any_call() {
    let (server, mocks) = server_expecting(&[("auth", "refresh_ok")], &[(0, 0)]).await;
    let mut config = config(&server);
    config.credentials.refresh_token = None;
    let err = Session::login(config).await.unwrap_err();
    assert!(err.to_string().contains("no refresh_token"), "{err}");
    mocks[0].assert_async().await;
}

#[tokio::test]
async fn token_errors_are_mapped_to_actionable_messages() {
    let cases = [
        (
            "login_expired_refresh_token",
            LoginFailure::ExpiredRefreshToken,
            "re-authenticate and replace `refresh_token`",
        ),
        (
            "login_invalid_client_id",
            LoginFailure::UnknownClientId,
            "check `client_id`",
        ),
        (
            "login_invalid_client",
            LoginFailure::WrongClientSecret,
            "check `client_secret`",
        ),
    ];
    for (scenario, want, advice) in cases {
        let (server, mocks) = server_expecting(&[("auth", scenario)], &[(0, 1)]).await;
        let err = Session::login(config(&server)).await.unwrap_err();
        match &err {
            Error::Login { failure, api } => {
                assert_eq!(*failure, want, "{scenario}");
                assert_eq!(api.status, 400);
            }
            other => panic!("{scenario}: expected a login error, got {other:?}"),
        }
        assert_eq!(err.kind(), ErrorKind::LoginRefused);
        assert!(err.to_string().contains(advice), "{scenario}: {err}");
        // A refused grant is never retried.
        mocks[0].assert_async().await;
    }
}

#[tokio::test]
async fn a_network_failure_is_not_a_credential_failure() {
    // Bind and drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = config_at(&format!("http://127.0.0.1:{port}"));
    config.retry.max_retries = 1;
    let err = Session::login(config).await.unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(!err.to_string().contains(REFRESH_TOKEN));
}

#[tokio::test]
async fn a_connected_app_without_a_run_as_user_is_named_with_the_fix() {
    let mut server = mockito::Server::new_async().await;
    let refused = server
        .mock("POST", "/services/oauth2/token")
        .with_status(400)
        .with_header("content-type", "application/json")
        .with_body(
            r#"{"error":"invalid_grant","error_description":"no client credentials user enabled"}"#,
        )
        .expect(1)
        .create_async()
        .await;
    let err = Session::login(config(&server)).await.unwrap_err();
    refused.assert_async().await;
    match &err {
        Error::Login { failure, .. } => {
            assert_eq!(*failure, LoginFailure::NoClientCredentialsUser)
        }
        other => panic!("expected a login refusal, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::LoginRefused);
    assert!(err.to_string().contains("Run As user"), "{err}");
}

#[tokio::test]
async fn a_rate_limited_token_endpoint_is_transient_not_a_credential_refusal() {
    let mut server = mockito::Server::new_async().await;
    let busy = server
        .mock("POST", "/services/oauth2/token")
        .with_status(429)
        .with_header("content-type", "application/json")
        .with_body(r#"{"error":"rate_limited","error_description":"too many requests"}"#)
        .expect(2)
        .create_async()
        .await;
    let mut config = config(&server);
    config.retry.max_retries = 1;
    let err = Session::login(config).await.unwrap_err();
    busy.assert_async().await;
    assert!(!matches!(err, Error::Login { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(err.api_error().map(|a| a.status), Some(429));
    assert!(!err.to_string().contains(REFRESH_TOKEN));
    assert!(!err.to_string().contains(CLIENT_SECRET));
}

#[tokio::test]
async fn plain_http_instance_url_on_a_public_host_is_refused() {
    let (server, _mocks) = server_with(&[("auth", "login_http_instance")]).await;
    let err = Session::login(config(&server)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("plain http is only allowed for loopback"),
        "{err}"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_and_limits_are_read() {
    let (server, mocks) = server_expecting(
        &[("auth", "refresh_ok"), ("auth", "transient_then_ok")],
        &[(4, 1)],
    )
    .await;
    let session = Session::login(config(&server)).await.unwrap();
    let limits = session.limits().await.unwrap();
    assert_eq!(limits.daily_api_requests.max, 15000);
    assert_eq!(limits.daily_api_requests.remaining, 14975);
    assert_eq!(
        limits.daily_bulk_v2_query_jobs.map(|l| l.remaining),
        Some(9990)
    );
    // per-app usage does not confuse the org-wide usage
    assert_eq!(
        session.api_usage(),
        Some(ApiUsage {
            used: 25,
            max: 15000
        })
    );
    for mock in &mocks[1..4] {
        mock.assert_async().await;
    }
    // Three failures and the success: four requests sent, the login not counted.
    assert_eq!(session.request_count(), 4);
    mocks[4].assert_async().await;
}

#[tokio::test]
async fn retries_give_up_after_the_budget() {
    let (server, mocks) = server_expecting(
        &[("auth", "refresh_ok"), ("auth", "transient_then_ok")],
        &[(4, 0)],
    )
    .await;
    let mut config = config(&server);
    config.retry.max_retries = 2;
    let session = Session::login(config).await.unwrap();
    let err = session.limits().await.unwrap_err();
    // 503, 500, then 420 is the third failure: the last one is reported.
    assert_eq!(err.api_error().map(|a| a.status), Some(420));
    assert_eq!(err.kind(), ErrorKind::Transient);
    mocks[4].assert_async().await;
}

#[tokio::test]
async fn the_daily_limit_is_never_retried() {
    let (server, mocks) = server_expecting(
        &[("auth", "refresh_ok"), ("auth", "daily_limit")],
        &[(1, 1)],
    )
    .await;
    let session = Session::login(config(&server)).await.unwrap();
    let err = session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DailyLimitExceeded);
    assert_eq!(
        session.api_usage(),
        Some(ApiUsage {
            used: 15001,
            max: 15000
        })
    );
    mocks[1].assert_async().await;
}

#[tokio::test]
async fn the_concurrent_limit_is_retried() {
    let (server, mocks) =
        server_with(&[("auth", "refresh_ok"), ("auth", "concurrent_limit_then_ok")]).await;
    let session = Session::login(config(&server)).await.unwrap();
    session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap();
    assert_eq!(
        session.api_usage(),
        Some(ApiUsage {
            used: 10018,
            max: 100000
        })
    );
    mocks[1].assert_async().await;
    mocks[2].assert_async().await;
}

/// A slot of the org's concurrency limits frees when a request of 20 s or more ends: a refused
/// request waits at least 5 s (not the 0.5 s of a first transient retry) ...
#[tokio::test(start_paused = true)]
async fn the_concurrent_limit_waits_for_a_slot() {
    let (server, _mocks) =
        server_with(&[("auth", "refresh_ok"), ("auth", "concurrent_limit_then_ok")]).await;
    let mut config = config(&server).for_paused_time();
    config.retry = RetryConfig::default();
    let session = Session::login(config).await.unwrap();
    let start = tokio::time::Instant::now();
    session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(5), "{waited:?}");
    assert!(waited < Duration::from_secs(6), "{waited:?}");
}

/// ... and is tried up to 12 times, past the 5 retries of other passing failures.
#[tokio::test]
async fn the_concurrent_limit_is_retried_longer_than_other_failures() {
    let mut server = mockito::Server::new_async().await;
    let mut mocks = Scenario::load("auth", "refresh_ok")
        .unwrap()
        .mount_async(&mut server)
        .await;
    let refused = server
        .mock("GET", mockito::Matcher::Regex("/sobjects$".to_string()))
        .with_status(403)
        .with_body(
            r#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        )
        .expect(13)
        .create_async()
        .await;
    mocks.push(refused);
    let session = Session::login(config(&server)).await.unwrap();
    let err = session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConcurrentLimit);
    // The first try and 12 retries.
    mocks[mocks.len() - 1].assert_async().await;
    assert_eq!(session.request_count(), 13);
}

#[tokio::test]
async fn the_api_budget_stops_requests_before_they_are_sent() {
    let (server, mocks) = server_expecting(
        &[("auth", "refresh_ok"), ("auth", "concurrent_limit_then_ok")],
        &[(2, 1)],
    )
    .await;
    let mut config = config(&server);
    config.api_budget = Some(0.1); // 10% of 100000 = 10000, and 10018 are used after the first call
    let session = Session::login(config).await.unwrap();
    session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap();
    let err = session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BudgetExhausted {
                used: 10018,
                max: 100000,
                budget: 10000
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::DailyLimitExceeded);
    mocks[2].assert_async().await;
    // Cleaning up after itself (a Bulk job's delete) goes out past the budget.
    let mut server = server;
    let delete = server
        .mock(
            "DELETE",
            "/services/data/v62.0/jobs/query/750000000000001AAA",
        )
        .with_status(204)
        .expect(1)
        .create_async()
        .await;
    session
        .send(Request::delete("jobs/query/750000000000001AAA").past_budget())
        .await
        .unwrap();
    delete.assert_async().await;
    let refused = session
        .send(Request::delete("jobs/query/750000000000001AAA"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::BudgetExhausted { .. }),
        "{refused:?}"
    );

    // The rolling count went down: `refresh_usage` (sent past the budget) learns it, and the
    // session sends requests again.
    let limits = server
        .mock("GET", "/services/data/v62.0/limits")
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(r#"{"DailyApiRequests": {"Max": 100000, "Remaining": 95000}}"#)
        .expect(1)
        .create_async()
        .await;
    let other = server
        .mock(
            "DELETE",
            "/services/data/v62.0/jobs/query/750000000000002AAA",
        )
        .with_status(204)
        .expect(1)
        .create_async()
        .await;
    let usage = session.refresh_usage().await.unwrap();
    assert_eq!(
        usage,
        ApiUsage {
            used: 5000,
            max: 100000
        }
    );
    assert_eq!(session.api_usage(), Some(usage));
    // Within a minute of the reading over the budget: a lower reading in a response header
    // could be an older answer arriving late, but `refresh_usage` asked for the count now.
    session
        .send(Request::delete("jobs/query/750000000000002AAA"))
        .await
        .unwrap();
    limits.assert_async().await;
    other.assert_async().await;
}

#[tokio::test]
async fn every_error_body_shape_parses() {
    let (server, _mocks) = server_with(&[("auth", "refresh_ok"), ("auth", "error_bodies")]).await;
    let session = Session::login(config(&server)).await.unwrap();

    let err = session
        .fetch(Request::get("query").query("q", "SELECT Nope FROM Account"))
        .await
        .unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!(api.status, 400);
    assert_eq!(api.error_code.as_deref(), Some("INVALID_FIELD"));
    assert!(api
        .message
        .contains("No such column 'Nope' on entity 'Account'"));
    assert_eq!(err.kind(), ErrorKind::InvalidField);
    assert!(
        err.to_string()
            .starts_with("GET query failed: HTTP 400 INVALID_FIELD"),
        "{err}"
    );

    let err = session
        .fetch(Request::get("sobjects/Nope__c/describe"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let err = session
        .fetch(Request::get("oauth-shaped"))
        .await
        .unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!(api.error_code.as_deref(), Some("invalid_request"));
    assert_eq!(api.message, "missing parameter");

    let err = session.fetch(Request::get("empty-body")).await.unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!(
        (api.status, api.error_code.as_deref(), api.message.as_str()),
        (410, None, "")
    );

    let err = session.fetch(Request::get("html-body")).await.unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!(api.status, 404);
    assert!(api.message.contains("<title>Not Found</title>"));
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn responses_stream_as_bytes() {
    use futures_util::StreamExt;
    let mut server = mockito::Server::new_async().await;
    Scenario::load("auth", "refresh_ok")
        .unwrap()
        .mount_async(&mut server)
        .await;
    let body = "x".repeat(200_000);
    server
        .mock("GET", "/services/data/v62.0/big")
        .with_body(&body)
        .create_async()
        .await;
    let session = Session::login(config(&server)).await.unwrap();
    let response = session.send(Request::get("big")).await.unwrap();
    let mut stream = response.bytes_stream();
    let mut total = 0;
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len();
        chunks += 1;
    }
    assert_eq!(total, body.len());
    assert!(chunks >= 1);
}

#[tokio::test]
async fn query_strings_are_form_encoded() {
    let mut server = mockito::Server::new_async().await;
    Scenario::load("auth", "refresh_ok")
        .unwrap()
        .mount_async(&mut server)
        .await;
    // The raw query must carry `+` as %2B and spaces as `+`.
    let mock = server
        .mock("GET", "/services/data/v62.0/query")
        .match_query(mockito::Matcher::Regex(
            r"^q=SELECT\+Id\+FROM\+Account\+WHERE\+SystemModstamp\+%3E%3D\+2024-01-01T00%3A00%3A00%2B00%3A00$".to_string(),
        ))
        .with_body(r#"{"totalSize":0,"done":true,"records":[]}"#)
        .create_async()
        .await;
    let session = Session::login(config(&server)).await.unwrap();
    session
        .fetch(Request::get("query").query(
            "q",
            "SELECT Id FROM Account WHERE SystemModstamp >= 2024-01-01T00:00:00+00:00",
        ))
        .await
        .unwrap();
    mock.assert_async().await;
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_between_retries() {
    let (server, mocks) = server_expecting(
        &[("auth", "refresh_ok"), ("auth", "transient_then_ok")],
        &[(4, 1)],
    )
    .await;
    // No transport timers, so virtual time moves only for the backoff sleeps.
    let mut config = config(&server).for_paused_time();
    config.retry = RetryConfig {
        max_retries: 5,
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(30),
        multiplier: 2.0,
        jitter: false,
        ..RetryConfig::default()
    };
    let session = Session::login(config).await.unwrap();
    let start = tokio::time::Instant::now();
    session.limits().await.unwrap();
    // Three failures: waits of 0.5 s, 1 s and 2 s.
    assert_eq!(start.elapsed(), Duration::from_millis(3500));
    mocks[4].assert_async().await;
}

#[tokio::test(start_paused = true)]
async fn jittered_backoff_stays_within_its_bounds() {
    let (server, _mocks) = server_expecting(
        &[("auth", "refresh_ok"), ("auth", "transient_then_ok")],
        &[],
    )
    .await;
    let mut config = config(&server).for_paused_time();
    config.retry = RetryConfig {
        initial_backoff: Duration::from_millis(500),
        ..RetryConfig::default()
    };
    let session = Session::login(config).await.unwrap();
    let start = tokio::time::Instant::now();
    session.limits().await.unwrap();
    let elapsed = start.elapsed();
    // Each wait is drawn from [b/2, b]: between 1.75 s and 3.5 s in all.
    assert!(elapsed >= Duration::from_millis(1750), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(3500), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_renewal_is_shared_not_repeated() {
    let (base, logins) = gated_server(true).await;
    let config = config_at(&base);
    let session = Session::login(config).await.unwrap();
    for result in eight_calls(&session).await {
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Login {
                    failure: LoginFailure::ExpiredRefreshToken,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // The initial login and one refused renewal: the waiters got its answer.
    assert_eq!(logins.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_replay_follows_a_new_instance_url() {
    // Logging in again moves the org to another instance: the replay goes there.
    let mut login_server = mockito::Server::new_async().await;
    let mut new_instance = mockito::Server::new_async().await;
    let token = |n: u32, instance: &str| {
        serde_json::json!({"access_token": format!("00D1!TOKEN_{n}"), "instance_url": instance,
            "id": "x", "token_type": "Bearer", "issued_at": "1", "signature": "x"})
        .to_string()
    };
    login_server
        .mock("POST", "/services/oauth2/token")
        .with_body(token(1, &login_server.url()))
        .expect(1)
        .create_async()
        .await;
    login_server
        .mock("POST", "/services/oauth2/token")
        .with_body(token(2, &new_instance.url()))
        .expect(1)
        .create_async()
        .await;
    let expired = login_server
        .mock("GET", "/services/data/v62.0/sobjects")
        .with_status(401)
        .with_body(r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#)
        .expect(1)
        .create_async()
        .await;
    let moved = new_instance
        .mock("GET", "/services/data/v62.0/sobjects")
        .match_header("authorization", "Bearer 00D1!TOKEN_2")
        .with_body(r#"{"sobjects": []}"#)
        .expect(1)
        .create_async()
        .await;
    let session = Session::login(config(&login_server)).await.unwrap();
    session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap();
    assert_eq!(session.instance_url(), new_instance.url());
    expired.assert_async().await;
    moved.assert_async().await;
}

#[tokio::test]
async fn the_token_never_goes_to_another_host() {
    let (server, _mocks) = server_with(&[("auth", "refresh_ok")]).await;
    let session = Session::login(config(&server)).await.unwrap();
    for path in ["//evil.example/steal", "/\\evil.example/steal"] {
        let err = session.fetch(Request::get(path)).await.unwrap_err();
        assert!(err.to_string().contains("another host"), "{path}: {err}");
    }
    assert_eq!(session.request_count(), 0);
}

#[tokio::test]
async fn edge_406_and_429_are_retried() {
    let (server, mocks) = server_expecting(
        &[("auth", "refresh_ok"), ("auth", "edge_406_429_then_ok")],
        &[(1, 1), (2, 1), (3, 1)],
    )
    .await;
    let session = Session::login(config(&server)).await.unwrap();
    session
        .get_json::<serde_json::Value>("sobjects", &[])
        .await
        .unwrap();
    for mock in &mocks[1..] {
        mock.assert_async().await;
    }
    assert_eq!(session.request_count(), 3);
}

#[tokio::test]
async fn other_4xx_answers_are_never_retried() {
    let (server, mocks) = server_expecting(
        &[("auth", "refresh_ok"), ("auth", "error_bodies")],
        &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)],
    )
    .await;
    let session = Session::login(config(&server)).await.unwrap();
    let _ = session
        .fetch(Request::get("query").query("q", "SELECT Nope FROM Account"))
        .await
        .unwrap_err();
    for path in [
        "sobjects/Nope__c/describe",
        "oauth-shaped",
        "empty-body",
        "html-body",
    ] {
        let _ = session.fetch(Request::get(path)).await.unwrap_err();
    }
    for mock in &mocks[1..] {
        mock.assert_async().await;
    }
    assert_eq!(session.request_count(), 5);
}

#[tokio::test]
async fn client_credentials_to_a_login_host_names_the_fix() {
    let (server, _mocks) = server_with(&[("auth", "login_wrong_domain")]).await;
    let mut config = config(&server);
    config.grant = Grant::ClientCredentials;
    let err = Session::login(config).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Login {
                failure: LoginFailure::WrongDomainForGrant,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("My Domain"), "{err}");
}

/// A server that reads requests and never answers, counting them; the login answers normally.
async fn silent_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let (counter, base2) = (requests.clone(), base.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (counter, base) = (counter.clone(), base2.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                if head.starts_with("POST /services/oauth2/token") {
                    let body = format!(
                        r#"{{"access_token":"00D1!T","instance_url":"{base}","id":"x","token_type":"Bearer","issued_at":"1","signature":"x"}}"#
                    );
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                // Hold the connection open without answering until the client gives up.
                let _ = sock.read(&mut buf).await;
            });
        }
    });
    (base, requests)
}

#[tokio::test]
async fn timeouts_are_retried_for_idempotent_requests_only() {
    let (base, requests) = silent_server().await;
    let mut config = config_at(&base);
    config.read_timeout = Some(Duration::from_millis(50));
    config.retry = RetryConfig {
        max_retries: 2,
        ..RetryConfig::immediate()
    };
    let session = Session::login(config).await.unwrap();
    let err = session.fetch(Request::get("sobjects")).await.unwrap_err();
    assert!(
        matches!(err, Error::Network { timeout: true, .. }),
        "{err:?}"
    );
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "GET: first try and 2 retries"
    );
    let before = requests.load(std::sync::atomic::Ordering::SeqCst);
    let post = Request::json(sf_auth::Method::Post, "jobs/query", &serde_json::json!({}));
    let err = session.fetch(post).await.unwrap_err();
    assert!(
        matches!(err, Error::Network { timeout: true, .. }),
        "{err:?}"
    );
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst) - before,
        1,
        "a POST that timed out may have been done: not sent again"
    );
}
