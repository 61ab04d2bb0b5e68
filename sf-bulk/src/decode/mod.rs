//! Streaming decoding of one Bulk results page (CSV) into typed records.
//!
//! A push parser: bytes go in as they arrive from the socket, in chunks of any size, and each
//! record comes out as soon as its last byte is in. Memory is one record plus the chunk.
//!
//! Rows in the form Bulk writes (every value quoted, LF line endings) are scanned eight bytes at
//! a time by `quoted_row`; anything else (the header, a row cut by the chunk's end, CR line
//! endings, unquoted values) goes through `csv_core`'s reader, whose reading `quoted_row` matches
//! byte for byte (a property test compares the two).

mod charset;
mod number;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use csv_core::{ReadRecordResult, Reader};
use serde_json::Value;
use sf_discovery::{normalize_datetime, Columns, FieldSpec, Record, ValueKind};

use crate::error::DecodeError;
use charset::{decode_single_byte, Charset};
use number::{parse_integer, parse_number};

const UTF8_BOM: &[u8; 3] = b"\xEF\xBB\xBF";
/// Values quoted in errors are cut to this many characters.
const MAX_VALUE_IN_ERROR: usize = 100;
/// The most bytes one record may hold once unquoted. Salesforce caps an object's long and rich
/// text at 1,638,400 characters together and a text field at 131,072 (belief from its field
/// limits; about 7 MB in UTF-8 with every other field full), so 64 MiB is no real record: it
/// bounds the memory a quote never closed can take.
const MAX_RECORD_BYTES: usize = 64 << 20;
/// The most fields one record may hold: an object has at most a few thousand fields with their
/// components, so this bounds a malformed row of separators only.
const MAX_RECORD_FIELDS: usize = 1 << 16;

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
                    if len > MAX_RECORD_BYTES {
                        return Err(self.too_large(MAX_RECORD_BYTES, "bytes"));
                    }
                    self.buf.resize(len, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len() * 2;
                    if len > MAX_RECORD_FIELDS {
                        return Err(self.too_large(MAX_RECORD_FIELDS, "fields"));
                    }
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

    fn too_large(&self, limit: usize, what: &'static str) -> DecodeError {
        DecodeError::RecordTooLarge {
            row: self.rows + 1,
            limit,
            what,
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
                    // Unescaped fields sit back to back, so a field boundary inside a character
                    // (a value ending in a lead byte, the next starting with its continuation)
                    // leaves the row valid and both cells not: refused, never read as nulls.
                    let cell = text.get(start..end).ok_or_else(|| DecodeError::Encoding {
                        row,
                        charset: Charset::Utf8.name(),
                    })?;
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
