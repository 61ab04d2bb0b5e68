//! The state of a sync stopped inside a Bulk job: the next day's sync continues the job at the
//! page after the last one emitted (no job whose results were partly emitted is created again),
//! and the state stays readable by Airbyte's source-salesforce 2.10.3, whose state rules are
//! replayed here.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use fixtures::Faults;
use serde_json::{json, Value};
use sf_sync::plan::PlannerConfig;
use sf_sync::{InputState, LogLevel, ReadOptions, SavedState, StreamStatus};

/// Airbyte's reading of a stream state, as source-salesforce 2.10.3 does it through the CDK's
/// `ConcurrentCursor` and `IsoMillisConcurrentStreamStateConverter(is_sequential_state=False)`.
///
/// Facts (reference file §6.4; the CDK's `abstract_stream_state_converter.py` and
/// `datetime_stream_state_converter.py`). Checked against the pin: 2.10.3 requires
/// `airbyte-cdk >=7.23.5,<8`, and in the CDK's repository (airbytehq/airbyte-python-cdk) those
/// two files and `streams/concurrent/cursor.py` have no commit from tag v7.23.5 to the head of
/// 2026-08-21, so every CDK release the pin admits (7.39.1 among them) reads states by the same
/// code, which the rules below were read from (sure for the files named; the connector's own
/// code in between is the reference file's reading of the 2.10.3 wheel):
/// 1. A state is "date-range" (concurrent) when it is non-empty and its `state_type` is
///    `"date-range"` or `"integer"`; anything else is a sequential (legacy) state.
/// 2. A date-range state is deserialized slice by slice over `state.get("slices", [])`: each
///    slice's `start` and `end` are required (a missing key is a `KeyError`) and parsed as
///    datetimes; `most_recent_cursor_value` is parsed when the key is present (a `null` there
///    fails to parse). No other key of the state or of a slice is read.
/// 3. Slices are merged after sorting by `(start, end)`: a slice starting at most one cursor
///    granularity (1 ms) after the previous end joins it, keeping the larger end and most recent
///    value.
/// 4. A sequential state `{cursor: value}` migrates to one slice `{start: config start, end:
///    max(start, value), most_recent_cursor_value: max(start, value)}`.
/// 5. The state Airbyte writes back holds only `slices` (each `start`, `end` and, when set,
///    `most_recent_cursor_value`, as `YYYY-MM-DDTHH:MM:SS.mmmZ`) and `state_type`: other keys
///    are dropped.
/// 6. Reading a date-range state with no slice fails the stream: the cursor's `stream_slices`
///    indexes `slices[0]` (`IndexError: list index out of range`; seen running 2.10.3 on
///    CDK 7.39.1 against the emulated org), and the state it writes back is as empty, so every
///    later sync fails too. sfconnect therefore never writes `"slices": []` (an empty slice at
///    the start date instead, which both read as covering nothing).
fn airbyte_read(
    state: &Value,
    cursor: &str,
    start: DateTime<Utc>,
) -> Result<Vec<AirbyteSlice>, String> {
    let compatible = state.as_object().is_some_and(|o| !o.is_empty())
        && matches!(state["state_type"].as_str(), Some("date-range" | "integer"));
    if !compatible {
        let value = match state.get(cursor) {
            Some(v) => Some(parse(v)?),
            None => None,
        };
        let sync_start = value.filter(|v| *v >= start).unwrap_or(start);
        return Ok(vec![AirbyteSlice {
            start,
            end: sync_start,
            most_recent: Some(sync_start),
        }]);
    }
    let listed = state.get("slices").and_then(Value::as_array);
    if listed.is_none_or(|l| l.is_empty()) {
        return Err("IndexError: list index out of range".to_string());
    }
    let mut slices = Vec::new();
    for slice in listed.into_iter().flatten() {
        let key = |k: &str| slice.get(k).ok_or_else(|| format!("KeyError: {k}"));
        let most_recent = match slice.get("most_recent_cursor_value") {
            Some(v) => Some(parse(v)?),
            None => None,
        };
        slices.push(AirbyteSlice {
            start: parse(key("start")?)?,
            end: parse(key("end")?)?,
            most_recent,
        });
    }
    slices.sort_by_key(|s| (s.start, s.end));
    let mut merged: Vec<AirbyteSlice> = Vec::new();
    for s in slices {
        match merged.last_mut() {
            Some(last) if last.end + TimeDelta::milliseconds(1) >= s.start => {
                last.end = last.end.max(s.end);
                last.most_recent = last.most_recent.max(s.most_recent);
            }
            _ => merged.push(s),
        }
    }
    Ok(merged)
}

/// Airbyte's state as it writes it back (rule 5).
fn airbyte_write(slices: &[AirbyteSlice]) -> Value {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    json!({
        "slices": slices.iter().map(|s| {
            let mut v = json!({"start": fmt(s.start), "end": fmt(s.end)});
            if let Some(m) = s.most_recent {
                v["most_recent_cursor_value"] = json!(fmt(m));
            }
            v
        }).collect::<Vec<_>>(),
        "state_type": "date-range",
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AirbyteSlice {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    most_recent: Option<DateTime<Utc>>,
}

fn parse(value: &Value) -> Result<DateTime<Utc>, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("cannot parse {value} as a datetime"))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text}: {e}"))
}

/// One Bulk window over Account, pages of 50 rows.
fn options() -> ReadOptions {
    ReadOptions {
        planner: PlannerConfig {
            rest_max_rows: 0,
            bulk_rows_per_window: 100_000,
            ..PlannerConfig::default()
        },
        bulk_max_records: Some(50),
        bulk_jobs_in_flight: 1,
        ..fast_options()
    }
}

/// A Bulk sync of Account cut by the daily limit inside its job; the state it ends with.
async fn cut_inside_a_job(c: &Connected) -> (Value, sf_sync::MemorySink) {
    let control = c.org.control();
    let configured = configure(&c.catalog, &["Account"], Some("incremental"));
    let used = control.stats().api_usage.used;
    control.set_faults(Faults {
        daily_api_limit: used + 12,
        ..Faults::default()
    });
    let (result, sink) = run(
        &c.session,
        &c.config,
        &configured,
        &InputState::default(),
        &options(),
    )
    .await;
    result.unwrap();
    let state = sink.last_state("Account").unwrap().clone();
    (state, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cut_by_the_limit_continues_its_job_the_next_day() {
    let c = connect(org_config(61).rows("Account", 900), json!({})).await;
    let control = c.org.control();
    let (state, sink1) = cut_inside_a_job(&c).await;
    let emitted = sink1.records("Account").len();
    assert!(emitted > 0 && emitted < 900, "{emitted} records");
    // The state names the job, at the page after the last one emitted.
    let jobs = state["bulk_jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{state}");
    let job = &jobs[0];
    let job_id = job["job_id"].as_str().unwrap().to_string();
    assert!(job["locator"].is_string(), "{state}");
    assert!(job["rows_done"].as_u64().unwrap() > 0);
    assert!(job["rows_done"].as_u64().unwrap() <= emitted as u64);

    // The next day.
    control.advance_clock(86_400);
    control.set_faults(Faults::default());
    let created_before = control.stats().requests.bulk_create;
    let configured = configure(&c.catalog, &["Account"], Some("incremental"));
    let input = InputState::from_value(&json!({ "Account": state })).unwrap();
    let (result, sink2) = run(&c.session, &c.config, &configured, &input, &options()).await;
    let summary = result.unwrap();
    assert_eq!(summary.streams[0].status, StreamStatus::Complete);
    assert!(sink2
        .logs()
        .iter()
        .any(|(level, m)| *level == LogLevel::Info
            && m.contains(&format!("continuing Bulk job {job_id}"))));
    // The cut job is not created again (the day since holds no row: counted, read through REST).
    let created = control.stats().requests.bulk_create - created_before;
    assert_eq!(created, 0, "{:?}", sink2.logs());
    // Rows after the job's locator are read once; the union is the org.
    let spec = c.catalog.stream("Account").unwrap();
    assert_matches_truth(
        "Account",
        &latest(&[&sink1, &sink2], "Account", spec),
        &truth(&control, spec),
    );
    // The final state names no job.
    assert!(sink2
        .last_state("Account")
        .unwrap()
        .get("bulk_jobs")
        .is_none());
    c.org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_gone_is_created_again_and_the_log_says_why() {
    let c = connect(org_config(62).rows("Account", 900), json!({})).await;
    let control = c.org.control();
    let (state, sink1) = cut_inside_a_job(&c).await;
    let job_id = state["bulk_jobs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    control.set_faults(Faults::default());
    // Salesforce deletes jobs after seven days; this one is deleted now.
    c.session
        .fetch(sf_auth::Request::delete(format!("jobs/query/{job_id}")))
        .await
        .unwrap();
    let created_before = control.stats().requests.bulk_create;
    let configured = configure(&c.catalog, &["Account"], Some("incremental"));
    let input = InputState::from_value(&json!({ "Account": state })).unwrap();
    let (result, sink2) = run(&c.session, &c.config, &configured, &input, &options()).await;
    result.unwrap();
    assert!(
        sink2
            .logs()
            .iter()
            .any(|(level, m)| *level == LogLevel::Warn
                && m.contains(&format!("Bulk job {job_id} is gone"))
                && m.contains("creating a new job")),
        "{:?}",
        sink2.logs()
    );
    assert!(control.stats().requests.bulk_create > created_before);
    let spec = c.catalog.stream("Account").unwrap();
    assert_matches_truth(
        "Account",
        &latest(&[&sink1, &sink2], "Account", spec),
        &truth(&control, spec),
    );
    c.org.shutdown().await;
}

/// A job the state names that cannot be continued (made for another query: the selected
/// fields, the API version or the deleted-rows setting changed) is the connector's own: it is
/// deleted, not left on the org, and the log says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_for_another_query_is_deleted_and_created_again() {
    let c = connect(org_config(64).rows("Account", 900), json!({})).await;
    let control = c.org.control();
    let (mut state, sink1) = cut_inside_a_job(&c).await;
    let job_id = state["bulk_jobs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    control.set_faults(Faults::default());
    assert!(jobs_on_org(&c.session)
        .await
        .iter()
        .any(|(id, _)| *id == job_id));
    state["bulk_jobs"][0]["query"] = json!("a-query-hash-of-another-query");
    let configured = configure(&c.catalog, &["Account"], Some("incremental"));
    let input = InputState::from_value(&json!({ "Account": state })).unwrap();
    let (result, sink2) = run(&c.session, &c.config, &configured, &input, &options()).await;
    result.unwrap();
    assert!(
        sink2.logs().iter().any(|(_, m)| m
            .contains(&format!("Bulk job {job_id} was created for another query"))
            && m.contains("deleted")
            && m.contains("creating a new job")),
        "{:?}",
        sink2.logs()
    );
    let left: Vec<(String, String)> = jobs_on_org(&c.session).await;
    assert!(left.iter().all(|(id, _)| *id != job_id), "{left:?}");
    let spec = c.catalog.stream("Account").unwrap();
    assert_matches_truth(
        "Account",
        &latest(&[&sink1, &sink2], "Account", spec),
        &truth(&control, spec),
    );
    c.org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airbyte_reads_a_mid_job_state_and_sfconnect_reads_airbytes() {
    let c = connect(org_config(63).rows("Account", 900), json!({})).await;
    let (state, _) = cut_inside_a_job(&c).await;
    assert!(state.get("bulk_jobs").is_some());
    let start = c.config.start_date;
    // Airbyte accepts it: the same slices sfconnect reads.
    let theirs = airbyte_read(&state, "SystemModstamp", start).unwrap();
    let ours = match SavedState::from_value("Account", &state).unwrap() {
        SavedState::DateRange(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(ours.jobs().len(), 1);
    let ours_slices: Vec<AirbyteSlice> = ours
        .slices()
        .iter()
        .map(|s| AirbyteSlice {
            start: s.start,
            end: s.end,
            most_recent: s.most_recent_cursor_value,
        })
        .collect();
    // What each covers: an empty slice (Airbyte's placeholder, which sfconnect writes while no
    // window is read) covers nothing.
    let covering: Vec<AirbyteSlice> = theirs.iter().filter(|s| s.start < s.end).cloned().collect();
    assert_eq!(covering, ours_slices);
    // The placeholder sits at the start date: Airbyte reads from there, as sfconnect does.
    assert!(theirs.iter().all(|s| s.start >= start), "{theirs:?}");
    assert!(!theirs.is_empty());
    // What Airbyte writes back (the jobs dropped) is read by sfconnect: the same slices, no job.
    let written = airbyte_write(&theirs);
    let back = match SavedState::from_value("Account", &written).unwrap() {
        SavedState::DateRange(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(back.slices(), ours.slices());
    assert!(back.jobs().is_empty());
    // A mid-window REST state ({start, end: last cursor emitted}) is read alike by both.
    let partial = json!({"state_type": "date-range", "slices": [
        {"start": "2021-01-01T00:00:00.000Z", "end": "2023-05-06T07:08:09.000Z",
         "most_recent_cursor_value": "2023-05-06T07:08:08.000Z"}]});
    let theirs = airbyte_read(&partial, "SystemModstamp", start).unwrap();
    assert_eq!(theirs.len(), 1);
    assert!(theirs[0].most_recent.unwrap() < theirs[0].end);
    // Airbyte's own legacy and date-range states still migrate.
    let legacy = json!({"SystemModstamp": "2023-03-01T00:00:00.000Z"});
    let migrated = SavedState::from_value("Account", &legacy)
        .unwrap()
        .resolve("Account", "SystemModstamp", start)
        .unwrap();
    let theirs = airbyte_read(&legacy, "SystemModstamp", start).unwrap();
    assert_eq!(migrated.slices().len(), 1);
    assert_eq!(migrated.slices()[0].start, theirs[0].start);
    assert_eq!(migrated.slices()[0].end, theirs[0].end);
    assert_eq!(
        migrated.slices()[0].most_recent_cursor_value,
        theirs[0].most_recent
    );
    let airbyte_range = json!({"state_type": "date-range", "slices": [
        {"start": "2021-01-01T00:00:00.000Z", "end": "2023-04-01T00:00:00.000Z"},
        {"start": "2023-04-01T00:00:00.001Z", "end": "2023-05-01T00:00:00.000Z",
         "most_recent_cursor_value": "2023-04-30T23:59:59.000Z"}]});
    let resolved = SavedState::from_value("Account", &airbyte_range)
        .unwrap()
        .resolve("Account", "SystemModstamp", start)
        .unwrap();
    assert!(resolved.jobs().is_empty());
    let theirs = airbyte_read(&airbyte_range, "SystemModstamp", start).unwrap();
    // Airbyte joins slices 1 ms apart; sfconnect keeps the millisecond between them unread.
    assert_eq!(theirs.len(), 1);
    assert_eq!(resolved.slices().last().unwrap().end, theirs[0].end);
    // Rule 6: a date-range state without a slice fails Airbyte's stream.
    assert!(airbyte_read(
        &json!({"state_type": "date-range", "slices": []}),
        "SystemModstamp",
        start
    )
    .is_err());
    // Rule 2: a slice without `end` is refused by Airbyte (so sfconnect never writes one).
    assert!(airbyte_read(
        &json!({"state_type": "date-range", "slices": [{"start": "2021-01-01T00:00:00.000Z"}]}),
        "SystemModstamp",
        start
    )
    .is_err());
    c.org.shutdown().await;
}

/// A state saying rows of a page were emitted, with the `Id` of the last of them, where the page
/// read again has another row at that place (the stopped sync got the page with a row missing
/// before it): the page is emitted whole again, with a WARN, and no row is skipped unseen. With
/// more rows said than the page holds now (read with smaller pages), the skip runs into the next
/// page; the state then counts again from the page where the skip began, so a stop there loses
/// nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_skipped_rows_are_not_the_ones_emitted_is_emitted_whole() {
    for (seed, said) in [(64, 5u64), (65, 70)] {
        let c = connect(org_config(seed).rows("Account", 900), json!({})).await;
        let control = c.org.control();
        let (mut state, sink1) = cut_inside_a_job(&c).await;
        // As if the stopped sync had emitted `said` rows from the locator, the last of them a
        // row that is not there now: those rows were never emitted here.
        let job = &mut state["bulk_jobs"][0];
        let locator = job["locator"].clone();
        job["page_rows_emitted"] = json!(said);
        job["page_last_id"] = json!("001000000000000AAA");
        control.advance_clock(86_400);
        control.set_faults(Faults::default());
        let configured = configure(&c.catalog, &["Account"], Some("incremental"));
        let input = InputState::from_value(&json!({ "Account": state })).unwrap();
        let (result, sink2) = run(&c.session, &c.config, &configured, &input, &options()).await;
        assert_eq!(result.unwrap().streams[0].status, StreamStatus::Complete);
        let warned: Vec<_> = sink2
            .logs()
            .into_iter()
            .filter(|(level, m)| {
                *level == LogLevel::Warn && m.contains("the page is emitted whole again")
            })
            .collect();
        assert_eq!(warned.len(), 1, "{:?}", sink2.logs());
        assert!(
            warned[0]
                .1
                .contains(&format!("the {said} rows from its page at")),
            "{}",
            warned[0].1
        );
        // After the WARN, a state names the page the skip began at, none of it emitted.
        let restarted = sink2.states("Account").into_iter().any(|s| {
            s["bulk_jobs"][0]["locator"] == locator
                && s["bulk_jobs"][0]["page_rows_emitted"] == json!(0)
        });
        assert!(restarted, "{:?}", sink2.states("Account"));
        let spec = c.catalog.stream("Account").unwrap();
        assert_matches_truth(
            "Account",
            &latest(&[&sink1, &sink2], "Account", spec),
            &truth(&control, spec),
        );
        c.org.shutdown().await;
    }
}
