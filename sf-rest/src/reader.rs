//! The REST reader: plans a read of one stream and streams its records.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_core::Stream;
use serde::{Deserialize, Serialize};
use sf_auth::{Request, Session};
use sf_discovery::{Columns, Record, StreamSpec};

use crate::engine::Engine;
use crate::error::Error;
use crate::plan::{split_fields, RequestBudget};
use crate::shape::Shape;
use crate::soql::{Order, ResumeKey, Soql, Window};
use crate::wire::CountPage;

/// Ids a chunk's re-fetch by `Id IN (...)` has room for: a record that changed between the
/// chunk queries is fetched again this many at a time (not one request each).
const REFETCH_IDS: usize = 20;

/// How the reader reads. Defaults: Salesforce's page size, the 16,384-byte request limit with
/// 2,048 bytes kept for headers, re-fetches of up to 200 records at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestConfig {
    /// Records per page, sent as `Sforce-Query-Options: batchSize=N` (200..=2000). `None` sends no
    /// header and lets Salesforce choose (2,000, fewer for wide rows). Salesforce treats it as a
    /// hint.
    pub batch_size: Option<u32>,
    /// The most bytes the URI and headers of one request may take (Salesforce refuses longer
    /// requests with 414/431). Field lists that would pass it are split into chunks.
    pub max_request_bytes: usize,
    /// Bytes of `max_request_bytes` kept for the request line and the headers (bearer token,
    /// query options, user agent, ...).
    pub header_allowance_bytes: usize,
    /// The most records held back (and re-fetched by `Id` in one request per chunk) when a split
    /// read finds a record missing from a chunk.
    pub refetch_batch: usize,
    /// A page whose body is larger than this (bytes) is not followed by its next page asked
    /// ahead, so two such pages and the rows of one are never held at once. Default 8 MiB:
    /// 2,000 rows of a typical object are 1 to 3 MB, of a 300-field object about 27 MB.
    pub prefetch_max_page_bytes: usize,
}

impl Default for RestConfig {
    fn default() -> RestConfig {
        RestConfig {
            batch_size: None,
            max_request_bytes: 16_384,
            header_allowance_bytes: 2_048,
            refetch_batch: 200,
            prefetch_max_page_bytes: 8 * 1024 * 1024,
        }
    }
}

impl RestConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(n) = self.batch_size {
            if !(200..=2000).contains(&n) {
                return Err(Error::Config {
                    field: "batch_size",
                    reason: format!("must be between 200 and 2000, not {n}"),
                });
            }
        }
        if self.max_request_bytes < 2_048 {
            return Err(Error::Config {
                field: "max_request_bytes",
                reason: format!("must be at least 2048, not {}", self.max_request_bytes),
            });
        }
        if self.header_allowance_bytes >= self.max_request_bytes / 2 {
            return Err(Error::Config {
                field: "header_allowance_bytes",
                reason: format!(
                    "must be less than half of max_request_bytes ({}), not {}",
                    self.max_request_bytes, self.header_allowance_bytes
                ),
            });
        }
        if !(1..=2000).contains(&self.refetch_batch) {
            return Err(Error::Config {
                field: "refetch_batch",
                reason: format!("must be between 1 and 2000, not {}", self.refetch_batch),
            });
        }
        Ok(())
    }
}

/// What to read from a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadRequest {
    /// The fields to select, in output order; empty for all the stream's fields. `Id` (when the
    /// object has one) and the window's cursor field are added when missing.
    pub fields: Vec<String>,
    /// Only rows whose cursor lies in this window.
    pub window: Option<Window>,
    /// Read through `queryAll`, which includes deleted (recycle-bin) and archived rows.
    pub include_deleted: bool,
    /// The order; `None` orders by the cursor (of the window, or of `after`) then `Id` when both
    /// are sortable, by `Id` otherwise (when the object has one). A read split into chunks is
    /// always ordered by `Id`, so its resume keys are `Id` keys.
    pub order: Option<Order>,
    /// Only rows strictly after this key (to resume after [`Error::InvalidQueryLocator`]).
    pub after: Option<ResumeKey>,
    /// Only rows whose field `.0` holds one of the values `.1` (`.0 IN ('v1','v2',...)`), e.g.
    /// a batch of parent ids for an object Salesforce serves only filtered by them. The list
    /// must not be empty, and it goes into every query of the read, so it must leave room for
    /// the fields within `max_request_bytes`: 200 eighteen-character ids take about 5 KB.
    pub where_in: Option<(String, Vec<String>)>,
    /// Only rows whose field `.0` equals `.1`, each pair a top-level `AND` conjunct of every
    /// query of the read (e.g. `PublishStatus = 'Online'`, which Salesforce may require of a
    /// Knowledge article version's query).
    pub where_eq: Vec<(String, String)>,
    /// At most this many rows (per chunk, when split).
    pub limit: Option<u64>,
}

/// One query of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    /// The fields it selects (when split, `Id` first).
    pub fields: Vec<String>,
    /// Its SOQL.
    pub soql: String,
    /// The estimated bytes of its request's URI and headers.
    pub request_bytes: usize,
}

/// How a read will run: one query, or several over the same rows merged on `Id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPlan {
    /// `query`, or `queryAll` when deleted rows are wanted.
    pub endpoint: &'static str,
    /// The columns of the records, in order.
    pub columns: Columns,
    /// The order records come out in.
    pub order: Order,
    /// The queries: one, or one per chunk of the field list.
    pub chunks: Vec<ChunkPlan>,
}

impl QueryPlan {
    /// True when the field list was split.
    pub fn is_split(&self) -> bool {
        self.chunks.len() > 1
    }
}

/// Counters of one read, readable while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// API requests made (queries, next pages and re-fetches).
    pub requests: u64,
    /// Pages received.
    pub pages: u64,
    /// Records yielded.
    pub records: u64,
    /// `totalSize` of the (first chunk's) query, once its first page arrived.
    pub total_size: Option<u64>,
    /// How many queries the field list took.
    pub chunks: usize,
    /// Records missing from some chunk and completed by a re-fetch by `Id`.
    pub refetched: u64,
    /// Records missing from some chunk that the re-fetch did not find either (deleted between
    /// the queries): reported, not yielded.
    pub vanished: u64,
    /// The first 100 of those records' Ids.
    pub vanished_ids: Vec<String>,
    /// Queries whose pages carried a different number of rows than their `totalSize` said
    /// (a query resumed after a lost cursor counts from its new first page).
    pub miscounted: Vec<Miscount>,
    /// Pages that carried fewer rows than the row offsets of their `nextRecordsUrl` say: told
    /// as the page arrives, before its records, where a miscount shows only at the query's end.
    pub short_pages: u64,
    /// Pages that arrived but could not be read (not the JSON of a query page: a proxy's
    /// garbled answer, a body cut short that still ended cleanly) and were asked for once more.
    pub pages_read_again: u64,
    /// Why the first of them could not be read.
    pub read_again_because: Option<String>,
}

/// A query whose pages did not carry the rows its `totalSize` counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Miscount {
    /// `totalSize`, as the query's first page said.
    pub counted: u64,
    /// The rows its pages carried.
    pub received: u64,
}

/// Reads streams through `/query` and `/queryAll`.
#[derive(Debug, Clone)]
pub struct RestReader {
    pub(crate) session: Session,
    config: RestConfig,
}

/// The records of one read, yielded as pages arrive. Nothing is sent before the first poll;
/// then each page's next is asked for as soon as its `nextRecordsUrl` is known, so its round trip
/// overlaps the consumer taking the current page, and no further: at most two pages per chunk
/// query are held. The request asked ahead is sent while the stream is polled; dropping the
/// stream drops it.
pub struct RecordStream {
    inner: Pin<Box<dyn Stream<Item = Result<Record, Error>> + Send>>,
    columns: Columns,
    stats: Arc<Mutex<ReadStats>>,
}

impl std::fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("columns", &self.columns.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl RecordStream {
    /// The columns every record has, in order.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The read's counters so far.
    pub fn stats(&self) -> ReadStats {
        sf_auth::lock(&self.stats).clone()
    }

    /// [`ReadStats::short_pages`] so far, without copying the rest.
    pub fn short_pages(&self) -> u64 {
        sf_auth::lock(&self.stats).short_pages
    }
}

impl Stream for RecordStream {
    type Item = Result<Record, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.as_mut().poll_next(cx)
    }
}

impl RestReader {
    /// A reader over `session`; fails when the config does not validate.
    pub fn new(session: Session, config: RestConfig) -> Result<RestReader, Error> {
        config.validate()?;
        Ok(RestReader { session, config })
    }

    /// The config in force.
    pub fn config(&self) -> &RestConfig {
        &self.config
    }

    /// Plans a read without sending anything: the columns, the order, and the queries (split into
    /// chunks that each carry `Id` when one query's request would pass `max_request_bytes`).
    pub fn plan(&self, stream: &StreamSpec, request: &ReadRequest) -> Result<QueryPlan, Error> {
        let object = stream.name.as_str();
        let build_error = |reason: String| Error::QueryBuild {
            object: object.to_string(),
            reason,
        };
        let mut columns: Vec<String> = Vec::new();
        let wanted: Vec<&str> = if request.fields.is_empty() {
            stream.fields.iter().map(|f| f.name.as_str()).collect()
        } else {
            request.fields.iter().map(String::as_str).collect()
        };
        let mut seen = HashSet::new();
        for name in wanted {
            if seen.insert(name.to_ascii_lowercase()) {
                columns.push(name.to_string());
            }
        }
        if columns.is_empty() {
            return Err(build_error("no fields selected".to_string()));
        }
        let id_field = stream.field("Id").map(|f| f.name.clone());
        if let Some(id) = &id_field {
            if seen.insert(id.to_ascii_lowercase()) {
                columns.insert(0, id.clone());
            }
        }
        if let Some(window) = &request.window {
            if let Some(field) = stream.field(&window.field) {
                if seen.insert(field.name.to_ascii_lowercase()) {
                    columns.push(field.name.clone());
                }
            }
        }
        let sortable = |name: &str| stream.field(name).is_none_or(|f| f.sortable);
        // A resume key in (cursor, Id) order keeps that order, so a further resume key is too.
        let cursor = request
            .after
            .as_ref()
            .and_then(|k| k.cursor.as_ref())
            .map(|c| c.field.as_str())
            .or(request.window.as_ref().map(|w| w.field.as_str()));
        let order = match &request.order {
            Some(order) => order.clone(),
            None => match (&id_field, cursor) {
                (Some(id), Some(field)) if sortable(id) && sortable(field) => {
                    Order::CursorThenId(field.to_string())
                }
                (Some(id), _) if sortable(id) => Order::Id,
                _ => Order::Unordered,
            },
        };
        let endpoint = if request.include_deleted {
            "queryAll"
        } else {
            "query"
        };
        if let Some((field, values)) = &request.where_in {
            if values.is_empty() {
                return Err(build_error(format!(
                    "the filter `{field} IN (...)` has no values"
                )));
            }
        }
        let budget = self.budget(endpoint);
        let query = |fields: Vec<String>, order: Order| {
            let mut soql = Soql::select(object, fields)
                .maybe_window(request.window.clone())
                .order(order);
            if let Some(key) = &request.after {
                soql = soql.after(key.clone());
            }
            if let Some((field, values)) = &request.where_in {
                soql = soql.where_in(field.clone(), values.iter().cloned());
            }
            for (field, value) in &request.where_eq {
                soql = soql.where_eq(field.clone(), value.clone());
            }
            if let Some(n) = request.limit {
                soql = soql.limit(n);
            }
            soql
        };

        let whole = query(columns.clone(), order.clone()).build()?;
        if budget.fits(&whole) {
            return Ok(QueryPlan {
                endpoint,
                columns: Arc::from(columns.clone()),
                order,
                chunks: vec![ChunkPlan {
                    fields: columns,
                    request_bytes: budget.request_bytes(&whole),
                    soql: whole,
                }],
            });
        }

        let Some(id_index) = columns.iter().position(|c| {
            id_field
                .as_deref()
                .is_some_and(|id| c.eq_ignore_ascii_case(id))
        }) else {
            return Err(build_error(format!(
                "the field list needs {} bytes of request, more than {}, and the object has no Id \
                 to join chunks of it on",
                budget.request_bytes(&whole),
                self.config.max_request_bytes
            )));
        };
        let id_name = columns[id_index].clone();
        // What a chunk holding only Id costs, in the chunk query and in a one-Id re-fetch.
        let alone = query(vec![id_name.clone()], Order::Id).build()?;
        if let Some((field, values)) = &request.where_in {
            if !budget.fits(&alone) {
                return Err(build_error(format!(
                    "the filter `{field} IN (...)` of {} values needs {} bytes of request even \
                     with Id alone, more than {}: pass fewer values",
                    values.len(),
                    budget.request_bytes(&alone),
                    self.config.max_request_bytes
                )));
            }
        }
        // Each chunk leaves room for a re-fetch of at least REFETCH_IDS records by Id (the rows
        // that changed between the chunk queries), unless a field is too long for that; then
        // for one.
        let base_for = |ids: usize| -> Result<usize, Error> {
            let refetch = Soql::select(object, [id_name.clone()])
                .where_in("Id", (0..ids).map(|_| "a".repeat(18)))
                .build()?;
            Ok(budget
                .request_bytes(&alone)
                .max(budget.request_bytes(&refetch)))
        };
        let max = self.config.max_request_bytes;
        let groups = match split_fields(&columns, id_index, base_for(REFETCH_IDS)?, max) {
            Ok(groups) => groups,
            Err(_) => split_fields(&columns, id_index, base_for(1)?, max).map_err(|field| {
                build_error(format!(
                    "field `{field}` does not fit in a request of {max} bytes even alone with Id"
                ))
            })?,
        };
        let mut chunks = Vec::with_capacity(groups.len());
        for group in groups {
            let fields: Vec<String> = group.iter().map(|&i| columns[i].clone()).collect();
            let soql = query(fields.clone(), Order::Id).build()?;
            let request_bytes = budget.request_bytes(&soql);
            if request_bytes > self.config.max_request_bytes {
                return Err(build_error(format!(
                    "a chunk of the field list needs {request_bytes} bytes of request"
                )));
            }
            chunks.push(ChunkPlan {
                fields,
                soql,
                request_bytes,
            });
        }
        Ok(QueryPlan {
            endpoint,
            columns: Arc::from(columns),
            order: Order::Id,
            chunks,
        })
    }

    /// Starts reading: the returned stream sends the first request when first polled.
    pub fn read(&self, stream: &StreamSpec, request: ReadRequest) -> Result<RecordStream, Error> {
        let plan = self.plan(stream, &request)?;
        if plan.is_split() {
            tracing::info!(
                stream = %stream.name,
                chunks = plan.chunks.len(),
                columns = plan.columns.len(),
                "QueryFieldsSplit"
            );
        }
        let shapes: Vec<Shape> = plan
            .chunks
            .iter()
            .map(|chunk| Shape::new(&chunk.fields, stream))
            .collect();
        let stats = Arc::new(Mutex::new(ReadStats {
            chunks: plan.chunks.len(),
            ..ReadStats::default()
        }));
        let columns = plan.columns.clone();
        let mut engine = Engine::new(
            self.session.clone(),
            stream.name.clone(),
            plan,
            shapes,
            self.batch_header(),
            self.budget(if request.include_deleted {
                "queryAll"
            } else {
                "query"
            }),
            self.config.refetch_batch,
            stats.clone(),
        );
        engine.prefetch_max_page_bytes = self.config.prefetch_max_page_bytes;
        // Boxed: `unfold` moves its state for every record; a pointer moves, not the engine.
        let inner = futures_util::stream::unfold(Box::new(engine), |mut engine| async move {
            let item = engine.next().await?;
            Some((item, engine))
        });
        Ok(RecordStream {
            inner: Box::pin(inner),
            columns,
            stats,
        })
    }

    /// `SELECT COUNT() FROM object [WHERE window]` through `query` (or `queryAll`): how many rows
    /// a window holds, in one API call.
    pub async fn count(
        &self,
        object: &str,
        window: Option<&Window>,
        include_deleted: bool,
    ) -> Result<u64, Error> {
        self.count_where(object, window, include_deleted, &[]).await
    }

    /// [`RestReader::count`] of the rows whose fields equal the values of `where_eq` (each a
    /// top-level `AND field = 'value'`, as [`ReadRequest::where_eq`]), in one API call.
    pub async fn count_where(
        &self,
        object: &str,
        window: Option<&Window>,
        include_deleted: bool,
        where_eq: &[(String, String)],
    ) -> Result<u64, Error> {
        let mut soql = Soql::count(object).maybe_window(window.cloned());
        for (field, value) in where_eq {
            soql = soql.where_eq(field.clone(), value.clone());
        }
        let soql = soql.build()?;
        let endpoint = if include_deleted { "queryAll" } else { "query" };
        let response = self
            .session
            .fetch(Request::get(endpoint).query("q", soql))
            .await
            .map_err(|e| Error::from_session(object, e, || None))?;
        let page: CountPage =
            serde_json::from_slice(&response.body).map_err(|e| Error::QueryDecode {
                stream: object.to_string(),
                message: format!("count answer: {e}"),
            })?;
        Ok(page.total_size)
    }

    fn budget(&self, endpoint: &str) -> RequestBudget {
        RequestBudget::new(
            &self.session.instance_url(),
            &self.session.data_path(),
            endpoint,
            self.config.header_allowance_bytes,
            self.config.max_request_bytes,
        )
    }

    pub(crate) fn batch_header(&self) -> Option<String> {
        self.config.batch_size.map(|n| format!("batchSize={n}"))
    }
}
