#![allow(clippy::unwrap_used)]
//! Parallel result pages (`resultPages`, API 58.0+) against the emulated org: the same records
//! in the same order as page by page, the count checks kept, a resume mid-job, and the fall
//! back to locators when `resultPages` answers 404.

mod support;

use fixtures::{EmulatedOrg, Faults, OrgConfig, Scale};
use futures_util::StreamExt;
use serde_json::json;
use sf_bulk::{BulkClient, BulkConfig, BulkItem, Error, Operation, PageProgress};
use sf_discovery::{FieldSpec, FieldType};
use support::{collect, records, session_for, Mock};

const SOQL: &str = "SELECT Id, Name, Amount__c, Notes__c, SystemModstamp FROM Invoice__c";

fn fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("Id", FieldType::Id),
        FieldSpec::new("Name", FieldType::String),
        FieldSpec::new("Amount__c", FieldType::Double),
        FieldSpec::new("Notes__c", FieldType::from_wire("textarea")),
        FieldSpec::new("SystemModstamp", FieldType::DateTime),
    ]
}

/// An org with `rows` Invoice__c rows and a client reading pages of 10, `parallel` at once,
/// with a look-ahead budget of `buffer` bytes.
async fn started(rows: u64, parallel: usize, buffer: usize) -> (EmulatedOrg, BulkClient) {
    // A fixed clock: two orgs started a second apart hold the same rows.
    let start = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap();
    let config = OrgConfig::new(7, Scale::Tiny)
        .rows("Invoice__c", rows)
        .clock_start(start.into());
    let org = EmulatedOrg::start(config).await.unwrap();
    let login = org.login_info();
    let session = support::session_with(&login.login_url, |c| {
        c.credentials.client_id = login.client_id;
        c.credentials.client_secret = sf_auth::Secret::new(login.client_secret);
        c.credentials.refresh_token = Some(sf_auth::Secret::new(login.refresh_token));
    })
    .await;
    let config = BulkConfig {
        max_records: Some(10),
        parallel_pages: parallel,
        parallel_buffer_bytes: buffer,
        ..BulkConfig::default()
    };
    (org, BulkClient::new(session, config).unwrap())
}

fn pages(items: &[BulkItem]) -> Vec<PageProgress> {
    items
        .iter()
        .filter_map(|i| match i {
            BulkItem::PageDone(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// Pages without their job id (two orgs name their jobs alike, but not necessarily).
fn page_outline(items: &[BulkItem]) -> Vec<(Option<String>, Option<String>, u64, u64)> {
    pages(items)
        .into_iter()
        .map(|p| (p.locator, p.next_locator, p.rows, p.rows_total))
        .collect()
}

#[tokio::test]
async fn parallel_pages_give_the_same_records_in_the_same_order_as_page_by_page() {
    let (seq_org, sequential) = started(57, 1, 1 << 20).await;
    let (seq_items, error) = collect(sequential.query(Operation::QueryAll, SOQL, &fields())).await;
    assert!(error.is_none(), "{error:?}");
    // A budget of 1 KiB: pages ahead wait for the one being emitted most of the time.
    for (parallel, buffer) in [(4, 1024), (4, 1 << 20), (16, 1)] {
        let (org, client) = started(57, parallel, buffer).await;
        let (items, error) = collect(client.query(Operation::QueryAll, SOQL, &fields())).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(records(&items), records(&seq_items));
        assert_eq!(records(&items).len(), 57);
        assert_eq!(page_outline(&items), page_outline(&seq_items));
        let stats = org.control().stats().requests;
        assert_eq!(stats.bulk_results, 6);
        // Two resultPages answers (five pages, then one), beside the page-by-page run's none,
        // and nothing else.
        let seq_stats = seq_org.control().stats().requests;
        assert_eq!(
            (stats.bulk_result_pages, seq_stats.bulk_result_pages),
            (2, 0),
            "{parallel} {buffer}"
        );
        assert_eq!(stats.other, seq_stats.other, "{parallel} {buffer}");
        assert_eq!(stats.bulk_delete, 1);
        org.shutdown().await;
    }
    seq_org.shutdown().await;
}

/// Salesforce documents no page size for `resultPages`: when its listed pages do not line up with
/// the pages `results` serves for the client's `maxRecords` (shorter or longer), the reading goes
/// on page by page from the served page's own `Sforce-Locator`, with no row emitted twice or
/// skipped: the records and pages are those of the page-by-page read.
#[tokio::test]
async fn listed_pages_that_do_not_line_up_are_left_for_locators() {
    let (seq_org, sequential) = started(57, 1, 1 << 20).await;
    let (seq_items, error) = collect(sequential.query(Operation::QueryAll, SOQL, &fields())).await;
    assert!(error.is_none(), "{error:?}");
    for listed_rows in [7, 25] {
        let (org, client) = started(57, 4, 1 << 20).await;
        org.control().set_faults(Faults {
            result_pages_rows: Some(listed_rows),
            ..Faults::default()
        });
        let (items, error) = collect(client.query(Operation::QueryAll, SOQL, &fields())).await;
        assert!(error.is_none(), "{listed_rows}: {error:?}");
        assert_eq!(records(&items), records(&seq_items), "{listed_rows}");
        assert_eq!(
            page_outline(&items),
            page_outline(&seq_items),
            "{listed_rows}"
        );
        // One listing, then page by page.
        assert_eq!(org.control().stats().requests.bulk_result_pages, 1);
        org.shutdown().await;
    }
    seq_org.shutdown().await;
    // A job whose one served page holds every row (it says it is the last) while the listing
    // names a second page: the job ends there.
    let (seq_org, sequential) = started(8, 1, 1 << 20).await;
    let (seq_items, error) = collect(sequential.query(Operation::QueryAll, SOQL, &fields())).await;
    assert!(error.is_none(), "{error:?}");
    let (org, client) = started(8, 4, 1 << 20).await;
    org.control().set_faults(Faults {
        result_pages_rows: Some(7),
        ..Faults::default()
    });
    let (items, error) = collect(client.query(Operation::QueryAll, SOQL, &fields())).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(records(&items), records(&seq_items));
    assert_eq!(records(&items).len(), 8);
    assert_eq!(page_outline(&items), page_outline(&seq_items));
    org.shutdown().await;
    seq_org.shutdown().await;
}

#[tokio::test]
async fn counts_are_still_checked() {
    let (org, client) = started(35, 4, 1 << 20).await;
    org.control().set_faults(Faults {
        bulk_overcount_next: 1,
        ..Faults::default()
    });
    let (items, error) = collect(client.query(Operation::QueryAll, SOQL, &fields())).await;
    let error = error.unwrap();
    assert!(
        matches!(
            error,
            Error::ResultsTotalCount {
                processed: 36,
                received: 35,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(records(&items).len(), 35);
    org.control().set_faults(Faults {
        short_results_next: 1,
        ..Faults::default()
    });
    let (_, error) = collect(client.query(Operation::QueryAll, SOQL, &fields())).await;
    let error = error.unwrap();
    assert!(
        matches!(
            error,
            Error::ResultsPageCount {
                announced: 10,
                received: 9,
                ..
            }
        ),
        "{error}"
    );
    org.shutdown().await;
}

#[tokio::test]
async fn a_download_resumes_mid_job_from_the_next_page_not_emitted() {
    let (org, client) = started(57, 4, 2048).await;
    let (all, error) = collect(client.query(Operation::QueryAll, SOQL, &fields())).await;
    assert!(error.is_none(), "{error:?}");
    let mut stream = client.query(Operation::QueryAll, SOQL, &fields());
    let mut kept = Vec::new();
    let mut pending = Vec::new();
    let mut done = 0;
    let checkpoint = loop {
        match stream.next().await.unwrap().unwrap() {
            BulkItem::Record(r) => pending.push(r),
            BulkItem::PageDone(p) => {
                kept.append(&mut pending);
                done += 1;
                if done == 2 {
                    break p.resume_point().unwrap();
                }
            }
            _ => {}
        }
    };
    drop(stream);
    assert_eq!(checkpoint.rows_done, 20);
    let (rest, error) = collect(client.resume(checkpoint.clone(), &fields())).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(pages(&rest)[0].locator, checkpoint.locator);
    assert_eq!(pages(&rest).last().unwrap().rows_total, 57);
    kept.extend(records(&rest));
    assert_eq!(kept, records(&all));
    org.shutdown().await;
}

const MOCK_JOB: &str = "750R0000000zxr8IAA";

/// A mock org whose job `MOCK_JOB` is complete with 3 rows (and may be deleted); returns the
/// job's path.
async fn job_of_three(server: &mut mockito::Server) -> String {
    let job = format!("/services/data/v62.0/jobs/query/{MOCK_JOB}");
    server
        .mock("GET", job.as_str())
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(
            json!({"id": MOCK_JOB, "state": "JobComplete", "operation": "query",
                   "object": "Invoice__c", "numberRecordsProcessed": 3})
            .to_string(),
        )
        .create_async()
        .await;
    server
        .mock("DELETE", job.as_str())
        .with_status(204)
        .create_async()
        .await;
    job
}

/// Reads `MOCK_JOB` from its start (pages of 2 rows); fails on an error.
async fn read_job(server: &mockito::Server) -> Vec<BulkItem> {
    let config = BulkConfig {
        max_records: Some(2),
        ..BulkConfig::default()
    };
    let client = BulkClient::new(session_for(&server.url()).await, config).unwrap();
    let (items, error) = collect(client.resume(
        sf_bulk::ResumePoint::start(MOCK_JOB),
        &[FieldSpec::new("Id", FieldType::Id)],
    ))
    .await;
    assert!(error.is_none(), "{error:?}");
    let ids: Vec<_> = records(&items)
        .iter()
        .map(|r| r.to_json()["Id"].clone())
        .collect();
    assert_eq!(ids, [json!("a0B1"), json!("a0B2"), json!("a0B3")]);
    items
}

/// `resultPages` answers `status` with `body`: the job is read page by page with locators.
async fn falls_back_to_locators(status: usize, body: &str) {
    let mut server = Mock::start(&[]).await.server;
    let job = job_of_three(&mut server).await;
    let listing = server
        .mock("GET", format!("{job}/resultPages").as_str())
        .match_query(mockito::Matcher::Any)
        .with_status(status)
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(body)
        .expect(1)
        .create_async()
        .await;
    let results = format!("{job}/results");
    let first = server
        .mock("GET", results.as_str())
        .match_query(mockito::Matcher::UrlEncoded(
            "maxRecords".into(),
            "2".into(),
        ))
        .with_header("content-type", "text/csv")
        .with_header("sforce-numberofrecords", "2")
        .with_header("sforce-locator", "Mg")
        .with_body("\"Id\"\n\"a0B1\"\n\"a0B2\"\n")
        .create_async()
        .await;
    let second = server
        .mock("GET", results.as_str())
        .match_query(mockito::Matcher::UrlEncoded("locator".into(), "Mg".into()))
        .with_header("content-type", "text/csv")
        .with_header("sforce-numberofrecords", "1")
        .with_header("sforce-locator", "null")
        .with_body("\"Id\"\n\"a0B3\"\n")
        .create_async()
        .await;
    read_job(&server).await;
    listing.assert_async().await;
    first.assert_async().await;
    second.assert_async().await;
}

#[tokio::test]
async fn a_404_from_result_pages_falls_back_to_locators() {
    falls_back_to_locators(
        404,
        r#"[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]"#,
    )
    .await;
}

/// A `resultPages` answer listing no page (here its pages under another key) is read page by
/// page: the job's three rows, not none.
#[tokio::test]
async fn a_listing_of_no_page_falls_back_to_locators() {
    falls_back_to_locators(200, r#"{"done":true,"pages":[]}"#).await;
}

/// Pages listed by `resultPages` that come without `Sforce-Locator` (a proxy may drop it) are
/// not taken for the last: every listed page is read, and each checkpoint names the next one.
#[tokio::test]
async fn listed_pages_without_a_locator_header_are_all_read() {
    let mut server = Mock::start(&[]).await.server;
    let job = job_of_three(&mut server).await;
    let results = format!("{job}/results");
    server
        .mock("GET", format!("{job}/resultPages").as_str())
        .match_query(mockito::Matcher::Any)
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(
            json!({"resultPages": [
                {"resultUrl": format!("{results}?maxRecords=2")},
                {"resultUrl": format!("{results}?locator=Mg&maxRecords=2")},
            ], "done": true})
            .to_string(),
        )
        .create_async()
        .await;
    for (query, body, count) in [
        (
            mockito::Matcher::Regex("^maxRecords=2$".into()),
            "\"Id\"\n\"a0B1\"\n\"a0B2\"\n",
            "2",
        ),
        (
            mockito::Matcher::UrlEncoded("locator".into(), "Mg".into()),
            "\"Id\"\n\"a0B3\"\n",
            "1",
        ),
    ] {
        server
            .mock("GET", results.as_str())
            .match_query(query)
            .with_header("content-type", "text/csv")
            .with_header("sforce-numberofrecords", count)
            .with_body(body)
            .expect(1)
            .create_async()
            .await;
    }
    let items = read_job(&server).await;
    assert_eq!(
        page_outline(&items),
        [
            (None, Some("Mg".to_string()), 2, 2),
            (Some("Mg".to_string()), None, 1, 3)
        ]
    );
}

/// A `resultPages` listing that fails is named as the listing in the error, not as a results
/// page: the reader is sent to the request that failed.
#[tokio::test]
async fn a_failed_listing_is_named_as_the_listing() {
    let cases = [
        (
            400,
            r#"[{"errorCode":"API_ERROR","message":"listing broke"}]"#,
            "listing broke",
        ),
        (
            200,
            r#"{"done":true,"resultPages":[{"resultUrl":"/services/data/v62.0/sobjects/Account"}]}"#,
            "is not a results page of this job",
        ),
    ];
    for (status, body, said) in cases {
        let mut server = Mock::start(&[]).await.server;
        let job = job_of_three(&mut server).await;
        server
            .mock("GET", format!("{job}/resultPages").as_str())
            .match_query(mockito::Matcher::Any)
            .with_status(status)
            .with_header("content-type", "application/json;charset=UTF-8")
            .with_body(body)
            .create_async()
            .await;
        let client =
            BulkClient::new(session_for(&server.url()).await, BulkConfig::default()).unwrap();
        let (items, error) = collect(client.resume(
            sf_bulk::ResumePoint::start(MOCK_JOB),
            &[FieldSpec::new("Id", FieldType::Id)],
        ))
        .await;
        assert!(records(&items).is_empty());
        let error = error.unwrap();
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "listing the result pages of bulk job {MOCK_JOB} (resultPages) failed: "
            )) && text.contains(said),
            "{text}"
        );
        assert!(!text.contains("results page 1"), "{text}");
        assert_eq!(error.job_id(), Some(MOCK_JOB));
    }
}
