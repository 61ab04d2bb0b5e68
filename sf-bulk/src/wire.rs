//! Serde types of the Bulk API 2.0 JSON payloads, and their conversion to the domain types.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::job::{JobInfo, JobState, Operation};

/// The body of `POST jobs/query`: CSV, comma-delimited, LF line endings.
pub(crate) fn create_body(operation: Operation, soql: &str) -> Value {
    json!({
        "operation": operation.as_wire(),
        "query": soql,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    })
}

/// The body of `PATCH jobs/query/{id}` that aborts a job.
pub(crate) fn abort_body() -> Value {
    json!({"state": "Aborted"})
}

/// Job info, as create, poll and abort return it. Unknown fields are ignored; everything but
/// `id` and `state` is optional, and counts are accepted as integers or integral floats.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobInfoWire {
    id: String,
    state: String,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    number_records_processed: Option<Value>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    retries: Option<Value>,
    #[serde(default)]
    total_processing_time: Option<Value>,
}

fn count(value: Option<Value>) -> Option<u64> {
    let value = value?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15)
            .map(|f| f as u64)
    })
}

impl JobInfoWire {
    pub(crate) fn into_domain(self) -> JobInfo {
        JobInfo {
            id: self.id,
            state: JobState::from_wire(&self.state),
            operation: self.operation.as_deref().and_then(Operation::from_wire),
            object: self.object,
            records_processed: count(self.number_records_processed),
            error_message: self.error_message.filter(|m| !m.is_empty()),
            retries: count(self.retries),
            total_processing_time_ms: count(self.total_processing_time),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_info_from_a_poll_answer() {
        let wire: JobInfoWire = serde_json::from_str(
            r#"{"id":"750R0000000zlh9IAA","operation":"queryAll","object":"Account",
                "createdById":"005R0000000GiwjIAC","createdDate":"2018-12-10T17:50:19.000+0000",
                "state":"JobComplete","concurrencyMode":"Parallel","contentType":"CSV",
                "apiVersion":46.0,"jobType":"V2Query","lineEnding":"LF","columnDelimiter":"COMMA",
                "numberRecordsProcessed":500,"retries":0,"totalProcessingTime":334.0,
                "isPkChunkingSupported":true}"#,
        )
        .unwrap();
        let info = wire.into_domain();
        assert_eq!(info.id, "750R0000000zlh9IAA");
        assert_eq!(info.state, JobState::JobComplete);
        assert_eq!(info.operation, Some(Operation::QueryAll));
        assert_eq!(info.object.as_deref(), Some("Account"));
        assert_eq!(info.records_processed, Some(500));
        assert_eq!(info.retries, Some(0));
        assert_eq!(info.total_processing_time_ms, Some(334));
        assert_eq!(info.error_message, None);
    }

    #[test]
    fn odd_counts_are_dropped_not_trusted() {
        assert_eq!(count(Some(json!(-1))), None);
        assert_eq!(count(Some(json!(1.5))), None);
        assert_eq!(count(Some(json!("12"))), None);
        assert_eq!(count(Some(json!(12.0))), Some(12));
        assert_eq!(count(None), None);
    }

    #[test]
    fn create_body_asks_for_csv_comma_lf() {
        let body = create_body(Operation::Query, "SELECT Id FROM Account");
        assert_eq!(
            body,
            json!({"operation": "query", "query": "SELECT Id FROM Account",
                   "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"})
        );
    }
}
