//! Planning an object stream's read: the API (by the denylist, field types and a `SELECT
//! COUNT()`), the windows, and the log lines that say what was chosen and why.

use std::sync::atomic::Ordering;

use super::{Fallback, Msg, ObjectRun, Runner, SpanQueue, Stop};
use crate::planner::{Api, ApiConstraint, PlannerConfig, SpanCount, Volume};
use crate::sink::{LogLevel, StreamPlan};
use crate::state::full_refresh_state;
use crate::time::format_instant;
use crate::window::{uncovered_spans, Window};

impl Runner {
    /// Reads an object stream: plans it (the API and the windows, logged), then reads its
    /// spans, switching to REST when the Bulk API cannot serve it.
    pub(super) async fn object(&mut self, run: &mut ObjectRun) -> Result<(), Stop> {
        self.may_continue()?;
        let name = self.name.clone();
        if let Some(filter) = run.setup.parent {
            self.substream(run, filter).await?;
            return self.send(Msg::State(self.idx, full_refresh_state())).await;
        }
        if run.constraint != ApiConstraint::RestOnly
            && self.shared.bulk_exhausted.load(Ordering::Relaxed)
        {
            // The stream that found the limit logged it once, as a warning.
            self.log(
                LogLevel::Info,
                format!(
                    "{name}: read through REST: the org's daily Bulk query job allowance is \
                     used up"
                ),
            )
            .await;
            run.constraint = ApiConstraint::RestOnly;
        }
        // getDeleted first, for every span the state does not cover: the windows of the Bulk
        // jobs continued next among them, so their tombstones come with them. Continued first,
        // a job's window would be covered with none, and the next sync would ask getDeleted
        // only from that window's end.
        let now = self.shared.params.now;
        // Past a margin: clocks a few seconds apart (Airbyte's slices end on its host's clock)
        // are no reason to advise a reset.
        let margin = chrono::TimeDelta::minutes(5);
        if let Some(ahead) = run.state.as_ref().and_then(|s| s.ends_after(now + margin)) {
            self.log(
                LogLevel::Warn,
                format!(
                    "{name}: the state says the stream was read up to {}, after the org's clock \
                     ({}): edited, or written by a tool whose clock ran ahead. It is trusted, as \
                     Airbyte's connector trusts it: nothing changed before then is read until \
                     then. If it is wrong, run a full refresh of {name} (reset the stream) or \
                     give a state that ends where the last sync really read",
                    format_instant(ahead),
                    format_instant(now)
                ),
            )
            .await;
        }
        if let Some(state) = &run.state {
            let since_last = uncovered_spans(state, &self.shared.params);
            self.fetch_deletes(run, &since_last).await?;
        }
        self.continue_jobs(run).await?;
        run.formula_refresh = self.formula_refresh(run).await;
        // A first read is a whole read: every state it writes says when it began, so a first
        // read cut short (the daily limit, a kill) is continued by the next sync, not taken
        // for a stream never read whole and started over.
        if let (None, Some(state)) = (&run.formula_refresh, run.state.as_mut()) {
            // No refresh this sync (`formula_refresh` unset, or no formula field selected any
            // more): a refresh an earlier sync cut short is not continued later from a point
            // this sync's windows would move.
            state.set_refresh_progress(None);
        }
        if let (Some(refresh), Some(state)) = (&run.formula_refresh, run.state.as_mut()) {
            if refresh.is_first_read() {
                *state = std::mem::take(state).with_formula_refreshed_at(Some(refresh.at()));
            } else {
                // A refresh: every state it writes says when it began and how far it read
                // (`span_done` moves that on), so a refresh cut short is continued.
                let reached = refresh
                    .continues_from()
                    .unwrap_or(self.shared.params.start_date);
                state.set_refresh_progress(Some(crate::state::RefreshProgress {
                    began: refresh.at(),
                    reached,
                }));
            }
        }
        let planner = self.shared.options.planner.clone();
        let (mut api, queue, skip) = match &run.state {
            None => {
                let rows = match run.constraint {
                    ApiConstraint::Any => self.count(run, None).await?,
                    _ => None,
                };
                let api = planner.choose_api(rows, run.constraint);
                self.log(
                    LogLevel::Info,
                    format!(
                        "{name}: full refresh through {}{}{}",
                        api.as_str().to_uppercase(),
                        why(run.constraint, rows, &planner),
                        run.compound_note(api)
                    ),
                )
                .await;
                self.plan(api, rows, reason(run.constraint, rows, &planner))
                    .await?;
                (api, SpanQueue::new(std::iter::once(None)), false)
            }
            Some(state) => {
                let params = self.shared.params;
                let since_last = uncovered_spans(state, &params);
                // A formula refresh reads everything again, as a first read does (from where it
                // was, when continued).
                let spans = match run.formula_refresh.as_ref().map(|r| r.continues_from()) {
                    Some(None) => uncovered_spans(&crate::state::StreamState::new(), &params),
                    Some(Some(reached)) => uncovered_spans(
                        &crate::state::StreamState::from_slices([crate::state::StateSlice::new(
                            params.start_date,
                            reached,
                        )]),
                        &params,
                    ),
                    None => since_last.clone(),
                };
                if spans.is_empty() {
                    let why = if params.start_date >= params.upper() {
                        format!(
                            "start_date ({}) is not before {} ({})",
                            format_instant(params.start_date),
                            if params.end_date.is_some_and(|e| e <= params.now) {
                                "end_date"
                            } else {
                                "the org's clock"
                            },
                            format_instant(params.upper())
                        )
                    } else {
                        format!(
                            "the state already reaches {}",
                            format_instant(params.upper())
                        )
                    };
                    self.log(
                        LogLevel::Info,
                        format!("{name}: incremental: nothing to read, {why}"),
                    )
                    .await;
                    if run.formula_refresh.is_some() {
                        // A refresh continued with nothing left to read has ended.
                        return self.finish_refresh(run).await;
                    }
                    // A state even when none was read yet (a slice at `start_date`): Airbyte's
                    // platform expects one of every stream of a successful sync, as its CDK
                    // ensures.
                    let json = state.to_json();
                    self.send(Msg::State(self.idx, json)).await?;
                    return Ok(());
                }
                let mut volume = Volume::Unknown;
                let mut counted = None;
                if planner.needs_count(&spans, &volume) {
                    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
                        return Ok(());
                    };
                    let hull = Window::new(first.start, last.end);
                    if let Some(rows) = self.count(run, Some(hull)).await? {
                        counted = Some(rows);
                        volume = if spans.len() == 1 {
                            Volume::Counted(vec![SpanCount { span: hull, rows }])
                        } else {
                            let days = hull.duration().as_secs_f64() / 86_400.0;
                            Volume::Rate {
                                rows_per_day: rows as f64 / days.max(1.0 / 86_400.0),
                            }
                        };
                    }
                }
                let mut plan = planner.plan(&spans, &volume, params.step, run.constraint);
                if let (Api::Bulk, Some(len)) = (plan.api, run.progress.resumed_window) {
                    for span in &mut plan.spans {
                        span.at_least(len);
                    }
                }
                let windows: u128 = plan
                    .spans
                    .iter()
                    .map(|s| {
                        let window = s.window.as_millis().max(1);
                        s.span.duration().as_millis().div_ceil(window)
                    })
                    .sum();
                self.log(
                    LogLevel::Info,
                    format!(
                        "{name}: incremental on {} from {} to {}: {} window{} through {}{}{}",
                        run.cursor.as_deref().unwrap_or("?"),
                        format_instant(spans[0].start),
                        format_instant(params.upper()),
                        windows,
                        if windows == 1 { "" } else { "s" },
                        plan.api.as_str().to_uppercase(),
                        why(run.constraint, plan.estimated_rows, &planner),
                        run.compound_note(plan.api)
                    ),
                )
                .await;
                let why_api = reason(run.constraint, plan.estimated_rows, &planner);
                self.plan(plan.api, counted, why_api).await?;
                // A single span counted empty needs no query at all.
                let skip = spans.len() == 1 && counted == Some(0);
                let planned: Vec<_> = plan.spans.clone();
                let queue = SpanQueue::new(planned.into_iter().flat_map(|s| s.windows()).map(Some));
                (plan.api, queue, skip)
            }
        };
        let mut queue = queue;
        if skip {
            while let Some(span) = queue.next() {
                self.span_done(run, &span, None).await?;
            }
            self.finish_tombstones(run).await?;
            return self.finish_refresh(run).await;
        }
        loop {
            self.api = Some(api);
            match api {
                Api::Rest => {
                    self.rest_spans(run, &mut queue).await?;
                    break;
                }
                Api::Bulk => match self.bulk_spans(run, &mut queue).await? {
                    None => break,
                    Some(Fallback {
                        reason,
                        job_limit: true,
                    }) => {
                        // Logged once per sync, by the first stream to find it.
                        let first = !self.shared.bulk_exhausted.swap(true, Ordering::Relaxed);
                        let (level, message) = if first {
                            (
                                LogLevel::Warn,
                                format!(
                                    "the org's daily Bulk API query job limit \
                                     (DailyBulkV2QueryJobs) is reached ({reason}): {name} and \
                                     every stream after it are read through REST, which counts \
                                     against the daily API request limit instead"
                                ),
                            )
                        } else {
                            (
                                LogLevel::Info,
                                format!(
                                    "{name}: switching to REST: the org's daily Bulk query job \
                                     allowance is used up"
                                ),
                            )
                        };
                        self.log(level, message).await;
                        run.constraint = ApiConstraint::RestOnly;
                        api = Api::Rest;
                        self.plan(api, None, format!("switched from Bulk: {reason}"))
                            .await?;
                    }
                    Some(Fallback { reason, .. }) => {
                        // Feeds are expected to be refused (AccountFeed and AssetFeed are on
                        // Airbyte's Bulk denylist; that every feed is, only believed): tried,
                        // since a feed Bulk serves is faster, and the fallback is no warning.
                        let expected = sf_discovery::ObjectKind::of(&run.setup.spec.name)
                            == sf_discovery::ObjectKind::Feed;
                        self.log(
                            if expected {
                                LogLevel::Info
                            } else {
                                LogLevel::Warn
                            },
                            format!(
                                "{name}: the Bulk API cannot serve this stream ({reason}); \
                                 switching to REST for the rest of it{}",
                                if expected {
                                    " (expected of a feed object)"
                                } else {
                                    ""
                                }
                            ),
                        )
                        .await;
                        run.constraint = ApiConstraint::RestOnly;
                        api = Api::Rest;
                        self.plan(api, None, format!("switched from Bulk: {reason}"))
                            .await?;
                    }
                },
            }
        }
        if run.state.is_none() {
            self.send(Msg::State(self.idx, full_refresh_state()))
                .await?;
        }
        self.finish_tombstones(run).await?;
        self.finish_refresh(run).await
    }

    /// Tells the sink how the stream is read (its progress line and the ESTIMATE message).
    pub(super) async fn plan(
        &self,
        api: Api,
        estimated_rows: Option<u64>,
        reason: String,
    ) -> Result<(), Stop> {
        let plan = StreamPlan {
            api,
            estimated_rows,
            reason,
        };
        self.send(Msg::Plan(self.idx, plan)).await
    }

    /// `SELECT COUNT()` over a window (or the whole object); `None` when the count failed for a
    /// reason that only costs the plan its precision.
    async fn count(&self, run: &ObjectRun, window: Option<Window>) -> Result<Option<u64>, Stop> {
        let sf_window = run.rest_window(&window);
        let counted = tokio::select! {
            biased;
            _ = self.shared.cancel.cancelled() => return Err(Stop::Cancelled),
            counted = sf_auth::RequestTag::new(self.name.clone(), "count").scope(
                self.shared.rest.count(&run.setup.spec.name, sf_window.as_ref(), run.include_deleted())
            ) => counted,
        };
        match counted {
            Ok(rows) => Ok(Some(rows)),
            Err(e) if e.kind() == sf_rest::ErrorKind::DailyLimitExceeded => {
                Err(Stop::Limit(self.shared.hit_limit(&e)))
            }
            // A Knowledge article version refused unfiltered is read by PublishStatus
            // (`rest.rs`, which warns): counted the same way, one count per status.
            Err(e)
                if e.kind() == sf_rest::ErrorKind::FilterRequired
                    && sf_discovery::ObjectKind::of(&run.setup.spec.name)
                        == sf_discovery::ObjectKind::KnowledgeArticleVersion =>
            {
                let counted = self.count_by_status(run, sf_window.as_ref()).await?;
                self.log(
                    LogLevel::Info,
                    format!(
                        "{}: Salesforce counts these versions only by PublishStatus; {}",
                        self.name,
                        match counted {
                            Some(rows) => format!("counted by status: {rows} rows"),
                            None => "planning without a count".to_string(),
                        }
                    ),
                )
                .await;
                Ok(counted)
            }
            Err(e) => {
                self.log(
                    LogLevel::Warn,
                    format!(
                        "{}: counting rows failed ({e}); planning without a count",
                        self.name
                    ),
                )
                .await;
                Ok(None)
            }
        }
    }
}

impl Runner {
    /// The rows of a Knowledge article version's `window`, counted once per `PublishStatus`
    /// (the statuses `rest.rs` reads it by). A status Salesforce refuses to count alone
    /// (`Archived`, where only per-article queries serve it) is left out, as the read leaves it
    /// out; `None` when another count fails.
    async fn count_by_status(
        &self,
        run: &ObjectRun,
        window: Option<&sf_rest::Window>,
    ) -> Result<Option<u64>, Stop> {
        let mut total = 0u64;
        for status in super::rest::PUBLISH_STATUSES {
            let where_eq = [("PublishStatus".to_string(), status.to_string())];
            let counted = tokio::select! {
                biased;
                _ = self.shared.cancel.cancelled() => return Err(Stop::Cancelled),
                counted = sf_auth::RequestTag::new(self.name.clone(), "count").scope(
                    self.shared.rest.count_where(
                        &run.setup.spec.name, window, run.include_deleted(), &where_eq)
                ) => counted,
            };
            match counted {
                Ok(rows) => total += rows,
                Err(e) if e.kind() == sf_rest::ErrorKind::DailyLimitExceeded => {
                    return Err(Stop::Limit(self.shared.hit_limit(&e)))
                }
                Err(e)
                    if status == super::rest::ARCHIVED
                        && e.kind() == sf_rest::ErrorKind::FilterRequired => {}
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(total))
    }
}

/// Why an API was chosen, for the run report.
fn reason(constraint: ApiConstraint, rows: Option<u64>, planner: &PlannerConfig) -> String {
    match why(constraint, rows, planner).trim() {
        "" => "REST only: the Bulk API cannot serve this object or its selected fields, or the \
               day's Bulk jobs are used up"
            .to_string(),
        text => text
            .trim_start_matches('(')
            .trim_end_matches(')')
            .to_string(),
    }
}

/// Why an API was chosen, for the log.
fn why(constraint: ApiConstraint, rows: Option<u64>, planner: &PlannerConfig) -> String {
    match (constraint, rows) {
        (ApiConstraint::RestOnly, _) => String::new(),
        (ApiConstraint::BulkOnly, _) => " (force_use_bulk_api)".to_string(),
        (ApiConstraint::Any, Some(rows)) if rows <= planner.rest_max_rows => {
            format!(" ({rows} rows, at most {} for REST)", planner.rest_max_rows)
        }
        (ApiConstraint::Any, Some(rows)) => {
            format!(
                " ({rows} rows, more than {} for REST)",
                planner.rest_max_rows
            )
        }
        // A span under `count_min_span` in all (the tail since the last sync), or a count
        // Salesforce refused.
        (ApiConstraint::Any, None) => " (rows not counted)".to_string(),
    }
}
