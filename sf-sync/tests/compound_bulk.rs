//! Compound fields through Bulk: an object whose only Bulk obstacle is its address or location
//! fields is read through Bulk when its volume calls for it, selecting their components, and each
//! record is the same as REST reads it (the same keys, the same nulls, the same numbers).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Map, Value};
use sf_sync::plan::PlannerConfig;
use sf_sync::{Api, InputState, LogLevel, MemorySink, ReadOptions};

const OBJECTS: [&str; 4] = ["Account", "Contact", "Lead", "Invoice__c"];
const COMPOUNDS: [(&str, &[&str]); 4] = [
    ("Account", &["BillingAddress", "ShippingAddress"]),
    ("Contact", &["MailingAddress"]),
    ("Lead", &["Address"]),
    ("Invoice__c", &["Geo__c"]),
];

/// Options whose planner sends every counted object to REST (`rest_max_rows` huge) or to Bulk (0).
fn options(rest_max_rows: u64) -> ReadOptions {
    ReadOptions {
        planner: PlannerConfig {
            rest_max_rows,
            ..PlannerConfig::default()
        },
        ..fast_options()
    }
}

/// Every record of `stream` exactly as emitted (no normalisation), by Id.
fn by_id(sink: &MemorySink, stream: &str) -> BTreeMap<String, Map<String, Value>> {
    sink.records(stream)
        .into_iter()
        .map(|r| (r.id().unwrap().to_string(), r.to_json()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_and_locations_read_through_bulk_equal_rests() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(
        OBJECTS
            .iter()
            .fold(org_config(41), |org, object| org.rows(object, 150)),
        json!({}),
    )
    .await;
    let control = org.control();
    let configured = configure(&catalog, &OBJECTS, Some("full_refresh"));
    let read = |rest_max_rows| {
        let (session, config, configured) = (&session, &config, &configured);
        async move {
            let (result, sink) = run(
                session,
                config,
                configured,
                &InputState::default(),
                &options(rest_max_rows),
            )
            .await;
            (result.unwrap(), sink)
        }
    };
    let before = control.stats().requests;
    let (rest_summary, rest) = read(u64::MAX).await;
    assert_eq!(control.stats().requests.bulk_create, before.bulk_create);
    let (bulk_summary, bulk) = read(0).await;
    assert_eq!(
        control.stats().requests.bulk_create - before.bulk_create,
        OBJECTS.len() as u64
    );
    for (object, compounds) in COMPOUNDS {
        let api = |summary: &sf_sync::SyncSummary| {
            summary
                .streams
                .iter()
                .find(|s| s.stream == object)
                .unwrap()
                .api
        };
        assert_eq!(api(&rest_summary), Some(Api::Rest), "{object}");
        assert_eq!(api(&bulk_summary), Some(Api::Bulk), "{object}");
        let (from_rest, from_bulk) = (by_id(&rest, object), by_id(&bulk, object));
        assert!(from_rest.len() > 10, "{object}: {}", from_rest.len());
        assert_eq!(from_rest.len(), from_bulk.len(), "{object}");
        let mut objects = 0;
        for (id, record) in &from_rest {
            let other = &from_bulk[id];
            // The same columns in the same order, the same values.
            assert_eq!(
                record.keys().collect::<Vec<_>>(),
                other.keys().collect::<Vec<_>>(),
                "{object} {id}"
            );
            assert_eq!(record, other, "{object} {id}");
            for compound in compounds {
                match &record[*compound] {
                    Value::Object(_) => objects += 1,
                    Value::Null => {}
                    other => panic!("{object} {id} {compound}: {other}"),
                }
            }
        }
        assert!(objects > 0, "{object}: no compound value");
        let spec = catalog.stream(object).unwrap();
        assert_matches_truth(
            object,
            &latest(&[&bulk], object, spec),
            &truth(&control, spec),
        );
        // The log says which API and why.
        let line = bulk
            .logs()
            .into_iter()
            .find(|(level, m)| {
                *level == LogLevel::Info
                    && m.starts_with(&format!("{object}: full refresh through BULK"))
            })
            .map(|(_, m)| m.to_string())
            .unwrap();
        for compound in compounds {
            assert!(line.contains(&format!("`{compound}`")), "{line}");
        }
        assert!(line.contains("rebuilt as REST shows them"), "{line}");
    }
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compound_not_selected_is_not_emitted_and_base64_keeps_rest() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(org_config(42), json!({})).await;
    // Account with only its billing address: the components are selected for it, and left out.
    let mut configured = configure(&catalog, &["Account"], Some("full_refresh"));
    configured.streams[0].selected_fields = Some(
        ["Id", "Name", "BillingAddress"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    let (result, sink) = run(
        &session,
        &config,
        &configured,
        &InputState::default(),
        &options(0),
    )
    .await;
    assert_eq!(result.unwrap().streams[0].api, Some(Api::Bulk));
    let records = sink.records("Account");
    assert!(!records.is_empty());
    for record in records {
        let mut keys: Vec<&str> = record.columns.iter().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "BillingAddress",
                "Id",
                "IsDeleted",
                "Name",
                "SystemModstamp"
            ]
        );
    }
    // An object with a base64 field still needs REST, whatever its volume.
    let base64 = catalog
        .streams
        .iter()
        .find(|s| {
            !sf_bulk::is_bulk_unsupported(&s.name)
                && s.fields
                    .iter()
                    .any(|f| f.field_type == sf_discovery::FieldType::Base64)
        })
        .unwrap();
    let configured = configure(&catalog, &[base64.name.as_str()], Some("full_refresh"));
    let (result, sink) = run(
        &session,
        &config,
        &configured,
        &InputState::default(),
        &options(0),
    )
    .await;
    assert_eq!(result.unwrap().streams[0].api, Some(Api::Rest));
    let logs = sink.logs();
    assert!(
        logs.iter().any(|(_, m)| m.contains(&format!(
            "{}: read through REST: the Bulk API cannot select `Body` (base64",
            base64.name
        ))),
        "{logs:?}"
    );
    org.shutdown().await;
}
