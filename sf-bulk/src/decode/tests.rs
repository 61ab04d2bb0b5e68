use super::*;
use proptest::prelude::*;
use serde_json::json;
use sf_discovery::FieldType;

fn fields(spec: &[(&str, FieldType)]) -> Vec<FieldSpec> {
    spec.iter()
        .map(|(n, t)| FieldSpec::new(*n, t.clone()))
        .collect()
}

fn decode_all(
    fields: &[FieldSpec],
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<Record>, DecodeError> {
    let mut decoder = PageDecoder::new(fields, content_type)?;
    let mut out = Vec::new();
    decoder.push(body, &mut out)?;
    let rows = decoder.finish(&mut out)?;
    assert_eq!(rows as usize, out.len());
    Ok(out)
}

#[test]
fn the_reference_page_decodes() {
    let f = fields(&[
        ("Id", FieldType::Id),
        ("Name", FieldType::String),
        ("IsDeleted", FieldType::Boolean),
        ("AnnualRevenue", FieldType::Currency),
        ("NumberOfEmployees", FieldType::Int),
        ("CreatedDate", FieldType::DateTime),
        ("LastActivityDate", FieldType::Date),
        ("Description", FieldType::Textarea),
        ("Owner.Email", FieldType::Email),
    ]);
    let body = "\"Id\",\"Name\",\"IsDeleted\",\"AnnualRevenue\",\"NumberOfEmployees\",\"CreatedDate\",\"LastActivityDate\",\"Description\",\"Owner.Email\"\n\
\"0015e00000AbCdEAAZ\",\"Acme, Inc.\",\"false\",\"9.0E7\",\"120\",\"2024-01-02T03:04:05.000Z\",\"2024-02-10\",,\"owner@example.com\"\n\
\"0015e00000AbCdFAAZ\",\"Say \"\"hi\"\"\",\"true\",\"1234.5\",,\"2024-01-03T00:00:00.000+0000\",,\"line one\nline two\",\n";
    let records = decode_all(&f, Some("text/csv; charset=UTF-8"), body.as_bytes()).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        serde_json::Value::Object(records[0].to_json()),
        json!({"Id": "0015e00000AbCdEAAZ", "Name": "Acme, Inc.", "IsDeleted": false,
               "AnnualRevenue": 90000000.0, "NumberOfEmployees": 120,
               "CreatedDate": "2024-01-02T03:04:05.000Z", "LastActivityDate": "2024-02-10",
               "Description": null, "Owner.Email": "owner@example.com"})
    );
    assert_eq!(
        serde_json::Value::Object(records[1].to_json()),
        json!({"Id": "0015e00000AbCdFAAZ", "Name": "Say \"hi\"", "IsDeleted": true,
               "AnnualRevenue": 1234.5, "NumberOfEmployees": null,
               "CreatedDate": "2024-01-03T00:00:00.000Z", "LastActivityDate": null,
               "Description": "line one\nline two", "Owner.Email": null})
    );
    assert!(Arc::ptr_eq(&records[0].columns, &records[1].columns));
}

#[test]
fn strings_keep_what_pandas_would_have_nulled() {
    let f = fields(&[("Code", FieldType::String), ("Note", FieldType::String)]);
    let body = b"\"Code\",\"Note\"\n\"01234\",\"NA\"\n\"N/A\",\"NULL\"\n\"None\",\"\"\n";
    let records = decode_all(&f, None, body).unwrap();
    let values: Vec<_> = records.iter().map(|r| r.values.clone()).collect();
    assert_eq!(
        values,
        vec![
            vec![json!("01234"), json!("NA")],
            vec![json!("N/A"), json!("NULL")],
            vec![json!("None"), Value::Null],
        ]
    );
}

#[test]
fn numbers_read_as_serde_json_reads_them() {
    for (text, want) in [
        ("120", json!(120)),
        ("-7", json!(-7)),
        ("100.0", json!(100.0)),
        ("9.9213206E7", json!(99213206.0)),
        ("1.5e-3", json!(0.0015)),
        ("18446744073709551615", json!(18446744073709551615u64)),
        ("99999999999999999999", json!(1e20)),
    ] {
        assert_eq!(
            convert_cell(ValueKind::Number, text),
            Ok(want.clone()),
            "{text}"
        );
        assert_eq!(
            convert_cell(ValueKind::Number, text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap(),
            "{text} as serde_json reads it"
        );
    }
    for bad in ["NaN", "inf", "infinity", "12abc", "1,5", "true", "+"] {
        assert_eq!(convert_cell(ValueKind::Number, bad), Err("number"), "{bad}");
    }
    assert_eq!(convert_cell(ValueKind::Integer, "120"), Ok(json!(120)));
    assert_eq!(convert_cell(ValueKind::Integer, "120.0"), Ok(json!(120)));
    assert_eq!(convert_cell(ValueKind::Integer, "1.5"), Err("integer"));
    assert_eq!(convert_cell(ValueKind::Boolean, "TRUE"), Ok(json!(true)));
    assert_eq!(convert_cell(ValueKind::Boolean, "yes"), Err("boolean"));
    assert_eq!(
        convert_cell(ValueKind::DateTime, "2024-01-02"),
        Err("datetime")
    );
    assert_eq!(
        convert_cell(ValueKind::DateTime, "2024-02-30T00:00:00.000Z"),
        Err("datetime"),
        "the full parser judges days the pattern check cannot"
    );
    assert_eq!(
        convert_cell(ValueKind::DateTime, "2024-01-29T23:59:59.999Z"),
        Ok(json!("2024-01-29T23:59:59.999Z"))
    );
    assert_eq!(
        convert_cell(ValueKind::Date, "2024-01-02"),
        Ok(json!("2024-01-02"))
    );
}

#[test]
fn a_bad_value_names_row_column_and_value() {
    let f = fields(&[("Id", FieldType::Id), ("Amount", FieldType::Currency)]);
    let body = b"\"Id\",\"Amount\"\n\"001\",\"1.0\"\n\"002\",\"lots\"\n";
    let err = decode_all(&f, None, body).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Value {
            row: 2,
            column: "Amount".to_string(),
            value: "lots".to_string(),
            expected: "number"
        }
    );
    assert_eq!(
        err.to_string(),
        "row 2, column `Amount`: `lots` is not a valid number"
    );
}

#[test]
fn header_checks() {
    let f = fields(&[("Id", FieldType::Id), ("Amount__c", FieldType::Double)]);
    // Case differs: fine.
    let records = decode_all(&f, None, b"\"ID\",\"amount__C\"\n\"1\",\"2.5\"\n").unwrap();
    assert_eq!(records[0].values, vec![json!("1"), json!(2.5)]);
    // Another order: values land under the requested names.
    let records = decode_all(&f, None, b"\"Amount__c\",\"Id\"\n\"2.5\",\"1\"\n").unwrap();
    assert_eq!(records[0].values, vec![json!("1"), json!(2.5)]);
    // A missing, extra or duplicated column is an error.
    for header in [
        &b"\"Id\"\n"[..],
        b"\"Id\",\"Amount__c\",\"Name\"\n",
        b"\"Id\",\"Id\"\n",
        b"\"Id\",\"Other\"\n",
    ] {
        let err = decode_all(&f, None, header).unwrap_err();
        assert!(matches!(err, DecodeError::Header { .. }), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::ResultsInvalid);
    }
}

#[test]
fn empty_and_header_only_pages_have_no_rows() {
    let f = fields(&[("Id", FieldType::Id)]);
    assert!(decode_all(&f, None, b"").unwrap().is_empty());
    assert!(decode_all(&f, None, b"\"Id\"\n").unwrap().is_empty());
    assert!(decode_all(&f, None, b"\"Id\"").unwrap().is_empty());
}

#[test]
fn nul_bytes_bom_and_a_missing_final_newline() {
    let f = fields(&[("Id", FieldType::Id), ("N", FieldType::Int)]);
    let body = b"\xEF\xBB\xBF\"Id\",\"N\"\n\"a\0b\",\"1\0\"\n\"c\",\"2\"";
    let mut decoder = PageDecoder::new(&f, None).unwrap();
    let mut out = Vec::new();
    for byte in body.chunks(1) {
        decoder.push(byte, &mut out).unwrap();
    }
    assert_eq!(decoder.finish(&mut out).unwrap(), 2);
    assert_eq!(out[0].values, vec![json!("ab"), json!(1)]);
    assert_eq!(out[1].values, vec![json!("c"), json!(2)]);
}

#[test]
fn a_page_cut_inside_a_quoted_value_is_truncated() {
    let f = fields(&[("Id", FieldType::Id), ("Note", FieldType::Textarea)]);
    let err = decode_all(&f, None, b"\"Id\",\"Note\"\n\"1\",\"ok\"\n\"2\",\"cut he").unwrap_err();
    assert_eq!(err, DecodeError::Truncated { row: 2 });
    assert_eq!(err.kind(), crate::ErrorKind::ResultsIncomplete);
    // Cut right after an opening quote, or inside an escaped quote pair.
    for body in [
        &b"\"Id\",\"Note\"\n\"1\",\""[..],
        b"\"Id\",\"Note\"\n\"1\",\"say \"\"hi\"\"",
    ] {
        assert_eq!(
            decode_all(&f, None, body).unwrap_err(),
            DecodeError::Truncated { row: 1 }
        );
    }
    // Cut after a closing quote: the row is whole.
    let records = decode_all(&f, None, b"\"Id\",\"Note\"\n\"1\",\"say \"\"hi\"\"\"").unwrap();
    assert_eq!(records[0].values, vec![json!("1"), json!("say \"hi\"")]);
    let err = decode_all(&f, None, b"\"Id\",\"Note\"\n\"1\"\n").unwrap_err();
    assert_eq!(
        err,
        DecodeError::FieldCount {
            row: 1,
            expected: 2,
            found: 1
        }
    );
}

#[test]
fn charsets() {
    let f = fields(&[("Name", FieldType::String)]);
    let latin1 = b"\"Name\"\n\"Andr\xe9\"\n";
    let records = decode_all(&f, Some("text/csv; charset=ISO-8859-1"), latin1).unwrap();
    assert_eq!(records[0].values, vec![json!("André")]);
    let cp1252 = b"\"Name\"\n\"\x80 5\"\n";
    let records = decode_all(&f, Some("text/csv;charset=\"windows-1252\""), cp1252).unwrap();
    assert_eq!(records[0].values, vec![json!("€ 5")]);
    let err = decode_all(&f, Some("text/csv; charset=UTF-8"), latin1).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Encoding {
            row: 1,
            charset: "UTF-8"
        }
    );
    let err = PageDecoder::new(&f, Some("text/csv; charset=Shift_JIS")).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Charset {
            charset: "Shift_JIS".to_string()
        }
    );
    assert!(decode_all(&f, Some("text/csv"), "\"Name\"\n\"Zoë 🚀\"\n".as_bytes()).is_ok());
}

#[test]
fn every_kind_reads_the_same_in_every_charset() {
    let f = fields(&[
        ("Id", FieldType::Id),
        ("Amount", FieldType::Currency),
        ("Count", FieldType::Int),
        ("Done", FieldType::Boolean),
        ("Stamp", FieldType::DateTime),
        ("Day", FieldType::Date),
        ("Blob", FieldType::Base64),
        ("Street", FieldType::Address),
    ]);
    let header = "\"Id\",\"Amount\",\"Count\",\"Done\",\"Stamp\",\"Day\",\"Blob\",\"Street\"\n";
    let body = format!(
        "{header}\"001\",\"1.5E3\",\"7\",\"true\",\"2024-03-31T01:02:03.000+0000\",\"2024-03-31\",\"QUJD\",\"1 Main St\"\n\
         ,,,,,,,\n"
    );
    let want = vec![
        vec![
            json!("001"),
            json!(1500.0),
            json!(7),
            json!(true),
            json!("2024-03-31T01:02:03.000Z"),
            json!("2024-03-31"),
            json!("QUJD"),
            json!("1 Main St"),
        ],
        vec![Value::Null; 8],
    ];
    for charset in ["UTF-8", "ISO-8859-1", "windows-1252"] {
        let content_type = format!("text/csv; charset={charset}");
        let records = decode_all(&f, Some(&content_type), body.as_bytes()).unwrap();
        let values: Vec<_> = records.into_iter().map(|r| r.values).collect();
        assert_eq!(values, want, "{charset}");
    }
    // A value that does not convert is named in the error whatever the charset.
    let bad = format!("{header}\"001\",\"1.5E3\",\"7\",\"maybe\",,,,\n");
    for charset in ["UTF-8", "ISO-8859-1"] {
        let content_type = format!("text/csv; charset={charset}");
        assert_eq!(
            decode_all(&f, Some(&content_type), bad.as_bytes()).unwrap_err(),
            DecodeError::Value {
                row: 1,
                column: "Done".to_string(),
                value: "maybe".to_string(),
                expected: "boolean"
            }
        );
    }
}

#[test]
fn a_reordered_header_types_each_value_by_its_own_column() {
    let f = fields(&[
        ("Id", FieldType::Id),
        ("Amount", FieldType::Currency),
        ("Stamp", FieldType::DateTime),
        ("Note", FieldType::Textarea),
    ]);
    let body = b"\"NOTE\",\"stamp\",\"Id\",\"Amount\"\n\"12\",\"2024-01-30T00:00:00Z\",\"001\",\"12\"\n,,\"002\",\"x\"\n";
    for charset in ["UTF-8", "ISO-8859-1"] {
        let content_type = format!("text/csv; charset={charset}");
        let err = decode_all(&f, Some(&content_type), body).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Value {
                row: 2,
                column: "Amount".to_string(),
                value: "x".to_string(),
                expected: "number"
            }
        );
        let mut decoder = PageDecoder::new(&f, Some(&content_type)).unwrap();
        let mut out = Vec::new();
        let first_row = body.iter().position(|&b| b == b'x').unwrap() - 1;
        decoder.push(&body[..first_row], &mut out).unwrap();
        assert_eq!(
            out[0].values,
            vec![
                json!("001"),
                json!(12),
                json!("2024-01-30T00:00:00.000Z"),
                json!("12")
            ]
        );
        assert_eq!(out[1..], []);
    }
}

/// Decodes `body` cut at `cuts`, with or without the fast row reader: the records made
/// before the end or the first error, and how the page ended.
fn decode_cut(
    fields: &[FieldSpec],
    body: &[u8],
    cuts: &[usize],
    fast_rows: bool,
) -> (Vec<Vec<Value>>, Result<u64, DecodeError>) {
    let mut decoder = PageDecoder::new(fields, None).unwrap();
    decoder.fast_rows = fast_rows;
    let mut out: Vec<Record> = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
    cuts.sort_unstable();
    let mut start = 0;
    let mut result = Ok(());
    for end in cuts.into_iter().chain([body.len()]) {
        result = decoder.push(&body[start..end], &mut out);
        start = end;
        if result.is_err() {
            break;
        }
    }
    let ended = result.and_then(|()| decoder.finish(&mut out));
    (out.into_iter().map(|r| r.values).collect(), ended)
}

#[test]
fn bulk_rows_skip_the_csv_reader_and_read_the_same() {
    let f = fields(&[("Id", FieldType::Id), ("Note", FieldType::Textarea)]);
    let body = b"\"Id\",\"Note\"\n\"1\",\"a, \"\"b\"\"\nc\"\n\"2\",\n,\"\"\n\"4\",\"\"\"\"\"\"\n";
    let want = vec![
        vec![json!("1"), json!("a, \"b\"\nc")],
        vec![json!("2"), Value::Null],
        vec![Value::Null, Value::Null],
        vec![json!("4"), json!("\"\"")],
    ];
    let mut decoder = PageDecoder::new(&f, None).unwrap();
    let mut out = Vec::new();
    decoder.push(body, &mut out).unwrap();
    assert_eq!(decoder.finish(&mut out).unwrap(), 4);
    let values: Vec<_> = out.into_iter().map(|r| r.values).collect();
    assert_eq!(values, want);
    // The CSV reader counted the header's line feed and the final check's, none of the rows'.
    assert_eq!(decoder.reader.line(), 3);
    for cut in 0..=body.len() {
        assert_eq!(
            decode_cut(&f, body, &[cut], true),
            (want.clone(), Ok(4)),
            "{cut}"
        );
    }
}

fn row_strategy() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just(String::new()),
        "[a-z\"\\n\\r,é ]{0,6}".prop_map(|v| format!("\"{}\"", v.replace('"', "\"\""))),
        Just("12".to_string()),
        Just("\"3.5E2\"".to_string()),
    ];
    let bulk_row = proptest::collection::vec(value, 1..4).prop_map(|cells| {
        let mut row = cells.join(",");
        row.push('\n');
        row.into_bytes()
    });
    let token = prop_oneof![
        Just(&b"\""[..]),
        Just(&b"\"\""[..]),
        Just(&b","[..]),
        Just(&b"\n"[..]),
        Just(&b"\r"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"x"[..]),
        Just(&b"7"[..]),
        Just(&b"\xff"[..]),
        Just(&b"\0"[..]),
    ];
    let soup = proptest::collection::vec(token, 0..8).prop_map(|t| t.concat());
    prop_oneof![4 => bulk_row, 1 => soup]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_fast_row_reader_agrees_with_the_csv_reader(
        width in 2usize..4,
        rows in proptest::collection::vec(row_strategy(), 0..8),
        cuts in proptest::collection::vec(0usize..200, 0..4),
    ) {
        let spec = [
            ("Name", FieldType::Textarea),
            ("Count", FieldType::Int),
            ("Amount", FieldType::Currency),
        ];
        let f = fields(&spec[..width]);
        let header: Vec<String> = f.iter().map(|f| format!("\"{}\"", f.name)).collect();
        let mut body = format!("{}\n", header.join(",")).into_bytes();
        body.extend(rows.concat());
        prop_assert_eq!(
            decode_cut(&f, &body, &cuts, true),
            decode_cut(&f, &body, &cuts, false)
        );
    }
}

#[test]
fn a_single_nullable_column_keeps_its_null_rows() {
    let f = fields(&[("Email", FieldType::Email)]);
    let body = b"\"Email\"\n\"a@x\"\n\n\"line\nbreak\"\n\n\n\"b@x\"\n\n";
    let records = decode_all(&f, None, body).unwrap();
    let values: Vec<Value> = records.into_iter().map(|r| r.values[0].clone()).collect();
    assert_eq!(
        values,
        vec![
            json!("a@x"),
            Value::Null,
            json!("line\nbreak"),
            Value::Null,
            Value::Null,
            json!("b@x"),
            Value::Null,
        ]
    );
}

#[test]
fn a_character_split_between_two_values_is_refused_not_read_as_nulls() {
    let f = fields(&[("Id", FieldType::Id), ("Name", FieldType::String)]);
    // The lead byte of "é" ends the first value and its continuation starts the second: the
    // row's bytes together are valid UTF-8 ("001éx"), neither value is.
    let body = b"\"Id\",\"Name\"\n\"001\xC3\",\"\xA9x\"\n";
    for fast in [true, false] {
        let mut decoder = PageDecoder::new(&f, Some("text/csv; charset=UTF-8")).unwrap();
        decoder.fast_rows = fast;
        let mut out = Vec::new();
        let err = decoder
            .push(body, &mut out)
            .and_then(|()| decoder.finish(&mut out).map(|_| ()))
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::Encoding {
                row: 1,
                charset: "UTF-8"
            },
            "fast rows: {fast}"
        );
        assert!(out.is_empty(), "fast rows: {fast}: {out:?}");
    }
}

#[test]
fn a_quote_never_closed_is_refused_before_the_page_fills_memory() {
    let f = fields(&[("Id", FieldType::Id), ("Name", FieldType::String)]);
    let mut decoder = PageDecoder::new(&f, None).unwrap();
    let mut out = Vec::new();
    decoder
        .push(
            b"\"Id\",\"Name\"\n\"001\",\"ok\"\n\"002\",\"oops\n",
            &mut out,
        )
        .unwrap();
    assert_eq!(out.len(), 1);
    // The rest of the page, unquoted rows after the quote never closed, in 1 MiB chunks.
    let chunk = b"003,row\n".repeat((1 << 20) / 8);
    let mut pushed = 0usize;
    let err = loop {
        match decoder.push(&chunk, &mut out) {
            Ok(()) => pushed += chunk.len(),
            Err(e) => break e,
        }
        assert!(
            pushed <= MAX_RECORD_BYTES,
            "no refusal after {pushed} bytes"
        );
    };
    assert_eq!(
        err,
        DecodeError::RecordTooLarge {
            row: 2,
            limit: MAX_RECORD_BYTES,
            what: "bytes"
        }
    );
    assert!(err.to_string().contains("a quote never closed"), "{err}");
    assert_eq!(err.kind(), crate::ErrorKind::ResultsInvalid);
    assert!(decoder.buf.len() <= MAX_RECORD_BYTES);

    // A row of separators only: bounded by its field count.
    let mut decoder = PageDecoder::new(&f, None).unwrap();
    let mut out = Vec::new();
    decoder.push(b"\"Id\",\"Name\"\n", &mut out).unwrap();
    let err = decoder.push(&vec![b','; 1 << 20], &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::RecordTooLarge {
                row: 1,
                what: "fields",
                ..
            }
        ),
        "{err}"
    );
}
