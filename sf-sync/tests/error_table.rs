//! Every error answer in the recorded fixtures maps to the kind and `failure_type` that README's
//! table "What each failure means" promises: sf-auth reads the answer, sf-sync labels the kind,
//! and the README row that names the answer must say the same.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sf_auth::{ApiError, ErrorKind, LoginFailure};
use sf_sync::Failure;

/// One way a row of README's table names answers: the first column's alternatives are separated
/// by `;`. An alternative names codes (backticked) and HTTP statuses, either of which identifies
/// an answer, and quoted phrases, one of which the message must then contain.
#[derive(Debug)]
struct Alternative {
    codes: Vec<String>,
    statuses: Vec<(u16, u16)>,
    phrases: Vec<String>,
    /// About a Bulk job's `errorMessage` ("Bulk job failed: ...").
    job: bool,
}

/// One row of README's table.
#[derive(Debug)]
struct Row {
    alternatives: Vec<Alternative>,
    /// The row is about the token endpoint.
    token: bool,
    /// The catch-all row ("any other ...").
    any_other: bool,
    kind: String,
    failure: String,
}

impl Alternative {
    /// How specific a match is (higher first): phrases, then codes, then statuses.
    fn rank(&self) -> u8 {
        match (self.phrases.is_empty(), self.codes.is_empty()) {
            (false, _) => 2,
            (true, false) => 1,
            (true, true) => 0,
        }
    }

    fn matches(&self, code: Option<&str>, status: u16, message: &str, job: bool) -> bool {
        let identified = (self.codes.is_empty() && self.statuses.is_empty())
            || code.is_some_and(|c| self.codes.iter().any(|rc| rc == c))
            || self
                .statuses
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&status));
        let said = self.phrases.is_empty() || self.phrases.iter().any(|p| message.contains(p));
        self.job == job && identified && said
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn between(text: &str, mark: char) -> Vec<String> {
    text.split(mark)
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn statuses(text: &str) -> Vec<(u16, u16)> {
    let Some(at) = text.find("HTTP ") else {
        return Vec::new();
    };
    text[at + 5..]
        .split(',')
        .map_while(|part| {
            let part = part.trim();
            if let Some(hundreds) = part.strip_suffix("xx") {
                let base: u16 = hundreds.parse().ok()?;
                Some((base * 100, base * 100 + 99))
            } else {
                let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                let status: u16 = digits.parse().ok()?;
                Some((status, status))
            }
        })
        .collect()
}

fn readme_rows() -> Vec<Row> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let start = readme
        .find("#### What each failure means")
        .expect("README has the table 'What each failure means'");
    let rows: Vec<Row> = readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| Salesforce's answer"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let answer = cells[1];
            Row {
                alternatives: answer
                    .split(';')
                    .map(|alt| Alternative {
                        codes: between(alt, '`'),
                        statuses: statuses(alt),
                        phrases: between(alt, '"'),
                        job: alt.contains("Bulk job failed"),
                    })
                    .collect(),
                token: answer.starts_with("token endpoint"),
                any_other: answer.contains("any other"),
                kind: cells[2].trim_matches('`').to_string(),
                failure: cells[3].to_string(),
            }
        })
        .collect();
    assert!(rows.len() >= 15, "README's table has {} rows", rows.len());
    rows
}

/// The README row for an answer: the most specific alternative that names it, else the
/// catch-all.
fn row_for<'a>(
    rows: &'a [Row],
    code: Option<&str>,
    status: u16,
    message: &str,
    job: bool,
) -> &'a Row {
    rows.iter()
        .filter(|r| !r.token && !r.any_other)
        .flat_map(|r| r.alternatives.iter().map(move |a| (r, a)))
        .filter(|(_, a)| a.matches(code, status, message, job))
        // Of equally specific rows the later wins (`max_by_key` keeps the last): the table
        // lists a narrower reading of the same words after the broader one.
        .max_by_key(|(_, a)| a.rank())
        .map(|(r, _)| r)
        .or_else(|| {
            rows.iter()
                .find(|r| r.any_other && r.alternatives.iter().any(|a| a.job == job))
        })
        .unwrap_or_else(|| panic!("no README row for {status} {code:?} {message:?}"))
}

fn label(failure: Failure) -> &'static str {
    match failure {
        Failure::Config => "config",
        Failure::Transient => "transient",
        Failure::System => "system",
    }
}

/// One error answer of a recorded exchange: how sf-auth classifies it.
struct Answer {
    file: String,
    status: u16,
    code: Option<String>,
    message: String,
    job: bool,
    kind: ErrorKind,
}

fn answers() -> Vec<Answer> {
    let mut out = Vec::new();
    let dir = root().join("fixtures/recorded");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/recorded")
        .flat_map(|area| std::fs::read_dir(area.expect("an area").path()).expect("an area dir"))
        .map(|f| f.expect("a file").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("a recorded file");
        let scenario: Value = serde_json::from_str(&text).expect("recorded JSON");
        let file = path
            .strip_prefix(&dir)
            .expect("under recorded")
            .display()
            .to_string();
        let exchanges = scenario["exchanges"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for exchange in exchanges {
            let path = exchange["request"]["path"].as_str().unwrap_or_default();
            let response = &exchange["response"];
            let status = response["status"].as_u64().unwrap_or(200) as u16;
            let body: Vec<u8> = match (&response["json"], &response["body"]) {
                (Value::Null, Value::String(raw)) => raw.clone().into_bytes(),
                (Value::Null, _) => Vec::new(),
                (json, _) => serde_json::to_vec(json).expect("JSON"),
            };
            let json = &response["json"];
            if json["state"] == "Failed" {
                let message = json["errorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                out.push(Answer {
                    file: file.clone(),
                    status,
                    code: None,
                    kind: sf_auth::classify_job_failure(&message),
                    message,
                    job: true,
                });
            }
            for sub in json["compositeResponse"].as_array().into_iter().flatten() {
                let sub_status = sub["httpStatusCode"].as_u64().unwrap_or(200) as u16;
                if sub_status >= 400 {
                    let body = serde_json::to_vec(&sub["body"]).expect("JSON");
                    let api = ApiError::from_body(sub_status, &body);
                    out.push(answer(&file, api, false));
                }
            }
            if status < 400 {
                continue;
            }
            let api = ApiError::from_body(status, &body);
            // The session turns every refusal of the token endpoint into a login error.
            let token = path.ends_with("/oauth2/token") && status < 500;
            out.push(answer(&file, api, token));
        }
    }
    out
}

fn answer(file: &str, api: ApiError, token: bool) -> Answer {
    let kind = if token {
        sf_auth::Error::Login {
            failure: LoginFailure::Other,
            api: api.clone(),
        }
        .kind()
    } else {
        api.kind()
    };
    Answer {
        file: file.to_string(),
        status: api.status,
        code: api.error_code.clone(),
        message: api.message.clone(),
        job: false,
        kind,
    }
}

#[test]
fn every_recorded_error_maps_as_readme_promises() {
    let rows = readme_rows();
    let answers = answers();
    assert!(answers.len() >= 40, "{} error answers found", answers.len());
    let mut rows_used = std::collections::BTreeSet::new();
    for a in &answers {
        let row = if a.kind == ErrorKind::LoginRefused {
            rows.iter().find(|r| r.token).expect("a token endpoint row")
        } else {
            row_for(&rows, a.code.as_deref(), a.status, &a.message, a.job)
        };
        rows_used.insert(row.kind.clone());
        assert_eq!(
            (a.kind.to_string(), label(Failure::of(a.kind))),
            (kind_text(&row.kind), row.failure.as_str()),
            "{}: HTTP {} {:?} {:?} (README row for `{}`)",
            a.file,
            a.status,
            a.code,
            a.message,
            row.kind
        );
    }
    // The fixtures exercise most of the table.
    for kind in [
        "LoginRefused",
        "Unauthenticated",
        "ConcurrentLimit",
        "DailyLimitExceeded",
        "BulkJobLimit",
        "PermissionRequired",
        "FilterRequired",
        "BulkNotSupported",
        "QueryTimeout",
        "InvalidQueryLocator",
        "InvalidField",
        "ObjectNotQueryable",
        "NotFound",
        "MalformedQuery",
        "Transient",
        "JobFailed",
        "Other",
    ] {
        assert!(
            rows_used.contains(kind),
            "no recorded answer maps to {kind}"
        );
    }
}

/// README names kinds as the enum's variants; `ErrorKind`'s `Display` says them in words.
fn kind_text(variant: &str) -> String {
    let kind = match variant {
        "LoginRefused" => ErrorKind::LoginRefused,
        "Unauthenticated" => ErrorKind::Unauthenticated,
        "ConcurrentLimit" => ErrorKind::ConcurrentLimit,
        "DailyLimitExceeded" => ErrorKind::DailyLimitExceeded,
        "BulkJobLimit" => ErrorKind::BulkJobLimit,
        "PermissionRequired" => ErrorKind::PermissionRequired,
        "FilterRequired" => ErrorKind::FilterRequired,
        "BulkNotSupported" => ErrorKind::BulkNotSupported,
        "QueryTimeout" => ErrorKind::QueryTimeout,
        "InvalidQueryLocator" => ErrorKind::InvalidQueryLocator,
        "InvalidField" => ErrorKind::InvalidField,
        "ObjectNotQueryable" => ErrorKind::ObjectNotQueryable,
        "InsufficientAccess" => ErrorKind::InsufficientAccess,
        "NotFound" => ErrorKind::NotFound,
        "MalformedQuery" => ErrorKind::MalformedQuery,
        "RequestTooLong" => ErrorKind::RequestTooLong,
        "Transient" => ErrorKind::Transient,
        "JobFailed" => ErrorKind::JobFailed,
        "Other" => ErrorKind::Other,
        other => panic!("README names an unknown kind `{other}`"),
    };
    kind.to_string()
}

#[test]
fn readme_rows_that_no_fixture_reaches_still_classify_as_written() {
    // Answers of the table's rows the recorded fixtures do not hold, classified directly.
    let rows = readme_rows();
    let cases: [(u16, Option<&str>, &str); 9] = [
        (
            403,
            Some("INSUFFICIENT_ACCESS"),
            "insufficient access rights",
        ),
        (
            400,
            Some("INSUFFICIENT_ACCESS_OR_READONLY"),
            "insufficient access rights",
        ),
        (400, Some("INVALID_QUERY_FILTER_OPERATOR"), "bad operator"),
        (414, None, ""),
        (431, None, ""),
        (408, None, ""),
        (
            403,
            Some("REQUEST_LIMIT_EXCEEDED"),
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        ),
        (
            400,
            Some("MALFORMED_QUERY"),
            "Implementation restriction: When querying the Vote object, you must filter using \
             the following syntax: ParentId = [single ID], Parent.Type = [single Type], Id = \
             [single ID], or Id IN [list of ID's].",
        ),
        (
            400,
            Some("MALFORMED_QUERY"),
            "Implementation restriction: activity aggregate relationships only allow security \
             evaluation for non-admin users when LIMIT is specified and at most 500",
        ),
    ];
    for (status, code, message) in cases {
        let kind = sf_auth::classify(status, code, message);
        let row = row_for(&rows, code, status, message, false);
        assert_eq!(
            (kind.to_string(), label(Failure::of(kind))),
            (kind_text(&row.kind), row.failure.as_str()),
            "HTTP {status} {code:?} {message:?}"
        );
    }
}
