#![allow(clippy::unwrap_used)]
//! Whole Bulk runs against the emulated org (`fixtures::EmulatedOrg`): pages, value fidelity
//! against the org's ground truth, failed and aborted jobs, a page cut short and resumed.
//! The org's Bulk jobs progress on tokio time, so paused time makes the polling instant.

mod support;

use std::collections::BTreeMap;

use fixtures::{EmulatedOrg, Faults, OrgConfig, Scale};
use futures_util::StreamExt;
use serde_json::Value;
use sf_bulk::{
    BulkClient, BulkConfig, BulkItem, BulkStream, Error, ErrorKind, Operation, PageProgress,
    ResumePoint,
};
use sf_discovery::{normalize_datetime, FieldSpec, FieldType, Record};
use support::{collect, outline, records};

/// Invoice__c columns Bulk can serve: every value kind, a formula, and a textarea of awkward text.
const INVOICE_FIELDS: [(&str, &str); 18] = [
    ("Id", "id"),
    ("IsDeleted", "boolean"),
    ("Name", "string"),
    ("Status__c", "picklist"),
    ("Amount__c", "currency"),
    ("Big_Amount__c", "currency"),
    ("Tax_Rate__c", "percent"),
    ("Discount__c", "double"),
    ("Quantity__c", "int"),
    ("Invoice_Date__c", "date"),
    ("Due_Date__c", "date"),
    ("Paid_At__c", "datetime"),
    ("Send_Time__c", "time"),
    ("Is_Paid__c", "boolean"),
    ("Tags__c", "multipicklist"),
    ("Total__c", "currency"),
    ("Notes__c", "textarea"),
    ("SystemModstamp", "datetime"),
];

fn invoice_fields() -> Vec<FieldSpec> {
    INVOICE_FIELDS
        .iter()
        .map(|(n, t)| FieldSpec::new(*n, FieldType::from_wire(t)))
        .collect()
}

fn invoice_soql() -> String {
    let names: Vec<&str> = INVOICE_FIELDS.iter().map(|(n, _)| *n).collect();
    format!("SELECT {} FROM Invoice__c", names.join(", "))
}

/// An org with `invoices` Invoice__c rows, and a client logged in to it reading pages of 10.
async fn started(invoices: u64) -> (EmulatedOrg, BulkClient) {
    let org = EmulatedOrg::start(OrgConfig::new(7, Scale::Tiny).rows("Invoice__c", invoices))
        .await
        .unwrap();
    let login = org.login_info();
    let session = support::session_with(&login.login_url, |c| {
        c.credentials.client_id = login.client_id;
        c.credentials.client_secret = sf_auth::Secret::new(login.client_secret);
        c.credentials.refresh_token = Some(sf_auth::Secret::new(login.refresh_token));
    })
    .await;
    // Page by page: the faults set at a checkpoint hit the next results request, which is the
    // next page only when pages are not downloaded ahead (parallel pages: tests/parallel.rs).
    let config = BulkConfig {
        max_records: Some(10),
        parallel_pages: 1,
        ..BulkConfig::default()
    };
    (org, BulkClient::new(session, config).unwrap())
}

/// Reads `stream` until it fails, setting `faults` on the org at each checkpoint (once the sink
/// has taken the page): the records of checkpointed pages, the ones read after the last
/// checkpoint, that checkpoint, and the error.
async fn read_until_error(
    org: &EmulatedOrg,
    mut stream: BulkStream,
    faults: Faults,
) -> (Vec<Record>, Vec<Record>, Option<ResumePoint>, Error) {
    let mut kept = Vec::new();
    let mut pending = Vec::new();
    let mut checkpoint = None;
    let error = loop {
        match stream.next().await {
            Some(Ok(BulkItem::Record(r))) => pending.push(r),
            Some(Ok(BulkItem::PageDone(p))) => {
                kept.append(&mut pending);
                checkpoint = p.resume_point();
                org.control().set_faults(faults.clone());
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("the faulty page must fail the run"),
        }
    };
    (kept, pending, checkpoint, error)
}

/// The org's ground truth for the selected fields, by Id, in the forms records use: datetimes
/// `...sssZ`, everything else as the REST API renders it.
fn truth(org: &EmulatedOrg, fields: &[FieldSpec]) -> BTreeMap<String, Vec<Value>> {
    org.control()
        .truth("Invoice__c")
        .into_iter()
        .map(|row| {
            let values = fields
                .iter()
                .map(|f| match (&f.field_type, &row[&f.name]) {
                    (FieldType::DateTime, Value::String(s)) => {
                        Value::String(normalize_datetime(s).unwrap())
                    }
                    (_, v) => v.clone(),
                })
                .collect();
            (row["Id"].as_str().unwrap().to_string(), values)
        })
        .collect()
}

fn by_id(records: &[Record]) -> BTreeMap<String, Vec<Value>> {
    records
        .iter()
        .map(|r| (r.id().unwrap().to_string(), r.values.clone()))
        .collect()
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

#[tokio::test(start_paused = true)]
async fn a_job_of_three_pages_matches_the_truth() {
    let (org, client) = started(25).await;
    let fields = invoice_fields();
    let (items, error) = collect(client.query(Operation::QueryAll, invoice_soql(), &fields)).await;
    assert!(error.is_none(), "{error:?}");
    let pages = pages(&items);
    assert_eq!(
        pages
            .iter()
            .map(|p| (p.rows, p.rows_total))
            .collect::<Vec<_>>(),
        [(10, 10), (10, 20), (5, 25)]
    );
    assert_eq!(pages[0].locator, None);
    assert_eq!(pages[1].locator, pages[0].next_locator);
    assert_eq!(pages[2].next_locator, None);
    let got = by_id(&records(&items));
    let want = truth(&org, &fields);
    assert_eq!(got.len(), 25);
    for (id, values) in &want {
        assert_eq!(got.get(id), Some(values), "record {id}");
    }
    // Awkward text survived: the org's generator puts quotes, commas and newlines in Notes__c.
    let notes = fields.iter().position(|f| f.name == "Notes__c").unwrap();
    assert!(got.values().any(|v| v[notes]
        .as_str()
        .is_some_and(|s| s.contains('\n') || s.contains('"'))));
    let stats = org.control().stats().requests;
    assert_eq!(
        (
            stats.bulk_create,
            stats.bulk_results,
            stats.bulk_delete,
            stats.bulk_abort
        ),
        (1, 3, 1, 0)
    );
    assert!(stats.bulk_poll >= 1);
    org.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_is_replaced_once_then_reported() {
    let (org, client) = started(5).await;
    let message = "Unexpected exception encountered in query processing. Please contact support with the Job Id.";
    org.control().set_faults(Faults {
        bulk_fail_next: 1,
        ..Faults::default()
    });
    let fields = invoice_fields();
    let (items, error) = collect(client.query(Operation::Query, invoice_soql(), &fields)).await;
    assert!(error.is_none(), "{error:?}");
    let live = org
        .control()
        .truth("Invoice__c")
        .iter()
        .filter(|row| row["IsDeleted"] == Value::Bool(false))
        .count();
    assert!(live > 0);
    assert_eq!(records(&items).len(), live, "query reads live rows only");
    assert_eq!(org.control().stats().requests.bulk_create, 2);

    org.control().set_faults(Faults {
        bulk_fail_next: 2,
        ..Faults::default()
    });
    let (items, error) = collect(client.query(Operation::Query, invoice_soql(), &fields)).await;
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::JobFailed);
    assert!(
        matches!(&error, Error::JobFailed { error_message, .. } if error_message == message),
        "{error}"
    );
    let created: Vec<_> = outline(&items);
    assert_eq!(created.len(), 2, "{created:?}");
    let stats = org.control().stats().requests;
    assert_eq!(stats.bulk_create, 4);
    // Every job is deleted: two read, two failed.
    assert_eq!(stats.bulk_delete, 4);
    org.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_aborted_by_the_server_is_an_error() {
    let (org, client) = started(5).await;
    org.control().set_faults(Faults {
        bulk_abort_next: 1,
        ..Faults::default()
    });
    let (_, error) =
        collect(client.query(Operation::Query, invoice_soql(), &invoice_fields())).await;
    assert_eq!(error.unwrap().kind(), ErrorKind::JobAborted);
    org.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_page_cut_short_is_an_error_and_the_download_resumes_from_the_last_checkpoint() {
    let (org, client) = started(25).await;
    let fields = invoice_fields();
    // The sink takes the first page; then the second page breaks off mid-row.
    let (mut kept, pending, checkpoint, error) = read_until_error(
        &org,
        client.query(Operation::QueryAll, invoice_soql(), &fields),
        Faults {
            truncate_results_next: 1,
            ..Faults::default()
        },
    )
    .await;
    assert!(matches!(error, Error::ResultsRead { .. }), "{error}");
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(kept.len(), 10);
    assert!(
        pending.len() < 10,
        "the cut page is short: {}",
        pending.len()
    );
    let checkpoint = checkpoint.unwrap();
    assert_eq!(checkpoint.rows_done, 10);
    // The job was kept for the resume.
    assert_eq!(org.control().stats().requests.bulk_delete, 0);
    let (items, error) = collect(client.resume(checkpoint, &fields)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(pages(&items).last().map(|p| p.rows_total), Some(25));
    kept.extend(records(&items));
    let got = by_id(&kept);
    assert_eq!(got, truth(&org, &fields));
    let stats = org.control().stats().requests;
    assert_eq!((stats.bulk_create, stats.bulk_delete), (1, 1));
    org.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn what_bulk_cannot_serve_is_classified() {
    let (org, client) = started(5).await;
    let id = [FieldSpec::new("Id", FieldType::Id)];
    let cases = [
        ("SELECT Id FROM CaseStatus", ErrorKind::BulkNotSupported),
        (
            "SELECT Id, BillingAddress FROM Account",
            ErrorKind::BulkNotSupported,
        ),
        ("SELECT Id, Nope__c FROM Account", ErrorKind::InvalidField),
    ];
    for (soql, kind) in cases {
        let (items, error) = collect(client.query(Operation::Query, soql, &id)).await;
        assert!(items.is_empty(), "{soql}");
        let error = error.unwrap();
        assert_eq!(error.kind(), kind, "{soql}: {error}");
    }
    org.control().set_faults(Faults {
        daily_bulk_job_limit: 0,
        ..Faults::default()
    });
    let (_, error) = collect(client.query(Operation::Query, "SELECT Id FROM Account", &id)).await;
    assert_eq!(error.unwrap().kind(), ErrorKind::BulkJobLimit);
    org.shutdown().await;
}

/// A page that ends cleanly one row short of its `Sforce-NumberOfRecords`: the page's records
/// go out without a checkpoint, the error names the counts, the job is kept, and a resume from
/// the last checkpoint reads the page whole.
#[tokio::test(start_paused = true)]
async fn a_clean_page_short_of_its_announced_count_is_an_error_and_resumes() {
    let (org, client) = started(25).await;
    let fields = invoice_fields();
    let (mut kept, pending, checkpoint, error) = read_until_error(
        &org,
        client.query(Operation::QueryAll, invoice_soql(), &fields),
        Faults {
            short_results_next: 1,
            ..Faults::default()
        },
    )
    .await;
    let checkpoint = checkpoint.unwrap();
    match &error {
        Error::ResultsPageCount {
            job_id,
            locator,
            announced,
            received,
        } => {
            assert_eq!((*announced, *received), (10, 9));
            assert_eq!(locator, &checkpoint.locator);
            assert_eq!(job_id, &checkpoint.job_id);
        }
        other => panic!("{other}"),
    }
    assert_eq!(error.kind(), ErrorKind::ResultsIncomplete);
    assert_eq!(error.job_id(), Some(checkpoint.job_id.as_str()));
    assert_eq!((kept.len(), pending.len()), (10, 9));
    assert_eq!(org.control().stats().requests.bulk_delete, 0, "kept");
    let (items, error) = collect(client.resume(checkpoint, &fields)).await;
    assert!(error.is_none(), "{error:?}");
    kept.extend(records(&items));
    assert_eq!(by_id(&kept), truth(&org, &fields));
    let stats = org.control().stats().requests;
    assert_eq!((stats.bulk_create, stats.bulk_delete), (1, 1));
    org.shutdown().await;
}

/// A job whose `numberRecordsProcessed` is one more than its pages hold: every page checks out,
/// the run ends with the total's error instead of the last checkpoint, and the job is kept
/// (the error names it) until the caller deletes it.
#[tokio::test(start_paused = true)]
async fn a_job_total_that_does_not_match_its_pages_is_an_error() {
    let (org, client) = started(25).await;
    org.control().set_faults(Faults {
        bulk_overcount_next: 1,
        ..Faults::default()
    });
    let fields = invoice_fields();
    let (items, error) = collect(client.query(Operation::QueryAll, invoice_soql(), &fields)).await;
    let error = error.unwrap();
    let job_id = match &error {
        Error::ResultsTotalCount {
            job_id,
            processed,
            received,
        } => {
            assert_eq!((*processed, *received), (26, 25));
            job_id.clone()
        }
        other => panic!("{other}"),
    };
    assert_eq!(error.kind(), ErrorKind::ResultsIncomplete);
    assert_eq!(error.job_id(), Some(job_id.as_str()));
    // Two checkpoints; the last page's records went out without one.
    assert_eq!(
        pages(&items)
            .iter()
            .map(|p| p.rows_total)
            .collect::<Vec<_>>(),
        [10, 20]
    );
    assert_eq!(records(&items).len(), 25);
    let stats = org.control().stats().requests;
    assert_eq!((stats.bulk_results, stats.bulk_delete), (3, 0));
    client.delete(&job_id).await.unwrap();
    assert_eq!(org.control().stats().requests.bulk_delete, 1);
    org.shutdown().await;
}

/// The CSV itself, a page at a time: a job created and waited for, its three pages read as
/// bytes by their locators: a header row each, then each live row of the object once;
/// the job is left for the caller to delete. A locator the job never gave is an error.
#[tokio::test(start_paused = true)]
async fn a_jobs_pages_read_as_csv_bytes() {
    let (org, client) = started(25).await;
    let job = client
        .create_job(Operation::Query, "SELECT Id, Name FROM Invoice__c")
        .await
        .unwrap();
    client.wait_for_completion(&job.id).await.unwrap();
    let mut locator: Option<String> = None;
    let mut announced = Vec::new();
    let mut ids = Vec::new();
    loop {
        let page = client
            .results_page(&job.id, locator.as_deref())
            .await
            .unwrap();
        announced.push(page.records);
        let bytes: Vec<u8> = page
            .body
            .map(|chunk| chunk.unwrap().to_vec())
            .concat()
            .await;
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("\"Id\",\"Name\""), "{text}");
        ids.extend(
            lines
                .filter_map(|l| l.split(',').next())
                .map(|id| id.trim_matches('"').to_string()),
        );
        match page.next_locator {
            Some(next) => locator = Some(next),
            None => break,
        }
    }
    // `query` leaves the rows in the recycle bin out.
    let want: std::collections::BTreeSet<String> = org
        .control()
        .truth("Invoice__c")
        .iter()
        .filter(|r| r["IsDeleted"] == false)
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect();
    assert!((21..25).contains(&want.len()), "{}", want.len());
    let last = want.len() as u64 - 20;
    assert_eq!(announced, [Some(10), Some(10), Some(last)]);
    let unique: std::collections::BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), unique.len(), "an id twice");
    assert_eq!(unique, want);
    assert_eq!(org.control().stats().requests.bulk_delete, 0);

    let error = client
        .results_page(&job.id, Some("bm90LWEtbG9jYXRvcg"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other, "{error}");
    assert!(error.to_string().contains("INVALIDLOCATOR"), "{error}");
    client.delete(&job.id).await.unwrap();
    org.shutdown().await;
}
