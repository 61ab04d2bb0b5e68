//! The entry points: `check`, `discover` and `read`; `read` describes the catalog's objects, sets
//! each stream up, runs the stream tasks and feeds their output to the sink.

use std::sync::Arc;

use sf_auth::Session;
use sf_discovery::{Catalog, DescribeStream, DiscoveryOptions, StreamCriteria};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::catalog::ConfiguredCatalog;
use crate::config::SyncConfig;
use crate::error::{Error, Failure};
use crate::options::ReadOptions;
use crate::sink::{IncompleteReason, Sink, StreamStatus, StreamSummary, SyncSummary};
use crate::state::InputState;
use crate::stream::deletes_ahead::{self, DeletesAhead};
use crate::stream::recycle::Returns;
use crate::stream::{run_stream, Msg, Outcome, Shared};
use crate::window::WindowParams;

mod setup;
mod stopped;

pub(crate) use setup::describe_record;
use setup::{describe_catalog, job_for, take_describe_records};

/// Proves that the credentials work and the org's API answers: one describeGlobal call.
///
/// Logs nothing itself; the caller built the session from [`SyncConfig::session_config`].
pub async fn check(session: &Session) -> Result<(), Error> {
    match sf_discovery::describe_global(session).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let failure = Failure::of(e.kind());
            Err(Error::CheckRequest {
                error_code: e.error_code().map(str::to_string),
                message: e.to_string(),
                at_limit: e.kind() == sf_auth::ErrorKind::DailyLimitExceeded,
                failure,
            })
        }
    }
}

/// Discovers the org's streams, keeping the objects `streams_criteria` selects: describeGlobal
/// and one `composite` call per 25 objects.
pub async fn discover(session: &Session, config: &SyncConfig) -> Result<Catalog, Error> {
    // An object the org lists but will not describe for this user is left out with a warning in
    // the catalog rather than failing discovery.
    let options = DiscoveryOptions {
        streams_criteria: StreamCriteria(config.streams_criteria.clone()),
        skip_inaccessible: true,
        // The catalog needs the streams, not the describes.
        keep_describes: false,
        ..DiscoveryOptions::default()
    };
    sf_discovery::discover(session, &options)
        .await
        .map_err(|e| {
            let failure = Failure::of(e.kind());
            Error::DiscoverRequest {
                error_code: e.error_code().map(str::to_string),
                message: e.to_string(),
                at_limit: e.kind() == sf_auth::ErrorKind::DailyLimitExceeded,
                failure,
            }
        })
}

/// Reads the configured catalog into `sink`, resuming from `state`, with the default
/// [`ReadOptions`].
///
/// Returns `Ok` when every stream finished, or when the sync stopped early at the daily API limit
/// or the `api_budget` (or was cancelled): the summary names the streams cut short and why, and
/// the state emitted lets the next sync resume.
///
/// One bad stream never sinks the others: a stream that fails for a reason of its own (an object
/// gone or no longer readable, `INSUFFICIENT_ACCESS`, an implementation restriction, a query
/// that times out even in the smallest window) is reported `Incomplete` with its reason and fix,
/// and every other stream runs to its end with its records and state. `read` then returns `Err`
/// with the first failed stream's error, after the summary, whose [`SyncSummary::failed`] lists
/// every failed stream with its reason and label. It returns `Err` also when the sink refused a
/// message, or Salesforce refused to renew the session mid-sync: those end the whole sync
/// ([`Error::ends_sync`]) and are the error returned.
pub async fn read(
    session: &Session,
    config: &SyncConfig,
    catalog: &ConfiguredCatalog,
    state: &InputState,
    sink: &mut dyn Sink,
    cancel: CancellationToken,
) -> Result<SyncSummary, Error> {
    read_with(
        session,
        config,
        catalog,
        state,
        sink,
        cancel,
        &ReadOptions::default(),
    )
    .await
}

/// [`read`] with explicit engine options.
pub async fn read_with(
    session: &Session,
    config: &SyncConfig,
    catalog: &ConfiguredCatalog,
    state: &InputState,
    sink: &mut dyn Sink,
    cancel: CancellationToken,
    options: &ReadOptions,
) -> Result<SyncSummary, Error> {
    options.validate()?;
    // The session counts every API request it sends (retries included), whatever the org's
    // usage figure says about other clients: the change over this read is what it cost.
    let requests_before = session.request_count();
    let objects: Vec<String> = catalog
        .streams
        .iter()
        .filter(|s| s.name != DescribeStream::NAME)
        .map(|s| s.name.clone())
        .collect();
    let keep_describes = catalog.get(DescribeStream::NAME).is_some();
    let mut described = describe_catalog(session, &objects, keep_describes).await?;
    let params = WindowParams::new(config, session.org_now());
    let org_id = session.org_id();

    let mut describe_records = keep_describes.then(|| take_describe_records(&mut described));
    let mut jobs = Vec::with_capacity(catalog.streams.len());
    for configured in &catalog.streams {
        let (job, notes) = job_for(
            configured,
            &described,
            &mut describe_records,
            state,
            config,
            org_id.as_deref(),
        );
        for (level, message) in notes {
            sink.log(level, &message).await?;
        }
        jobs.push((configured.name.clone(), job));
    }
    if let Some(note) = setup::default_start_note(&jobs, config) {
        sink.log(crate::sink::LogLevel::Warn, &note).await?;
    }
    if let Some(note) = setup::slice_step_note(config, &options.planner) {
        sink.log(crate::sink::LogLevel::Info, &note).await?;
    }
    // The describes are in the jobs now; only whether the limit cut them short is still needed.
    let limit = described.limit.clone();
    drop(described);

    let child = cancel.child_token();
    let (batch_max, slots) = channel_shape(options.channel_capacity);
    let (tx, mut rx) = mpsc::channel::<Msg>(slots);
    // Per stream, the states the sink took: a stream's Bulk jobs count as named once it has.
    let delivered: Arc<Vec<tokio::sync::watch::Sender<u64>>> = Arc::new(
        (0..jobs.len())
            .map(|_| tokio::sync::watch::Sender::new(0))
            .collect(),
    );
    let returns = Arc::new(Returns::new(jobs.len()));
    let shared = Shared::new(
        session.clone(),
        options.clone(),
        params,
        tx,
        batch_max,
        child.clone(),
        limit.clone(),
    )?
    .with_freshness(config.formula_refresh, config.hard_deletes)
    .with_delivery(delivered.clone())
    .with_returns(returns.clone());
    // getDeleted for every stream that will ask, 25 streams a composite call, not one call each.
    let wanted = deletes_ahead::wanted(
        &jobs.iter().map(|(_, job)| job).collect::<Vec<_>>(),
        &params,
        config.hard_deletes && limit.is_none(),
    );
    let ahead = DeletesAhead::new(shared.rest(), wanted);
    let shared = Arc::new(shared.with_deletes_ahead(ahead));
    let names: Vec<Arc<str>> = jobs.iter().map(|(n, _)| Arc::from(n.as_str())).collect();
    let permits = Arc::new(Semaphore::new(config.num_workers.max(1)));
    let mut handles = Vec::with_capacity(jobs.len());
    // Streams start in catalog order: each task asks for its permit once the one before it has
    // its own (tasks are polled in no particular order).
    let mut turn: Option<oneshot::Receiver<()>> = None;
    for (idx, (_, job)) in jobs.into_iter().enumerate() {
        let shared = shared.clone();
        let permits = permits.clone();
        let name = names[idx].clone();
        let sync_mode = job.sync_mode();
        let (next, next_turn) = oneshot::channel();
        let my_turn = turn.replace(next_turn);
        handles.push((
            sync_mode,
            tokio::spawn(async move {
                if let Some(my_turn) = my_turn {
                    // An error means the task before ended without a permit: go on.
                    let _ = my_turn.await;
                }
                // A closed semaphore never happens here; without a permit the stream still runs.
                let _permit = permits.acquire_owned().await.ok();
                let _ = next.send(());
                // Every request the stream sends is counted under its name (the run report).
                let tag = sf_auth::RequestTag::new(name.clone(), "");
                tag.scope(run_stream(shared, idx, name, job)).await
            }),
        ));
    }
    drop(shared);

    let mut running = vec![false; names.len()];
    let mut sink_error = None;
    while let Some(msg) = rx.recv().await {
        let state_of = match &msg {
            Msg::State(idx, _) => Some(*idx),
            _ => None,
        };
        if let Err(e) = deliver(sink, &names, &mut running, &returns, msg).await {
            sink_error = Some(e);
            break;
        }
        if let Some(taken) = state_of.and_then(|idx| delivered.get(idx)) {
            taken.send_modify(|n| *n += 1);
        }
    }
    if sink_error.is_some() {
        child.cancel();
        drop(rx);
    }

    let mut streams = Vec::with_capacity(handles.len());
    let mut first_error: Option<Error> = None;
    for (idx, (sync_mode, handle)) in handles.into_iter().enumerate() {
        let outcome = match handle.await {
            Ok(outcome) => outcome,
            Err(join) => {
                let error = Error::StreamRead {
                    stream: names[idx].to_string(),
                    api: crate::planner::Api::Bulk,
                    window: None,
                    error_code: None,
                    message: format!("the stream's task ended abnormally: {join}"),
                    failure: Failure::System,
                };
                let outcome = Outcome {
                    summary: StreamSummary {
                        stream: names[idx].to_string(),
                        sync_mode,
                        api: None,
                        records: 0,
                        windows: 0,
                        status: StreamStatus::Incomplete(IncompleteReason::Failed {
                            message: error.to_string(),
                            failure: error.failure(),
                        }),
                        failure: Some(error.failure()),
                    },
                    error: Some(error),
                };
                // The stream never said how it ended: said here, so its status and error go
                // out as any failed stream's do.
                if sink_error.is_none() {
                    let status = outcome.summary.status.clone();
                    if let Err(e) = sink.status(&names[idx], status).await {
                        sink_error = Some(e);
                    }
                }
                outcome
            }
        };
        // The first failure, unless a later one ends the whole sync (it is the one to tell).
        if let Some(error) = outcome.error {
            let replace = match &first_error {
                None => true,
                Some(first) => error.ends_sync() && !first.ends_sync(),
            };
            if replace {
                first_error = Some(error);
            }
        }
        streams.push(outcome.summary);
    }
    let api_requests = Some(session.request_count().saturating_sub(requests_before));
    let summary = SyncSummary {
        streams,
        api_requests,
    };
    if sink_error.is_none() {
        if let Some(note) = stopped::limit_note(&summary) {
            if let Err(e) = sink.log(crate::sink::LogLevel::Warn, &note).await {
                sink_error = Some(e);
            }
        }
    }
    if let Some(e) = sink_error {
        // The sink is told how the streams ended even so (a run report does not go through
        // the output that failed); the sync's error is the sink's.
        let _ = sink.summary(&summary).await;
        return Err(e);
    }
    sink.summary(&summary).await?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Records per batch and messages in the channel for a bound of `capacity` records queued: a
/// batch is a quarter of the bound (at most [`BATCH_MAX`]), so a few batches are in flight while
/// the sink writes one.
fn channel_shape(capacity: usize) -> (usize, usize) {
    let capacity = capacity.max(1);
    let batch = (capacity / 4).clamp(1, BATCH_MAX);
    (batch, (capacity / batch).max(1))
}

/// The most records sent in one message to the sink's consumer.
const BATCH_MAX: usize = 1024;

/// Passes one message to the sink, with a `Running` status before a stream's first output.
async fn deliver(
    sink: &mut dyn Sink,
    names: &[Arc<str>],
    running: &mut [bool],
    returns: &Returns,
    msg: Msg,
) -> Result<(), Error> {
    let mut first_output = |idx: usize| -> Option<&str> {
        let name = names.get(idx)?;
        let flag = running.get_mut(idx)?;
        if *flag {
            None
        } else {
            *flag = true;
            Some(name)
        }
    };
    match msg {
        Msg::Records(idx, mut records) => {
            if let Some(name) = first_output(idx) {
                sink.status(name, StreamStatus::Running).await?;
            }
            sink.records(name_of(names, idx), &mut records).await?;
            // What the sink left goes back to the stream, to be freed where it was made.
            returns.give_back(idx, records);
            Ok(())
        }
        Msg::State(idx, state) => {
            if let Some(name) = first_output(idx) {
                sink.status(name, StreamStatus::Running).await?;
            }
            sink.state(name_of(names, idx), state).await
        }
        Msg::Log(level, message) => sink.log(level, &message).await,
        Msg::Status(idx, status) => sink.status(name_of(names, idx), status).await,
        Msg::Plan(idx, plan) => sink.plan(name_of(names, idx), plan).await,
    }
}

fn name_of(names: &[Arc<str>], idx: usize) -> &str {
    names.get(idx).map_or("", |n| n.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_bounds_records_not_messages() {
        // The default: 4 batches of 256 records.
        assert_eq!(
            channel_shape(ReadOptions::default().channel_capacity),
            (256, 4)
        );
        assert_eq!(channel_shape(4096), (1024, 4));
        // Small bounds as tests use them: one record per message, as many slots as records.
        assert_eq!(channel_shape(2), (1, 2));
        assert_eq!(channel_shape(8), (2, 4));
        assert_eq!(channel_shape(0), (1, 1));
        // Large bounds keep batches at 1,024 and add slots.
        assert_eq!(channel_shape(100_000), (1024, 97));
        for capacity in 1..5000 {
            let (batch, slots) = channel_shape(capacity);
            assert!(batch * slots <= capacity.max(1), "{capacity}");
            assert!((1..=BATCH_MAX).contains(&batch));
        }
    }
}
