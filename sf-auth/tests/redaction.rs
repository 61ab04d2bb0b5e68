#![allow(clippy::unwrap_used)]
//! Secrets never show: credentials, the session and every error, formatted with `{}` and `{:?}`.

use fixtures::recorded::Scenario;
use sf_auth::{Credentials, LoginUrl, RetryConfig, Secret, Session, SessionConfig};

const CLIENT_SECRET: &str = "SUPER-SECRET-CLIENT-SECRET";
const REFRESH_TOKEN: &str = "SUPER-SECRET-REFRESH-TOKEN";
const ACCESS_TOKENS: [&str; 2] = ["TEST_ACCESS_TOKEN_1", "TEST_ACCESS_TOKEN_2"];
const ROTATED: &str = "5Aep861ROTATED_REFRESH_TOKEN";

fn assert_clean(text: &str) {
    for secret in [CLIENT_SECRET, REFRESH_TOKEN, ROTATED]
        .iter()
        .chain(ACCESS_TOKENS.iter())
    {
        assert!(!text.contains(secret), "a secret leaked into: {text}");
    }
}

fn config(url: &str) -> SessionConfig {
    let mut config = SessionConfig::new(
        LoginUrl::parse(url).unwrap(),
        Credentials {
            client_id: "test-client-id".to_string(),
            client_secret: Secret::new(CLIENT_SECRET),
            refresh_token: Some(Secret::new(REFRESH_TOKEN)),
        },
    );
    config.retry = RetryConfig {
        max_retries: 1,
        ..RetryConfig::immediate()
    };
    config
}

#[test]
fn credentials_and_config_print_stars() {
    let config = config("https://acme.my.salesforce.com");
    for text in [
        format!("{:?}", config),
        format!("{:?}", config.credentials),
        format!("{}", config.credentials.client_secret),
        format!("{:?}", Secret::new(REFRESH_TOKEN)),
    ] {
        assert_clean(&text);
        assert!(text.contains("***"), "{text}");
    }
}

#[tokio::test]
async fn sessions_and_errors_print_no_secret() {
    let mut outputs = Vec::new();
    for scenarios in [
        vec!["refresh_rotated"],
        vec!["session_always_expired"],
        vec!["login_expired_refresh_token"],
        vec!["login_invalid_client"],
        vec!["login_http_instance"],
        vec!["refresh_ok", "daily_limit"],
        vec!["refresh_ok", "transient_then_ok"],
        vec!["refresh_ok", "error_bodies"],
    ] {
        let mut server = mockito::Server::new_async().await;
        for name in &scenarios {
            Scenario::load("auth", name)
                .unwrap()
                .mount_async(&mut server)
                .await;
        }
        let login = Session::login(config(&server.url())).await;
        if scenarios[0].starts_with("refresh") || scenarios[0] == "session_always_expired" {
            assert!(login.is_ok(), "{scenarios:?}: {login:?}");
        }
        if scenarios == ["refresh_rotated"] {
            let session = login.as_ref().unwrap();
            assert_eq!(
                session.refresh_token().as_ref().map(Secret::expose),
                Some(ROTATED),
                "the rotated token is held"
            );
        }
        match login {
            Ok(session) => {
                outputs.push(format!("{session:?}"));
                outputs.push(format!("{:?}", session.refresh_token()));
                outputs.push(format!(
                    "{:?}",
                    session.subscribe_rotation().borrow().clone()
                ));
                for path in [
                    "sobjects",
                    "limits",
                    "query",
                    "oauth-shaped",
                    "empty-body",
                    "html-body",
                ] {
                    if let Err(e) = session.get_json::<serde_json::Value>(path, &[]).await {
                        outputs.push(format!("{e}"));
                        outputs.push(format!("{e:?}"));
                    }
                }
            }
            Err(e) => {
                outputs.push(format!("{e}"));
                outputs.push(format!("{e:?}"));
            }
        }
    }
    // A network failure too.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Session::login(config(&format!("http://127.0.0.1:{port}")))
        .await
        .unwrap_err();
    outputs.push(format!("{e}"));
    outputs.push(format!("{e:?}"));
    assert!(outputs.len() > 20, "every case produced output");
    for text in &outputs {
        assert_clean(text);
    }
}

/// A proxy's or firewall's page that echoes the request it refused: the token request's form
/// (client secret, refresh token, as sent: form-encoded) and a data call's `Authorization`
/// header. What the error keeps of the page shows `***` in their place.
#[tokio::test]
async fn a_page_echoing_the_request_shows_no_secret() {
    let mut server = mockito::Server::new_async().await;
    let echo = format!(
        "<html>Bad Gateway: grant_type=refresh_token&client_secret={CLIENT_SECRET}&refresh_token={REFRESH_TOKEN}</html>"
    );
    let refused = server
        .mock("POST", "/services/oauth2/token")
        .with_status(400)
        .with_body(&echo)
        .expect(1)
        .create_async()
        .await;
    let error = Session::login(config(&server.url())).await.unwrap_err();
    refused.assert_async().await;
    for text in [format!("{error}"), format!("{error:?}")] {
        assert_clean(&text);
        assert!(
            text.contains("client_secret=***&refresh_token=***"),
            "{text}"
        );
    }
    // A secret across the end of what the error keeps of a page (its first 300 characters):
    // not even its start shows.
    let mut server = mockito::Server::new_async().await;
    let padding = "x".repeat(290);
    server
        .mock("POST", "/services/oauth2/token")
        .with_status(400)
        .with_body(format!("{padding}{CLIENT_SECRET}{REFRESH_TOKEN}"))
        .create_async()
        .await;
    let error = Session::login(config(&server.url())).await.unwrap_err();
    for text in [format!("{error}"), format!("{error:?}")] {
        assert!(!text.contains(&CLIENT_SECRET[..8]), "{text}");
        assert!(text.contains(&format!("{padding}***")), "{text}");
    }

    // Logged in, a data call answered by a page echoing the bearer token.
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", "/services/oauth2/token")
        .with_body(format!(
            r#"{{"access_token":"{}","instance_url":"{}","id":"x","token_type":"Bearer","issued_at":"1","signature":"x"}}"#,
            ACCESS_TOKENS[0],
            server.url()
        ))
        .create_async()
        .await;
    server
        .mock("GET", "/services/data/v62.0/limits")
        .with_status(400)
        .with_body(format!(
            "<html>Blocked: GET /limits Authorization: Bearer {}</html>",
            ACCESS_TOKENS[0]
        ))
        .create_async()
        .await;
    let session = Session::login(config(&server.url())).await.unwrap();
    let error = session.limits().await.unwrap_err();
    for text in [format!("{error}"), format!("{error:?}")] {
        assert_clean(&text);
        assert!(text.contains("Bearer ***"), "{text}");
    }
}

/// A token answer that is a JSON string (here the refresh token sent back) is refused without
/// quoting it.
#[tokio::test]
async fn a_token_answer_of_the_wrong_shape_is_not_quoted() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", "/services/oauth2/token")
        .with_body(format!("\"{ROTATED}\""))
        .create_async()
        .await;
    let error = Session::login(config(&server.url())).await.unwrap_err();
    for text in [format!("{error}"), format!("{error:?}")] {
        assert_clean(&text);
        assert!(text.contains("invalid type: string"), "{text}");
    }
}

/// A response formatted with `{:?}` shows its method, path, status and headers, never the URL's
/// query string (a SOQL filter's values may be personal data).
#[tokio::test]
async fn a_response_debug_leaves_the_query_string_out() {
    let mut server = mockito::Server::new_async().await;
    Scenario::load("auth", "refresh_ok")
        .unwrap()
        .mount_async(&mut server)
        .await;
    let _query = server
        .mock("GET", "/services/data/v62.0/query")
        .match_query(mockito::Matcher::Any)
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(r#"{"totalSize":0,"done":true,"records":[]}"#)
        .create_async()
        .await;
    let session = Session::login(config(&server.url())).await.unwrap();
    let soql = "SELECT Id FROM Contact WHERE Email = 'jane.doe@example.com'";
    let response = session
        .send(sf_auth::Request::get("query").query("q", soql))
        .await
        .unwrap();
    let text = format!("{response:?}");
    assert!(!text.contains("jane.doe"), "{text}");
    assert!(text.contains("GET query") && text.contains("200"), "{text}");
    assert_clean(&text);
}
