//! The sync config: Airbyte's keys as they are, defaults, every validation error, and the session
//! it builds (logged in against recorded exchanges).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fixtures::recorded::Scenario;
use serde_json::{json, Value};
use sf_auth::{ErrorKind, Grant, RetryConfig, Session};
use sf_sync::{ConfigProblem, Criterion, Error, ParsedConfig, SyncConfig};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 12, 30, 15).unwrap()
}

fn base() -> Value {
    json!({"client_id": "3MVG9abc", "client_secret": "s3cr3t-value", "refresh_token": "5Aep-token"})
}

fn with(edits: Value) -> Value {
    let mut config = base();
    for (k, v) in edits.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

fn parse(value: &Value) -> Result<ParsedConfig, Error> {
    SyncConfig::from_value(value, now())
}

fn problems(value: &Value) -> Vec<ConfigProblem> {
    match parse(value) {
        Err(Error::ConfigInvalid { problems }) => problems,
        other => panic!("expected ConfigInvalid, got {other:?}"),
    }
}

fn one_problem(value: &Value) -> String {
    let problems = problems(value);
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems[0].to_string()
}

#[test]
fn a_full_airbyte_config_reads_as_given() {
    let parsed = parse(&json!({
        "client_id": "3MVG9abc", "client_secret": "s3cr3t-value", "refresh_token": "5Aep-token",
        "auth_type": "Client", "is_sandbox": true,
        "start_date": "2021-07-25T00:00:00Z", "end_date": "2023-01-01",
        "streams_criteria": [{"criteria": "starts with", "value": "Acc"},
                             {"criteria": "NOT CONTAINS", "value": "History"}],
        "stream_slice_step": "P7D", "lookback_window": "PT30M",
        "force_use_bulk_api": true, "preserve_na_values": true,
        "api_version": "58.0", "num_workers": 8, "api_budget": 0.5
    }))
    .unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let c = parsed.config;
    assert_eq!(c.client_id, "3MVG9abc");
    assert_eq!(c.client_secret.expose(), "s3cr3t-value");
    assert_eq!(c.refresh_token.as_ref().unwrap().expose(), "5Aep-token");
    assert_eq!(c.grant, Grant::RefreshToken);
    assert!(c.is_sandbox);
    assert_eq!(c.login_url.as_str(), "https://test.salesforce.com");
    assert_eq!(
        c.start_date,
        Utc.with_ymd_and_hms(2021, 7, 25, 0, 0, 0).unwrap()
    );
    assert_eq!(
        c.end_date,
        Some(Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap())
    );
    assert_eq!(c.streams_criteria.len(), 2);
    assert_eq!(c.streams_criteria[1].criterion, Criterion::NotContains);
    assert_eq!(
        c.stream_slice_step.as_std(),
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(c.lookback_window.as_std(), Duration::from_secs(1800));
    assert!(c.force_use_bulk_api && c.preserve_na_values);
    assert_eq!(c.api_version, "58.0");
    assert_eq!(c.num_workers, 8);
    assert_eq!(c.api_budget, Some(0.5));
    // Union of criteria, case-insensitive, as Airbyte does.
    assert!(c.selects_stream("Account"));
    assert!(c.selects_stream("Contact"));
    assert!(!c.selects_stream("ContactHistory"));
    assert!(c.selects_stream("AccountHistory"));
}

/// Airbyte validates both durations with pendulum, which takes a fraction on the last component, so
/// a config it runs with `PT1.5H` or `P0.5D` runs here too.
#[test]
fn fractional_durations_airbyte_accepts_are_read() {
    let c = parse(&with(
        json!({"stream_slice_step": "P0.5D", "lookback_window": "PT1.5H"}),
    ))
    .unwrap()
    .config;
    assert_eq!(c.stream_slice_step.as_std(), Duration::from_secs(43_200));
    assert_eq!(c.stream_slice_step.to_string(), "PT12H");
    assert_eq!(c.lookback_window.as_std(), Duration::from_secs(5_400));
    let err = parse(&with(json!({"lookback_window": "P1.5M"})))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`lookback_window`") && err.contains("months cannot have a fraction"),
        "{err}"
    );
}

#[test]
fn defaults_fill_what_is_missing() {
    let parsed = parse(&base()).unwrap();
    assert!(parsed.warnings.is_empty());
    let c = parsed.config;
    assert_eq!(c.grant, Grant::RefreshToken);
    assert!(!c.is_sandbox);
    assert_eq!(c.login_url.as_str(), "https://login.salesforce.com");
    assert_eq!(
        c.start_date,
        Utc.with_ymd_and_hms(2022, 3, 4, 12, 30, 15).unwrap()
    );
    assert_eq!(c.end_date, None);
    assert!(c.streams_criteria.is_empty());
    assert!(c.selects_stream("Anything"));
    assert_eq!(c.stream_slice_step.to_string(), "P30D");
    assert_eq!(c.lookback_window.to_string(), "PT10M");
    assert!(!c.force_use_bulk_api && !c.preserve_na_values);
    assert_eq!(c.api_version, "62.0");
    assert_eq!(c.num_workers, sf_sync::DEFAULT_NUM_WORKERS);
    assert_eq!(c.num_workers, 4);
    assert_eq!(c.api_budget, None);
    // Nulls and empty dates mean "not set".
    let c = parse(&with(
        json!({"start_date": "", "end_date": "", "api_budget": null,
                                "streams_criteria": null, "lookback_window": null}),
    ))
    .unwrap()
    .config;
    assert_eq!(
        c.start_date,
        Utc.with_ymd_and_hms(2022, 3, 4, 12, 30, 15).unwrap()
    );
    assert_eq!(c.end_date, None);
    assert_eq!(c.lookback_window.to_string(), "PT10M");
    // Leap day: two years before 2024-02-29 is 2022-02-28.
    let leap = Utc.with_ymd_and_hms(2024, 2, 29, 1, 2, 3).unwrap();
    let c = SyncConfig::from_value(&base(), leap).unwrap().config;
    assert_eq!(
        c.start_date,
        Utc.with_ymd_and_hms(2022, 2, 28, 1, 2, 3).unwrap()
    );
}

#[test]
fn each_error_names_key_value_and_what_is_accepted() {
    for (edit, want) in [
        (json!({"stream_slice_step": "P221S"}),
         "`stream_slice_step`: `P221S` is not an ISO 8601 duration of at least 1 second (hours, minutes and seconds need a `T` before them, as in `PT221S`); use e.g. `PT12H`, `P7D`, `P30D`"),
        (json!({"stream_slice_step": "PT0.1S"}),
         "`stream_slice_step`: `PT0.1S` is not an ISO 8601 duration of at least 1 second (it is 0.1 s); use e.g. `PT12H`, `P7D`, `P30D`"),
        (json!({"stream_slice_step": "2023"}),
         "`stream_slice_step`: `2023` is not an ISO 8601 duration of at least 1 second (it must start with `P`"),
        (json!({"stream_slice_step": "PT1D"}), "`D` belongs before the `T`"),
        (json!({"stream_slice_step": 30}),
         "`stream_slice_step`: `30` is a number, not an ISO 8601 duration of at least 1 second"),
        (json!({"lookback_window": "10 minutes"}),
         "`lookback_window`: `10 minutes` is not an ISO 8601 duration (it must start with `P`, as in `P30D` or `PT12H`); use e.g. `PT10M`, `PT30M`, `PT1H`"),
        (json!({"lookback_window": "-PT10M"}), "negative durations are not allowed"),
        (json!({"start_date": "25/07/2021"}),
         "`start_date`: `25/07/2021` is not a date; use `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC), e.g. `2021-07-25` or `2021-07-25T00:00:00Z`"),
        (json!({"start_date": "2021-07-25T00:00:00+02:00"}), "`start_date`: `2021-07-25T00:00:00+02:00` is not a date"),
        (json!({"end_date": "2021-02-30"}), "`end_date`: `2021-02-30` is not a date"),
        (json!({"start_date": "2023-01-01", "end_date": "2022-12-31T23:59:59Z"}),
         "`end_date`: `2022-12-31T23:59:59Z` is not after start_date 2023-01-01T00:00:00.000Z; use a later date or leave it empty"),
        (json!({"start_date": "2023-01-01", "end_date": "2023-01-01"}), "is not after start_date"),
        (json!({"end_date": "2020-01-01"}), "is not after start_date 2022-03-04T12:30:15.000Z"),
        (json!({"streams_criteria": [{"criteria": "begins with", "value": "Acc"}]}),
         "`streams_criteria[0].criteria`: `begins with` is not a criterion; use one of `starts with`, `ends with`, `contains`, `exacts`, `starts not with`, `ends not with`, `not contains`, `not exacts`"),
        (json!({"streams_criteria": [{"criteria": "contains", "value": "x"}, {"criteria": "contains"}]}),
         "`streams_criteria[1].value` is missing; must be the text to match"),
        (json!({"streams_criteria": [{"criteria": "contains", "value": 3}]}), "`streams_criteria[0].value`: `3` must be the text"),
        (json!({"streams_criteria": "Account"}), "`streams_criteria`: `Account` is not a list"),
        (json!({"streams_criteria": ["Account"]}), "`streams_criteria[0]`: `Account` is not an object"),
        (json!({"num_workers": 0}), "`num_workers`: `0` is not a whole number from 1 to 50; use e.g. 4 (the default)"),
        (json!({"num_workers": -3}), "`num_workers`: `-3` is not a whole number from 1 to 50"),
        (json!({"num_workers": 2.5}), "`num_workers`: `2.5` is not a whole number"),
        (json!({"num_workers": "many"}), "`num_workers`: `many` is not a whole number"),
        (json!({"api_budget": 0}), "`api_budget`: `0` is not a share of the daily API limit greater than 0 and at most 1; use e.g. 0.5, or leave it out for no cap"),
        (json!({"api_budget": 1.5}), "`api_budget`: `1.5` is not a share"),
        (json!({"api_budget": "half"}), "`api_budget`: `half` is not a share"),
        (json!({"api_budget": "1.5"}), "`api_budget`: `1.5` is not a share"),
        (json!({"api_budget": true}), "`api_budget`: `true` is not a number, so not a share"),
        (json!({"api_version": "v62.0"}), "`api_version`: `v62.0` is not an API version `NN.N` of at least 47.0; use e.g. `62.0` (no `v`)"),
        (json!({"api_version": "62"}), "`api_version`: `62` is not an API version"),
        (json!({"api_version": "46.0"}), "`api_version`: `46.0` is not an API version `NN.N` of at least 47.0"),
        (json!({"is_sandbox": "yes"}), "`is_sandbox`: `yes` is a string, not a boolean; use true or false"),
        (json!({"force_use_bulk_api": 1}), "`force_use_bulk_api`: `1` is a number, not a boolean"),
        (json!({"auth_type": "JWT"}), "`auth_type`: `JWT` is not supported; use `Client` (refresh token grant) or `client_credentials`"),
        (json!({"client_id": ""}), "`client_id`: `` is empty; give the connected app's consumer key"),
        (json!({"client_id": null}), "`client_id` is missing; give the connected app's consumer key"),
        (json!({"client_id": 42}), "`client_id`: `42` is a number, not a string"),
        (json!({"refresh_token": null}), "`refresh_token` is missing; give a refresh token (or choose another grant with `auth_flow`: `client_credentials` or `jwt`)"),
        (json!({"login_url": "http://acme.my.salesforce.com"}),
         "`login_url`: `http://acme.my.salesforce.com` is not usable: plain http is only allowed for loopback hosts"),
        (json!({"login_url": "https://acme.my.salesforce.com/services/oauth2/token"}), "no path"),
        (json!({"auth_type": "client_credentials", "refresh_token": null}),
         "`login_url` is missing; the client credentials grant logs in at the org's My Domain"),
        (json!({"auth_flow": "client_credentials", "refresh_token": null, "client_secret": "",
                "login_url": "https://acme.my.salesforce.com"}),
         "`client_secret`: `***` is empty; give the connected app's consumer secret"),
        (json!({"client_secret": null}), "`client_secret` is missing; give the connected app's consumer secret"),
    ] {
        let config = with(edit.clone());
        let msg = one_problem(&config);
        assert!(msg.contains(want), "{edit}:\n  got:    {msg}\n  wanted: {want}");
    }
}

#[test]
fn all_problems_come_at_once_and_secrets_never_show() {
    let config = json!({"client_secret": 12345, "refresh_token": "", "stream_slice_step": "P0D",
                        "num_workers": 0});
    let problems = problems(&config);
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "client_id",
            "client_secret",
            "refresh_token",
            "stream_slice_step",
            "num_workers"
        ]
    );
    assert_eq!(problems[1].given.as_deref(), Some("***"));
    assert_eq!(problems[2].given.as_deref(), Some("***"));
    let msg = parse(&config).unwrap_err().to_string();
    assert!(
        msg.starts_with("invalid config: `client_id` is missing"),
        "{msg}"
    );
    assert!(!msg.contains("12345"), "{msg}");
    assert!(
        msg.contains("`client_secret`: `***` is a number, not a string"),
        "{msg}"
    );

    let parsed = parse(&base()).unwrap();
    let debug = format!("{:?}", parsed.config);
    assert!(
        !debug.contains("s3cr3t-value") && !debug.contains("5Aep-token"),
        "{debug}"
    );
    let session = format!("{:?}", parsed.config.session_config());
    assert!(
        !session.contains("s3cr3t-value") && !session.contains("5Aep-token"),
        "{session}"
    );
}

#[test]
fn leniency_is_warned_about() {
    let parsed = parse(&with(json!({
        "is_sandbox": "TRUE", "force_use_bulk_api": "false", "num_workers": "6",
        "wait_timeout": 30, "credentials": {"auth_type": "Client"}, "surprise": 1
    })))
    .unwrap();
    assert!(parsed.config.is_sandbox);
    assert!(!parsed.config.force_use_bulk_api);
    assert_eq!(parsed.config.num_workers, 6);
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "`is_sandbox`: the string \"true\" was read as the boolean true",
            "`force_use_bulk_api`: the string \"false\" was read as the boolean false",
            "`num_workers`: the string was read as an integer",
            "`credentials`: is not a known key; it is ignored",
            "`surprise`: is not a known key; it is ignored",
        ]
    );
    // More workers than Airbyte's cap are read as the cap, as Airbyte's connector reads them.
    for (given, read) in [
        (json!(51), 50),
        (json!(100), 50),
        (json!("64"), 50),
        (json!(50), 50),
    ] {
        let parsed = parse(&with(json!({ "num_workers": given }))).unwrap();
        assert_eq!(parsed.config.num_workers, read, "{given}");
        let warned = parsed
            .warnings
            .iter()
            .any(|w| w.to_string().contains("it was read as 50"));
        assert_eq!(warned, given != json!(50), "{given}");
    }
    // A start date in the future is accepted with a warning.
    let parsed = parse(&with(json!({"start_date": "2030-01-01"}))).unwrap();
    assert_eq!(parsed.warnings.len(), 1);
    assert!(parsed.warnings[0].message.contains("in the future"));
}

#[test]
fn text_that_is_not_a_config_object() {
    for (text, want) in [
        ("{", "config parse: not valid JSON"),
        ("[1, 2]", "config parse: expected a JSON object, got a list"),
        ("null", "config parse: expected a JSON object, got null"),
    ] {
        let msg = SyncConfig::from_json(text, now()).unwrap_err().to_string();
        assert!(msg.starts_with(want), "{text}: {msg}");
    }
}

#[test]
fn client_credentials_go_to_my_domain() {
    let c = parse(
        &json!({"client_id": "id", "client_secret": "s", "auth_type": "client_credentials",
                          "login_url": "https://acme.my.salesforce.com"}),
    )
    .unwrap()
    .config;
    assert_eq!(c.grant, Grant::ClientCredentials);
    assert_eq!(c.refresh_token, None);
    assert_eq!(c.login_url.as_str(), "https://acme.my.salesforce.com");
    let session = c.session_config();
    assert_eq!(session.grant, Grant::ClientCredentials);
    assert_eq!(session.credentials.client_id, "id");
    assert!(session.credentials.refresh_token.is_none());
}

/// 2.10.3's spec pins `auth_type` to `Client` (the platform writes it into every config), so
/// sfconnect's grants are chosen with `auth_flow`; `auth_type: client_credentials` is still read.
#[test]
fn auth_flow_chooses_the_grant() {
    let my_domain = "https://acme.my.salesforce.com";
    for (edit, grant) in [
        (
            json!({"auth_flow": "client_credentials", "login_url": my_domain}),
            Grant::ClientCredentials,
        ),
        (
            json!({"auth_flow": "client_credentials", "auth_type": "Client", "login_url": my_domain}),
            Grant::ClientCredentials,
        ),
        (
            json!({"auth_flow": "refresh_token", "auth_type": "Client"}),
            Grant::RefreshToken,
        ),
        (json!({"auth_flow": null}), Grant::RefreshToken),
        (
            json!({"auth_type": "client_credentials", "auth_flow": "client_credentials", "login_url": my_domain}),
            Grant::ClientCredentials,
        ),
    ] {
        let parsed = parse(&with(edit.clone())).unwrap();
        assert_eq!(parsed.config.grant, grant, "{edit}");
        assert!(parsed.warnings.is_empty(), "{edit}: {:?}", parsed.warnings);
    }
    for (edit, want) in [
        (json!({"auth_flow": "password"}),
         "`auth_flow`: `password` is not supported; use `refresh_token` (the default), `client_credentials` (to a My Domain `login_url`) or `jwt` (the JWT bearer flow, with `username` and `private_key`)"),
        (json!({"auth_flow": 3}), "`auth_flow`: `3` is not supported"),
        (json!({"auth_type": "client_credentials", "auth_flow": "refresh_token", "login_url": my_domain}),
         "`auth_flow`: `refresh_token` contradicts `auth_type`"),
        (json!({"auth_flow": "client_credentials"}), "`login_url` is missing; the client credentials grant logs in at the org's My Domain"),
        (json!({"auth_flow": "client_credentials", "login_url": "https://login.salesforce.com/"}),
         "`login_url`: `https://login.salesforce.com` is Salesforce's shared login host, where the client credentials grant is not supported; give the org's My Domain"),
        (json!({"auth_flow": "client_credentials", "login_url": "https://test.salesforce.com", "is_sandbox": true}),
         "`login_url`: `https://test.salesforce.com` is Salesforce's shared login host"),
    ] {
        let msg = one_problem(&with(edit.clone()));
        assert!(msg.contains(want), "{edit}:\n  got:    {msg}\n  wanted: {want}");
    }
}

/// `auth_flow: jwt`: the username and an RSA key that signs; no client secret needed, and the key
/// never shows in an error.
#[test]
fn the_jwt_bearer_flow_needs_a_username_and_a_key_that_signs() {
    let key = fixtures::JWT_TEST_PRIVATE_KEY_PEM;
    let config = json!({"client_id": "3MVG9abc", "auth_flow": "jwt", "auth_type": "Client",
                        "username": "sync@acme.com", "private_key": key, "is_sandbox": true});
    let parsed = parse(&config).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let c = parsed.config;
    assert_eq!(c.grant, Grant::JwtBearer);
    assert_eq!(
        c.jwt_bearer.as_ref().map(|j| j.username.as_str()),
        Some("sync@acme.com")
    );
    assert_eq!(c.login_url.as_str(), "https://test.salesforce.com");
    let session = c.session_config();
    assert_eq!(session.grant, Grant::JwtBearer);
    assert!(session.jwt_bearer.is_some());
    assert!(!format!("{c:?}").contains("PRIVATE KEY"));

    let jwt = |edit: Value| {
        let mut c = config.clone();
        for (k, v) in edit.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    for (edit, want) in [
        (json!({"username": null}), "`username` is missing; give the Salesforce username the JWT bearer flow logs in as"),
        (json!({"private_key": null}), "`private_key` is missing; give the RSA private key (PEM) whose certificate is uploaded to the connected app"),
        (json!({"private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----"}),
         "`private_key`: `***` is not usable: it is not a usable RSA key"),
        (json!({"private_key": "hunter2"}), "`private_key`: `***` is not usable: no PEM private key found"),
        (json!({"private_key": 7}), "`private_key`: `***` is a number, not a string"),
    ] {
        let msg = one_problem(&jwt(edit.clone()));
        assert!(msg.contains(want), "{edit}:\n  got:    {msg}\n  wanted: {want}");
        assert!(!msg.contains("c2VjcmV0") && !msg.contains("hunter2"), "{msg}");
    }
    // `auth_type` stays 2.10.3's: `jwt` there is refused, pointing at `auth_flow`.
    let msg = one_problem(&with(json!({"auth_type": "jwt"})));
    assert!(
        msg.contains("other grants are chosen with `auth_flow` (`jwt`: the JWT bearer flow)"),
        "{msg}"
    );
}

fn fast(mut config: sf_auth::SessionConfig) -> sf_auth::SessionConfig {
    config.retry = RetryConfig::immediate();
    config
}

#[tokio::test]
async fn the_session_config_logs_in_with_the_configured_version_and_budget() {
    let mut server = mockito::Server::new_async().await;
    let mocks = Scenario::load("sync", "login_from_airbyte_config")
        .unwrap()
        .mount_async(&mut server)
        .await;
    let config = parse(&json!({
        "client_id": "test-client-id", "client_secret": "test-secret", "refresh_token": "test-refresh",
        "login_url": server.url(), "api_version": "58.0", "api_budget": 0.5
    }))
    .unwrap()
    .config;
    let session = Session::login(fast(config.session_config())).await.unwrap();
    assert_eq!(session.api_version(), "58.0");
    assert_eq!(session.data_path(), "/services/data/v58.0");
    let global: Value = session.get_json("sobjects", &[]).await.unwrap();
    assert_eq!(global["sobjects"][0]["name"], "Account");
    // 5 of 10 used and a budget of half the limit: the next request is refused before it is sent.
    let err = session
        .get_json::<Value>("sobjects", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DailyLimitExceeded);
    for mock in mocks {
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn the_session_config_uses_the_client_credentials_grant() {
    let mut server = mockito::Server::new_async().await;
    Scenario::load("auth", "client_credentials_ok")
        .unwrap()
        .mount_async(&mut server)
        .await;
    let config = parse(&json!({
        "client_id": "test-client-id", "client_secret": "test-secret",
        "auth_type": "client_credentials", "login_url": server.url()
    }))
    .unwrap()
    .config;
    let session = Session::login(fast(config.session_config())).await.unwrap();
    assert_eq!(session.instance_url(), server.url());
    assert_eq!(session.api_version(), "62.0");
}

/// Airbyte's spec lets `client_secret` be empty, and Salesforce's refresh token flow takes none
/// from a connected app that does not require it: accepted with a warning for that grant.
#[test]
fn an_empty_client_secret_is_accepted_for_the_refresh_token_grant_with_a_warning() {
    let parsed = parse(&with(json!({"client_secret": ""}))).unwrap();
    assert_eq!(parsed.config.client_secret.expose(), "");
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("client_secret") && warnings[0].contains("goes without it"),
        "{warnings:?}"
    );
}

/// A numeric string, as some forms save numbers, is read as the number with a warning (as
/// `num_workers` is).
#[test]
fn an_api_budget_given_as_a_string_is_read_with_a_warning() {
    let parsed = parse(&with(json!({"api_budget": "0.5"}))).unwrap();
    assert_eq!(parsed.config.api_budget, Some(0.5));
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("api_budget"), "{warnings:?}");
}

/// Keys, secrets and tokens pasted with a line break or spaces around them are read without
/// them, with a WARN naming the key; a PEM key's closing line break says nothing.
#[test]
fn credentials_pasted_with_whitespace_are_trimmed_with_a_warning() {
    let parsed = parse(
        &json!({"client_id": " 3MVG9abc\n", "client_secret": "s3cr3t-value\r\n",
                                "refresh_token": "\t5Aep-token "}),
    )
    .unwrap();
    let session = parsed.config.session_config();
    assert_eq!(session.credentials.client_id, "3MVG9abc");
    assert_eq!(session.credentials.client_secret.expose(), "s3cr3t-value");
    assert_eq!(
        session
            .credentials
            .refresh_token
            .as_ref()
            .map(|t| t.expose()),
        Some("5Aep-token")
    );
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["client_id", "client_secret", "refresh_token"].map(|k| format!(
            "`{k}`: had spaces or line breaks around it (pasted?); they were left out"
        ))
    );
    assert!(!warnings.concat().contains("s3cr3t"));

    let key = format!("\n{}\n\n", fixtures::JWT_TEST_PRIVATE_KEY_PEM.trim());
    let parsed = parse(&json!({"client_id": "3MVG9abc", "auth_flow": "jwt",
                                "username": "sync@acme.com ", "private_key": key}))
    .unwrap();
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["`username`: had spaces or line breaks around it (pasted?); they were left out"]
    );
    assert_eq!(
        parsed
            .config
            .jwt_bearer
            .as_ref()
            .map(|j| j.username.as_str()),
        Some("sync@acme.com")
    );
    // The JWT flow sends no secret; one that is not a string says what to give.
    let msg = one_problem(&json!({"client_id": "3MVG9abc", "auth_flow": "jwt",
        "username": "sync@acme.com", "private_key": fixtures::JWT_TEST_PRIVATE_KEY_PEM,
        "client_secret": 42}));
    assert!(
        msg.ends_with("is a number, not a string; give a string, or leave it out: the JWT bearer flow does not send it"),
        "{msg}"
    );
}

/// A lookback under a minute is read, with a WARN saying what it risks; a null one is the
/// default, and says nothing.
#[test]
fn a_lookback_under_a_minute_is_warned_about() {
    for (given, secs) in [("PT0S", 0), ("PT30S", 30)] {
        let parsed = parse(&with(json!({"lookback_window": given}))).unwrap();
        assert_eq!(parsed.config.lookback_window.as_std().as_secs(), secs);
        let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 1, "{given}: {warnings:?}");
        assert!(
            warnings[0].starts_with("`lookback_window`: is under a minute")
                && warnings[0].contains("`PT10M`"),
            "{}",
            warnings[0]
        );
    }
    for given in [json!("PT1M"), json!(null)] {
        let parsed = parse(&with(json!({"lookback_window": given}))).unwrap();
        assert!(parsed.warnings.is_empty(), "{given}: {:?}", parsed.warnings);
    }
}

/// A formula refresh under an hour is read, with a WARN; minutes written for months (`PT1M`)
/// are named as such. An hour or more, or none, says nothing.
#[test]
fn a_formula_refresh_under_an_hour_is_warned_about() {
    for (given, secs, month) in [
        ("PT1M", 60, true),
        ("PT1S", 1, false),
        ("PT59M", 3540, true),
    ] {
        let parsed = parse(&with(json!({"formula_refresh": given}))).unwrap();
        let every = parsed.config.formula_refresh.unwrap();
        assert_eq!(every.as_std().as_secs(), secs, "{given}");
        let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 1, "{given}: {warnings:?}");
        assert!(
            warnings[0].starts_with("`formula_refresh`: is under an hour")
                && warnings[0].contains("`P1D`"),
            "{}",
            warnings[0]
        );
        assert_eq!(
            warnings[0].contains("month(s) is `P"),
            month,
            "{}",
            warnings[0]
        );
    }
    let parsed = parse(&with(json!({"formula_refresh": "PT1M"}))).unwrap();
    assert!(parsed.warnings[0]
        .to_string()
        .contains("(`PT1M` is 1 minute(s); 1 month(s) is `P1M`)"));
    for given in [json!("PT1H"), json!("P1M"), json!(null), json!("")] {
        let parsed = parse(&with(json!({"formula_refresh": given}))).unwrap();
        assert!(parsed.warnings.is_empty(), "{given}: {:?}", parsed.warnings);
    }
}
