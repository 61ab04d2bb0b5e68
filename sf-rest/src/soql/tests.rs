#![allow(clippy::unwrap_used)]
use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

/// Undoes [`quote`].
fn unquote(literal: &str) -> String {
    let inner = &literal[1..literal.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next().unwrap() {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                other => out.push(other),
            }
        } else {
            assert!(c != '\'', "an unescaped quote in {literal}");
            out.push(c);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn datetime_bounds_select_exactly_the_window(secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000) {
        let t = DateTime::from_timestamp(secs, nanos).unwrap();
        let literal = bound_literal(CursorKind::DateTime, t);
        prop_assert!(literal.ends_with('Z') && !literal.contains('+'));
        let back = DateTime::parse_from_rfc3339(&literal).unwrap().with_timezone(&Utc);
        // The smallest millisecond instant not before t.
        prop_assert!(back >= t);
        prop_assert!(back - t < Duration::milliseconds(1));
        prop_assert_eq!(back.timestamp_subsec_nanos() % 1_000_000, 0);
        prop_assert_eq!(CursorValue::parse(&literal), Some(CursorValue::DateTime(back)));
    }

    #[test]
    fn date_bounds_select_exactly_the_dates_whose_midnight_is_in_the_window(secs in 0i64..4_000_000_000) {
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        let literal = bound_literal(CursorKind::Date, t);
        let date = NaiveDate::parse_from_str(&literal, "%Y-%m-%d").unwrap();
        let midnight = date.and_time(NaiveTime::MIN).and_utc();
        prop_assert!(midnight >= t);
        prop_assert!(midnight - t < Duration::days(1));
    }

    #[test]
    fn string_literals_round_trip(value in "\\PC*", raw in proptest::collection::vec(any::<char>(), 0..20)) {
        for text in [value, raw.into_iter().collect::<String>()] {
            let literal = quote(&text);
            prop_assert_eq!(unquote(&literal), text);
        }
    }

    #[test]
    fn built_queries_keep_their_parts_in_order(
        fields in proptest::collection::vec("[A-Za-z][A-Za-z0-9_]{0,20}", 1..30),
        start in proptest::option::of(0i64..4_000_000_000),
        id in proptest::option::of("[0-9A-Za-z]{18}"),
        limit in proptest::option::of(1u64..100_000),
    ) {
        let window = Window::new("SystemModstamp", start.and_then(|s| DateTime::from_timestamp(s, 0)), None);
        let mut soql = Soql::select("Account", fields.clone()).window(window).order(Order::Id);
        if let Some(id) = &id {
            soql = soql.after(ResumeKey::id(id.clone()));
        }
        if let Some(n) = limit {
            soql = soql.limit(n);
        }
        let text = soql.build().unwrap();
        let select = format!("SELECT {} FROM Account", fields.join(","));
        prop_assert!(text.starts_with(&select), "{}", text);
        let rest = &text[select.len()..];
        let where_at = rest.find(" WHERE ");
        prop_assert_eq!(where_at.is_some(), start.is_some() || id.is_some());
        let order_at = rest.find(" ORDER BY Id ASC").unwrap();
        prop_assert!(where_at.is_none_or(|w| w < order_at));
        let tail = match limit {
            Some(n) => format!(" ORDER BY Id ASC LIMIT {}", n),
            None => " ORDER BY Id ASC".to_string(),
        };
        prop_assert!(rest.ends_with(&tail), "{}", text);
    }
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

#[test]
fn full_refresh_query_has_no_where() {
    let soql = Soql::select("Account", ["Id", "Name"])
        .order(Order::Id)
        .build()
        .unwrap();
    assert_eq!(soql, "SELECT Id,Name FROM Account ORDER BY Id ASC");
    let soql = Soql::select("Account", ["Id", "Name"]).build().unwrap();
    assert_eq!(soql, "SELECT Id,Name FROM Account");
}

#[test]
fn window_bounds_are_half_open_and_unquoted() {
    let w = Window::new("SystemModstamp", Some(at(2024, 1, 1, 0, 0, 0)), None);
    let soql = Soql::select("Lead", ["Id"])
        .window(w)
        .limit(10)
        .build()
        .unwrap();
    assert_eq!(
        soql,
        "SELECT Id FROM Lead WHERE SystemModstamp >= 2024-01-01T00:00:00Z LIMIT 10"
    );
    let w = Window::new("SystemModstamp", None, Some(at(2024, 2, 1, 12, 0, 0)));
    let soql = Soql::select("Lead", ["Id"]).window(w).build().unwrap();
    assert_eq!(
        soql,
        "SELECT Id FROM Lead WHERE SystemModstamp < 2024-02-01T12:00:00Z"
    );
}

#[test]
fn milliseconds_are_kept_and_sub_milliseconds_round_up() {
    let t = at(2024, 1, 1, 0, 0, 0) + Duration::milliseconds(250);
    let w = Window::new("SystemModstamp", Some(t), None);
    let soql = Soql::select("Lead", ["Id"]).window(w).build().unwrap();
    assert!(
        soql.ends_with("SystemModstamp >= 2024-01-01T00:00:00.250Z"),
        "{soql}"
    );
    let t = at(2024, 1, 1, 0, 0, 0) + Duration::microseconds(250_001);
    let w = Window::new("SystemModstamp", None, Some(t));
    let soql = Soql::select("Lead", ["Id"]).window(w).build().unwrap();
    assert!(
        soql.ends_with("SystemModstamp < 2024-01-01T00:00:00.251Z"),
        "{soql}"
    );
}

#[test]
fn date_cursors_take_dates_rounded_up() {
    let w = Window {
        field: "ActivityDate".into(),
        kind: CursorKind::Date,
        start: Some(at(2024, 3, 1, 0, 0, 0)),
        end: Some(at(2024, 3, 5, 6, 0, 0)),
    };
    let soql = Soql::select("Task", ["Id"]).window(w).build().unwrap();
    assert_eq!(
        soql,
        "SELECT Id FROM Task WHERE ActivityDate >= 2024-03-01 AND ActivityDate < 2024-03-06"
    );
}

#[test]
fn resume_conditions() {
    let soql = Soql::select("Account", ["Id"])
        .after(ResumeKey::id("001000000000001AAA"))
        .order(Order::Id)
        .build()
        .unwrap();
    assert_eq!(
        soql,
        "SELECT Id FROM Account WHERE Id > '001000000000001AAA' ORDER BY Id ASC"
    );
    let key = ResumeKey::cursor(
        "SystemModstamp",
        CursorValue::parse("2024-01-02T03:04:05.000+0000").unwrap(),
        "001x",
    );
    let soql = Soql::select("Account", ["Id"])
        .window(Window::new(
            "SystemModstamp",
            Some(at(2024, 1, 1, 0, 0, 0)),
            None,
        ))
        .after(key)
        .order(Order::CursorThenId("SystemModstamp".into()))
        .build()
        .unwrap();
    assert_eq!(
        soql,
        "SELECT Id FROM Account WHERE SystemModstamp >= 2024-01-01T00:00:00Z AND \
         (SystemModstamp > 2024-01-02T03:04:05Z OR (SystemModstamp = 2024-01-02T03:04:05Z \
         AND Id > '001x')) ORDER BY SystemModstamp ASC,Id ASC"
    );
}

#[test]
fn count_ignores_order_and_limit() {
    let soql = Soql::count("Account")
        .window(Window::new(
            "SystemModstamp",
            Some(at(2024, 1, 1, 0, 0, 0)),
            None,
        ))
        .order(Order::Id)
        .limit(5)
        .build()
        .unwrap();
    assert_eq!(
        soql,
        "SELECT COUNT() FROM Account WHERE SystemModstamp >= 2024-01-01T00:00:00Z"
    );
}

#[test]
fn in_lists_quote_and_escape() {
    let soql = Soql::select("Account", ["Id", "Name"])
        .where_in("Id", ["001a", "o'brien\\"])
        .build()
        .unwrap();
    assert_eq!(
        soql,
        r"SELECT Id,Name FROM Account WHERE Id IN ('001a','o\'brien\\')"
    );
}

#[test]
fn equalities_are_top_level_conjuncts_quoted_and_their_fields_checked() {
    let window = Window::new(
        "SystemModstamp",
        Some(at(2024, 5, 1, 0, 0, 0)),
        Some(at(2024, 5, 1, 1, 0, 0)),
    );
    let soql = Soql::select("Knowledge__kav", ["Id", "Title"])
        .window(window)
        .where_eq("PublishStatus", "Online")
        .where_eq("Language", "o'c")
        .order(Order::CursorThenId("SystemModstamp".into()))
        .build()
        .unwrap();
    assert_eq!(
        soql,
        "SELECT Id,Title FROM Knowledge__kav WHERE SystemModstamp >= 2024-05-01T00:00:00Z \
         AND SystemModstamp < 2024-05-01T01:00:00Z AND PublishStatus = 'Online' \
         AND Language = 'o\\'c' ORDER BY SystemModstamp ASC,Id ASC"
    );
    let bad = Soql::select("Knowledge__kav", ["Id"])
        .where_eq("PublishStatus = 'x' OR Id", "y")
        .build();
    assert!(bad.is_err(), "{bad:?}");
}

#[test]
fn names_are_validated() {
    for (object, field) in [
        ("Account WHERE", "Id"),
        ("Account", "Id,Name"),
        ("Account", "Name) OR (1"),
        ("", "Id"),
        ("Account", ".Email"),
    ] {
        let err = Soql::select(object, [field]).build().unwrap_err();
        assert!(matches!(err, Error::QueryBuild { .. }), "{object} {field}");
    }
    assert!(Soql::select("Account", Vec::<String>::new())
        .build()
        .is_err());
    let ok = Soql::select("ns__Thing__c", ["Owner.Email", "ns__Amount__c"])
        .spaced_fields()
        .build()
        .unwrap();
    assert_eq!(ok, "SELECT Owner.Email, ns__Amount__c FROM ns__Thing__c");
}

#[test]
fn cursor_values_parse_both_wire_forms() {
    let rest = CursorValue::parse("2024-01-02T03:04:05.120+0000").unwrap();
    let bulk = CursorValue::parse("2024-01-02T03:04:05.120Z").unwrap();
    assert_eq!(rest, bulk);
    assert_eq!(rest.literal(), "2024-01-02T03:04:05.120Z");
    assert_eq!(
        CursorValue::parse("2024-01-02").unwrap().literal(),
        "2024-01-02"
    );
    assert_eq!(CursorValue::parse("soon"), None);
}
