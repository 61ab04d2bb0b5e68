//! The sync engine's sink as Airbyte messages on stdout (or a file, for the demo).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use sf_discovery::Record;
use sf_sync::report::StreamObservation;
use sf_sync::{IncompleteReason, LogLevel, Sink, StreamPlan, StreamStatus, SyncSummary};

use crate::failure::Failure;
use crate::progress::Progress;
use crate::protocol::{self, Output};

/// Flush records to the output once this many bytes are buffered.
const BATCH_BYTES: usize = 256 * 1024;

/// Writes RECORD, STATE, LOG and TRACE (stream status, estimate) messages, and draws the
/// progress lines.
pub struct AirbyteSink {
    out: Arc<Output>,
    buf: Vec<u8>,
    /// Per stream: counters and the record line's fixed parts, escaped once.
    streams: HashMap<String, StreamLines>,
    /// The end of every record line, with the time it is written.
    clock: LineClock,
    progress: Progress,
    /// Per stream: its plan and how long it ran (the run report).
    observed: BTreeMap<String, StreamObservation>,
    /// When each running stream started.
    started: HashMap<String, Instant>,
    /// The summary the engine sent last.
    pub summary: Option<SyncSummary>,
}

/// Read the clock once per this many records.
const CLOCK_EVERY: u32 = 256;

/// What a stream's record lines share, JSON-escaped once.
#[derive(Default)]
struct StreamLines {
    /// Records since the stream's last state message.
    since_state: u64,
    /// Records in all.
    total: u64,
    /// `{"type":"RECORD","record":{"stream":"<name>","data":{`.
    prefix: Vec<u8>,
    /// The columns the keys were escaped for.
    columns: Option<sf_discovery::Columns>,
    /// `"<column>":` for each column.
    keys: Vec<Vec<u8>>,
}

impl StreamLines {
    fn new(stream: &str) -> serde_json::Result<StreamLines> {
        let mut prefix = b"{\"type\":\"RECORD\",\"record\":{\"stream\":".to_vec();
        serde_json::to_writer(&mut prefix, stream)?;
        prefix.extend_from_slice(b",\"data\":{");
        Ok(StreamLines {
            prefix,
            ..StreamLines::default()
        })
    }

    /// Appends one RECORD line emitted at `emitted_at`.
    #[cfg(test)]
    fn write(
        &mut self,
        buf: &mut Vec<u8>,
        record: &Record,
        emitted_at: i64,
    ) -> serde_json::Result<()> {
        self.write_with(buf, record, &record_suffix(emitted_at))
    }

    /// Appends one RECORD line ending in `suffix` ([`record_suffix`]).
    fn write_with(
        &mut self,
        buf: &mut Vec<u8>,
        record: &Record,
        suffix: &[u8],
    ) -> serde_json::Result<()> {
        let same = self
            .columns
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &record.columns));
        if !same {
            self.keys = record
                .columns
                .iter()
                .map(|c| {
                    let mut key = serde_json::to_vec(c)?;
                    key.push(b':');
                    Ok(key)
                })
                .collect::<serde_json::Result<_>>()?;
            self.columns = Some(record.columns.clone());
        }
        buf.extend_from_slice(&self.prefix);
        for (i, (key, value)) in self.keys.iter().zip(record.values.iter()).enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(key);
            write_value(buf, value)?;
        }
        buf.extend_from_slice(suffix);
        Ok(())
    }
}

/// `},"emitted_at":<milliseconds>}}` and the newline, the end of every record line: the clock is
/// read at every batch and every [`CLOCK_EVERY`] records within one, and the bytes formatted
/// again only when the millisecond changed.
#[derive(Default)]
struct LineClock {
    suffix: Vec<u8>,
    /// The millisecond `suffix` says.
    ms: i64,
    until: u32,
}

impl LineClock {
    /// Reads the clock for the records written next.
    fn read(&mut self) {
        let now = protocol::now_millis();
        if now != self.ms || self.suffix.is_empty() {
            self.suffix = record_suffix(now);
            self.ms = now;
        }
        self.until = CLOCK_EVERY;
    }

    /// Counts one record; reads the clock every [`CLOCK_EVERY`].
    fn tick(&mut self) {
        self.until = self.until.saturating_sub(1);
        if self.until == 0 {
            self.read();
        }
    }
}

/// The end of a record line emitted at `emitted_at` (milliseconds): formatted once per clock
/// reading, not once per record.
fn record_suffix(emitted_at: i64) -> Vec<u8> {
    format!("}},\"emitted_at\":{emitted_at}}}}}\n").into_bytes()
}

/// Appends `value` as JSON, byte for byte as `serde_json` writes it (compact): null, booleans,
/// strings, arrays and objects (a compound field's address, say) without going through its
/// `io::Write` formatter; numbers through `serde_json` (itoa and ryu, as it formats them).
fn write_value(buf: &mut Vec<u8>, value: &Value) -> serde_json::Result<()> {
    match value {
        Value::Null => buf.extend_from_slice(b"null"),
        Value::Bool(true) => buf.extend_from_slice(b"true"),
        Value::Bool(false) => buf.extend_from_slice(b"false"),
        Value::String(text) => write_str(buf, text),
        Value::Number(number) => serde_json::to_writer(&mut *buf, number)?,
        Value::Array(items) => {
            buf.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_value(buf, item)?;
            }
            buf.push(b']');
        }
        Value::Object(object) => {
            buf.push(b'{');
            for (i, (key, item)) in object.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_str(buf, key);
                buf.push(b':');
                write_value(buf, item)?;
            }
            buf.push(b'}');
        }
    }
    Ok(())
}

/// Appends `text` as a JSON string, escaped as `serde_json` escapes it: `\"`, `\\`, the short
/// escapes `\b \f \n \r \t` and `\u00XX` for the other control characters. Most values need
/// no escape at all: they are checked and copied eight bytes at a time (the last few padded with
/// spaces, then cut off), with no call to copy short runs; from the first word that needs an
/// escape on, runs without any are copied whole.
fn write_str(buf: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    buf.reserve(bytes.len() + 10);
    buf.push(b'"');
    let mut done = 0;
    for chunk in bytes.chunks_exact(8) {
        let word = word_of(chunk);
        if needs_escape(word) {
            break;
        }
        buf.extend_from_slice(&word.to_ne_bytes());
        done += 8;
    }
    let rest = bytes.get(done..).unwrap_or_default();
    let last = word_of(rest);
    if rest.len() < 8 && !needs_escape(last) {
        buf.extend_from_slice(&last.to_ne_bytes());
        buf.truncate(buf.len() - (8 - rest.len()));
    } else {
        write_escaped(buf, rest);
    }
    buf.push(b'"');
}

/// Up to eight bytes as a word, padded with spaces (which need no escape).
#[inline]
fn word_of(chunk: &[u8]) -> u64 {
    let mut word = [b' '; 8];
    let n = chunk.len().min(8);
    word[..n].copy_from_slice(&chunk[..n]);
    u64::from_ne_bytes(word)
}

/// True when a byte of `word` is below 0x20, or is `"` or `\`.
#[inline]
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_in = |w: u64| w.wrapping_sub(ONES) & !w;
    (below_space | zero_in(quote) | zero_in(backslash)) & HIGHS != 0
}

/// `bytes` escaped, without the quotes: runs without anything to escape copied whole.
fn write_escaped(buf: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            if !needs_escape(word_of(chunk)) {
                i += 8;
                continue;
            }
        }
        let byte = bytes[i];
        let escaped: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[],
            _ => {
                i += 1;
                continue;
            }
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escaped.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(byte >> 4)]);
            buf.push(HEX[usize::from(byte & 0xf)]);
        } else {
            buf.extend_from_slice(escaped);
        }
        i += 1;
        start = i;
    }
    buf.extend_from_slice(&bytes[start..]);
}

impl AirbyteSink {
    /// Appends the RECORD lines of `records` of `stream` (flushed whenever [`BATCH_BYTES`] are
    /// buffered), looking the stream up once per flush rather than once per record.
    fn write_records(&mut self, stream: &str, records: &[Record]) -> Result<(), sf_sync::Error> {
        if !self.streams.contains_key(stream) {
            let lines = StreamLines::new(stream).map_err(sf_sync::Error::sink)?;
            self.streams.insert(stream.to_string(), lines);
        }
        // The clock is read afresh for every batch (and every CLOCK_EVERY records within one),
        // so a record's `emitted_at` is when it was written, however long the sync waited for
        // it (a Bulk job, a quiet incremental stream).
        self.clock.read();
        let mut rest = records;
        while !rest.is_empty() {
            let Some(lines) = self.streams.get_mut(stream) else {
                break;
            };
            let mut written = 0;
            for record in rest {
                self.clock.tick();
                lines
                    .write_with(&mut self.buf, record, &self.clock.suffix)
                    .map_err(sf_sync::Error::sink)?;
                lines.since_state += 1;
                lines.total += 1;
                written += 1;
                if self.buf.len() >= BATCH_BYTES {
                    break;
                }
            }
            rest = rest.get(written..).unwrap_or_default();
            if self.buf.len() >= BATCH_BYTES {
                self.flush_records()?;
                self.show_progress();
            }
        }
        Ok(())
    }

    /// A sink writing to `out`; progress lines go to stderr when it is a terminal.
    pub fn new(out: Arc<Output>) -> AirbyteSink {
        AirbyteSink::with_progress(out, Progress::stderr())
    }

    /// A sink writing to `out` and drawing `progress`.
    pub fn with_progress(out: Arc<Output>, progress: Progress) -> AirbyteSink {
        AirbyteSink {
            out,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            streams: HashMap::new(),
            clock: LineClock::default(),
            progress,
            observed: BTreeMap::new(),
            started: HashMap::new(),
            summary: None,
        }
    }

    fn flush_records(&mut self) -> Result<(), sf_sync::Error> {
        if !self.buf.is_empty() {
            self.out.emit_raw(&self.buf).map_err(sf_sync::Error::sink)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn emit(&mut self, message: &Value) -> Result<(), sf_sync::Error> {
        self.flush_records()?;
        self.out.emit(message).map_err(sf_sync::Error::sink)?;
        self.out.flush().map_err(sf_sync::Error::sink)
    }

    /// Per stream: its last plan and the seconds it ran, for the run report.
    pub fn observations(&self) -> &BTreeMap<String, StreamObservation> {
        &self.observed
    }

    /// Moves every stream's progress line to the rows written so far.
    fn show_progress(&mut self) {
        if self.progress.is_drawn() {
            for (stream, lines) in &self.streams {
                self.progress.rows(stream, lines.total);
            }
        }
    }
}

#[async_trait]
impl Sink for AirbyteSink {
    async fn record(&mut self, stream: &str, record: Record) -> Result<(), sf_sync::Error> {
        self.write_records(stream, std::slice::from_ref(&record))
    }

    /// Written from the batch and left there: the engine frees them on the stream's task.
    async fn records(
        &mut self,
        stream: &str,
        batch: &mut Vec<Record>,
    ) -> Result<(), sf_sync::Error> {
        self.write_records(stream, batch)
    }

    async fn state(&mut self, stream: &str, state: Value) -> Result<(), sf_sync::Error> {
        let count = self
            .streams
            .get_mut(stream)
            .map(|s| std::mem::take(&mut s.since_state))
            .unwrap_or(0);
        self.emit(&protocol::stream_state(stream, state, count))
    }

    async fn log(&mut self, level: LogLevel, message: &str) -> Result<(), sf_sync::Error> {
        self.emit(&protocol::log(level.as_str(), message))
    }

    async fn status(&mut self, stream: &str, status: StreamStatus) -> Result<(), sf_sync::Error> {
        let label = match &status {
            StreamStatus::Started => "STARTED",
            StreamStatus::Running => "RUNNING",
            StreamStatus::Complete => "COMPLETE",
            StreamStatus::Incomplete(_) => "INCOMPLETE",
        };
        if let StreamStatus::Incomplete(reason) = &status {
            // A stream stopped at the API limit was said in a WARN already (with the limit's
            // detail): on an org of a thousand streams, one line each is enough, and a stream
            // another request stopped does not repeat the limit's detail.
            let level = match reason {
                IncompleteReason::Failed { .. } => "ERROR",
                IncompleteReason::ApiLimit { .. } => "INFO",
                IncompleteReason::Cancelled => "WARN",
            };
            let message = match reason.limit_met_by() {
                Some((false, _)) => format!(
                    "stream {stream} is incomplete: another request of the sync met the API \
                     limit first"
                ),
                _ => format!("stream {stream} is incomplete: {reason}"),
            };
            self.emit(&protocol::log(level, &message))?;
        }
        if matches!(status, StreamStatus::Started) {
            self.started.insert(stream.to_string(), Instant::now());
        }
        if matches!(status, StreamStatus::Complete | StreamStatus::Incomplete(_)) {
            if let Some(started) = self.started.remove(stream) {
                self.observed.entry(stream.to_string()).or_default().seconds =
                    started.elapsed().as_secs_f64();
            }
            self.show_progress();
            self.progress.finish(stream, &label.to_ascii_lowercase());
        }
        self.emit(&protocol::trace_stream_status(stream, label))?;
        if let StreamStatus::Incomplete(IncompleteReason::Failed { message, failure }) = &status {
            // A TRACE error naming the stream, as the CDK emits one when a stream fails: said
            // now, so a sync that later ends for another reason (or is killed) still tells it.
            let labelled = Failure::labelled(format!("`{stream}`: {message}"), *failure);
            self.emit(&protocol::stream_trace_error(
                stream,
                &labelled.message,
                labelled.failure_type,
            ))?;
        }
        Ok(())
    }

    async fn summary(&mut self, summary: &SyncSummary) -> Result<(), sf_sync::Error> {
        // Kept first: a closed stdout fails the flush, and the run report is written from it.
        self.summary = Some(summary.clone());
        self.flush_records()?;
        self.out.flush().map_err(sf_sync::Error::sink)?;
        Ok(())
    }

    async fn plan(&mut self, stream: &str, mut plan: StreamPlan) -> Result<(), sf_sync::Error> {
        self.progress.plan(stream, &plan);
        let rows = plan.estimated_rows;
        let observed = self.observed.entry(stream.to_string()).or_default();
        // A later plan without a count (a switch from Bulk to REST) keeps the count taken.
        if plan.estimated_rows.is_none() {
            plan.estimated_rows = observed.plan.as_ref().and_then(|p| p.estimated_rows);
        }
        observed.plan = Some(plan);
        match rows {
            Some(rows) => self.emit(&protocol::trace_estimate(stream, rows)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    #[test]
    fn strings_and_values_are_written_as_serde_json_writes_them() {
        let mut texts: Vec<String> = (0u8..=127).map(|b| char::from(b).to_string()).collect();
        texts.extend(
            [
                "",
                "plain ascii text longer than eight bytes",
                "Zoë Ünïcode — ✓ 🎉",
                "quote \" and backslash \\ in the middle of a long run of text",
                "\u{1}\u{1f}\u{7f}\u{80}",
                "tab\tnew\nline\rcarriage\u{8}\u{c}",
                "12345678\"",
                "1234567\"8",
                "\\abcdefgh",
            ]
            .map(String::from),
        );
        // Every control character, quote and backslash at every offset of a 17-byte string.
        for special in ['"', '\\', '\u{0}', '\u{1f}', '\n', 'é'] {
            for at in 0..17 {
                let mut text: Vec<char> = "abcdefghijklmnopq".chars().collect();
                text[at] = special;
                texts.push(text.into_iter().collect());
            }
        }
        for text in &texts {
            let mut buf = Vec::new();
            write_str(&mut buf, text);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
        for value in [
            Value::Null,
            json!(true),
            json!(false),
            json!(-12),
            json!(1.5e300),
            json!("x"),
            json!({"street": "1 \"Main\" St", "n": [1, null]}),
        ] {
            let mut buf = Vec::new();
            write_value(&mut buf, &value).unwrap();
            assert_eq!(buf, serde_json::to_vec(&value).unwrap(), "{value}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Any string, weighted towards the bytes that need escaping, comes out as serde_json
        /// writes it.
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(
            text in "([\\x00-\\x1f\"\\\\a-z\\x7f]|\\PC){0,40}"
        ) {
            let mut buf = Vec::new();
            write_str(&mut buf, &text);
            proptest::prop_assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&text).unwrap()
            );
        }
    }

    #[test]
    fn nested_values_are_written_as_serde_json_writes_them() {
        for value in [
            json!({}),
            json!([]),
            json!([[], {}, [null]]),
            json!({"street": "12 \"Elm\"\n\tSt\\ \u{1}\u{7f}", "city": "Zoë — 中文 🎉",
                   "latitude": 48.8566, "longitude": -0.120268, "n": 0, "big": u64::MAX,
                   "neg": i64::MIN, "tiny": 5e-324, "huge": 1.7976931348623157e308,
                   "whole": 3.0, "none": null, "yes": true, "no": false}),
            json!({"k\"ey\n": {"nested": [1, -2.5, "x", null, {"deep": [true, {"e": ""}]}]}}),
            json!({"BillingAddress": {"city": "Austin", "country": null}, "b": [[[[1]]]]}),
        ] {
            let mut buf = Vec::new();
            write_value(&mut buf, &value).unwrap();
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&value).unwrap()
            );
        }
    }

    /// Any JSON value: scalars (strings weighted towards what needs escaping, integers of
    /// both signs, finite floats) nested in arrays and objects.
    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "([\\x00-\\x1f\"\\\\a-z\\x7f]|\\PC){0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("([\"\\\\\\x00-\\x1fa-z]|\\PC){0,8}", inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1_000))]

        /// Any nested value comes out byte for byte as serde_json writes it.
        #[test]
        fn any_value_is_written_as_serde_json_writes_it(value in any_value()) {
            let mut buf = Vec::new();
            write_value(&mut buf, &value).unwrap();
            proptest::prop_assert_eq!(buf, serde_json::to_vec(&value).unwrap());
        }
    }

    /// A `Write` into a buffer the test reads afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Each batch's records carry the time they were written, not the time the sink was made
    /// (a record written a while after the first one says so).
    #[tokio::test]
    async fn emitted_at_is_when_the_batch_is_written() {
        let shared = Shared::default();
        let out = Arc::new(Output::new(Box::new(shared.clone())));
        let hidden = indicatif::ProgressDrawTarget::hidden();
        let mut sink = AirbyteSink::with_progress(out, Progress::new(false, hidden));
        let record = |id: &str| Record {
            columns: Arc::from(vec!["Id".to_string()]),
            values: vec![json!(id)],
        };
        let made = protocol::now_millis();
        std::thread::sleep(std::time::Duration::from_millis(30));
        sink.record("Account", record("001")).await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        sink.records("Account", &mut vec![record("002"), record("003")])
            .await
            .unwrap();
        sink.flush_records().unwrap();
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        let stamps: Vec<i64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["record"]["emitted_at"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(stamps.len(), 3, "{text}");
        assert!(stamps[0] >= made + 30, "{stamps:?} made at {made}");
        assert!(stamps[1] >= stamps[0] + 30, "{stamps:?}");
        assert_eq!(stamps[1], stamps[2], "one reading per batch");
    }

    #[test]
    fn record_lines_are_airbyte_records() {
        let record = Record {
            columns: Arc::from(vec!["Id".to_string(), "Name".to_string(), "N".to_string()]),
            values: vec![json!("001"), json!("Say \"hi\"\n"), Value::Null],
        };
        let mut buf = Vec::new();
        let mut lines = StreamLines::new("Acc\"ount").unwrap();
        lines.write(&mut buf, &record, 1700000000000).unwrap();
        // the same columns again reuse the escaped keys; other columns are escaped anew
        lines.write(&mut buf, &record, 1700000000001).unwrap();
        let other = Record {
            columns: Arc::from(vec!["X".to_string()]),
            values: vec![json!(1.5)],
        };
        lines.write(&mut buf, &other, 1700000000002).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["record"]["emitted_at"], 1700000000001i64);
        assert_eq!(lines[2]["record"]["data"], json!({"X": 1.5}));
        let buf = text.lines().next().unwrap().as_bytes().to_vec();
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            v,
            json!({"type": "RECORD", "record": {"stream": "Acc\"ount",
                "data": {"Id": "001", "Name": "Say \"hi\"\n", "N": null},
                "emitted_at": 1700000000000i64}})
        );
    }
}
