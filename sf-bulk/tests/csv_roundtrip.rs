#![allow(clippy::unwrap_used)]
//! Property: any table of typed values, rendered as Bulk API 2.0 renders CSV (every value quoted,
//! quotes doubled, null as an empty cell, LF), split into pages (each with its header) and each
//! page into chunks at arbitrary byte positions (with NUL bytes sprinkled in), decodes back to
//! exactly the same typed values.

use proptest::prelude::*;
use serde_json::{Number, Value};
use sf_bulk::PageDecoder;
use sf_discovery::{FieldSpec, FieldType, Record};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Double,
    Int,
    Bool,
    DateTime,
    Date,
}

impl Kind {
    fn field_type(self) -> FieldType {
        match self {
            Kind::Text => FieldType::Textarea,
            Kind::Double => FieldType::Double,
            Kind::Int => FieldType::Int,
            Kind::Bool => FieldType::Boolean,
            Kind::DateTime => FieldType::DateTime,
            Kind::Date => FieldType::Date,
        }
    }
}

/// One cell: the typed value expected, and the text Salesforce would send for it.
#[derive(Debug, Clone)]
struct Cell {
    value: Value,
    text: Option<String>,
}

/// Java's `Double.toString`: plain decimal in [1e-3, 1e7), computerized scientific otherwise.
fn java_double(f: f64) -> String {
    let a = f.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        format!("{f:?}")
    } else {
        let sci = format!("{f:e}");
        let (mantissa, exponent) = sci.split_once('e').unwrap();
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exponent}")
    }
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        // Awkward characters, unicode and the strings pandas would have turned into null.
        "[a-zA-Z0-9 ,\"\n\r;'éü日本🚀\t]{1,24}",
        Just("NA".to_string()),
        Just("N/A".to_string()),
        Just("NULL".to_string()),
        Just("None".to_string()),
        Just("01234".to_string()),
        Just("  ".to_string()),
        Just("\"".to_string()),
        Just(",".to_string()),
    ]
}

fn cell(kind: Kind) -> BoxedStrategy<Cell> {
    let typed: BoxedStrategy<Cell> = match kind {
        Kind::Text => text_strategy()
            .prop_map(|s| Cell {
                value: Value::String(s.clone()),
                text: Some(s),
            })
            .boxed(),
        Kind::Double => prop_oneof![
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 100.0),
            (0u32..40).prop_map(|e| 9.0 * 10f64.powi(e as i32)),
        ]
        .prop_map(|f| Cell {
            value: Value::Number(Number::from_f64(f).unwrap()),
            text: Some(java_double(f)),
        })
        .boxed(),
        Kind::Int => any::<i32>()
            .prop_map(|i| Cell {
                value: Value::from(i),
                text: Some(i.to_string()),
            })
            .boxed(),
        Kind::Bool => any::<bool>()
            .prop_map(|b| Cell {
                value: Value::Bool(b),
                text: Some(b.to_string()),
            })
            .boxed(),
        Kind::DateTime => (0i64..4_102_444_800, 0u32..1000, any::<bool>())
            .prop_map(|(secs, millis, rest_form)| {
                let t = chrono::DateTime::from_timestamp(secs, millis * 1_000_000).unwrap();
                let canonical = t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
                // Bulk sends `...Z`; accept the REST `+0000` form too.
                let text = if rest_form {
                    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
                } else {
                    canonical.clone()
                };
                Cell {
                    value: Value::String(canonical),
                    text: Some(text),
                }
            })
            .boxed(),
        Kind::Date => (0i64..4_102_444_800)
            .prop_map(|secs| {
                let d = chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap()
                    .format("%Y-%m-%d")
                    .to_string();
                Cell {
                    value: Value::String(d.clone()),
                    text: Some(d),
                }
            })
            .boxed(),
    };
    prop_oneof![
        1 => Just(Cell { value: Value::Null, text: None }),
        5 => typed,
    ]
    .boxed()
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Text),
        Just(Kind::Double),
        Just(Kind::Int),
        Just(Kind::Bool),
        Just(Kind::DateTime),
        Just(Kind::Date),
    ]
}

/// Columns, rows of cells, page boundaries, chunk cut points and NUL positions.
#[allow(clippy::type_complexity)]
fn table() -> impl Strategy<
    Value = (
        Vec<Kind>,
        Vec<Vec<Cell>>,
        Vec<usize>,
        Vec<usize>,
        Vec<usize>,
    ),
> {
    prop::collection::vec(kind_strategy(), 1..7).prop_flat_map(|kinds| {
        let row = kinds.iter().map(|k| cell(*k)).collect::<Vec<_>>();
        (
            Just(kinds),
            prop::collection::vec(row, 0..25),
            prop::collection::vec(0usize..25, 0..4),
            prop::collection::vec(0usize..5000, 0..30),
            prop::collection::vec(0usize..5000, 0..5),
        )
    })
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn render_page(names: &[String], rows: &[Vec<Cell>], quoted_empty: bool) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(&names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(","));
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| match &c.text {
                Some(t) => quote(t),
                None if quoted_empty => "\"\"".to_string(),
                None => String::new(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

fn decode(fields: &[FieldSpec], body: &[u8], cuts: &[usize]) -> Vec<Record> {
    let mut decoder = PageDecoder::new(fields, Some("text/csv; charset=UTF-8")).unwrap();
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for cut in cuts {
        decoder.push(&body[start..cut], &mut out).unwrap();
        start = cut;
    }
    decoder.push(&body[start..], &mut out).unwrap();
    let rows = decoder.finish(&mut out).unwrap();
    assert_eq!(rows as usize, out.len());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_table_decodes_to_its_values((kinds, rows, page_cuts, cuts, nuls) in table(), quoted_empty in any::<bool>()) {
        let names: Vec<String> = (0..kinds.len()).map(|i| format!("Col{i}__c")).collect();
        let fields: Vec<FieldSpec> = names
            .iter()
            .zip(&kinds)
            .map(|(n, k)| FieldSpec::new(n.clone(), k.field_type()))
            .collect();
        // A single column row holding null is an empty line: Salesforce writes nothing to quote.
        let quoted_empty = quoted_empty && kinds.len() > 1;
        let mut page_cuts: Vec<usize> = page_cuts.iter().map(|c| c % (rows.len() + 1)).collect();
        page_cuts.push(rows.len());
        page_cuts.sort_unstable();
        page_cuts.dedup();
        let mut decoded = Vec::new();
        let mut start = 0;
        for end in page_cuts {
            let mut body = render_page(&names, &rows[start..end], quoted_empty);
            for pos in &nuls {
                let at = pos % (body.len() + 1);
                body.insert(at, 0);
            }
            decoded.extend(decode(&fields, &body, &cuts));
            start = end;
        }
        prop_assert_eq!(decoded.len(), rows.len());
        for (record, row) in decoded.iter().zip(&rows) {
            let want: Vec<Value> = row.iter().map(|c| c.value.clone()).collect();
            prop_assert_eq!(&record.values, &want);
            prop_assert_eq!(record.columns.as_ref(), names.as_slice());
        }
    }
}

#[test]
fn java_doubles_look_like_java() {
    assert_eq!(java_double(9.0e7), "9.0E7");
    assert_eq!(java_double(99_213_206.0), "9.9213206E7");
    assert_eq!(java_double(1234.5), "1234.5");
    assert_eq!(java_double(100.0), "100.0");
    assert_eq!(java_double(0.0001), "1.0E-4");
}
