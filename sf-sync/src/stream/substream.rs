//! Objects Salesforce serves only filtered by their parent's ids (`ContentDocumentLink`, which a
//! query must filter on `ContentDocumentId` or `LinkedEntityId`): read by walking the parent's
//! ids in batches of [`SLICE_BATCH_SIZE`], one `... WHERE <key> IN (...)` query per batch, as
//! Airbyte's connector reads its one substream.
//!
//! Both the parent's ids and the children are read through `sf-rest`'s [`sf_rest::RestReader`]
//! (`queryAll` when the child has `IsDeleted`, so deleted documents' links and deleted links
//! come out too; the children with [`ReadRequest::where_in`]), which pages, shapes rows and
//! refuses a page chain that stops short. Memory holds one page of parent ids, one batch of them,
//! one page of children and the Ids of the batch's children emitted so far.

use std::collections::HashSet;

use sf_discovery::{FieldSpec, FieldType, StreamSpec};
use sf_rest::{Order, ReadRequest, ResumeKey};

use super::rest::{RestFailure, RestRead};
use super::{ObjectRun, Runner, Stop};
use crate::error::Failure;
use crate::planner::Api;
use crate::sink::LogLevel;

/// Parent ids per child query (Airbyte's `SLICE_BATCH_SIZE`): 200 eighteen-character ids keep
/// the query's URL near 6 KB, well inside Salesforce's 16 KB request limit.
pub const SLICE_BATCH_SIZE: usize = 200;

/// How a child object is filtered by its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParentFilter {
    /// The parent object whose ids are walked.
    pub(crate) parent: &'static str,
    /// The child's field holding the parent's id.
    pub(crate) key: &'static str,
}

/// Airbyte's `PARENT_SALESFORCE_OBJECTS`: the child, its parent and the child's key field.
const PARENT_FILTERED: [(&str, ParentFilter); 1] = [(
    "ContentDocumentLink",
    ParentFilter {
        parent: "ContentDocument",
        key: "ContentDocumentId",
    },
)];

/// The parent filter of `object`, when Salesforce serves it only filtered by parent ids.
pub(crate) fn parent_filter(object: &str) -> Option<ParentFilter> {
    PARENT_FILTERED
        .iter()
        .find(|(child, _)| child.eq_ignore_ascii_case(object))
        .map(|(_, filter)| *filter)
}

/// How one child query ended, short of success.
enum ChildError {
    /// The query timed out: its ids are read again in halves.
    Timeout(String),
    /// The query's locator expired: it is run again, skipping the records already emitted.
    Restart(String),
    /// Stop the stream.
    Stop(Stop),
}

impl From<Stop> for ChildError {
    fn from(stop: Stop) -> ChildError {
        ChildError::Stop(stop)
    }
}

impl Runner {
    /// Reads a parent-filtered stream in full: the parent's ids in order, batch by batch.
    pub(super) async fn substream(
        &mut self,
        run: &ObjectRun,
        filter: ParentFilter,
    ) -> Result<(), Stop> {
        self.api = Some(Api::Rest);
        let include_deleted = run.include_deleted();
        let endpoint = if include_deleted { "queryAll" } else { "query" };
        self.log(
            LogLevel::Info,
            format!(
                "{}: full refresh through REST, one query per {SLICE_BATCH_SIZE} ids of its \
                 parent {} (Salesforce serves it only filtered by {}), both through {endpoint}",
                self.name, filter.parent, filter.key
            ),
        )
        .await;
        self.plan(
            Api::Rest,
            None,
            format!(
                "served only filtered by its parent {}: one query per {SLICE_BATCH_SIZE} of its ids",
                filter.parent
            ),
        )
        .await?;
        let parent = StreamSpec::from_fields(
            filter.parent,
            false,
            vec![FieldSpec::new("Id", FieldType::Id)],
        );
        let mut batch: Vec<String> = Vec::with_capacity(SLICE_BATCH_SIZE);
        let mut last: Option<String> = None;
        let mut resumes = 0u32;
        'parents: loop {
            self.may_continue()?;
            let request = ReadRequest {
                fields: vec!["Id".to_string()],
                include_deleted,
                order: Some(Order::Id),
                after: last.clone().map(ResumeKey::id),
                ..ReadRequest::default()
            };
            let mut parents = self
                .shared
                .rest
                .read(&parent, request)
                .map_err(|e| Stop::Failed(self.rest_error(RestRead::Parents(filter), &e)))?;
            loop {
                let item = self.next_from(&mut parents).await?;
                match item {
                    None => {
                        let what = format!("the ids of {}", filter.parent);
                        self.rest_notes(&what, &parents.stats(), false).await;
                        break 'parents;
                    }
                    Some(Ok(record)) => {
                        // Every row of an ordered Id query has its Id; one without is skipped.
                        let Some(id) = record.id() else { continue };
                        // An id read since the last lost cursor: the resumes count from zero.
                        resumes = 0;
                        last = Some(id.to_string());
                        batch.push(id.to_string());
                        if batch.len() == SLICE_BATCH_SIZE {
                            self.child_batch(run, filter, &batch).await?;
                            batch.clear();
                        }
                    }
                    Some(Err(e)) => match self.rest_failed(RestRead::Parents(filter), &e) {
                        RestFailure::LostCursor if self.may_retry(&mut resumes) => {
                            self.log(
                                LogLevel::Warn,
                                format!(
                                    "{}: reading the ids of {} lost its cursor; resuming {}",
                                    self.name,
                                    filter.parent,
                                    match &last {
                                        Some(id) => format!("after Id {id}"),
                                        None => "from the start".to_string(),
                                    }
                                ),
                            )
                            .await;
                            continue 'parents;
                        }
                        RestFailure::Stop(stop) => return Err(stop),
                        RestFailure::LostCursor | RestFailure::TimedOut => {
                            return Err(Stop::Failed(
                                self.rest_error(RestRead::Parents(filter), &e),
                            ))
                        }
                    },
                }
            }
        }
        if !batch.is_empty() {
            self.child_batch(run, filter, &batch).await?;
        }
        self.windows += 1;
        Ok(())
    }

    /// Reads the children of one batch of parent ids; a query that times out is read again in
    /// halves, one whose locator expires is run again without emitting a record twice.
    async fn child_batch(
        &mut self,
        run: &ObjectRun,
        filter: ParentFilter,
        ids: &[String],
    ) -> Result<(), Stop> {
        // The Ids emitted from this batch, so that a query run again skips them (the query is
        // unordered, as Airbyte sends it, so nothing else marks where it stopped).
        let mut emitted: HashSet<String> = HashSet::new();
        let mut pending: Vec<&[String]> = vec![ids];
        let mut restarts = 0u32;
        while let Some(part) = pending.pop() {
            self.may_continue()?;
            match self.child_query(run, filter, part, &mut emitted).await {
                Ok(()) => {}
                Err(ChildError::Restart(message)) if self.may_retry(&mut restarts) => {
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{}: {message}; querying the batch of {} {} ids again",
                            self.name,
                            part.len(),
                            filter.parent
                        ),
                    )
                    .await;
                    pending.push(part);
                }
                Err(ChildError::Timeout(message)) if part.len() > 1 => {
                    let (a, b) = part.split_at(part.len() / 2);
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{}: {message}; reading the batch of {} {} ids as {} and {}",
                            self.name,
                            part.len(),
                            filter.parent,
                            a.len(),
                            b.len()
                        ),
                    )
                    .await;
                    pending.push(b);
                    pending.push(a);
                }
                Err(ChildError::Restart(message) | ChildError::Timeout(message)) => {
                    return Err(Stop::Failed(self.rest_read_error(
                        RestRead::Children(filter, part),
                        None,
                        message,
                        Failure::Transient,
                    )))
                }
                Err(ChildError::Stop(stop)) => return Err(stop),
            }
        }
        Ok(())
    }

    /// One query over the children of `ids`, read to its end through `sf-rest`. Unordered, as
    /// Airbyte sends it: a rerun after a lost cursor skips the Ids in `emitted`.
    async fn child_query(
        &mut self,
        run: &ObjectRun,
        filter: ParentFilter,
        ids: &[String],
        emitted: &mut HashSet<String>,
    ) -> Result<(), ChildError> {
        let request = ReadRequest {
            fields: run.setup.columns.clone(),
            include_deleted: run.include_deleted(),
            order: Some(Order::Unordered),
            where_in: Some((filter.key.to_string(), ids.to_vec())),
            ..ReadRequest::default()
        };
        let mut children = self
            .shared
            .rest
            .read(&run.setup.spec, request)
            .map_err(|e| self.child_rest_error(filter, ids, e))?;
        loop {
            let item = self.next_from(&mut children).await?;
            match item {
                None => {
                    let what = format!("the children of {} {} ids", ids.len(), filter.parent);
                    self.rest_notes(&what, &children.stats(), false).await;
                    return Ok(());
                }
                Some(Ok(record)) => {
                    if let Some(id) = record.id() {
                        if !emitted.insert(id.to_string()) {
                            continue;
                        }
                    }
                    self.record(record).await?;
                }
                Some(Err(e)) => return Err(self.child_rest_error(filter, ids, e)),
            }
        }
    }

    /// What a failed child query means.
    fn child_rest_error(
        &self,
        filter: ParentFilter,
        ids: &[String],
        e: sf_rest::Error,
    ) -> ChildError {
        match self.rest_failed(RestRead::Children(filter, ids), &e) {
            RestFailure::TimedOut => ChildError::Timeout(format!(
                "the query timed out (QUERY_TIMEOUT{})",
                match &e {
                    sf_rest::Error::QueryTimeout { message, .. } if !message.is_empty() => {
                        format!(": {message}")
                    }
                    _ => String::new(),
                }
            )),
            RestFailure::LostCursor => {
                ChildError::Restart("the query lost its cursor (INVALID_QUERY_LOCATOR)".to_string())
            }
            RestFailure::Stop(stop) => ChildError::Stop(stop),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sf_rest::Soql;

    #[test]
    fn only_content_document_link_is_parent_filtered() {
        assert_eq!(
            parent_filter("contentdocumentlink"),
            Some(ParentFilter {
                parent: "ContentDocument",
                key: "ContentDocumentId"
            })
        );
        assert_eq!(parent_filter("ContentDocument"), None);
        assert_eq!(parent_filter("Account"), None);
    }

    #[test]
    fn a_batch_of_ids_fits_one_request() {
        let ids: Vec<String> = (0..SLICE_BATCH_SIZE)
            .map(|i| format!("069{i:015}"))
            .collect();
        let soql = Soql::select(
            "ContentDocumentLink",
            [
                "Id",
                "LinkedEntityId",
                "ContentDocumentId",
                "IsDeleted",
                "SystemModstamp",
                "ShareType",
                "Visibility",
            ],
        )
        .where_in("ContentDocumentId", ids.iter())
        .build()
        .unwrap();
        assert!(soql.starts_with(
            "SELECT Id,LinkedEntityId,ContentDocumentId,IsDeleted,SystemModstamp,ShareType,Visibility \
             FROM ContentDocumentLink WHERE ContentDocumentId IN ('069000000000000000','069000000000000001',"
        ));
        assert!(soql.ends_with("'069000000000000199')"), "{soql}");
        // Form-encoded (quotes, commas and parentheses escaped), it stays far inside the 16 KB
        // request limit.
        let encoded: usize = soql
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || " -_.*".contains(c) {
                    1
                } else {
                    3
                }
            })
            .sum();
        assert!(encoded < 8_000, "{encoded}");
    }
}
