//! The state parsers (`sf_sync::InputState::from_json`, `SavedState::resolve`) on arbitrary
//! text: they never panic, and the state this engine writes for a resolved stream is state it
//! reads back.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sf_sync::{InputState, SavedState};

fuzz_target!(|text: &str| {
    let Ok(state) = InputState::from_json(text) else {
        return;
    };
    let start = Utc
        .with_ymd_and_hms(2022, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid instant");
    for (stream, saved) in state.streams() {
        let Ok(resolved) = saved.clone().resolve(stream, "SystemModstamp", start) else {
            continue;
        };
        let written = resolved.to_json();
        let _ = resolved.most_recent_cursor_value();
        let back = SavedState::from_value(stream, &written);
        assert!(back.is_ok(), "{written} does not read back: {back:?}");
        // A STREAM message must name its stream; the legacy form takes any key, even "".
        if stream.is_empty() {
            continue;
        }
        let message = json!([{"type": "STREAM", "stream": {
            "stream_descriptor": {"name": stream}, "stream_state": written}}]);
        assert!(InputState::from_value(&message).is_ok(), "{message}");
    }
});
