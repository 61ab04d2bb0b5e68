//! `spec`, `check`, `discover` and `read`: the Airbyte protocol commands.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sf_auth::Session;
use sf_discovery::{DescribeStream, StreamSpec};
use sf_sync::{
    CancellationToken, ConfiguredCatalog, IncompleteReason, InputState, ReadOptions, SyncConfig,
    SyncMode, SyncSummary,
};

use crate::failure::Failure;
use crate::files::{in_file, read_json, FileKind};
use crate::protocol::{self, Output};
use crate::sink::AirbyteSink;

/// A parsed config and its raw JSON (kept to re-emit with a rotated refresh token).
pub struct LoadedConfig {
    /// The config as given.
    pub raw: Value,
    /// The validated config.
    pub config: SyncConfig,
}

/// Writes one message and flushes it.
pub(crate) fn emit(out: &Output, message: &Value) -> Result<(), Failure> {
    out.emit(message)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::system(format!("cannot write to stdout: {e}")))
}

/// Reads and validates the config file; unknown keys become LOG warnings.
pub fn load_config(path: &Path, out: &Output) -> Result<LoadedConfig, Failure> {
    let raw = read_json(FileKind::Config, path)?;
    let parsed = SyncConfig::from_value(&raw, chrono::Utc::now())
        .map_err(|e| Failure::config(in_file(FileKind::Config, path, e)))?;
    for warning in &parsed.warnings {
        emit(
            out,
            &protocol::log(
                "WARN",
                &format!("config `{}`: {}", warning.key, warning.message),
            ),
        )?;
    }
    Ok(LoadedConfig {
        raw,
        config: parsed.config,
    })
}

/// Logs in, and re-emits the config with the new refresh token each time it rotates.
pub async fn login(loaded: &LoadedConfig, out: Arc<Output>) -> Result<Session, Failure> {
    // Watched from before the first token request: a refresh token Salesforce rotates in an
    // answer the login then refuses (its `instance_url`, say) is the grant from then on, and is
    // written even so.
    let (rotation, mut early) = tokio::sync::watch::channel(None);
    let emitter = Arc::new(Rotations {
        out,
        raw: loaded.raw.clone(),
        last: Mutex::new(None),
    });
    let logged_in = Session::login_with_rotation(loaded.config.session_config(), rotation).await;
    if logged_in.is_err() {
        early.mark_unchanged();
        emitter.emit_latest(&early);
    }
    let session = logged_in.map_err(|e| {
        let mut failure = Failure::from_auth("logging in to Salesforce failed", &e);
        if matches!(e, sf_auth::Error::Network { .. }) {
            // The host is named in the message: the fix is in the config or the network.
            failure.message.push_str(
                ". Check `login_url` (or `is_sandbox`) and that this machine can reach that \
                     host (a proxy, a firewall)",
            );
        }
        failure
    })?;
    let mut rotations = session.subscribe_rotation();
    rotations.mark_unchanged();
    emitter.emit_latest(&rotations);
    let watcher = tokio::spawn({
        let emitter = emitter.clone();
        let mut rotations = rotations.clone();
        async move {
            while rotations.changed().await.is_ok() {
                rotations.mark_unchanged();
                emitter.emit_latest(&rotations);
            }
        }
    });
    if let Ok(mut watching) = WATCHING.lock() {
        watching.push((emitter, rotations, watcher.abort_handle()));
    }
    Ok(session)
}

/// Writes a config with a rotated refresh token as a CONTROL message, each token once.
struct Rotations {
    out: Arc<Output>,
    raw: Value,
    /// The last token written.
    last: Mutex<Option<String>>,
}

impl Rotations {
    /// Writes the newest token the session rotated to, unless it was written already. The token
    /// is read while the lock is held, so two writers (the watcher and the command's end) never
    /// write an older token after a newer one.
    fn emit_latest(&self, rotations: &tokio::sync::watch::Receiver<Option<sf_auth::Secret>>) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let Some(token) = rotations.borrow().clone() else {
            return;
        };
        if last.as_deref() == Some(token.expose()) {
            return;
        }
        let mut config = self.raw.clone();
        config["refresh_token"] = json!(token.expose());
        // One write per message: the line never interleaves with records.
        let written = self
            .out
            .emit(&protocol::control_config(config))
            .and_then(|()| self.out.flush());
        if written.is_ok() {
            *last = Some(token.expose().to_string());
        }
    }
}

/// The sessions' rotation watchers: the last token each saw is written before the process ends.
type Watching = Vec<(
    Arc<Rotations>,
    tokio::sync::watch::Receiver<Option<sf_auth::Secret>>,
    tokio::task::AbortHandle,
)>;

static WATCHING: Mutex<Watching> = Mutex::new(Vec::new());

/// Writes the refresh token a session rotated last, if its watcher has not yet (a rotation at
/// the very end of a command would otherwise be lost with the runtime, and the platform would
/// keep a token Salesforce revoked). Called once the command is done.
pub fn emit_last_rotations() {
    let watching = WATCHING
        .lock()
        .map(|mut w| std::mem::take(&mut *w))
        .unwrap_or_default();
    for (emitter, rotations, watcher) in watching {
        watcher.abort();
        emitter.emit_latest(&rotations);
    }
}

/// `spec`.
pub fn spec(out: &Output) -> Result<(), Failure> {
    emit(out, &protocol::spec(crate::spec::spec()))
}

/// One CATALOG entry.
pub fn catalog_entry(stream: &StreamSpec) -> Value {
    let mut entry = json!({
        "name": stream.name,
        "json_schema": stream.json_schema(),
        "supported_sync_modes": if stream.supports_incremental {
            json!(["full_refresh", "incremental"])
        } else {
            json!(["full_refresh"])
        },
        "is_resumable": stream.supports_incremental,
    });
    if let Some(pk) = &stream.primary_key {
        entry["source_defined_primary_key"] = json!([[pk]]);
    }
    if stream.supports_incremental {
        if let Some(cursor) = &stream.cursor_field {
            entry["source_defined_cursor"] = json!(true);
            entry["default_cursor_field"] = json!([cursor]);
        }
    }
    entry
}

/// The `Describe` stream's CATALOG entry.
pub fn describe_entry() -> Value {
    json!({
        "name": DescribeStream::NAME,
        "json_schema": DescribeStream::json_schema(),
        "supported_sync_modes": ["full_refresh"],
        "source_defined_primary_key": [[DescribeStream::PRIMARY_KEY]],
        "is_resumable": false,
    })
}

/// `discover`: the CATALOG of every stream the config's criteria keep, plus `Describe`.
pub async fn discover(config_path: &Path, out: Arc<Output>) -> Result<Value, Failure> {
    let loaded = load_config(config_path, &out)?;
    // Discovery ignores `api_budget`, as `check` does: a ceiling on what syncs read, it would
    // otherwise leave the platform without the streams (a describe per 25 objects; Salesforce's
    // own limit still applies).
    let loaded = LoadedConfig {
        raw: loaded.raw,
        config: SyncConfig {
            api_budget: None,
            ..loaded.config
        },
    };
    let session = login(&loaded, out.clone()).await?;
    let catalog = sf_sync::discover(&session, &loaded.config)
        .await
        .map_err(|e| Failure::from_sync("discovery failed", &e))?;
    // Never silent: each object left out gets a LOG line saying why, before the CATALOG.
    for excluded in &catalog.excluded {
        emit(&out, &protocol::log("INFO", &excluded.to_string()))?;
    }
    for warning in &catalog.warnings {
        emit(&out, &protocol::log("WARN", &warning.to_string()))?;
    }
    let mut streams: Vec<Value> = catalog.streams.iter().map(catalog_entry).collect();
    if !catalog
        .streams
        .iter()
        .any(|s| s.name == DescribeStream::NAME)
    {
        streams.push(describe_entry());
    }
    let message = protocol::catalog(streams);
    emit(&out, &message)?;
    Ok(message)
}

/// `read`: RECORD, STATE, LOG and TRACE messages; success also when the daily limit cut it short.
pub async fn read(
    config_path: &Path,
    catalog_path: &Path,
    state_path: Option<&Path>,
    report: Option<&Path>,
    out: Arc<Output>,
) -> Result<SyncSummary, Failure> {
    let defaults = ReadOptions::default();
    read_tuned(
        config_path,
        catalog_path,
        state_path,
        report,
        &defaults,
        out,
    )
    .await
}

/// The signals that stop a read: Ctrl-C (SIGINT) and, on Unix, SIGTERM, which is how Airbyte's
/// platform (a container stopped, a pod deleted) and most schedulers cancel a sync. Both stop it
/// alike: the first cleanly, a second at once.
/// How long after the first stopping signal a second one still counts as the same.
const SECOND_SIGNAL_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

struct Interrupts {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn install() -> Interrupts {
        Interrupts {
            // Without a SIGTERM handler (it could not be installed), Ctrl-C still works.
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// Waits for the next signal; `false` when none can come any more.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(term) = self.term.as_mut() {
            return tokio::select! {
                Ok(()) = tokio::signal::ctrl_c() => true,
                // Without Ctrl-C (its handler failed), SIGTERM still stops the read.
                term = term.recv() => term.is_some(),
            };
        }
        tokio::signal::ctrl_c().await.is_ok()
    }

    /// Waits for a second signal that is not the first one delivered twice: a signal sent to
    /// the process and to its group by a supervisor arrives as two at once, and must not skip
    /// the clean stop the first began. Signals within [`SECOND_SIGNAL_AFTER`] of the first are
    /// let go.
    async fn next_apart(&mut self) -> bool {
        let first = std::time::Instant::now();
        loop {
            if !self.next().await {
                return false;
            }
            if first.elapsed() >= SECOND_SIGNAL_AFTER {
                return true;
            }
        }
    }
}

/// [`read`] with the engine's options (`read`'s tuning flags, `crate::tuning`).
pub async fn read_tuned(
    config_path: &Path,
    catalog_path: &Path,
    state_path: Option<&Path>,
    report: Option<&Path>,
    options: &ReadOptions,
    out: Arc<Output>,
) -> Result<SyncSummary, Failure> {
    let loaded = load_config(config_path, &out)?;
    let catalog_json = read_json(FileKind::Catalog, catalog_path)?;
    let catalog = ConfiguredCatalog::from_value(&catalog_json)
        .map_err(|e| Failure::config(in_file(FileKind::Catalog, catalog_path, e)))?;
    // The parsed catalog is all the read needs: the file's JSON (as large as the schemas of
    // every selected stream) is not held through the sync.
    drop(catalog_json);
    let state = match state_path {
        Some(path) => {
            let json = read_json(FileKind::State, path)?;
            let state = InputState::from_value(&json)
                .map_err(|e| Failure::config(in_file(FileKind::State, path, e)))?;
            // A selected incremental stream's state that cannot be read is the file's fault:
            // said before anything is read, naming the file. A stream no longer in the catalog,
            // or read in full (which reads no state), is left alone, as Airbyte leaves it.
            if let Some(e) = catalog
                .streams
                .iter()
                .filter(|s| s.sync_mode == SyncMode::Incremental)
                .find_map(|s| state.refused(&s.name))
            {
                return Err(Failure::config(in_file(FileKind::State, path, e)));
            }
            state
        }
        None => InputState::from_value(&json!([]))
            .map_err(|e| Failure::system(format!("empty state: {e}")))?,
    };
    let session = login(&loaded, out.clone()).await?;
    let watch = match report {
        Some(path) => Some(crate::report::Watch::start(&session, path).await?),
        None => None,
    };
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    // Once the sync is over there is no stop to make: a signal then ends the process, as it
    // would without these handlers (it would be swallowed by a cancel nobody reads).
    let read_over = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let over = read_over.clone();
    tokio::spawn(async move {
        let mut signals = Interrupts::install();
        if signals.next().await {
            if over.load(std::sync::atomic::Ordering::Relaxed) {
                std::process::exit(130);
            }
            on_interrupt.cancel();
            // The handler stays installed: without this a second Ctrl-C would be swallowed
            // while the stop runs (Bulk aborts, a blocked stdout). Every state already written
            // stays valid, as after a kill.
            if signals.next_apart().await {
                eprintln!("sfconnect: interrupted again; exiting without waiting for the stop");
                // A refresh token rotated and not yet written goes out if stdout takes it
                // within a second (stdout may be what the stop is stuck on).
                let (written, wait) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    emit_last_rotations();
                    let _ = written.send(());
                });
                let _ = wait.recv_timeout(std::time::Duration::from_secs(1));
                std::process::exit(130);
            }
        }
    });
    let mut sink = AirbyteSink::new(out.clone());
    let result = sf_sync::read_with(
        &session,
        &loaded.config,
        &catalog,
        &state,
        &mut sink,
        cancel,
        options,
    )
    .await;
    read_over.store(true, std::sync::atomic::Ordering::Relaxed);
    if let (Some(watch), Some(summary)) = (&watch, &sink.summary) {
        // The records and states went out: a report that cannot be written is said, and the
        // sync's own result stands.
        if let Err(failure) = watch.finish(&session, summary, sink.observations()).await {
            emit(&out, &protocol::log("WARN", &failure.message))?;
        }
    }
    let summary = match (result, sink.summary.take()) {
        (Ok(summary), _) => summary,
        // Streams failed for reasons of their own; every other one ran to its end.
        (Err(e), Some(summary)) if !e.ends_sync() && summary.failure().is_some() => summary,
        (Err(e), _) => return Err(Failure::from_sync("the sync failed", &e)),
    };
    // Each failed stream's TRACE error went out when it failed (the sink); the sync's own
    // comes last.
    let cancelled: Vec<&str> = summary
        .incomplete()
        .filter(|(_, reason)| matches!(reason, IncompleteReason::Cancelled))
        .map(|(stream, _)| stream)
        .collect();
    if !cancelled.is_empty() {
        // An interrupted sync is not a good one: a full refresh cut short must not replace the
        // destination's data. The state emitted so far is valid for the next sync.
        let interrupted = format!(
            "the sync was interrupted before {} finished; run it again (incremental streams resume \
             from the state emitted)",
            cancelled.join(", ")
        );
        // Streams that failed on their own before the interruption are said too: running it
        // again would not mend them, and a config error keeps its label.
        return Err(match streams_failed(&summary) {
            Some(failed) => Failure {
                message: format!("{interrupted}. {}", failed.message),
                failure_type: match failed.failure_type {
                    crate::protocol::FailureType::Config => crate::protocol::FailureType::Config,
                    _ => crate::protocol::FailureType::Transient,
                },
            },
            None => Failure::transient(interrupted),
        });
    }
    if let Some(failure) = cut_short_replacing(&summary, &catalog) {
        return Err(failure);
    }
    if let Some(line) = stopped_early(&summary) {
        emit(&out, &protocol::log("WARN", &line))?;
    }
    if let Some(failure) = streams_failed(&summary) {
        return Err(failure);
    }
    Ok(summary)
}

/// The closing WARN of a sync stopped early at the API limit: what was reached (once, from the
/// stream whose request met it) and the streams cut short by mode, at most 20 named per mode
/// (each stream said where it stopped already; an org of a thousand streams must not get a
/// line of a thousand details). `None` when no stream stopped at the limit.
fn stopped_early(summary: &SyncSummary) -> Option<String> {
    let cut = summary.cut_at_limit(false)?;
    let mut parts = Vec::new();
    if !cut.incremental.is_empty() {
        parts.push(format!(
            "incremental streams cut short, read on from their state (if any) by the next \
             sync: {}",
            sf_sync::name_list(&cut.incremental, 20)
        ));
    }
    if !cut.full_refresh.is_empty() {
        parts.push(format!(
            "full-refresh streams cut short, read whole again by the next sync: {}",
            sf_sync::name_list(&cut.full_refresh, 20)
        ));
    }
    Some(format!(
        "the sync stopped early and succeeded: the API limit was reached ({}); {}",
        cut.detail,
        parts.join("; ")
    ))
}

/// The TRACE error that ends a sync stopped at the daily API limit or the `api_budget` before
/// a stream whose destination replaces its data on success (overwrite, or a refresh removing
/// older generations) finished: Airbyte's platform marks every stream of a sync that ends with
/// success complete, whatever the source said of it, so a success would replace the stream's
/// data with the part read. The states emitted stay valid (incremental streams resume from
/// them); `None` when no such stream was cut short.
fn cut_short_replacing(summary: &SyncSummary, catalog: &ConfiguredCatalog) -> Option<Failure> {
    let cut: Vec<String> = summary
        .incomplete()
        .filter(|(_, reason)| matches!(reason, IncompleteReason::ApiLimit { .. }))
        .filter(|(stream, _)| catalog.get(stream).is_some_and(|s| s.replaces_on_success))
        // The names only: each stream's WARN said where it stopped, and its reason's "the next
        // sync resumes here" is not true of a full refresh, which starts over.
        .map(|(stream, _)| format!("`{stream}`"))
        .collect();
    if cut.is_empty() {
        return None;
    }
    let stopped = format!(
        "the sync stopped early, at the daily API limit or the api_budget, before {} finished; \
         their destination replaces what it holds on a successful sync, so this one does not end \
         as a success, and the data already there stays. Run the sync again when the org's \
         allowance has room (incremental streams resume from the state emitted)",
        cut.join(", ")
    );
    Some(match streams_failed(summary) {
        Some(failed) => Failure {
            message: format!("{stopped}. {}", failed.message),
            failure_type: match failed.failure_type {
                crate::protocol::FailureType::Config => crate::protocol::FailureType::Config,
                _ => crate::protocol::FailureType::Transient,
            },
        },
        None => Failure::transient(stopped),
    })
}

/// The TRACE error that ends a sync whose streams failed for reasons of their own, as Airbyte's
/// connectors end such a sync (after one TRACE error per failed stream, naming it): every failed
/// stream with its reason and fix, the other streams delivered; `None` when no stream failed.
pub fn streams_failed(summary: &SyncSummary) -> Option<Failure> {
    let label = summary.failure()?;
    let failed: Vec<String> = summary
        .failed()
        .map(|(stream, reason, _)| format!("`{stream}`: {reason}"))
        .collect();
    let completed = summary
        .streams
        .iter()
        .filter(|s| matches!(s.status, sf_sync::StreamStatus::Complete))
        .count();
    // Streams neither failed nor complete stopped early (the API limit, an interruption).
    let stopped = summary
        .streams
        .len()
        .saturating_sub(failed.len() + completed);
    let completed_text = match (completed, stopped) {
        (0, 0) => "No other stream was selected.".to_string(),
        (0, _) => String::new(),
        (1, _) => "The other stream completed and its records and state were emitted.".to_string(),
        (n, _) => {
            format!("The other {n} streams completed and their records and state were emitted.")
        }
    };
    let stopped_text = match stopped {
        0 => String::new(),
        1 => " 1 other stream stopped early; its state so far was emitted.".to_string(),
        n => format!(" {n} other streams stopped early; their state so far was emitted."),
    };
    Some(Failure::labelled(
        format!(
            "During the sync, the following streams did not sync successfully: {}. {}{}",
            failed.join("; "),
            completed_text,
            stopped_text
        )
        .trim_end()
        .to_string(),
        label,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_token_rotated_after_the_watcher_last_ran_is_written_once_at_the_end() {
        let captured = Captured::default();
        let out = Arc::new(Output::new(Box::new(captured.clone())));
        let emitter = Arc::new(Rotations {
            out,
            raw: json!({"client_id": "id", "refresh_token": "old"}),
            last: Mutex::new(None),
        });
        let (rotate, rotations) = tokio::sync::watch::channel(None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        // A watcher that never gets to run before the end.
        let watcher = runtime.spawn(std::future::pending::<()>());
        let watched = rotations.clone();
        WATCHING.lock().unwrap_or_else(|e| panic!("{e}")).push((
            emitter.clone(),
            rotations,
            watcher.abort_handle(),
        ));
        rotate.send_replace(Some(sf_auth::Secret::new("first")));
        emitter.emit_latest(&watched);
        rotate.send_replace(Some(sf_auth::Secret::new("second")));
        emit_last_rotations();
        // A writer woken for "first" writes the newest token or nothing: never "first" again
        // after "second". The same token again is not written twice.
        emitter.emit_latest(&watched);
        let text = String::from_utf8(captured.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        let tokens: Vec<String> = text
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap_or_default())
            .map(|m| m["control"]["connectorConfig"]["config"]["refresh_token"].to_string())
            .collect();
        assert_eq!(tokens, ["\"first\"", "\"second\""], "{text}");
    }

    #[test]
    fn the_closing_line_of_a_sync_stopped_early_reads_whole_for_either_mode() {
        let stream = |name: &str, sync_mode, detail: &str| sf_sync::StreamSummary {
            stream: name.to_string(),
            sync_mode,
            api: None,
            records: 0,
            windows: 0,
            status: sf_sync::StreamStatus::Incomplete(IncompleteReason::ApiLimit {
                detail: detail.to_string(),
            }),
            failure: None,
        };
        let met = format!("{}api-usage 9/9", sf_sync::LIMIT_MET_FIRST);
        let full_only = SyncSummary {
            streams: vec![
                stream("Account", SyncMode::FullRefresh, "api-usage 9/9"),
                stream("Lead", SyncMode::FullRefresh, &met),
            ],
            api_requests: None,
        };
        assert_eq!(
            stopped_early(&full_only).unwrap(),
            "the sync stopped early and succeeded: the API limit was reached (api-usage 9/9); \
             full-refresh streams cut short, read whole again by the next sync: Account, Lead"
        );
        let both = SyncSummary {
            streams: vec![
                stream("Lead", SyncMode::Incremental, &met),
                stream("Account", SyncMode::FullRefresh, "api-usage 9/9"),
            ],
            api_requests: None,
        };
        assert_eq!(
            stopped_early(&both).unwrap(),
            "the sync stopped early and succeeded: the API limit was reached (api-usage 9/9); \
             incremental streams cut short, read on from their state (if any) by the next sync: \
             Lead; full-refresh streams cut short, read whole again by the next sync: Account"
        );
        assert_eq!(stopped_early(&SyncSummary::default()), None);
    }
}
