#![allow(clippy::unwrap_used)]
//! The job lifecycle against recorded Bulk API 2.0 exchanges served by mockito. Polling runs on
//! paused tokio time, so the waits of a real job take no wall-clock time.

mod support;

use std::time::Duration;

use serde_json::json;
use sf_bulk::{
    BulkConfig, BulkItem, Error, ErrorKind, JobState, Operation, PollSchedule, ResumePoint,
};
use support::{
    account_fields, collect, config, outline, query_accounts, records_json, Mock, ACCOUNT_SOQL,
};

const JOB: &str = "750R0000000zxr8IAA";
const JOB2: &str = "750R0000000zxr9IAA";

#[tokio::test(start_paused = true)]
async fn a_query_runs_end_to_end() {
    let (mock, client) = Mock::with_client(&["query_two_pages"], config()).await;
    let started = tokio::time::Instant::now();
    let (items, error) = query_accounts(&client).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        outline(&items),
        [
            format!("created:{JOB}"),
            "completed:3".to_string(),
            "record:001R0000000001AAA".to_string(),
            "record:001R0000000002AAA".to_string(),
            "page:2/2->MjAwMA".to_string(),
            "record:001R0000000003AAA".to_string(),
            "page:1/3->end".to_string(),
        ]
    );
    assert_eq!(
        records_json(&items),
        [
            json!({"Id": "001R0000000001AAA", "Name": "Acme, Inc.", "AnnualRevenue": 90000000.0,
                   "NumberOfEmployees": 120, "IsDeleted": false,
                   "SystemModstamp": "2024-01-02T03:04:05.000Z", "Code__c": "01234"}),
            json!({"Id": "001R0000000002AAA", "Name": "Say \"hi\"\non two lines",
                   "AnnualRevenue": 1234.5, "NumberOfEmployees": null, "IsDeleted": true,
                   "SystemModstamp": "2024-01-03T00:00:00.000Z", "Code__c": "NA"}),
            json!({"Id": "001R0000000003AAA", "Name": "Zoë Ünïcode", "AnnualRevenue": null,
                   "NumberOfEmployees": 7, "IsDeleted": false,
                   "SystemModstamp": "2024-01-04T10:00:00.000Z", "Code__c": null}),
        ]
    );
    let BulkItem::JobCompleted(info) = &items[1] else {
        panic!("{:?}", items[1]);
    };
    assert_eq!(info.state, JobState::JobComplete);
    assert_eq!(info.operation, Some(Operation::QueryAll));
    assert_eq!(info.total_processing_time_ms, Some(334));
    // Three polls, at 0.1, 1.1 and 2.1 s (no transport timers run in these tests, so virtual
    // time moves only for the poller).
    assert_eq!(started.elapsed(), Duration::from_millis(2_100));
    mock.assert_expectations().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_is_replaced_once() {
    let (mock, client) = Mock::with_client(&["failed_then_complete"], config()).await;
    let (items, error) = query_accounts(&client).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        outline(&items),
        [
            format!("created:{JOB}"),
            format!("created:{JOB2}"),
            "completed:1".to_string(),
            "record:001R0000000003AAA".to_string(),
            "page:1/1->end".to_string(),
        ]
    );
    mock.assert_expectations().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_failing_after_its_retry_is_a_job_failed_error() {
    let (mock, client) = Mock::with_client(&["failed_twice"], config()).await;
    let (items, error) = query_accounts(&client).await;
    assert_eq!(
        outline(&items),
        [format!("created:{JOB}"), format!("created:{JOB2}")]
    );
    let error = error.unwrap();
    assert!(
        matches!(error, sf_bulk::Error::JobFailed { .. }),
        "{error:?}"
    );
    // Salesforce gave up on the job's size: a narrower query may pass.
    assert_eq!(error.kind(), ErrorKind::QueryTimeout);
    assert_eq!(error.job_id(), Some(JOB2));
    assert_eq!(
        error.to_string(),
        format!("bulk job {JOB2} failed: Retried more than 15 times. Please apply a filter to reduce the volume of the job.")
    );
    mock.assert_expectations().await;
}

#[tokio::test(start_paused = true)]
async fn without_retries_the_first_failure_is_reported() {
    let (_mock, client) = Mock::with_client(
        &["failed_twice"],
        BulkConfig {
            failed_job_retries: 0,
            ..config()
        },
    )
    .await;
    let (items, error) = query_accounts(&client).await;
    assert_eq!(outline(&items), [format!("created:{JOB}")]);
    let error = error.unwrap();
    assert!(
        matches!(&error, Error::JobFailed { job_id, error_message }
        if job_id == JOB && error_message.starts_with("Unexpected exception encountered in query processing")),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_aborted_job_is_an_error() {
    let (mock, client) = Mock::with_client(&["aborted"], config()).await;
    let (items, error) = query_accounts(&client).await;
    assert_eq!(outline(&items), [format!("created:{JOB}")]);
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::JobAborted);
    assert_eq!(error.to_string(), format!("bulk job {JOB} was aborted"));
    mock.assert_expectations().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_that_never_completes_is_aborted_at_the_timeout() {
    let (mock, client) = Mock::with_client(
        &["never_completes"],
        BulkConfig {
            job_timeout: Duration::from_secs(60),
            // The schedule the recorded exchange was made with (its six polls): 0.1 s, 12.5 s,
            // then by half the job's age, 5 to 30 s apart.
            poll: PollSchedule {
                second: Duration::from_millis(12_500),
                growth: 1.5,
                min_wait: Duration::from_secs(5),
                ..PollSchedule::default()
            },
            ..config()
        },
    )
    .await;
    let started = tokio::time::Instant::now();
    let (items, error) = query_accounts(&client).await;
    assert_eq!(outline(&items), [format!("created:{JOB}")]);
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::JobTimedOut);
    assert!(error.to_string().contains("within 60 s"), "{error}");
    // The last wait is cut to the deadline: the job is given exactly its minute.
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    mock.assert_expectations().await;
}

#[tokio::test(start_paused = true)]
async fn a_schedule_of_huge_waits_is_cut_to_the_timeout_without_overflow() {
    let (_mock, client) = Mock::with_client(
        &["never_completes"],
        BulkConfig {
            job_timeout: Duration::from_secs(60),
            poll: PollSchedule {
                growth: 1e300,
                max_wait: Duration::MAX,
                ..PollSchedule::default()
            },
            ..config()
        },
    )
    .await;
    let started = tokio::time::Instant::now();
    let (_, error) = query_accounts(&client).await;
    // Polls at 0.1 and 1.1 s; the third would be at the end of time and is cut to the minute.
    assert_eq!(error.unwrap().kind(), ErrorKind::JobTimedOut);
    assert_eq!(started.elapsed(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn waiting_for_an_existing_job_polls_at_once_then_from_the_second_poll_time() {
    let (_mock, client) = Mock::with_client(
        &["never_completes"],
        BulkConfig {
            job_timeout: Duration::from_secs(20),
            ..config()
        },
    )
    .await;
    let started = tokio::time::Instant::now();
    // At 0, 1.1, 2.1, ... 15.23 and (cut to the timeout) 20 s; not at 0 and 0.1 s.
    let error = client.wait_for_completion(JOB).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::JobTimedOut);
    assert_eq!(started.elapsed(), Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn abort_is_a_public_operation() {
    let (_mock, client) = Mock::with_client(&["never_completes"], config()).await;
    let info = client.abort(JOB).await.unwrap();
    assert_eq!(info.state, JobState::Aborted);
    assert_eq!(info.id, JOB);
    let err = client.abort("750/../../sobjects").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test(start_paused = true)]
async fn job_creation_refusals_are_classified() {
    let cases = [
        (
            "create_invalidentity",
            ErrorKind::BulkNotSupported,
            "INVALIDENTITY",
            None,
        ),
        (
            "create_compound",
            ErrorKind::BulkNotSupported,
            "API_ERROR",
            None,
        ),
        (
            "create_does_not_support_query",
            ErrorKind::BulkNotSupported,
            "API_ERROR",
            None,
        ),
        (
            "create_job_limit",
            ErrorKind::BulkJobLimit,
            "LIMIT_EXCEEDED",
            None,
        ),
        (
            "create_daily_api_limit",
            ErrorKind::DailyLimitExceeded,
            "REQUEST_LIMIT_EXCEEDED",
            None,
        ),
        // ContentDocumentLink "requires a filter": a filter restriction, not "View All Data"
        // (only Query All Files, from API 59.0, lifts it; sf-sync reads the object through its
        // parents' ids).
        (
            "create_implementation_restriction",
            ErrorKind::FilterRequired,
            "API_ERROR",
            None,
        ),
        (
            "create_txn_security",
            ErrorKind::PermissionRequired,
            "TXN_SECURITY_METERING_ERROR",
            Some("Exempt from Transaction Security"),
        ),
        (
            "create_invalid_field",
            ErrorKind::InvalidField,
            "INVALID_FIELD",
            None,
        ),
    ];
    for (scenario, kind, code, permission) in cases {
        let (mock, client) = Mock::with_client(&[scenario], config()).await;
        let (items, error) = query_accounts(&client).await;
        assert!(items.is_empty(), "{scenario}");
        let error = error.unwrap();
        assert!(
            matches!(error, Error::JobCreate { .. }),
            "{scenario}: {error}"
        );
        assert_eq!(error.kind(), kind, "{scenario}: {error}");
        assert_eq!(error.error_code(), Some(code), "{scenario}");
        assert_eq!(error.required_permission(), permission, "{scenario}");
        if let Some(permission) = permission {
            assert!(error.to_string().contains(permission), "{error}");
        }
        // Refusals are answered once: none of them is retried.
        mock.assert_expectations().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_daily_limit_while_polling_is_a_quota_stop() {
    let (mock, client) = Mock::with_client(&["poll_daily_limit"], config()).await;
    let (items, error) = query_accounts(&client).await;
    assert_eq!(outline(&items), [format!("created:{JOB}")]);
    let error = error.unwrap();
    assert!(matches!(error, Error::JobPoll { .. }), "{error}");
    assert_eq!(error.kind(), ErrorKind::DailyLimitExceeded);
    mock.assert_expectations().await;
}

#[tokio::test(start_paused = true)]
async fn a_page_shorter_than_announced_is_an_error_and_the_job_is_kept() {
    let (mock, client) = Mock::with_client(&["page_count_mismatch"], config()).await;
    let (items, error) = query_accounts(&client).await;
    // The page's records went out, but no checkpoint for it.
    assert_eq!(
        outline(&items),
        [
            format!("created:{JOB}"),
            "completed:3".to_string(),
            "record:001R0000000001AAA".to_string(),
            "record:001R0000000002AAA".to_string(),
        ]
    );
    let error = error.unwrap();
    assert!(
        matches!(
            &error,
            Error::ResultsPageCount {
                announced: 3,
                received: 2,
                locator: None,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::ResultsIncomplete);
    // Kept for a resume (the scenario expects no DELETE), and named for one.
    assert_eq!(error.job_id(), Some(JOB));
    mock.assert_expectations().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_total_that_does_not_match_is_an_error() {
    let (mock, client) = Mock::with_client(&["total_count_mismatch"], config()).await;
    let (items, error) = query_accounts(&client).await;
    assert_eq!(items.len(), 4, "{:?}", outline(&items));
    let error = error.unwrap();
    assert!(
        matches!(
            &error,
            Error::ResultsTotalCount {
                processed: 5,
                received: 2,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!("bulk job {JOB} processed 5 records but its results held 2 rows")
    );
    // The last page's records went out without a checkpoint; the job is kept (the scenario
    // expects no DELETE) so it can be read again from there, and the error names it.
    let pages = items
        .iter()
        .filter(|item| matches!(item, BulkItem::PageDone(_)))
        .count();
    assert_eq!(pages, 0);
    assert_eq!(error.kind(), ErrorKind::ResultsIncomplete);
    assert_eq!(error.job_id(), Some(JOB));
    mock.assert_expectations().await;
}

/// Captures what the code under test logs on this thread, as text.
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn missing_counts_are_warned_about_and_the_run_reads_on() {
    let (mock, client) = Mock::with_client(&["counts_absent"], config()).await;
    let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&captured);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || Logs(std::sync::Arc::clone(&sink)))
        .finish();
    let (items, error) = {
        let _guard = tracing::subscriber::set_default(subscriber);
        query_accounts(&client).await
    };
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        outline(&items),
        [
            format!("created:{JOB}"),
            format!("completed:{}", u64::MAX),
            "record:001R0000000001AAA".to_string(),
            "record:001R0000000002AAA".to_string(),
            "page:2/2->end".to_string(),
        ]
    );
    let logs = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 2, "{logs}");
    assert!(
        warnings[0].contains("BulkResultsCountMissing") && warnings[0].contains(JOB),
        "{logs}"
    );
    assert!(
        warnings[1].contains("BulkJobTotalMissing") && warnings[1].contains("rows=2"),
        "{logs}"
    );
    // Read whole, so deleted (the scenario expects one DELETE).
    mock.assert_expectations().await;
}

#[tokio::test(start_paused = true)]
async fn a_download_resumes_from_a_locator() {
    let (mock, client) = Mock::with_client(&["resume_second_page"], config()).await;
    let from = ResumePoint {
        job_id: JOB.to_string(),
        locator: Some("MjAwMA".to_string()),
        rows_done: 2,
    };
    let (items, error) = collect(client.resume(from, &account_fields())).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        outline(&items),
        [
            "completed:3".to_string(),
            "record:001R0000000003AAA".to_string(),
            "page:1/3->end".to_string(),
        ]
    );
    let BulkItem::PageDone(progress) = items.last().unwrap() else {
        panic!()
    };
    assert_eq!(progress.locator.as_deref(), Some("MjAwMA"));
    assert_eq!(progress.resume_point(), None);
    mock.assert_expectations().await;
}

/// A state's `rows_done` is a count a user may have written: one past any job's total is
/// refused as a count mismatch, never an arithmetic overflow (a panic in a debug build, a
/// wrapped count that passes the check in a release one).
#[tokio::test(start_paused = true)]
async fn a_resume_point_claiming_more_rows_than_any_job_is_refused() {
    let (_mock, client) = Mock::with_client(&["resume_second_page"], config()).await;
    let from = ResumePoint {
        job_id: JOB.to_string(),
        locator: Some("MjAwMA".to_string()),
        rows_done: u64::MAX,
    };
    let (items, error) = collect(client.resume(from, &account_fields())).await;
    assert!(
        matches!(
            error,
            Some(sf_bulk::Error::ResultsTotalCount {
                processed: 3,
                received: u64::MAX,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(
        !items.iter().any(|i| matches!(i, BulkItem::Record(_))),
        "{}",
        outline(&items).join(", ")
    );
}

#[tokio::test(start_paused = true)]
async fn checkpoints_resume_where_they_say() {
    let (_mock, client) = Mock::with_client(&["query_two_pages"], config()).await;
    let (items, _) = query_accounts(&client).await;
    let first_page = items
        .iter()
        .find_map(|item| match item {
            BulkItem::PageDone(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        first_page.resume_point(),
        Some(ResumePoint {
            job_id: JOB.to_string(),
            locator: Some("MjAwMA".to_string()),
            rows_done: 2,
        })
    );
    assert_eq!(ResumePoint::start(JOB).locator, None);
}

#[tokio::test(start_paused = true)]
async fn an_empty_result_is_a_page_of_no_rows() {
    let (mock, client) = Mock::with_client(&["empty_result"], config()).await;
    let (items, error) =
        collect(client.query(Operation::Query, ACCOUNT_SOQL, &account_fields())).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        outline(&items),
        [
            format!("created:{JOB}"),
            "completed:0".to_string(),
            "page:0/0->end".to_string()
        ]
    );
    mock.assert_expectations().await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_delete_does_not_fail_the_run() {
    let (mock, client) = Mock::with_client(&["delete_refused"], config()).await;
    let (items, error) = query_accounts(&client).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(items.len(), 4);
    mock.assert_expectations().await;
    // Called directly, the refusal is an error.
    let err = client.delete(JOB).await.unwrap_err();
    assert!(matches!(err, Error::JobDelete { .. }), "{err}");
    assert_eq!(err.error_code(), Some("API_ERROR"));
}

#[tokio::test(start_paused = true)]
async fn pages_that_are_not_what_was_asked_for_are_errors() {
    type Check = fn(&Error) -> bool;
    let cases: [(&str, Check, ErrorKind); 3] = [
        (
            "header_mismatch",
            |e| {
                matches!(
                    e,
                    Error::ResultsDecode {
                        source: sf_bulk::DecodeError::Header { .. },
                        ..
                    }
                )
            },
            ErrorKind::ResultsInvalid,
        ),
        (
            "unsupported_charset",
            |e| matches!(e, Error::ResultsDecode { source: sf_bulk::DecodeError::Charset { charset }, .. } if charset == "Shift_JIS"),
            ErrorKind::ResultsInvalid,
        ),
        (
            "bad_value",
            |e| {
                matches!(e, Error::ResultsDecode { source: sf_bulk::DecodeError::Value { row: 1, column, value, .. }, .. }
                    if column == "AnnualRevenue" && value == "lots")
            },
            ErrorKind::ResultsInvalid,
        ),
    ];
    for (scenario, is_expected, kind) in cases {
        let (mock, client) = Mock::with_client(&[scenario], config()).await;
        let (items, error) = query_accounts(&client).await;
        assert_eq!(items.len(), 2, "{scenario}: {:?}", outline(&items));
        let error = error.unwrap();
        assert!(is_expected(&error), "{scenario}: {error}");
        assert_eq!(error.kind(), kind, "{scenario}");
        mock.assert_expectations().await;
    }
}

#[tokio::test(start_paused = true)]
async fn re_attaching_to_a_job_that_is_gone_asks_for_a_new_one() {
    let (_mock, client) = Mock::with_client(&["job_gone"], config()).await;
    let (items, error) = collect(client.resume(ResumePoint::start(JOB), &account_fields())).await;
    assert!(items.is_empty());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::JobNotFound);
    let (_, error) =
        collect(client.resume(ResumePoint::start("not/an/id"), &account_fields())).await;
    assert!(matches!(error, Some(Error::InvalidJobId { .. })));
}

#[tokio::test]
async fn an_invalid_config_names_the_field() {
    let mock = Mock::start(&[]).await;
    let session = mock.session().await;
    let err = sf_bulk::BulkClient::new(
        session,
        BulkConfig {
            max_records: Some(0),
            parallel_pages: 1,
            ..BulkConfig::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("`max_records`"), "{err}");
}
