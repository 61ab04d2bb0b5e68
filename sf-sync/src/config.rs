//! The sync config: Airbyte source-salesforce's keys as they are, plus ours.

use std::fmt;

use chrono::{DateTime, Months, SubsecRound, Utc};
use serde_json::{Map, Value};
use sf_auth::{Credentials, Grant, JwtBearer, LoginUrl, Secret, SessionConfig};
use sf_discovery::{Criterion, StreamCriterion};

use crate::duration::IsoDuration;
use crate::error::{ConfigProblem, Error};
use crate::time::{format_instant, parse_config_date};

mod auth;
mod durations;

/// `num_workers` when the config does not set it: streams read at once.
pub const DEFAULT_NUM_WORKERS: usize = 4;
/// The largest `num_workers` accepted (Airbyte's cap too).
pub const MAX_NUM_WORKERS: usize = 50;
/// `stream_slice_step` when the config does not set it.
pub const DEFAULT_STREAM_SLICE_STEP: &str = "P30D";
/// `lookback_window` when the config does not set it.
pub const DEFAULT_LOOKBACK_WINDOW: &str = "PT10M";
/// The oldest `api_version` accepted: Bulk API 2.0 query jobs exist from 47.0 on.
pub const MIN_API_VERSION: f64 = 47.0;
/// How far back `start_date` goes when the config does not set it.
pub const DEFAULT_START_DATE_YEARS: u32 = 2;

/// The sync config, validated.
///
/// Read from Airbyte source-salesforce's config JSON as is ([`SyncConfig::from_json`]); defaults
/// live in the constants of this module. Type leniency: a boolean given as the string `"true"` or
/// `"false"` (any case) and an integer given as a string of digits are **accepted with a
/// warning**; any other mismatch is an error. `null` means "not set" for every key.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncConfig {
    /// The connected app's consumer key.
    pub client_id: String,
    /// The connected app's consumer secret.
    pub client_secret: Secret,
    /// The refresh token (required for the refresh-token grant).
    pub refresh_token: Option<Secret>,
    /// The OAuth grant: `auth_type` `Client` (or absent) is the refresh-token grant,
    /// `client_credentials` the client-credentials grant (which needs a My Domain `login_url`).
    pub grant: Grant,
    /// The JWT bearer grant's `username` and `private_key` (with `auth_flow: jwt`).
    pub jwt_bearer: Option<JwtBearer>,
    /// `is_sandbox`: log in at `test.salesforce.com` unless `login_url` is set.
    pub is_sandbox: bool,
    /// Where to log in: `login_url` if set, else production or sandbox by `is_sandbox`.
    pub login_url: LoginUrl,
    /// Lower bound of incremental reads (`start_date`; default: now − 2 years, UTC, whole seconds).
    pub start_date: DateTime<Utc>,
    /// Whether the config set `start_date`. When it did not, a first incremental sync leaves
    /// rows last changed before the default unread, and the read says so in a WARN.
    pub start_date_set: bool,
    /// Exclusive upper bound of incremental reads (`end_date`; `None`: now). Always after
    /// `start_date`.
    pub end_date: Option<DateTime<Utc>>,
    /// `streams_criteria`: which object names discovery keeps (empty: all).
    pub streams_criteria: Vec<StreamCriterion>,
    /// `stream_slice_step`: the window length when nothing is known about an object's volume
    /// (default `P30D`, at least 1 second).
    pub stream_slice_step: IsoDuration,
    /// `lookback_window`: how far before the last synced point a new sync starts again
    /// (default `PT10M`).
    pub lookback_window: IsoDuration,
    /// `force_use_bulk_api`: keep Bulk for objects with fields Bulk cannot serve, dropping those.
    pub force_use_bulk_api: bool,
    /// `preserve_na_values`: accepted for compatibility; values such as `NA` are always preserved.
    pub preserve_na_values: bool,
    /// `api_version`, `NN.N` (default `62.0`, at least `47.0`).
    pub api_version: String,
    /// `num_workers`: streams read at once (default 4, 1 to 50; more is read as 50).
    pub num_workers: usize,
    /// `api_budget`: a ceiling on the org's daily API usage (all clients, as Salesforce counts
    /// it), as a share of the limit, in `(0, 1]`: no request starts once the usage reaches it;
    /// `None`: no cap besides the limit itself.
    pub api_budget: Option<f64>,
    /// `formula_refresh`: an incremental stream with formula fields is read whole again once its
    /// last whole read is older than this (ISO 8601 duration, at least 1 second); `None` (the
    /// default): never.
    pub formula_refresh: Option<IsoDuration>,
    /// `hard_deletes`: incremental streams of replicateable objects ask getDeleted for records
    /// purged or hard-deleted and emit tombstones (default `true`; `false` saves about one API
    /// call per 25 incremental streams and sync, one for a stream asked alone, and the `queryAll`
    /// checks of the ids the read did not show).
    pub hard_deletes: bool,
}

/// A config read successfully, with what the reader wants the user to know.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedConfig {
    /// The config.
    pub config: SyncConfig,
    /// Unknown keys and accepted oddities, to be logged.
    pub warnings: Vec<ConfigWarning>,
}

/// Something in the config that was accepted but deserves a note in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The config key.
    pub key: String,
    /// What was noticed.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// The config keys this crate knows; `wait_timeout` appears in Airbyte's test configs and is
/// ignored there too.
const KNOWN_KEYS: [&str; 22] = [
    "client_id",
    "client_secret",
    "refresh_token",
    "auth_type",
    "is_sandbox",
    "start_date",
    "end_date",
    "streams_criteria",
    "stream_slice_step",
    "lookback_window",
    "force_use_bulk_api",
    "preserve_na_values",
    "login_url",
    "api_version",
    "num_workers",
    "api_budget",
    "wait_timeout",
    "auth_flow",
    "username",
    "private_key",
    "formula_refresh",
    "hard_deletes",
];

const SECRET_KEYS: [&str; 3] = ["client_secret", "refresh_token", "private_key"];

impl SyncConfig {
    /// Reads Airbyte source-salesforce's config JSON; `now` fills a missing `start_date`.
    pub fn from_json(text: &str, now: DateTime<Utc>) -> Result<ParsedConfig, Error> {
        // serde_json's messages name positions, never content, so no secret leaks from here.
        let value: Value = serde_json::from_str(text).map_err(|e| Error::ConfigParse {
            reason: format!("not valid JSON ({e})"),
        })?;
        SyncConfig::from_value(&value, now)
    }

    /// Reads a config already parsed as JSON; `now` fills a missing `start_date`.
    ///
    /// Every bad key is reported at once, each naming the key, the value given (secrets masked)
    /// and what would be accepted.
    pub fn from_value(value: &Value, now: DateTime<Utc>) -> Result<ParsedConfig, Error> {
        let Some(map) = value.as_object() else {
            return Err(Error::ConfigParse {
                reason: format!("expected a JSON object, got {}", json_kind(value)),
            });
        };
        let mut r = Reader {
            map,
            problems: Vec::new(),
            warnings: Vec::new(),
        };
        let config = r.read(now);
        for key in map.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                r.warnings.push(ConfigWarning {
                    key: key.clone(),
                    message: "is not a known key; it is ignored".into(),
                });
            }
        }
        match config {
            Some(config) if r.problems.is_empty() => Ok(ParsedConfig {
                config,
                warnings: r.warnings,
            }),
            _ => Err(Error::ConfigInvalid {
                problems: r.problems,
            }),
        }
    }

    /// The session config for `sf_auth::Session::login`: login host, credentials, grant, API
    /// version and budget; retries and timeouts keep `sf-auth`'s defaults.
    pub fn session_config(&self) -> SessionConfig {
        let credentials = Credentials {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_token: self.refresh_token.clone(),
        };
        let mut session = SessionConfig::new(self.login_url.clone(), credentials);
        session.grant = self.grant;
        session.jwt_bearer = self.jwt_bearer.clone();
        session.api_version = self.api_version.clone();
        session.api_budget = self.api_budget;
        session
    }

    /// True when discovery should keep the object `name`: no criteria, or any criterion matches
    /// (Airbyte takes the union).
    pub fn selects_stream(&self, name: &str) -> bool {
        self.streams_criteria.is_empty() || self.streams_criteria.iter().any(|c| c.matches(name))
    }
}

/// What a JSON value is, for messages: `a list`, `an object`, `null`, ...
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads keys one by one, collecting problems instead of stopping at the first.
struct Reader<'a> {
    map: &'a Map<String, Value>,
    problems: Vec<ConfigProblem>,
    warnings: Vec<ConfigWarning>,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn problem(&mut self, key: &str, given: Option<&Value>, expected: impl Into<String>) {
        let given = given.map(|v| {
            if SECRET_KEYS.contains(&key) {
                "***".to_string()
            } else {
                match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            }
        });
        self.problems.push(ConfigProblem {
            key: key.to_string(),
            given,
            expected: expected.into(),
        });
    }

    fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// A string; `None` when absent, null or not a string (a problem then).
    fn string(&mut self, key: &str, what: &str) -> Option<String> {
        let value = self.get(key)?;
        match value {
            Value::String(s) => Some(s.clone()),
            other => {
                let msg = format!("is {}, not a string; give {what}", json_kind(other));
                self.problem(key, Some(&other.clone()), msg);
                None
            }
        }
    }

    /// A required, non-empty string.
    fn required_string(&mut self, key: &str, what: &str) -> Option<String> {
        if self.get(key).is_none() {
            self.problem(key, None, format!("give {what}"));
            return None;
        }
        let s = self.string(key, what)?;
        if s.trim().is_empty() {
            self.problem(
                key,
                Some(&Value::String(s)),
                format!("is empty; give {what}"),
            );
            return None;
        }
        // Keys, secrets, tokens and usernames hold no whitespace: a pasted line break or space
        // around one is left out (a PEM key's closing line break is no news).
        let trimmed = s.trim();
        if trimmed.len() != s.len() && key != "private_key" {
            self.warn(
                key,
                "had spaces or line breaks around it (pasted?); they were left out",
            );
        }
        Some(trimmed.to_string())
    }

    fn boolean(&mut self, key: &str) -> bool {
        let Some(value) = self.get(key).cloned() else {
            return false;
        };
        match &value {
            Value::Bool(b) => *b,
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => {
                self.warn(key, "the string \"true\" was read as the boolean true");
                true
            }
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => {
                self.warn(key, "the string \"false\" was read as the boolean false");
                false
            }
            other => {
                let msg = format!("is {}, not a boolean; use true or false", json_kind(other));
                self.problem(key, Some(&value), msg);
                false
            }
        }
    }

    fn read(&mut self, now: DateTime<Utc>) -> Option<SyncConfig> {
        let grant = self.grant();
        let client_id = self.required_string("client_id", "the connected app's consumer key");
        let client_secret = match grant {
            // The JWT bearer grant signs instead: the secret is not sent.
            Grant::JwtBearer => Some(
                self.string(
                    "client_secret",
                    "a string, or leave it out: the JWT bearer flow does not send it",
                )
                .unwrap_or_default(),
            ),
            // The refresh-token grant takes no secret from a connected app that does not
            // require one for it (Salesforce's "Require Secret for Refresh Token Flow" off; its
            // REST API guide: "client_secret ... This parameter is optional"), and Airbyte's
            // spec lets the key be empty: an empty secret is left out of the token request.
            Grant::RefreshToken
                if self
                    .get("client_secret")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.trim().is_empty()) =>
            {
                self.warn(
                    "client_secret",
                    "is empty: the token request goes without it, which Salesforce accepts \
                     only when the connected app does not require the secret for the refresh \
                     token flow; if the login is refused, give the consumer secret",
                );
                Some(String::new())
            }
            _ => self.required_string("client_secret", "the connected app's consumer secret"),
        };
        let jwt_bearer = self.jwt_bearer(grant);
        let refresh_token = match grant {
            Grant::RefreshToken => self.required_string(
                "refresh_token",
                "a refresh token (or choose another grant with `auth_flow`: `client_credentials` \
                 or `jwt`)",
            ),
            _ => self.string("refresh_token", "a refresh token"),
        };
        let is_sandbox = self.boolean("is_sandbox");
        let login_url = self.login_url(is_sandbox, grant);
        let start_date_set =
            matches!(self.get("start_date"), Some(Value::String(s)) if !s.trim().is_empty());
        let start_date = self.start_date(now);
        let end_date = self.end_date(start_date);
        let streams_criteria = self.streams_criteria();
        let stream_slice_step = self.duration(
            "stream_slice_step",
            DEFAULT_STREAM_SLICE_STEP,
            1,
            "use e.g. `PT12H`, `P7D`, `P30D`",
        );
        let lookback_window = self.lookback_window();
        let force_use_bulk_api = self.boolean("force_use_bulk_api");
        let preserve_na_values = self.boolean("preserve_na_values");
        let api_version = self.api_version();
        let num_workers = self.num_workers();
        let api_budget = self.api_budget();
        let formula_refresh = self.formula_refresh();
        let hard_deletes = self.get("hard_deletes").is_none() || self.boolean("hard_deletes");
        Some(SyncConfig {
            client_id: client_id?,
            client_secret: Secret::new(client_secret?),
            refresh_token: refresh_token.map(Secret::new),
            grant,
            jwt_bearer: jwt_bearer?,
            is_sandbox,
            login_url: login_url?,
            start_date: start_date?,
            start_date_set,
            end_date: end_date?,
            streams_criteria: streams_criteria?,
            stream_slice_step: stream_slice_step?,
            lookback_window: lookback_window?,
            force_use_bulk_api,
            preserve_na_values,
            api_version: api_version?,
            num_workers: num_workers?,
            api_budget: api_budget?,
            formula_refresh: formula_refresh?,
            hard_deletes,
        })
    }

    fn date(&mut self, key: &str) -> Result<Option<DateTime<Utc>>, ()> {
        let Some(value) = self.get(key).cloned() else {
            return Ok(None);
        };
        let expected = "is not a date; use `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC), \
                        e.g. `2021-07-25` or `2021-07-25T00:00:00Z`";
        match value.as_str() {
            Some(s) if s.trim().is_empty() => Ok(None),
            Some(s) => match parse_config_date(s) {
                Some(t) => Ok(Some(t)),
                None => {
                    self.problem(key, Some(&value), expected);
                    Err(())
                }
            },
            None => {
                self.problem(key, Some(&value), expected);
                Err(())
            }
        }
    }

    fn start_date(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.date("start_date") {
            Ok(Some(t)) => {
                if t > now {
                    self.warn(
                        "start_date",
                        format!(
                            "{} is in the future; incremental streams read nothing before then",
                            format_instant(t)
                        ),
                    );
                }
                Some(t)
            }
            Ok(None) => Some(default_start_date(now)),
            Err(()) => None,
        }
    }

    fn end_date(&mut self, start: Option<DateTime<Utc>>) -> Option<Option<DateTime<Utc>>> {
        let end = self.date("end_date").ok()?;
        if let (Some(end), Some(start)) = (end, start) {
            if end <= start {
                let given = self.get("end_date").cloned();
                self.problem(
                    "end_date",
                    given.as_ref(),
                    format!(
                        "is not after start_date {}; use a later date or leave it empty",
                        format_instant(start)
                    ),
                );
                return None;
            }
        }
        Some(end)
    }

    fn streams_criteria(&mut self) -> Option<Vec<StreamCriterion>> {
        let Some(value) = self.get("streams_criteria").cloned() else {
            return Some(Vec::new());
        };
        let Some(items) = value.as_array() else {
            self.problem(
                "streams_criteria",
                Some(&value),
                "is not a list; give e.g. [{\"criteria\": \"starts with\", \"value\": \"Acc\"}]",
            );
            return None;
        };
        let names = Criterion::ALL
            .iter()
            .map(|c| format!("`{}`", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let key = format!("streams_criteria[{i}]");
            let Some(obj) = item.as_object() else {
                self.problem(
                    &key,
                    Some(item),
                    "is not an object; give {\"criteria\": ..., \"value\": ...}",
                );
                ok = false;
                continue;
            };
            let criteria = match obj.get("criteria").filter(|v| !v.is_null()) {
                None => Some(Criterion::Contains),
                Some(v) => {
                    let parsed = v.as_str().and_then(Criterion::parse);
                    if parsed.is_none() {
                        self.problem(
                            &format!("{key}.criteria"),
                            Some(v),
                            format!("is not a criterion; use one of {names}"),
                        );
                    }
                    parsed
                }
            };
            let value = match obj.get("value") {
                Some(Value::String(s)) => Some(s.clone()),
                other => {
                    self.problem(
                        &format!("{key}.value"),
                        other.filter(|v| !v.is_null()),
                        "must be the text to match object names against, e.g. \"Account\"",
                    );
                    None
                }
            };
            match (criteria, value) {
                (Some(criterion), Some(value)) => out.push(StreamCriterion::new(criterion, value)),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn api_version(&mut self) -> Option<String> {
        let default = sf_auth::DEFAULT_API_VERSION.to_string();
        let Some(value) = self.get("api_version").cloned() else {
            return Some(default);
        };
        let text = match &value {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let b = text.as_bytes();
        let shaped = b.len() == 4
            && b[0].is_ascii_digit()
            && b[1].is_ascii_digit()
            && b[2] == b'.'
            && b[3].is_ascii_digit();
        match text.parse::<f64>() {
            Ok(v) if shaped && v >= MIN_API_VERSION => Some(text),
            _ => {
                self.problem(
                    "api_version",
                    Some(&value),
                    format!(
                        "is not an API version `NN.N` of at least {MIN_API_VERSION:.1}; \
                         use e.g. `{default}` (no `v`)"
                    ),
                );
                None
            }
        }
    }

    fn num_workers(&mut self) -> Option<usize> {
        let Some(value) = self.get("num_workers").cloned() else {
            return Some(DEFAULT_NUM_WORKERS);
        };
        let n = match &value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => {
                let n = s.trim().parse::<u64>().ok();
                if n.is_some() {
                    self.warn("num_workers", "the string was read as an integer");
                }
                n
            }
            _ => None,
        };
        match n {
            Some(n) if (1..=MAX_NUM_WORKERS as u64).contains(&n) => Some(n as usize),
            // Airbyte's connector reads more than its cap as the cap: so does this one.
            Some(n) if n > MAX_NUM_WORKERS as u64 => {
                self.warn(
                    "num_workers",
                    format!("{n} is more than {MAX_NUM_WORKERS}, the most; it was read as {MAX_NUM_WORKERS}"),
                );
                Some(MAX_NUM_WORKERS)
            }
            _ => {
                self.problem(
                    "num_workers",
                    Some(&value),
                    format!(
                        "is not a whole number from 1 to {MAX_NUM_WORKERS}; use e.g. \
                         {DEFAULT_NUM_WORKERS} (the default)"
                    ),
                );
                None
            }
        }
    }

    fn api_budget(&mut self) -> Option<Option<f64>> {
        let Some(value) = self.get("api_budget").cloned() else {
            return Some(None);
        };
        let share = match &value {
            Value::String(s) => {
                let x = s.trim().parse::<f64>().ok();
                if x.is_some_and(|x| x > 0.0 && x <= 1.0) {
                    self.warn("api_budget", "the string was read as a number");
                }
                x
            }
            other => other.as_f64(),
        };
        match share {
            Some(x) if x > 0.0 && x <= 1.0 => Some(Some(x)),
            _ => {
                let kind = match &value {
                    Value::Number(_) | Value::String(_) => "is not",
                    _ => "is not a number, so not",
                };
                self.problem(
                    "api_budget",
                    Some(&value),
                    format!(
                        "{kind} a share of the daily API limit greater than 0 and at most 1; \
                         use e.g. 0.5, or leave it out for no cap"
                    ),
                );
                None
            }
        }
    }
}

/// `now` − 2 years, whole seconds, UTC.
pub(crate) fn default_start_date(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(0)
        .checked_sub_months(Months::new(12 * DEFAULT_START_DATE_YEARS))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
