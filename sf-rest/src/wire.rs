//! Serde types of the `/query` and `/queryAll` answers.

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde::Deserialize;
use serde_json::Value;

use crate::shape::Shape;

/// Implements serde's `DeserializeSeed` and `Visitor` for a seed that is its own visitor:
/// `deserialize` hands the seed to `deserializer.$method`, `expecting` writes `$expecting`, and
/// the `visit_*` methods given complete the `Visitor`.
macro_rules! self_visiting_seed {
    ($seed:ident -> $value:ty, $method:ident, $expecting:literal, $($visit:tt)*) => {
        impl<'de> serde::de::DeserializeSeed<'de> for $seed<'_> {
            type Value = $value;

            fn deserialize<D: serde::de::Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<$value, D::Error> {
                deserializer.$method(self)
            }
        }

        impl<'de> serde::de::Visitor<'de> for $seed<'_> {
            type Value = $value;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($expecting)
            }

            $($visit)*
        }
    };
}
pub(crate) use self_visiting_seed;

/// One page of query results, its rows already shaped into values in column order.
#[derive(Debug)]
pub(crate) struct QueryPage {
    /// The size of the whole result, repeated on every page.
    pub total_size: Option<u64>,
    /// False while more pages follow.
    pub done: Option<bool>,
    /// The path of the next page, absent or null on the last one.
    pub next_records_url: Option<String>,
    /// The rows' values, in the shape's column order.
    pub records: Vec<Vec<Value>>,
}

/// A page's `nextRecordsUrl` when it comes before the page's `records`, read without parsing
/// them: Salesforce writes `totalSize`, `done`, `nextRecordsUrl`, then `records` (every recorded
/// page in the reference notes has that order; believed, not documented as a guarantee), so the
/// next page can be asked for before this one is parsed. `None` when it is absent or null, comes
/// after `records`, or the body is not such an object: the caller then waits for the full parse.
pub(crate) fn next_url_ahead(body: &[u8]) -> Option<String> {
    struct Ahead<'a>(&'a mut Option<String>);

    impl<'de> serde::de::Visitor<'de> for Ahead<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a query page")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match key.as_ref() {
                    "nextRecordsUrl" => *self.0 = map.next_value::<Option<String>>()?,
                    // Stop before the records: they are parsed once, later.
                    "records" => return Err(serde::de::Error::custom("records reached")),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let _ = serde::Deserializer::deserialize_map(&mut deserializer, Ahead(&mut found));
    found
}

/// Parses a page's body, shaping each row as it is read (no map per row).
pub(crate) fn decode_page(body: &[u8], shape: &Shape) -> Result<QueryPage, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let page = PageSeed { shape }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(page)
}

struct PageSeed<'a> {
    shape: &'a Shape,
}

self_visiting_seed! {
    PageSeed -> QueryPage, deserialize_map, "a query results page",

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<QueryPage, A::Error> {
        let mut total_size = None;
        let mut done = None;
        let mut next_records_url = None;
        let mut records = None;
        while let Some(key) = map.next_key::<PageKey>()? {
            match key {
                PageKey::TotalSize => total_size = map.next_value::<Option<u64>>()?,
                PageKey::Done => done = map.next_value::<Option<bool>>()?,
                PageKey::NextRecordsUrl => next_records_url = map.next_value::<Option<String>>()?,
                PageKey::Records => {
                    records = Some(map.next_value_seed(RecordsSeed { shape: self.shape })?)
                }
                PageKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let records = records.ok_or_else(|| serde::de::Error::missing_field("records"))?;
        Ok(QueryPage {
            total_size,
            done,
            next_records_url,
            records,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum PageKey {
    TotalSize,
    Done,
    NextRecordsUrl,
    Records,
    #[serde(other)]
    Other,
}

struct RecordsSeed<'a> {
    shape: &'a Shape,
}

self_visiting_seed! {
    RecordsSeed -> Vec<Vec<Value>>, deserialize_seq, "a list of records",

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Vec<Value>>, A::Error> {
        // A page holds at most 2,000 records; the hint is capped against a hostile length.
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(2000));
        while let Some(row) = seq.next_element_seed(self.shape.row())? {
            rows.push(row);
        }
        Ok(rows)
    }
}

/// The answer to `SELECT COUNT() ...`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CountPage {
    pub total_size: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn shape() -> Shape {
        Shape::new(
            &["Id".into(), "SystemModstamp".into()],
            &crate::shape::tests::spec(),
        )
    }

    #[test]
    fn a_page_is_read_with_its_rows_shaped() {
        let body = br#"{"totalSize": 3, "done": false, "queryLocator": "x",
            "nextRecordsUrl": "/services/data/v62.0/query/01gxx-2000",
            "records": [
              {"attributes": {"type": "Account", "url": "/x"}, "Id": "001A", "SystemModstamp": "2024-01-31T23:59:59.000+0000"},
              {"attributes": {"type": "Account", "url": "/y"}, "Id": "001B", "SystemModstamp": null}
            ]}"#;
        let page = decode_page(body, &shape()).unwrap();
        assert_eq!(page.total_size, Some(3));
        assert_eq!(page.done, Some(false));
        assert_eq!(
            page.next_records_url.as_deref(),
            Some("/services/data/v62.0/query/01gxx-2000")
        );
        assert_eq!(
            page.records,
            vec![
                vec![json!("001A"), json!("2024-01-31T23:59:59.000Z")],
                vec![json!("001B"), Value::Null]
            ]
        );
        let last = decode_page(
            br#"{"done": true, "nextRecordsUrl": null, "records": []}"#,
            &shape(),
        )
        .unwrap();
        assert_eq!(
            (last.done, last.next_records_url, last.records.len()),
            (Some(true), None, 0)
        );
    }

    #[test]
    fn the_next_url_is_read_ahead_of_the_records_and_only_there() {
        // Salesforce's order: the URL before the records, which are not parsed (the broken
        // record after it shows they are not read at all).
        let body = br#"{"totalSize": 4001, "done": false,
            "nextRecordsUrl": "/services/data/v62.0/query/01gxx-2000",
            "records": [{"Id": "001A"}, {"Id": broken"#;
        assert_eq!(
            next_url_ahead(body).as_deref(),
            Some("/services/data/v62.0/query/01gxx-2000")
        );
        // Escapes in the URL are read as JSON.
        assert_eq!(
            next_url_ahead(br#"{"nextRecordsUrl": "\/q\/01g-2000", "records": []}"#).as_deref(),
            Some("/q/01g-2000")
        );
        for body in [
            // After the records: left to the full parse.
            &br#"{"done": false, "records": [], "nextRecordsUrl": "/q/01g-2000"}"#[..],
            // The last page.
            br#"{"totalSize": 1, "done": true, "nextRecordsUrl": null, "records": []}"#,
            br#"{"totalSize": 1, "done": true, "records": []}"#,
            // A record's own nextRecordsUrl (a subquery) is inside the records.
            br#"{"done": true, "records": [{"Contacts": {"nextRecordsUrl": "/q/01g-9"}}]}"#,
            // Not a page.
            br#"{"nextRecordsUrl": 42, "records": []}"#,
            b"[]",
            b"",
        ] {
            assert_eq!(
                next_url_ahead(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn malformed_pages_are_errors() {
        for body in [
            &br#"{"done": true}"#[..],
            br#"{"done": true, "records": [1]}"#,
            br#"{"done": "yes", "records": []}"#,
            br#"{"done": true, "records": []} trailing"#,
            br#"{"done": true, "records": [{"Id": "001"}"#,
            b"[]",
        ] {
            assert!(
                decode_page(body, &shape()).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
