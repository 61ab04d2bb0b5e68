#![allow(clippy::unwrap_used)]
//! Reads against the emulated org (`fixtures::EmulatedOrg`), compared with its ground truth:
//! random windows and page sizes, the 800-field `Wide__c` split into chunks under the emulator's
//! 16,384-byte limit (it answers 414/431 above it), rows changed between two chunk queries,
//! resuming after an expired query locator.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fixtures::{EmulatedOrg, Faults, Mutation, OrgConfig, Scale};
use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::Value;
use sf_auth::{Credentials, LoginUrl, RetryConfig, Secret, Session, SessionConfig};
use sf_discovery::{describe_streams, DiscoveryOptions, FieldType, Record, StreamSpec};
use sf_rest::{ErrorKind, Order, ReadRequest, RestConfig, RestReader, Window};

const ACCOUNTS: u64 = 1_200;
const WIDES: u64 = 250;

fn org_config() -> OrgConfig {
    OrgConfig::new(11, Scale::Tiny)
        .clock_start(Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap())
        .rows("Account", ACCOUNTS)
        .rows("Wide__c", WIDES)
}

async fn login(org: &EmulatedOrg) -> Session {
    login_with(org, RetryConfig::immediate()).await
}

async fn login_with(org: &EmulatedOrg, retry: RetryConfig) -> Session {
    let info = org.login_info();
    let mut config = SessionConfig::new(
        LoginUrl::parse(&info.login_url).unwrap(),
        Credentials {
            client_id: info.client_id,
            client_secret: Secret::new(info.client_secret),
            refresh_token: Some(Secret::new(info.refresh_token)),
        },
    );
    config.retry = retry;
    Session::login(config).await.unwrap()
}

async fn stream_spec(session: &Session, name: &str) -> StreamSpec {
    let catalog = describe_streams(session, &[name.to_string()], &DiscoveryOptions::default())
        .await
        .unwrap();
    catalog.stream(name).unwrap().clone()
}

fn instant(value: &Value) -> Option<DateTime<Utc>> {
    let text = sf_discovery::normalize_datetime(value.as_str()?)?;
    DateTime::parse_from_rfc3339(&text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Truth rows by Id.
fn truth(org: &EmulatedOrg, object: &str) -> BTreeMap<String, Value> {
    org.control()
        .truth(object)
        .into_iter()
        .map(|row| (row["Id"].as_str().unwrap().to_string(), row))
        .collect()
}

/// The stream's datetime fields.
fn datetimes(spec: &StreamSpec) -> HashSet<String> {
    spec.fields
        .iter()
        .filter(|f| f.field_type == FieldType::DateTime)
        .map(|f| f.name.clone())
        .collect()
}

/// Asserts every column of `record` equals the truth row, datetimes in the normalised form.
fn assert_matches_truth(
    record: &Record,
    row: &Value,
    datetimes: &HashSet<String>,
) -> Result<(), TestCaseError> {
    for (column, value) in record.columns.iter().zip(&record.values) {
        let raw = row.get(column).unwrap_or(&Value::Null);
        let datetime = datetimes.contains(column);
        let expected = match raw.as_str() {
            Some(text) if datetime => {
                Value::String(sf_discovery::normalize_datetime(text).unwrap())
            }
            _ => raw.clone(),
        };
        prop_assert_eq!(value, &expected, "{} of {:?}", column, record.id());
    }
    Ok(())
}

async fn read_all(
    reader: &RestReader,
    spec: &StreamSpec,
    request: ReadRequest,
) -> (Vec<Record>, Option<sf_rest::Error>, sf_rest::ReadStats) {
    let mut stream = reader.read(spec, request).unwrap();
    let mut records = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(r) => records.push(r),
            Err(e) => return (records, Some(e), stream.stats()),
        }
    }
    (records, None, stream.stats())
}

#[test]
fn every_row_of_a_random_window_comes_exactly_once() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (org, session, spec) = rt.block_on(async {
        let org = EmulatedOrg::start(org_config()).await.unwrap();
        // Some rows deleted (only queryAll sees them), some updated to the org's now.
        org.control()
            .mutate(Mutation::new("Account").update(40).delete(30).insert(10));
        let session = login(&org).await;
        let spec = stream_spec(&session, "Account").await;
        (org, session, spec)
    });
    let rows = truth(&org, "Account");
    assert!(rows.len() as u64 >= ACCOUNTS);
    let stamps: Vec<DateTime<Utc>> = rows
        .values()
        .filter_map(|r| instant(&r["SystemModstamp"]))
        .collect();
    let lo = *stamps.iter().min().unwrap();
    let hi = *stamps.iter().max().unwrap();
    let span = (hi - lo).num_seconds() + 2;
    let dts = datetimes(&spec);

    let mut runner = TestRunner::new(ProptestConfig::with_cases(16));
    let strategy = (
        200u32..=2000,
        0i64..span,
        0i64..span,
        any::<bool>(),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(batch, a, b, deleted, open_end)| {
            let start = lo - chrono::Duration::seconds(1) + chrono::Duration::seconds(a.min(b));
            let end = (!open_end)
                .then(|| lo - chrono::Duration::seconds(1) + chrono::Duration::seconds(a.max(b)));
            let config = RestConfig {
                batch_size: Some(batch),
                ..RestConfig::default()
            };
            let reader = RestReader::new(session.clone(), config).unwrap();
            let request = ReadRequest {
                window: Window::for_stream(&spec, Some(start), end),
                include_deleted: deleted,
                ..ReadRequest::default()
            };
            let (records, error, stats) = rt.block_on(read_all(&reader, &spec, request));
            prop_assert!(error.is_none(), "{:?}", error);
            let want: HashSet<&str> = rows
                .iter()
                .filter(|(_, row)| {
                    let t = instant(&row["SystemModstamp"]).unwrap();
                    t >= start
                        && end.is_none_or(|end| t < end)
                        && (deleted || row["IsDeleted"] != Value::Bool(true))
                })
                .map(|(id, _)| id.as_str())
                .collect();
            let got: Vec<&str> = records.iter().map(|r| r.id().unwrap()).collect();
            let unique: HashSet<&str> = got.iter().copied().collect();
            prop_assert_eq!(unique.len(), got.len(), "no record twice");
            prop_assert_eq!(&unique, &want);
            // Pages follow the asked size (the emulator honours batchSize).
            let pages = (want.len() as u64).div_ceil(u64::from(batch)).max(1);
            prop_assert_eq!(stats.pages, pages);
            prop_assert_eq!(stats.total_size, Some(want.len() as u64));
            // Ordered by cursor, then Id.
            let keys: Vec<(DateTime<Utc>, &str)> = records
                .iter()
                .map(|r| {
                    (
                        instant(r.get("SystemModstamp").unwrap()).unwrap(),
                        r.id().unwrap(),
                    )
                })
                .collect();
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "cursor order");
            for record in &records {
                assert_matches_truth(record, &rows[record.id().unwrap()], &dts)?;
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(org.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_matches_the_truth() {
    let org = EmulatedOrg::start(org_config()).await.unwrap();
    org.control().mutate(Mutation::new("Account").delete(25));
    let session = login(&org).await;
    let reader = RestReader::new(session, RestConfig::default()).unwrap();
    let rows = truth(&org, "Account");
    let live = rows
        .values()
        .filter(|r| r["IsDeleted"] != Value::Bool(true))
        .count() as u64;
    assert_eq!(reader.count("Account", None, false).await.unwrap(), live);
    assert_eq!(
        reader.count("Account", None, true).await.unwrap(),
        rows.len() as u64
    );
    let err = reader
        .count("NoSuchThing__c", None, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ObjectNotQueryable, "{err}");
    org.shutdown().await;
}

/// Pages past `prefetch_max_page_bytes` get no next page asked ahead (memory: two large pages
/// and the rows of one are never held at once): every record comes exactly once all the same,
/// split into chunks or not, and no page is asked for twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_pages_are_read_one_at_a_time_and_nothing_is_lost() {
    let org = EmulatedOrg::start(org_config()).await.unwrap();
    let session = login(&org).await;
    for object in ["Account", "Wide__c"] {
        let spec = stream_spec(&session, object).await;
        let config = RestConfig {
            batch_size: Some(200),
            prefetch_max_page_bytes: 1,
            ..RestConfig::default()
        };
        let reader = RestReader::new(session.clone(), config).unwrap();
        let request = ReadRequest {
            include_deleted: true,
            ..ReadRequest::default()
        };
        let plan = reader.plan(&spec, &request).unwrap();
        let before = org.control().stats().requests;
        let (records, error, stats) = read_all(&reader, &spec, request).await;
        assert!(error.is_none(), "{object}: {error:?}");
        let rows = truth(&org, object);
        let dts = datetimes(&spec);
        assert_eq!(records.len(), rows.len(), "{object}");
        let ids: HashSet<&str> = records.iter().map(|r| r.id().unwrap()).collect();
        assert_eq!(ids.len(), rows.len(), "{object}: each once");
        for record in &records {
            assert_matches_truth(record, &rows[record.id().unwrap()], &dts).unwrap();
        }
        let pages = (rows.len() as u64).div_ceil(200);
        let after = org.control().stats().requests;
        assert_eq!(
            (after.query - before.query) + (after.query_more - before.query_more),
            plan.chunks.len() as u64 * pages,
            "{object}: one request a page"
        );
        assert_eq!(stats.requests, plan.chunks.len() as u64 * pages, "{object}");
    }
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_800_field_object_is_split_and_every_record_is_complete() {
    let org = EmulatedOrg::start(org_config()).await.unwrap();
    let session = login(&org).await;
    let spec = stream_spec(&session, "Wide__c").await;
    assert_eq!(spec.fields.len(), 800);
    let config = RestConfig {
        batch_size: Some(200),
        ..RestConfig::default()
    };
    let reader = RestReader::new(session, config).unwrap();
    let request = ReadRequest {
        include_deleted: true,
        ..ReadRequest::default()
    };
    let plan = reader.plan(&spec, &request).unwrap();
    assert!(plan.is_split(), "800 fields overflow one request");
    assert_eq!(plan.order, Order::Id);
    let before = org.control().stats().requests;

    let (records, error, stats) = read_all(&reader, &spec, request).await;
    assert!(error.is_none(), "{error:?}");
    let rows = truth(&org, "Wide__c");
    let dts = datetimes(&spec);
    assert_eq!(records.len(), rows.len());
    let ids: Vec<&str> = records.iter().map(|r| r.id().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "Id order, each once");
    for record in &records {
        assert_eq!(record.columns.len(), 800);
        assert_matches_truth(record, &rows[record.id().unwrap()], &dts).unwrap();
    }
    // One query per chunk plus its further pages; nothing re-fetched, nothing refused.
    let pages_per_chunk = WIDES.div_ceil(200);
    let after = org.control().stats().requests;
    assert_eq!(after.query - before.query, plan.chunks.len() as u64);
    assert_eq!(
        after.query_more - before.query_more,
        plan.chunks.len() as u64 * (pages_per_chunk - 1)
    );
    assert_eq!(stats.requests, plan.chunks.len() as u64 * pages_per_chunk);
    assert_eq!((stats.refetched, stats.vanished), (0, 0));
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_read_survives_writes_while_it_runs() {
    let org = EmulatedOrg::start(org_config()).await.unwrap();
    let session = login(&org).await;
    let spec = stream_spec(&session, "Wide__c").await;
    let reader = RestReader::new(
        session,
        RestConfig {
            batch_size: Some(200),
            ..RestConfig::default()
        },
    )
    .unwrap();
    let window = Window::for_stream(&spec, None, Some(org.control().now()));
    let before = truth(&org, "Wide__c");
    let mut stream = reader
        .read(
            &spec,
            ReadRequest {
                window,
                ..ReadRequest::default()
            },
        )
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    org.control().advance_clock(60);
    let done = org
        .control()
        .mutate(Mutation::new("Wide__c").update(30).delete(10).insert(5));
    assert_eq!(done.updated.len(), 30);
    let mut records = vec![first];
    while let Some(item) = stream.next().await {
        records.push(item.unwrap());
    }
    // The chunk queries ran before the writes: the window's rows as they were, each once, whole.
    let ids: HashSet<&str> = records.iter().map(|r| r.id().unwrap()).collect();
    assert_eq!(ids.len(), records.len());
    let live_before: HashSet<&str> = before
        .iter()
        .filter(|(_, r)| r["IsDeleted"] != Value::Bool(true))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(ids, live_before);
    let dts = datetimes(&spec);
    for record in &records {
        assert!(record.values.iter().any(|v| !v.is_null()));
        assert_matches_truth(record, &before[record.id().unwrap()], &dts).unwrap();
    }
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_changed_between_chunk_queries_is_still_delivered() {
    // The reader sends every chunk's first query at once, before yielding anything, and the org
    // snapshots a query's rows when it runs: a consumer cannot slip a write between two chunk
    // queries. A transient failure can: the last of the chunk queries to arrive is answered 503
    // and the session retries it after 600 ms; meanwhile the rows change. Nothing here depends on
    // timing: the writer acts once the other chunk queries have taken their snapshots, and every
    // request fails (and is retried) until its write is done.
    let org = EmulatedOrg::start(org_config()).await.unwrap();
    let retry = RetryConfig {
        initial_backoff: Duration::from_millis(600),
        max_backoff: Duration::from_millis(600),
        jitter: false,
        ..RetryConfig::default()
    };
    let session = login_with(&org, retry).await;
    let spec = stream_spec(&session, "Wide__c").await;
    let reader = RestReader::new(
        session,
        RestConfig {
            batch_size: Some(200),
            ..RestConfig::default()
        },
    )
    .unwrap();
    let control = org.control();
    let request = ReadRequest {
        window: Window::for_stream(&spec, None, Some(control.now())),
        ..ReadRequest::default()
    };
    let chunks = reader.plan(&spec, &request).unwrap().chunks.len() as u64;
    assert!(chunks >= 2, "{chunks} chunks");
    let before = truth(&org, "Wide__c");
    let queries = control.stats().requests.query;
    let answered = control.stats().answered;

    control.set_faults(Faults {
        fail_every_nth: Some(chunks),
        ..Faults::default()
    });
    let writer = {
        let control = control.clone();
        std::thread::spawn(move || {
            // Once the other chunk queries have run (and taken their snapshots), before the
            // refused one runs: 30 rows are updated (stamped after the window, which they leave)
            // and 10 deleted. Until then every request is refused, the refused query's retry
            // included (it is retried again, 600 ms later).
            while control.stats().answered < answered + chunks - 1 {
                std::thread::sleep(Duration::from_millis(1));
            }
            control.set_faults(Faults {
                fail_rate: Some(1.0),
                ..Faults::default()
            });
            control.advance_clock(60);
            let done = control.mutate(Mutation::new("Wide__c").update(30).delete(10));
            control.set_faults(Faults::default());
            done
        })
    };
    let (records, error, stats) = read_all(&reader, &spec, request).await;
    let done = writer.join().unwrap();
    assert!(error.is_none(), "{error:?}");
    assert_eq!((done.updated.len(), done.deleted.len()), (30, 10));
    // Each chunk query served once (the refused attempt never ran), and the re-fetches by Id:
    // every chunk leaves room for at least 20 ids in its re-fetch, so the 40 changed records
    // take one or two.
    let refetches = control.stats().requests.query - queries - chunks;
    assert!((1..=2).contains(&refetches), "{refetches} re-fetches");
    let after = truth(&org, "Wide__c");

    // The changed rows were missing from the chunk queried after the change: the updated ones
    // were fetched again by Id and delivered, the deleted ones are reported as vanished.
    assert_eq!(stats.refetched, 30);
    assert_eq!(stats.vanished, 10);
    let vanished: HashSet<&str> = stats.vanished_ids.iter().map(String::as_str).collect();
    let deleted: HashSet<&str> = done.deleted.iter().map(String::as_str).collect();
    assert_eq!(vanished, deleted);
    let ids: Vec<&str> = records.iter().map(|r| r.id().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "each record once");
    let want: HashSet<&str> = before
        .iter()
        .filter(|(id, r)| r["IsDeleted"] != Value::Bool(true) && !deleted.contains(id.as_str()))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(unique, want);
    let dts = datetimes(&spec);
    let updated: HashSet<&str> = done.updated.iter().map(String::as_str).collect();
    for record in &records {
        let id = record.id().unwrap();
        if !updated.contains(id) {
            assert_matches_truth(record, &before[id], &dts).unwrap();
            continue;
        }
        // A changed record is whole: each chunk's columns as that chunk read them, before or
        // after the change, and some of them after it.
        let mut changed = 0;
        for (column, value) in record.columns.iter().zip(&record.values) {
            let then = normalized(&before[id], column, &dts);
            let now = normalized(&after[id], column, &dts);
            assert!(
                *value == then || *value == now,
                "{column} of {id}: {value} is neither {then} nor {now}"
            );
            changed += usize::from(then != now && *value == now);
        }
        assert!(changed > 0, "{id}: the change was not delivered");
    }
    org.shutdown().await;
}

/// A truth row's value of `column` as a record holds it.
fn normalized(row: &Value, column: &str, datetimes: &HashSet<String>) -> Value {
    let raw = row.get(column).unwrap_or(&Value::Null);
    match raw.as_str() {
        Some(text) if datetimes.contains(column) => {
            Value::String(sf_discovery::normalize_datetime(text).unwrap())
        }
        _ => raw.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_locator_resumes_after_the_last_key() {
    let org = EmulatedOrg::start(org_config()).await.unwrap();
    org.control().set_faults(Faults {
        query_locator_ttl_secs: 60,
        ..Faults::default()
    });
    let session = login(&org).await;
    let spec = stream_spec(&session, "Account").await;
    let reader = RestReader::new(
        session,
        RestConfig {
            batch_size: Some(200),
            ..RestConfig::default()
        },
    )
    .unwrap();
    let window = Window::for_stream(&spec, None, Some(org.control().now()));
    let request = ReadRequest {
        window: window.clone(),
        include_deleted: true,
        ..ReadRequest::default()
    };
    let mut stream = reader.read(&spec, request.clone()).unwrap();
    let mut records = Vec::new();
    for _ in 0..150 {
        records.push(stream.next().await.unwrap().unwrap());
    }
    // The second page was asked for as soon as the first came (ahead of need), so its locator is
    // used in time; the third is asked for once the second is taken, after the clock moved: its
    // locator has expired. The clock moves once the org has taken the second page's request
    // (and had a moment to serve it: the request is on its way while records are taken).
    for _ in 0..500 {
        if org.control().stats().requests.query_more >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(org.control().stats().requests.query_more, 1);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    org.control().advance_clock(120);
    let error = loop {
        match stream.next().await.unwrap() {
            Ok(r) => records.push(r),
            Err(e) => break e,
        }
    };
    assert_eq!(records.len(), 400, "two pages of 200 were read");
    assert_eq!(error.kind(), ErrorKind::InvalidQueryLocator);
    let key = error.resume_after().unwrap().clone();
    assert_eq!(key.id, records.last().unwrap().id().unwrap());
    assert_eq!(key.cursor.as_ref().unwrap().field, "SystemModstamp");

    let resumed = ReadRequest {
        after: Some(key),
        ..request
    };
    let (rest, error, _) = read_all(&reader, &spec, resumed).await;
    assert!(error.is_none(), "{error:?}");
    records.extend(rest);
    let ids: Vec<&str> = records.iter().map(|r| r.id().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "nothing read twice");
    let rows = truth(&org, "Account");
    assert_eq!(unique.len(), rows.len(), "nothing lost");
    org.shutdown().await;
}

/// A query whose pages carry fewer rows than its `totalSize` counted is reported in the read's
/// stats (with both numbers); one whose pages carry them all is not.
#[tokio::test]
async fn a_query_short_of_its_total_size_is_reported() {
    let org = EmulatedOrg::start(org_config()).await.unwrap();
    let session = login(&org).await;
    let spec = stream_spec(&session, "Account").await;
    let reader = RestReader::new(
        session,
        RestConfig {
            batch_size: Some(200),
            ..RestConfig::default()
        },
    )
    .unwrap();
    let control = org.control();
    let request = || ReadRequest {
        window: Window::for_stream(&spec, None, Some(control.now())),
        ..ReadRequest::default()
    };
    let (records, error, stats) = read_all(&reader, &spec, request()).await;
    assert!(error.is_none(), "{error:?}");
    let all = records.len() as u64;
    assert!(all > 400, "{all} rows");
    assert_eq!(stats.total_size, Some(all));
    assert!(stats.miscounted.is_empty(), "{:?}", stats.miscounted);

    // Two pages each leave a row out, and their next pages start after it.
    control.set_faults(Faults {
        short_query_next: 2,
        ..Faults::default()
    });
    let (records, error, stats) = read_all(&reader, &spec, request()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(records.len() as u64, all - 2);
    assert_eq!(stats.total_size, Some(all));
    assert_eq!(
        stats.miscounted,
        vec![sf_rest::Miscount {
            counted: all,
            received: all - 2
        }]
    );
}

/// A page that arrives but is not a query page's JSON (cut short, yet ending cleanly) is asked
/// for once more; a page unreadable twice ends the read with `UnexpectedBody`, nothing after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_page_is_asked_for_once_more() {
    let org = EmulatedOrg::start(org_config()).await.unwrap();
    let session = login(&org).await;
    let spec = stream_spec(&session, "Account").await;
    let reader = RestReader::new(
        session,
        RestConfig {
            batch_size: Some(200),
            ..RestConfig::default()
        },
    )
    .unwrap();
    let request = ReadRequest {
        window: Window::for_stream(&spec, None, Some(org.control().now())),
        include_deleted: true,
        ..ReadRequest::default()
    };
    let want = truth(&org, "Account");

    // The first page arrives unreadable once.
    org.control().set_faults(Faults {
        malformed_query_next: 1,
        ..Faults::default()
    });
    let (records, error, stats) = read_all(&reader, &spec, request.clone()).await;
    assert!(error.is_none(), "{error:?}");
    assert_each_once(&records, &want);
    assert_eq!(stats.pages_read_again, 1);
    let why = stats.read_again_because.unwrap();
    assert!(why.contains("EOF"), "{why}");

    // A later page (the first one asked for once a record came) arrives unreadable once.
    let mut stream = reader.read(&spec, request.clone()).unwrap();
    let mut records = vec![stream.next().await.unwrap().unwrap()];
    org.control().set_faults(Faults {
        malformed_query_next: 1,
        ..Faults::default()
    });
    while let Some(item) = stream.next().await {
        records.push(item.unwrap());
    }
    assert_each_once(&records, &want);
    assert_eq!(stream.stats().pages_read_again, 1);

    // Every page unreadable: the first is asked for twice, then the read ends.
    org.control().set_faults(Faults {
        malformed_query_next: 1_000,
        ..Faults::default()
    });
    let queries = org.control().stats().requests.query;
    let (records, error, stats) = read_all(&reader, &spec, request).await;
    let error = error.expect("an error after the second unreadable answer");
    assert_eq!(error.kind(), ErrorKind::UnexpectedBody, "{error}");
    assert!(error.to_string().contains("unexpected page"), "{error}");
    assert!(records.is_empty(), "{} records", records.len());
    assert_eq!(stats.pages_read_again, 1);
    // The query and its second try (next pages asked for ahead count apart).
    assert_eq!(org.control().stats().requests.query - queries, 2);
}

/// Each of `want`'s rows once in `records`, and nothing else.
fn assert_each_once(records: &[Record], want: &BTreeMap<String, Value>) {
    let ids: HashSet<&str> = records.iter().map(|r| r.id().unwrap()).collect();
    assert_eq!(ids.len(), records.len(), "a record twice");
    let want: HashSet<&str> = want.keys().map(String::as_str).collect();
    assert_eq!(ids, want);
}

/// A query the caller writes, streamed a page at a time: every row once, as Salesforce sent it;
/// `queryAll` shows the deleted rows `query` hides; a query Salesforce refuses is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_query_streams_page_by_page() {
    let org = EmulatedOrg::start(org_config()).await.unwrap();
    let deleted = org
        .control()
        .mutate(Mutation::new("Account").delete(7))
        .deleted;
    let session = login(&org).await;
    let reader = RestReader::new(
        session,
        RestConfig {
            batch_size: Some(200),
            ..RestConfig::default()
        },
    )
    .unwrap();
    let soql = "SELECT Id, Name, IsDeleted FROM Account";
    let pages = org.control().stats().requests.query_more;
    let rows: Vec<_> = reader
        .query_stream("Account", soql, false)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let truth = truth(&org, "Account");
    let live: HashSet<&str> = truth
        .iter()
        .filter(|(_, r)| r["IsDeleted"] != true)
        .map(|(id, _)| id.as_str())
        .collect();
    let ids: HashSet<&str> = rows.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), rows.len(), "a row twice");
    assert_eq!(ids, live);
    assert!(rows.iter().all(|r| !r.contains_key("attributes")));
    assert_eq!(rows[0].keys().count(), 3, "{:?}", rows[0]);
    // Pages of 200: the rows past the first page came in next pages.
    let next_pages = org.control().stats().requests.query_more - pages;
    assert_eq!(next_pages, (live.len() as u64).div_ceil(200) - 1);

    let all: Vec<_> = reader
        .query_stream("Account", soql, true)
        .collect::<Vec<_>>()
        .await;
    let all: Vec<_> = all.into_iter().map(Result::unwrap).collect();
    let in_bin: HashSet<&str> = all
        .iter()
        .filter(|r| r["IsDeleted"] == true)
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    assert_eq!(
        all.len(),
        live.len() + in_bin.len(),
        "{} {}",
        live.len(),
        in_bin.len()
    );
    assert!(deleted.iter().all(|id| in_bin.contains(id.as_str())));

    let refused: Vec<_> = reader
        .query_stream("Account", "SELECT Nope__c FROM Account", false)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(refused.len(), 1);
    let error = refused[0].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidField, "{error}");
}
