//! The engine end to end against the emulated org: whole syncs compared with the org's ground
//! truth, incremental syncs after changes, eventual consistency, state from Airbyte, and the API
//! choice.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use sf_sync::{Api, InputState, StreamStatus, SyncMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_of_every_stream_equals_the_truth() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(org_config(11), json!({"num_workers": 4})).await;
    let control = org.control();
    // Every discovered stream but the one this user cannot query (ContentDocumentLink included,
    // read by batches of its parent ContentDocument's ids).
    let skipped = ["Restricted_Data__c"];
    assert!(catalog.stream("ContentDocumentLink").is_some());
    let names: Vec<&str> = catalog
        .names()
        .filter(|n| !skipped.contains(n))
        .chain(["Describe"])
        .collect();
    let configured = configure(&catalog, &names, None);
    let (result, sink) = run_fresh(&session, &config, &configured).await;
    let summary = result.unwrap();
    assert!(summary.succeeded());
    assert_eq!(summary.streams.len(), names.len());
    for stream in &summary.streams {
        assert_eq!(stream.status, StreamStatus::Complete, "{}", stream.stream);
    }
    for spec in &catalog.streams {
        if skipped.contains(&spec.name.as_str()) {
            continue;
        }
        let got = latest(&[&sink], &spec.name, spec);
        assert_matches_truth(&spec.name, &got, &truth(&control, spec));
        // Each stream's last message is its status, after its last state.
        let statuses = sink.statuses(&spec.name);
        assert_eq!(
            statuses,
            [
                &StreamStatus::Started,
                &StreamStatus::Running,
                &StreamStatus::Complete
            ],
            "{}",
            spec.name
        );
        let summary = summary
            .streams
            .iter()
            .find(|s| s.stream == spec.name)
            .unwrap();
        assert_eq!(summary.records as usize, sink.records(&spec.name).len());
        if spec.supports_incremental {
            assert_eq!(summary.sync_mode, SyncMode::Incremental);
            let state = sink.last_state(&spec.name).unwrap();
            assert_eq!(state["state_type"], "date-range", "{}", spec.name);
        } else {
            assert_eq!(summary.sync_mode, SyncMode::FullRefresh);
            assert_eq!(
                sink.last_state(&spec.name),
                Some(&json!({"__ab_no_cursor_state_message": true}))
            );
        }
        // Tiny objects are read through REST.
        assert_eq!(summary.api, Some(Api::Rest), "{}", spec.name);
    }
    // The Describe stream: one record per described object.
    let describes = sink.records("Describe");
    assert_eq!(describes.len(), names.len() - 1);
    assert!(describes
        .iter()
        .any(|r| r.get("name") == Some(&json!("Account"))));
    assert!(summary.api_requests.unwrap() > 0);
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_syncs_catch_inserts_updates_and_deletes() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(
        org_config(12).rows("Account", 450).default_batch_size(200),
        json!({}),
    )
    .await;
    let control = org.control();
    let configured = configure(&catalog, &["Account", "Contact"], None);
    let (first, sink1) = run_fresh(&session, &config, &configured).await;
    first.unwrap();
    let state1 = sink1.resume_state().unwrap();

    control.advance_clock(3600);
    let account = control.mutate(
        fixtures::Mutation::new("Account")
            .insert(3)
            .update(2)
            .delete(1),
    );
    let contact = control.mutate(fixtures::Mutation::new("Contact").update(2).delete(1));
    assert!(account.errors.is_empty() && contact.errors.is_empty());
    control.advance_clock(60);

    let before = control.stats();
    let (second, sink2) = run(&session, &config, &configured, &state1, &fast_options()).await;
    let summary = second.unwrap();
    let after = control.stats();
    // The tail since the last sync is short: no COUNT(), one REST query per stream (and one
    // composite call describing both streams), no Bulk job; one getDeleted per stream (hard
    // deletes), both asked in one more composite call.
    assert_eq!(after.requests.query - before.requests.query, 2);
    assert_eq!(after.requests.query_more, before.requests.query_more);
    assert_eq!(after.requests.bulk_create, before.requests.bulk_create);
    assert_eq!(after.requests.composite - before.requests.composite, 2);
    assert_eq!(after.requests.get_deleted - before.requests.get_deleted, 2);
    // The org counts a composite call once: it charges what the session sent, the two
    // composite calls and the two queries, which is what the summary counts.
    assert_eq!(after.api_usage.used - before.api_usage.used, 4);
    assert_eq!(summary.api_requests, Some(4));

    for (stream, changed) in [("Account", &account), ("Contact", &contact)] {
        let spec = catalog.stream(stream).unwrap();
        let got = latest(&[&sink2], stream, spec);
        let want = truth(&control, spec);
        for id in changed.inserted.iter().chain(&changed.updated) {
            assert_eq!(got.get(id), want.get(id), "{stream} {id}");
            assert_eq!(got[id]["IsDeleted"], json!(false));
        }
        for id in &changed.deleted {
            assert_eq!(got[id]["IsDeleted"], json!(true), "{stream} {id}");
            assert_eq!(got.get(id), want.get(id), "{stream} {id}");
        }
        // Across both syncs, the latest version of every row is the truth.
        assert_matches_truth(stream, &latest(&[&sink1, &sink2], stream, spec), &want);
    }
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_visible_late_but_within_the_lookback_are_not_lost() {
    let faults = fixtures::Faults {
        visibility_delay_secs: 120,
        ..fixtures::Faults::default()
    };
    let org = start(org_config(13).faults(faults)).await;
    let control = org.control();
    // The default lookback: 10 minutes, longer than the 2-minute visibility delay.
    let config = sync_config(&org, json!({}));
    let session = login(&config).await;
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    let configured = configure(&catalog, &["Account"], None);
    let spec = catalog.stream("Account").unwrap();
    let mut states = States::default();

    let (first, sink1) = run(
        &session,
        &config,
        &configured,
        &states.input(),
        &fast_options(),
    )
    .await;
    first.unwrap();
    states.update(&sink1, &["Account"]);

    control.advance_clock(600);
    let written = control.mutate(fixtures::Mutation::new("Account").insert(4).update(2));
    assert!(written.errors.is_empty());
    // 30 s later the writes are behind the hold-back but not yet visible to queries.
    control.advance_clock(30);
    let (second, sink2) = run(
        &session,
        &config,
        &configured,
        &states.input(),
        &fast_options(),
    )
    .await;
    second.unwrap();
    states.update(&sink2, &["Account"]);
    let seen2 = latest(&[&sink2], "Account", spec);
    for id in written.inserted.iter() {
        assert!(
            !seen2.contains_key(id),
            "{id} was visible before its delay passed"
        );
    }
    // The second state already reaches past the writes' stamp.
    let end = states.0["Account"]["slices"][0]["end"]
        .as_str()
        .unwrap()
        .to_string();
    let stamped = sf_discovery::normalize_datetime(&written.stamp).unwrap();
    assert!(end > stamped, "{end} <= {stamped}");

    // Later, the next sync re-reads the lookback and finds them.
    control.advance_clock(300);
    let (third, sink3) = run(
        &session,
        &config,
        &configured,
        &states.input(),
        &fast_options(),
    )
    .await;
    third.unwrap();
    let seen3 = latest(&[&sink3], "Account", spec);
    for id in written.inserted.iter().chain(&written.updated) {
        assert!(seen3.contains_key(id), "{id} lost");
    }
    assert_matches_truth(
        "Account",
        &latest(&[&sink1, &sink2, &sink3], "Account", spec),
        &truth(&control, spec),
    );
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airbyte_state_is_migrated_and_windows_resume_where_it_left_off() {
    let Connected {
        org,
        config,
        session,
        catalog,
    } = connect(
        org_config(14).rows("Account", 300).rows("Contact", 300),
        json!({"lookback_window": "PT1H"}),
    )
    .await;
    let control = org.control();
    let configured = configure(&catalog, &["Account", "Contact"], None);
    // Account: Airbyte's legacy state. Contact: its date-range state with a gap.
    let state = InputState::from_value(&json!([
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Account"},
            "stream_state": {"SystemModstamp": "2023-06-15T12:00:00.000Z"}}},
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Contact"},
            "stream_state": {"state_type": "date-range", "slices": [
                {"start": "2021-01-01T00:00:00.000Z", "end": "2022-03-01T00:00:00.000Z"},
                {"start": "2022-09-01T00:00:00.000Z", "end": "2023-09-01T00:00:00.000Z",
                 "most_recent_cursor_value": "2023-08-30T10:00:00.000Z"}]}}},
    ]))
    .unwrap();
    let (result, sink) = run(&session, &config, &configured, &state, &fast_options()).await;
    result.unwrap();
    let upper = "2024-05-31T23:59:55.000Z";
    let t = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let within = |spans: &[(&str, &str)], at: chrono::DateTime<chrono::Utc>| {
        spans.iter().any(|(a, b)| t(a) <= at && at < t(b))
    };
    for (stream, spans) in [
        // From the legacy value minus the lookback.
        ("Account", vec![("2023-06-15T11:00:00Z", upper)]),
        // The gap from its start minus the lookback, and the tail likewise.
        (
            "Contact",
            vec![
                ("2022-02-28T23:00:00Z", "2022-09-01T00:00:00Z"),
                ("2023-08-31T23:00:00Z", upper),
            ],
        ),
    ] {
        let spec = catalog.stream(stream).unwrap();
        let want: std::collections::BTreeMap<_, _> = truth(&control, spec)
            .into_iter()
            .filter(|(_, row)| within(&spans, stamp(row, "SystemModstamp")))
            .collect();
        assert!(!want.is_empty(), "{stream}: the test needs rows to resume");
        let got = latest(&[&sink], stream, spec);
        assert_matches_truth(stream, &got, &want);
        // One slice from the start of what was read before to the org's clock, held back.
        let last = sink.last_state(stream).unwrap();
        assert_eq!(last["state_type"], "date-range");
        let slices = last["slices"].as_array().unwrap();
        assert_eq!(slices.len(), 1, "{stream}: {last}");
        assert_eq!(slices[0]["start"], "2021-01-01T00:00:00.000Z", "{stream}");
        assert_eq!(slices[0]["end"], upper, "{stream}");
    }
    // The legacy value is kept as the slice's most recent cursor value unless a later one was
    // read.
    let account = sink.last_state("Account").unwrap();
    assert!(
        account["slices"][0]["most_recent_cursor_value"]
            .as_str()
            .unwrap()
            >= "2023-06-15T12:00:00.000Z"
    );
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_refresh_reads_the_whole_object_through_either_api() {
    let org = start(org_config(15)).await;
    let control = org.control();
    for (force_bulk, api) in [(false, Api::Rest), (true, Api::Bulk)] {
        let config = sync_config(
            &org,
            json!({"force_use_bulk_api": force_bulk, "start_date": "2024-01-01"}),
        );
        let session = login(&config).await;
        let catalog = sf_sync::discover(&session, &config).await.unwrap();
        let configured = configure(&catalog, &["Opportunity"], Some("full_refresh"));
        let spec = catalog.stream("Opportunity").unwrap();
        let (result, sink) = run_fresh(&session, &config, &configured).await;
        let summary = result.unwrap();
        assert_eq!(summary.streams[0].api, Some(api));
        assert_eq!(summary.streams[0].sync_mode, SyncMode::FullRefresh);
        // The start date does not apply: every row, deleted ones included.
        assert_matches_truth(
            "Opportunity",
            &latest(&[&sink], "Opportunity", spec),
            &truth(&control, spec),
        );
        assert_eq!(
            sink.states("Opportunity"),
            [&json!({"__ab_no_cursor_state_message": true})]
        );
    }
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_name_their_org_and_another_orgs_state_is_refused() {
    let org = start(org_config(17)).await;
    let config = sync_config(&org, json!({}));
    let session = login(&config).await;
    let org_id = session.org_id().unwrap();
    assert_eq!(org_id.len(), 15);
    let catalog = sf_sync::discover(&session, &config).await.unwrap();
    let streams = ["Account", "Lead"];
    let configured = configure(&catalog, &streams, Some("incremental"));

    // A first sync: every state it emits names the org.
    let (result, first) = run_fresh(&session, &config, &configured).await;
    assert!(result.unwrap().succeeded());
    for stream in streams {
        let states = first.states(stream);
        assert!(!states.is_empty(), "{stream}");
        for state in states {
            assert_eq!(state["org_id"], json!(org_id), "{stream}: {state}");
            assert_eq!(state["state_type"], json!("date-range"));
        }
    }

    // Its state, given back, is accepted and read on from.
    let mut states = States::default();
    states.update(&first, &streams);
    let (result, again) = run(
        &session,
        &config,
        &configured,
        &states.input(),
        &fast_options(),
    )
    .await;
    assert!(result.unwrap().succeeded());
    assert!(again.records("Account").len() < first.records("Account").len());

    // Account's state from another org: that stream fails with a config error naming the fix and
    // emits nothing; Lead, whose state names no org (as Airbyte writes it), reads on.
    let mut foreign = states.0.clone();
    foreign["Account"]["org_id"] = json!("00D5e000000AbCd");
    foreign["Lead"].as_object_mut().unwrap().remove("org_id");
    let input = InputState::from_value(&serde_json::Value::Object(foreign)).unwrap();
    let (result, sink) = run(&session, &config, &configured, &input, &fast_options()).await;
    let error = result.unwrap_err();
    assert_eq!(error.failure(), sf_sync::Failure::Config);
    assert_eq!(
        error.to_string(),
        format!(
            "state of stream `Account` belongs to org 00D5e000000AbCd; the config logs in to org \
             {org_id}; use that org's state or start without state"
        )
    );
    assert!(sink.records("Account").is_empty());
    assert!(sink.states("Account").is_empty());
    let summary = sink.final_summary().unwrap();
    let lead = summary.streams.iter().find(|s| s.stream == "Lead").unwrap();
    assert_eq!(lead.status, StreamStatus::Complete);
    // Lead's next state names the org again.
    assert_eq!(sink.last_state("Lead").unwrap()["org_id"], json!(org_id));

    // The same org's id in its 18-character form is the same org.
    let mut long = states.0.clone();
    long["Account"]["org_id"] = json!(format!("{org_id}AAA"));
    let input = InputState::from_value(&serde_json::Value::Object(long)).unwrap();
    let (result, _) = run(&session, &config, &configured, &input, &fast_options()).await;
    assert!(result.unwrap().succeeded());
    org.shutdown().await;
}

/// A successful incremental sync with nothing to read (a `start_date` after the org's clock, no
/// state yet) still ends the stream with a state, as Airbyte's platform expects of a successful
/// sync and its CDK ensures: one slice at `start_date`, which a next sync resumes from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_stream_with_nothing_to_read_still_emits_a_state() {
    let c = common::connect(
        common::org_config(81),
        serde_json::json!({"start_date": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let catalog = common::configure(&c.catalog, &["Account"], Some("incremental"));
    let (result, sink) = common::run_fresh(&c.session, &c.config, &catalog).await;
    assert!(result.unwrap().succeeded());
    assert!(sink.records("Account").is_empty());
    let states = sink.states("Account");
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states[0]["state_type"], "date-range");
    assert_eq!(
        states[0]["slices"],
        serde_json::json!([{"start": "2099-01-01T00:00:00.000Z", "end": "2099-01-01T00:00:00.000Z",
                            "most_recent_cursor_value": "2099-01-01T00:00:00.000Z"}]),
        "{}",
        states[0]
    );
}
