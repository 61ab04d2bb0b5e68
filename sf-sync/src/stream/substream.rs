//! Objects Salesforce serves only filtered by their parent's ids (`ContentDocumentLink`, which a
//! query must filter on `ContentDocumentId` or `LinkedEntityId`): read by walking the parent's
//! ids in batches of [`SLICE_BATCH_SIZE`], one `... WHERE <key> IN (...)` query per batch, as
//! Airbyte's connector reads its one substream.
//!
//! Both the parent's ids and the children are read through REST (`queryAll` when the child has
//! `IsDeleted`, so deleted documents' links and deleted links come out too). Memory holds one
//! page of parent ids, one batch of them and one page of children.

use std::collections::HashSet;

use futures_util::StreamExt;
use serde_json::{Map, Value};
use sf_auth::Request;
use sf_discovery::{
    normalize_datetime, Columns, FieldSpec, FieldType, Record, StreamSpec, ValueKind,
};
use sf_rest::{Order, ReadRequest, ResumeKey, Soql};

use super::{ObjectRun, Runner, Stop};
use crate::classify::{advice, auth_failure, rest_failure};
use crate::error::{Error, Failure};
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

/// One page of a `/query` answer (the Salesforce payload; only what is read here).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryPage {
    /// False while more pages follow.
    #[serde(default)]
    done: Option<bool>,
    /// The path of the next page.
    #[serde(default)]
    next_records_url: Option<String>,
    /// The rows: an `attributes` object and one key per selected field.
    records: Vec<Map<String, Value>>,
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

/// Turns REST rows of the child into records with the columns in order: `attributes` dropped,
/// datetimes normalised, a `null` for every column a row lacks (as `sf-rest` shapes rows).
struct Shape {
    columns: Columns,
    lower: Vec<String>,
    datetime: Vec<bool>,
}

impl Shape {
    fn new(columns: &[String], spec: &StreamSpec) -> Shape {
        Shape {
            columns: Columns::from(columns.to_vec()),
            lower: columns.iter().map(|c| c.to_ascii_lowercase()).collect(),
            datetime: columns
                .iter()
                .map(|c| {
                    spec.field(c)
                        .is_some_and(|f| f.value_kind() == ValueKind::DateTime)
                })
                .collect(),
        }
    }

    fn record(&self, mut row: Map<String, Value>) -> Record {
        row.remove("attributes");
        let mut values = vec![Value::Null; self.lower.len()];
        for (key, mut value) in row {
            let lower = key.to_ascii_lowercase();
            let Some(i) = self.lower.iter().position(|c| *c == lower) else {
                continue;
            };
            if let Value::Object(map) = &mut value {
                map.remove("attributes");
            }
            if self.datetime[i] {
                if let Some(normal) = value.as_str().and_then(normalize_datetime) {
                    value = Value::String(normal);
                }
            }
            values[i] = value;
        }
        Record {
            columns: self.columns.clone(),
            values,
        }
    }
}

/// A `nextRecordsUrl` the session may follow: an absolute path on the instance (never `//host`
/// or `/\host`, which would send the bearer token elsewhere).
fn next_path(url: &str) -> Option<&str> {
    let ok = url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\");
    ok.then_some(url)
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
        let parent = StreamSpec::from_fields(
            filter.parent,
            false,
            vec![FieldSpec::new("Id", FieldType::Id)],
        );
        let shape = Shape::new(&run.setup.columns, &run.setup.spec);
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
                .map_err(|e| Stop::Failed(self.parent_error(filter, &e)))?;
            loop {
                let item = tokio::select! {
                    biased;
                    _ = self.shared.cancel.cancelled() => return Err(Stop::Cancelled),
                    item = parents.next() => item,
                };
                match item {
                    None => break 'parents,
                    Some(Ok(record)) => {
                        // Every row of an ordered Id query has its Id; one without is skipped.
                        let Some(id) = record.id() else { continue };
                        last = Some(id.to_string());
                        batch.push(id.to_string());
                        if batch.len() == SLICE_BATCH_SIZE {
                            self.child_batch(run, filter, &shape, &batch).await?;
                            batch.clear();
                        }
                    }
                    Some(Err(e)) => match e.kind() {
                        sf_rest::ErrorKind::InvalidQueryLocator
                            if resumes < self.shared.options.resume_attempts =>
                        {
                            resumes += 1;
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
                        sf_rest::ErrorKind::DailyLimitExceeded => {
                            return Err(Stop::Limit(self.shared.hit_limit(&e.to_string())))
                        }
                        _ => return Err(Stop::Failed(self.parent_error(filter, &e))),
                    },
                }
            }
        }
        if !batch.is_empty() {
            self.child_batch(run, filter, &shape, &batch).await?;
        }
        self.windows += 1;
        Ok(())
    }

    fn parent_error(&self, filter: ParentFilter, e: &sf_rest::Error) -> Error {
        let failure = rest_failure(e.kind());
        Error::StreamRead {
            stream: self.name.to_string(),
            api: Api::Rest,
            window: None,
            error_code: e.error_code().map(str::to_string),
            message: format!(
                "reading the ids of its parent {}: {e}; {}",
                filter.parent,
                advice(failure)
            ),
            failure,
        }
    }

    /// Reads the children of one batch of parent ids; a query that times out is read again in
    /// halves, one whose locator expires is run again without emitting a record twice.
    async fn child_batch(
        &mut self,
        run: &ObjectRun,
        filter: ParentFilter,
        shape: &Shape,
        ids: &[String],
    ) -> Result<(), Stop> {
        // The Ids emitted from this batch, so that a query run again skips them (the query is
        // unordered, as Airbyte sends it, so nothing else marks where it stopped).
        let mut emitted: HashSet<String> = HashSet::new();
        let mut pending: Vec<&[String]> = vec![ids];
        let mut restarts = 0u32;
        while let Some(part) = pending.pop() {
            self.may_continue()?;
            match self
                .child_query(run, filter, shape, part, &mut emitted)
                .await
            {
                Ok(()) => {}
                Err(ChildError::Restart(message))
                    if restarts < self.shared.options.resume_attempts =>
                {
                    restarts += 1;
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
                    return Err(Stop::Failed(self.child_error(
                        filter,
                        part,
                        None,
                        format!("{message}; {}", advice(Failure::Transient)),
                        Failure::Transient,
                    )))
                }
                Err(ChildError::Stop(stop)) => return Err(stop),
            }
        }
        Ok(())
    }

    fn child_error(
        &self,
        filter: ParentFilter,
        ids: &[String],
        error_code: Option<String>,
        message: String,
        failure: Failure,
    ) -> Error {
        let range = match (ids.first(), ids.last()) {
            (Some(first), Some(last)) => format!(" {first} to {last}"),
            _ => String::new(),
        };
        Error::StreamRead {
            stream: self.name.to_string(),
            api: Api::Rest,
            window: None,
            error_code,
            message: format!(
                "querying the children of {} {} ids{range}: {message}",
                ids.len(),
                filter.parent
            ),
            failure,
        }
    }

    /// One query over the children of `ids`, followed page by page.
    async fn child_query(
        &mut self,
        run: &ObjectRun,
        filter: ParentFilter,
        shape: &Shape,
        ids: &[String],
        emitted: &mut HashSet<String>,
    ) -> Result<(), ChildError> {
        let object = run.setup.spec.name.as_str();
        let soql = Soql::select(object, run.setup.columns.iter())
            .where_in(filter.key, ids.iter())
            .build()
            .map_err(|e| {
                Stop::Failed(self.child_error(
                    filter,
                    ids,
                    None,
                    format!("{e}; {}", advice(Failure::System)),
                    Failure::System,
                ))
            })?;
        let endpoint = if run.include_deleted() {
            "queryAll"
        } else {
            "query"
        };
        let batch_header = self
            .shared
            .options
            .rest_batch_size
            .map(|n| format!("batchSize={n}"));
        let with_options = |request: Request| match &batch_header {
            Some(value) => request.header("Sforce-Query-Options", value.clone()),
            None => request,
        };
        let mut request = with_options(Request::get(endpoint).query("q", soql));
        loop {
            let answer = tokio::select! {
                biased;
                _ = self.shared.cancel.cancelled() => return Err(Stop::Cancelled.into()),
                answer = self.shared.session.fetch(request) => answer,
            };
            let response = answer.map_err(|e| self.child_session_error(filter, ids, e))?;
            let page: QueryPage = serde_json::from_slice(&response.body).map_err(|e| {
                Stop::Failed(self.child_error(
                    filter,
                    ids,
                    None,
                    format!(
                        "the answer is not a query page ({e}); {}",
                        advice(Failure::System)
                    ),
                    Failure::System,
                ))
            })?;
            for row in page.records {
                let record = shape.record(row);
                if let Some(id) = record.id() {
                    if !emitted.insert(id.to_string()) {
                        continue;
                    }
                }
                self.record(record).await?;
            }
            let next = match (&page.next_records_url, page.done) {
                (_, Some(true)) | (None, _) => return Ok(()),
                (Some(url), _) => url,
            };
            let Some(path) = next_path(next) else {
                return Err(Stop::Failed(self.child_error(
                    filter,
                    ids,
                    None,
                    format!(
                        "the next page is not a path on the instance (`{next}`); {}",
                        advice(Failure::System)
                    ),
                    Failure::System,
                ))
                .into());
            };
            request = with_options(Request::get(path));
        }
    }

    /// What a failed child request means.
    fn child_session_error(
        &self,
        filter: ParentFilter,
        ids: &[String],
        e: sf_auth::Error,
    ) -> ChildError {
        use sf_auth::ErrorKind as K;
        let message = e
            .api_error()
            .map(|a| a.message.trim().to_string())
            .unwrap_or_else(|| e.to_string());
        match e.kind() {
            K::DailyLimitExceeded => ChildError::Stop(Stop::Limit(self.shared.hit_limit(&message))),
            K::QueryTimeout => ChildError::Timeout(format!("the query timed out ({message})")),
            K::InvalidQueryLocator => {
                ChildError::Restart(format!("the query lost its cursor ({message})"))
            }
            K::InvalidField => ChildError::Stop(Stop::Failed(Error::StreamFieldsMissing {
                stream: self.name.to_string(),
                fields: vec![super::column_in_message(&message)
                    .or_else(|| e.api_error().and_then(|a| a.fields.first().cloned()))
                    .unwrap_or_else(|| "?".to_string())],
            })),
            kind => {
                let failure = auth_failure(kind);
                let error_code = e.api_error().and_then(|a| a.error_code.clone());
                ChildError::Stop(Stop::Failed(self.child_error(
                    filter,
                    ids,
                    error_code,
                    format!("{message}; {}", advice(failure)),
                    failure,
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

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
    fn rows_are_shaped_like_the_other_paths() {
        let spec = StreamSpec::from_fields(
            "ContentDocumentLink",
            false,
            vec![
                FieldSpec::new("Id", FieldType::Id),
                FieldSpec::new("ContentDocumentId", FieldType::Reference),
                FieldSpec::new("IsDeleted", FieldType::Boolean),
                FieldSpec::new("SystemModstamp", FieldType::DateTime),
                FieldSpec::new("ShareType", FieldType::Picklist),
            ],
        );
        let columns: Vec<String> = [
            "Id",
            "ContentDocumentId",
            "IsDeleted",
            "SystemModstamp",
            "ShareType",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        let shape = Shape::new(&columns, &spec);
        let row = json!({
            "attributes": {"type": "ContentDocumentLink", "url": "/services/data/v62.0/sobjects/ContentDocumentLink/06A000000000001AAA"},
            "Id": "06A000000000001AAA",
            "contentdocumentid": "069000000000001AAA",
            "IsDeleted": false,
            "SystemModstamp": "2024-05-01T10:20:30.000+0000",
            "Unselected": 3
        });
        let record = shape.record(row.as_object().unwrap().clone());
        assert_eq!(
            Value::Object(record.to_json()),
            json!({
                "Id": "06A000000000001AAA",
                "ContentDocumentId": "069000000000001AAA",
                "IsDeleted": false,
                "SystemModstamp": "2024-05-01T10:20:30.000Z",
                "ShareType": null
            })
        );
    }

    #[test]
    fn next_pages_stay_on_the_instance() {
        assert_eq!(
            next_path("/services/data/v62.0/query/01gD0000002HU6KIAW-2000"),
            Some("/services/data/v62.0/query/01gD0000002HU6KIAW-2000")
        );
        assert_eq!(next_path("//evil.example.com/services/data"), None);
        assert_eq!(next_path("/\\evil.example.com"), None);
        assert_eq!(next_path("https://evil.example.com/x"), None);
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
