//! Instants: the forms they are read in and the one form they are written in.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, TimeDelta, Utc};
use sf_discovery::parse_datetime;

/// Writes an instant as `YYYY-MM-DDTHH:MM:SS.sssZ`, the form of Airbyte's date-range state (and
/// of records: `sf-discovery`'s one writer).
pub(crate) use sf_discovery::format_datetime as format_instant;

/// Reads `YYYY-MM-DD` (midnight UTC) or any datetime form Salesforce or Airbyte writes
/// (`...000Z`, `...000+0000`, `+00:00`, no fraction), truncated to milliseconds. A datetime with
/// no offset (`2024-03-01T10:00:00`, or with a space for the `T`) is UTC, as the Airbyte CDK's
/// parser (pendulum) reads it, so a state a person or another tool wrote that way is kept.
pub(crate) fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    parse_datetime(text)
        .or_else(|| parse_datetime(&text.replacen(' ', "T", 1)))
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|form| NaiveDateTime::parse_from_str(text, form).ok())
                .map(|t| t.and_utc().trunc_subsecs(3))
        })
}

/// Reads a config date: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (a fraction before the `Z` is
/// accepted too). Offsets other than `Z` are refused: config dates are UTC.
pub(crate) fn parse_config_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.len() == 10 {
        return NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc());
    }
    if !text.ends_with('Z') || text.len() < 20 || text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    parse_datetime(text)
}

/// `t + d`, saturating at chrono's range instead of panicking.
pub(crate) fn add(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < TimeDelta::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// `t - d`, saturating.
pub(crate) fn sub(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(if d < TimeDelta::zero() {
        DateTime::<Utc>::MAX_UTC
    } else {
        DateTime::<Utc>::MIN_UTC
    })
}

/// A `std` duration as a time delta, saturating.
pub(crate) fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form_and_writes_one() {
        let want = "2021-10-02T05:08:29.000Z";
        for text in [
            "2021-10-02T05:08:29.000Z",
            "2021-10-02T05:08:29Z",
            "2021-10-02T05:08:29.000+0000",
            "2021-10-02T05:08:29+00:00",
            "2021-10-02T07:08:29.000+02:00",
            "2021-10-02T05:08:29.000999Z",
            // No offset: UTC, as Airbyte's CDK reads it.
            "2021-10-02T05:08:29",
            "2021-10-02T05:08:29.000",
            "2021-10-02 05:08:29",
            "2021-10-02 05:08:29.000123",
            "2021-10-02 07:08:29+02:00",
        ] {
            let t = parse_instant(text).unwrap();
            assert_eq!(format_instant(t), want, "{text}");
        }
        assert_eq!(
            format_instant(parse_instant("2021-10-02").unwrap()),
            "2021-10-02T00:00:00.000Z"
        );
        assert_eq!(parse_instant("yesterday"), None);
        assert_eq!(parse_instant("2021-13-02"), None);
        assert_eq!(parse_instant("2021-10-02T25:08:29"), None);
        assert_eq!(parse_instant("2021-10-02 05:08"), None);
    }

    #[test]
    fn config_dates_are_utc_only() {
        assert_eq!(
            format_instant(parse_config_date("2021-07-25").unwrap()),
            "2021-07-25T00:00:00.000Z"
        );
        assert_eq!(
            format_instant(parse_config_date("2021-07-25T10:11:12Z").unwrap()),
            "2021-07-25T10:11:12.000Z"
        );
        assert_eq!(
            format_instant(parse_config_date("2021-07-25T10:11:12.345Z").unwrap()),
            "2021-07-25T10:11:12.345Z"
        );
        for bad in [
            "2021-07-25T10:11:12+02:00",
            "2021-07-25 10:11:12Z",
            "25/07/2021",
            "2021-7-25",
            "2021-02-30",
            "",
        ] {
            assert_eq!(parse_config_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn arithmetic_saturates() {
        let t = parse_instant("2021-10-02").unwrap();
        assert_eq!(add(t, TimeDelta::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(sub(t, TimeDelta::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            add(t, TimeDelta::seconds(1)),
            sub(t, TimeDelta::seconds(-1))
        );
    }
}
