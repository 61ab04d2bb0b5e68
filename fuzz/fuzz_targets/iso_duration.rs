//! `sf_sync::IsoDuration::parse` on arbitrary text: it never panics, and a parsed duration's
//! canonical form parses back to the same duration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_sync::IsoDuration;

fuzz_target!(|text: &str| {
    let Ok(duration) = IsoDuration::parse(text) else {
        return;
    };
    let canonical = duration.to_string();
    let again = IsoDuration::parse(&canonical).expect("the canonical form parses");
    assert_eq!(
        again.as_std(),
        duration.as_std(),
        "{text:?} -> {canonical:?}"
    );
    let _ = duration.as_chrono();
});
