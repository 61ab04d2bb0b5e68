#![allow(clippy::unwrap_used)]
//! Tokens revoked in the middle of a sync, refresh token included (an admin revoking the
//! connected app's access): no stream can go on, so the whole sync ends with one config error
//! naming the stream that met the refusal and Salesforce's answer, never a secret; what was
//! emitted before stays emitted.

mod common;

use common::*;
use serde_json::json;
use sf_sync::{Error, Failure};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_revoked_mid_sync_ends_the_whole_sync_as_a_config_error() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(
        org_config(31)
            .rows("Account", 450)
            .rows("Contact", 450)
            .default_batch_size(200),
        json!({}),
    )
    .await;
    let control = org.control();
    let login = org.login_info();
    let configured = configure(&catalog, &["Account", "Contact"], None);
    let mut options = fast_options();
    // Little queued between the reader and the sink, so reading goes on after the revocation.
    options.channel_capacity = 2;
    let tokens_before = control.stats().requests.token;
    let revoker = control.clone();
    let (result, sink) = read_acting(
        &session,
        &config,
        &configured,
        &options,
        (20, move || revoker.revoke_all_tokens()),
    )
    .await;
    let err = result.unwrap_err();

    let Error::SessionRefused { stream, message } = &err else {
        panic!("not a refused session: {err:?}");
    };
    assert!(
        ["Account", "Contact"].contains(&stream.as_str()),
        "{stream}"
    );
    assert!(
        message.contains("expired access/refresh token"),
        "Salesforce's answer is named: {message}"
    );
    assert!(err.ends_sync(), "no stream can go on: {err}");
    assert_eq!(err.failure(), Failure::Config);
    let text = err.to_string();
    assert!(text.contains(&format!("stream `{stream}`")), "{text}");
    assert!(text.contains("fix the config"), "{text}");
    for secret in [&login.refresh_token, &login.client_secret] {
        assert!(!text.contains(secret.as_str()), "a secret in: {text}");
    }
    // The session asked the token endpoint again, and was refused.
    assert!(
        control.stats().requests.token > tokens_before,
        "no renewal asked"
    );
    assert_eq!(session.login_count(), 1, "a refused renewal is no login");
    // Records emitted before the revocation stay emitted; no log line carries a secret.
    assert!(sink.inner.records("Account").len() + sink.inner.records("Contact").len() >= 20);
    for (_, line) in sink.inner.logs() {
        for secret in [&login.refresh_token, &login.client_secret] {
            assert!(!line.contains(secret.as_str()), "a secret in: {line}");
        }
    }
    org.shutdown().await;
}
