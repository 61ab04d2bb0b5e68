#![allow(clippy::unwrap_used)]
//! A config without `start_date`: a first incremental sync reads from the default (two years
//! back, as Airbyte's connector does) and leaves older rows unread; the read says so once, in a
//! WARN naming the streams that start without a state. Full-refresh streams, streams that
//! continue a state, and a config that sets `start_date` get no such WARN. A config that sets
//! `stream_slice_step` is told once, in an INFO, that it sizes windows only where the volume is
//! unknown.

mod common;

use chrono::{DateTime, Months, Utc};
use common::{configure, connect, org_config, run_from, States};
use serde_json::json;
use sf_sync::{LogLevel, MemorySink};

/// The WARN lines about the default start date.
fn default_start_warnings(sink: &MemorySink) -> Vec<String> {
    sink.logs()
        .into_iter()
        .filter(|(level, line)| {
            *level == LogLevel::Warn && line.starts_with("start_date is not set")
        })
        .map(|(_, line)| line.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_from_the_default_start_date_says_what_it_leaves_unread() {
    let c = connect(org_config(91), json!({"start_date": null})).await;
    assert!(!c.config.start_date_set);
    let now = c.org.control().now();
    let default_start = now.checked_sub_months(Months::new(24)).unwrap();
    assert_eq!(c.config.start_date, default_start);
    // The org holds Accounts changed before the default start: they are what goes unread.
    let older = c
        .org
        .control()
        .truth("Account")
        .iter()
        .filter(|row| {
            let stamp: DateTime<Utc> = row["SystemModstamp"].as_str().unwrap().parse().unwrap();
            stamp < default_start
        })
        .count();
    assert!(older > 0, "the org has rows older than the default start");

    let mut catalog = configure(&c.catalog, &["Account", "Contact"], Some("incremental"));
    let full = configure(&c.catalog, &["Lead"], Some("full_refresh"));
    catalog.streams.extend(full.streams);
    let mut states = States::default();
    let (result, first) = run_from(&c, &catalog, &states).await;
    result.unwrap();
    let warnings = default_start_warnings(&first);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let stamp = default_start.format("%Y-%m-%dT%H:%M:%S").to_string();
    for words in [
        "first incremental sync of 2 streams (Account, Contact)",
        stamp.as_str(),
        "2 years back",
        "not read until start_date is set earlier",
        "a later sync then reads back to it",
    ] {
        assert!(warnings[0].contains(words), "{words}: {}", warnings[0]);
    }
    assert!(!warnings[0].contains("Lead"), "{}", warnings[0]);
    let read = first.records("Account").len();
    assert_eq!(
        read + older,
        c.org.control().truth("Account").len(),
        "every Account changed since the default start, none before it"
    );

    // The next sync continues the states: nothing more to say.
    states.update(&first, &["Account", "Contact"]);
    let (result, next) = run_from(&c, &catalog, &states).await;
    result.unwrap();
    assert_eq!(default_start_warnings(&next), Vec::<String>::new());
    states.update(&next, &["Account", "Contact"]);

    // As the WARN says, an earlier start_date set later reads the rows before the default.
    let earlier = common::sync_config(&c.org, json!({"start_date": "2000-01-01"}));
    let (result, back) = common::run(
        &c.session,
        &earlier,
        &catalog,
        &states.input(),
        &common::fast_options(),
    )
    .await;
    result.unwrap();
    assert_eq!(default_start_warnings(&back), Vec::<String>::new());
    let before_default = back
        .records("Account")
        .iter()
        .filter(|r| {
            let stamp: DateTime<Utc> = r
                .get("SystemModstamp")
                .unwrap()
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            stamp < default_start
        })
        .count();
    assert_eq!(
        before_default, older,
        "the rows before the default, read back"
    );
    c.org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_with_a_start_date_gets_no_such_warning() {
    let c = connect(org_config(92), json!({})).await;
    assert!(c.config.start_date_set);
    let catalog = configure(&c.catalog, &["Account"], Some("incremental"));
    let (result, sink) = run_from(&c, &catalog, &States::default()).await;
    result.unwrap();
    assert_eq!(default_start_warnings(&sink), Vec::<String>::new());
    c.org.shutdown().await;
}

/// A config that sets `stream_slice_step` is told, once per read, that the step sizes windows
/// only where the volume is unknown; the default step says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_stream_slice_step_is_explained_once() {
    let step_notes = |sink: &MemorySink| -> Vec<String> {
        sink.logs()
            .into_iter()
            .filter(|(level, line)| {
                *level == LogLevel::Info && line.starts_with("stream_slice_step is ")
            })
            .map(|(_, line)| line.to_string())
            .collect()
    };
    let c = connect(org_config(93), json!({"stream_slice_step": "P7D"})).await;
    let catalog = configure(&c.catalog, &["Account", "Contact"], Some("incremental"));
    let (result, sink) = run_from(&c, &catalog, &States::default()).await;
    result.unwrap();
    let notes = step_notes(&sink);
    assert_eq!(notes.len(), 1, "{notes:?}");
    for words in [
        "stream_slice_step is P7D",
        "only for objects whose volume is unknown",
        "up to 100000 through REST, 500000 a Bulk job",
        "read again in halves",
    ] {
        assert!(notes[0].contains(words), "{words}: {}", notes[0]);
    }
    c.org.shutdown().await;

    let c = connect(org_config(94), json!({"stream_slice_step": "P30D"})).await;
    let catalog = configure(&c.catalog, &["Account"], Some("incremental"));
    let (result, sink) = run_from(&c, &catalog, &States::default()).await;
    result.unwrap();
    assert_eq!(step_notes(&sink), Vec::<String>::new());
    c.org.shutdown().await;
}
