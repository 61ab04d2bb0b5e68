//! Streaming decoding of one Bulk results page (CSV) into typed records.
//!
//! A push parser: bytes go in as they arrive from the socket, in chunks of any size, and each
//! record comes out as soon as its last byte is in. Memory is one record plus the chunk.
//!
//! Rows in the form Bulk writes (every value quoted, LF line endings) are scanned eight bytes at
//! a time by `quoted_row`; anything else (the header, a row cut by the chunk's end, CR line
//! endings, unquoted values) goes through `csv_core`'s reader, whose reading `quoted_row` matches
//! byte for byte (a property test compares the two).

use std::sync::Arc;

use csv_core::{ReadRecordResult, Reader};
use serde_json::{Number, Value};
use sf_discovery::{normalize_datetime, Columns, FieldSpec, Record, ValueKind};

use crate::error::DecodeError;

const UTF8_BOM: &[u8; 3] = b"\xEF\xBB\xBF";
/// Values quoted in errors are cut to this many characters.
const MAX_VALUE_IN_ERROR: usize = 100;

/// The requested columns: names shared by every record, and how each is typed.
#[derive(Debug)]
pub(crate) struct Schema {
    columns: Columns,
    kinds: Vec<ValueKind>,
}

impl Schema {
    pub(crate) fn new(fields: &[FieldSpec]) -> Schema {
        Schema {
            columns: fields.iter().map(|f| f.name.clone()).collect(),
            kinds: fields.iter().map(FieldSpec::value_kind).collect(),
        }
    }
}

/// A page's text encoding, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    /// UTF-8 (also US-ASCII, its subset).
    Utf8,
    /// ISO-8859-1: each byte is the code point of the same value.
    Latin1,
    /// windows-1252: ISO-8859-1 with printable characters in 0x80..0x9F.
    Windows1252,
}

impl Charset {
    fn from_content_type(content_type: Option<&str>) -> Result<Charset, DecodeError> {
        let Some(content_type) = content_type else {
            return Ok(Charset::Utf8);
        };
        let charset = content_type.split(';').skip(1).find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"').to_string())
        });
        let Some(charset) = charset else {
            return Ok(Charset::Utf8);
        };
        match charset.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "us-ascii" | "ascii" => Ok(Charset::Utf8),
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1" | "cp819" => {
                Ok(Charset::Latin1)
            }
            "windows-1252" | "cp1252" => Ok(Charset::Windows1252),
            _ => Err(DecodeError::Charset { charset }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Latin1 => "ISO-8859-1",
            Charset::Windows1252 => "windows-1252",
        }
    }
}

/// windows-1252's characters for 0x80..=0x9F (undefined positions keep their C1 code point).
const WINDOWS_1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}', '\u{017D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
];

fn decode_single_byte(bytes: &[u8], charset: Charset) -> String {
    bytes
        .iter()
        .map(|&b| match (charset, b) {
            (Charset::Windows1252, 0x80..=0x9F) => WINDOWS_1252_HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

/// Where each header position goes among the requested columns.
#[derive(Debug)]
enum Mapping {
    /// Same order as requested.
    Identity,
    /// `targets[i]` is the requested column of header position `i`.
    Permuted(Vec<usize>),
}

/// Decodes one results page: fed the body chunk by chunk, it checks the header row against the
/// requested columns and turns each row into a [`Record`] typed by the fields' [`ValueKind`]s.
///
/// - NUL bytes are dropped; one UTF-8 byte order mark at the start is skipped (a second one is
///   data), whatever the chunks.
/// - The charset comes from the page's `Content-Type` (UTF-8 when none is named; ISO-8859-1 and
///   windows-1252 are decoded; any other is a [`DecodeError::Charset`]).
/// - The header must name exactly the requested columns, compared case-insensitively, in any
///   order (records always come out in the requested order, under the requested names).
/// - An empty cell, quoted or not, is null. Numbers (Java style `9.0E7` too) become JSON numbers,
///   integers integers, `true`/`false` booleans, datetimes the `YYYY-MM-DDTHH:MM:SS.sssZ` form;
///   every other type stays the string it was, so `01234`, `NA` or `NULL` are kept as sent.
///   A value that does not convert is a [`DecodeError::Value`] naming row, column and value.
/// - A page that ends inside a quoted value is a [`DecodeError::Truncated`].
///
/// ```
/// use sf_bulk::PageDecoder;
/// use sf_discovery::{FieldSpec, FieldType};
///
/// let fields = [
///     FieldSpec::new("Id", FieldType::Id),
///     FieldSpec::new("AnnualRevenue", FieldType::Currency),
/// ];
/// let mut decoder = PageDecoder::new(&fields, Some("text/csv; charset=UTF-8")).unwrap();
/// let mut records = Vec::new();
/// decoder.push(b"\"Id\",\"AnnualRevenue\"\n\"001A\",\"9.0", &mut records).unwrap();
/// decoder.push(b"E7\"\n\"001B\",\n", &mut records).unwrap();
/// assert_eq!(decoder.finish(&mut records).unwrap(), 2);
/// assert_eq!(records[0].get("AnnualRevenue"), Some(&serde_json::json!(90000000.0)));
/// assert_eq!(records[1].get("AnnualRevenue"), Some(&serde_json::Value::Null));
/// ```
#[derive(Debug)]
pub struct PageDecoder {
    schema: Arc<Schema>,
    charset: Charset,
    reader: Reader,
    /// The current record's unescaped bytes.
    buf: Vec<u8>,
    buf_len: usize,
    /// End offsets of the current record's fields in `buf`.
    ends: Vec<usize>,
    ends_len: usize,
    mapping: Option<Mapping>,
    /// The kind and the requested column of each header position (set with `mapping`).
    positions: Vec<(ValueKind, usize)>,
    rows: u64,
    /// Up to three leading bytes, held until it is known whether they are a byte order mark.
    prefix: [u8; 3],
    prefix_len: usize,
    started: bool,
    /// Whether the CSV reader has been given input. Its first input is one byte at most, so it
    /// never strips a byte order mark of its own (it would only when that first input held all
    /// three bytes, which made the result depend on how the body was cut).
    reader_fed: bool,
    /// Bytes of the current chunk with NULs removed (reused).
    scratch: Vec<u8>,
    /// Line count (of the CSV reader) after the last record, to see blank lines, which are null
    /// rows when there is a single column.
    lines_after_last: u64,
    last_ended_cr: bool,
    /// Whether the next input byte starts a data row and the CSV reader is where it would be
    /// then: the header is read, the last record ended with a line feed, there is more than one
    /// column (a single column counts the reader's lines) and rows may be read without it.
    at_row_start: bool,
    /// Whether rows in Bulk's own form are read without the CSV reader (off only in tests that
    /// compare both ways).
    fast_rows: bool,
    finished: bool,
}

impl PageDecoder {
    /// A decoder for a page whose header should name `fields`, in the charset of `content_type`
    /// (the page's `Content-Type` header; `None`: UTF-8).
    pub fn new(
        fields: &[FieldSpec],
        content_type: Option<&str>,
    ) -> Result<PageDecoder, DecodeError> {
        PageDecoder::with_schema(Arc::new(Schema::new(fields)), content_type)
    }

    pub(crate) fn with_schema(
        schema: Arc<Schema>,
        content_type: Option<&str>,
    ) -> Result<PageDecoder, DecodeError> {
        let charset = Charset::from_content_type(content_type)?;
        let width = schema.kinds.len().max(1);
        Ok(PageDecoder {
            schema,
            charset,
            reader: Reader::new(),
            buf: vec![0; 4096],
            buf_len: 0,
            ends: vec![0; width + 1],
            ends_len: 0,
            mapping: None,
            positions: Vec::new(),
            rows: 0,
            prefix: [0; 3],
            prefix_len: 0,
            started: false,
            reader_fed: false,
            scratch: Vec::new(),
            lines_after_last: 0,
            last_ended_cr: false,
            at_row_start: false,
            fast_rows: true,
            finished: false,
        })
    }

    /// The shared column names of the records this decoder makes.
    pub fn columns(&self) -> &Columns {
        &self.schema.columns
    }

    /// Data rows decoded so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Feeds the next chunk of the body; every record it completes is added to `out`.
    pub fn push<E: Extend<Record>>(
        &mut self,
        chunk: &[u8],
        out: &mut E,
    ) -> Result<(), DecodeError> {
        let mut chunk = chunk;
        if !self.started {
            let take = (3 - self.prefix_len).min(chunk.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&chunk[..take]);
            self.prefix_len += take;
            chunk = &chunk[take..];
            let held = &self.prefix[..self.prefix_len];
            if self.prefix_len < 3 && UTF8_BOM.starts_with(held) {
                return Ok(());
            }
            self.start(out)?;
        }
        self.feed(chunk, out)
    }

    /// Ends the page: decodes a last row that has no line ending and checks the body was not cut
    /// inside a quoted value. Returns the number of data rows in the page.
    pub fn finish<E: Extend<Record>>(&mut self, out: &mut E) -> Result<u64, DecodeError> {
        if self.finished {
            return Ok(self.rows);
        }
        if !self.started {
            self.start(out)?;
        }
        // A line feed tells whether the body stopped inside a quoted value: there it is data
        // (written to the record); anywhere else it ends the record or is a blank line.
        if self.buf_len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        if self.ends_len == self.ends.len() {
            self.ends.resize(self.ends.len() * 2, 0);
        }
        let (result, _, nout, nend) = self.reader.read_record(
            b"\n",
            &mut self.buf[self.buf_len..],
            &mut self.ends[self.ends_len..],
        );
        let mut sentinel_blank = 0;
        match result {
            ReadRecordResult::Record => {
                self.buf_len += nout;
                self.ends_len += nend;
                self.record(Some(b'\n'), out)?;
                self.buf_len = 0;
                self.ends_len = 0;
            }
            _ if nout > 0 => return Err(DecodeError::Truncated { row: self.rows + 1 }),
            _ => sentinel_blank = 1,
        }
        self.run(&[], out)?;
        if self.schema.kinds.len() == 1 && self.mapping.is_some() {
            let blank = self
                .reader
                .line()
                .saturating_sub(self.lines_after_last)
                .saturating_sub(u64::from(self.last_ended_cr) + sentinel_blank);
            self.push_nulls(blank, out);
        }
        self.finished = true;
        Ok(self.rows)
    }

    /// Decides about the held prefix (a byte order mark is dropped) and feeds it.
    fn start<E: Extend<Record>>(&mut self, out: &mut E) -> Result<(), DecodeError> {
        self.started = true;
        let prefix = self.prefix;
        let held = &prefix[..self.prefix_len];
        if held != UTF8_BOM {
            self.feed(held, out)?;
        }
        Ok(())
    }

    fn feed<E: Extend<Record>>(&mut self, chunk: &[u8], out: &mut E) -> Result<(), DecodeError> {
        if chunk.is_empty() {
            return Ok(());
        }
        if chunk.contains(&0) {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend(chunk.iter().copied().filter(|&b| b != 0));
            // All NULs: nothing to feed (an empty input would mean the end of the page).
            let result = if scratch.is_empty() {
                Ok(())
            } else {
                self.run(&scratch, out)
            };
            self.scratch = scratch;
            result
        } else {
            self.run(chunk, out)
        }
    }

    /// Runs the CSV reader over `input` (empty: end of input) and handles each record.
    fn run<E: Extend<Record>>(&mut self, mut input: &[u8], out: &mut E) -> Result<(), DecodeError> {
        let at_end = input.is_empty();
        loop {
            if self.at_row_start {
                if let Some(used) = self.quoted_row(input) {
                    input = &input[used..];
                    self.record(Some(b'\n'), out)?;
                    self.buf_len = 0;
                    self.ends_len = 0;
                    continue;
                }
            }
            let given = if self.reader_fed {
                input
            } else {
                &input[..input.len().min(1)]
            };
            self.reader_fed = true;
            let (result, nin, nout, nend) = self.reader.read_record(
                given,
                &mut self.buf[self.buf_len..],
                &mut self.ends[self.ends_len..],
            );
            let last_byte = if nin > 0 {
                input.get(nin - 1).copied()
            } else {
                None
            };
            input = &input[nin..];
            self.buf_len += nout;
            self.ends_len += nend;
            // The reader is back at the start of a row after a record that ended with a line
            // feed; anything else it read (part of a row, blank lines) leaves it elsewhere.
            self.at_row_start = self.fast_rows
                && result == ReadRecordResult::Record
                && last_byte == Some(b'\n')
                && self.schema.kinds.len() > 1;
            match result {
                ReadRecordResult::InputEmpty => {
                    if input.is_empty() && !at_end {
                        return Ok(());
                    }
                }
                ReadRecordResult::OutputFull => {
                    let len = self.buf.len() * 2;
                    self.buf.resize(len, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len() * 2;
                    self.ends.resize(len, 0);
                }
                ReadRecordResult::Record => {
                    self.record(last_byte, out)?;
                    self.buf_len = 0;
                    self.ends_len = 0;
                }
                ReadRecordResult::End => return Ok(()),
            }
        }
    }

    /// Reads one whole data row in the form Bulk writes (every value quoted, quotes doubled,
    /// nulls empty, comma separated, ending with a line feed) from the start of `input` into the
    /// record buffers, as the CSV reader would, and returns the bytes it took. `None`, with
    /// nothing taken, for anything else (an unquoted value, a carriage return, a blank line, a
    /// row not complete in `input`, buffers too small): the CSV reader reads that.
    ///
    /// Called only at the start of a row with the reader after a line feed, where taking a
    /// whole row leaves the reader's state as reading it would have (its line count aside,
    /// which only a single column uses).
    fn quoted_row(&mut self, input: &[u8]) -> Option<usize> {
        let buf = &mut self.buf[..];
        let ends = &mut self.ends[..];
        let (mut pos, mut len, mut fields) = (0, 0, 0);
        // A line feed first is a blank line, which the reader skips.
        if matches!(input.first(), None | Some(b'\n')) {
            return None;
        }
        loop {
            match *input.get(pos)? {
                b'"' => loop {
                    let quote = copy_to_quote(input.get(pos + 1..)?, buf.get_mut(len..)?)?;
                    len += quote;
                    pos += quote + 2;
                    // A doubled quote is one quote of the value; a single one ends it.
                    if input.get(pos) != Some(&b'"') {
                        break;
                    }
                    *buf.get_mut(len)? = b'"';
                    len += 1;
                },
                b',' | b'\n' => {}
                _ => return None,
            }
            *ends.get_mut(fields)? = len;
            fields += 1;
            match *input.get(pos)? {
                b',' => pos += 1,
                b'\n' => {
                    self.buf_len = len;
                    self.ends_len = fields;
                    return Some(pos + 1);
                }
                _ => return None,
            }
        }
    }

    fn record<E: Extend<Record>>(
        &mut self,
        last_byte: Option<u8>,
        out: &mut E,
    ) -> Result<(), DecodeError> {
        if self.mapping.is_none() {
            let mapping = self.header(&self.buf[..self.buf_len], &self.ends[..self.ends_len])?;
            let kinds = &self.schema.kinds;
            self.positions = match &mapping {
                Mapping::Identity => kinds.iter().copied().zip(0..).collect(),
                Mapping::Permuted(targets) => targets
                    .iter()
                    .map(|&t| (kinds.get(t).copied().unwrap_or(ValueKind::String), t))
                    .collect(),
            };
            self.mapping = Some(mapping);
            self.note_lines(last_byte);
            return Ok(());
        }
        if self.schema.kinds.len() == 1 {
            // A single-column row holding null is an empty line, which the CSV reader skips:
            // count the lines it skipped since the last record.
            let bytes = &self.buf[..self.buf_len];
            let embedded = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            let own = embedded + u64::from(last_byte == Some(b'\n'));
            let carried = u64::from(self.last_ended_cr);
            let blank = self
                .reader
                .line()
                .saturating_sub(self.lines_after_last)
                .saturating_sub(own + carried);
            self.push_nulls(blank, out);
        }
        let row = self.rows + 1;
        let values = self.values(row)?;
        out.extend(std::iter::once(Record {
            columns: Arc::clone(&self.schema.columns),
            values,
        }));
        self.rows = row;
        self.note_lines(last_byte);
        Ok(())
    }

    /// The typed values of the current record, in the requested order.
    fn values(&self, row: u64) -> Result<Vec<Value>, DecodeError> {
        let width = self.schema.kinds.len();
        if self.ends_len != width {
            return Err(DecodeError::FieldCount {
                row,
                expected: width,
                found: self.ends_len,
            });
        }
        // In header order, each value goes straight to its requested column.
        if let Some(Mapping::Permuted(_)) = self.mapping {
            let mut values = vec![Value::Null; width];
            self.convert_row(row, |column, value| {
                if let Some(slot) = values.get_mut(column) {
                    *slot = value;
                }
            })?;
            Ok(values)
        } else {
            let mut values = Vec::with_capacity(width);
            self.convert_row(row, |_, value| values.push(value))?;
            Ok(values)
        }
    }

    /// Types each field of the current record, giving `put` its requested column and value.
    #[inline]
    fn convert_row(&self, row: u64, mut put: impl FnMut(usize, Value)) -> Result<(), DecodeError> {
        let bytes = &self.buf[..self.buf_len];
        let ends = &self.ends[..self.ends_len];
        // `positions` has one entry per header field.
        let fields = ends.iter().zip(&self.positions);
        let mut start = 0;
        match self.charset {
            Charset::Utf8 => {
                // Validated once for the whole row.
                let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::Encoding {
                    row,
                    charset: Charset::Utf8.name(),
                })?;
                for (&end, &(kind, column)) in fields {
                    // Field ends fall on ASCII delimiters, so they are character boundaries.
                    let cell = text.get(start..end).unwrap_or_default();
                    put(column, self.convert(kind, column, cell, row)?);
                    start = end;
                }
            }
            single_byte => {
                for (&end, &(kind, column)) in fields {
                    let raw = bytes.get(start..end).unwrap_or_default();
                    let cell = decode_single_byte(raw, single_byte);
                    // Text is kept as decoded, without a second copy.
                    let value = if kept_as_text(kind) && !cell.is_empty() {
                        Value::String(cell)
                    } else {
                        self.convert(kind, column, &cell, row)?
                    };
                    put(column, value);
                    start = end;
                }
            }
        }
        Ok(())
    }

    fn note_lines(&mut self, last_byte: Option<u8>) {
        self.lines_after_last = self.reader.line();
        self.last_ended_cr = last_byte == Some(b'\r');
    }

    fn push_nulls<E: Extend<Record>>(&mut self, count: u64, out: &mut E) {
        for _ in 0..count {
            self.rows += 1;
            out.extend(std::iter::once(Record {
                columns: Arc::clone(&self.schema.columns),
                values: vec![Value::Null],
            }));
        }
    }

    /// Checks the header row and works out where each position goes.
    fn header(&self, bytes: &[u8], ends: &[usize]) -> Result<Mapping, DecodeError> {
        let mut found = Vec::with_capacity(ends.len());
        let mut start = 0;
        for &end in ends {
            let raw = bytes.get(start..end).unwrap_or_default();
            let name = match self.charset {
                Charset::Utf8 => std::str::from_utf8(raw)
                    .map_err(|_| DecodeError::Encoding {
                        row: 0,
                        charset: Charset::Utf8.name(),
                    })?
                    .to_string(),
                other => decode_single_byte(raw, other),
            };
            found.push(name);
            start = end;
        }
        let expected = &self.schema.columns;
        let mismatch = || DecodeError::Header {
            expected: expected.to_vec(),
            found: found.clone(),
        };
        if found.len() != expected.len() {
            return Err(mismatch());
        }
        if found
            .iter()
            .zip(expected.iter())
            .all(|(f, e)| f.eq_ignore_ascii_case(e))
        {
            return Ok(Mapping::Identity);
        }
        let mut targets = Vec::with_capacity(found.len());
        let mut taken = vec![false; expected.len()];
        for name in &found {
            let target = expected
                .iter()
                .enumerate()
                .position(|(i, e)| !taken[i] && e.eq_ignore_ascii_case(name))
                .ok_or_else(mismatch)?;
            taken[target] = true;
            targets.push(target);
        }
        Ok(Mapping::Permuted(targets))
    }

    /// Types a cell of requested column `column`.
    #[inline]
    fn convert(
        &self,
        kind: ValueKind,
        column: usize,
        cell: &str,
        row: u64,
    ) -> Result<Value, DecodeError> {
        convert_cell(kind, cell).map_err(|expected| DecodeError::Value {
            row,
            column: self.schema.columns.get(column).cloned().unwrap_or_default(),
            value: cut(cell),
            expected,
        })
    }
}

/// Copies `src` into `dst` up to the first `"` and returns the number of bytes before it; `None`
/// if `src` holds no quote or `dst` is too short. Eight bytes at a time: each word is copied
/// whole (bytes past the quote are scratch, overwritten later) and searched for the quote.
#[inline]
fn copy_to_quote(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
    let mut at = 0;
    while let (Some(from), Some(to)) = (src.get(at..at + 8), dst.get_mut(at..at + 8)) {
        to.copy_from_slice(from);
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(from).ok()?) ^ QUOTES;
        // The high bit of each byte that is zero here (a quote in `from`); bytes after the first
        // such may be flagged wrongly, the first one never is.
        let quotes = word.wrapping_sub(ONES) & !word & HIGHS;
        if quotes != 0 {
            return Some(at + quotes.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    loop {
        let byte = *src.get(at)?;
        if byte == b'"' {
            return Some(at);
        }
        *dst.get_mut(at)? = byte;
        at += 1;
    }
}

fn cut(value: &str) -> String {
    match value.char_indices().nth(MAX_VALUE_IN_ERROR) {
        Some((at, _)) => format!("{}...", &value[..at]),
        None => value.to_string(),
    }
}

/// Kinds whose cells are kept as the text sent (`convert_cell` copies them unchanged).
fn kept_as_text(kind: ValueKind) -> bool {
    matches!(
        kind,
        ValueKind::String | ValueKind::Date | ValueKind::Base64 | ValueKind::Object
    )
}

/// Types one cell. `Err` names the type it failed to be.
#[inline(always)]
pub(crate) fn convert_cell(kind: ValueKind, cell: &str) -> Result<Value, &'static str> {
    if cell.is_empty() {
        return Ok(Value::Null);
    }
    match kind {
        ValueKind::Number => parse_number(cell).map(Value::Number).ok_or("number"),
        ValueKind::Integer => parse_integer(cell).map(Value::from).ok_or("integer"),
        ValueKind::Boolean => {
            if cell.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if cell.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                Err("boolean")
            }
        }
        // Bulk's own `...sssZ` form is checked and copied byte by byte there, with no parse.
        ValueKind::DateTime => normalize_datetime(cell)
            .map(Value::String)
            .ok_or("datetime"),
        ValueKind::String | ValueKind::Date | ValueKind::Base64 | ValueKind::Object => {
            Ok(Value::String(cell.to_string()))
        }
    }
}

/// A number as `serde_json` would read the same text: integers without fraction or exponent stay
/// integers, anything else (Java's `9.0E7` included) is a float. `NaN` and infinities are refused.
fn parse_number(cell: &str) -> Option<Number> {
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
fn parse_integer(cell: &str) -> Option<i64> {
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
        let err =
            decode_all(&f, None, b"\"Id\",\"Note\"\n\"1\",\"ok\"\n\"2\",\"cut he").unwrap_err();
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
        let body =
            b"\"Id\",\"Note\"\n\"1\",\"a, \"\"b\"\"\nc\"\n\"2\",\n,\"\"\n\"4\",\"\"\"\"\"\"\n";
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
}
