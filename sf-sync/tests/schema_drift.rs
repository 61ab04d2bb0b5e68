#![allow(clippy::unwrap_used)]
//! Schema drift against the emulated org: the org's schema changes between discovery and the
//! read (a field deleted, added or retyped, an object's read permission removed), and the read
//! goes on with every record, saying what changed and what to do.

mod common;

use common::Connected;
use common::{assert_matches_truth, configure, connect, latest, org_config, run_fresh, truth};
use fixtures::FieldDef;
use serde_json::{json, Value};
use sf_sync::{Error, Failure, IncompleteReason, LogLevel, MemorySink, StreamStatus};

const OBJECT: &str = "Invoice__c";

fn logs_with<'a>(sink: &'a MemorySink, level: LogLevel, needle: &str) -> Vec<&'a str> {
    sink.logs()
        .into_iter()
        .filter(|(l, m)| *l == level && m.contains(needle))
        .map(|(_, m)| m)
        .collect()
}

fn status(sink: &MemorySink, stream: &str) -> StreamStatus {
    sink.statuses(stream).last().cloned().cloned().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_field_is_left_out_with_a_warning_and_the_rest_is_read() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(org_config(61).rows(OBJECT, 40), json!({})).await;
    let control = org.control();
    let configured = configure(&catalog, &[OBJECT, "Account"], None);
    control.remove_field(OBJECT, "Notes__c").unwrap();
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    let summary = result.unwrap();
    assert!(summary.succeeded());
    assert_eq!(status(&sink, OBJECT), StreamStatus::Complete);
    let warnings = logs_with(&sink, LogLevel::Warn, "`Notes__c`");
    assert_eq!(warnings.len(), 1, "{:?}", sink.logs());
    assert!(
        warnings[0].starts_with("Invoice__c: the catalog selects field `Notes__c` that no longer")
            && warnings[0].contains("read without them")
            && warnings[0].contains("refresh the schema"),
        "{}",
        warnings[0]
    );
    let records = sink.records(OBJECT);
    assert!(records.iter().all(|r| r.get("Notes__c").is_none()));
    assert!(records.iter().all(|r| r.get("Amount__c").is_some()));
    let spec = catalog.stream(OBJECT).unwrap();
    assert_matches_truth(
        OBJECT,
        &latest(&[&sink], OBJECT, spec),
        &truth(&control, spec),
    );
    assert!(!sink.states(OBJECT).is_empty());
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_key_or_every_selected_field_is_gone_fails_alone() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(org_config(62), json!({})).await;
    let control = org.control();
    // Only fields that are gone: the stream fails naming them; Account reads on.
    control.remove_field(OBJECT, "Notes__c").unwrap();
    let mut configured = configure(&catalog, &[OBJECT, "Account"], None);
    let fields = configured.streams[0].selected_fields.as_mut().unwrap();
    fields.clear();
    fields.push("Notes__c".to_string());
    fields.push("Gone__c".to_string());
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    let err = result.unwrap_err();
    assert_eq!(
        err,
        Error::StreamFieldsMissing {
            stream: OBJECT.into(),
            fields: vec!["Notes__c".into(), "Gone__c".into()]
        }
    );
    assert_eq!(err.failure(), Failure::Config);
    let text = err.to_string();
    assert!(
        text.contains("`Notes__c`, `Gone__c`") && text.contains("refresh the schema"),
        "{text}"
    );
    assert!(sink.records(OBJECT).is_empty());
    assert!(sink.states(OBJECT).is_empty());
    assert_eq!(status(&sink, "Account"), StreamStatus::Complete);
    let summary = sink.final_summary().unwrap();
    let failed: Vec<&str> = summary.failed().map(|(s, _, _)| s).collect();
    assert_eq!(failed, [OBJECT]);
    // A selected cursor that is gone fails the stream too, whatever else is left.
    let mut configured = configure(&catalog, &["Account"], Some("incremental"));
    configured.streams[0]
        .selected_fields
        .as_mut()
        .unwrap()
        .push("LoginTime".to_string());
    let (result, _) = run_fresh(&session, &config, &configured).await;
    assert!(
        matches!(result, Err(Error::StreamFieldsMissing { ref fields, .. }) if fields == &["LoginTime"]),
        "{result:?}"
    );
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_field_is_not_read_until_the_schema_is_refreshed_and_says_so() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(org_config(63).rows(OBJECT, 30), json!({})).await;
    let control = org.control();
    let configured = configure(&catalog, &[OBJECT], None);
    control
        .add_field(OBJECT, FieldDef::new("Score__c", "double"))
        .unwrap();
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    assert!(result.unwrap().succeeded());
    let notes = logs_with(&sink, LogLevel::Info, "`Score__c`");
    assert_eq!(notes.len(), 1, "{:?}", sink.logs());
    assert!(
        notes[0].contains("does not select") && notes[0].contains("not read until the schema"),
        "{}",
        notes[0]
    );
    assert!(!sink.records(OBJECT).is_empty());
    assert!(sink
        .records(OBJECT)
        .iter()
        .all(|r| r.get("Score__c").is_none()));
    // Discovered again, the field is read.
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    let configured = configure(&catalog, &[OBJECT], None);
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    assert!(result.unwrap().succeeded());
    assert!(logs_with(&sink, LogLevel::Info, "`Score__c`").is_empty());
    assert!(sink
        .records(OBJECT)
        .iter()
        .all(|r| r.get("Score__c").is_some()));
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retyped_field_keeps_the_catalogs_type_and_no_record_is_lost() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(org_config(64).rows(OBJECT, 50), json!({})).await;
    let control = org.control();
    let configured = configure(&catalog, &[OBJECT], None);
    // The catalog has Quantity__c as an integer; the org serves it as text from now on.
    control
        .change_field_type(OBJECT, "Quantity__c", "string")
        .unwrap();
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    assert!(result.unwrap().succeeded());
    let warnings = logs_with(&sink, LogLevel::Warn, "`Quantity__c` changed type");
    assert_eq!(warnings.len(), 1, "{:?}", sink.logs());
    assert!(
        warnings[0].contains("integer in the catalog, string now"),
        "{}",
        warnings[0]
    );
    let rows = control.truth(OBJECT);
    let records = sink.records(OBJECT);
    assert_eq!(records.len(), rows.len(), "no record is lost");
    let mut numbers = 0;
    for record in &records {
        let id = record.id().unwrap();
        let row = rows.iter().find(|r| r["Id"] == json!(id)).unwrap();
        let value = record.get("Quantity__c").unwrap();
        match &row["Quantity__c"] {
            Value::Null => assert_eq!(value, &Value::Null),
            Value::String(text) => {
                assert_eq!(value, &json!(text.parse::<i64>().unwrap()), "{id}");
                numbers += 1;
            }
            other => panic!("{id}: the org serves {other} for a text field"),
        }
    }
    assert!(numbers > 0);
    // Every value converted: nothing to report at the end.
    assert!(logs_with(&sink, LogLevel::Warn, "could not be written").is_empty());
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_no_longer_readable_is_reported_and_the_others_run() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(org_config(65), json!({})).await;
    let control = org.control();
    let configured = configure(&catalog, &["Contact", OBJECT], None);
    control.set_object_readable("Contact", false).unwrap();
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::StreamUnknown { stream, .. } if stream == "Contact"),
        "{err:?}"
    );
    assert!(!err.ends_sync());
    match status(&sink, "Contact") {
        StreamStatus::Incomplete(IncompleteReason::Failed { message, .. }) => {
            assert!(message.contains("run discover again"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status(&sink, OBJECT), StreamStatus::Complete);
    let spec = catalog.stream(OBJECT).unwrap();
    assert_matches_truth(
        OBJECT,
        &latest(&[&sink], OBJECT, spec),
        &truth(&control, spec),
    );
    let summary = sink.final_summary().unwrap();
    assert_eq!(summary.failure(), Some(Failure::Config));
    org.shutdown().await;
}
