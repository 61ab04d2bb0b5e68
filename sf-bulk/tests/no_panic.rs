#![allow(clippy::unwrap_used)]
//! No input may panic the Bulk path: the CSV page decoder on arbitrary bytes in arbitrary chunks,
//! and a whole query against a server answering arbitrary job states, counts, locators and
//! bodies. The proptest twins of the `fuzz/` targets `bulk_csv`.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use mockito::Matcher;
use proptest::prelude::*;
use serde_json::{json, Value};
use sf_auth::{RetryConfig, Session};
use sf_bulk::{
    BulkClient, BulkConfig, BulkItem, DecodeError, Operation, PageDecoder, PollSchedule,
};
use sf_discovery::{FieldSpec, FieldType};

const TYPES: [&str; 12] = [
    "id", "string", "boolean", "currency", "double", "int", "long", "datetime", "date", "time",
    "textarea", "percent",
];

fn fields(types: &[usize]) -> Vec<FieldSpec> {
    types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            FieldSpec::new(
                format!("F{i}"),
                FieldType::from_wire(TYPES[t % TYPES.len()]),
            )
        })
        .collect()
}

fn content_type(pick: u8) -> Option<&'static str> {
    [
        None,
        Some("text/csv; charset=UTF-8"),
        Some("text/csv; charset=ISO-8859-1"),
        Some("text/csv;charset=\"windows-1252\""),
    ][usize::from(pick % 4)]
}

/// Bytes built from the pieces CSV parsers trip over: quotes, separators, every line ending,
/// NULs, byte order marks, broken UTF-8, numbers and datetimes good and bad, random bytes.
fn csvish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"\"".to_vec()),
        Just(b"\"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\x80\xC3".to_vec()),
        Just("é🚀".as_bytes().to_vec()),
        Just(b"9.0E7".to_vec()),
        Just(b"-0.5".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        Just(b"1e400".to_vec()),
        Just(b"true".to_vec()),
        Just(b"2024-01-02T03:04:05.000Z".to_vec()),
        Just(b"2024-02-30T24:60:60.000+0000".to_vec()),
        Just(b"9999-12-31T23:59:59.999-1400".to_vec()),
        "[0-9]{1,25}".prop_map(String::into_bytes),
        "[A-Za-z ]{1,8}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 1..6),
    ];
    prop::collection::vec(token, 0..48).prop_map(|tokens| tokens.concat())
}

/// Decodes `body` pushed in pieces of `chunk` bytes: the values of every record, or the error.
fn decode(
    fields: &[FieldSpec],
    content_type: Option<&str>,
    body: &[u8],
    chunk: usize,
) -> Result<Vec<Vec<Value>>, DecodeError> {
    let mut decoder = PageDecoder::new(fields, content_type)?;
    let mut records = Vec::new();
    for piece in body.chunks(chunk.max(1)) {
        decoder.push(piece, &mut records)?;
    }
    let rows = decoder.finish(&mut records)?;
    assert_eq!(
        rows as usize,
        records.len(),
        "the row count is the records made"
    );
    for record in &records {
        assert_eq!(record.values.len(), fields.len());
        assert_eq!(record.columns.len(), fields.len());
    }
    Ok(records.into_iter().map(|r| r.values).collect())
}

fn header(fields: &[FieldSpec]) -> Vec<u8> {
    let names: Vec<String> = fields.iter().map(|f| format!("\"{}\"", f.name)).collect();
    format!("{}\n", names.join(",")).into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any body, with or without the right header, decodes or fails with a `DecodeError`; and
    /// how the body is cut into chunks never changes the outcome.
    #[test]
    fn any_page_decodes_or_fails_cleanly_whatever_the_chunking(
        types in prop::collection::vec(0usize..TYPES.len(), 1..5),
        charset in any::<u8>(),
        with_header in any::<bool>(),
        body in csvish(),
        chunk in 1usize..40,
    ) {
        let fields = fields(&types);
        let mut page = if with_header { header(&fields) } else { Vec::new() };
        page.extend_from_slice(&body);
        let whole = decode(&fields, content_type(charset), &page, page.len());
        let pieces = decode(&fields, content_type(charset), &page, chunk);
        prop_assert_eq!(whole, pieces);
    }

    /// Plain random bytes too (no header, any charset).
    #[test]
    fn random_bytes_never_panic(
        types in prop::collection::vec(0usize..TYPES.len(), 1..4),
        charset in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..300),
        chunk in 1usize..17,
    ) {
        let fields = fields(&types);
        let _ = decode(&fields, content_type(charset), &body, chunk);
    }
}

/// Only the first byte order mark of a page is dropped, however the body is cut: a second one
/// is data (here it lands in the header's first name, which then names no requested column).
/// The CSV reader underneath strips a mark of its own only when its first input holds all three
/// bytes, which once made the outcome depend on the chunking.
#[test]
fn a_doubled_byte_order_mark_decodes_the_same_in_every_chunking() {
    let fields = fields(&[1]);
    let body = b"\xEF\xBB\xBF\xEF\xBB\xBF\"";
    for chunk in 1..=body.len() {
        let err = decode(&fields, None, body, chunk).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Header { .. }),
            "chunk {chunk}: {err}"
        );
    }
    // With a header after the doubled mark, every chunking refuses the header the same way;
    // after a single mark it is read.
    let mut page = b"\xEF\xBB\xBF\xEF\xBB\xBF".to_vec();
    page.extend_from_slice(&header(&fields));
    page.extend_from_slice(b"\"x\"\n");
    let whole = decode(&fields, None, &page, page.len());
    assert!(
        matches!(whole, Err(DecodeError::Header { .. })),
        "{whole:?}"
    );
    for chunk in 1..page.len() {
        assert_eq!(decode(&fields, None, &page, chunk), whole, "chunk {chunk}");
    }
    let single = [&b"\xEF\xBB\xBF"[..], &header(&fields), b"\"x\"\n"].concat();
    for chunk in 1..=single.len() {
        assert_eq!(
            decode(&fields, None, &single, chunk).unwrap(),
            vec![vec![json!("x")]],
            "chunk {chunk}"
        );
    }
}

/// One job as the server reports it: fields that are right, wrong or missing.
fn job_body() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        Just("750R0000000zxr8IAA".to_string()),
        "[A-Za-z0-9/?#%. ]{0,12}",
    ];
    let state = prop_oneof![
        Just(json!("JobComplete")),
        Just(json!("InProgress")),
        Just(json!("UploadComplete")),
        Just(json!("Failed")),
        Just(json!("Aborted")),
        Just(json!("Open")),
        Just(json!("")),
        Just(json!(7)),
        Just(Value::Null),
    ];
    let processed = prop_oneof![
        (0i64..5).prop_map(Value::from),
        Just(json!(-1)),
        Just(json!(1.5)),
        Just(json!("2")),
        Just(json!(u64::MAX)),
        Just(Value::Null),
    ];
    let structured = (id, state, processed, any::<bool>()).prop_map(|(id, state, n, msg)| {
        let mut job = json!({"id": id, "operation": "query", "object": "Account",
                             "state": state, "numberRecordsProcessed": n});
        if msg {
            job["errorMessage"] = json!("InvalidBatch : something went wrong");
        }
        job.to_string()
    });
    prop_oneof![
        4 => structured,
        1 => "\\PC{0,40}",
        1 => Just("[{\"errorCode\":\"API_ERROR\",\"message\":\"nope\"}]".to_string()),
    ]
}

fn count_header() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..4).prop_map(|n| n.to_string()),
        Just("-1".to_string()),
        Just("x".to_string()),
        Just("99999999999999999999".to_string()),
        Just(String::new()),
    ]
}

fn locator_header() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("null".to_string()),
        1 => Just(String::new()),
        1 => Just("MjAwMA".to_string()),
        1 => Just("a/b?c=d&e".to_string()),
    ]
}

async fn session(url: &str) -> Session {
    let mut config = support::session_config(url);
    config.retry = RetryConfig {
        max_retries: 1,
        ..RetryConfig::immediate()
    };
    Session::login(config).await.unwrap()
}

/// What a hostile server answered, and what the client made of it.
struct Answers {
    create_status: usize,
    create: String,
    poll: String,
    count: String,
    locator: String,
    body: Vec<u8>,
}

/// Runs the query; returns the records read and the error it ended with, if any.
async fn run_query(answers: Answers) -> (u64, Option<sf_bulk::Error>) {
    let mut server = support::Mock::start(&[]).await.server;
    let jobs = "/services/data/v62.0/jobs/query";
    server
        .mock("POST", jobs)
        .with_status(answers.create_status)
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(&answers.create)
        .create_async()
        .await;
    server
        .mock(
            "GET",
            Matcher::Regex(r"^/services/data/v62\.0/jobs/query/[^/]*/results".into()),
        )
        .match_query(Matcher::Any)
        .with_header("content-type", "text/csv; charset=UTF-8")
        .with_header("sforce-numberofrecords", &answers.count)
        .with_header("sforce-locator", &answers.locator)
        .with_body(&answers.body)
        .create_async()
        .await;
    server
        .mock(
            "GET",
            Matcher::Regex(r"^/services/data/v62\.0/jobs/query/[^/]+$".into()),
        )
        .with_header("content-type", "application/json;charset=UTF-8")
        .with_body(&answers.poll)
        .create_async()
        .await;
    for method in ["PATCH", "DELETE"] {
        server
            .mock(
                method,
                Matcher::Regex(r"^/services/data/v62\.0/jobs/query/".into()),
            )
            .with_status(204)
            .create_async()
            .await;
    }
    let config = BulkConfig {
        poll: PollSchedule::every(Duration::from_millis(1)),
        job_timeout: Duration::from_millis(300),
        failed_job_retries: 1,
        // Recorded page-by-page traces: no resultPages.
        parallel_pages: 1,
        ..BulkConfig::default()
    };
    let client = BulkClient::new(session(&server.url()).await, config).unwrap();
    let fields = [
        FieldSpec::new("Id", FieldType::Id),
        FieldSpec::new("Amount__c", FieldType::Double),
    ];
    let mut stream = client.query(
        Operation::QueryAll,
        "SELECT Id, Amount__c FROM Account",
        &fields,
    );
    let (mut records, mut paged, mut error) = (0u64, 0u64, None);
    let mut items = 0;
    while let Some(item) = stream.next().await {
        items += 1;
        assert!(items < 10_000, "the stream does not end");
        match item {
            Ok(BulkItem::Record(record)) => {
                assert_eq!(record.values.len(), 2);
                records += 1;
            }
            Ok(BulkItem::PageDone(progress)) => paged += progress.rows,
            Ok(_) => {}
            Err(e) => {
                // Errors are typed and printable; the stream ends after one.
                assert!(!e.to_string().is_empty());
                let _ = e.kind();
                error = Some(e);
                break;
            }
        }
    }
    if error.is_none() {
        assert_eq!(records, paged, "every record belongs to a checked page");
    }
    (records, error)
}

/// The harness itself reads a well-formed job, so the property above is not vacuous.
#[tokio::test]
async fn the_harness_reads_a_well_formed_job() {
    let job = |state: &str| {
        json!({"id": "750R0000000zxr8IAA", "operation": "query", "object": "Account",
               "state": state, "numberRecordsProcessed": 2})
        .to_string()
    };
    let (records, error) = run_query(Answers {
        create_status: 200,
        create: job("UploadComplete"),
        poll: job("JobComplete"),
        count: "2".into(),
        locator: "null".into(),
        body: b"\"Id\",\"Amount__c\"\n\"001A\",\"9.0E7\"\n\"001B\",\n".to_vec(),
    })
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(records, 2);
    // A page with fewer rows than its header says is refused, not passed on as complete.
    let (_, error) = run_query(Answers {
        create_status: 200,
        create: job("UploadComplete"),
        poll: job("JobComplete"),
        count: "3".into(),
        locator: "null".into(),
        body: b"\"Id\",\"Amount__c\"\n\"001A\",\"1\"\n\"001B\",\n".to_vec(),
    })
    .await;
    assert!(error.is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A whole query against a server whose every answer may be wrong ends, without a panic,
    /// either complete (each record in a page whose count was checked) or with one error.
    #[test]
    fn a_hostile_server_never_panics_the_client(
        create_status in prop::sample::select(vec![200usize, 200, 200, 400, 404, 500]),
        create in job_body(),
        poll in job_body(),
        count in count_header(),
        locator in locator_header(),
        body in csvish(),
        with_header in any::<bool>(),
    ) {
        let mut page = if with_header { b"\"Id\",\"Amount__c\"\n".to_vec() } else { Vec::new() };
        page.extend_from_slice(&body);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _ = runtime.block_on(run_query(Answers {
            create_status,
            create,
            poll,
            count,
            locator,
            body: page,
        }));
    }
}
