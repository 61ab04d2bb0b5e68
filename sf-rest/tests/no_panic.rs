#![allow(clippy::unwrap_used)]
//! No query page may panic the REST reader or lead it astray: pages with any shape (wrong types,
//! missing keys, odd rows, broken JSON, error statuses) are read through the public entry point
//! `RestReader::read`, plain and split into chunks merged on `Id`, and either yield records of
//! the planned width or end in one typed error. A `nextRecordsUrl` naming another host never
//! gets the bearer token. The proptest twin of the `fuzz/` target `rest_page`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use mockito::Matcher;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sf_discovery::{FieldSpec, FieldType, StreamSpec};
use sf_rest::{ReadRequest, RestConfig, RestReader};

const FIRST: &str = r"^/services/data/v62\.0/query(All)?$";
const SECOND: &str = "/services/data/v62.0/query/01gR000000fuzz-2000";
const THIRD: &str = "/services/data/v62.0/query/01gR000000fuzz-4000";
const LAST_PAGE: &str = r#"{"totalSize":0,"done":true,"records":[]}"#;

fn account() -> StreamSpec {
    let field = |name: &str, wire: &str| FieldSpec::new(name, FieldType::from_wire(wire));
    StreamSpec {
        name: "Account".into(),
        fields: vec![
            field("Id", "id"),
            field("Name", "string"),
            field("IsDeleted", "boolean"),
            field("AnnualRevenue", "currency"),
            field("NumberOfEmployees", "int"),
            field("SystemModstamp", "datetime"),
            field("LastActivityDate", "date"),
            field("BillingAddress", "address"),
        ],
        primary_key: Some("Id".into()),
        cursor_field: Some("SystemModstamp".into()),
        supports_incremental: true,
        has_is_deleted: true,
        custom: false,
    }
}

/// Account plus 60 long-named fields: with a 2,048-byte request limit its reads split.
fn wide_account() -> StreamSpec {
    let mut spec = account();
    for i in 0..60 {
        spec.fields.push(FieldSpec::new(
            format!("A_Rather_Long_Custom_Field_{i:02}__c"),
            FieldType::String,
        ));
    }
    spec
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!("2024-01-02T03:04:05.000+0000")),
        Just(json!("2024-13-45T99:99:99.999+9999")),
        Just(json!("001R000000AbCdEAAZ")),
        "\\PC{0,12}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "attributes",
            "Id",
            "id",
            "ID",
            "Name",
            "IsDeleted",
            "AnnualRevenue",
            "NumberOfEmployees",
            "SystemModstamp",
            "LastActivityDate",
            "BillingAddress",
            "Owner",
            "A_Rather_Long_Custom_Field_00__c",
            "A_Rather_Long_Custom_Field_59__c",
        ])
        .prop_map(str::to_string),
        "[A-Za-z_.]{0,8}",
    ]
}

fn row() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), value(), 0..8)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
}

fn next_url(allow_second: bool) -> impl Strategy<Value = Option<Value>> {
    let mut urls = vec![
        None,
        Some(json!(THIRD)),
        Some(json!(format!("https://elsewhere.example.com{THIRD}"))),
        Some(json!("query/relative")),
        Some(json!("")),
        Some(json!(42)),
        Some(Value::Null),
    ];
    if allow_second {
        urls.push(Some(json!(SECOND)));
        urls.push(Some(json!(SECOND)));
    }
    prop::sample::select(urls)
}

/// A page: the right keys with any values, or something that is not a page at all.
fn page(allow_second: bool) -> impl Strategy<Value = String> {
    let done = prop::sample::select(vec![json!(true), json!(false), Value::Null, json!("yes")]);
    let total = prop::sample::select(vec![json!(3), json!(-1), json!("3"), Value::Null]);
    let records = prop_oneof![
        5 => prop::collection::vec(row(), 0..6).prop_map(Value::Array),
        1 => value(),
    ];
    let structured =
        (done, total, next_url(allow_second), records).prop_map(|(done, total, next, records)| {
            let mut page = json!({"totalSize": total, "done": done, "records": records});
            if let Some(next) = next {
                page["nextRecordsUrl"] = next;
            }
            page.to_string()
        });
    prop_oneof![
        6 => structured,
        1 => "\\PC{0,60}",
        1 => Just(r#"{"totalSize": 1, "done": true, "records": [{"Id": "001"#.to_string()),
        1 => Just(r#"[{"message":"bad","errorCode":"MALFORMED_QUERY"}]"#.to_string()),
    ]
}

struct Served {
    status: usize,
    first: String,
    second: String,
}

/// Reads `stream` against pages: the first query gets `first`, `SECOND` gets `second`, `THIRD`
/// the empty last page. Returns the records' Ids (or `None` for a record without one) and
/// whether the read ended in an error.
async fn read(
    stream: &StreamSpec,
    fields: Vec<String>,
    deleted: bool,
    served: Served,
    config: RestConfig,
) -> (Vec<Option<String>>, bool) {
    let mut server = mockito::Server::new_async().await;
    let session = common::session_with(&mut server, |c| c.retry.max_retries = 1).await;
    let json = "application/json;charset=UTF-8";
    server
        .mock("GET", Matcher::Regex(FIRST.into()))
        .match_query(Matcher::Any)
        .with_status(served.status)
        .with_header("content-type", json)
        .with_body(&served.first)
        .create_async()
        .await;
    server
        .mock("GET", SECOND)
        .with_header("content-type", json)
        .with_body(&served.second)
        .create_async()
        .await;
    server
        .mock("GET", THIRD)
        .with_header("content-type", json)
        .with_body(LAST_PAGE)
        .create_async()
        .await;
    let reader = RestReader::new(session, config).unwrap();
    let request = ReadRequest {
        fields,
        include_deleted: deleted,
        ..ReadRequest::default()
    };
    let Ok(mut records) = reader.read(stream, request) else {
        return (Vec::new(), true);
    };
    let width = records.columns().len();
    let id_at = records.columns().iter().position(|c| c == "Id");
    let mut ids = Vec::new();
    let mut failed = false;
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(item) = records.next().await {
            match item {
                Ok(record) => {
                    assert_eq!(record.values.len(), width, "a record of another width");
                    assert!(
                        record
                            .values
                            .iter()
                            .all(|v| !v.is_object() || v.get("attributes").is_none()),
                        "attributes left in {:?}",
                        record.values
                    );
                    ids.push(
                        id_at
                            .and_then(|i| record.values[i].as_str())
                            .map(str::to_string),
                    );
                    assert!(ids.len() < 10_000, "the read does not end");
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    let _ = (e.kind(), e.error_code(), e.resume_after());
                    failed = true;
                    break;
                }
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the read hangs on these pages");
    (ids, failed)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any first and second page: records of the planned width without `attributes`, or one
    /// typed error.
    #[test]
    fn any_page_reads_or_fails_cleanly(
        status in prop::sample::select(vec![200usize, 200, 200, 200, 400, 404, 500]),
        first in page(true),
        second in page(false),
        columns in 0usize..3,
        deleted in any::<bool>(),
    ) {
        let fields: Vec<String> = match columns {
            0 => vec!["Id".into(), "Name".into(), "BillingAddress".into()],
            1 => vec!["Name".into(), "SystemModstamp".into(), "AnnualRevenue".into()],
            _ => Vec::new(),
        };
        let _ = runtime().block_on(read(&account(), fields, deleted, Served { status, first, second }, RestConfig::default()));
    }

    /// The same pages for a read split into chunks and merged on `Id`.
    #[test]
    fn any_page_reads_or_fails_cleanly_when_split(
        first in page(true),
        second in page(false),
    ) {
        let config = RestConfig { max_request_bytes: 2_048, header_allowance_bytes: 1_000, ..RestConfig::default() };
        let _ = runtime().block_on(read(&wide_account(), Vec::new(), false, Served { status: 200, first, second }, config));
    }

    /// Well-formed pages with rows in `Id` order come out whole, in order, split or not.
    #[test]
    fn well_formed_rows_come_out_whole(
        count in 0usize..12,
        split in any::<bool>(),
    ) {
        let rows: Vec<Value> = (0..count)
            .map(|n| json!({"attributes": {"type": "Account"}, "Id": format!("001R0000000{n:04}AAA"),
                            "Name": format!("n{n}"), "SystemModstamp": "2024-01-02T03:04:05.000+0000",
                            "BillingAddress": {"city": "Oslo", "attributes": {}}}))
            .collect();
        let first = json!({"totalSize": count, "done": true, "records": rows}).to_string();
        let (stream, config) = if split {
            (wide_account(), RestConfig { max_request_bytes: 2_048, header_allowance_bytes: 1_000, ..RestConfig::default() })
        } else {
            (account(), RestConfig::default())
        };
        let (ids, failed) = runtime().block_on(read(&stream, Vec::new(), false, Served { status: 200, first, second: LAST_PAGE.into() }, config));
        prop_assert!(!failed);
        let want: Vec<Option<String>> = (0..count).map(|n| Some(format!("001R0000000{n:04}AAA"))).collect();
        prop_assert_eq!(ids, want);
    }
}

/// A listener on another loopback address that records every request head it receives.
fn other_host() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = heads.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut head = String::new();
            let mut reader = BufReader::new(conn);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            seen.lock().unwrap().push(head);
            // Dropping the connection answers nothing: the client sees a network error.
        }
    });
    (addr.to_string(), heads)
}

/// A `nextRecordsUrl` is a path on the instance: written so that joining it to the instance URL
/// would name another host (`//host/...`, `/\host/...`), it must not send the bearer token there.
#[tokio::test]
async fn a_next_records_url_never_takes_the_token_to_another_host() {
    let (elsewhere, heads) = other_host();
    for next in [
        format!("//{elsewhere}/services/data/v62.0/query/01g-2000"),
        format!("/\\{elsewhere}/services/data/v62.0/query/01g-2000"),
        format!("http://{elsewhere}/services/data/v62.0/query/01g-2000"),
    ] {
        let first = json!({"totalSize": 2, "done": false, "nextRecordsUrl": next,
                           "records": [{"Id": "001R00000000001AAA", "Name": "a"}]})
        .to_string();
        let _ = read(
            &account(),
            vec!["Id".into(), "Name".into()],
            false,
            Served {
                status: 200,
                first,
                second: LAST_PAGE.into(),
            },
            RestConfig::default(),
        )
        .await;
    }
    let heads = heads.lock().unwrap();
    let leaked: Vec<&String> = heads
        .iter()
        .filter(|h| h.to_ascii_lowercase().contains("authorization"))
        .collect();
    assert!(
        leaked.is_empty(),
        "the bearer token went to {elsewhere}, which is not the instance:\n{leaked:#?}"
    );
}
