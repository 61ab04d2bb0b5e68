#![allow(clippy::unwrap_used)]
//! Secrets: for every command, on success and on each failure of the fault matrix, the client
//! secret, the refresh token and every access token stay out of stdout, stderr, the logs (at
//! `RUST_LOG=trace`, every crate), LOG and TRACE messages and panic output. The one message that
//! carries secrets by design is Airbyte's CONTROL message with the updated config after Salesforce
//! rotates the refresh token. Plain `http://` login URLs are refused unless on loopback.

mod harness;

use std::io::{Read, Write};
use std::time::Duration;

use fixtures::{Faults, OrgConfig, Scale};
use harness::{catalog, Env, Run};
use serde_json::{json, Value};

const CLIENT_SECRET: &str = "CS-sfconnect-secret-4d8a1f";
const REFRESH_TOKEN: &str = "RT-sfconnect-refresh-93b2c7";
const TRACE: [(&str, &str); 1] = [("RUST_LOG", "trace")];

fn org(seed: u64) -> OrgConfig {
    let mut config = OrgConfig::new(seed, Scale::Tiny)
        .rows("Account", 400)
        .default_batch_size(200)
        .bulk_timing(5, 10);
    config.client_secret = CLIENT_SECRET.to_string();
    config.refresh_token = REFRESH_TOKEN.to_string();
    config
}

/// Where an access token the emulator issued starts in `text`: its tokens are the org id, `!AQ`
/// and 32 hex digits, as Salesforce's are the org id, `!` and an opaque rest.
fn access_token_in(text: &str) -> Option<&str> {
    text.match_indices("!AQ").find_map(|(at, _)| {
        let rest = &text[at + 3..];
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        (hex >= 32).then(|| &text[at.saturating_sub(15)..at + 3 + hex])
    })
}

/// Logs in at the org's token endpoint over a plain socket; returns the access token.
fn log_in(env: &Env) -> String {
    let info = env.org.login_info();
    let addr = info.login_url.trim_start_matches("http://").to_string();
    let body = format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
        info.client_id, info.client_secret, info.refresh_token
    );
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /services/oauth2/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: \
         application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let json = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let json = &json[json.find('{').unwrap()..=json.rfind('}').unwrap()];
    let token: Value = serde_json::from_str(json).unwrap();
    token["access_token"].as_str().unwrap().to_string()
}

/// Everything a run printed except CONTROL messages.
fn printed(run: &Run) -> String {
    let stdout: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| !l.contains("\"type\":\"CONTROL\""))
        .collect();
    format!("{}\n{}", stdout.join("\n"), run.stderr)
}

/// Fails when `run` printed a secret (outside CONTROL messages), an access token, or panicked.
fn assert_no_secret(label: &str, run: &Run, more: &[&str]) {
    let text = printed(run);
    assert!(
        !text.contains("panicked"),
        "{label}: a panic\n{}",
        run.dump()
    );
    for secret in [CLIENT_SECRET, REFRESH_TOKEN].iter().chain(more) {
        if let Some(at) = text.find(secret) {
            let before: String = text[..at].chars().rev().take(300).collect();
            let before: String = before.chars().rev().collect();
            panic!("{label}: `{secret}` printed:\n...{before}{secret}");
        }
    }
    if let Some(token) = access_token_in(&text) {
        panic!("{label}: an access token printed: {token}");
    }
    assert!(
        run.of_type("CONTROL").is_empty(),
        "{label}: a CONTROL message although the token did not rotate"
    );
}

#[test]
fn the_access_token_pattern_finds_tokens() {
    assert_eq!(
        access_token_in("Bearer 00D5e0000000007!AQ0000000000000004b1f5fbe73d2a9c0e ok"),
        Some("00D5e0000000007!AQ0000000000000004b1f5fbe73d2a9c0e")
    );
    assert_eq!(access_token_in("!AQ0123 short"), None);
    assert_eq!(access_token_in("nothing here"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_command_prints_a_secret_when_it_succeeds() {
    let env = Env::start("secrets-ok", org(31)).await;
    // The emulator's tokens have the shape the scan looks for.
    let sample = log_in(&env);
    assert_eq!(access_token_in(&sample), Some(sample.as_str()));
    let config = env.write("config.json", &env.config(json!({})));
    let bulk = env.write(
        "bulk.json",
        &env.config(json!({"force_use_bulk_api": true})),
    );
    let catalog = env.write(
        "catalog.json",
        &catalog(&[
            ("Account", "incremental"),
            ("Contact", "full_refresh"),
            ("Describe", "full_refresh"),
        ]),
    );
    let c = config.to_str().unwrap();
    for (label, args) in [
        ("spec", vec!["spec"]),
        ("check", vec!["check", "--config", c]),
        ("discover", vec!["discover", "--config", c]),
    ] {
        let run = env.run(&args, &TRACE).await;
        run.assert_success();
        assert_no_secret(label, &run, &[&sample]);
    }
    for (label, config) in [("read rest", &config), ("read bulk", &bulk)] {
        let run = env.read(config, &catalog, None, &TRACE).await;
        run.assert_success();
        assert!(!run.records("Account").is_empty());
        // The logs were on, every crate down to the HTTP client.
        let logs = harness::plain(&run.stderr);
        assert!(
            logs.contains(" TRACE ") && logs.contains("hyper"),
            "{label}: no trace logs"
        );
        assert_no_secret(label, &run, &[&sample]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_failure_prints_a_secret() {
    let env = Env::start("secrets-failing", org(32)).await;
    let catalog = env.write(
        "catalog.json",
        &catalog(&[("Account", "incremental"), ("Contact", "full_refresh")]),
    );
    // Wrong credentials, each distinctive so a leak is found.
    for (key, wrong) in [
        ("client_secret", "CS-wrong-secret-77e1aa"),
        ("refresh_token", "RT-wrong-refresh-5f5f01"),
        ("client_id", "CI-wrong-client-0c0c0c"),
    ] {
        let mut config = env.config(json!({}));
        config[key] = json!(wrong);
        let path = env.write("wrong.json", &config);
        let check = env
            .run(&["check", "--config", path.to_str().unwrap()], &TRACE)
            .await;
        check.assert_success();
        let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
        assert_eq!(status["status"], "FAILED");
        let read = env.read(&path, &catalog, None, &TRACE).await;
        read.assert_contract();
        assert_eq!(read.code, Some(1));
        // A wrong client id is no secret: it may be named to help the user.
        let more: &[&str] = if key == "client_id" { &[] } else { &[wrong] };
        assert_no_secret(&format!("check with a wrong {key}"), &check, more);
        assert_no_secret(&format!("read with a wrong {key}"), &read, more);
    }

    let config = env.write("config.json", &env.config(json!({})));
    let bulk = env.write(
        "bulk.json",
        &env.config(json!({"force_use_bulk_api": true})),
    );
    let used = || env.org.control().stats().api_usage.used;
    let cases: Vec<(&str, &std::path::PathBuf, Faults)> = vec![
        (
            "tokens expiring at once",
            &config,
            Faults {
                token_lifetime_secs: Some(0),
                ..Faults::default()
            },
        ),
        (
            "503/500/420 every 7th request",
            &config,
            Faults {
                fail_every_nth: Some(7),
                fail_statuses: vec![503, 500, 420],
                ..Faults::default()
            },
        ),
        (
            "the daily limit",
            &config,
            Faults {
                daily_api_limit: used() + 4,
                ..Faults::default()
            },
        ),
        (
            "a failed Bulk job",
            &bulk,
            Faults {
                bulk_fail_next: 2,
                ..Faults::default()
            },
        ),
        (
            "an aborted Bulk job",
            &bulk,
            Faults {
                bulk_abort_next: 1,
                ..Faults::default()
            },
        ),
        (
            "a cut results page",
            &bulk,
            Faults {
                truncate_results_next: 1,
                ..Faults::default()
            },
        ),
        (
            "a malformed page",
            &config,
            Faults {
                malformed_query_next: 1,
                ..Faults::default()
            },
        ),
        (
            "a reset connection",
            &config,
            Faults {
                reset_query_next: 1,
                ..Faults::default()
            },
        ),
    ];
    let mut failed = 0;
    for (label, config, faults) in cases {
        env.org.control().set_faults(faults);
        let run = env.read(config, &catalog, None, &TRACE).await;
        run.assert_contract();
        failed += usize::from(run.code != Some(0));
        assert_no_secret(label, &run, &[]);
        let check = env
            .run(&["check", "--config", config.to_str().unwrap()], &TRACE)
            .await;
        check.assert_contract();
        assert_no_secret(&format!("check with {label}"), &check, &[]);
    }
    assert!(failed >= 2, "only {failed} of the runs failed");
    env.org.control().set_faults(Faults::default());

    // Tokens revoked while a sync runs.
    let control = env.org.control();
    let revoker = std::thread::spawn(move || {
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(10));
            control.revoke_access_tokens();
        }
    });
    let run = env.read(&config, &catalog, None, &TRACE).await;
    revoker.join().unwrap();
    run.assert_contract();
    assert_no_secret("tokens revoked during the sync", &run, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_refresh_token_goes_only_into_the_control_message() {
    let env = Env::start("secrets-rotation", org(33).rotate_refresh_token(true)).await;
    let config = env.write("config.json", &env.config(json!({})));
    let catalog = env.write("catalog.json", &catalog(&[("Account", "incremental")]));
    let run = env.read(&config, &catalog, None, &TRACE).await;
    run.assert_success();
    let controls = run.of_type("CONTROL");
    assert_eq!(controls.len(), 1, "{}", run.dump());
    let updated = &controls[0]["control"]["connectorConfig"]["config"];
    let rotated = updated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, REFRESH_TOKEN);
    assert_eq!(updated["client_id"], env.org.login_info().client_id);
    // Everything else is clean of the old token, the new one and the secret.
    let text = printed(&run);
    for secret in [CLIENT_SECRET, REFRESH_TOKEN, rotated.as_str()] {
        assert!(!text.contains(secret), "`{secret}` printed outside CONTROL");
    }
    assert_eq!(access_token_in(&text), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_login_urls_off_loopback_are_refused() {
    let env = Env::start("secrets-http", org(34)).await;
    let catalog = env.write("catalog.json", &catalog(&[("Account", "incremental")]));
    // Plain http off loopback; and a login_url carrying a password or a token, refused naming
    // the key, neither printed: not in the reason, not as the value given.
    let plain: &[&str] = &["login_url", "loopback", "https://"];
    let secrets = ["hunter2", "00DxxSECRETxx"];
    for (url, needles) in [
        ("http://acme.my.salesforce.com", plain),
        ("http://10.0.0.1:8765", plain),
        ("http://localhost.evil.example.com", plain),
        (
            "https://admin:hunter2@acme.my.salesforce.com",
            &["login_url"][..],
        ),
        (
            "http://admin:hunter2@acme.my.salesforce.com",
            &["login_url"][..],
        ),
        (
            "https://acme.my.salesforce.com/?access_token=00DxxSECRETxx",
            &["login_url"][..],
        ),
    ] {
        let path = env.write("config.json", &env.config(json!({"login_url": url})));
        let check = env
            .run(&["check", "--config", path.to_str().unwrap()], &TRACE)
            .await;
        check.assert_success();
        let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
        assert_eq!(status["status"], "FAILED", "{url}");
        let read = env.read(&path, &catalog, None, &TRACE).await;
        read.assert_contract();
        assert_eq!(read.code, Some(1), "{url}");
        let error = read.trace_error().unwrap();
        assert_eq!(error["failure_type"], "config_error", "{error}");
        for message in [
            status["message"].as_str().unwrap(),
            error["message"].as_str().unwrap(),
        ] {
            for needle in needles {
                assert!(
                    message.contains(needle),
                    "{url}: `{needle}` not in {message}"
                );
            }
        }
        // Refused before any request: nothing was sent anywhere.
        let stderr = harness::plain(&read.stderr);
        assert!(!stderr.contains("connecting to"), "{url}: {stderr}");
        assert_no_secret(&format!("login_url {url}"), &read, &secrets);
        assert_no_secret(&format!("check with login_url {url}"), &check, &secrets);
    }
}

/// A token endpoint that answers every request with `body` (status 200), on a loopback port.
fn token_endpoint_answering(body: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request);
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    port
}

/// Salesforce rotates the refresh token in an answer the login then refuses (an `instance_url`
/// that is not https, or none at all): the token sent is spent, so the new one is written in a
/// CONTROL message all the same, and the command fails naming what was wrong.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_rotated_in_a_refused_first_login_is_still_written() {
    let env = Env::start("secrets-rotated-refused", org(35)).await;
    const ROTATED: &str = "RT-rotated-in-a-refused-answer-5e1";
    for (label, answer) in [
        (
            "ftp instance_url",
            json!({"access_token": "00Dx!AQtoken", "refresh_token": ROTATED,
                   "instance_url": "ftp://elsewhere.example", "id": "x"}),
        ),
        (
            "no instance_url",
            json!({"access_token": "00Dx!AQtoken", "refresh_token": ROTATED, "id": "x"}),
        ),
    ] {
        let port = token_endpoint_answering(answer.to_string());
        let config = env.write(
            "config.json",
            &env.config(json!({"login_url": format!("http://127.0.0.1:{port}")})),
        );
        let run = env
            .run(&["check", "--config", config.to_str().unwrap()], &[])
            .await;
        run.assert_contract();
        let controls = run.of_type("CONTROL");
        assert_eq!(controls.len(), 1, "{label}: {}", run.dump());
        let written = &controls[0]["control"]["connectorConfig"]["config"];
        assert_eq!(written["refresh_token"], ROTATED, "{label}");
        assert_eq!(written["client_secret"], CLIENT_SECRET, "{label}");
        let text = printed(&run);
        assert!(text.contains("instance_url"), "{label}: {}", run.dump());
        assert!(
            !text.contains(ROTATED),
            "{label}: the token outside CONTROL"
        );
    }
}
