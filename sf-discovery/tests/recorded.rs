#![allow(clippy::unwrap_used)]
//! Discovery against recorded Salesforce exchanges served by mockito.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fixtures::recorded::Scenario;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sf_auth::{Credentials, ErrorKind, LoginUrl, RetryConfig, Secret, Session, SessionConfig};
use sf_discovery::{
    describe_objects, describe_streams, discover, Catalog, Criterion, DiscoveryOptions,
    DiscoveryWarning, Error, StreamCriteria, StreamCriterion,
};

/// The objects with a recorded describe, by fixture file.
const DESCRIBED: &[(&str, &str)] = &[
    ("describe_account", "Account"),
    ("describe_account_history", "AccountHistory"),
    ("describe_active_profile_metric", "ActiveProfileMetric"),
    ("describe_attachment", "Attachment"),
    ("describe_contact", "Contact"),
    ("describe_invoice", "Invoice__c"),
    ("describe_store", "Store__c"),
    ("describe_task", "Task"),
    ("describe_user", "User"),
];

const OFFERED: [&str; 9] = [
    "Account",
    "AccountHistory",
    "ActiveProfileMetric",
    "Attachment",
    "Contact",
    "Invoice__c",
    "Store__c",
    "Task",
    "User",
];

fn config(server: &mockito::Server, max_retries: u32) -> SessionConfig {
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
    config
}

async fn login(server: &mut mockito::Server, max_retries: u32) -> Session {
    Scenario::load("auth", "refresh_ok")
        .unwrap()
        .mount_async(server)
        .await;
    Session::login(config(server, max_retries)).await.unwrap()
}

/// The recorded describes, by object name.
fn recorded_describes() -> HashMap<String, Value> {
    DESCRIBED
        .iter()
        .map(|(file, name)| {
            let scenario = Scenario::load("discovery", file).unwrap();
            let body = scenario.exchanges[0].response.json.clone().unwrap();
            assert_eq!(body["name"], *name, "{file}");
            (name.to_string(), body)
        })
        .collect()
}

/// What the composite endpoint saw: the number of subrequests of each call.
type Seen = Arc<Mutex<Vec<usize>>>;

const NOT_FOUND: &str =
    r#"[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]"#;

/// A `composite` endpoint answering from the recorded describes, as Salesforce would: it checks
/// that envelopes are `allOrNone: false` with 1 to 25 `GET /services/data/v62.0/...` describe
/// subrequests under distinct `referenceId`s, and answers 404 NOT_FOUND for an object it has no
/// describe for (object names are case-insensitive). It lists its answers in reverse order, each
/// under its subrequest's `referenceId`, so every test here also checks that answers are matched
/// by `referenceId`, not by position. The plain `GET sobjects/{name}/describe` answers the same
/// way; those mocks are returned with the composite mock.
async fn mount_composite(
    server: &mut mockito::Server,
    describes: HashMap<String, Value>,
) -> (mockito::Mock, Seen, Vec<mockito::Mock>) {
    let mut alone = vec![
        server
            .mock(
                "GET",
                mockito::Matcher::Regex(r"^/services/data/v62\.0/sobjects/\w+/describe$".into()),
            )
            .with_status(404)
            .with_header("content-type", "application/json;charset=UTF-8")
            .with_body(NOT_FOUND)
            .create_async()
            .await,
    ];
    for (name, describe) in &describes {
        alone.push(
            server
                .mock(
                    "GET",
                    format!("/services/data/v62.0/sobjects/{name}/describe").as_str(),
                )
                .with_status(200)
                .with_header("content-type", "application/json;charset=UTF-8")
                .with_body(describe.to_string())
                .create_async()
                .await,
        );
    }
    let describes: HashMap<String, Value> = describes
        .into_iter()
        .map(|(name, describe)| (name.to_lowercase(), describe))
        .collect();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let mock = server
        .mock("POST", "/services/data/v62.0/composite")
        .with_status(200)
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_header("Sforce-Limit-Info", "api-usage=120/15000")
        .with_body_from_request(move |request| {
            let body: Value = serde_json::from_slice(request.body().unwrap()).unwrap();
            assert_eq!(body["allOrNone"], json!(false));
            let subrequests = body["compositeRequest"].as_array().unwrap();
            assert!(!subrequests.is_empty() && subrequests.len() <= 25);
            log.lock().unwrap().push(subrequests.len());
            let mut ids = std::collections::HashSet::new();
            let mut answers: Vec<Value> = subrequests
                .iter()
                .map(|sub| {
                    assert_eq!(sub["method"], "GET");
                    let id = sub["referenceId"].as_str().unwrap();
                    assert!(ids.insert(id.to_string()), "referenceId {id} twice");
                    let url = sub["url"].as_str().unwrap();
                    let name = url
                        .strip_prefix("/services/data/v62.0/sobjects/")
                        .and_then(|rest| rest.strip_suffix("/describe"))
                        .unwrap_or_else(|| panic!("unexpected sub-URL {url}"));
                    let (status, body) = match describes.get(&name.to_lowercase()) {
                        Some(describe) => (200, describe.clone()),
                        None => (404, json!([
                            {"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}
                        ])),
                    };
                    json!({"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": id})
                })
                .collect();
            answers.reverse();
            json!({"compositeResponse": answers})
                .to_string()
                .into_bytes()
        })
        .create_async()
        .await;
    (mock, seen, alone)
}

struct Org {
    _server: mockito::ServerGuard,
    session: Session,
    global: mockito::Mock,
    composite: mockito::Mock,
    seen: Seen,
    alone: Vec<mockito::Mock>,
}

/// A server with a logged-in session, the recorded describeGlobal and the composite endpoint.
async fn recorded_org() -> Org {
    let mut server = mockito::Server::new_async().await;
    let session = login(&mut server, 5).await;
    let global = Scenario::load("discovery", "describe_global")
        .unwrap()
        .mount_async(&mut server)
        .await
        .remove(0);
    let (composite, seen, alone) = mount_composite(&mut server, recorded_describes()).await;
    Org {
        _server: server,
        session,
        global,
        composite,
        seen,
        alone,
    }
}

fn names(catalog: &Catalog) -> Vec<&str> {
    catalog.names().collect()
}

fn field_names<'a>(iter: impl Iterator<Item = &'a sf_discovery::FieldSpec>) -> Vec<&'a str> {
    iter.map(|f| f.name.as_str()).collect()
}

#[tokio::test]
async fn discovery_offers_the_queryable_objects_in_two_calls() {
    let org = recorded_org().await;
    let catalog = discover(&org.session, &DiscoveryOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&catalog), OFFERED);
    assert!(catalog.warnings.is_empty(), "{:?}", catalog.warnings);
    // ⌈9/25⌉ + 1 calls: describeGlobal and one composite call of nine describes, nothing alone.
    assert_eq!(*org.seen.lock().unwrap(), vec![9]);
    org.global.expect(1).assert_async().await;
    org.composite.expect(1).assert_async().await;
    for mock in org.alone {
        mock.expect(0).assert_async().await;
    }
}

#[tokio::test]
async fn keys_cursors_deletes_bulk_unservable_and_formula_fields_per_object() {
    let org = recorded_org().await;
    let session = &org.session;
    let catalog = discover(session, &DiscoveryOptions::default())
        .await
        .unwrap();
    // (object, cursor, incremental, has IsDeleted, custom, Bulk-unservable fields, formula fields)
    type Row<'a> = (
        &'a str,
        &'a str,
        bool,
        bool,
        bool,
        &'a [&'a str],
        &'a [&'a str],
    );
    let table: &[Row<'_>] = &[
        (
            "Account",
            "SystemModstamp",
            true,
            true,
            false,
            &["BillingAddress", "ShippingAddress"],
            &["Tier__c"],
        ),
        ("AccountHistory", "CreatedDate", true, true, false, &[], &[]),
        (
            "ActiveProfileMetric",
            "SystemModstamp",
            true,
            false,
            false,
            &[],
            &[],
        ),
        (
            "Attachment",
            "SystemModstamp",
            true,
            true,
            false,
            &["Body"],
            &[],
        ),
        (
            "Contact",
            "SystemModstamp",
            true,
            true,
            false,
            &["OtherAddress", "MailingAddress"],
            &[],
        ),
        (
            "Invoice__c",
            "SystemModstamp",
            true,
            true,
            true,
            &[],
            &["Net__c", "Days_Overdue__c"],
        ),
        (
            "Store__c",
            "SystemModstamp",
            true,
            true,
            true,
            &["Location__c"],
            &[],
        ),
        ("Task", "SystemModstamp", true, true, false, &[], &[]),
        (
            "User",
            "SystemModstamp",
            true,
            false,
            false,
            &["Address"],
            &[],
        ),
    ];
    assert_eq!(table.len(), catalog.len());
    for (name, cursor, incremental, deletes, custom, unservable, formulas) in table {
        let s = catalog.stream(name).unwrap();
        assert_eq!(s.primary_key.as_deref(), Some("Id"), "{name}");
        assert_eq!(s.cursor_field.as_deref(), Some(*cursor), "{name}");
        assert_eq!(s.supports_incremental, *incremental, "{name}");
        assert_eq!(s.has_is_deleted, *deletes, "{name}");
        assert_eq!(s.custom, *custom, "{name}");
        assert_eq!(
            field_names(s.bulk_unservable_fields()),
            *unservable,
            "{name}"
        );
        assert_eq!(field_names(s.formula_fields()), *formulas, "{name}");
        let schema = s.json_schema();
        assert_eq!(
            schema["properties"].as_object().unwrap().len(),
            s.fields.len(),
            "{name}"
        );
        assert_eq!(schema["additionalProperties"], true);
    }
}

#[tokio::test]
async fn schemas_follow_the_field_types_of_the_recorded_describes() {
    let org = recorded_org().await;
    let session = &org.session;
    let catalog = discover(session, &DiscoveryOptions::default())
        .await
        .unwrap();
    let prop = |object: &str, field: &str| {
        catalog.stream(object).unwrap().json_schema()["properties"][field].clone()
    };
    let string = json!({"type": ["string", "null"]});
    let number = json!({"type": ["number", "null"]});
    for (object, field, want) in [
        ("Account", "Id", string.clone()),
        ("Account", "Name", string.clone()),
        ("Account", "Industry", string.clone()),
        ("Account", "OwnerId", string.clone()),
        ("Account", "AnnualRevenue", number.clone()),
        (
            "Account",
            "NumberOfEmployees",
            json!({"type": ["integer", "null"]}),
        ),
        ("Account", "BillingLatitude", number.clone()),
        (
            "Account",
            "LastActivityDate",
            json!({"type": ["string", "null"], "format": "date"}),
        ),
        (
            "Account",
            "SystemModstamp",
            json!({"type": ["string", "null"], "format": "date-time"}),
        ),
        ("Account", "IsDeleted", json!({"type": ["boolean", "null"]})),
        (
            "Attachment",
            "Body",
            json!({"type": ["string", "null"], "format": "base64"}),
        ),
        ("AccountHistory", "OldValue", string.clone()),
        ("Contact", "Email", string.clone()),
        ("Invoice__c", "Tags__c", string.clone()),
        ("Invoice__c", "Discount__c", number.clone()),
        ("Invoice__c", "Net__c", number.clone()),
        ("Invoice__c", "Bank_Account__c", string.clone()),
        ("Store__c", "Opens_At__c", string.clone()),
        ("Task", "Subject", string.clone()),
    ] {
        assert_eq!(prop(object, field), want, "{object}.{field}");
    }
    let address = prop("Account", "BillingAddress");
    assert_eq!(address["type"], json!(["object", "null"]));
    assert_eq!(
        address["properties"]["city"]["type"],
        json!(["null", "string"])
    );
    assert_eq!(
        address["properties"]["latitude"]["type"],
        json!(["null", "number"])
    );
    let location = prop("Store__c", "Location__c");
    assert_eq!(
        location["properties"].as_object().unwrap().len(),
        2,
        "{location}"
    );
    let account = catalog.stream("Account").unwrap();
    let city = account.field("BillingCity").unwrap();
    assert_eq!(city.compound_field_name.as_deref(), Some("BillingAddress"));
    let description = account.field("Description").unwrap();
    assert!(!description.filterable && !description.sortable);
    let tier = account.field("Tier__c").unwrap();
    assert!(tier.custom && tier.calculated);
}

#[tokio::test]
async fn criteria_choose_which_objects_are_described() {
    let org = recorded_org().await;
    let (session, seen) = (&org.session, &org.seen);
    let options = DiscoveryOptions {
        streams_criteria: StreamCriteria(vec![
            StreamCriterion::new(Criterion::StartsWith, "ACC"),
            StreamCriterion::new(Criterion::EndsWith, "__c"),
        ]),
        ..Default::default()
    };
    let catalog = discover(session, &options).await.unwrap();
    assert_eq!(
        names(&catalog),
        ["Account", "AccountHistory", "Invoice__c", "Store__c"]
    );
    assert_eq!(*seen.lock().unwrap(), vec![4]);
    // A criterion that matches nothing: no composite call at all.
    let options = DiscoveryOptions {
        streams_criteria: StreamCriteria(vec![StreamCriterion::new(Criterion::Exacts, "Lead")]),
        ..Default::default()
    };
    assert!(discover(session, &options).await.unwrap().is_empty());
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn smaller_batches_split_the_describes() {
    let org = recorded_org().await;
    let (session, seen) = (&org.session, &org.seen);
    let options = DiscoveryOptions {
        describe_batch_size: 4,
        describe_batches_in_flight: 2,
        ..Default::default()
    };
    let catalog = discover(session, &options).await.unwrap();
    assert_eq!(names(&catalog), OFFERED);
    let mut sizes = seen.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![1, 4, 4]);
    org.composite.expect(3).assert_async().await;
}

#[tokio::test]
async fn describing_named_streams_skips_describe_global() {
    let org = recorded_org().await;
    let (session, seen) = (&org.session, &org.seen);
    let wanted: Vec<String> = ["invoice__c", "Account", "Describe", "ACCOUNT"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let catalog = describe_streams(session, &wanted, &DiscoveryOptions::default())
        .await
        .unwrap();
    // The describe's own spelling names the stream.
    assert_eq!(names(&catalog), ["Account", "Invoice__c"]);
    assert_eq!(*seen.lock().unwrap(), vec![2]);
    org.global.expect(0).assert_async().await;
    org.composite.expect(1).assert_async().await;
}

/// Without `keep_describes` nothing of a describe is kept but its stream: the same streams, no
/// describe text (the memory of a read that does not sync `Describe`, and of discover).
#[tokio::test]
async fn describes_not_kept_give_the_same_streams_and_no_text() {
    let org = recorded_org().await;
    let session = &org.session;
    let order: Vec<String> = ["User", "Account", "Task"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let read = |keep: bool| {
        let names = order.clone();
        async move {
            let stream = describe_objects(
                session,
                names,
                &DiscoveryOptions {
                    describe_batch_size: 2,
                    keep_describes: keep,
                    ..Default::default()
                },
            )
            .unwrap();
            let described: Vec<_> = stream.collect().await;
            described
                .into_iter()
                .map(|d| d.unwrap())
                .collect::<Vec<_>>()
        }
    };
    let kept = read(true).await;
    let dropped = read(false).await;
    assert_eq!(kept.len(), 3);
    assert!(kept.iter().all(|d| d.describe.is_some()));
    assert!(dropped.iter().all(|d| d.describe.is_none()));
    let streams = |d: &[sf_discovery::ObjectDescribe]| -> Vec<sf_discovery::StreamSpec> {
        d.iter().map(|d| d.stream.clone()).collect()
    };
    assert_eq!(streams(&kept), streams(&dropped));
}

#[tokio::test]
async fn describe_records_are_the_describes_as_sent_in_the_order_asked() {
    let org = recorded_org().await;
    let session = &org.session;
    let recorded = recorded_describes();
    let order = ["User", "Account", "Task"];
    let stream = describe_objects(
        session,
        order.iter().map(|s| s.to_string()).collect(),
        &DiscoveryOptions {
            describe_batch_size: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let described: Vec<_> = stream.collect().await;
    assert_eq!(described.len(), 3);
    for (name, item) in order.iter().zip(described) {
        let item = item.unwrap();
        assert_eq!(item.stream.name, *name);
        // Kept as the JSON text sent, whole.
        let kept: serde_json::Value =
            serde_json::from_str(item.describe.as_ref().unwrap().get()).unwrap();
        assert_eq!(&kept, &recorded[*name], "{name}");
        assert_eq!(kept["name"], *name);
    }
}

#[tokio::test]
async fn an_object_missing_from_the_org_fails_or_is_skipped() {
    let org = recorded_org().await;
    let session = &org.session;
    let wanted = vec!["Account".to_string(), "Gone__c".to_string()];
    let err = describe_streams(session, &wanted, &DiscoveryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.object(), Some("Gone__c"));
    assert!(err.is_inaccessible());
    let options = DiscoveryOptions {
        skip_inaccessible: true,
        describe_retries: 0,
        ..Default::default()
    };
    let catalog = describe_streams(session, &wanted, &options).await.unwrap();
    assert_eq!(names(&catalog), ["Account"]);
    assert!(matches!(
        &catalog.warnings[..],
        [DiscoveryWarning::ObjectSkipped { object, error_code: Some(code), .. }]
            if object == "Gone__c" && code == "NOT_FOUND"
    ));
}

#[tokio::test]
async fn failed_subrequests_are_retried_alone_and_a_lasting_failure_names_the_object() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 5).await;
    // Two runs below; in each, one composite call, and Coupon__c (500 in the call) retried alone
    // once; Ghost__c (404: not there) and Store__c (answered) are not.
    let mocks = Scenario::load("discovery", "composite_partial_failure")
        .unwrap()
        .expecting(0, 2)
        .expecting(1, 2)
        .mount_async(&mut server)
        .await;
    let wanted: Vec<String> = ["Store__c", "Ghost__c", "Coupon__c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let err = describe_streams(session, &wanted, &DiscoveryOptions::default())
        .await
        .unwrap_err();
    match &err {
        Error::Describe {
            object, attempts, ..
        } => {
            assert_eq!(object, "Ghost__c");
            assert_eq!(*attempts, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.error_code(), Some("NOT_FOUND"));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let text = err.to_string();
    assert!(text.contains("`Ghost__c`"), "{text}");
    assert!(text.contains("NOT_FOUND"), "{text}");

    // Leaving inaccessible objects out, the retried Coupon__c is in the catalog.
    let options = DiscoveryOptions {
        skip_inaccessible: true,
        ..Default::default()
    };
    let catalog = describe_streams(session, &wanted, &options).await.unwrap();
    assert_eq!(names(&catalog), ["Coupon__c", "Store__c"]);
    let coupon = catalog.stream("Coupon__c").unwrap();
    assert_eq!(coupon.cursor_field.as_deref(), Some("SystemModstamp"));
    assert!(coupon.field("Percent_Off__c").is_some());
    assert_eq!(catalog.warnings.len(), 1);
    assert!(catalog.warnings[0].to_string().contains("Ghost__c"));
    for mock in &mocks {
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn a_describe_that_keeps_failing_is_an_error_naming_it() {
    let mut server = mockito::Server::new_async().await;
    // Each plain GET is tried once and retried twice by the session.
    let session = &login(&mut server, 2).await;
    // Two runs: the first retries Invoice__c alone twice (3 requests each), the second not at all.
    let scenario = Scenario::load("discovery", "composite_persistent_failure")
        .unwrap()
        .expecting(0, 2)
        .expecting(1, 6);
    let mocks = scenario.mount_async(&mut server).await;
    let wanted = vec!["Coupon__c".to_string(), "Invoice__c".to_string()];
    let options = DiscoveryOptions {
        describe_retries: 2,
        ..Default::default()
    };
    let err = describe_streams(session, &wanted, &options)
        .await
        .unwrap_err();
    match &err {
        Error::Describe {
            object, attempts, ..
        } => {
            assert_eq!(object, "Invoice__c");
            assert_eq!(*attempts, 3);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.error_code(), Some("SERVER_UNAVAILABLE"));
    assert!(!err.is_inaccessible());
    // Not inaccessible, and passing (a server error): skipping does not hide it, for a catalog
    // without it would tell the platform the stream is gone.
    assert!(!err.is_confined_to_object());
    let skip = DiscoveryOptions {
        skip_inaccessible: true,
        describe_retries: 0,
        ..Default::default()
    };
    let err = describe_streams(session, &wanted, &skip).await.unwrap_err();
    assert_eq!(err.object(), Some("Invoice__c"));
    assert_eq!(err.error_code(), Some("UNKNOWN_EXCEPTION"));
    for mock in &mocks {
        mock.assert_async().await;
    }
}

/// A composite call that keeps failing (a server error past the session's retries) costs no
/// stream: each of its objects is asked alone, and the catalog comes out whole.
#[tokio::test]
async fn a_composite_call_that_keeps_failing_is_asked_object_by_object() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 1).await;
    let failing = server
        .mock("POST", "/services/data/v62.0/composite")
        .with_status(503)
        .with_header("content-type", "application/json")
        .with_body(r#"[{"errorCode":"SERVER_UNAVAILABLE","message":"try later"}]"#)
        .expect(2)
        .create_async()
        .await;
    let describes = recorded_describes();
    let mut alone = Vec::new();
    for name in ["Invoice__c", "Store__c"] {
        alone.push(
            server
                .mock(
                    "GET",
                    format!("/services/data/v62.0/sobjects/{name}/describe").as_str(),
                )
                .with_header("content-type", "application/json")
                .with_body(describes[name].to_string())
                .expect(1)
                .create_async()
                .await,
        );
    }
    let wanted = vec!["Invoice__c".to_string(), "Store__c".to_string()];
    let options = DiscoveryOptions {
        describe_retries: 0,
        ..Default::default()
    };
    let catalog = describe_streams(session, &wanted, &options).await.unwrap();
    let names: Vec<&str> = catalog.names().collect();
    assert_eq!(names, ["Invoice__c", "Store__c"]);
    failing.assert_async().await;
    for mock in &alone {
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn the_daily_limit_refuses_the_composite_call_and_is_not_retried() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 5).await;
    // The call is refused as a whole: sent once (not retried by the session), and neither object
    // is asked for alone.
    let mocks = Scenario::load("discovery", "composite_daily_limit")
        .unwrap()
        .expecting(0, 1)
        .mount_async(&mut server)
        .await;
    let alone = server
        .mock(
            "GET",
            mockito::Matcher::Regex(r"^/services/data/v62\.0/sobjects/\w+/describe$".into()),
        )
        .expect(0)
        .create_async()
        .await;
    let wanted = vec!["Coupon__c".to_string(), "Store__c".to_string()];
    let options = DiscoveryOptions {
        describe_retries: 3,
        skip_inaccessible: true,
        ..Default::default()
    };
    let err = describe_streams(session, &wanted, &options)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BatchRequest { .. }), "{err:?}");
    assert_eq!(err.object(), None);
    assert_eq!(err.kind(), ErrorKind::DailyLimitExceeded);
    assert_eq!(err.error_code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert!(!err.is_inaccessible());
    assert_eq!(
        err.to_string(),
        "describing `Coupon__c` and `Store__c` (composite) failed: \
         POST composite failed: HTTP 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."
    );
    assert_eq!(session.api_usage().map(|u| u.used), Some(15_000));
    for mock in &mocks {
        mock.assert_async().await;
    }
    alone.assert_async().await;
}

#[tokio::test]
async fn unknown_field_types_are_strings_with_a_warning() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 5).await;
    let mut describes = HashMap::new();
    describes.insert(
        "Embedding__c".to_string(),
        json!({"name": "Embedding__c", "custom": true, "queryable": true, "fields": [
            {"name": "Id", "type": "id", "soapType": "tns:ID"},
            {"name": "SystemModstamp", "type": "datetime", "soapType": "xsd:dateTime"},
            {"name": "Vector__c", "type": "vector", "soapType": "urn:vector", "custom": true}
        ]}),
    );
    let _mocks = mount_composite(&mut server, describes).await;
    let catalog = describe_streams(
        session,
        &["Embedding__c".to_string()],
        &DiscoveryOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        catalog.warnings,
        vec![DiscoveryWarning::UnknownFieldType {
            object: "Embedding__c".into(),
            field: "Vector__c".into(),
            type_name: "vector".into(),
        }]
    );
    let schema = catalog.stream("Embedding__c").unwrap().json_schema();
    assert_eq!(
        schema["properties"]["Vector__c"],
        json!({"type": ["string", "null"]})
    );
}

#[tokio::test]
async fn failures_of_the_listing_and_of_whole_composite_calls() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 0).await;

    // describeGlobal refused.
    let refused = server
        .mock("GET", "/services/data/v62.0/sobjects")
        .with_status(403)
        .with_body(r#"[{"errorCode":"API_DISABLED_FOR_ORG","message":"The REST API is not enabled for this Organization."}]"#)
        .create_async()
        .await;
    let err = discover(session, &DiscoveryOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GlobalRequest { .. }), "{err:?}");
    assert_eq!(err.error_code(), Some("API_DISABLED_FOR_ORG"));
    refused.remove_async().await;

    // describeGlobal that is not one.
    let odd = server
        .mock("GET", "/services/data/v62.0/sobjects")
        .with_status(200)
        .with_body(r#"{"encoding":"UTF-8","sobjects":{"name":"Account"}}"#)
        .create_async()
        .await;
    let err = discover(session, &DiscoveryOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GlobalDecode { .. }), "{err:?}");
    odd.remove_async().await;

    let wanted: Vec<String> = ["Account", "Contact", "Lead"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let answer = |id: &str, body: &str| {
        format!(r#"{{"body":{body},"httpHeaders":{{}},"httpStatusCode":200,"referenceId":"{id}"}}"#)
    };
    let three = |ids: [&str; 3], contact: &str| {
        format!(
            r#"{{"compositeResponse":[{},{},{}]}}"#,
            answer(ids[0], r#"{"name":"Account","fields":[]}"#),
            answer(ids[1], contact),
            answer(ids[2], r#"{"name":"Lead","fields":[]}"#),
        )
    };
    let contact = r#"{"name":"Contact","fields":[]}"#;
    for (status, body, check) in [
        (
            400,
            r#"[{"errorCode":"JSON_PARSER_ERROR","message":"Unexpected character"}]"#.to_string(),
            "JSON_PARSER_ERROR",
        ),
        (
            200,
            "<html>maintenance</html>".to_string(),
            "unexpected response body",
        ),
        // A composite/batch answer is not a composite one.
        (
            200,
            r#"{"hasErrors":false,"results":[{"statusCode":200,"result":{}}]}"#.to_string(),
            "missing field `compositeResponse`",
        ),
        (
            200,
            format!(r#"{{"compositeResponse":[{}]}}"#, answer("d0", "{}")),
            "1 results for 3 subrequests",
        ),
        (
            200,
            three(["d0", "d1", "d1"], contact),
            "two results for referenceId `d1`",
        ),
        (
            200,
            three(["d0", "d1", "refLead"], contact),
            "a result for the unknown referenceId `refLead`",
        ),
        (
            200,
            three(["d0", "d1", "d2"], r#"{"name":"Contact","fields":7}"#),
            "`Contact`",
        ),
    ] {
        let mock = server
            .mock("POST", "/services/data/v62.0/composite")
            .with_status(status)
            .with_body(&body)
            .create_async()
            .await;
        // No retries alone: an unreadable answer fails the first object with what was wrong.
        let no_retries = DiscoveryOptions {
            describe_retries: 0,
            ..Default::default()
        };
        let err = describe_streams(session, &wanted, &no_retries)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(check), "{status} {body}: {text}");
        if status == 400 {
            // Refused whole: one error for the call's objects.
            assert!(text.contains("`Account`, `Contact` and 1 more"), "{text}");
        } else if check == "`Contact`" {
            assert!(matches!(err, Error::DescribeDecode { .. }), "{err:?}");
        } else {
            assert!(
                matches!(&err, Error::Describe { object, attempts: 1, .. } if object == "Account"),
                "{err:?}"
            );
        }
        mock.remove_async().await;
    }
}

#[tokio::test]
async fn bad_names_and_options_fail_before_any_request() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 0).await;
    let composite = server
        .mock("POST", "/services/data/v62.0/composite")
        .expect(0)
        .create_async()
        .await;
    let err = describe_streams(
        session,
        &["Account".to_string(), "Account/../../limits".to_string()],
        &DiscoveryOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidObjectName { ref name } if name == "Account/../../limits"));
    let err = describe_streams(
        session,
        &["Account".to_string()],
        &DiscoveryOptions {
            describe_batch_size: 30,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("describe_batch_size"), "{err}");
    composite.assert_async().await;
}

#[tokio::test]
async fn an_unreadable_composite_answer_describes_each_object_alone() {
    let mut server = mockito::Server::new_async().await;
    let session = &login(&mut server, 0).await;
    // A 200 that answers none of the subrequests.
    let composite = server
        .mock("POST", "/services/data/v62.0/composite")
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(r#"{"compositeResponse":[]}"#)
        .expect(2)
        .create_async()
        .await;
    let alone = Scenario::load("discovery", "describe_store")
        .unwrap()
        .expecting(0, 1)
        .mount_async(&mut server)
        .await;
    let wanted = vec!["Store__c".to_string()];
    let catalog = describe_streams(session, &wanted, &DiscoveryOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&catalog), ["Store__c"]);

    // Without retries, the object fails, and the error says what was wrong with the answer.
    let none = DiscoveryOptions {
        describe_retries: 0,
        ..Default::default()
    };
    let err = describe_streams(session, &wanted, &none).await.unwrap_err();
    assert_eq!(err.object(), Some("Store__c"));
    let text = err.to_string();
    assert!(text.contains("0 results for 1 subrequests"), "{text}");
    composite.assert_async().await;
    for mock in &alone {
        mock.assert_async().await;
    }
}
