//! The one WARN that names the streams a sync stopped, or never started, because another of its
//! requests met the daily API limit or the `api_budget` first. The stream whose request met it
//! says so in its own WARN; on an org of a thousand streams, a line for each of the others
//! would bury it.

use crate::sink::{name_list, SyncSummary};

/// Stream names listed in the WARN per kind, at most; the rest are counted.
const NAMED: usize = 20;

/// The WARN for a sync's `summary`, or `None` when no stream stopped because another request
/// met the limit first.
pub(super) fn limit_note(summary: &SyncSummary) -> Option<String> {
    let cut = summary.cut_at_limit(true)?;
    let count = cut.incremental.len() + cut.full_refresh.len();
    let mut parts = Vec::new();
    if !cut.incremental.is_empty() {
        parts.push(format!(
            "incremental ones, read on from their state (if any): {}",
            name_list(&cut.incremental, NAMED)
        ));
    }
    if !cut.full_refresh.is_empty() {
        parts.push(format!(
            "full-refresh ones, read whole again: {}",
            name_list(&cut.full_refresh, NAMED)
        ));
    }
    Some(format!(
        "{count} stream{} stopped or did not start because a request of the sync met the API \
         limit first ({}); the next sync reads them: {}",
        if count == 1 { "" } else { "s" },
        cut.detail,
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SyncMode;
    use crate::sink::{IncompleteReason, StreamSummary, LIMIT_MET_FIRST};
    use crate::StreamStatus;

    fn of(streams: &[StreamSummary]) -> SyncSummary {
        SyncSummary {
            streams: streams.to_vec(),
            api_requests: None,
        }
    }

    fn summary(stream: &str, sync_mode: SyncMode, status: StreamStatus) -> StreamSummary {
        StreamSummary {
            stream: stream.to_string(),
            sync_mode,
            api: None,
            records: 0,
            windows: 0,
            status,
            failure: None,
        }
    }

    fn limited(detail: &str) -> StreamStatus {
        StreamStatus::Incomplete(IncompleteReason::ApiLimit {
            detail: detail.to_string(),
        })
    }

    #[test]
    fn names_the_streams_another_request_stopped_by_mode_and_counts_past_twenty() {
        let met = format!("{LIMIT_MET_FIRST}query on `Account`: api-usage 100/100");
        let mut streams = vec![
            summary(
                "Account",
                SyncMode::Incremental,
                limited("api-usage 100/100"),
            ),
            summary("Done", SyncMode::Incremental, StreamStatus::Complete),
            summary("Lead", SyncMode::FullRefresh, limited(&met)),
        ];
        for i in 0..25 {
            streams.push(summary(
                &format!("S{i}"),
                SyncMode::Incremental,
                limited(&met),
            ));
        }
        let note = limit_note(&of(&streams)).unwrap();
        assert!(
            note.starts_with(
                "26 streams stopped or did not start because a request of the sync met the API \
                 limit first (query on `Account`: api-usage 100/100); the next sync reads them: \
                 incremental ones, read on from their state (if any): S0, S1,"
            ),
            "{note}"
        );
        assert!(note.contains("S19 and 5 more; full-refresh ones, read whole again: Lead"));
        // Full-refresh streams alone read as a sentence too.
        let alone = limit_note(&of(&streams[..3])).unwrap();
        assert!(
            alone.ends_with("the next sync reads them: full-refresh ones, read whole again: Lead"),
            "{alone}"
        );
        assert!(!note.contains("S20"), "{note}");
        // The stream whose own request met the limit has its own WARN.
        assert!(
            !note.contains("Account,") && !note.contains("Done"),
            "{note}"
        );
        assert_eq!(limit_note(&of(&streams[..2])), None);
    }
}
