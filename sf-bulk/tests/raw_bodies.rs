#![allow(clippy::unwrap_used)]
//! Results bodies the recorded (text) scenarios cannot hold: gzip, other charsets, chunked
//! transfer, a body that breaks off, and broken paging headers.

mod support;

use std::io::Write;

use mockito::Matcher;
use serde_json::json;
use sf_bulk::{BulkClient, Error, ErrorKind, ResumePoint};
use sf_discovery::{FieldSpec, FieldType};
use support::{collect, config, outline, records_json, session_for, Mock};

const JOB: &str = "750R0000000zxr8IAA";
const JOB_PATH: &str = "/services/data/v62.0/jobs/query/750R0000000zxr8IAA";
const RESULTS_PATH: &str = "/services/data/v62.0/jobs/query/750R0000000zxr8IAA/results";

fn fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("Id", FieldType::Id),
        FieldSpec::new("Name", FieldType::String),
        FieldSpec::new("Amount__c", FieldType::Double),
    ]
}

/// A server that logs in and reports the job complete with `records` rows.
async fn server(records: u64) -> mockito::ServerGuard {
    let mut server = Mock::start(&[]).await.server;
    server
        .mock("GET", JOB_PATH)
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(
            json!({"id": JOB, "state": "JobComplete", "operation": "query", "object": "Invoice__c",
                   "numberRecordsProcessed": records})
            .to_string(),
        )
        .create_async()
        .await;
    server
        .mock("DELETE", JOB_PATH)
        .with_status(204)
        .create_async()
        .await;
    server
}

async fn client(server: &mockito::ServerGuard) -> BulkClient {
    BulkClient::new(session_for(&server.url()).await, config()).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn gzip_results_are_asked_for_and_decoded_across_chunks() {
    let mut server = server(2).await;
    let body = "\"Id\",\"Name\",\"Amount__c\"\n\"a0B1\",\"Zoë, \"\"the\"\" first\",\"9.9213206E7\"\n\"a0B2\",\"multi\nline\",\n";
    let compressed = gzip(body.as_bytes());
    let results = server
        .mock("GET", RESULTS_PATH)
        .match_query(Matcher::UrlEncoded("maxRecords".into(), "2".into()))
        .match_header("accept-encoding", Matcher::Regex("gzip".into()))
        .with_header("content-type", "text/csv; charset=UTF-8")
        .with_header("content-encoding", "gzip")
        .with_header("sforce-numberofrecords", "2")
        .with_header("sforce-locator", "null")
        .with_chunked_body(move |w| {
            for piece in compressed.chunks(7) {
                w.write_all(piece)?;
                w.flush()?;
            }
            Ok(())
        })
        .create_async()
        .await;
    let client = client(&server).await;
    let (items, error) = collect(client.resume(ResumePoint::start(JOB), &fields())).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        records_json(&items),
        [
            json!({"Id": "a0B1", "Name": "Zoë, \"the\" first", "Amount__c": 99213206.0}),
            json!({"Id": "a0B2", "Name": "multi\nline", "Amount__c": null}),
        ]
    );
    results.assert_async().await;
}

#[tokio::test]
async fn latin1_pages_with_nul_bytes_decode() {
    let mut server = server(1).await;
    let body: &[u8] = b"\"Id\",\"Name\",\"Amount__c\"\n\"a0B1\",\"Andr\xe9\0 M\xfcller\",\"1.0\"\n";
    server
        .mock("GET", RESULTS_PATH)
        .match_query(Matcher::Any)
        .with_header("content-type", "text/csv; charset=ISO-8859-1")
        .with_header("sforce-numberofrecords", "1")
        .with_header("sforce-locator", "null")
        .with_body(body)
        .create_async()
        .await;
    let client = client(&server).await;
    let (items, error) = collect(client.resume(ResumePoint::start(JOB), &fields())).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        records_json(&items),
        [json!({"Id": "a0B1", "Name": "André Müller", "Amount__c": 1.0})]
    );
}

#[tokio::test]
async fn a_body_that_breaks_off_is_a_read_error() {
    let mut server = server(2).await;
    server
        .mock("GET", RESULTS_PATH)
        .match_query(Matcher::Any)
        .with_header("content-type", "text/csv; charset=UTF-8")
        .with_header("sforce-numberofrecords", "2")
        .with_header("sforce-locator", "null")
        .with_chunked_body(|w| {
            w.write_all(b"\"Id\",\"Name\",\"Amount__c\"\n\"a0B1\",\"x\",\"1.0\"\n\"a0B2\",\"cut")?;
            w.flush()?;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "cut",
            ))
        })
        .create_async()
        .await;
    let client = client(&server).await;
    let (items, error) = collect(client.resume(ResumePoint::start(JOB), &fields())).await;
    let error = error.unwrap();
    assert!(
        matches!(error, Error::ResultsRead { locator: None, .. }),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    // Never a checkpoint for the broken page.
    assert!(
        outline(&items).iter().all(|o| !o.starts_with("page:")),
        "{:?}",
        outline(&items)
    );
}

#[tokio::test]
async fn a_locator_that_does_not_advance_is_refused() {
    let mut server = server(4).await;
    let page = "\"Id\",\"Name\",\"Amount__c\"\n\"a0B1\",\"x\",\"1.0\"\n\"a0B2\",\"y\",\"2.0\"\n";
    for locator in [None, Some("MjAwMA")] {
        let query = match locator {
            None => Matcher::Any,
            Some(l) => Matcher::UrlEncoded("locator".into(), l.into()),
        };
        server
            .mock("GET", RESULTS_PATH)
            .match_query(query)
            .with_header("sforce-numberofrecords", "2")
            .with_header("sforce-locator", "MjAwMA")
            .with_body(page)
            .create_async()
            .await;
    }
    let client = client(&server).await;
    let (items, error) = collect(client.resume(ResumePoint::start(JOB), &fields())).await;
    assert_eq!(
        outline(&items),
        [
            "completed:4",
            "record:a0B1",
            "record:a0B2",
            "page:2/2->MjAwMA"
        ]
    );
    let error = error.unwrap();
    assert!(matches!(error, Error::ResultsProtocol { .. }), "{error}");
    assert_eq!(error.kind(), ErrorKind::ResultsInvalid);
}

/// Results pages: each `(locator asked, locator answered)` of `chain` answers `page`, counted
/// `count` rows (`None`: the first page, asked without a locator).
async fn serve_chain(
    server: &mut mockito::ServerGuard,
    chain: &[(Option<&str>, &str)],
    count: &str,
    page: &str,
) {
    for (asked, next) in chain {
        let query = match asked {
            None => Matcher::Regex("^(maxRecords=[0-9]+)?$".into()),
            Some(l) => Matcher::UrlEncoded("locator".into(), (*l).into()),
        };
        server
            .mock("GET", RESULTS_PATH)
            .match_query(query)
            .with_header("sforce-numberofrecords", count)
            .with_header("sforce-locator", next)
            .with_body(page)
            .create_async()
            .await;
    }
}

/// Locators that come back to a page already read (page A names B, B names A again) are
/// refused at once: the chain would emit the same records without end.
#[tokio::test]
async fn a_locator_chain_that_comes_back_is_refused() {
    let mut server = server(100).await;
    let page = "\"Id\",\"Name\",\"Amount__c\"\n\"a0B1\",\"x\",\"1.0\"\n";
    serve_chain(
        &mut server,
        &[(None, "QQ"), (Some("QQ"), "Qg"), (Some("Qg"), "QQ")],
        "1",
        page,
    )
    .await;
    let client = client(&server).await;
    let (items, error) = collect(client.resume(ResumePoint::start(JOB), &fields())).await;
    assert_eq!(
        outline(&items),
        [
            "completed:100",
            "record:a0B1",
            "page:1/1->QQ",
            "record:a0B1",
            "page:1/2->Qg",
        ]
    );
    let error = error.unwrap();
    assert!(
        error
            .to_string()
            .contains("names a page this run already read"),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::ResultsInvalid);
}

/// Pages served twice are refused as soon as the rows read pass the job's total.
#[tokio::test]
async fn more_rows_than_the_job_holds_are_refused_at_once() {
    let mut server = server(2).await;
    let page = "\"Id\",\"Name\",\"Amount__c\"\n\"a0B1\",\"x\",\"1.0\"\n\"a0B2\",\"y\",\"2.0\"\n";
    serve_chain(&mut server, &[(None, "QQ"), (Some("QQ"), "Qg")], "2", page).await;
    let client = client(&server).await;
    let (items, error) = collect(client.resume(ResumePoint::start(JOB), &fields())).await;
    // The page served again is refused as soon as it is decoded: none of its rows goes out.
    assert_eq!(
        outline(&items),
        ["completed:2", "record:a0B1", "record:a0B2", "page:2/2->QQ"]
    );
    let error = error.unwrap();
    assert!(
        matches!(
            error,
            Error::ResultsTotalCount {
                processed: 2,
                received: 4,
                ..
            }
        ),
        "{error}"
    );
}

/// A page holding more rows than the whole job: the rows up to the job's total go out, the
/// rest never does, whether the last row ends with a line feed or only with the body.
#[tokio::test]
async fn rows_past_the_job_total_are_never_yielded() {
    for ending in ["\n", ""] {
        let mut server = server(2).await;
        let page = format!(
            "\"Id\",\"Name\",\"Amount__c\"\n\"a0B1\",\"x\",\"1.0\"\n\"a0B2\",\"y\",\"2.0\"\n\"a0B3\",\"z\",\"3.0\"{ending}"
        );
        serve_chain(&mut server, &[(None, "null")], "3", &page).await;
        let client = client(&server).await;
        let (items, error) = collect(client.resume(ResumePoint::start(JOB), &fields())).await;
        assert_eq!(
            outline(&items),
            ["completed:2", "record:a0B1", "record:a0B2"],
            "ending {ending:?}"
        );
        let error = error.unwrap();
        assert!(
            matches!(
                error,
                Error::ResultsTotalCount {
                    processed: 2,
                    received: 3,
                    ..
                }
            ),
            "{error}"
        );
    }
}

/// A job in a state this crate does not know ends the wait, and the job is aborted and deleted
/// rather than left running for no one.
#[tokio::test]
async fn a_job_in_an_unknown_state_is_aborted_and_deleted() {
    let mut server = Mock::start(&[]).await.server;
    let info = |state: &str| {
        json!({"id": JOB, "state": state, "operation": "query", "object": "Invoice__c"}).to_string()
    };
    server
        .mock("GET", JOB_PATH)
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(info("Paused"))
        .create_async()
        .await;
    let abort = server
        .mock("PATCH", JOB_PATH)
        .match_body(Matcher::PartialJson(json!({"state": "Aborted"})))
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(info("Aborted"))
        .expect(1)
        .create_async()
        .await;
    let delete = server
        .mock("DELETE", JOB_PATH)
        .with_status(204)
        .expect(1)
        .create_async()
        .await;
    let client = client(&server).await;
    let (items, error) = collect(client.resume(ResumePoint::start(JOB), &fields())).await;
    assert!(outline(&items).is_empty(), "{:?}", outline(&items));
    let error = error.unwrap();
    assert_eq!(
        error.to_string(),
        format!("bulk job {JOB} is in an unknown state `Paused`")
    );
    abort.assert_async().await;
    delete.assert_async().await;
}

#[tokio::test]
async fn an_unreadable_record_count_is_refused() {
    let mut server = server(1).await;
    server
        .mock("GET", RESULTS_PATH)
        .match_query(Matcher::Any)
        .with_header("sforce-numberofrecords", "one")
        .with_header("sforce-locator", "null")
        .with_body("\"Id\",\"Name\",\"Amount__c\"\n\"a0B1\",\"x\",\"1.0\"\n")
        .create_async()
        .await;
    let client = client(&server).await;
    let (_, error) = collect(client.resume(ResumePoint::start(JOB), &fields())).await;
    let error = error.unwrap();
    assert!(
        error
            .to_string()
            .contains("Sforce-NumberOfRecords `one` is not a row count"),
        "{error}"
    );
}
