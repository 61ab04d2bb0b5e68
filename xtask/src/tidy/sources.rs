//! Checks over the source files under each workspace crate's `src/`: no file passes
//! [`MAX_LINES`], only sf-auth maps Salesforce's answers to error kinds, and only sf-sync maps
//! kinds to the protocol's failure types.

use super::lex::{self, word_positions};

/// No file under a crate's `src/` may pass this many lines (as `wc -l` counts them).
pub const MAX_LINES: usize = 700;

/// The error codes (REST `errorCode`, Bulk `exceptionCode`) and OAuth `error` values Salesforce
/// answers with, as the recorded fixtures and sf-auth's mapping name them.
pub const SALESFORCE_CODES: &[&str] = &[
    "API_DISABLED_FOR_ORG",
    "API_ERROR",
    "API_VERSION_RETIRED",
    "BATCH_PROCESSING_HALTED",
    "FUNCTIONALITY_NOT_ENABLED",
    "INSUFFICIENT_ACCESS",
    "INSUFFICIENT_ACCESS_OR_READONLY",
    "INVALIDENTITY",
    "INVALIDJOB",
    "INVALIDJOBSTATE",
    "INVALIDLOCATOR",
    "INVALIDMAXRECORDS",
    "INVALID_BATCH_REQUEST",
    "INVALID_FIELD",
    "INVALID_INPUT",
    "INVALID_QUERY_FILTER_OPERATOR",
    "INVALID_QUERY_LOCATOR",
    "INVALID_SESSION_ID",
    "INVALID_TYPE",
    "INVALID_TYPE_FOR_OPERATION",
    "JOB_NOT_COMPLETE",
    "JSON_PARSER_ERROR",
    "LIMIT_EXCEEDED",
    "MALFORMED_QUERY",
    "METHOD_NOT_ALLOWED",
    "NOT_FOUND",
    "PROCESSING_HALTED",
    "QUERY_TIMEOUT",
    "REQUEST_LIMIT_EXCEEDED",
    "SERVER_UNAVAILABLE",
    "TXN_SECURITY_METERING_ERROR",
    "UNKNOWN_EXCEPTION",
    "URI_TOO_LONG",
    "invalid_client",
    "invalid_client_id",
    "invalid_grant",
    "invalid_request",
    "unsupported_grant_type",
];

/// Crates whose code may name Salesforce's error codes: sf-auth maps them, fixtures emulates the
/// org that sends them, and xtask holds this list.
const MAY_NAME_CODES: [&str; 3] = ["sf-auth", "fixtures", "xtask"];

/// The library crates below sf-sync: they know error kinds, never failure types.
const BELOW_SYNC: [&str; 4] = ["sf-auth", "sf-discovery", "sf-bulk", "sf-rest"];

/// Ways of reading a Salesforce answer that belong to sf-auth, with what each one is.
const ANSWER_READS: [(&str, &str); 4] = [
    (
        ".code_is(",
        "asks an ApiError for its error code (`.code_is(`)",
    ),
    (
        ".message.contains(",
        "matches on the text of a message (`.message.contains(`)",
    ),
    (
        "message.to_ascii_lowercase()",
        "matches on the text of a message (`message.to_ascii_lowercase()`)",
    ),
    (".error_code", "reads an ApiError's `.error_code`"),
];

/// The failure labels of the protocol (sf-sync's `Failure`, sf-cli's `FailureType`).
const FAILURE_LABELS: [&str; 4] = [
    "failure::config",
    "failure::transient",
    "failure::system",
    "failuretype::",
];

/// What sf-auth's single mapping offers instead of reading the answer again.
const ASK_THE_KIND: &str =
    "only sf-auth maps Salesforce answers to kinds: keep its error as `#[source]`, ask its `kind()`";

/// What sf-sync's single mapping offers instead of mapping kinds again.
const ASK_THE_FAILURE: &str =
    "only sf-sync maps error kinds to failure types: ask the sync error for its `failure()`";

/// One source file of a workspace crate.
#[derive(Debug, Clone)]
pub struct Source {
    /// The crate.
    pub package: String,
    /// Its path relative to the workspace root, with `/` (`sf-sync/src/engine.rs`).
    pub path: String,
    /// Its text.
    pub text: String,
}

/// Runs every source check; one line per problem, `path:line: what; the fix`.
pub fn check(sources: &[Source]) -> Vec<String> {
    let mut problems = Vec::new();
    for source in sources {
        problems.extend(long_file(&source.path, &source.text));
        if is_code(&source.path) {
            problems.extend(error_mapping(&source.package, &source.path, &source.text));
        }
    }
    problems
}

/// A problem if `text` passes [`MAX_LINES`].
pub fn long_file(path: &str, text: &str) -> Option<String> {
    let lines = text.bytes().filter(|b| *b == b'\n').count();
    (lines > MAX_LINES).then(|| {
        let tests = path.strip_suffix(".rs").map_or_else(
            || "a sibling file".to_string(),
            |stem| format!("`{stem}/tests.rs`"),
        );
        format!(
            "{path}:{}: {lines} lines, more than {MAX_LINES}; split it by concern, or move its \
             `#[cfg(test)] mod tests` to {tests}",
            MAX_LINES + 1
        )
    })
}

/// Whether `path` is a Rust file of non-test code (test modules in files of their own, named
/// `tests.rs` or under a `tests/` directory, are test code).
fn is_code(path: &str) -> bool {
    path.ends_with(".rs")
        && !path.ends_with("/tests.rs")
        && !path.split('/').any(|part| part == "tests")
}

/// The places in one file of `package` that map Salesforce's answers to kinds, or kinds to
/// failure types, where that crate must not. Lines from the first `#[cfg(test)]` on are test
/// code and skipped.
pub fn error_mapping(package: &str, path: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let lines = lex::lines(text);
    let end = text
        .lines()
        .position(|l| l.contains("#[cfg(test)]"))
        .unwrap_or(lines.len());
    let lines = &lines[..end];
    if !MAY_NAME_CODES.contains(&package) {
        for (n, line) in lines.iter().enumerate() {
            for code in line
                .literals
                .iter()
                .filter(|l| SALESFORCE_CODES.contains(&l.as_str()))
            {
                problems.push(format!(
                    "{path}:{}: names the Salesforce error code \"{code}\"; {ASK_THE_KIND}",
                    n + 1
                ));
            }
            for (pattern, what) in ANSWER_READS {
                if reads(&line.code, pattern) {
                    problems.push(format!("{path}:{}: {what}; {ASK_THE_KIND}", n + 1));
                }
            }
        }
    }
    if package != "sf-sync" && package != "xtask" {
        problems.extend(failure_mapping(package, path, lines));
    }
    problems
}

/// Whether `code` holds `pattern`; `.error_code` only as a field (`.error_code()` is a crate
/// error's own accessor, for reports).
fn reads(code: &str, pattern: &str) -> bool {
    if pattern != ".error_code" {
        return code.contains(pattern);
    }
    code.match_indices(pattern).any(|(at, _)| {
        let after = code[at + pattern.len()..].chars().next();
        !after.is_some_and(|c| lex::is_ident_char(c) || c == '(')
    })
}

/// Check (d) on one file of a crate other than sf-sync: the kinds and the failure labels never
/// meet, sf-cli names no kind, and the crates below sf-sync name no failure.
fn failure_mapping(package: &str, path: &str, lines: &[lex::Line]) -> Vec<String> {
    let mut problems = Vec::new();
    let at = |n: usize| format!("{path}:{}", n + 1);
    let kinds: Vec<usize> = (0..lines.len())
        .filter(|n| names_error_kind(&lines[*n].code))
        .collect();
    let labels: Vec<usize> = (0..lines.len())
        .filter(|n| {
            let code = lines[*n].code.to_ascii_lowercase();
            FAILURE_LABELS.iter().any(|label| code.contains(label))
        })
        .collect();
    if package == "sf-cli" {
        for n in &kinds {
            problems.push(format!(
                "{}: sf-cli names `ErrorKind`; {ASK_THE_FAILURE}",
                at(*n)
            ));
        }
    } else if let (Some(kind), Some(label)) = (kinds.first(), labels.first()) {
        problems.push(format!(
            "{}: names `ErrorKind` here and a failure label at line {}; {ASK_THE_FAILURE}",
            at(*kind),
            label + 1
        ));
    }
    if BELOW_SYNC.contains(&package) {
        for (n, line) in lines.iter().enumerate() {
            for word in ["Failure", "FailureType", "failure_type"] {
                if word_positions(&line.code, word).next().is_some() {
                    problems.push(format!(
                        "{}: names `{word}`: failure types belong to sf-sync, the crates below \
                         it return error kinds",
                        at(n)
                    ));
                }
            }
        }
    }
    problems
}

/// Whether a line of code names an error kind (`ErrorKind`, not `std::io::ErrorKind`).
fn names_error_kind(code: &str) -> bool {
    word_positions(code, "ErrorKind").any(|at| !code[..at].ends_with("io::"))
}

#[cfg(test)]
mod tests;
