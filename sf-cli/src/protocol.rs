//! Airbyte protocol messages: one JSON object per line on stdout, nothing else there.

use std::io::Write;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

/// Milliseconds since the epoch, as Airbyte's `emitted_at`.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Airbyte's `failure_type` of a TRACE error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureType {
    /// The user must fix the config, catalog or state.
    Config,
    /// A bug or an unexpected answer.
    System,
    /// Worth retrying later.
    Transient,
}

impl FailureType {
    fn as_str(self) -> &'static str {
        match self {
            FailureType::Config => "config_error",
            FailureType::System => "system_error",
            FailureType::Transient => "transient_error",
        }
    }
}

/// `{"type":"SPEC","spec":...}`.
pub fn spec(spec: Value) -> Value {
    json!({"type": "SPEC", "spec": spec})
}

/// `{"type":"CONNECTION_STATUS",...}`.
pub fn connection_status(ok: bool, message: Option<&str>) -> Value {
    let mut status = Map::new();
    status.insert(
        "status".into(),
        json!(if ok { "SUCCEEDED" } else { "FAILED" }),
    );
    if let Some(m) = message {
        status.insert("message".into(), json!(m));
    }
    json!({"type": "CONNECTION_STATUS", "connectionStatus": status})
}

/// `{"type":"CATALOG","catalog":{"streams":[...]}}`.
pub fn catalog(streams: Vec<Value>) -> Value {
    json!({"type": "CATALOG", "catalog": {"streams": streams}})
}

/// A per-stream `STATE` message.
pub fn stream_state(stream: &str, state: Value, record_count: u64) -> Value {
    json!({
        "type": "STATE",
        "state": {
            "type": "STREAM",
            "stream": {"stream_descriptor": {"name": stream}, "stream_state": state},
            "sourceStats": {"recordCount": record_count as f64},
        }
    })
}

/// `{"type":"LOG",...}` with level `FATAL|ERROR|WARN|INFO|DEBUG|TRACE`.
pub fn log(level: &str, message: &str) -> Value {
    json!({"type": "LOG", "log": {"level": level, "message": message}})
}

/// A TRACE error.
pub fn trace_error(message: &str, internal: Option<&str>, failure: FailureType) -> Value {
    let mut error = Map::new();
    error.insert("message".into(), json!(message));
    if let Some(i) = internal {
        error.insert("internal_message".into(), json!(i));
    }
    error.insert("failure_type".into(), json!(failure.as_str()));
    json!({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": now_millis() as f64, "error": error}})
}

/// A TRACE error of one stream (the error's `stream_descriptor` names it), as the Airbyte CDK
/// emits one for each stream that failed before the sync's own error: the platform ties the
/// failure to the stream.
pub fn stream_trace_error(stream: &str, message: &str, failure: FailureType) -> Value {
    let mut value = trace_error(message, None, failure);
    value["trace"]["error"]["stream_descriptor"] = json!({"name": stream});
    value
}

/// A TRACE stream status: `STARTED`, `RUNNING`, `COMPLETE`, `INCOMPLETE`.
pub fn trace_stream_status(stream: &str, status: &str) -> Value {
    json!({
        "type": "TRACE",
        "trace": {
            "type": "STREAM_STATUS",
            "emitted_at": now_millis() as f64,
            "stream_status": {"stream_descriptor": {"name": stream}, "status": status},
        }
    })
}

/// A TRACE estimate of the rows `stream` will emit in this sync (Airbyte's
/// `AirbyteEstimateTraceMessage`, type `STREAM`; no `namespace`: the protocol types it as a
/// string, and Salesforce streams have none).
pub fn trace_estimate(stream: &str, rows: u64) -> Value {
    json!({
        "type": "TRACE",
        "trace": {
            "type": "ESTIMATE",
            "emitted_at": now_millis() as f64,
            "estimate": {"name": stream, "type": "STREAM", "row_estimate": rows},
        }
    })
}

/// A CONTROL message carrying the whole updated config (refresh-token rotation).
pub fn control_config(config: Value) -> Value {
    json!({
        "type": "CONTROL",
        "control": {
            "type": "CONNECTOR_CONFIG",
            "emitted_at": now_millis() as f64,
            "connectorConfig": {"config": config},
        }
    })
}

/// Writes messages, one line each, each with a single write so lines never interleave.
pub struct Output {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Output {
    /// Messages to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Output {
        Output {
            out: Mutex::new(out),
        }
    }

    /// Writes one message as one line.
    pub fn emit(&self, message: &Value) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        let mut out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("stdout lock poisoned"))?;
        out.write_all(&line)
    }

    /// Writes pre-serialised lines (a batch of records) in one write.
    pub fn emit_raw(&self, lines: &[u8]) -> std::io::Result<()> {
        let mut out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("stdout lock poisoned"))?;
        out.write_all(lines)
    }

    /// Flushes.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("stdout lock poisoned"))?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_shapes() {
        let s = stream_state("Account", json!({"state_type": "date-range"}), 3);
        assert_eq!(s["state"]["stream"]["stream_descriptor"]["name"], "Account");
        let t = trace_error("bad", None, FailureType::Config);
        assert_eq!(t["trace"]["error"]["failure_type"], "config_error");
        assert_eq!(
            connection_status(false, Some("no"))["connectionStatus"]["status"],
            "FAILED"
        );
        assert_eq!(
            control_config(json!({"a": 1}))["control"]["connectorConfig"]["config"]["a"],
            1
        );
    }
}
