//! Reading numbers and integers from Bulk's CSV text, as `serde_json` reads the same text.

use serde_json::Number;

/// A number as `serde_json` would read the same text: integers without fraction or exponent stay
/// integers, anything else (Java's `9.0E7` included) is a float. `NaN` and infinities are refused.
pub(super) fn parse_number(cell: &str) -> Option<Number> {
    let bytes = cell.as_bytes();
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        if let Ok(i) = cell.parse::<i64>() {
            return Some(Number::from(i));
        }
        if let Ok(u) = cell.parse::<u64>() {
            return Some(Number::from(u));
        }
    }
    let first = *bytes.first()?;
    if !(first.is_ascii_digit() || first == b'-' || first == b'.') {
        return None;
    }
    let f: f64 = match short_decimal(bytes) {
        Some(f) => f,
        None => cell.parse().ok()?,
    };
    Number::from_f64(f)
}

/// Powers of ten a double holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `-?D+(.D+)?([eE][+-]?D+)?` with at most 15 digits and a power of ten within ±22, as the double
/// nearest to it (what `str::parse` gives): the digits and the power are then both exact doubles,
/// and one multiplication or division rounds once, correctly (Clinger's fast path). `None` for
/// anything else, which `str::parse` reads.
fn short_decimal(bytes: &[u8]) -> Option<f64> {
    let (negative, bytes) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let mut mantissa: u64 = 0;
    let mut digits = 0;
    let mut exponent: i32 = 0;
    let mut at = 0;
    let mut take_digits = |at: &mut usize, scale: i32| {
        let start = *at;
        while let Some(&byte) = bytes.get(*at) {
            if !byte.is_ascii_digit() {
                break;
            }
            mantissa = mantissa * 10 + u64::from(byte - b'0');
            digits += 1;
            exponent += scale;
            *at += 1;
            if digits > 15 {
                return None;
            }
        }
        (*at > start).then_some(())
    };
    take_digits(&mut at, 0)?;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        take_digits(&mut at, -1)?;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        let sign = match bytes.get(at) {
            Some(b'-') => -1,
            Some(b'+') => 1,
            _ => 0,
        };
        at += usize::from(sign != 0);
        let start = at;
        let mut power: i32 = 0;
        while let Some(&byte) = bytes.get(at) {
            if !byte.is_ascii_digit() || at - start == 3 {
                return None;
            }
            power = power * 10 + i32::from(byte - b'0');
            at += 1;
        }
        if at == start {
            return None;
        }
        exponent += if sign < 0 { -power } else { power };
    }
    if at != bytes.len() {
        return None;
    }
    // At most 15 digits: below 2^53, so exact.
    let mantissa = mantissa as f64;
    let scale = *EXACT_POWERS_OF_TEN.get(usize::try_from(exponent.unsigned_abs()).ok()?)?;
    let value = if exponent < 0 {
        mantissa / scale
    } else {
        mantissa * scale
    };
    Some(if negative { -value } else { value })
}

/// An integer; an integral float (`120.0`, `1.2E3`) is accepted as the integer it is.
pub(super) fn parse_integer(cell: &str) -> Option<i64> {
    if let Ok(i) = cell.parse::<i64>() {
        return Some(i);
    }
    let n = parse_number(cell)?;
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_decimals_read_as_the_standard_parser_reads_them() {
        for (text, want) in [
            ("9.0E7", Some(9.0e7)),
            ("1234.5", Some(1234.5)),
            ("-0.0", Some(-0.0)),
            ("0.1", Some(0.1)),
            ("1.5e-3", Some(0.0015)),
            ("123456789012345E+7", Some(1.23456789012345e21)),
            ("9.99e22", Some(9.99e22)),
            // Left to the standard parser.
            ("1234567890123456.0", None),
            ("1e23", None),
            ("1e-23", None),
            ("1e0100", None),
            (".5", None),
            ("5.", None),
            ("1e", None),
            ("1.5x", None),
            ("+1", None),
        ] {
            assert_eq!(short_decimal(text.as_bytes()), want, "{text}");
        }
        assert!(short_decimal(b"-0.0").unwrap().is_sign_negative());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_short_decimal_path_agrees_with_the_standard_parser(
            text in prop_oneof![
                "-?[0-9]{1,8}(\\.[0-9]{1,7})?([eE][+-]?[0-9]{1,2})?",
                "-?[0-9]{0,17}(\\.[0-9]{0,17})?([eE][+-]?[0-9]{0,4})?x?",
            ]
        ) {
            if let Some(fast) = short_decimal(text.as_bytes()) {
                let std: f64 = text.parse().unwrap();
                prop_assert_eq!(fast.to_bits(), std.to_bits(), "{}", text);
            }
        }
    }
}
