//! State parsing, merging and writing, on every form Airbyte writes.

use super::*;
use chrono::TimeDelta;
use proptest::prelude::*;

fn t(text: &str) -> DateTime<Utc> {
    parse_instant(text).unwrap()
}

fn slice(start: &str, end: &str, mrcv: Option<&str>) -> StateSlice {
    StateSlice {
        start: t(start),
        end: t(end),
        most_recent_cursor_value: mrcv.map(t),
    }
}

#[test]
fn merges_overlapping_and_adjacent_slices() {
    let state = StreamState::from_slices([
        slice("2023-03-01", "2023-04-01", Some("2023-03-30T00:00:00Z")),
        slice("2023-01-01", "2023-02-01", Some("2023-01-31T00:00:00Z")),
        slice("2023-02-01", "2023-02-15", None),
        slice("2023-03-15", "2023-03-20", Some("2023-03-31T00:00:00Z")),
        slice("2023-05-01", "2023-05-01", Some("2023-05-01T00:00:00Z")),
    ]);
    assert_eq!(
        state.slices(),
        &[
            slice("2023-01-01", "2023-02-15", Some("2023-01-31T00:00:00Z")),
            slice("2023-03-01", "2023-04-01", Some("2023-03-31T00:00:00Z")),
        ]
    );
    assert!(state.covers(t("2023-02-01")));
    assert!(!state.covers(t("2023-02-15")));
    assert_eq!(
        state.most_recent_cursor_value(),
        Some(t("2023-03-31T00:00:00Z"))
    );
    assert_eq!(
        state.to_json(),
        json!({"state_type": "date-range", "slices": [
            {"start": "2023-01-01T00:00:00.000Z", "end": "2023-02-15T00:00:00.000Z",
             "most_recent_cursor_value": "2023-01-31T00:00:00.000Z"},
            {"start": "2023-03-01T00:00:00.000Z", "end": "2023-04-01T00:00:00.000Z",
             "most_recent_cursor_value": "2023-03-31T00:00:00.000Z"},
        ]})
    );
    let mut grown = state.clone();
    grown.add(slice("2023-02-15", "2023-03-01", None));
    assert_eq!(grown.slices().len(), 1);
    assert_eq!(grown.slices()[0].end, t("2023-04-01"));
    assert_eq!(
        StreamState::new().to_json(),
        json!({"state_type": "date-range", "slices": []})
    );
}

/// A state written before any span is read holds Airbyte's placeholder slice (an empty list
/// fails Airbyte's cursor), and reads back as covering nothing.
#[test]
fn a_state_with_nothing_read_writes_an_empty_slice_at_the_start_date() {
    let job = |start: &str, end: &str| JobCheckpoint {
        start: t(start),
        end: t(end),
        job_id: "750x".to_string(),
        locator: None,
        rows_done: 0,
        page_rows_emitted: 0,
        page_last_id: None,
        query: "ab".to_string(),
    };
    let state = StreamState::new()
        .with_floor(t("2021-01-01"))
        .with_jobs(vec![job("2022-01-01", "2022-02-01")]);
    let value = state.to_json();
    assert_eq!(
        value["slices"],
        json!([{"start": "2021-01-01T00:00:00.000Z", "end": "2021-01-01T00:00:00.000Z",
                "most_recent_cursor_value": "2021-01-01T00:00:00.000Z"}])
    );
    let back = SavedState::from_value("Account", &value)
        .unwrap()
        .resolve("Account", "SystemModstamp", t("2020-01-01"))
        .unwrap();
    assert!(back.is_empty());
    assert_eq!(back.jobs().len(), 1);
    // Without a floor, the earliest job's start.
    let state = StreamState::new().with_jobs(vec![
        job("2022-03-01", "2022-04-01"),
        job("2022-01-01", "2022-02-01"),
    ]);
    assert_eq!(
        state.to_json()["slices"][0]["start"],
        "2022-01-01T00:00:00.000Z"
    );
    // Once a span is read, only the spans.
    let mut read = StreamState::new().with_floor(t("2021-01-01"));
    read.add(slice("2021-01-01", "2021-06-01", None));
    assert_eq!(
        read.to_json()["slices"],
        json!([{"start": "2021-01-01T00:00:00.000Z", "end": "2021-06-01T00:00:00.000Z"}])
    );
}

#[test]
fn reads_airbytes_date_range_form() {
    let value = json!({"state_type": "date-range", "slices": [
        {"start": "2023-01-01T00:00:00.000Z", "end": "2023-04-01T00:00:00.000Z",
         "most_recent_cursor_value": "2023-03-31T23:59:58.000Z"}],
        "legacy": {"SystemModstamp": "2023-03-31T23:59:58.000Z"}});
    let saved = SavedState::from_value("Account", &value).unwrap();
    let state = saved
        .resolve("Account", "SystemModstamp", t("2020-01-01"))
        .unwrap();
    assert_eq!(
        state.slices(),
        &[slice(
            "2023-01-01",
            "2023-04-01",
            Some("2023-03-31T23:59:58Z")
        )]
    );
    assert_eq!(state.to_json()["slices"], value["slices"]);
}

#[test]
fn migrates_legacy_state() {
    let saved = SavedState::from_value(
        "Account",
        &json!({"SystemModstamp": "2021-10-02T05:08:29.000Z"}),
    )
    .unwrap();
    assert_eq!(
        saved,
        SavedState::Legacy {
            cursor_field: "SystemModstamp".into(),
            value: t("2021-10-02T05:08:29Z")
        }
    );
    let state = saved
        .clone()
        .resolve("Account", "SystemModstamp", t("2021-01-01"))
        .unwrap();
    assert_eq!(
        state.to_json(),
        json!({"state_type": "date-range", "slices": [
            {"start": "2021-01-01T00:00:00.000Z", "end": "2021-10-02T05:08:29.000Z",
             "most_recent_cursor_value": "2021-10-02T05:08:29.000Z"}]})
    );
    // A legacy value before start_date covers nothing.
    let state = saved
        .clone()
        .resolve("Account", "systemmodstamp", t("2022-01-01"))
        .unwrap();
    assert!(state.is_empty());
    // Another cursor field: a clear error naming the stream.
    let err = saved
        .resolve("Account", "LastModifiedDate", t("2021-01-01"))
        .unwrap_err();
    assert_eq!(
        err,
        Error::StateCursorMismatch {
            stream: "Account".into(),
            state_field: "SystemModstamp".into(),
            cursor_field: "LastModifiedDate".into()
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("`Account`") && msg.contains("reset"), "{msg}");
}

#[test]
fn reads_every_whole_state_form() {
    let legacy_slice = json!({"SystemModstamp": "2021-10-02T05:08:29.000Z"});
    let date_range = json!({"state_type": "date-range", "slices": [
        {"start": "2023-01-01T00:00:00.000Z", "end": "2023-02-01T00:00:00.000Z"}]});
    let forms = [
        json!([
            {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Account"},
             "stream_state": legacy_slice}},
            {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Lead", "namespace": null},
             "stream_state": date_range}, "sourceStats": {"recordCount": 3.0}},
        ]),
        json!({"Account": legacy_slice, "Lead": date_range}),
        json!({"type": "LEGACY", "data": {"Account": legacy_slice, "Lead": date_range}}),
        json!({"type": "GLOBAL", "global": {"shared_state": {}, "stream_states": [
            {"stream_descriptor": {"name": "Account"}, "stream_state": legacy_slice},
            {"stream_descriptor": {"name": "Lead"}, "stream_state": date_range}]}}),
        json!([{"type": "LEGACY", "data": {"Account": legacy_slice}},
               {"stream": {"stream_descriptor": {"name": "Lead"}, "stream_state": date_range}}]),
        // Untyped with `data`: LEGACY, the protocol's default type.
        json!([{"data": {"Account": legacy_slice}},
               {"stream": {"stream_descriptor": {"name": "Lead"}, "stream_state": date_range}}]),
        // In a list, a stream's STREAM entry wins over a LEGACY one, before or after it.
        json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "Lead"},
                 "stream_state": date_range}},
               {"type": "LEGACY", "data": {"Account": legacy_slice,
                 "Lead": {"SystemModstamp": "2025-01-01T00:00:00.000Z"}}}]),
    ];
    for form in forms {
        let state = InputState::from_value(&form).unwrap();
        let names: Vec<&str> = state.streams().map(|(n, _)| n).collect();
        assert_eq!(names, ["Account", "Lead"], "{form}");
        assert!(
            matches!(state.get("Account"), Some(SavedState::Legacy { .. })),
            "{form}"
        );
        match state.get("Lead") {
            Some(SavedState::DateRange(s)) => {
                assert_eq!(s.slices(), &[slice("2023-01-01", "2023-02-01", None)])
            }
            other => panic!("{form}: {other:?}"),
        }
    }
    for empty in [json!([]), json!(null), json!({})] {
        assert!(InputState::from_value(&empty).unwrap().is_empty());
    }
    let state = InputState::from_json(
        r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"Task"},"stream_state":{"__ab_no_cursor_state_message":true}}},
            {"type":"STREAM","stream":{"stream_descriptor":{"name":"Note"}}}]"#,
    )
    .unwrap();
    assert_eq!(state.get("Task"), Some(&SavedState::NoCursor));
    assert_eq!(state.get("Note"), Some(&SavedState::Empty));
    assert_eq!(
        full_refresh_state(),
        json!({"__ab_no_cursor_state_message": true})
    );
}

#[test]
fn states_name_their_org_and_another_orgs_is_refused() {
    let state = StreamState::from_slices([slice(
        "2024-01-01T00:00:00.000Z",
        "2024-01-02T00:00:00.000Z",
        Some("2024-01-01T12:00:00.000Z"),
    )])
    .with_org_id(Some("00D000000000062".into()));
    let json = state.to_json();
    assert_eq!(json["org_id"], json!("00D000000000062"));
    // Read back, the org comes with it; adding a slice keeps it.
    let saved = SavedState::from_value("Account", &json).unwrap();
    assert_eq!(saved.org_id(), Some("00D000000000062"));
    let mut back = match saved.clone() {
        SavedState::DateRange(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(back, state);
    back.add(slice(
        "2024-01-02T00:00:00.000Z",
        "2024-01-03T00:00:00.000Z",
        None,
    ));
    assert_eq!(back.org_id(), Some("00D000000000062"));
    assert_eq!(back.slices().len(), 1);
    // The same org (also in its 18-character form), or a session that cannot tell: accepted.
    saved.check_org("Account", Some("00D000000000062")).unwrap();
    saved
        .check_org("Account", Some("00D000000000062AAB"))
        .unwrap();
    saved.check_org("Account", None).unwrap();
    // Another org: refused, naming the stream, both orgs and the fix.
    let error = saved
        .check_org("Account", Some("00D000000000063"))
        .unwrap_err();
    assert_eq!(error.failure(), crate::Failure::Config);
    assert_eq!(
        error.to_string(),
        "state of stream `Account` belongs to org 00D000000000062; the config logs in to org \
         00D000000000063; use that org's state or start without state"
    );
    // Ids differing only in case are different orgs.
    assert!(saved.check_org("Account", Some("00d000000000062")).is_err());
    // Airbyte's states name no org and pass.
    let airbyte = SavedState::from_value(
        "Account",
        &json!({"state_type": "date-range", "slices": []}),
    )
    .unwrap();
    assert_eq!(airbyte.org_id(), None);
    airbyte
        .check_org("Account", Some("00D000000000063"))
        .unwrap();
    let legacy = SavedState::from_value(
        "Account",
        &json!({"SystemModstamp": "2024-01-01T00:00:00Z"}),
    )
    .unwrap();
    legacy
        .check_org("Account", Some("00D000000000063"))
        .unwrap();
    // An org id that is not a string is named.
    let error = SavedState::from_value(
        "Account",
        &json!({"state_type": "date-range", "slices": [], "org_id": 62}),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("stream_state.org_id"), "{error}");
}

#[test]
fn bad_states_name_the_place() {
    for (input, want) in [
        (json!(3), "state parse at `$`: expected a list"),
        (
            json!([{"type": "SHARED"}]),
            "`[0].type`: `SHARED` is not a state type",
        ),
        (
            json!([{"type": "STREAM", "stream": {"stream_state": {}}}]),
            "`[0].stream.stream_descriptor.name`: missing",
        ),
        (json!([7]), "`[0]`: expected a state message object"),
        (
            json!([{"type": "STATE"}]),
            "`[0].state`: a STATE message without its `state` object",
        ),
        (
            json!([{"type": "STATE", "state": {"type": "SHARED"}}]),
            "`[0].state.type`: `SHARED` is not a state type",
        ),
        (
            json!({"Account": {"SystemModstamp": "soon"}}),
            "state of stream `Account` at `$.Account.SystemModstamp`: `soon` is not a datetime",
        ),
        (
            json!({"Account": {"SystemModstamp": 5}}),
            "must be a datetime string, got a number",
        ),
        (
            json!({"Account": {"SystemModstamp": "2021-01-01", "CreatedDate": "2021-01-01"}}),
            "holds one cursor field, this one has 2",
        ),
        (
            json!({"Account": {"state_type": "integer", "slices": []}}),
            "`$.Account.state_type`: \"integer\" is not supported",
        ),
        (
            json!({"Account": {"state_type": "date-range", "slices": [{"start": "2023-01-01"}]}}),
            "`$.Account.slices[0].end`: missing",
        ),
        (
            json!({"Account": {"state_type": "date-range", "slices":
            [{"start": "2023-02-01", "end": "2023-01-01"}]}}),
            "`$.Account.slices[0]`: ends (2023-01-01T00:00:00.000Z) before it starts",
        ),
        (
            json!({"Account": {"state_type": "date-range", "slices": {}}}),
            "`$.Account.slices`: expected a list",
        ),
        (
            json!({"Account": []}),
            "`$.Account`: expected an object, got a list",
        ),
        (
            json!({"type": "LEGACY", "data": 1}),
            "`$.data`: expected an object",
        ),
    ] {
        // A wrong shape refuses the whole state; a stream's own bad state refuses that stream.
        let msg = match InputState::from_value(&input) {
            Err(e) => e.to_string(),
            Ok(state) => {
                assert!(state.get("Account").is_none(), "{input}");
                state
                    .refused("Account")
                    .unwrap_or_else(|| panic!("{input} was read"))
                    .to_string()
            }
        };
        assert!(msg.contains(want), "{input}: {msg}");
    }
    let msg = InputState::from_json("[{").unwrap_err().to_string();
    assert!(msg.contains("not valid JSON"), "{msg}");
}

/// A stream's state that cannot be read refuses that stream only: the others are read, and a
/// later valid entry for the same stream replaces the refused one (and the other way round).
#[test]
fn a_bad_stream_state_refuses_that_stream_only() {
    let state = InputState::from_value(&json!([
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Gone__c"},
            "stream_state": {"SystemModstamp": 12}}},
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Account"},
            "stream_state": {"SystemModstamp": "2024-01-01T00:00:00.000Z"}}},
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Lead"},
            "stream_state": {"SystemModstamp": "not a date"}}},
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Lead"},
            "stream_state": {"SystemModstamp": "2024-02-01T00:00:00.000Z"}}},
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Task"},
            "stream_state": {"SystemModstamp": "2024-02-01T00:00:00.000Z"}}},
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "Task"},
            "stream_state": []}}
    ]))
    .unwrap();
    assert!(!state.is_empty());
    let gone = state.refused("Gone__c").unwrap();
    assert!(matches!(gone, Error::StateInvalid { .. }), "{gone:?}");
    assert!(
        gone.to_string()
            .contains("`[0].stream.stream_state.SystemModstamp`")
            && gone.to_string().contains("must be a datetime string"),
        "{gone}"
    );
    assert!(state.get("Gone__c").is_none());
    assert!(state.refused("Account").is_none());
    assert!(state.get("Account").is_some());
    assert!(state.refused("Lead").is_none(), "the later entry wins");
    assert!(matches!(
        state.get("Lead"),
        Some(SavedState::Legacy { value, .. }) if *value == t("2024-02-01")
    ));
    assert!(state.get("Task").is_none());
    assert!(state
        .refused("Task")
        .unwrap()
        .to_string()
        .contains("expected an object, got a list"));
    // Only refusals: still a state that says something.
    let only = InputState::from_value(&json!({"Gone__c": []})).unwrap();
    assert!(!only.is_empty());
}

fn arb_slices() -> impl Strategy<Value = Vec<StateSlice>> {
    let base = t("2024-01-01");
    proptest::collection::vec(
        (0i64..200, 0i64..40, proptest::option::of(0i64..250)),
        0..12,
    )
    .prop_map(move |raw| {
        raw.into_iter()
            .map(|(start, len, mrcv)| StateSlice {
                start: base + TimeDelta::seconds(start),
                end: base + TimeDelta::seconds(start + len),
                most_recent_cursor_value: mrcv.map(|m| base + TimeDelta::seconds(m)),
            })
            .collect()
    })
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9:._+-]{0,26}".prop_map(Value::String),
        Just(json!("2023-01-01T00:00:00.000Z")),
        Just(json!("date-range")),
        Just(json!("STREAM")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("type".to_string()),
            Just("stream".to_string()),
            Just("stream_descriptor".to_string()),
            Just("name".to_string()),
            Just("stream_state".to_string()),
            Just("state_type".to_string()),
            Just("slices".to_string()),
            Just("start".to_string()),
            Just("end".to_string()),
            Just("data".to_string()),
            Just("global".to_string()),
            Just("stream_states".to_string()),
            "[A-Za-z]{1,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn merge_invariants(slices in arb_slices(), seed in any::<u64>()) {
        let merged = StreamState::from_slices(slices.clone());
        let out = merged.slices();
        for s in out {
            prop_assert!(s.start < s.end);
        }
        for pair in out.windows(2) {
            prop_assert!(pair[0].end < pair[1].start, "touching or overlapping: {:?}", pair);
        }
        // Same coverage, probed every half second.
        let base = t("2024-01-01");
        for half in 0..(2 * 260) {
            let at = base + TimeDelta::milliseconds(500 * half);
            let covered_in = slices.iter().any(|s| s.start <= at && at < s.end);
            prop_assert_eq!(merged.covers(at), covered_in, "at {}", at);
        }
        // Each merged slice keeps the largest cursor value of the slices inside it.
        for s in out {
            let want = slices
                .iter()
                .filter(|i| i.start < i.end && s.start <= i.start && i.end <= s.end)
                .filter_map(|i| i.most_recent_cursor_value)
                .max();
            prop_assert_eq!(s.most_recent_cursor_value, want);
        }
        // Order does not matter; merging again changes nothing; adding one by one is the same.
        let mut shuffled = slices.clone();
        let n = shuffled.len();
        if n > 1 {
            for i in 0..n {
                let j = ((seed >> (i % 60)) as usize + i * 7) % n;
                shuffled.swap(i, j);
            }
        }
        prop_assert_eq!(&StreamState::from_slices(shuffled), &merged);
        prop_assert_eq!(&StreamState::from_slices(out.iter().copied()), &merged);
        let mut stepwise = StreamState::new();
        for s in &slices {
            stepwise.add(*s);
        }
        prop_assert_eq!(&stepwise, &merged);
        // The emitted JSON reads back to the same state.
        let back = SavedState::from_value("S", &merged.to_json()).unwrap();
        prop_assert_eq!(back, SavedState::DateRange(merged.clone()));
    }

    #[test]
    fn parser_never_panics(value in arb_json()) {
        if let Ok(state) = InputState::from_value(&value) {
            for (name, saved) in state.streams() {
                let _ = saved.clone().resolve(name, "SystemModstamp", t("2020-01-01"));
            }
        }
    }

    #[test]
    fn text_parser_never_panics(text in "\\PC{0,40}") {
        let _ = InputState::from_json(&text);
    }
}

#[test]
fn a_state_ending_after_now_is_found() {
    let state = StreamState::from_slices([
        slice("2023-01-01", "2023-02-01", None),
        slice("2023-03-01", "2031-01-01", None),
    ]);
    assert_eq!(state.ends_after(t("2023-05-01")), Some(t("2031-01-01")));
    assert_eq!(state.ends_after(t("2031-02-01")), None);
    assert_eq!(StreamState::new().ends_after(t("2023-05-01")), None);
}

/// A state file made of whole messages as a read writes them (`grep STATE out.jsonl | jq -s`)
/// is read as the state messages they carry.
#[test]
fn whole_state_messages_are_read_as_the_states_they_carry() {
    let stream = json!({"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "Account"},
        "stream_state": {"state_type": "date-range", "slices": [
            {"start": "2023-01-01T00:00:00.000Z", "end": "2023-04-01T00:00:00.000Z"}]}}});
    let wrapped = json!([{"type": "STATE", "state": stream.clone()}]);
    let plain = json!([stream.clone()]);
    assert_eq!(
        InputState::from_value(&wrapped).unwrap(),
        InputState::from_value(&plain).unwrap()
    );
    assert!(InputState::from_value(&wrapped)
        .unwrap()
        .get("Account")
        .is_some());
    let one = json!({"type": "STATE", "state": stream.clone()});
    assert!(InputState::from_value(&one)
        .unwrap()
        .get("Account")
        .is_some());
    // A wrapped LEGACY message still yields to a STREAM one, wherever it stands.
    let legacy = json!({"type": "STATE", "state": {"type": "LEGACY",
        "data": {"Account": {"SystemModstamp": "2020-01-01T00:00:00.000Z"}}}});
    let mixed = json!([{"type": "STATE", "state": stream}, legacy]);
    assert_eq!(
        InputState::from_value(&mixed).unwrap(),
        InputState::from_value(&plain).unwrap()
    );
}
