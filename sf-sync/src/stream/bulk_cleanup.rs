//! What a stream's Bulk jobs leave on the org: aborted and deleted on a stop or a switch to REST.

use super::Runner;
use crate::sink::LogLevel;
use sf_auth::lock;

impl Runner {
    /// Aborts this stream's Bulk jobs that may still run, then deletes them (unless the client
    /// keeps jobs), so a stop or a switch to REST leaves none on the org. A job that finished
    /// before the stop (started ahead, or cut off mid-download) refuses the abort (400, "Aborting
    /// already Completed Job not allowed") and is deleted all the same. Best effort: a job that
    /// cannot be deleted is logged; Salesforce removes jobs after seven days.
    pub(super) async fn abort_jobs(&self) {
        let delete = self.shared.bulk.config().delete_jobs;
        let ids: Vec<String> = lock(&self.jobs).drain().collect();
        for id in ids {
            let (ended, how) = match self.shared.bulk.abort(&id).await {
                Ok(info) => (info.state.is_terminal(), "aborted"),
                // Refused: the job had already ended (complete, failed or aborted).
                Err(e) if e.api_error().is_some_and(|a| a.status == 400) => {
                    (true, "had already ended")
                }
                Err(e) if e.kind() == sf_bulk::ErrorKind::JobNotFound => continue,
                Err(e) => {
                    self.log(
                        LogLevel::Warn,
                        format!("{}: Bulk job {id} not aborted: {e}", self.name),
                    )
                    .await;
                    continue;
                }
            };
            if !(delete && ended) {
                self.log(
                    LogLevel::Info,
                    format!("{}: Bulk job {id} {how}", self.name),
                )
                .await;
                continue;
            }
            match self.shared.bulk.delete(&id).await {
                Ok(()) => {
                    self.log(
                        LogLevel::Info,
                        format!("{}: Bulk job {id} {how}; deleted", self.name),
                    )
                    .await
                }
                Err(e) if e.kind() == sf_bulk::ErrorKind::JobNotFound => {}
                Err(e) => {
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{}: Bulk job {id} {how} but was not deleted ({e}); Salesforce \
                             deletes it after seven days",
                            self.name
                        ),
                    )
                    .await
                }
            }
        }
    }
}
