#![allow(clippy::unwrap_used)]
//! The JWT bearer grant against the emulated org, whose connected app holds the certificate of
//! `fixtures/keys/jwt-test-key.pem` (TEST ONLY): login, renewal with a new assertion, and each
//! refusal with the advice the user reads.

use chrono::TimeZone;
use fixtures::{EmulatedOrg, Faults, OrgConfig, Scale};
use sf_auth::{
    Credentials, Error, Grant, JwtBearer, LoginFailure, LoginUrl, RetryConfig, Secret, Session,
    SessionConfig,
};

async fn org() -> EmulatedOrg {
    let start = chrono::Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    EmulatedOrg::start(OrgConfig::new(5, Scale::Tiny).clock_start(start))
        .await
        .unwrap()
}

/// A JWT bearer config for `org`, logging in at `login_url` (the org's own URL unless a test
/// changes it) as `username` with `key`.
fn config(org: &EmulatedOrg, login_url: &str, username: &str, key: &str) -> SessionConfig {
    let info = org.login_info();
    let mut config = SessionConfig::new(
        LoginUrl::parse(login_url).unwrap(),
        Credentials {
            client_id: info.client_id,
            client_secret: Secret::new(""),
            refresh_token: None,
        },
    );
    config.grant = Grant::JwtBearer;
    config.jwt_bearer = Some(JwtBearer::new(username, &Secret::new(key)).unwrap());
    config.retry = RetryConfig::immediate();
    config
}

fn username() -> String {
    OrgConfig::new(5, Scale::Tiny).username
}

#[tokio::test]
async fn logs_in_and_renews_with_a_new_assertion() {
    let org = org().await;
    let config = config(
        &org,
        &org.base_url(),
        &username(),
        fixtures::JWT_TEST_PRIVATE_KEY_PEM,
    );
    let printed = format!("{config:?}");
    assert!(
        !printed.contains("PRIVATE KEY") && !printed.contains("MII"),
        "{printed}"
    );
    let session = Session::login(config).await.unwrap();
    let global: serde_json::Value = session.get_json("sobjects", &[]).await.unwrap();
    assert!(global["sobjects"].as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(session.login_count(), 1);
    assert_eq!(
        session.refresh_token(),
        None,
        "the JWT grant issues no refresh token"
    );

    // Tokens now live 10 minutes of org time; 11 minutes later the next call is answered 401,
    // and the session signs a new assertion and logs in again.
    let control = org.control();
    control.set_faults(Faults {
        token_lifetime_secs: Some(600),
        ..Faults::default()
    });
    control.advance_clock(660);
    let _: serde_json::Value = session.get_json("sobjects", &[]).await.unwrap();
    assert_eq!(session.login_count(), 2);
    assert_eq!(org.control().stats().requests.token, 2);
    org.shutdown().await;
}

/// What each refusal reads as, and that the key never shows in it.
#[tokio::test]
async fn each_refusal_names_what_to_fix() {
    let org = org().await;
    let base = org.base_url();
    // The same server under another name: the assertion's `aud` is not the org's login host.
    let other_name = base.replace("127.0.0.1", "localhost");
    let user = username();
    let cases = [
        (
            config(&org, &base, &user, fixtures::JWT_OTHER_PRIVATE_KEY_PEM),
            LoginFailure::JwtSignature,
            "invalid assertion",
            "check `private_key`",
        ),
        (
            config(&org, &other_name, &user, fixtures::JWT_TEST_PRIVATE_KEY_PEM),
            LoginFailure::JwtAudience,
            "audience is invalid",
            "`login_url`",
        ),
        (
            config(
                &org,
                &base,
                "someone.else@acme.com",
                fixtures::JWT_TEST_PRIVATE_KEY_PEM,
            ),
            LoginFailure::JwtUserNotApproved,
            "user hasn't approved this consumer",
            "pre-authorized",
        ),
        (
            {
                let mut c = config(&org, &base, &user, fixtures::JWT_TEST_PRIVATE_KEY_PEM);
                c.credentials.client_id = "3MVG9unknown".into();
                c
            },
            LoginFailure::UnknownClientId,
            "client identifier invalid",
            "check `client_id`",
        ),
    ];
    for (config, want, description, advice) in cases {
        let err = Session::login(config).await.expect_err("refused");
        match &err {
            Error::Login { failure, api } => {
                assert_eq!(*failure, want, "{err}");
                assert_eq!(api.message, description);
            }
            other => panic!("expected a login refusal, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(advice), "{text}");
        assert!(!text.contains("MII"), "{text}");
    }
    org.shutdown().await;
}

/// An assertion whose `exp` has passed: Salesforce's answer, and how the session reads it.
#[tokio::test]
async fn an_expired_assertion_is_refused() {
    let org = org().await;
    let info = org.login_info();
    let jwt = JwtBearer::new(username(), &Secret::new(fixtures::JWT_TEST_PRIVATE_KEY_PEM)).unwrap();
    let ten_minutes_ago = chrono::Utc::now().timestamp() - 600;
    let assertion = jwt
        .assertion(&info.client_id, &org.base_url(), ten_minutes_ago)
        .unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", org.base_url()))
        .form(&[
            ("grant_type", sf_auth::JWT_BEARER_GRANT_TYPE),
            ("assertion", assertion.expose()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": "invalid_grant", "error_description": "expired authorization code"})
    );
    let api = sf_auth::ApiError {
        status: 400,
        error_code: Some("invalid_grant".into()),
        message: "expired authorization code".into(),
        fields: Vec::new(),
    };
    let err = Error::Login {
        failure: LoginFailure::JwtExpired,
        api,
    };
    assert!(
        err.to_string().contains("check this machine's clock"),
        "{err}"
    );
    // A fresh assertion from the same key is accepted.
    let fresh = jwt
        .assertion(
            &info.client_id,
            &org.base_url(),
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", org.base_url()))
        .form(&[
            ("grant_type", sf_auth::JWT_BEARER_GRANT_TYPE),
            ("assertion", fresh.expose()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    org.shutdown().await;
}

#[tokio::test]
async fn the_grant_needs_its_key() {
    let org = org().await;
    let mut c = config(
        &org,
        &org.base_url(),
        &username(),
        fixtures::JWT_TEST_PRIVATE_KEY_PEM,
    );
    c.jwt_bearer = None;
    let err = Session::login(c).await.expect_err("refused");
    assert!(
        err.to_string()
            .contains("needs `username` and `private_key`"),
        "{err}"
    );
    org.shutdown().await;
}
