#![allow(clippy::unwrap_used)]
//! One bad object never sinks discovery: with inaccessible objects skipped (as `sfconnect
//! discover` does), an object whose describe fails for a lasting reason of its own (refused for
//! the object, a describe that cannot be read, access refused) is left out with a warning naming
//! it and why, while a passing failure (a server error that outlasts the retries) still fails
//! discovery, for a catalog without the object would say it is gone;
//! and the other objects are offered; describes that cannot succeed are not retried alone; a
//! describeGlobal entry that cannot be read is left out with a warning. Served by mockito.

use std::collections::HashMap;

use fixtures::recorded::Scenario;
use serde_json::{json, Value};
use sf_auth::{Credentials, ErrorKind, LoginUrl, RetryConfig, Secret, Session, SessionConfig};
use sf_discovery::{
    describe_global, describe_streams, discover, Catalog, DiscoveryOptions, DiscoveryWarning, Error,
};

const API_ERROR: &str = r#"[{"errorCode":"API_ERROR","message":"Unable to describe this entity"}]"#;
const UNKNOWN_EXCEPTION: &str = r#"[{"errorCode":"UNKNOWN_EXCEPTION","message":"An unexpected error occurred. Please include this ErrorId if you contact support: 1185467397-87146 (-1098126295)"}]"#;

async fn login(server: &mut mockito::Server, max_retries: u32) -> Session {
    Scenario::load("auth", "refresh_ok")
        .unwrap()
        .mount_async(server)
        .await;
    let mut config = SessionConfig::new(
        LoginUrl::parse(&server.url()).unwrap(),
        Credentials {
            client_id: "test-client-id".to_string(),
            client_secret: Secret::new("test-secret"),
            refresh_token: Some(Secret::new("test-refresh")),
        },
    );
    config.retry = RetryConfig {
        max_retries,
        ..RetryConfig::immediate()
    };
    Session::login(config).await.unwrap()
}

/// A small, valid describe of `name`.
fn describe(name: &str) -> Value {
    json!({
        "name": name, "queryable": true, "custom": name.ends_with("__c"),
        "fields": [
            {"name": "Id", "type": "id", "filterable": true, "sortable": true},
            {"name": "SystemModstamp", "type": "datetime", "filterable": true, "sortable": true}
        ]
    })
}

/// describeGlobal answering `sobjects`.
async fn mount_listing(server: &mut mockito::Server, sobjects: Value) -> mockito::Mock {
    server
        .mock("GET", "/services/data/v62.0/sobjects")
        .with_status(200)
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(
            json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects}).to_string(),
        )
        .create_async()
        .await
}

/// A `composite` endpoint answering each describe subrequest from `answers` (status and body, by
/// object name), and 404 NOT_FOUND for an object it does not know.
async fn mount_composite(
    server: &mut mockito::Server,
    answers: HashMap<String, (u16, Value)>,
) -> mockito::Mock {
    server
        .mock("POST", "/services/data/v62.0/composite")
        .with_status(200)
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body_from_request(move |request| {
            let body: Value = serde_json::from_slice(request.body().unwrap()).unwrap();
            let answered: Vec<Value> = body["compositeRequest"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sub| {
                    let url = sub["url"].as_str().unwrap();
                    let name = url
                        .strip_prefix("/services/data/v62.0/sobjects/")
                        .and_then(|rest| rest.strip_suffix("/describe"))
                        .unwrap_or_else(|| panic!("unexpected sub-URL {url}"));
                    let (status, body) = answers.get(name).cloned().unwrap_or_else(|| {
                        (
                            404,
                            json!([{"errorCode": "NOT_FOUND",
                                    "message": "The requested resource does not exist"}]),
                        )
                    });
                    json!({"body": body, "httpHeaders": {}, "httpStatusCode": status,
                           "referenceId": sub["referenceId"]})
                })
                .collect();
            json!({"compositeResponse": answered})
                .to_string()
                .into_bytes()
        })
        .create_async()
        .await
}

/// Any describe asked for alone: none is expected.
async fn mount_no_describe_alone(server: &mut mockito::Server) -> mockito::Mock {
    server
        .mock(
            "GET",
            mockito::Matcher::Regex(r"^/services/data/v62\.0/sobjects/\w+/describe$".into()),
        )
        .with_status(500)
        .with_body(UNKNOWN_EXCEPTION)
        .expect(0)
        .create_async()
        .await
}

fn names(catalog: &Catalog) -> Vec<&str> {
    catalog.names().collect()
}

/// The objects left out with `ObjectSkipped`, with their error codes, in order.
fn skipped(catalog: &Catalog) -> Vec<(&str, Option<&str>)> {
    catalog
        .warnings
        .iter()
        .filter_map(|w| match w {
            DiscoveryWarning::ObjectSkipped {
                object, error_code, ..
            } => Some((object.as_str(), error_code.as_deref())),
            _ => None,
        })
        .collect()
}

fn skip_inaccessible() -> DiscoveryOptions {
    DiscoveryOptions {
        skip_inaccessible: true,
        ..DiscoveryOptions::default()
    }
}

#[tokio::test]
async fn an_object_whose_describe_keeps_failing_is_left_out_and_the_others_are_offered() {
    let mut server = mockito::Server::new_async().await;
    // Each plain GET is tried once and retried once by the session.
    let session = &login(&mut server, 1).await;
    let listing = mount_listing(
        &mut server,
        json!([
            {"name": "Account", "queryable": true},
            {"name": "Broken__c", "queryable": true, "custom": true},
            {"name": "Contact", "queryable": true},
            {"name": "Garbled__c", "queryable": true, "custom": true}
        ]),
    )
    .await;
    let no_other_alone = mount_no_describe_alone(&mut server).await;
    // Broken__c's describe is refused (API_ERROR) in the composite call, and again alone.
    let broken_alone = server
        .mock("GET", "/services/data/v62.0/sobjects/Broken__c/describe")
        .with_status(400)
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(API_ERROR)
        .expect(1)
        .create_async()
        .await;
    let mut answers = HashMap::new();
    for name in ["Account", "Contact"] {
        answers.insert(name.to_string(), (200, describe(name)));
    }
    answers.insert(
        "Broken__c".to_string(),
        (400, serde_json::from_str(API_ERROR).unwrap()),
    );
    // Garbled__c's describe is not one: `fields` is not a list.
    answers.insert(
        "Garbled__c".to_string(),
        (
            200,
            json!({"name": "Garbled__c", "queryable": true, "fields": 7}),
        ),
    );
    let composite = mount_composite(&mut server, answers).await;

    // Skipping: one retry alone of Broken__c (a refusal the session does not retry), none of
    // Garbled__c (an unreadable describe is not a passing failure).
    let catalog = discover(session, &skip_inaccessible()).await.unwrap();
    assert_eq!(names(&catalog), ["Account", "Contact"]);
    assert_eq!(
        skipped(&catalog),
        [("Broken__c", Some("API_ERROR")), ("Garbled__c", None)]
    );
    assert_eq!(catalog.warnings.len(), 2, "{:?}", catalog.warnings);
    let lines: Vec<String> = catalog.warnings.iter().map(ToString::to_string).collect();
    assert!(
        lines[0].starts_with("`Broken__c` is left out: describing `Broken__c`"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("API_ERROR"), "{}", lines[0]);
    assert!(
        lines[1].starts_with(
            "`Garbled__c` is left out: describing `Garbled__c`: unexpected response body"
        ),
        "{}",
        lines[1]
    );
    assert!(catalog.excluded.is_empty(), "{:?}", catalog.excluded);

    // Without skipping, the first failure fails discovery and names the object.
    let no_skip = DiscoveryOptions {
        describe_retries: 0,
        ..DiscoveryOptions::default()
    };
    let err = discover(session, &no_skip).await.unwrap_err();
    assert_eq!(err.object(), Some("Broken__c"));
    assert_eq!(err.error_code(), Some("API_ERROR"));
    assert_eq!(err.kind(), ErrorKind::Other);

    listing.expect(2).assert_async().await;
    composite.expect(2).assert_async().await;
    broken_alone.assert_async().await;
    no_other_alone.assert_async().await;
}

#[tokio::test]
async fn when_every_describe_fails_discovery_fails_rather_than_offering_nothing() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 0).await;
    let no_alone = mount_no_describe_alone(&mut server).await;
    let mut answers = HashMap::new();
    answers.insert(
        "Broken__c".to_string(),
        (400, serde_json::from_str(API_ERROR).unwrap()),
    );
    let composite = mount_composite(&mut server, answers).await;
    let options = DiscoveryOptions {
        describe_retries: 0,
        ..skip_inaccessible()
    };
    // Gone__c is not there (inaccessible), Broken__c fails: nothing described, so the failure.
    let both = vec!["Broken__c".to_string(), "Gone__c".to_string()];
    let err = describe_streams(session, &both, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Describe { object, .. } if object == "Broken__c"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Other);
    // Only inaccessible objects: an empty catalog, each left out with a warning, as before.
    let gone = vec!["Gone__c".to_string()];
    let catalog = describe_streams(session, &gone, &options).await.unwrap();
    assert!(catalog.is_empty());
    assert_eq!(skipped(&catalog), [("Gone__c", Some("NOT_FOUND"))]);
    composite.expect(2).assert_async().await;
    no_alone.assert_async().await;
}

/// A describe failing for a passing reason (a server error that outlasts the retries) fails
/// discovery even when inaccessible objects are skipped, naming the object: a catalog without
/// it would tell the platform the stream is gone.
#[tokio::test]
async fn a_describe_failing_for_a_passing_reason_still_fails_discovery() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 0).await;
    mount_listing(
        &mut server,
        json!([
            {"name": "Account", "queryable": true},
            {"name": "Broken__c", "queryable": true, "custom": true}
        ]),
    )
    .await;
    let mut answers = HashMap::new();
    answers.insert("Account".to_string(), (200, describe("Account")));
    answers.insert(
        "Broken__c".to_string(),
        (500, serde_json::from_str(UNKNOWN_EXCEPTION).unwrap()),
    );
    mount_composite(&mut server, answers).await;
    let options = DiscoveryOptions {
        describe_retries: 0,
        ..skip_inaccessible()
    };
    let err = discover(session, &options).await.unwrap_err();
    assert_eq!(err.object(), Some("Broken__c"));
    assert_eq!(err.error_code(), Some("UNKNOWN_EXCEPTION"));
    assert_eq!(err.kind(), ErrorKind::Transient);
}

#[tokio::test]
async fn describes_refused_for_access_or_type_are_not_retried_alone() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 5).await;
    let no_alone = mount_no_describe_alone(&mut server).await;
    let mut answers = HashMap::new();
    answers.insert("Account".to_string(), (200, describe("Account")));
    answers.insert(
        "Secret__c".to_string(),
        (
            403,
            json!([{"errorCode": "INSUFFICIENT_ACCESS",
                    "message": "insufficient access rights on object id"}]),
        ),
    );
    answers.insert(
        "Odd__c".to_string(),
        (
            400,
            json!([{"errorCode": "INVALID_TYPE",
                    "message": "sObject type 'Odd__c' is not supported."}]),
        ),
    );
    let composite = mount_composite(&mut server, answers).await;
    let wanted: Vec<String> = ["Account", "Odd__c", "Secret__c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // Three retries allowed, none spent: one composite call, no describe alone.
    let options = DiscoveryOptions {
        describe_retries: 3,
        ..skip_inaccessible()
    };
    let catalog = describe_streams(session, &wanted, &options).await.unwrap();
    assert_eq!(names(&catalog), ["Account"]);
    assert_eq!(
        skipped(&catalog),
        [
            ("Odd__c", Some("INVALID_TYPE")),
            ("Secret__c", Some("INSUFFICIENT_ACCESS"))
        ]
    );
    for (warning, object) in catalog.warnings.iter().zip(["Odd__c", "Secret__c"]) {
        let line = warning.to_string();
        assert!(
            line.starts_with(&format!("`{object}` is left out: ")),
            "{line}"
        );
    }
    // Without skipping: the first refused object fails the call after one attempt.
    let err = describe_streams(
        session,
        &wanted,
        &DiscoveryOptions {
            describe_retries: 3,
            ..DiscoveryOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Describe { object, attempts: 1, .. } if object == "Odd__c"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::ObjectNotQueryable);
    composite.expect(2).assert_async().await;
    no_alone.assert_async().await;
}

#[tokio::test]
async fn a_listing_entry_that_cannot_be_read_is_left_out_with_a_warning() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 0).await;
    let listing = mount_listing(
        &mut server,
        json!([
            // Flags sent as null read as when absent.
            {"name": "Account", "label": null, "queryable": true, "custom": null,
             "customSetting": null, "retrieveable": null, "replicateable": null,
             "deprecatedAndHidden": null, "keyPrefix": null},
            {"label": "No name", "queryable": true},
            {"name": null, "queryable": true},
            {"name": "Bad Name", "queryable": true},
            {"name": "Odd__c", "queryable": "yes"},
            {"name": "Contact", "queryable": true}
        ]),
    )
    .await;
    let no_alone = mount_no_describe_alone(&mut server).await;
    let mut answers = HashMap::new();
    for name in ["Account", "Contact"] {
        answers.insert(name.to_string(), (200, describe(name)));
    }
    let composite = mount_composite(&mut server, answers).await;

    let listed = describe_global(session).await.unwrap();
    let listed_names: Vec<&str> = listed.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(listed_names, ["Account", "Contact"]);
    let account = &listed[0];
    assert!(account.queryable && account.retrieveable);
    assert!(!account.custom && !account.deprecated_and_hidden && !account.replicateable);

    let catalog = discover(session, &DiscoveryOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&catalog), ["Account", "Contact"]);
    let entries: Vec<(usize, Option<&str>)> = catalog
        .warnings
        .iter()
        .filter_map(|w| match w {
            DiscoveryWarning::ListingEntrySkipped { index, name, .. } => {
                Some((*index, name.as_deref()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        entries,
        [
            (1, None),
            (2, None),
            (3, Some("Bad Name")),
            (4, Some("Odd__c"))
        ]
    );
    assert_eq!(catalog.warnings.len(), 4, "{:?}", catalog.warnings);
    let lines: Vec<String> = catalog.warnings.iter().map(ToString::to_string).collect();
    assert!(
        lines[0].starts_with("describeGlobal's entry 1 is left out: ") && lines[0].contains("name"),
        "{}",
        lines[0]
    );
    assert!(
        lines[2].starts_with("describeGlobal's entry 3 (`Bad Name`) is left out: ")
            && lines[2].contains("not a valid object name"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("describeGlobal's entry 4 (`Odd__c`) is left out: "),
        "{}",
        lines[3]
    );
    listing.expect(2).assert_async().await;
    composite.expect(1).assert_async().await;
    no_alone.assert_async().await;
}
