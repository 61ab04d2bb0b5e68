//! ISO 8601 durations (`PnYnMnWnDTnHnMnS`), as `stream_slice_step` and `lookback_window` use them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Error;

/// Seconds in a day.
const DAY: u64 = 86_400;
/// A month is 30 days (see [`IsoDuration`]).
const MONTH: u64 = 30 * DAY;
/// A year is 365 days (see [`IsoDuration`]).
const YEAR: u64 = 365 * DAY;
/// The longest duration accepted: 10,000 years, far beyond any sensible window, short enough that
/// date arithmetic with it never overflows.
const MAX_SECONDS: u64 = 10_000 * YEAR;

/// An ISO 8601 duration `PnYnMnWnDTnHnMnS`, as typed, with its length in seconds.
///
/// Calendar units have fixed lengths: a **year is 365 days, a month 30 days**, a week 7 days and a
/// day 86,400 seconds (UTC has no daylight saving time), so `P1M` is always 30 days and `P1Y`
/// 365 days. Components may be combined in that order (`P1Y2M3W4DT5H6M7.5S`), each at most once.
/// The last component may take a fraction (`.` or `,`, up to 9 digits: `PT1.5H`, `P0.5D`,
/// `PT0.25S`), as ISO 8601 allows for the lowest-order component and as Airbyte's connector accepts
/// (pendulum validates these keys); years and months never do, since pendulum refuses them too
/// ("Float years in duration are not supported"). A fraction of a larger unit is carried into days,
/// hours, minutes and seconds (`PT1.5H` is kept and shown as `PT1H30M`). Letters may be lower case.
/// Negative durations and the alternative form `P0003-06-04T12:30:05` are refused, as is anything
/// longer than 10,000 years.
///
/// `Display` writes a canonical form (zero components left out, `PT0S` for zero) that parses back
/// to the same duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IsoDuration {
    years: u64,
    months: u64,
    weeks: u64,
    days: u64,
    hours: u64,
    minutes: u64,
    seconds: u64,
    nanos: u32,
    total: Duration,
}

impl IsoDuration {
    /// Parses `PnYnMnWnDTnHnMnS`; the error says what is wrong and shows a correct form.
    pub fn parse(text: &str) -> Result<IsoDuration, Error> {
        parse(text.trim()).map_err(|reason| Error::DurationParse {
            value: text.to_string(),
            reason,
        })
    }

    /// The duration of `secs` seconds (at most 10,000 years), written as days, hours, minutes and
    /// seconds.
    pub fn from_secs(secs: u64) -> IsoDuration {
        let secs = secs.min(MAX_SECONDS);
        let mut d = IsoDuration {
            days: secs / DAY,
            hours: secs % DAY / 3600,
            minutes: secs % 3600 / 60,
            seconds: secs % 60,
            ..IsoDuration::default()
        };
        d.total = Duration::from_secs(secs);
        d
    }

    /// The length (months as 30 days, years as 365 days).
    pub fn as_std(&self) -> Duration {
        self.total
    }

    /// The length as a `chrono` time delta.
    pub fn as_chrono(&self) -> chrono::TimeDelta {
        // The total is capped at 10,000 years, well inside TimeDelta's range.
        chrono::TimeDelta::from_std(self.total).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// True when the duration is zero.
    pub fn is_zero(&self) -> bool {
        self.total.is_zero()
    }
}

impl FromStr for IsoDuration {
    type Err = Error;

    fn from_str(text: &str) -> Result<IsoDuration, Error> {
        IsoDuration::parse(text)
    }
}

impl fmt::Display for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P")?;
        for (n, unit) in [
            (self.years, 'Y'),
            (self.months, 'M'),
            (self.weeks, 'W'),
            (self.days, 'D'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        let has_time = self.hours > 0 || self.minutes > 0 || self.seconds > 0 || self.nanos > 0;
        if !has_time {
            let has_date = self.years > 0 || self.months > 0 || self.weeks > 0 || self.days > 0;
            return if has_date { Ok(()) } else { f.write_str("T0S") };
        }
        f.write_str("T")?;
        if self.hours > 0 {
            write!(f, "{}H", self.hours)?;
        }
        if self.minutes > 0 {
            write!(f, "{}M", self.minutes)?;
        }
        if self.seconds > 0 || self.nanos > 0 {
            write!(f, "{}", self.seconds)?;
            if self.nanos > 0 {
                let frac = format!("{:09}", self.nanos);
                write!(f, ".{}", frac.trim_end_matches('0'))?;
            }
            f.write_str("S")?;
        }
        Ok(())
    }
}

/// Units in the order they must appear; `T` separates the date units from the time units.
const DATE_UNITS: [char; 4] = ['Y', 'M', 'W', 'D'];
const TIME_UNITS: [char; 3] = ['H', 'M', 'S'];

fn parse(text: &str) -> Result<IsoDuration, String> {
    if text.is_empty() {
        return Err("it is empty; use e.g. `P30D` or `PT10M`".into());
    }
    if text.starts_with('-') {
        return Err("negative durations are not allowed".into());
    }
    let upper = text.to_ascii_uppercase();
    let Some(body) = upper.strip_prefix('P') else {
        return Err("it must start with `P`, as in `P30D` or `PT12H`".into());
    };
    if body.is_empty() {
        return Err("`P` must be followed by at least one component, as in `P1D`".into());
    }
    let (date_part, time_part) = match body.split_once('T') {
        // A `T` ending a duration that has days (`P1DT`) adds nothing: Airbyte's connector
        // (isodate) reads it as `P1D`, so it is read alike; alone (`PT`) it says nothing.
        Some((d, "")) if !d.is_empty() => (d, None),
        Some((d, t)) => {
            if t.is_empty() {
                return Err(
                    "`T` must be followed by hours, minutes or seconds, as in `PT1H`".into(),
                );
            }
            (d, Some(t))
        }
        None => (body, None),
    };
    let mut d = IsoDuration::default();
    let date = components(date_part, &DATE_UNITS, false)?;
    let time = match time_part {
        Some(time_part) => components(time_part, &TIME_UNITS, true)?,
        None => Vec::new(),
    };
    let count = date.len() + time.len();
    // The fraction of the last component, as (the unit's length in seconds, nanos of one unit).
    let mut fraction: Option<(u64, u64)> = None;
    for (i, (unit, value, is_time)) in date
        .iter()
        .map(|(u, v)| (*u, v, false))
        .chain(time.iter().map(|(u, v)| (*u, v, true)))
        .enumerate()
    {
        let unit_secs = match (unit, is_time) {
            ('Y', _) => YEAR,
            ('M', false) => MONTH,
            ('W', _) => 7 * DAY,
            ('D', _) => DAY,
            ('H', _) => 3600,
            ('M', true) => 60,
            _ => 1,
        };
        if let Some(nanos) = value.fraction {
            if i + 1 != count {
                return Err(format!(
                    "`{}{unit}`: only the last component may have a fraction, as in `PT1H30.5M`",
                    value.text
                ));
            }
            if unit_secs > DAY * 7 {
                let which = if unit == 'Y' { "years" } else { "months" };
                return Err(format!(
                    "`{}{unit}`: {which} cannot have a fraction; write the rest in smaller units, as in `P1Y6M` or `P1M15D`",
                    value.text
                ));
            }
            fraction = Some((unit_secs, nanos));
        }
        let n = value.whole;
        match (unit, is_time) {
            ('Y', _) => d.years = n,
            ('M', false) => d.months = n,
            ('W', _) => d.weeks = n,
            ('D', _) => d.days = n,
            ('H', _) => d.hours = n,
            ('M', true) => d.minutes = n,
            _ => d.seconds = n,
        }
    }
    match fraction {
        Some((1, nanos)) => d.nanos = nanos as u32,
        Some((unit_secs, nanos)) => carry_fraction(&mut d, unit_secs, nanos)
            .ok_or_else(|| "it is longer than 10,000 years".to_string())?,
        None => {}
    }
    let total = [
        (d.years, YEAR),
        (d.months, MONTH),
        (d.weeks, 7 * DAY),
        (d.days, DAY),
        (d.hours, 3600),
        (d.minutes, 60),
        (d.seconds, 1),
    ]
    .iter()
    .try_fold(0u64, |acc, &(n, unit)| {
        n.checked_mul(unit).and_then(|s| acc.checked_add(s))
    })
    .filter(|&secs| secs < MAX_SECONDS || (secs == MAX_SECONDS && d.nanos == 0))
    .ok_or_else(|| "it is longer than 10,000 years".to_string())?;
    d.total = Duration::new(total, d.nanos);
    Ok(d)
}

/// Adds `nanos` billionths of a unit of `unit_secs` seconds to `d`, then writes its days, hours,
/// minutes and seconds in canonical form (each below the next unit), so `PT1.5H` is `PT1H30M`.
/// `None` on overflow.
fn carry_fraction(d: &mut IsoDuration, unit_secs: u64, nanos: u64) -> Option<()> {
    let extra = u128::from(unit_secs) * u128::from(nanos);
    let extra_secs = u64::try_from(extra / 1_000_000_000).ok()?;
    d.nanos = (extra % 1_000_000_000) as u32;
    let small = d
        .days
        .checked_mul(DAY)?
        .checked_add(d.hours.checked_mul(3600)?)?
        .checked_add(d.minutes.checked_mul(60)?)?
        .checked_add(d.seconds)?
        .checked_add(extra_secs)?;
    d.days = small / DAY;
    d.hours = small % DAY / 3600;
    d.minutes = small % 3600 / 60;
    d.seconds = small % 60;
    Some(())
}

/// A number as written: its whole part and, when it has a fraction, the fraction in billionths.
struct Number<'a> {
    text: &'a str,
    whole: u64,
    fraction: Option<u64>,
}

/// Splits `text` into `(unit, number)` pairs, units in the order of `units`, each at most once.
fn components<'a>(
    text: &'a str,
    units: &[char],
    is_time: bool,
) -> Result<Vec<(char, Number<'a>)>, String> {
    let mut out = Vec::new();
    let mut next_unit = 0usize;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
            .ok_or_else(|| format!("`{rest}` has no unit letter after the number"))?;
        let (number, tail) = rest.split_at(end);
        let mut chars = tail.chars();
        let unit = chars.next().unwrap_or(' ');
        rest = chars.as_str();
        let Some(pos) = units.iter().position(|&u| u == unit) else {
            return Err(misplaced(unit, is_time));
        };
        if number.is_empty() {
            return Err(format!("`{unit}` must follow a number, as in `3{unit}`"));
        }
        if pos < next_unit {
            return Err(format!(
                "`{unit}` is repeated or out of order; the order is {}",
                if is_time { "H, M, S" } else { "Y, M, W, D" }
            ));
        }
        next_unit = pos + 1;
        out.push((unit, number_value(number, unit)?));
    }
    Ok(out)
}

fn misplaced(unit: char, is_time: bool) -> String {
    match (unit, is_time) {
        ('H' | 'S', false) => {
            format!("hours, minutes and seconds need a `T` before them, as in `PT221{unit}`")
        }
        ('Y' | 'W' | 'D', true) => {
            format!("`{unit}` belongs before the `T`, as in `P1{unit}` or `P1{unit}T12H`")
        }
        ('T', _) => "`T` may appear only once".to_string(),
        _ => format!(
            "`{unit}` is not a duration unit; use Y, M, W, D before `T` and H, M, S after it"
        ),
    }
}

fn number_value(number: &str, unit: char) -> Result<Number<'_>, String> {
    let (whole, frac) = match number.find(['.', ',']) {
        Some(i) => (&number[..i], Some(&number[i + 1..])),
        None => (number, None),
    };
    if whole.is_empty() {
        return Err(format!(
            "`{number}{unit}` needs a digit before the decimal mark"
        ));
    }
    let whole: u64 = whole
        .parse()
        .map_err(|_| format!("`{number}{unit}` is too large"))?;
    let fraction = match frac {
        None => None,
        Some(frac) => {
            if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "`{number}{unit}` needs 1 to 9 digits after one decimal mark, as in `1.5{unit}`"
                ));
            }
            let padded = format!("{frac:0<9}");
            Some(
                padded
                    .parse::<u64>()
                    .map_err(|_| format!("`{number}{unit}` has a bad fraction"))?,
            )
        }
    };
    Ok(Number {
        text: number,
        whole,
        fraction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(text: &str) -> f64 {
        IsoDuration::parse(text).unwrap().as_std().as_secs_f64()
    }

    #[test]
    fn common_forms() {
        assert_eq!(secs("P30D"), 30.0 * 86_400.0);
        assert_eq!(secs("PT10M"), 600.0);
        assert_eq!(secs("PT12H"), 43_200.0);
        assert_eq!(secs("P7D"), 7.0 * 86_400.0);
        assert_eq!(secs("P1M"), 30.0 * 86_400.0);
        assert_eq!(secs("P1Y"), 365.0 * 86_400.0);
        assert_eq!(secs("P2W"), 14.0 * 86_400.0);
        assert_eq!(secs("PT0.1S"), 0.1);
        assert_eq!(secs("PT1,5S"), 1.5);
        assert_eq!(secs("pt1h30m"), 5400.0);
        assert_eq!(secs(" P1DT1S "), 86_401.0);
        // A trailing `T` after days, as Airbyte's connector reads it.
        assert_eq!(secs("P1DT"), 86_400.0);
        assert_eq!(secs("p2wt"), 14.0 * 86_400.0);
        assert_eq!(secs("P0D"), 0.0);
        // A fraction on the last component, whatever its unit (Airbyte's connector accepts these).
        assert_eq!(secs("PT1.5H"), 5400.0);
        assert_eq!(secs("P0.5D"), 43_200.0);
        assert_eq!(secs("P1,5W"), 1.5 * 7.0 * 86_400.0);
        assert_eq!(secs("PT0.25M"), 15.0);
        assert_eq!(secs("P1DT0.5H"), 86_400.0 + 1800.0);
        assert_eq!(
            IsoDuration::parse("PT0.000000001H").unwrap().as_std(),
            Duration::from_nanos(3600)
        );
        assert_eq!(
            secs("P1Y2M3W4DT5H6M7.25S"),
            (365 + 60 + 21 + 4) as f64 * 86_400.0 + 5.0 * 3600.0 + 6.0 * 60.0 + 7.25
        );
    }

    #[test]
    fn bad_forms_say_why() {
        for (text, hint) in [
            ("2023", "must start with `P`"),
            ("P221S", "need a `T` before them, as in `PT221S`"),
            ("PT1D", "belongs before the `T`"),
            ("P", "at least one component"),
            ("PT", "`T` must be followed"),
            ("", "empty"),
            ("-P1D", "negative"),
            ("P1D2Y", "out of order"),
            ("P1D1D", "repeated"),
            ("P1.5Y", "years cannot have a fraction"),
            ("P1,5M", "months cannot have a fraction"),
            ("PT1.5H30M", "only the last component may have a fraction"),
            ("P1.5DT1H", "only the last component may have a fraction"),
            ("PT1.5.5H", "1 to 9 digits"),
            ("PT.5S", "digit before the decimal mark"),
            ("PT1.S", "1 to 9 digits"),
            ("PT1.0000000001S", "1 to 9 digits"),
            ("P1X", "not a duration unit"),
            ("PD", "must follow a number"),
            ("P10", "no unit letter"),
            ("P99999999999999999999D", "too large"),
            ("P20000Y", "longer than 10,000 years"),
            ("P1DT1HT1M", "only once"),
        ] {
            let err = IsoDuration::parse(text).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(hint), "{text:?}: {msg}");
            assert!(
                msg.starts_with(&format!("`{text}` is not an ISO 8601 duration")),
                "{msg}"
            );
        }
    }

    #[test]
    fn display_is_canonical() {
        for (text, shown) in [
            ("P30D", "P30D"),
            ("P0D", "PT0S"),
            ("PT0.500S", "PT0.5S"),
            ("P1Y0M2DT0H3M", "P1Y2DT3M"),
            ("pt10m", "PT10M"),
            ("PT1.5H", "PT1H30M"),
            ("P1.5W", "P1W3DT12H"),
            ("PT36.5H", "P1DT12H30M"),
            ("P1DT23H59.5M", "P1DT23H59M30S"),
            ("PT0.0000001H", "PT0.00036S"),
        ] {
            assert_eq!(IsoDuration::parse(text).unwrap().to_string(), shown);
        }
        assert_eq!(IsoDuration::from_secs(90_061).to_string(), "P1DT1H1M1S");
        assert_eq!(
            IsoDuration::from_secs(90_061).as_std(),
            Duration::from_secs(90_061)
        );
        assert_eq!(IsoDuration::from_secs(0).to_string(), "PT0S");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trips(
            parts in proptest::collection::vec(proptest::option::of(0u64..400), 7),
            nanos in proptest::option::of(0u32..1_000_000_000),
        ) {
            let units = ['Y', 'M', 'W', 'D', 'H', 'M', 'S'];
            let mut text = String::from("P");
            let mut expected = 0u64;
            let weights = [YEAR, MONTH, 7 * DAY, DAY, 3600, 60, 1];
            let mut any = false;
            for (i, part) in parts.iter().enumerate() {
                if i == 4 && (parts[4..].iter().any(Option::is_some) || nanos.is_some()) {
                    text.push('T');
                }
                if let Some(n) = part {
                    text.push_str(&n.to_string());
                    if i == 6 {
                        if let Some(ns) = nanos {
                            text.push_str(&format!(".{ns:09}"));
                        }
                    }
                    text.push(units[i]);
                    expected += n * weights[i];
                    any = true;
                } else if i == 6 {
                    if let Some(ns) = nanos {
                        text.push_str(&format!("0.{ns:09}S"));
                        any = true;
                    }
                }
            }
            prop_assume!(any);
            let parsed = IsoDuration::parse(&text).unwrap();
            prop_assert_eq!(parsed.as_std(), Duration::new(expected, nanos.unwrap_or(0)));
            let again = IsoDuration::parse(&parsed.to_string()).unwrap();
            prop_assert_eq!(again, parsed);
        }

        #[test]
        fn a_fraction_on_the_last_component_counts_exactly(
            whole in 0u64..1000,
            frac in 0u64..1_000_000_000,
            digits in 1usize..=9,
            unit in 0usize..5,
        ) {
            let (text_unit, unit_secs) = [("W", 7 * DAY), ("D", DAY), ("TH", 3600), ("TM", 60), ("TS", 1)][unit];
            let written = format!("{frac:09}");
            let written = &written[..digits];
            let (time, letter) = text_unit.split_at(text_unit.len() - 1);
            let text = format!("P{time}{whole}.{written}{letter}");
            let billionths = u128::from(written.parse::<u64>().unwrap()) * 10u128.pow(9 - digits as u32);
            let expected = u128::from(whole * unit_secs) * 1_000_000_000 + billionths * u128::from(unit_secs);
            let parsed = IsoDuration::parse(&text).unwrap();
            prop_assert_eq!(parsed.as_std().as_nanos(), expected, "{}", text);
            let again = IsoDuration::parse(&parsed.to_string()).unwrap();
            prop_assert_eq!(again.as_std(), parsed.as_std());
        }

        #[test]
        fn never_panics(text in "[-PpTt0-9YMWDHS.,]{0,24}") {
            if let Ok(d) = IsoDuration::parse(&text) {
                prop_assert_eq!(IsoDuration::parse(&d.to_string()).unwrap(), d);
            }
        }

        #[test]
        fn never_panics_on_anything(text in "\\PC{0,16}") {
            let _ = IsoDuration::parse(&text);
        }
    }
}
