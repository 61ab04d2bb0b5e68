//! The foundations against the emulated org: a config logs in, the org's clock bounds the windows,
//! a `COUNT()` sizes the plan, the planned windows read exactly the ground truth, and the state
//! they leave makes the next sync catch every insert, update and delete (and nothing past the
//! hold-back). Queries are written here by hand; the engine will send them through `sf-rest` and
//! `sf-bulk`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use fixtures::{EmulatedOrg, Mutation, OrgConfig, OrgControl, Scale};
use serde_json::{json, Value};
use sf_auth::Session;
use sf_sync::plan::{
    plan_windows, uncovered_spans, ApiConstraint, PlannerConfig, SpanCount, Volume, Window,
    WindowParams,
};
use sf_sync::{Api, InputState, StreamState, SyncConfig};

const OBJECT: &str = "Account";
const CURSOR: &str = "SystemModstamp";

fn clock_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap()
}

async fn start_org() -> EmulatedOrg {
    let config = OrgConfig::new(21, Scale::Tiny)
        .clock_start(clock_start())
        .rows(OBJECT, 450)
        .default_batch_size(200);
    EmulatedOrg::start(config).await.unwrap()
}

fn sync_config(org: &EmulatedOrg, extra: Value) -> SyncConfig {
    let login = org.login_info();
    let mut config = json!({
        "client_id": login.client_id, "client_secret": login.client_secret,
        "refresh_token": login.refresh_token, "login_url": login.login_url,
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let parsed = SyncConfig::from_value(&config, org.control().now()).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    parsed.config
}

fn literal(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn filter(window: Window) -> String {
    format!(
        "{CURSOR} >= {} AND {CURSOR} < {}",
        literal(window.start),
        literal(window.end)
    )
}

async fn count(session: &Session, window: Window) -> u64 {
    let soql = format!("SELECT COUNT() FROM {OBJECT} WHERE {}", filter(window));
    let page: Value = session.get_json("queryAll", &[("q", &soql)]).await.unwrap();
    page["totalSize"].as_u64().unwrap()
}

/// Reads one window through `queryAll`, following `nextRecordsUrl`.
async fn read(session: &Session, window: Window) -> Vec<Value> {
    let soql = format!(
        "SELECT Id, IsDeleted, {CURSOR} FROM {OBJECT} WHERE {}",
        filter(window)
    );
    let mut page: Value = session.get_json("queryAll", &[("q", &soql)]).await.unwrap();
    let mut records = Vec::new();
    loop {
        records.extend(page["records"].as_array().unwrap().iter().cloned());
        if page["done"] == json!(true) {
            return records;
        }
        let next = page["nextRecordsUrl"].as_str().unwrap().to_string();
        page = session.get_json(&next, &[]).await.unwrap();
    }
}

fn stamp(row: &Value) -> DateTime<Utc> {
    DateTime::parse_from_str(row[CURSOR].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap()
        .with_timezone(&Utc)
}

fn ids(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect()
}

fn truth_in(control: &OrgControl, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Value> {
    control
        .truth(OBJECT)
        .into_iter()
        .filter(|r| (from..to).contains(&stamp(r)))
        .collect()
}

/// Reads every planned window and records it in `state`, as the engine will after emitting a
/// window's records; returns the rows read.
async fn sync_windows(
    session: &Session,
    state: &mut StreamState,
    windows: impl Iterator<Item = Window>,
) -> Vec<Value> {
    let mut all = Vec::new();
    for window in windows {
        let rows = read(session, window).await;
        let most_recent = rows.iter().map(stamp).max();
        assert!(rows.iter().all(|r| window.contains(stamp(r))));
        all.extend(rows);
        state.add(window.to_slice(most_recent));
    }
    all
}

#[tokio::test]
async fn planned_windows_read_the_truth_and_the_state_resumes() {
    let org = start_org().await;
    let control = org.control();
    let config = sync_config(&org, json!({}));
    let session = Session::login(config.session_config()).await.unwrap();
    let planner = PlannerConfig::default();

    // First sync: the org's clock (minus the hold-back) bounds two years of cursor time.
    let _: Value = session.get_json("limits", &[]).await.unwrap();
    let params = WindowParams::new(&config, session.org_now());
    let org_now = control.now();
    assert!(
        params.now <= org_now - chrono::TimeDelta::seconds(4),
        "{}",
        params.now
    );
    assert!(
        params.now >= org_now - chrono::TimeDelta::seconds(6),
        "{}",
        params.now
    );
    assert_eq!(
        config.start_date,
        Utc.with_ymd_and_hms(2022, 6, 1, 0, 0, 0).unwrap()
    );

    let mut state = StreamState::new();
    let spans = uncovered_spans(&state, &params);
    assert_eq!(spans, [Window::new(config.start_date, params.now)]);
    assert!(planner.needs_count(&spans, &Volume::Unknown));
    let counted = count(&session, spans[0]).await;
    let expected = truth_in(&control, spans[0].start, spans[0].end);
    assert_eq!(counted, expected.len() as u64);
    assert!(
        counted > 200,
        "the test needs more than one page: {counted}"
    );
    let plan = planner.plan(
        &spans,
        &Volume::Counted(vec![SpanCount {
            span: spans[0],
            rows: counted,
        }]),
        config.stream_slice_step.as_std(),
        ApiConstraint::Any,
    );
    // A small object: one REST window instead of 25 Bulk jobs.
    assert_eq!(plan.api, Api::Rest);
    assert_eq!(plan.windows().count(), 1);
    let before = control.stats().requests;
    let first = sync_windows(&session, &mut state, plan.windows()).await;
    let after = control.stats().requests;
    assert_eq!(after.query - before.query, 1);
    assert_eq!(
        after.query_more - before.query_more,
        counted.div_ceil(200) - 1
    );
    assert_eq!(ids(&first), ids(&expected));
    assert_eq!(first.len(), expected.len(), "no duplicates within a sync");
    assert_eq!(state.slices().len(), 1);
    assert_eq!(
        state.most_recent_cursor_value(),
        expected.iter().map(stamp).max()
    );

    // The emitted state is what the next run is given.
    let emitted = state.to_json();
    let input = InputState::from_value(&json!([{"type": "STREAM", "stream": {
        "stream_descriptor": {"name": OBJECT}, "stream_state": emitted}}]))
    .unwrap();
    let mut state = input
        .get(OBJECT)
        .cloned()
        .unwrap()
        .resolve(OBJECT, CURSOR, config.start_date)
        .unwrap();

    // An hour later, changes land at the current second: within the hold-back, so not read yet.
    control.advance_clock(3600);
    let changed = control.mutate(Mutation::new(OBJECT).insert(3).update(2).delete(1));
    assert!(changed.errors.is_empty(), "{:?}", changed.errors);
    let _: Value = session.get_json("limits", &[]).await.unwrap();
    let params2 = WindowParams::new(&config, session.org_now());
    let spans = uncovered_spans(&state, &params2);
    let lookback = config.lookback_window.as_chrono();
    assert_eq!(spans, [Window::new(params.now - lookback, params2.now)]);
    // A short tail: no count, REST.
    assert!(!planner.needs_count(&spans, &Volume::Unknown));
    let plan = planner.plan(
        &spans,
        &Volume::Unknown,
        config.stream_slice_step.as_std(),
        ApiConstraint::Any,
    );
    assert_eq!(plan.api, Api::Rest);
    let second = sync_windows(&session, &mut state, plan.windows()).await;
    let changed_ids: BTreeSet<String> = changed
        .inserted
        .iter()
        .chain(&changed.updated)
        .chain(&changed.deleted)
        .cloned()
        .collect();
    assert_eq!(changed_ids.len(), 6);
    assert!(ids(&second).is_disjoint(&changed_ids));

    // A minute later the changes are behind the hold-back: the next sync reads every one of them,
    // deletes as IsDeleted = true.
    control.advance_clock(60);
    let _: Value = session.get_json("limits", &[]).await.unwrap();
    let params3 = WindowParams::new(&config, session.org_now());
    let windows: Vec<Window> = plan_windows(&state, &params3).collect();
    assert_eq!(windows, [Window::new(params2.now - lookback, params3.now)]);
    let third = sync_windows(&session, &mut state, windows.into_iter()).await;
    assert!(changed_ids.is_subset(&ids(&third)), "{changed_ids:?}");
    for row in &third {
        let deleted = changed
            .deleted
            .contains(&row["Id"].as_str().unwrap().to_string());
        assert_eq!(row["IsDeleted"], json!(deleted), "{row}");
    }

    // Across the three syncs, every row of the truth in [start_date, now) was read.
    let all: Vec<Value> = first.into_iter().chain(second).chain(third).collect();
    assert_eq!(
        ids(&all),
        ids(&truth_in(&control, config.start_date, params3.now))
    );
    assert_eq!(
        state.to_json()["slices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["start"].clone(), s["end"].clone()))
            .collect::<Vec<_>>(),
        [(
            json!(literal(config.start_date)),
            json!(literal(params3.now))
        )]
    );
    org.shutdown().await;
}

#[tokio::test]
async fn airbytes_legacy_state_resumes_from_its_value_minus_lookback() {
    let org = start_org().await;
    let control = org.control();
    let config = sync_config(
        &org,
        json!({"start_date": "2023-01-01", "stream_slice_step": "P90D", "lookback_window": "PT1H"}),
    );
    let session = Session::login(config.session_config()).await.unwrap();
    let legacy_value = Utc.with_ymd_and_hms(2024, 1, 15, 12, 0, 0).unwrap();
    let input = InputState::from_value(&json!({
        OBJECT: {CURSOR: "2024-01-15T12:00:00.000Z"},
        "Lead": {"LastModifiedDate": "2024-01-15T12:00:00.000Z"},
    }))
    .unwrap();
    let mut state = input
        .get(OBJECT)
        .cloned()
        .unwrap()
        .resolve(OBJECT, CURSOR, config.start_date)
        .unwrap();
    // Lead's legacy state is on another cursor field than Lead's SystemModstamp: a clear error.
    let err = input
        .get("Lead")
        .cloned()
        .unwrap()
        .resolve("Lead", CURSOR, config.start_date)
        .unwrap_err();
    assert!(err.to_string().contains("stream `Lead`"), "{err}");

    let _: Value = session.get_json("limits", &[]).await.unwrap();
    let params = WindowParams::new(&config, session.org_now());
    let windows: Vec<Window> = plan_windows(&state, &params).collect();
    let from = legacy_value - chrono::TimeDelta::hours(1);
    assert_eq!(windows.first().map(|w| w.start), Some(from));
    assert_eq!(windows.last().map(|w| w.end), Some(params.now));
    assert_eq!(windows.len(), 2, "{windows:?}"); // 4.5 months in 90-day steps
    let rows = sync_windows(&session, &mut state, windows.into_iter()).await;
    assert_eq!(ids(&rows), ids(&truth_in(&control, from, params.now)));
    assert!(!rows.is_empty());
    assert_eq!(
        state.to_json()["slices"][0]["start"],
        json!("2023-01-01T00:00:00.000Z")
    );
    assert_eq!(state.slices().len(), 1);
    org.shutdown().await;
}
