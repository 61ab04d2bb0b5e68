//! The sync engine's sink as Airbyte messages on stdout (or a file, for the demo).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use sf_discovery::Record;
use sf_sync::{LogLevel, Sink, StreamStatus, SyncSummary};

use crate::protocol::{self, Output};

/// Flush records to the output once this many bytes are buffered.
const BATCH_BYTES: usize = 256 * 1024;

/// Writes RECORD, STATE, LOG and TRACE stream-status messages.
pub struct AirbyteSink {
    out: Arc<Output>,
    buf: Vec<u8>,
    /// Records per stream since its last state message.
    since_state: HashMap<String, u64>,
    /// Records per stream in all.
    totals: HashMap<String, u64>,
    progress: Option<Progress>,
    /// The summary the engine sent last.
    pub summary: Option<SyncSummary>,
}

struct Progress {
    started: Instant,
    last: Instant,
    streams_done: usize,
    streams_total: usize,
}

impl AirbyteSink {
    /// A sink writing to `out`; progress goes to stderr when it is a terminal.
    pub fn new(out: Arc<Output>, streams_total: usize, show_progress: bool) -> AirbyteSink {
        let progress = (show_progress && std::io::stderr().is_terminal()).then(|| Progress {
            started: Instant::now(),
            last: Instant::now(),
            streams_done: 0,
            streams_total,
        });
        AirbyteSink {
            out,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            since_state: HashMap::new(),
            totals: HashMap::new(),
            progress,
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

    fn show_progress(&mut self, force: bool) {
        let records: u64 = self.totals.values().sum();
        if let Some(p) = &mut self.progress {
            if !force && p.last.elapsed().as_millis() < 500 {
                return;
            }
            p.last = Instant::now();
            let secs = p.started.elapsed().as_secs_f64().max(0.001);
            eprint!(
                "\r\x1b[Kstreams {}/{}  records {}  {:.0} records/s",
                p.streams_done,
                p.streams_total,
                records,
                records as f64 / secs
            );
            if force {
                eprintln!();
            }
        }
    }
}

/// Serialises a record's columns and values as a JSON object without copying them.
struct Data<'a>(&'a Record);

impl serde::Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.values.len()))?;
        for (k, v) in self.0.columns.iter().zip(self.0.values.iter()) {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Appends one RECORD line for `record` to `buf`.
pub fn write_record_line(
    buf: &mut Vec<u8>,
    stream: &str,
    record: &Record,
    emitted_at: i64,
) -> serde_json::Result<()> {
    buf.extend_from_slice(b"{\"type\":\"RECORD\",\"record\":{\"stream\":");
    serde_json::to_writer(&mut *buf, stream)?;
    buf.extend_from_slice(b",\"data\":");
    serde_json::to_writer(&mut *buf, &Data(record))?;
    buf.extend_from_slice(b",\"emitted_at\":");
    buf.extend_from_slice(emitted_at.to_string().as_bytes());
    buf.extend_from_slice(b"}}\n");
    Ok(())
}

#[async_trait]
impl Sink for AirbyteSink {
    async fn record(&mut self, stream: &str, record: Record) -> Result<(), sf_sync::Error> {
        write_record_line(&mut self.buf, stream, &record, protocol::now_millis())
            .map_err(sf_sync::Error::sink)?;
        *self.since_state.entry(stream.to_string()).or_default() += 1;
        *self.totals.entry(stream.to_string()).or_default() += 1;
        if self.buf.len() >= BATCH_BYTES {
            self.flush_records()?;
            self.show_progress(false);
        }
        Ok(())
    }

    async fn state(&mut self, stream: &str, state: Value) -> Result<(), sf_sync::Error> {
        let count = self.since_state.insert(stream.to_string(), 0).unwrap_or(0);
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
            self.emit(&protocol::log(
                if reason.is_failure() { "ERROR" } else { "WARN" },
                &format!("stream {stream} is incomplete: {reason}"),
            ))?;
        }
        if matches!(status, StreamStatus::Complete | StreamStatus::Incomplete(_)) {
            if let Some(p) = &mut self.progress {
                p.streams_done += 1;
            }
        }
        self.emit(&protocol::trace_stream_status(stream, label))
    }

    async fn summary(&mut self, summary: &SyncSummary) -> Result<(), sf_sync::Error> {
        self.flush_records()?;
        self.out.flush().map_err(sf_sync::Error::sink)?;
        self.show_progress(true);
        self.summary = Some(summary.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_lines_are_airbyte_records() {
        let record = Record {
            columns: Arc::from(vec!["Id".to_string(), "Name".to_string(), "N".to_string()]),
            values: vec![json!("001"), json!("Say \"hi\"\n"), Value::Null],
        };
        let mut buf = Vec::new();
        write_record_line(&mut buf, "Account", &record, 1700000000000).unwrap();
        assert_eq!(buf.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            v,
            json!({"type": "RECORD", "record": {"stream": "Account",
                "data": {"Id": "001", "Name": "Say \"hi\"\n", "N": null},
                "emitted_at": 1700000000000i64}})
        );
    }
}
