//! The source checks on doctored files.

use super::*;

fn source(package: &str, path: &str, text: &str) -> Source {
    Source {
        package: package.to_string(),
        path: path.to_string(),
        text: text.to_string(),
    }
}

/// The `path:line` each problem starts with.
fn places(problems: &[String]) -> Vec<&str> {
    problems
        .iter()
        .map(|p| p.split(": ").next().unwrap_or(""))
        .collect()
}

#[test]
fn a_file_over_700_lines_is_reported_with_its_fix() {
    let long = "x\n".repeat(MAX_LINES + 1);
    let problems = check(&[source("sf-rest", "sf-rest/src/reader2.rs", &long)]);
    assert_eq!(
        problems,
        [
            "sf-rest/src/reader2.rs:701: 701 lines, more than 700; split it by concern, or move \
             its `#[cfg(test)] mod tests` to `sf-rest/src/reader2/tests.rs`"
        ]
    );
    let exact = "x\n".repeat(MAX_LINES);
    assert!(check(&[source("sf-rest", "sf-rest/src/reader2.rs", &exact)]).is_empty());
    // Any file counts, not only Rust.
    assert_eq!(
        check(&[source("fixtures", "fixtures/src/data.csv", &long)]).len(),
        1
    );
}

#[test]
fn salesforce_codes_and_answer_reads_outside_sf_auth_are_reported_with_file_and_line() {
    let text = concat!(
        "//! A crate.\n",
        "fn classify(e: &ApiError) -> Kind {\n",
        "    if e.code_is(\"INVALID_FIELD\") { return Kind::Field; }\n",
        "    match e.error_code.as_deref() {\n",
        "        Some(\"invalid_grant\") => Kind::Login,\n",
        "        _ if e.message.contains(\"ConcurrentRequests\") => Kind::Busy,\n",
        "        _ if e.message.to_ascii_lowercase().contains(\"x\") => Kind::Busy,\n",
        "        _ => Kind::Other,\n",
        "    }\n",
        "}\n",
    );
    let problems = error_mapping("sf-bulk", "sf-bulk/src/run.rs", text);
    assert_eq!(
        places(&problems),
        [
            "sf-bulk/src/run.rs:3", // the code
            "sf-bulk/src/run.rs:3", // `.code_is(`
            "sf-bulk/src/run.rs:4", // `.error_code`
            "sf-bulk/src/run.rs:5", // the OAuth error
            "sf-bulk/src/run.rs:6", // the message's text
            "sf-bulk/src/run.rs:7", // the message's text, lowercased
        ],
        "{problems:#?}"
    );
    assert!(problems[0].contains("\"INVALID_FIELD\""));
    assert!(problems[0].contains("ask its `kind()`"));
    assert!(problems[2].contains("`.error_code`"));
    // sf-auth owns the mapping, fixtures emulates the org that sends the codes.
    assert!(error_mapping("sf-auth", "sf-auth/src/error.rs", text).is_empty());
    assert!(error_mapping("fixtures", "fixtures/src/emulator/api.rs", text).is_empty());
}

#[test]
fn clean_code_comments_and_tests_are_not_reported() {
    let clean = concat!(
        "//! Reads \"INVALID_FIELD\" nowhere: comments do not count.\n",
        "fn report(e: &Error) -> Warning {\n",
        "    /* \"NOT_FOUND\" */\n",
        "    let kind = e.kind(); // not `e.code_is(\"X\")`\n",
        "    Warning { error_code: e.error_code().map(str::to_string), message: \"INVALID_FIELD: x\" }\n",
        "}\n",
        "#[cfg(test)]\n",
        "mod tests {\n",
        "    fn t() { assert!(e.code_is(\"INVALID_FIELD\")); let _ = sf_auth::ErrorKind::Other; }\n",
        "}\n",
    );
    assert_eq!(
        error_mapping("sf-sync", "sf-sync/src/engine.rs", clean),
        Vec::<String>::new()
    );
    assert_eq!(
        error_mapping("sf-cli", "sf-cli/src/commands.rs", clean),
        Vec::<String>::new()
    );
    // Test modules in files of their own are test code too.
    let dirty = "fn f(e: &ApiError) -> bool { e.code_is(\"NOT_FOUND\") }\n";
    assert!(check(&[source("sf-rest", "sf-rest/src/reader/tests.rs", dirty)]).is_empty());
    assert!(check(&[source("sf-rest", "sf-rest/src/tests/helpers.rs", dirty)]).is_empty());
    assert_eq!(
        check(&[source("sf-rest", "sf-rest/src/reader.rs", dirty)]).len(),
        2
    );
}

#[test]
fn only_sf_sync_maps_kinds_to_failure_types() {
    let mapping = concat!(
        "use std::io::ErrorKind as IoKind;\n",
        "fn failure(e: &sf_auth::Error) -> Failure {\n",
        "    match e.kind() {\n",
        "        sf_auth::ErrorKind::Transient => Failure::Transient,\n",
        "        _ => Failure::System,\n",
        "    }\n",
        "}\n",
    );
    // sf-sync owns the mapping.
    assert!(error_mapping("sf-sync", "sf-sync/src/error.rs", mapping).is_empty());
    // Elsewhere the kinds and the labels never meet; the line of the first kind is named.
    assert_eq!(
        error_mapping("fixtures", "fixtures/src/demo.rs", mapping),
        [
            "fixtures/src/demo.rs:4: names `ErrorKind` here and a failure label at line 4; only \
             sf-sync maps error kinds to failure types: ask the sync error for its `failure()`"
        ]
    );
    // sf-cli names no kind at all, failure label or not; `std::io::ErrorKind` is not one.
    let cli = concat!(
        "fn f(e: &std::io::Error) -> bool { e.kind() == std::io::ErrorKind::NotFound }\n",
        "fn g(e: &sf_auth::Error) -> bool { e.kind() == sf_auth::ErrorKind::Transient }\n",
        "fn h(s: &sf_sync::Error) -> Failure { Failure::config(s.to_string()) }\n",
    );
    let problems = error_mapping("sf-cli", "sf-cli/src/failure.rs", cli);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("sf-cli/src/failure.rs:2: sf-cli names `ErrorKind`"));
    // The crates below sf-sync name no failure type; `LoginFailure` is not one.
    let below = concat!(
        "pub enum LoginFailure { Expired }\n",
        "pub fn label(k: ErrorKind) -> FailureType { todo!() }\n",
        "pub struct Report { pub failure_type: String }\n",
    );
    let problems = error_mapping("sf-discovery", "sf-discovery/src/lists.rs", below);
    assert_eq!(
        places(&problems),
        ["sf-discovery/src/lists.rs:2", "sf-discovery/src/lists.rs:3"],
        "{problems:#?}"
    );
    assert!(problems[0].contains("names `FailureType`"));
    assert!(problems[1].contains("names `failure_type`"));
}

#[test]
fn the_lists_are_sorted_and_hold_what_the_issue_names() {
    assert!(
        SALESFORCE_CODES.windows(2).all(|w| w[0] < w[1]),
        "{SALESFORCE_CODES:?}"
    );
    for code in [
        "INVALID_FIELD",
        "INVALID_TYPE",
        "MALFORMED_QUERY",
        "QUERY_TIMEOUT",
        "INVALID_QUERY_LOCATOR",
        "REQUEST_LIMIT_EXCEEDED",
        "INVALID_SESSION_ID",
        "NOT_FOUND",
        "INSUFFICIENT_ACCESS",
        "INSUFFICIENT_ACCESS_OR_READONLY",
        "INVALIDENTITY",
        "LIMIT_EXCEEDED",
        "TXN_SECURITY_METERING_ERROR",
        "SERVER_UNAVAILABLE",
        "API_DISABLED_FOR_ORG",
        "INVALID_QUERY_FILTER_OPERATOR",
        "API_ERROR",
        "invalid_grant",
        "invalid_client_id",
        "invalid_client",
        "unsupported_grant_type",
    ] {
        assert!(SALESFORCE_CODES.contains(&code), "{code}");
    }
}
