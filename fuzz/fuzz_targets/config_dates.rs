//! `sf_sync::SyncConfig::from_value` with fuzz-chosen `start_date`, `end_date`,
//! `stream_slice_step` and `lookback_window` strings (and the whole config as arbitrary JSON):
//! it never panics, an accepted config ends after it starts, and no error repeats a secret.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use sf_sync::SyncConfig;

const SECRET: &str = "fuzz-client-secret-0xC0FFEE";
const REFRESH: &str = "fuzz-refresh-token-0xBEEF";

fuzz_target!(|data: &[u8]| {
    let now = Utc
        .with_ymd_and_hms(2024, 3, 1, 12, 0, 0)
        .single()
        .expect("a valid instant");
    // The whole config as JSON, when it is JSON.
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let _ = SyncConfig::from_value(&value, now);
    }
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{1}');
    let mut next = || parts.next().map(str::to_string);
    let (start, end, step, lookback) = (next(), next(), next(), next());
    let config = json!({
        "client_id": "fuzz-client",
        "client_secret": SECRET,
        "refresh_token": REFRESH,
        "start_date": start,
        "end_date": end,
        "stream_slice_step": step,
        "lookback_window": lookback,
    });
    match SyncConfig::from_value(&config, now) {
        Ok(parsed) => {
            if let Some(end) = parsed.config.end_date {
                assert!(end > parsed.config.start_date, "{config}");
            }
            assert!(parsed.config.stream_slice_step.as_std().as_secs() >= 1);
        }
        Err(e) => {
            let message = e.to_string();
            if !text.contains("fuzz-") {
                assert!(
                    !message.contains(SECRET) && !message.contains(REFRESH),
                    "{message}"
                );
            }
        }
    }
});
