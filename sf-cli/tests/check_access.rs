//! `sfconnect check` tells what a sync will see: the restricted user's check succeeds with one
//! message naming the objects whose rows sharing hides, the streams that need "View All Users",
//! and the catalog streams it cannot read; the admin's succeeds without a warning.
#![allow(clippy::unwrap_used)]

mod harness;

use fixtures::{OrgConfig, Scale};
use harness::{catalog, Env};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn check_warns_the_restricted_user_and_not_the_admin() {
    let env = Env::start("check-access", OrgConfig::new(9, Scale::Tiny)).await;
    let streams = catalog(&[
        ("Account", "incremental"),
        ("Contact", "incremental"),
        ("User", "full_refresh"),
        ("Restricted_Data__c", "full_refresh"),
    ]);
    let catalog_path = env.write("catalog.json", &streams);

    let admin = env.write("admin.json", &env.config(json!({})));
    let run = env
        .run(&["check", "--config", admin.to_str().unwrap()], &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("Enterprise Edition"), "{message}");
    assert!(message.contains("API v62.0"), "{message}");
    assert!(message.contains("daily API requests used"), "{message}");
    assert!(message.ends_with("No access problems found."), "{message}");
    assert!(run
        .of_type("LOG")
        .iter()
        .all(|m| m["log"]["level"] != "WARN"));

    let restricted = env.org.restricted_login_info();
    let config = env.config(json!({"refresh_token": restricted.refresh_token}));
    let path = env.write("restricted.json", &config);
    let run = env
        .run(
            &[
                "check",
                "--config",
                path.to_str().unwrap(),
                "--catalog",
                catalog_path.to_str().unwrap(),
            ],
            &[],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(
        status["status"], "SUCCEEDED",
        "warnings do not fail a check"
    );
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("3 warnings: "), "{message}");
    assert!(
        message.contains("\"View All Records\" on 1 object (Account)"),
        "{message}"
    );
    assert!(
        message.contains("User needs \"View All Users\", which the user lacks: it will hold only"),
        "{message}"
    );
    assert!(message.contains("(Restricted_Data__c)"), "{message}");
    assert_eq!(run.logs_with("WARN", "Fix:").len(), 3, "{}", run.dump());
    assert!(!run.stdout.contains(&restricted.refresh_token));

    // A refused login stays FAILED.
    let mut bad = config.clone();
    bad["refresh_token"] = json!("not-a-token");
    let bad = env.write("bad.json", &bad);
    let run = env
        .run(&["check", "--config", bad.to_str().unwrap()], &[])
        .await;
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
}

/// An `api_budget` the org's usage has already reached: the check still reads the allowance and
/// the permissions (its own calls ignore the budget) and warns that a read would stop at once,
/// naming the key, instead of blaming the permissions.
#[tokio::test(flavor = "multi_thread")]
async fn check_says_when_the_api_budget_is_already_used_up() {
    let env = Env::start("check-budget", OrgConfig::new(12, Scale::Tiny)).await;
    let config = env.write("config.json", &env.config(json!({"api_budget": 0.00001})));
    let run = env
        .run(&["check", "--config", config.to_str().unwrap()], &[])
        .await;
    run.assert_contract();
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("daily API requests used"), "{message}");
    assert!(message.contains("1 warning: "), "{message}");
    assert!(
        message.contains(
            "api_budget 0.00001 stops requests once the org's usage reaches 1 of its 100000"
        ),
        "{message}"
    );
    assert!(
        !message.contains("permissions could not be read"),
        "{message}"
    );
    assert_eq!(
        run.logs_with("WARN", "api_budget").len(),
        1,
        "{}",
        run.dump()
    );
    // Without the budget the same org gets no warning.
    let plain = env.write("plain.json", &env.config(json!({})));
    let run = env
        .run(&["check", "--config", plain.to_str().unwrap()], &[])
        .await;
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    let message = status["message"].as_str().unwrap();
    assert!(message.ends_with("No access problems found."), "{message}");
}

/// `streams_criteria` decide what a sync sees without a catalog: the check counts the objects
/// they keep, and says so when they keep none (discover would offer no object stream).
#[tokio::test(flavor = "multi_thread")]
async fn check_counts_what_streams_criteria_keep_and_warns_when_nothing() {
    let env = Env::start("check-criteria", OrgConfig::new(13, Scale::Tiny)).await;
    let check = |criteria: serde_json::Value, file: &'static str| {
        let path = env.write(file, &env.config(json!({ "streams_criteria": criteria })));
        let env = &env;
        async move {
            env.run(&["check", "--config", path.to_str().unwrap()], &[])
                .await
        }
    };
    let run = check(
        json!([{"criteria": "exacts", "value": "Nothing"}]),
        "none.json",
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("(0 kept by streams_criteria)"),
        "{message}"
    );
    assert!(
        message.contains("streams_criteria (1 criterion) keep none of the readable objects"),
        "{message}"
    );
    let run = check(
        json!([{"criteria": "exacts", "value": "account"}]),
        "one.json",
    )
    .await;
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("(1 kept by streams_criteria)"),
        "{message}"
    );
    assert!(message.ends_with("No access problems found."), "{message}");
}

/// A check that fails for a reason that is not the config's (here the org's daily allowance is
/// used up, which Salesforce answers 403 `REQUEST_LIMIT_EXCEEDED`) is a TRACE error with exit 1,
/// as the Airbyte CDK raises it, not a FAILED status that would blame the credentials. (A refused
/// login stays a FAILED status: the test above.)
#[tokio::test(flavor = "multi_thread")]
async fn a_check_failing_for_no_fault_of_the_config_is_a_trace_error() {
    let env = Env::start("check-outage", OrgConfig::new(10, Scale::Tiny)).await;
    let config = env.write("config.json", &env.config(json!({})));
    let mut faults = env.org.control().faults();
    faults.daily_api_limit = 0;
    env.org.control().set_faults(faults);
    let run = env
        .run(&["check", "--config", config.to_str().unwrap()], &[])
        .await;
    run.assert_contract();
    assert_eq!(run.code, Some(1), "{}", run.dump());
    assert!(
        run.of_type("CONNECTION_STATUS").is_empty(),
        "{}",
        run.dump()
    );
    let error = run.trace_error().unwrap();
    assert_ne!(error["failure_type"], "config_error", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("REQUEST_LIMIT_EXCEEDED"),
        "{error}"
    );
    // A check is not a sync: no state to resume from; the allowance is named.
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("daily API allowance"), "{message}");
    assert!(
        !message.contains("resumes from the last state"),
        "{message}"
    );
}
