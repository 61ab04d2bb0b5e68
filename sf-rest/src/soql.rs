//! A SOQL builder for extraction queries: fields, a half-open cursor window, resume after a key,
//! `Id IN (...)`, optional ordering and `LIMIT`, and `SELECT COUNT()`.
//!
//! It knows nothing about REST paging, so the Bulk path can build its job SOQL with it too.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use sf_discovery::{FieldType, StreamSpec};

use crate::error::Error;

/// How a cursor field is typed, which decides how its literals are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CursorKind {
    /// A `datetime` field: literals `YYYY-MM-DDTHH:MM:SSZ` (or `...SS.sssZ`), unquoted UTC.
    DateTime,
    /// A `date` field: literals `YYYY-MM-DD`.
    Date,
}

/// A half-open window `[start, end)` on a cursor field; either bound may be open.
///
/// Bounds are instants. For a date cursor, a row dated `D` counts as the instant `D 00:00:00Z`,
/// so the window selects the dates whose midnight lies in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The cursor field, e.g. `SystemModstamp`.
    pub field: String,
    /// How the field is typed.
    pub kind: CursorKind,
    /// Inclusive lower bound; `None` for no lower bound.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive upper bound; `None` for no upper bound.
    pub end: Option<DateTime<Utc>>,
}

impl Window {
    /// A window on a datetime cursor field.
    pub fn new(
        field: impl Into<String>,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Window {
        Window {
            field: field.into(),
            kind: CursorKind::DateTime,
            start,
            end,
        }
    }

    /// A window on the stream's cursor field, typed from the stream's fields (a `date` cursor
    /// gets date literals, anything else datetime literals). `None` when the stream has no cursor.
    pub fn for_stream(
        stream: &StreamSpec,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Option<Window> {
        let field = stream.cursor_field.as_deref()?;
        let kind = match stream.field(field).map(|f| &f.field_type) {
            Some(FieldType::Date) => CursorKind::Date,
            _ => CursorKind::DateTime,
        };
        Some(Window {
            field: field.to_string(),
            kind,
            start,
            end,
        })
    }

    /// The `WHERE` conditions of this window, `AND`-joined (empty when both bounds are open).
    fn conditions(&self, out: &mut Vec<String>) {
        if let Some(start) = self.start {
            out.push(format!(
                "{} >= {}",
                self.field,
                bound_literal(self.kind, start)
            ));
        }
        if let Some(end) = self.end {
            out.push(format!(
                "{} < {}",
                self.field,
                bound_literal(self.kind, end)
            ));
        }
    }
}

/// A cursor value as a record holds it: an instant or a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CursorValue {
    /// A datetime value.
    DateTime(DateTime<Utc>),
    /// A date value.
    Date(NaiveDate),
}

impl CursorValue {
    /// Parses a record's value: `YYYY-MM-DD` as a date, anything `normalize_datetime` accepts as a
    /// datetime. `None` otherwise.
    pub fn parse(text: &str) -> Option<CursorValue> {
        if let Ok(date) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
            return Some(CursorValue::Date(date));
        }
        let normal = sf_discovery::normalize_datetime(text)?;
        DateTime::parse_from_rfc3339(&normal)
            .ok()
            .map(|t| CursorValue::DateTime(t.with_timezone(&Utc)))
    }

    /// The SOQL literal: `YYYY-MM-DDTHH:MM:SSZ` (`.sss` only when the value has milliseconds) or
    /// `YYYY-MM-DD`.
    pub fn literal(&self) -> String {
        match self {
            CursorValue::DateTime(t) => datetime_literal(*t),
            CursorValue::Date(d) => d.format("%Y-%m-%d").to_string(),
        }
    }
}

/// A cursor field and the value a record had in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CursorPoint {
    /// The cursor field, e.g. `SystemModstamp`.
    pub field: String,
    /// The value.
    pub value: CursorValue,
}

/// The key of the last record read, to resume a query strictly after it.
///
/// With a cursor point it stands for `(cursor, Id)` order, without one for `Id` order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResumeKey {
    /// The record's `Id`.
    pub id: String,
    /// The record's cursor value, when the query was ordered by cursor then `Id`.
    pub cursor: Option<CursorPoint>,
}

impl ResumeKey {
    /// A key in `Id` order.
    pub fn id(id: impl Into<String>) -> ResumeKey {
        ResumeKey {
            id: id.into(),
            cursor: None,
        }
    }

    /// A key in `(cursor, Id)` order.
    pub fn cursor(
        field: impl Into<String>,
        value: CursorValue,
        id: impl Into<String>,
    ) -> ResumeKey {
        ResumeKey {
            id: id.into(),
            cursor: Some(CursorPoint {
                field: field.into(),
                value,
            }),
        }
    }

    fn condition(&self) -> String {
        let id = quote(&self.id);
        match &self.cursor {
            None => format!("Id > {id}"),
            Some(CursorPoint { field, value }) => {
                let v = value.literal();
                format!("({field} > {v} OR ({field} = {v} AND Id > {id}))")
            }
        }
    }
}

/// How results are ordered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Order {
    /// No `ORDER BY`.
    #[default]
    Unordered,
    /// `ORDER BY Id ASC`.
    Id,
    /// `ORDER BY <field> ASC, Id ASC`.
    CursorThenId(String),
}

/// A SOQL query under construction.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use sf_rest::{Order, Soql, Window};
///
/// let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let end = Utc.with_ymd_and_hms(2024, 1, 8, 0, 0, 0).unwrap();
/// let soql = Soql::select("Account", ["Id", "Name", "SystemModstamp"])
///     .window(Window::new("SystemModstamp", Some(start), Some(end)))
///     .order(Order::CursorThenId("SystemModstamp".into()))
///     .build()
///     .unwrap();
/// assert_eq!(
///     soql,
///     "SELECT Id,Name,SystemModstamp FROM Account \
///      WHERE SystemModstamp >= 2024-01-01T00:00:00Z AND SystemModstamp < 2024-01-08T00:00:00Z \
///      ORDER BY SystemModstamp ASC,Id ASC"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soql {
    object: String,
    fields: Vec<String>,
    count: bool,
    window: Option<Window>,
    after: Option<ResumeKey>,
    in_list: Option<(String, Vec<String>)>,
    equals: Vec<(String, String)>,
    order: Order,
    limit: Option<u64>,
    separator: &'static str,
}

impl Soql {
    /// `SELECT <fields> FROM <object>`.
    pub fn select<I, S>(object: impl Into<String>, fields: I) -> Soql
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Soql {
            object: object.into(),
            fields: fields.into_iter().map(Into::into).collect(),
            count: false,
            window: None,
            after: None,
            in_list: None,
            equals: Vec::new(),
            order: Order::Unordered,
            limit: None,
            separator: ",",
        }
    }

    /// `SELECT COUNT() FROM <object>`: ordering and `LIMIT` are left out of it.
    pub fn count(object: impl Into<String>) -> Soql {
        let mut soql = Soql::select(object, Vec::<String>::new());
        soql.count = true;
        soql
    }

    /// Restricts to a window on the cursor.
    pub fn window(mut self, window: Window) -> Soql {
        self.window = Some(window);
        self
    }

    /// Like [`Soql::window`], taking an `Option`.
    pub fn maybe_window(mut self, window: Option<Window>) -> Soql {
        self.window = window;
        self
    }

    /// Keeps only rows strictly after `key` in its order.
    pub fn after(mut self, key: ResumeKey) -> Soql {
        self.after = Some(key);
        self
    }

    /// `<field> IN ('v1','v2',...)`.
    pub fn where_in<I, S>(mut self, field: impl Into<String>, values: I) -> Soql
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.in_list = Some((field.into(), values.into_iter().map(Into::into).collect()));
        self
    }

    /// `AND <field> = 'value'`, a top-level conjunct (as Salesforce wants a Knowledge article
    /// version's `PublishStatus`); may be given more than once.
    pub fn where_eq(mut self, field: impl Into<String>, value: impl Into<String>) -> Soql {
        self.equals.push((field.into(), value.into()));
        self
    }

    /// Sets the ordering.
    pub fn order(mut self, order: Order) -> Soql {
        self.order = order;
        self
    }

    /// `LIMIT n`.
    pub fn limit(mut self, n: u64) -> Soql {
        self.limit = Some(n);
        self
    }

    /// Joins selected fields with `", "` instead of `","` (the Bulk path's habit; REST keeps URLs
    /// short with `","`).
    pub fn spaced_fields(mut self) -> Soql {
        self.separator = ", ";
        self
    }

    /// The object queried.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The fields selected.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The ordering.
    pub fn ordering(&self) -> &Order {
        &self.order
    }

    /// The SOQL text. Fails when the object or a field is not a plain API name (letters, digits,
    /// `_`, and `.` between relationship segments) or nothing is selected.
    pub fn build(&self) -> Result<String, Error> {
        let invalid = |reason: String| Error::QueryBuild {
            object: self.object.clone(),
            reason,
        };
        if !is_identifier(&self.object, false) {
            return Err(invalid(format!(
                "`{}` is not an object API name",
                self.object
            )));
        }
        if !self.count && self.fields.is_empty() {
            return Err(invalid("no fields selected".to_string()));
        }
        let mut names: Vec<&str> = self.fields.iter().map(String::as_str).collect();
        if let Some(w) = &self.window {
            names.push(&w.field);
        }
        if let Some(CursorPoint { field, .. }) = self.after.as_ref().and_then(|k| k.cursor.as_ref())
        {
            names.push(field);
        }
        if let Some((field, _)) = &self.in_list {
            names.push(field);
        }
        names.extend(self.equals.iter().map(|(field, _)| field.as_str()));
        if let Order::CursorThenId(field) = &self.order {
            names.push(field);
        }
        if let Some(bad) = names.iter().find(|n| !is_identifier(n, true)) {
            return Err(invalid(format!("`{bad}` is not a field API name")));
        }

        let mut soql =
            String::with_capacity(64 + self.fields.iter().map(|f| f.len() + 1).sum::<usize>());
        if self.count {
            soql.push_str("SELECT COUNT()");
        } else {
            soql.push_str("SELECT ");
            for (i, field) in self.fields.iter().enumerate() {
                if i > 0 {
                    soql.push_str(self.separator);
                }
                soql.push_str(field);
            }
        }
        let _ = write!(soql, " FROM {}", self.object);
        let mut conditions = Vec::new();
        if let Some(w) = &self.window {
            w.conditions(&mut conditions);
        }
        if let Some(key) = &self.after {
            conditions.push(key.condition());
        }
        if let Some((field, values)) = &self.in_list {
            let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
            conditions.push(format!("{field} IN ({})", list.join(",")));
        }
        for (field, value) in &self.equals {
            conditions.push(format!("{field} = {}", quote(value)));
        }
        if !conditions.is_empty() {
            soql.push_str(" WHERE ");
            soql.push_str(&conditions.join(" AND "));
        }
        if !self.count {
            match &self.order {
                Order::Unordered => {}
                Order::Id => soql.push_str(" ORDER BY Id ASC"),
                Order::CursorThenId(field) => {
                    let _ = write!(soql, " ORDER BY {field} ASC,Id ASC");
                }
            }
            if let Some(n) = self.limit {
                let _ = write!(soql, " LIMIT {n}");
            }
        }
        Ok(soql)
    }
}

/// True for `Name`, `Amount__c`, `ns__Field__c`, and (with `dotted`) `Owner.Email`.
fn is_identifier(name: &str, dotted: bool) -> bool {
    let segment_ok = |s: &str| {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if dotted {
        name.split('.').all(segment_ok)
    } else {
        segment_ok(name)
    }
}

/// A SOQL string literal: single-quoted, with `\`, quotes and control characters escaped.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ`, or `YYYY-MM-DDTHH:MM:SS.sssZ` when there are milliseconds.
fn datetime_literal(t: DateTime<Utc>) -> String {
    if t.nanosecond() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

/// A window bound as a literal. Values are stored with millisecond (dates: day) precision, so a
/// bound is rounded *up* to that precision: `v >= ceil(start)` selects exactly `v >= start`, and
/// `v < ceil(end)` exactly `v < end`.
fn bound_literal(kind: CursorKind, t: DateTime<Utc>) -> String {
    match kind {
        CursorKind::DateTime => {
            let sub_ms = t.nanosecond() % 1_000_000;
            let t = if sub_ms == 0 {
                t
            } else {
                t + Duration::nanoseconds(i64::from(1_000_000 - sub_ms))
            };
            datetime_literal(t)
        }
        CursorKind::Date => {
            let date = t.date_naive();
            let date = if t.time() == NaiveTime::MIN {
                date
            } else {
                date.succ_opt().unwrap_or(date)
            };
            date.format("%Y-%m-%d").to_string()
        }
    }
}

#[cfg(test)]
mod tests;
