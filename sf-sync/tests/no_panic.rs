#![allow(clippy::unwrap_used)]
//! No input may panic the parsers of what a user hands the sync: ISO 8601 durations, the config
//! (dates, durations, criteria, numbers, booleans as any JSON), the state in every form, and the
//! configured catalog. Errors never repeat a secret; what parses keeps its promises (a duration's
//! canonical form parses back, an end date is after the start date, the state this engine writes
//! reads back as the same state). The proptest twins of the `fuzz/` targets `iso_duration`,
//! `config_dates` and `state`.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sf_sync::{
    ConfiguredCatalog, InputState, IsoDuration, SavedState, StateSlice, StreamState, SyncConfig,
};

const SECRET: &str = "client-secret-DO-NOT-PRINT-7f3a";
const REFRESH: &str = "refresh-token-DO-NOT-PRINT-91bc";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()
}

/// Texts near the ISO 8601 duration grammar: designators, digits, separators, signs, spaces.
fn durationish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("P".to_string()),
        Just("T".to_string()),
        prop::sample::select(vec!["Y", "M", "W", "D", "H", "S", "y", "m", "d", "t", "p"])
            .prop_map(str::to_string),
        "[0-9]{1,22}",
        prop::sample::select(vec![".", ",", "-", "+", " ", "", "E9", "0000000000"])
            .prop_map(str::to_string),
        "\\PC{1,3}",
    ];
    prop::collection::vec(token, 0..12).prop_map(|t| t.concat())
}

/// Texts near the date forms the config takes.
fn dateish() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i32..10_000, 0u32..14, 0u32..33).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        (
            0i32..10_000,
            0u32..14,
            0u32..33,
            0u32..25,
            0u32..61,
            0u32..61
        )
            .prop_map(|(y, mo, d, h, mi, s)| format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"
            )),
        Just("2024-01-01T00:00:00.123456789Z".to_string()),
        Just("2024-01-01T00:00:00+02:00".to_string()),
        Just("+275760-09-13T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59Z".to_string()),
        "\\PC{0,24}",
    ]
}

/// Any JSON value, shallow.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!("true")),
        Just(json!("False")),
        Just(json!("12")),
        Just(json!("starts with")),
        "\\PC{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A config whose every optional key holds something odd.
fn config() -> impl Strategy<Value = Value> {
    let criteria = prop_oneof![
        any_json(),
        (
            prop::sample::select(vec![
                "starts with",
                "EXACTS",
                " not contains ",
                "begins",
                ""
            ]),
            any_json()
        )
            .prop_map(|(c, v)| json!([{"criteria": c, "value": v}])),
    ];
    (
        (dateish(), prop::option::of(dateish())),
        (durationish(), durationish()),
        criteria,
        (any_json(), any_json(), any_json(), any_json()),
        (any_json(), any_json(), any_json()),
    )
        .prop_map(
            |((start, end), (step, lookback), criteria, (a, b, c, d), (e, f, g))| {
                json!({
                    "client_id": "3MVG9-client",
                    "client_secret": SECRET,
                    "refresh_token": REFRESH,
                    "start_date": start,
                    "end_date": end,
                    "stream_slice_step": step,
                    "lookback_window": lookback,
                    "streams_criteria": criteria,
                    "is_sandbox": a,
                    "num_workers": b,
                    "api_budget": c,
                    "force_use_bulk_api": d,
                    "api_version": e,
                    "auth_type": f,
                    "login_url": g,
                })
            },
        )
}

/// JSON shaped like the state forms, with wrong values where values go.
fn stateish() -> impl Strategy<Value = Value> {
    let instant = prop_oneof![dateish().prop_map(Value::from), any_json()];
    let slice = (instant.clone(), instant.clone(), instant.clone())
        .prop_map(|(s, e, m)| json!({"start": s, "end": e, "most_recent_cursor_value": m}));
    let stream_state = prop_oneof![
        prop::collection::vec(slice, 0..4)
            .prop_map(|slices| json!({"state_type": "date-range", "slices": slices})),
        instant.clone().prop_map(|v| json!({"SystemModstamp": v})),
        Just(json!({"__ab_no_cursor_state_message": true})),
        any_json(),
    ];
    let name = prop_oneof![Just(json!("Account")), any_json()];
    let message = (
        prop::sample::select(vec!["STREAM", "GLOBAL", "LEGACY", "stream", ""]),
        name,
        stream_state.clone(),
    )
        .prop_map(|(t, name, state)| match t {
            "GLOBAL" => json!({"type": t, "global": {"shared_state": {}, "stream_states": [
                {"stream_descriptor": {"name": name}, "stream_state": state}]}}),
            "LEGACY" => json!({"type": t, "data": {"Account": state}}),
            _ => {
                json!({"type": t, "stream": {"stream_descriptor": {"name": name, "namespace": null},
                                              "stream_state": state}})
            }
        });
    prop_oneof![
        prop::collection::vec(message.clone(), 0..3).prop_map(Value::Array),
        message,
        prop::collection::btree_map("[A-Za-z_]{0,8}", stream_state, 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        any_json(),
    ]
}

fn instant_ms() -> impl Strategy<Value = DateTime<Utc>> {
    (1_500_000_000_000i64..1_800_000_000_000)
        .prop_map(|ms| Utc.timestamp_millis_opt(ms).single().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text: a duration whose canonical form parses back to it, or an error naming the text.
    #[test]
    fn durations_parse_or_explain(text in durationish()) {
        match IsoDuration::parse(&text) {
            Ok(d) => {
                let again = IsoDuration::parse(&d.to_string()).unwrap();
                prop_assert_eq!(again.as_std(), d.as_std(), "{} -> {}", text, d);
                let _ = d.as_chrono();
            }
            Err(e) => prop_assert!(e.to_string().contains(&text), "{}", e),
        }
    }

    /// Random unicode too.
    #[test]
    fn any_text_is_a_duration_or_an_error(text in "\\PC{0,30}") {
        let _ = IsoDuration::parse(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any config: a config that ends after it starts and reads windows of at least a second,
    /// or problems that name keys; never the secrets, whatever else is wrong.
    #[test]
    fn configs_parse_or_name_the_key(config in config()) {
        match SyncConfig::from_value(&config, now()) {
            Ok(parsed) => {
                let c = parsed.config;
                if let Some(end) = c.end_date {
                    prop_assert!(end > c.start_date, "{}", config);
                }
                prop_assert!(c.stream_slice_step.as_std().as_secs() >= 1, "{}", config);
                prop_assert!((1..=sf_sync::MAX_NUM_WORKERS).contains(&c.num_workers));
                if let Some(budget) = c.api_budget {
                    prop_assert!(budget > 0.0 && budget <= 1.0, "{}", config);
                }
                let debug = format!("{c:?}");
                prop_assert!(!debug.contains(SECRET) && !debug.contains(REFRESH));
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.contains(SECRET) && !message.contains(REFRESH), "{}", message);
                let debug = format!("{e:?}");
                prop_assert!(!debug.contains(SECRET), "{}", debug);
                prop_assert!(message.contains('`'), "no key named: {}", message);
            }
        }
    }

    /// Secrets of the wrong type are not echoed either.
    #[test]
    fn wrongly_typed_secrets_are_masked(secret in any_json(), token in any_json()) {
        let config = json!({"client_id": "x", "client_secret": [SECRET, secret],
                            "refresh_token": {"t": REFRESH, "u": token}});
        let e = SyncConfig::from_value(&config, now()).unwrap_err();
        let message = e.to_string();
        prop_assert!(!message.contains("DO-NOT-PRINT"), "{}", message);
        prop_assert!(message.contains("client_secret") && message.contains("refresh_token"), "{}", message);
    }

    /// Any state-shaped JSON reads or fails with a path; what reads resolves or fails cleanly.
    #[test]
    fn states_parse_or_name_the_path(state in stateish()) {
        match InputState::from_value(&state) {
            Ok(input) => {
                for (stream, saved) in input.streams() {
                    let start = Utc.with_ymd_and_hms(2022, 1, 1, 0, 0, 0).unwrap();
                    if let Ok(resolved) = saved.clone().resolve(stream, "SystemModstamp", start) {
                        let back = SavedState::from_value(stream, &resolved.to_json());
                        prop_assert!(back.is_ok(), "{:?}", back);
                    }
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// The state this engine writes reads back as exactly the same state.
    #[test]
    fn written_state_reads_back_unchanged(
        slices in prop::collection::vec((instant_ms(), 1i64..10_000_000, prop::option::of(0i64..10_000_000)), 0..6),
    ) {
        let state = StreamState::from_slices(slices.into_iter().map(|(start, len, recent)| {
            let end = start + chrono::TimeDelta::milliseconds(len);
            StateSlice {
                start,
                end,
                most_recent_cursor_value: recent.map(|r| start + chrono::TimeDelta::milliseconds(r.min(len - 1))),
            }
        }));
        let written = state.to_json();
        let back = SavedState::from_value("Account", &written).unwrap();
        prop_assert_eq!(back, SavedState::DateRange(state));
    }

    /// Any catalog-shaped JSON reads or fails with a path.
    #[test]
    fn catalogs_parse_or_name_the_path(
        name in prop_oneof![Just(json!("Account")), any_json()],
        mode in prop_oneof![Just(json!("incremental")), any_json()],
        cursor in any_json(),
        schema in any_json(),
    ) {
        let catalog = json!({"streams": [{"stream": {"name": name, "json_schema": schema,
            "supported_sync_modes": ["full_refresh", "incremental"]},
            "sync_mode": mode, "destination_sync_mode": "append", "cursor_field": cursor}]});
        if let Err(e) = ConfiguredCatalog::from_value(&catalog) {
            prop_assert!(e.to_string().contains("streams"), "{}", e);
        }
    }
}
