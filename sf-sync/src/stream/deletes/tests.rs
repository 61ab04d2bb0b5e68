use super::*;
use crate::state::StreamState;

fn t(s: &str) -> DateTime<Utc> {
    crate::time::parse_instant(s).unwrap_or_default()
}

#[test]
fn get_deleted_is_never_asked_for_less_than_a_minute() {
    let got = pieces(Window::new(
        t("2024-05-05T10:00:03Z"),
        t("2024-05-05T10:00:09Z"),
    ));
    assert_eq!(
        got,
        [Window::new(
            t("2024-05-05T09:59:00Z"),
            t("2024-05-05T10:00:09Z")
        )]
    );
    // A minute and more: from the span's start, cut to the minute.
    let got = pieces(Window::new(
        t("2024-05-05T10:00:03Z"),
        t("2024-05-05T10:01:09Z"),
    ));
    assert_eq!(
        got,
        [Window::new(
            t("2024-05-05T10:00:00Z"),
            t("2024-05-05T10:01:09Z")
        )]
    );
}

#[test]
fn pieces_start_on_the_minute_and_span_at_most_30_days() {
    let got = pieces(Window::new(
        t("2024-01-01T10:20:30Z"),
        t("2024-03-05T00:00:00Z"),
    ));
    assert_eq!(
        got,
        [
            Window::new(t("2024-01-01T10:20:00Z"), t("2024-01-31T10:20:00Z")),
            Window::new(t("2024-01-31T10:20:00Z"), t("2024-03-01T10:20:00Z")),
            Window::new(t("2024-03-01T10:20:00Z"), t("2024-03-05T00:00:00Z")),
        ]
    );
    assert_eq!(
        pieces(Window::new(
            t("2024-01-01T10:20:30Z"),
            t("2024-01-01T10:25:00Z")
        ))
        .len(),
        1
    );
}

/// Rows of a job cut on its first page went downstream: the next sync asks from the job's
/// window end, or, when the rows are known to have been read after an instant of the org's
/// clock, from that instant (a window end on the cursor's clock lags years behind it while a
/// first sync is resumed, and asking from it told the state was too old).
#[test]
fn rows_read_before_a_cancel_are_asked_about_from_when_they_were_read() {
    let mut state = StreamState::new();
    let mut stones = Tombstones::default();
    stones.read_before(t("2021-06-01T00:00:00Z"));
    stones.note_in(&mut state);
    assert_eq!(
        state.deletes_unknown_from(),
        Some(t("2021-06-01T00:00:00Z"))
    );
    let mut stones = Tombstones {
        read_floor: Some(t("2024-06-01T00:00:00Z")),
        ..Tombstones::default()
    };
    stones.read_before(t("2021-06-01T00:00:00Z"));
    stones.note_in(&mut state);
    assert_eq!(
        state.deletes_unknown_from(),
        Some(t("2024-06-01T00:00:00Z"))
    );
    // A window end after the floor stays.
    let mut stones = Tombstones {
        read_floor: Some(t("2024-06-01T00:00:00Z")),
        ..Tombstones::default()
    };
    stones.read_before(t("2024-06-02T00:00:00Z"));
    stones.note_in(&mut state);
    assert_eq!(
        state.deletes_unknown_from(),
        Some(t("2024-06-02T00:00:00Z"))
    );
}

#[test]
fn tombstones_come_out_by_window_and_not_for_ids_read() {
    let columns = || {
        Some(Arc::from(vec![
            "Id".to_string(),
            "IsDeleted".to_string(),
            "SystemModstamp".to_string(),
        ]))
    };
    let mut stones = Tombstones {
        columns: columns(),
        snapshot: true,
        ..Tombstones::default()
    };
    stones.add("a".into(), t("2024-01-01T10:00:00Z"));
    stones.add("b".into(), t("2024-01-01T11:00:00Z"));
    stones.add("c".into(), t("2024-01-01T12:00:00Z"));
    stones.add("c".into(), t("2024-01-01T12:00:00Z"));
    let row = |fields: &[(&str, Value)]| Record {
        columns: fields.iter().map(|(c, _)| c.to_string()).collect(),
        values: fields.iter().map(|(_, v)| v.clone()).collect(),
    };
    let id = |i: &str| ("Id", Value::String(i.into()));
    let at = |s: &str| ("SystemModstamp", Value::String(s.into()));
    // Rows from before the deletion (a results snapshot taken then) do not cancel it,
    // with or without `IsDeleted`, nor does a row without a cursor.
    stones.seen(&row(&[id("a"), at("2024-01-01T09:59:59.999Z")]));
    stones.seen(&row(&[
        id("c"),
        ("IsDeleted", Value::Bool(false)),
        at("2024-01-01T11:00:00.000Z"),
    ]));
    stones.seen(&row(&[id("c")]));
    // Undeleted since (a cursor at or after the deletion), or read as deleted: no tombstone.
    stones.seen(&row(&[id("b"), at("2024-01-01T11:00:00.000Z")]));
    assert_eq!(stones.unknown_from(), Some(t("2024-01-01T10:00:00Z")));
    assert!(!stones.is_empty());
    assert_eq!(
        stones.take_before(Some(t("2024-01-01T11:30:00Z"))),
        [(t("2024-01-01T10:00:00Z"), "a".to_string())]
    );
    assert_eq!(
        stones.take_before(None),
        [(t("2024-01-01T12:00:00Z"), "c".to_string())]
    );
    assert!(stones.is_empty());
    assert!(stones.take_before(None).is_empty());
    assert_eq!(stones.unknown_from(), None);

    let mut stones = Tombstones {
        columns: columns(),
        snapshot: true,
        ..Tombstones::default()
    };
    stones.add("d".into(), t("2024-01-01T10:00:00Z"));
    stones.add("e".into(), t("2024-01-01T12:00:00Z"));
    stones.seen(&row(&[
        id("d"),
        ("IsDeleted", Value::Bool(true)),
        at("2024-01-01T09:00:00.000Z"),
    ]));
    // The earliest tombstone not out yet, or where getDeleted could not list them.
    assert_eq!(stones.unknown_from(), Some(t("2024-01-01T12:00:00Z")));
    stones.unknown = Some(t("2024-01-01T11:00:00Z"));
    assert_eq!(stones.unknown_from(), Some(t("2024-01-01T11:00:00Z")));
    assert_eq!(
        stones.take_before(None),
        [(t("2024-01-01T12:00:00Z"), "e".to_string())]
    );

    // Rows read now (not a snapshot): any row cancels, whatever its cursor (an undeleted
    // record whose cursor, `CreatedDate` say, did not move).
    let mut stones = Tombstones {
        columns: columns(),
        ..Tombstones::default()
    };
    stones.add("f".into(), t("2024-01-01T10:00:00Z"));
    stones.seen(&row(&[id("f"), at("2023-06-01T00:00:00.000Z")]));
    assert!(stones.is_empty());
}

#[test]
fn halves_split_on_a_minute_and_stop_under_two_minutes() {
    let w = |a: &str, b: &str| Window::new(t(a), t(b));
    assert_eq!(
        halves(w("2024-01-01T00:00:00Z", "2024-01-01T00:10:00Z")),
        Some((
            w("2024-01-01T00:00:00Z", "2024-01-01T00:05:00Z"),
            w("2024-01-01T00:05:00Z", "2024-01-01T00:10:00Z"),
        ))
    );
    // An odd length and an end with seconds: the cut is on a minute, each half a minute or more.
    assert_eq!(
        halves(w("2024-01-01T00:00:00Z", "2024-01-01T00:03:30Z")),
        Some((
            w("2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"),
            w("2024-01-01T00:01:00Z", "2024-01-01T00:03:30Z"),
        ))
    );
    assert_eq!(
        halves(w("2024-01-01T00:00:00Z", "2024-01-01T00:02:00Z")),
        Some((
            w("2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"),
            w("2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"),
        ))
    );
    assert_eq!(
        halves(w("2024-01-01T00:00:00Z", "2024-01-01T00:01:59Z")),
        None
    );
    assert_eq!(
        halves(w("2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z")),
        None
    );
}
