#![allow(clippy::unwrap_used)]
//! Reads against recorded Salesforce answers: paging, record shapes, queryAll, counts, errors.

mod common;

use chrono::{TimeZone, Utc};
use futures_util::StreamExt;
use serde_json::json;
use sf_rest::{
    CursorValue, ErrorKind, Order, ReadRequest, RestConfig, RestReader, ResumeKey, Window,
};

use common::{account, drain, mount, names, reader_for, server};

fn january() -> Option<Window> {
    Window::for_stream(
        &account(),
        Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
        Some(Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap()),
    )
}

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn three_pages_are_followed_each_asked_for_while_the_one_before_is_read() {
    let (mut server, session) = server().await;
    let pages = mount(&mut server, "paging_three_pages").await;
    let reader = RestReader::new(
        session,
        RestConfig {
            batch_size: Some(200),
            ..RestConfig::default()
        },
    )
    .unwrap();
    let request = ReadRequest {
        fields: fields(&["Id", "Name", "AnnualRevenue", "NumberOfEmployees"]),
        window: january(),
        ..ReadRequest::default()
    };
    let plan = reader.plan(&account(), &request).unwrap();
    assert_eq!(plan.order, Order::CursorThenId("SystemModstamp".into()));
    assert!(!plan.is_split());
    let mut stream = reader.read(&account(), request).unwrap();
    assert_eq!(
        stream.columns().to_vec(),
        fields(&[
            "Id",
            "Name",
            "AnnualRevenue",
            "NumberOfEmployees",
            "SystemModstamp"
        ])
    );

    // Nothing is sent before the first poll.
    assert!(!pages[0].matched_async().await);
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.id(), Some("001RO0000035WQgYAM"));
    assert!(pages[0].matched_async().await);
    // The second page is asked for as soon as the first came, ahead of need, so its round trip
    // overlaps the first page's records; the third is not asked for yet.
    assert_eq!(stream.stats().requests, 2);
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!(second.id(), Some("001RO0000035WQhYAM"));
    assert_eq!(stream.stats().requests, 2);
    assert!(!pages[2].matched_async().await);
    // Taking the second page asks for the third.
    let third = stream.next().await.unwrap().unwrap();
    assert_eq!(third.id(), Some("001RO0000035WQiYAM"));
    assert!(pages[1].matched_async().await);
    assert_eq!(stream.stats().requests, 3);

    let (rest, error, stream) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    let ids: Vec<_> = rest.iter().map(|r| r.id().unwrap().to_string()).collect();
    assert_eq!(ids, ["001RO0000035WQjYAM", "001RO0000035WQkYAM"]);
    for mock in &pages {
        mock.assert_async().await;
    }
    let stats = stream.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.pages, 3);
    assert_eq!(stats.records, 5);
    assert_eq!(stats.total_size, Some(5));

    // Values: Java-style doubles stay numbers, nulls are explicit, datetimes normalised.
    assert_eq!(
        common::json(&first),
        json!({
            "Id": "001RO0000035WQgYAM", "Name": "Acme, Inc.", "AnnualRevenue": 35000000.0,
            "NumberOfEmployees": 120, "SystemModstamp": "2024-01-03T10:00:00.000Z"
        })
    );
    assert_eq!(second.get("NumberOfEmployees"), Some(&json!(null)));
    assert_eq!(second.get("AnnualRevenue"), Some(&json!(1234567.0)));
    assert_eq!(rest[0].get("AnnualRevenue"), Some(&json!(12345678.0)));
    assert_eq!(rest[0].get("Name"), Some(&json!("Umbrella \"Health\"")));
    assert!(
        first.columns.as_ptr() == rest[1].columns.as_ptr(),
        "columns are shared"
    );
}

#[tokio::test]
async fn the_page_size_header_goes_with_every_page() {
    let (mut server, session) = server().await;
    let first = server
        .mock("GET", "/services/data/v62.0/query")
        .match_query(mockito::Matcher::Any)
        .match_header("sforce-query-options", "batchSize=500")
        .with_header("content-type", "application/json")
        .with_body(
            r#"{"totalSize":2,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gX-1",
                "records":[{"attributes":{"type":"Account"},"Id":"001A","Name":"a"}]}"#,
        )
        .create_async()
        .await;
    let second = server
        .mock("GET", "/services/data/v62.0/query/01gX-1")
        .match_header("sforce-query-options", "batchSize=500")
        .with_header("content-type", "application/json")
        .with_body(r#"{"totalSize":2,"done":true,"records":[{"Id":"001B","Name":"b"}]}"#)
        .create_async()
        .await;
    let config = RestConfig {
        batch_size: Some(500),
        ..RestConfig::default()
    };
    let reader = RestReader::new(session, config).unwrap();
    let request = ReadRequest {
        fields: fields(&["Id", "Name"]),
        ..ReadRequest::default()
    };
    let (records, error, _) = drain(reader.read(&account(), request).unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(records.len(), 2);
    first.assert_async().await;
    second.assert_async().await;
}

#[tokio::test]
async fn compound_fields_stay_objects_and_attributes_go() {
    let (_server, mocks, reader) = reader_for("compound_fields").await;
    let request = ReadRequest {
        fields: fields(&["Id", "Name", "BillingAddress", "Geo__c", "Owner.Email"]),
        ..ReadRequest::default()
    };
    let (records, error, _) = drain(reader.read(&account(), request).unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    mocks[0].assert_async().await;
    assert_eq!(records.len(), 2);
    assert_eq!(
        names(&records[0]),
        ["Id", "Name", "BillingAddress", "Geo__c", "Owner.Email"]
    );
    assert_eq!(
        common::json(&records[0]),
        json!({
            "Id": "001RO0000035WQgYAM",
            "Name": "Acme, Inc.",
            "BillingAddress": {
                "city": "San Francisco", "country": "United States", "countryCode": "US",
                "geocodeAccuracy": null, "latitude": null, "longitude": null,
                "postalCode": "94105", "state": "California", "stateCode": "CA",
                "street": "415 Mission St"
            },
            "Geo__c": {"latitude": 37.7897, "longitude": -122.3972},
            "Owner.Email": "owner@example.com"
        })
    );
    assert_eq!(
        common::json(&records[1]),
        json!({"Id": "001RO0000035WQhYAM", "Name": "Globex", "BillingAddress": null,
               "Geo__c": null, "Owner.Email": null})
    );
}

#[tokio::test]
async fn deleted_rows_come_through_query_all() {
    let (_server, mocks, reader) = reader_for("deleted_rows_queryall").await;
    let request = ReadRequest {
        fields: fields(&["Id", "Name", "IsDeleted"]),
        window: Window::for_stream(
            &account(),
            Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
            None,
        ),
        include_deleted: true,
        ..ReadRequest::default()
    };
    assert_eq!(
        reader.plan(&account(), &request).unwrap().endpoint,
        "queryAll"
    );
    let (records, error, _) = drain(reader.read(&account(), request).unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    for m in &mocks {
        m.assert_async().await;
    }
    let deleted: Vec<(&str, bool)> = records
        .iter()
        .map(|r| {
            (
                r.id().unwrap(),
                r.get("IsDeleted").unwrap().as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        deleted,
        [
            ("001RO0000035WQgYAM", false),
            ("001RO0000035WQmYAM", true),
            ("001RO0000035WQnYAM", true)
        ]
    );
    assert_eq!(
        records[2].get("SystemModstamp"),
        Some(&json!("2024-01-05T12:00:00.000Z"))
    );
}

#[tokio::test]
async fn datetimes_take_the_bulk_form_and_only_datetime_fields_change() {
    let (_server, mocks, reader) = reader_for("datetimes").await;
    let request = ReadRequest {
        fields: fields(&[
            "Id",
            "CreatedDate",
            "SystemModstamp",
            "LastActivityDate",
            "Description",
        ]),
        ..ReadRequest::default()
    };
    let (records, error, _) = drain(reader.read(&account(), request).unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    mocks[0].assert_async().await;
    assert_eq!(
        common::json(&records[0]),
        json!({
            "Id": "001RO0000035WQgYAM",
            "CreatedDate": "2020-10-22T21:03:23.000Z",
            "SystemModstamp": "2024-06-30T23:59:59.123Z",
            "LastActivityDate": "2024-02-10",
            "Description": "2024-01-02T03:04:05.000+0000"
        })
    );
    assert_eq!(
        common::json(&records[1]),
        json!({
            "Id": "001RO0000035WQhYAM",
            "CreatedDate": null,
            "SystemModstamp": "2024-07-01T00:00:00.000Z",
            "LastActivityDate": null,
            "Description": "multi\nline, \"quoted\" — ünïcode"
        })
    );
}

#[tokio::test]
async fn count_reads_total_size() {
    let (_server, mocks, reader) = reader_for("count").await;
    let n = reader
        .count("Account", january().as_ref(), false)
        .await
        .unwrap();
    assert_eq!(n, 4321);
    mocks[0].assert_async().await;
}

#[tokio::test]
async fn soql_is_form_encoded_with_plus_as_2b() {
    let (mut server, session) = server().await;
    // The raw query string: spaces as `+`, a literal `+` as `%2B`, `>=` and `'` escaped.
    let mock = server
        .mock("GET", "/services/data/v62.0/query")
        .match_query(mockito::Matcher::Regex(
            r"^q=SELECT\+Id%2CName%2CSystemModstamp\+FROM\+Account\+WHERE\+SystemModstamp\+%3E%3D\+2024-01-01T00%3A00%3A00Z\+AND\+Id\+%3E\+%27001%2Bx%27\+ORDER\+BY\+Id\+ASC$"
                .to_string(),
        ))
        .with_header("content-type", "application/json")
        .with_body(r#"{"totalSize":0,"done":true,"records":[]}"#)
        .create_async()
        .await;
    let reader = RestReader::new(session, RestConfig::default()).unwrap();
    let request = ReadRequest {
        fields: fields(&["Id", "Name"]),
        window: Window::for_stream(
            &account(),
            Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
            None,
        ),
        order: Some(Order::Id),
        after: Some(ResumeKey::id("001+x")),
        ..ReadRequest::default()
    };
    let (records, error, _) = drain(reader.read(&account(), request).unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    assert!(records.is_empty());
    mock.assert_async().await;
}

async fn failing_read(scenario: &str) -> (Vec<sf_discovery::Record>, sf_rest::Error) {
    let (_server, _, reader) = reader_for(scenario).await;
    let request = ReadRequest {
        fields: fields(&["Id", "Name"]),
        window: january(),
        ..ReadRequest::default()
    };
    let (records, error, _) = drain(reader.read(&account(), request).unwrap()).await;
    (records, error.expect("the read fails"))
}

#[tokio::test]
async fn query_timeout_asks_for_a_smaller_window() {
    let (records, e) = failing_read("error_query_timeout").await;
    assert!(records.is_empty());
    assert_eq!(e.kind(), ErrorKind::QueryTimeout);
    assert_eq!(e.error_code(), Some("QUERY_TIMEOUT"));
    assert_eq!(
        e.to_string(),
        "query on `Account` timed out (QUERY_TIMEOUT): split the window into smaller ones"
    );
}

#[tokio::test]
async fn invalid_field_names_the_field_and_the_stream() {
    let (_, e) = failing_read("error_invalid_field").await;
    assert_eq!(e.kind(), ErrorKind::InvalidField);
    match &e {
        sf_rest::Error::InvalidField { stream, field, .. } => {
            assert_eq!(stream, "Account");
            assert_eq!(field, "CleanStatus");
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("`CleanStatus`") && text.contains("`Account`"),
        "{text}"
    );
    assert!(text.contains("refresh the schema"), "{text}");
}

#[tokio::test]
async fn invalid_query_locator_carries_the_last_key_read() {
    let (records, e) = failing_read("error_invalid_query_locator").await;
    assert_eq!(records.len(), 2);
    assert_eq!(e.kind(), ErrorKind::InvalidQueryLocator);
    let key = e.resume_after().expect("a resume key");
    assert_eq!(
        key,
        &ResumeKey::cursor(
            "SystemModstamp",
            CursorValue::parse("2024-01-04T10:00:00.000Z").unwrap(),
            "001RO0000035WQhYAM"
        )
    );
    // Resuming after it selects strictly later rows of the same window.
    let soql = sf_rest::Soql::select("Account", ["Id"])
        .maybe_window(january())
        .after(key.clone())
        .build()
        .unwrap();
    assert!(
        soql.ends_with(
            "AND (SystemModstamp > 2024-01-04T10:00:00Z OR (SystemModstamp = \
             2024-01-04T10:00:00Z AND Id > '001RO0000035WQhYAM'))"
        ),
        "{soql}"
    );
}

#[tokio::test]
async fn daily_limit_stops_the_read() {
    let (_, e) = failing_read("error_daily_limit").await;
    assert_eq!(e.kind(), ErrorKind::DailyLimitExceeded);
    assert_eq!(e.error_code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert!(e.to_string().contains("TotalRequests"), "{e}");
}

#[tokio::test]
async fn other_errors_keep_their_error_code() {
    let (_, e) = failing_read("error_invalid_type").await;
    assert_eq!(e.kind(), ErrorKind::ObjectNotQueryable);
    assert_eq!(e.error_code(), Some("INVALID_TYPE"));
    let (_, e) = failing_read("error_malformed_query").await;
    assert_eq!(e.kind(), ErrorKind::MalformedQuery);
    assert_eq!(e.error_code(), Some("MALFORMED_QUERY"));
    assert!(e.to_string().contains("can not be sorted"), "{e}");
    let (_, e) = failing_read("error_server_unavailable").await;
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert_eq!(e.error_code(), Some("SERVER_UNAVAILABLE"));
    let (_, e) = failing_read("error_unexpected_page").await;
    assert!(
        matches!(e, sf_rest::Error::QueryDecode { .. }),
        "unexpected {e:?}"
    );
}

#[tokio::test]
async fn a_repeated_next_records_url_ends_the_read_with_an_error() {
    let (_server, pages, reader) = reader_for("error_repeated_next_url").await;
    let request = ReadRequest {
        fields: fields(&["Id", "Name"]),
        window: january(),
        ..ReadRequest::default()
    };
    let mut stream = reader.read(&account(), request).unwrap();
    // Without a guard the pages -2 and -4 come round forever; stop looking after 20 items.
    let mut ids = Vec::new();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(record) => ids.push(record.id().unwrap().to_string()),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        assert!(ids.len() <= 20, "the read loops: {ids:?}");
    }
    // The first two pages once each; the page that points back is refused whole (a read
    // resumed after the last record yielded gets its rows again).
    assert_eq!(
        ids,
        [
            "001RO0000035WQgYAM",
            "001RO0000035WQhYAM",
            "001RO0000035WQiYAM",
            "001RO0000035WQjYAM"
        ]
    );
    let e = error.expect("the read fails");
    assert!(
        stream.next().await.is_none(),
        "the stream ends after an error"
    );
    assert!(matches!(e, sf_rest::Error::QueryDecode { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "query on `Account` returned an unexpected page: nextRecordsUrl \
         `/services/data/v62.0/query/01gRO0000016QzXYAU-2` names a page this query has already \
         read; the server repeats its pages, so the read stops rather than loop"
    );
    // Each page was asked for once; the repeat was refused before being requested again.
    assert!(pages[0].matched_async().await);
    assert_eq!(stream.stats().requests, 3);
    assert_eq!(stream.stats().records, 4);
}

fn content_document_link() -> sf_discovery::StreamSpec {
    use sf_discovery::{FieldSpec, FieldType};
    sf_discovery::StreamSpec::from_fields(
        "ContentDocumentLink",
        false,
        vec![
            FieldSpec::new("Id", FieldType::Id),
            FieldSpec::new("LinkedEntityId", FieldType::Reference),
            FieldSpec::new("ContentDocumentId", FieldType::Reference),
            FieldSpec::new("ShareType", FieldType::Picklist),
        ],
    )
}

#[tokio::test]
async fn an_in_filter_reads_the_rows_of_a_batch_of_parent_ids() {
    let (_server, mocks, reader) = reader_for("in_filter").await;
    let documents = fields(&["069RO000000AbcdYAC", "069RO000000AbceYAC"]);
    let request = ReadRequest {
        include_deleted: true,
        order: Some(Order::Unordered),
        where_in: Some(("ContentDocumentId".into(), documents)),
        ..ReadRequest::default()
    };
    let plan = reader.plan(&content_document_link(), &request).unwrap();
    assert_eq!(
        plan.chunks[0].soql,
        "SELECT Id,LinkedEntityId,ContentDocumentId,ShareType FROM ContentDocumentLink \
         WHERE ContentDocumentId IN ('069RO000000AbcdYAC','069RO000000AbceYAC')"
    );
    let (records, error, stream) =
        drain(reader.read(&content_document_link(), request).unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    for mock in &mocks {
        mock.assert_async().await;
    }
    assert_eq!(stream.stats().pages, 2);
    assert_eq!(records.len(), 3);
    assert_eq!(
        common::json(&records[2]),
        json!({"Id": "06ARO000000Q1aCYAS", "LinkedEntityId": "001RO0000035WQhYAM",
               "ContentDocumentId": "069RO000000AbceYAC", "ShareType": "C"})
    );
}

#[tokio::test]
async fn in_filters_are_checked_against_the_request_limit() {
    let (_server, session) = server().await;
    let reader = RestReader::new(session, RestConfig::default()).unwrap();
    let ids = |n: usize| -> Vec<String> { (0..n).map(|i| format!("069{i:015}")).collect() };
    let request = |values: Vec<String>| ReadRequest {
        where_in: Some(("ContentDocumentId".into(), values)),
        ..ReadRequest::default()
    };
    // 200 ids of 18 characters (Airbyte's batch) fit in one query with room to spare.
    let plan = reader
        .plan(&content_document_link(), &request(ids(200)))
        .unwrap();
    assert!(!plan.is_split());
    assert!(
        plan.chunks[0].request_bytes < 9_000,
        "{:?}",
        plan.chunks[0].request_bytes
    );
    assert!(plan.chunks[0]
        .soql
        .ends_with("'069000000000000199') ORDER BY Id ASC"));
    // An empty list or one that cannot fit is refused before anything is sent.
    let e = reader
        .plan(&content_document_link(), &request(Vec::new()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert_eq!(
        e.to_string(),
        "cannot build a query on `ContentDocumentLink`: the filter `ContentDocumentId IN (...)` \
         has no values"
    );
    let e = reader
        .plan(&content_document_link(), &request(ids(1_000)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(
        e.to_string()
            .contains("`ContentDocumentId IN (...)` of 1000 values needs"),
        "{e}"
    );
    // Values are quoted as literals, so an id cannot break out of the list.
    let plan = reader
        .plan(
            &content_document_link(),
            &request(fields(&["069' OR Id != '"])),
        )
        .unwrap();
    assert!(
        plan.chunks[0]
            .soql
            .contains("ContentDocumentId IN ('069\\' OR Id != \\'')"),
        "{}",
        plan.chunks[0].soql
    );
}

/// A caller's query whose page says more follow but names no next page: the stream ends with
/// one error, and none of that page's rows come after it.
#[tokio::test]
async fn a_callers_query_yields_nothing_after_its_error() {
    let (mut server, session) = server().await;
    let _page = server
        .mock("GET", "/services/data/v62.0/query")
        .match_query(mockito::Matcher::Any)
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(r#"{"totalSize":3,"done":false,"records":[{"Id":"001A"},{"Id":"001B"}]}"#)
        .create_async()
        .await;
    let reader = RestReader::new(session, RestConfig::default()).unwrap();
    let items: Vec<_> = reader
        .query_stream("Account", "SELECT Id FROM Account", false)
        .collect()
        .await;
    assert_eq!(items.len(), 1, "{items:?}");
    let error = items[0].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedBody, "{error}");
    assert!(error.to_string().contains("no nextRecordsUrl"), "{error}");
}
