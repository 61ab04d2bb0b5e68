//! `POST composite` with read-only subrequests: up to [`COMPOSITE_MAX`] GETs in one HTTP request,
//! which Salesforce counts as one API call whatever it carries (REST API guide, "Composite": "The
//! entire series of requests counts as a single call toward your API limits"; sure). Each
//! subrequest is named by a `referenceId` (a letter, then its index) and its answer is matched to
//! it by that name, never by position. `allOrNone` is false: a refused subrequest leaves the
//! others be, and answers with its own status and error list.
//!
//! sf-discovery sends describes this way, sf-rest getDeleted windows.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::request::{Method, Request};

/// The most subrequests of one `composite` call (Salesforce's limit).
pub const COMPOSITE_MAX: usize = 25;

/// One subrequest's answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subanswer {
    /// Its HTTP status.
    pub http_status_code: u16,
    /// Its body as sent (the resource's answer, or Salesforce's error list; `null` when
    /// absent): raw JSON text, not a tree, so 25 describes of wide objects cost their size
    /// once, not the several times a `Value` takes. Read it with `serde_json::from_str` into
    /// what the caller needs.
    #[serde(default = "raw_null")]
    pub body: Box<RawValue>,
    /// The `referenceId` of the subrequest it answers.
    pub reference_id: String,
}

fn raw_null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

/// One subrequest's answer, its body borrowed from the bytes of the whole answer
/// ([`composite_answers_borrowed`]): a caller that keeps only what it decodes copies nothing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubanswerRef<'a> {
    /// Its HTTP status.
    pub http_status_code: u16,
    /// Its body as sent (`null` when absent).
    #[serde(borrow, default = "raw_null_ref")]
    pub body: &'a RawValue,
    /// The `referenceId` of the subrequest it answers.
    pub reference_id: String,
}

fn raw_null_ref<'a>() -> &'a RawValue {
    RawValue::NULL
}

impl SubanswerRef<'_> {
    /// Whether Salesforce answered the subrequest with success (2xx).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.http_status_code)
    }
}

/// What [`by_reference`] matches answers by.
trait Referenced {
    fn reference(&self) -> &str;
}

impl Referenced for Subanswer {
    fn reference(&self) -> &str {
        &self.reference_id
    }
}

impl Referenced for SubanswerRef<'_> {
    fn reference(&self) -> &str {
        &self.reference_id
    }
}

impl PartialEq for Subanswer {
    fn eq(&self, other: &Subanswer) -> bool {
        self.http_status_code == other.http_status_code
            && self.reference_id == other.reference_id
            && self.body.get() == other.body.get()
    }
}

impl Subanswer {
    /// Whether Salesforce answered the subrequest with success (2xx).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.http_status_code)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeWire<'a> {
    all_or_none: bool,
    composite_request: Vec<SubrequestWire<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubrequestWire<'a> {
    method: &'static str,
    url: &'a str,
    reference_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerWire {
    composite_response: Vec<Subanswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerWireRef<'a> {
    #[serde(borrow)]
    composite_response: Vec<SubanswerRef<'a>>,
}

/// The `referenceId` of the `index`th subrequest named with `letter`: `d0`, `d1`, ...
pub fn reference_id(letter: char, index: usize) -> String {
    format!("{letter}{index}")
}

/// A `POST composite` of GETs of `urls` (each the whole path, `/services/data/vXX.X/...`, its
/// query already encoded), named `letter` and their index. Safe to send twice: nothing in it
/// writes.
pub fn composite_get<'a>(letter: char, urls: impl IntoIterator<Item = &'a str>) -> Request {
    let envelope = EnvelopeWire {
        all_or_none: false,
        composite_request: urls
            .into_iter()
            .enumerate()
            .map(|(i, url)| SubrequestWire {
                method: "GET",
                url,
                reference_id: reference_id(letter, i),
            })
            .collect(),
    };
    // Strings and a bool: serialising cannot fail.
    let body = serde_json::to_value(&envelope).unwrap_or(Value::Null);
    Request::json(Method::Post, "composite", &body).idempotent(true)
}

/// Why a `composite` answer cannot be matched to its subrequests.
#[derive(Debug, thiserror::Error)]
pub enum CompositeError {
    /// The answer is not the JSON of a composite answer.
    #[error("{0}")]
    NotJson(#[from] serde_json::Error),
    /// Not one result per subrequest.
    #[error("{got} results for {want} subrequests")]
    Count {
        /// Results in the answer.
        got: usize,
        /// Subrequests sent.
        want: usize,
    },
    /// Two results name the same subrequest.
    #[error("two results for referenceId `{0}`")]
    DuplicateRef(String),
    /// A result names no subrequest sent.
    #[error("a result for the unknown referenceId `{0}`")]
    UnknownRef(String),
    /// A subrequest has no result.
    #[error("no result for referenceId `{0}`")]
    MissingRef(String),
}

/// The answers of a `composite` call of `count` subrequests named `letter` and their index, in
/// the subrequests' order, matched by `referenceId`. An answer that is not JSON, or anything but
/// exactly one answer per subrequest, is an error.
pub fn composite_answers(
    letter: char,
    count: usize,
    body: &[u8],
) -> Result<Vec<Subanswer>, CompositeError> {
    let answers = serde_json::from_slice::<AnswerWire>(body)?.composite_response;
    by_reference(letter, count, answers)
}

/// As [`composite_answers`], each body borrowed from `body` rather than copied.
pub fn composite_answers_borrowed(
    letter: char,
    count: usize,
    body: &[u8],
) -> Result<Vec<SubanswerRef<'_>>, CompositeError> {
    let answers = serde_json::from_slice::<AnswerWireRef<'_>>(body)?.composite_response;
    by_reference(letter, count, answers)
}

fn by_reference<T: Referenced>(
    letter: char,
    count: usize,
    answers: Vec<T>,
) -> Result<Vec<T>, CompositeError> {
    if answers.len() != count {
        return Err(CompositeError::Count {
            got: answers.len(),
            want: count,
        });
    }
    let mut slots: Vec<Option<T>> = (0..count).map(|_| None).collect();
    for answer in answers {
        let index = answer
            .reference()
            .strip_prefix(letter)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&i| i < count && reference_id(letter, i) == answer.reference());
        match index.and_then(|i| slots.get_mut(i)) {
            Some(slot @ None) => *slot = Some(answer),
            Some(Some(_)) => {
                return Err(CompositeError::DuplicateRef(answer.reference().to_string()))
            }
            None => return Err(CompositeError::UnknownRef(answer.reference().to_string())),
        }
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| slot.ok_or_else(|| CompositeError::MissingRef(reference_id(letter, i))))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(reference_id: &str, status: u16) -> Subanswer {
        Subanswer {
            http_status_code: status,
            body: serde_json::value::to_raw_value(&json!({"answers": reference_id}))
                .unwrap_or_else(|_| raw_null()),
            reference_id: reference_id.to_string(),
        }
    }

    #[test]
    fn answers_are_matched_by_reference_id_not_position() {
        let matched = by_reference(
            'd',
            3,
            vec![answer("d2", 500), answer("d0", 200), answer("d1", 404)],
        )
        .unwrap();
        let got: Vec<(&str, u16)> = matched
            .iter()
            .map(|a| (a.reference_id.as_str(), a.http_status_code))
            .collect();
        assert_eq!(got, [("d0", 200), ("d1", 404), ("d2", 500)]);
        assert_eq!(matched[2].body.get(), r#"{"answers":"d2"}"#);
        assert!(matched[0].is_success() && !matched[1].is_success());
    }

    #[test]
    fn answers_that_do_not_fit_the_request_are_errors() {
        for (answers, want) in [
            (vec![answer("d0", 200)], "1 results for 2 subrequests"),
            (
                vec![answer("d0", 200), answer("d0", 200)],
                "two results for referenceId `d0`",
            ),
            (
                vec![answer("d0", 200), answer("d2", 200)],
                "a result for the unknown referenceId `d2`",
            ),
            (
                vec![answer("d01", 200), answer("d0", 200)],
                "a result for the unknown referenceId `d01`",
            ),
            (
                vec![answer("x1", 200), answer("d0", 200)],
                "a result for the unknown referenceId `x1`",
            ),
        ] {
            match by_reference('d', 2, answers) {
                Err(message) => assert_eq!(message.to_string(), want),
                Ok(_) => panic!("{want}: accepted"),
            }
        }
        assert_eq!(reference_id('d', 0), "d0");
        assert_eq!(reference_id('g', 24), "g24");
        assert!(matches!(
            composite_answers('d', 1, b"<html>"),
            Err(CompositeError::NotJson(_))
        ));
        assert!(composite_answers('d', 1, br#"{"compositeResponse":"#).is_err());
    }

    #[test]
    fn the_envelope_names_each_get_by_its_index() {
        let request = composite_get('g', ["/services/data/v62.0/a", "/services/data/v62.0/b"]);
        assert_eq!(request.method(), Method::Post);
        assert!(request.idempotent);
        let body: Value =
            serde_json::from_slice(request.body.as_deref().unwrap_or_default()).unwrap();
        assert_eq!(
            body,
            json!({"allOrNone": false, "compositeRequest": [
                {"method": "GET", "url": "/services/data/v62.0/a", "referenceId": "g0"},
                {"method": "GET", "url": "/services/data/v62.0/b", "referenceId": "g1"},
            ]})
        );
    }
}
