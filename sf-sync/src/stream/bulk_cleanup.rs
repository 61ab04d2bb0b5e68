//! What a stream's Bulk jobs leave on the org: aborted and deleted on a stop or a switch to REST,
//! and when a job a state named cannot be continued.

use sf_auth::lock;
use sf_bulk::BulkClient;

use super::Runner;
use crate::sink::LogLevel;

/// Aborts `id` if it may still run, then deletes it (unless the client keeps jobs). A job that
/// had ended refuses the abort (400, "Aborting already Completed Job not allowed") and is
/// deleted all the same. Best effort: returns what happened, for the LOG (`None`: the job was
/// gone already); Salesforce removes jobs after seven days.
pub(super) async fn abort_and_delete(bulk: &BulkClient, id: &str) -> Option<(LogLevel, String)> {
    let (ended, how) = match bulk.abort(id).await {
        Ok(info) => (info.state.is_terminal(), "aborted"),
        // Refused: the job had already ended (complete, failed or aborted).
        Err(e) if e.api_error().is_some_and(|a| a.status == 400) => {
            (true, "had already finished (nothing to abort)")
        }
        Err(e) if e.kind() == sf_bulk::ErrorKind::JobNotFound => return None,
        Err(e) => return Some((LogLevel::Warn, format!("Bulk job {id} not aborted: {e}"))),
    };
    if !(bulk.config().delete_jobs && ended) {
        return Some((LogLevel::Info, format!("Bulk job {id} {how}")));
    }
    match bulk.delete(id).await {
        Ok(()) => Some((LogLevel::Info, format!("Bulk job {id} {how}; deleted"))),
        Err(e) if e.kind() == sf_bulk::ErrorKind::JobNotFound => None,
        Err(e) => Some((
            LogLevel::Warn,
            format!(
                "Bulk job {id} {how} but was not deleted ({e}); Salesforce deletes it after \
                 seven days"
            ),
        )),
    }
}

impl Runner {
    /// Aborts this stream's Bulk jobs that may still run, then deletes them (unless the client
    /// keeps jobs), so a stop or a switch to REST leaves none on the org.
    pub(super) async fn abort_jobs(&self) {
        let ids: Vec<String> = lock(&self.jobs).drain().collect();
        self.discard_jobs(ids).await;
    }

    /// Aborts and deletes the jobs the input state named that this sync will not continue.
    pub(super) async fn discard_resumable(&self, run: &mut super::ObjectRun) {
        let ids: Vec<String> = run.progress.resumable.drain(..).map(|j| j.job_id).collect();
        self.discard_jobs(ids).await;
    }

    /// Aborts and deletes `ids` (see [`abort_and_delete`]), each said in the LOG.
    pub(super) async fn discard_jobs(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if let Some((level, line)) = abort_and_delete(&self.shared.bulk, &id).await {
                self.log(level, format!("{}: {line}", self.name)).await;
            }
        }
    }
}
