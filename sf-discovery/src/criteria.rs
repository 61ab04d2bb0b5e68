//! Stream criteria: which objects become streams, by name (Airbyte's `streams_criteria`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// How a criterion compares an object's name with its value (both lower-cased).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Criterion {
    /// `starts with`
    StartsWith,
    /// `ends with`
    EndsWith,
    /// `contains`
    Contains,
    /// `exacts`: the whole name.
    Exacts,
    /// `starts not with`
    StartsNotWith,
    /// `ends not with`
    EndsNotWith,
    /// `not contains`
    NotContains,
    /// `not exacts`
    NotExacts,
}

/// The allowed criteria, as the config spells them, for error messages.
const ALLOWED: &str = "starts with, ends with, contains, exacts, starts not with, ends not with, \
                       not contains, not exacts";

impl Criterion {
    /// Every criterion, in the config spec's order.
    pub const ALL: [Criterion; 8] = [
        Criterion::StartsWith,
        Criterion::EndsWith,
        Criterion::Contains,
        Criterion::Exacts,
        Criterion::StartsNotWith,
        Criterion::EndsNotWith,
        Criterion::NotContains,
        Criterion::NotExacts,
    ];

    /// The name the config uses, e.g. `starts not with`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Criterion::StartsWith => "starts with",
            Criterion::EndsWith => "ends with",
            Criterion::Contains => "contains",
            Criterion::Exacts => "exacts",
            Criterion::StartsNotWith => "starts not with",
            Criterion::EndsNotWith => "ends not with",
            Criterion::NotContains => "not contains",
            Criterion::NotExacts => "not exacts",
        }
    }

    /// Parses a criterion's name: case-insensitive, surrounding and repeated blanks ignored.
    pub fn parse(text: &str) -> Option<Criterion> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let normal = words.join(" ").to_lowercase();
        Criterion::ALL
            .into_iter()
            .find(|c| c.as_str() == normal.as_str())
    }

    /// Whether `name` passes with `value`; both must already be lower-cased.
    fn test(&self, name: &str, value: &str) -> bool {
        match self {
            Criterion::StartsWith => name.starts_with(value),
            Criterion::EndsWith => name.ends_with(value),
            Criterion::Contains => name.contains(value),
            Criterion::Exacts => name == value,
            Criterion::StartsNotWith => !name.starts_with(value),
            Criterion::EndsNotWith => !name.ends_with(value),
            Criterion::NotContains => !name.contains(value),
            Criterion::NotExacts => name != value,
        }
    }
}

impl std::fmt::Display for Criterion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `streams_criteria`: `{"criteria": "starts with", "value": "Acc"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CriterionWire", into = "CriterionWire")]
pub struct StreamCriterion {
    /// How to compare.
    pub criterion: Criterion,
    /// What to compare the name with (case-insensitive).
    pub value: String,
}

impl StreamCriterion {
    /// A criterion.
    pub fn new(criterion: Criterion, value: impl Into<String>) -> StreamCriterion {
        StreamCriterion {
            criterion,
            value: value.into(),
        }
    }

    /// Whether the object called `name` passes this criterion (case-insensitive).
    pub fn matches(&self, name: &str) -> bool {
        self.criterion
            .test(&name.to_lowercase(), &self.value.to_lowercase())
    }
}

/// The config's form of a criterion.
#[derive(Serialize, Deserialize)]
struct CriterionWire {
    /// Absent means `contains`, the spec's default.
    #[serde(default)]
    criteria: Option<String>,
    value: String,
}

impl TryFrom<CriterionWire> for StreamCriterion {
    type Error = String;

    fn try_from(wire: CriterionWire) -> Result<StreamCriterion, String> {
        let criterion = match wire.criteria.as_deref() {
            None => Criterion::Contains,
            Some(text) => Criterion::parse(text).ok_or_else(|| unknown_message(text))?,
        };
        Ok(StreamCriterion {
            criterion,
            value: wire.value,
        })
    }
}

impl From<StreamCriterion> for CriterionWire {
    fn from(c: StreamCriterion) -> CriterionWire {
        CriterionWire {
            criteria: Some(c.criterion.as_str().to_string()),
            value: c.value,
        }
    }
}

fn unknown_message(given: &str) -> String {
    format!("unknown criterion `{given}`; allowed: {ALLOWED}")
}

/// The whole `streams_criteria` list: an object passes when any criterion passes; an empty list
/// passes every object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamCriteria(pub Vec<StreamCriterion>);

impl StreamCriteria {
    /// No criteria: every object passes.
    pub fn all() -> StreamCriteria {
        StreamCriteria(Vec::new())
    }

    /// Parses the config's `streams_criteria` value: an array of `{"criteria", "value"}` objects,
    /// or `null`. A missing `criteria` means `contains`; an unknown one is a config error naming
    /// the allowed values.
    pub fn from_json(value: &Value) -> Result<StreamCriteria, Error> {
        let items = match value {
            Value::Null => return Ok(StreamCriteria::all()),
            Value::Array(items) => items,
            _ => {
                return Err(Error::InvalidConfig {
                    field: "streams_criteria".to_string(),
                    reason: "expected an array of {\"criteria\", \"value\"} objects".to_string(),
                })
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let field = |key: &str| format!("streams_criteria[{index}].{key}");
            let Value::Object(map) = item else {
                return Err(Error::InvalidConfig {
                    field: format!("streams_criteria[{index}]"),
                    reason: "expected an object with `criteria` and `value`".to_string(),
                });
            };
            let criterion = match map.get("criteria") {
                None | Some(Value::Null) => Criterion::Contains,
                Some(Value::String(text)) => {
                    Criterion::parse(text).ok_or_else(|| Error::InvalidCriterion {
                        index,
                        given: text.clone(),
                        allowed: ALLOWED,
                    })?
                }
                Some(_) => {
                    return Err(Error::InvalidConfig {
                        field: field("criteria"),
                        reason: format!("expected a string, one of: {ALLOWED}"),
                    })
                }
            };
            let value = match map.get("value") {
                Some(Value::String(text)) => text.clone(),
                Some(_) => {
                    return Err(Error::InvalidConfig {
                        field: field("value"),
                        reason: "expected a string".to_string(),
                    })
                }
                None => {
                    return Err(Error::InvalidConfig {
                        field: field("value"),
                        reason: "missing".to_string(),
                    })
                }
            };
            out.push(StreamCriterion { criterion, value });
        }
        Ok(StreamCriteria(out))
    }

    /// True when there are no criteria.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the object called `name` passes: any criterion passes, or there are none.
    pub fn matches(&self, name: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let name = name.to_lowercase();
        self.0
            .iter()
            .any(|c| c.criterion.test(&name, &c.value.to_lowercase()))
    }
}

impl From<Vec<StreamCriterion>> for StreamCriteria {
    fn from(list: Vec<StreamCriterion>) -> StreamCriteria {
        StreamCriteria(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NAMES: &[&str] = &[
        "Account",
        "AccountHistory",
        "AccountContactRole",
        "Contact",
        "Invoice__c",
        "Invoice_Line__c",
        "Opportunity",
        "User",
    ];

    fn pick(criteria: &StreamCriteria) -> Vec<&'static str> {
        NAMES
            .iter()
            .copied()
            .filter(|n| criteria.matches(n))
            .collect()
    }

    fn one(criteria: &str, value: &str) -> StreamCriteria {
        StreamCriteria::from_json(&json!([{"criteria": criteria, "value": value}])).unwrap()
    }

    /// Every name in `NAMES` but `left_out`, in order.
    fn all_but(left_out: &[&str]) -> Vec<&'static str> {
        NAMES
            .iter()
            .copied()
            .filter(|n| !left_out.contains(n))
            .collect()
    }

    #[test]
    fn each_criterion() {
        let acc = ["Account", "AccountHistory", "AccountContactRole"];
        let custom = ["Invoice__c", "Invoice_Line__c"];
        let table: &[(&str, &str, Vec<&str>)] = &[
            ("starts with", "acc", acc.to_vec()),
            ("ends with", "__C", custom.to_vec()),
            ("contains", "CONT", vec!["AccountContactRole", "Contact"]),
            ("exacts", "account", vec!["Account"]),
            ("starts not with", "Acc", all_but(&acc)),
            ("ends not with", "__c", all_but(&custom)),
            ("not contains", "ACC", all_but(&acc)),
            ("not exacts", "USER", all_but(&["User"])),
        ];
        for (criterion, value, want) in table {
            assert_eq!(pick(&one(criterion, value)), *want, "{criterion} {value}");
        }
    }

    #[test]
    fn criterion_names_are_case_and_blank_insensitive() {
        assert_eq!(Criterion::parse("Starts With"), Some(Criterion::StartsWith));
        assert_eq!(
            Criterion::parse("  NOT   contains "),
            Some(Criterion::NotContains)
        );
        assert_eq!(Criterion::parse("startswith"), None);
        for c in Criterion::ALL {
            assert_eq!(Criterion::parse(c.as_str()), Some(c));
            assert_eq!(Criterion::parse(&c.as_str().to_uppercase()), Some(c));
        }
        assert_eq!(
            pick(&one("EXACTS", "user")),
            vec!["User"],
            "mixed-case criterion and value"
        );
    }

    #[test]
    fn several_criteria_are_a_union() {
        let criteria = StreamCriteria::from_json(&json!([
            {"criteria": "exacts", "value": "User"},
            {"criteria": "ends with", "value": "history"},
            {"criteria": "starts with", "value": "user"},
        ]))
        .unwrap();
        assert_eq!(pick(&criteria), vec!["AccountHistory", "User"]);
        // Negations in a union: anything not excluded by one of them passes.
        let criteria = StreamCriteria::from_json(&json!([
            {"criteria": "not contains", "value": "a"},
            {"criteria": "exacts", "value": "Account"},
        ]))
        .unwrap();
        assert_eq!(
            pick(&criteria),
            vec![
                "Account",
                "Invoice__c",
                "Invoice_Line__c",
                "Opportunity",
                "User"
            ]
        );
    }

    #[test]
    fn no_criteria_pass_everything() {
        assert_eq!(pick(&StreamCriteria::all()), NAMES.to_vec());
        assert_eq!(
            pick(&StreamCriteria::from_json(&Value::Null).unwrap()),
            NAMES.to_vec()
        );
        assert_eq!(
            pick(&StreamCriteria::from_json(&json!([])).unwrap()),
            NAMES.to_vec()
        );
    }

    #[test]
    fn a_missing_criterion_means_contains() {
        let criteria = StreamCriteria::from_json(&json!([{"value": "line"}])).unwrap();
        assert_eq!(criteria.0[0].criterion, Criterion::Contains);
        assert_eq!(pick(&criteria), vec!["Invoice_Line__c"]);
    }

    #[test]
    fn an_unknown_criterion_names_the_allowed_values() {
        let err = StreamCriteria::from_json(&json!([
            {"criteria": "contains", "value": "a"},
            {"criteria": "begins with", "value": "Acc"},
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::InvalidCriterion { index: 1, .. }),
            "{err:?}"
        );
        assert!(text.contains("streams_criteria[1].criteria"), "{text}");
        assert!(text.contains("`begins with`"), "{text}");
        for c in Criterion::ALL {
            assert!(text.contains(c.as_str()), "{text} lacks {c}");
        }
    }

    #[test]
    fn malformed_lists_are_config_errors() {
        for (value, field) in [
            (json!({"criteria": "exacts"}), "streams_criteria"),
            (json!(["Account"]), "streams_criteria[0]"),
            (json!([{"criteria": "exacts"}]), "streams_criteria[0].value"),
            (
                json!([{"criteria": 3, "value": "a"}]),
                "streams_criteria[0].criteria",
            ),
            (
                json!([{"criteria": "exacts", "value": 7}]),
                "streams_criteria[0].value",
            ),
        ] {
            match StreamCriteria::from_json(&value) {
                Err(Error::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn serde_form_round_trips_and_rejects_unknown_criteria() {
        let criteria: StreamCriteria = serde_json::from_value(json!([
            {"criteria": "Ends With", "value": "__c"},
            {"value": "Acc"}
        ]))
        .unwrap();
        assert_eq!(
            criteria.0,
            vec![
                StreamCriterion::new(Criterion::EndsWith, "__c"),
                StreamCriterion::new(Criterion::Contains, "Acc"),
            ]
        );
        assert_eq!(
            serde_json::to_value(&criteria).unwrap(),
            json!([
                {"criteria": "ends with", "value": "__c"},
                {"criteria": "contains", "value": "Acc"}
            ])
        );
        let err =
            serde_json::from_value::<StreamCriteria>(json!([{"criteria": "like", "value": "x"}]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown criterion `like`"), "{err}");
        assert!(err.contains("not exacts"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn negations_are_complements(name in "[A-Za-z_]{1,12}", value in "[A-Za-z_]{0,4}") {
            let pairs = [
                (Criterion::StartsWith, Criterion::StartsNotWith),
                (Criterion::EndsWith, Criterion::EndsNotWith),
                (Criterion::Contains, Criterion::NotContains),
                (Criterion::Exacts, Criterion::NotExacts),
            ];
            for (yes, no) in pairs {
                let a = StreamCriterion::new(yes, value.clone()).matches(&name);
                let b = StreamCriterion::new(no, value.clone()).matches(&name);
                prop_assert_ne!(a, b);
            }
        }

        #[test]
        fn matching_ignores_case(name in "[A-Za-z_]{1,12}", value in "[A-Za-z_]{0,4}", idx in 0usize..8) {
            let c = Criterion::ALL[idx];
            let lower = StreamCriterion::new(c, value.to_lowercase()).matches(&name.to_lowercase());
            let upper = StreamCriterion::new(c, value.to_uppercase()).matches(&name);
            prop_assert_eq!(lower, upper);
        }
    }
}
