//! Datetimes: Salesforce's forms read, and the one form (`YYYY-MM-DDTHH:MM:SS.sssZ`) written.

use chrono::{DateTime, SubsecRound, Utc};

/// Normalises a Salesforce datetime to `YYYY-MM-DDTHH:MM:SS.sssZ`.
///
/// Accepts the REST form (`2024-01-02T03:04:05.000+0000`), the Bulk form (`...000Z`), RFC 3339
/// offsets (`+00:00`, other offsets converted to UTC) and missing fractions. `None` if unparsable.
///
/// The forms Salesforce sends (UTC, milliseconds or none) are read byte by byte; anything else goes
/// through a general parser, which gives the same answer for those forms, only slower.
pub fn normalize_datetime(text: &str) -> Option<String> {
    let text = text.trim();
    normalize_utc_fast(text).or_else(|| normalize_general(text))
}

/// `YYYY-MM-DDTHH:MM:SS`, then `.sss` or nothing, then `Z`, `+0000` or `+00:00`, with every field
/// in range, rewritten without a date library. `None`: not one of these forms or out of range
/// (a leap second, the 30th of February), which the general parser judges.
fn normalize_utc_fast(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let (millis, offset) = match b.get(19) {
        Some(b'.') => (text.get(20..23)?, b.get(23..)?),
        _ => ("000", b.get(19..)?),
    };
    if !matches!(offset, b"Z" | b"+0000" | b"+00:00")
        || !millis.bytes().all(|d| d.is_ascii_digit())
        || !valid_date_time(b.get(..19)?)
    {
        return None;
    }
    let mut out = String::with_capacity(24);
    out.push_str(text.get(..19)?);
    out.push('.');
    out.push_str(millis);
    out.push('Z');
    Some(out)
}

/// `YYYY-MM-DDTHH:MM:SS` (19 bytes) naming a real day and time: month 1 to 12, a day the month
/// has (29 February in leap years only), hour below 24, minute and second below 60.
fn valid_date_time(b: &[u8]) -> bool {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', n0, n1, b':', s0, s1] = *b
    else {
        return false;
    };
    // Digits' values, or 10 and more for any other byte.
    let digit = |byte: u8| u32::from(byte.wrapping_sub(b'0'));
    if [y0, y1, y2, y3, m0, m1, d0, d1, h0, h1, n0, n1, s0, s1]
        .iter()
        .any(|&byte| digit(byte) > 9)
    {
        return false;
    }
    let two = |tens: u8, ones: u8| digit(tens) * 10 + digit(ones);
    let (month, day) = (two(m0, m1), two(d0, d1));
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 => {
            let year = two(y0, y1) * 100 + two(y2, y3);
            let leap =
                year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
            28 + u32::from(leap)
        }
        _ => return false,
    };
    (1..=month_days).contains(&day) && two(h0, h1) < 24 && two(n0, n1) < 60 && two(s0, s1) < 60
}

/// Any RFC 3339 datetime, or Salesforce's `+hhmm` offsets, converted to UTC.
fn normalize_general(text: &str) -> Option<String> {
    parse_datetime(text).map(format_datetime)
}

/// Reads an RFC 3339 datetime (`2024-01-02T03:04:05.000Z`, `+00:00`, any offset, any fraction or
/// none) or Salesforce's REST form with a `+hhmm` offset (`2024-01-02T03:04:05.000+0000`), as
/// UTC truncated to milliseconds (Salesforce's precision). `None` if unparsable; no trimming.
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()?;
    Some(parsed.with_timezone(&Utc).trunc_subsecs(3))
}

/// Writes an instant in the one form records and state carry, `YYYY-MM-DDTHH:MM:SS.sssZ`
/// (Bulk's form; a finer fraction is truncated to milliseconds).
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_normalise_to_the_bulk_form() {
        for (input, want) in [
            ("2024-01-02T03:04:05.000+0000", "2024-01-02T03:04:05.000Z"),
            ("2024-01-02T03:04:05.000Z", "2024-01-02T03:04:05.000Z"),
            ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000Z"),
            ("2024-01-02T03:04:05+00:00", "2024-01-02T03:04:05.000Z"),
            ("2024-01-02T05:04:05.123+0200", "2024-01-02T03:04:05.123Z"),
        ] {
            assert_eq!(normalize_datetime(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(normalize_datetime("2024-01-02"), None);
        assert_eq!(normalize_datetime("yesterday"), None);
    }

    #[test]
    fn salesforce_forms_take_the_fast_path() {
        for (input, want) in [
            ("2024-01-31T03:04:05.678Z", "2024-01-31T03:04:05.678Z"),
            ("2024-02-29T23:59:59.999+0000", "2024-02-29T23:59:59.999Z"),
            ("2000-02-29T00:00:00.000+00:00", "2000-02-29T00:00:00.000Z"),
            ("1999-12-31T23:59:59Z", "1999-12-31T23:59:59.000Z"),
            ("2024-04-30T12:00:00+0000", "2024-04-30T12:00:00.000Z"),
            ("0000-02-29T00:00:00.000Z", "0000-02-29T00:00:00.000Z"),
        ] {
            assert_eq!(normalize_utc_fast(input).as_deref(), Some(want), "{input}");
            assert_eq!(normalize_general(input).as_deref(), Some(want), "{input}");
        }
        for (input, general) in [
            // Out of range: the general parser refuses them too.
            ("2023-02-29T00:00:00.000Z", None),
            ("1900-02-29T00:00:00.000Z", None),
            ("2024-04-31T00:00:00.000Z", None),
            ("2024-13-01T00:00:00.000Z", None),
            ("2024-00-01T00:00:00.000Z", None),
            ("2024-01-00T00:00:00.000Z", None),
            ("2024-01-01T24:00:00.000Z", None),
            ("2024-01-01T00:60:00.000Z", None),
            // Other forms: left to the general parser.
            ("2024-01-01T00:00:00.1Z", Some("2024-01-01T00:00:00.100Z")),
            (
                "2024-01-01T00:00:00.123456Z",
                Some("2024-01-01T00:00:00.123Z"),
            ),
            ("2024-01-01t00:00:00.000z", Some("2024-01-01T00:00:00.000Z")),
            (
                "2024-01-01T00:00:00.000-0000",
                Some("2024-01-01T00:00:00.000Z"),
            ),
            (
                "2024-01-01T01:00:00.000+0100",
                Some("2024-01-01T00:00:00.000Z"),
            ),
            ("2024-01-01T00:00:00.000", None),
            ("2024-01-01T00:00:00.000+000", None),
            ("2024-01-01T00:00:00.12xZ", None),
            ("2024-01-01T00:00:00.000Z\u{e9}", None),
            ("2024-\u{e9}1-01T00:00:00.000Z", None),
        ] {
            assert_eq!(normalize_utc_fast(input), None, "{input}");
            assert_eq!(normalize_datetime(input).as_deref(), general, "{input}");
        }
        assert_eq!(
            normalize_datetime(" 2024-01-31T03:04:05.678+0000\n").as_deref(),
            Some("2024-01-31T03:04:05.678Z")
        );
    }

    #[test]
    fn the_fast_path_knows_the_calendar_as_the_general_parser_does() {
        let mut fast = 0;
        for year in [0, 4, 100, 400, 1900, 1999, 2000, 2023, 2024, 2100, 9999] {
            for month in 0..=13 {
                for day in 0..=32 {
                    for time in ["00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60"] {
                        let input = format!("{year:04}-{month:02}-{day:02}T{time}.250+0000");
                        let general = normalize_general(&input);
                        match normalize_utc_fast(&input) {
                            Some(normal) => {
                                fast += 1;
                                assert_eq!(Some(normal), general, "{input}");
                            }
                            // Only a leap second is left to the general parser and accepted.
                            None => assert!(general.is_none() || time == "12:00:60", "{input}"),
                        }
                    }
                }
            }
        }
        // 11 years of 365 or 366 days (0, 4, 400, 2000 and 2024 are leap years), two times each.
        assert_eq!(fast, (11 * 365 + 5) * 2);
    }

    fn datetime_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let number = |max: u32, width: usize| (0..=max).prop_map(move |n| format!("{n:0width$}"));
        // Weighted so that about a quarter of the inputs are of the fast path's forms.
        let fraction = prop_oneof![
            3 => Just(String::new()),
            3 => "\\.[0-9]{3}",
            1 => Just(".".to_string()),
            1 => "\\.[0-9]{1,4}",
            1 => Just(".123456789".to_string()),
        ];
        let offset = prop_oneof![
            4 => Just("Z"),
            4 => Just("+0000"),
            4 => Just("+00:00"),
            1 => Just("z"),
            1 => Just("-0000"),
            1 => Just("-00:00"),
            1 => Just("+0130"),
            1 => Just("-08:00"),
            1 => Just("+000"),
            1 => Just("+00:0"),
            1 => Just(""),
            1 => Just("Z "),
            1 => Just("ZZ"),
        ];
        let sep = |usual: char, other: char| prop_oneof![20 => Just(usual), 1 => Just(other)];
        (
            number(9999, 4),
            sep('-', '/'),
            number(13, 2),
            number(32, 2),
            sep('T', ' '),
            number(24, 2),
            sep(':', '.'),
            number(60, 2),
            number(60, 2),
            fraction,
            offset,
        )
            .prop_map(|(y, dash, mo, d, t, h, colon, mi, s, frac, off)| {
                format!("{y}{dash}{mo}-{d}{t}{h}{colon}{mi}:{s}{frac}{off}")
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn the_fast_path_agrees_with_the_general_parser(
            text in proptest::prop_oneof![
                4 => datetime_like(),
                1 => "\\PC{0,30}",
                1 => "[0-9T:Z+.\\-]{18,30}",
            ]
        ) {
            let general = normalize_general(text.trim());
            if let Some(normal) = normalize_utc_fast(text.trim()) {
                proptest::prop_assert_eq!(Some(normal), general.clone());
            }
            proptest::prop_assert_eq!(normalize_datetime(&text), general);
        }
    }
}
