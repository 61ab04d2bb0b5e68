#![allow(clippy::unwrap_used)]
//! A wide object whose field list overflows one request: the read is split into chunks that each
//! carry `Id`, merged on `Id` as pages arrive, and records that change or vanish between the chunk
//! queries are re-fetched or reported. Served by a small in-test fake of `/query` that enforces
//! Salesforce's 16,384-byte limit on request line plus headers (431 above it).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use sf_discovery::{FieldSpec, FieldType, StreamSpec};
use sf_rest::{Order, ReadRequest, RestConfig, RestReader, Window};

use common::{drain, server};

const LIMIT: usize = 16_384;
const WIDE_FIELDS: usize = 800;
const ROWS: usize = 25;
const PAGE: usize = 7;

fn wide_field(i: usize) -> String {
    format!("Custom_Field_Number_{i:03}__c")
}

fn wide() -> StreamSpec {
    let mut fields = vec![
        FieldSpec::new("Id", FieldType::Id),
        FieldSpec::new("Name", FieldType::String),
        FieldSpec::new("SystemModstamp", FieldType::DateTime),
    ];
    for i in 0..WIDE_FIELDS {
        let ty = match i % 3 {
            0 => FieldType::String,
            1 => FieldType::Double,
            _ => FieldType::DateTime,
        };
        fields.push(FieldSpec::new(wide_field(i), ty));
    }
    StreamSpec {
        name: "Wide__c".into(),
        fields,
        primary_key: Some("Id".into()),
        cursor_field: Some("SystemModstamp".into()),
        supports_incremental: true,
        has_is_deleted: false,
        custom: true,
    }
}

fn id(n: usize) -> String {
    format!("a01RO00000{n:05}AAA")
}

fn stamp(n: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::hours(n as i64)
}

fn rest_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A row's values by field, as REST renders them.
type Row = BTreeMap<String, Value>;

/// One row.
fn row(n: usize, version: u32, modstamp: DateTime<Utc>) -> Row {
    let mut values = BTreeMap::new();
    values.insert("Id".to_string(), json!(id(n)));
    values.insert("Name".to_string(), json!(format!("row {n} v{version}")));
    values.insert("SystemModstamp".to_string(), json!(rest_datetime(modstamp)));
    for i in 0..WIDE_FIELDS {
        let v = match i % 3 {
            0 => json!(format!("r{n}f{i}v{version}")),
            1 => json!((n * 1000 + i) as f64 + f64::from(version) / 10.0),
            _ => json!(rest_datetime(modstamp - Duration::minutes(i as i64))),
        };
        values.insert(wide_field(i), v);
    }
    values
}

/// What the fake org does to its rows right after it answers its first query.
#[derive(Clone, Copy)]
enum Mutation {
    None,
    /// Row 10 is updated (stamped after the window), row 15 is hard-deleted.
    UpdateAndDelete,
}

struct FakeOrg {
    rows: BTreeMap<String, (DateTime<Utc>, BTreeMap<String, Value>)>,
    /// Open cursors: the fields and a snapshot of the rows, taken when the query ran.
    cursors: Vec<(Vec<String>, Vec<Row>)>,
    mutation: Mutation,
    queries: usize,
    largest_request: usize,
    /// Cursors answer INVALID_QUERY_LOCATOR from this offset on (once per cursor), when set.
    expire_at_offset: Option<usize>,
    expired: Vec<usize>,
}

impl FakeOrg {
    fn new(mutation: Mutation) -> FakeOrg {
        let rows = (0..ROWS)
            .map(|n| (id(n), (stamp(n), row(n, 1, stamp(n)))))
            .collect();
        FakeOrg {
            rows,
            cursors: Vec::new(),
            mutation,
            queries: 0,
            largest_request: 0,
            expire_at_offset: None,
            expired: Vec::new(),
        }
    }

    fn answer(&mut self, req: &mockito::Request) -> (usize, Value) {
        let size = request_bytes(req);
        self.largest_request = self.largest_request.max(size);
        if size > LIMIT {
            return (
                431,
                json!([{"errorCode": "REQUEST_HEADER_FIELDS_TOO_LARGE", "message": "too long"}]),
            );
        }
        let path = req.path();
        let (fields, ids, offset) = if let Some(rest) =
            path.strip_prefix("/services/data/v62.0/query/")
        {
            let (cursor, offset) = rest.split_once('-').unwrap();
            let cursor: usize = cursor.trim_start_matches("01gFAKE").parse().unwrap();
            let offset = offset.parse::<usize>().unwrap();
            if self.expire_at_offset.is_some_and(|at| offset >= at)
                && !self.expired.contains(&cursor)
            {
                self.expired.push(cursor);
                let body = json!([{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}]);
                return (400, body);
            }
            let (fields, ids) = self.cursors[cursor].clone();
            (fields, ids, offset)
        } else {
            let soql = query_param(req.path_and_query());
            let (fields, ids) = self.run(&soql);
            self.queries += 1;
            (fields, ids, 0)
        };
        let page: Vec<Value> = ids
            .iter()
            .skip(offset)
            .take(PAGE)
            .map(|values| {
                let mut rec = Map::new();
                rec.insert("attributes".into(), json!({"type": "Wide__c"}));
                for f in &fields {
                    rec.insert(f.clone(), values.get(f).cloned().unwrap_or(Value::Null));
                }
                Value::Object(rec)
            })
            .collect();
        let mut body = json!({"totalSize": ids.len(), "done": true, "records": page});
        if offset + PAGE < ids.len() {
            let cursor = match path.strip_prefix("/services/data/v62.0/query/") {
                Some(rest) => rest.split_once('-').unwrap().0.to_string(),
                None => {
                    self.cursors.push((fields, ids.clone()));
                    format!("01gFAKE{}", self.cursors.len() - 1)
                }
            };
            body["done"] = json!(false);
            body["nextRecordsUrl"] = json!(format!(
                "/services/data/v62.0/query/{cursor}-{}",
                offset + PAGE
            ));
        }
        if self.queries == 1 {
            if let Mutation::UpdateAndDelete = self.mutation {
                let later = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
                self.rows.insert(id(10), (later, row(10, 2, later)));
                self.rows.remove(&id(15));
                self.mutation = Mutation::None;
            }
        }
        (200, body)
    }

    /// Runs the SOQL shapes the reader sends: a window with `ORDER BY Id`, or `Id IN (...)`.
    fn run(&self, soql: &str) -> (Vec<String>, Vec<Row>) {
        let select = soql.strip_prefix("SELECT ").unwrap();
        let (fields, rest) = select.split_once(" FROM Wide__c").unwrap();
        let fields: Vec<String> = fields.split(',').map(str::to_string).collect();
        let ids = if let Some(list) = rest.strip_prefix(" WHERE Id IN (") {
            let list = list.strip_suffix(')').unwrap();
            list.split(',')
                .filter_map(|s| self.rows.get(s.trim_matches('\'')))
                .map(|(_, values)| values.clone())
                .collect()
        } else {
            let rest = rest.strip_prefix(" WHERE SystemModstamp >= ").unwrap();
            let (start, rest) = rest.split_once(" AND SystemModstamp < ").unwrap();
            let (end, rest) = rest.split_once(' ').unwrap();
            let (after, order) = match rest.strip_prefix("AND Id > '") {
                Some(rest) => {
                    let (after, order) = rest.split_once("' ").unwrap();
                    (Some(after.to_string()), order)
                }
                None => (None, rest),
            };
            assert_eq!(order, "ORDER BY Id ASC", "chunks are read in Id order");
            let start = DateTime::parse_from_rfc3339(start).unwrap();
            let end = DateTime::parse_from_rfc3339(end).unwrap();
            self.rows
                .iter()
                .filter(|(_, (t, _))| *t >= start && *t < end)
                .filter(|(id, _)| after.as_ref().is_none_or(|after| *id > after))
                .map(|(_, (_, values))| values.clone())
                .collect()
        };
        (fields, ids)
    }
}

/// Bytes of the request line and headers as sent.
fn request_bytes(req: &mockito::Request) -> usize {
    let line = "GET ".len() + req.path_and_query().len() + " HTTP/1.1\r\n".len();
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + 2 + v.as_bytes().len() + 2)
        .sum();
    line + headers + 2
}

fn query_param(path_and_query: &str) -> String {
    let query = path_and_query.split_once('?').unwrap().1;
    let value = query.strip_prefix("q=").unwrap();
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

async fn serve(server: &mut mockito::ServerGuard, org: Arc<Mutex<FakeOrg>>) -> mockito::Mock {
    let for_status = org.clone();
    let last = Arc::new(Mutex::new(Value::Null));
    let last_body = last.clone();
    server
        .mock(
            "GET",
            mockito::Matcher::Regex(r"^/services/data/v62\.0/query".to_string()),
        )
        .match_query(mockito::Matcher::Any)
        .with_header("content-type", "application/json")
        .with_status_code_from_request(move |req| {
            let (status, body) = for_status.lock().unwrap().answer(req);
            *last.lock().unwrap() = body;
            status
        })
        .with_body_from_request(move |_| last_body.lock().unwrap().to_string().into_bytes())
        .expect_at_least(1)
        .create_async()
        .await
}

fn january() -> Option<Window> {
    Window::for_stream(
        &wide(),
        Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
        Some(Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap()),
    )
}

#[tokio::test]
async fn the_wide_object_is_split_merged_and_complete() {
    let (mut server, session) = server().await;
    let org = Arc::new(Mutex::new(FakeOrg::new(Mutation::None)));
    let mock = serve(&mut server, org.clone()).await;
    let reader = RestReader::new(session, RestConfig::default()).unwrap();
    let request = ReadRequest {
        window: january(),
        ..ReadRequest::default()
    };
    let plan = reader.plan(&wide(), &request).unwrap();
    assert!(plan.chunks.len() >= 2, "{} chunks", plan.chunks.len());
    assert_eq!(plan.order, Order::Id);
    for chunk in &plan.chunks {
        assert_eq!(chunk.fields[0], "Id");
        assert!(chunk.request_bytes <= LIMIT);
    }
    let covered: usize = plan.chunks.iter().map(|c| c.fields.len() - 1).sum();
    assert_eq!(
        covered + 1,
        plan.columns.len(),
        "each field in exactly one chunk"
    );

    let mut stream = reader.read(&wide(), request).unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.id(), Some(id(0).as_str()));
    // One first page per chunk, and each chunk's second page asked for ahead of need.
    assert_eq!(
        stream.stats().requests,
        2 * plan.chunks.len() as u64,
        "one first page per chunk, and its next"
    );
    let (rest, error, stream) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    mock.assert_async().await;
    let mut records = vec![first];
    records.extend(rest);
    let spec = wide();
    let datetimes: std::collections::HashSet<&str> = spec
        .fields
        .iter()
        .filter(|f| f.field_type == FieldType::DateTime)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(records.len(), ROWS);
    for (n, record) in records.iter().enumerate() {
        assert_eq!(record.columns.len(), 3 + WIDE_FIELDS);
        assert_eq!(record.id(), Some(id(n).as_str()));
        let want = row(n, 1, stamp(n));
        for (column, value) in record.columns.iter().zip(&record.values) {
            let raw = &want[column];
            let datetime = datetimes.contains(column.as_str());
            let expected = if datetime {
                json!(sf_discovery::normalize_datetime(raw.as_str().unwrap()).unwrap())
            } else {
                raw.clone()
            };
            assert_eq!(value, &expected, "{column} of row {n}");
        }
    }
    let stats = stream.stats();
    assert_eq!(stats.chunks, plan.chunks.len());
    assert_eq!((stats.refetched, stats.vanished), (0, 0));
    // ceil(25 / 7) = 4 pages per chunk.
    assert_eq!(stats.pages, 4 * plan.chunks.len() as u64);
    let largest = org.lock().unwrap().largest_request;
    assert!(largest <= LIMIT, "largest request {largest} bytes");
    assert!(largest > LIMIT / 2, "chunks are packed ({largest} bytes)");
}

#[tokio::test]
async fn a_record_changed_between_chunk_queries_is_refetched_and_a_deleted_one_reported() {
    let (mut server, session) = server().await;
    let org = Arc::new(Mutex::new(FakeOrg::new(Mutation::UpdateAndDelete)));
    let mock = serve(&mut server, org.clone()).await;
    let reader = RestReader::new(session, RestConfig::default()).unwrap();
    let request = ReadRequest {
        window: january(),
        ..ReadRequest::default()
    };
    let (records, error, stream) = drain(reader.read(&wide(), request).unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    mock.assert_async().await;
    let ids: Vec<&str> = records.iter().map(|r| r.id().unwrap()).collect();
    let want: Vec<String> = (0..ROWS).filter(|&n| n != 15).map(id).collect();
    assert_eq!(
        ids, want,
        "every record but the deleted one, once each, in Id order"
    );
    let changed = &records[10];
    assert!(
        changed.values.iter().all(|v| !v.is_null()),
        "the changed record is complete"
    );
    // Each chunk's part is one version of the row or the other, never a blend within a chunk
    // The chunk queried before the change has the old row (its cursor is a snapshot); the other
    // did not select the row any more (it left the window), so its part was re-fetched: new.
    let old = row(10, 1, stamp(10));
    let later = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let new = row(10, 2, later);
    let plan = reader
        .plan(
            &wide(),
            &ReadRequest {
                window: january(),
                ..ReadRequest::default()
            },
        )
        .unwrap();
    let mut versions = Vec::new();
    for chunk in &plan.chunks {
        let matches = |version: &BTreeMap<String, Value>| {
            chunk.fields.iter().all(|f| {
                let got = changed.get(f).unwrap();
                let raw = &version[f];
                got == raw
                    || raw
                        .as_str()
                        .and_then(sf_discovery::normalize_datetime)
                        .is_some_and(|n| got == &json!(n))
            })
        };
        match (matches(&old), matches(&new)) {
            (true, false) => versions.push(1),
            (false, true) => versions.push(2),
            other => panic!("chunk of row 10 matches {other:?}"),
        }
    }
    assert_eq!(versions.len(), plan.chunks.len());
    assert!(
        versions.contains(&1) && versions.contains(&2),
        "{versions:?}"
    );
    let stats = stream.stats();
    assert_eq!(stats.refetched, 1);
    assert_eq!(stats.vanished, 1);
    assert_eq!(stats.vanished_ids, vec![id(15)]);
    assert!(org.lock().unwrap().largest_request <= LIMIT);
}

#[tokio::test]
async fn a_tiny_request_limit_makes_more_chunks_and_still_fits() {
    let (mut server, session) = server().await;
    let org = Arc::new(Mutex::new(FakeOrg::new(Mutation::UpdateAndDelete)));
    serve(&mut server, org.clone()).await;
    let config = RestConfig {
        max_request_bytes: 4_096,
        header_allowance_bytes: 1_024,
        refetch_batch: 3,
        ..RestConfig::default()
    };
    let reader = RestReader::new(session, config).unwrap();
    let request = ReadRequest {
        window: january(),
        ..ReadRequest::default()
    };
    let plan = reader.plan(&wide(), &request).unwrap();
    assert!(plan.chunks.len() >= 8, "{} chunks", plan.chunks.len());
    let (records, error, stream) = drain(reader.read(&wide(), request).unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(records.len(), ROWS - 1);
    assert!(records
        .iter()
        .all(|r| r.values.iter().all(|v| !v.is_null())));
    assert_eq!(stream.stats().refetched, 1);
    assert!(org.lock().unwrap().largest_request <= 4_096);
}

#[tokio::test]
async fn a_split_read_resumes_after_the_last_id_it_yielded() {
    let (mut server, session) = server().await;
    let mut fake = FakeOrg::new(Mutation::None);
    fake.expire_at_offset = Some(2 * PAGE);
    let org = Arc::new(Mutex::new(fake));
    serve(&mut server, org.clone()).await;
    let reader = RestReader::new(session, RestConfig::default()).unwrap();
    let request = ReadRequest {
        window: january(),
        ..ReadRequest::default()
    };
    let (mut records, error, _) = drain(reader.read(&wide(), request.clone()).unwrap()).await;
    let error = error.expect("the third page's locator expired");
    assert_eq!(error.kind(), sf_rest::ErrorKind::InvalidQueryLocator);
    assert_eq!(
        records.len(),
        2 * PAGE,
        "two pages of every chunk were merged and yielded"
    );
    let key = error.resume_after().unwrap().clone();
    assert_eq!(
        key,
        sf_rest::ResumeKey::id(id(2 * PAGE - 1)),
        "an Id key: chunks are Id-ordered"
    );

    let resumed = ReadRequest {
        after: Some(key),
        ..request
    };
    let (rest, error, _) = drain(reader.read(&wide(), resumed).unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    records.extend(rest);
    let ids: Vec<String> = records
        .iter()
        .map(|r| r.id().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        (0..ROWS).map(id).collect::<Vec<_>>(),
        "every row once, in order"
    );
    assert!(records
        .iter()
        .all(|r| r.values.iter().all(|v| !v.is_null())));
}

/// What one more 18-character id adds to a re-fetch's request: `'…'` and a comma, form-encoded.
const ENCODED_ID: usize = 3 + 18 + 3 + 3;

#[tokio::test]
async fn a_field_too_long_to_leave_room_for_twenty_ids_still_plans_with_room_for_one() {
    let (_server, session) = server().await;
    let config = RestConfig {
        max_request_bytes: 2_048,
        header_allowance_bytes: 1_000,
        ..RestConfig::default()
    };
    let reader = RestReader::new(session, config).unwrap();
    let with_long_field = |len: usize| {
        let mut spec = wide();
        spec.fields.truncate(3);
        spec.fields.push(FieldSpec::new(
            format!("{}__c", "L".repeat(len)),
            FieldType::String,
        ));
        spec.fields
            .push(FieldSpec::new("Other__c", FieldType::String));
        spec
    };
    let request = ReadRequest::default();
    // The longest field name that still plans.
    let longest = (10..2_000)
        .rev()
        .find(|&len| reader.plan(&with_long_field(len), &request).is_ok())
        .unwrap();
    let plan = reader.plan(&with_long_field(longest), &request).unwrap();
    let chunk = plan
        .chunks
        .iter()
        .find(|c| c.fields.iter().any(|f| f.starts_with("LLL")))
        .unwrap();
    // It took the fallback: its chunk has no room for 20 ids, but the read is planned.
    assert!(
        chunk.request_bytes + 20 * ENCODED_ID > 2_048,
        "{}",
        chunk.request_bytes
    );
    assert!(chunk.request_bytes <= 2_048);
    // One character more does not fit even with one id, and the error names the field.
    let err = reader
        .plan(&with_long_field(longest + 1), &request)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("LLLL") && err.contains("even alone with Id"),
        "{err}"
    );
}
