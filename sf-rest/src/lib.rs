//! sf-rest: REST query extraction: SOQL through `/query` and `/queryAll`, paged by `nextRecordsUrl`.
//!
//! **Owns:** the SOQL builder ([`Soql`], with [`Window`], [`Order`] and [`ResumeKey`]), which the
//! Bulk path uses too; [`RestReader`], which plans a read of a stream ([`QueryPlan`]) over a
//! window, after a resume key, or filtered by a list of values ([`ReadRequest::where_in`], for
//! objects Salesforce serves only filtered by their parent's ids), splits a field list whose
//! request would pass 16,384 bytes into chunks that each carry `Id` and merges them on `Id` as
//! they stream, and yields a [`RecordStream`] of records shaped like the Bulk path's (no
//! `attributes`, datetimes `YYYY-MM-DDTHH:MM:SS.sssZ`, numbers as numbers, explicit nulls,
//! compound fields as objects), refusing a page chain that stops short or comes round again and
//! counting, in [`ReadStats::miscounted`], a query whose pages carried other than its
//! `totalSize`;
//! `SELECT COUNT()` ([`RestReader::count`]); a query the caller writes, its JSON rows read
//! whole when small ([`RestReader::query_rows`], e.g. a user's permission sets) or streamed a
//! page at a time ([`RestReader::query_stream`]); the ids deleted in a window,
//! hard deletes and purged rows included ([`RestReader::deleted`], getDeleted); and the errors
//! the sync engine acts on ([`Error::kind`]).
//!
//! **Must not know:** Bulk API jobs (`sf-bulk`), windows chosen and state kept (`sf-sync`), or
//! the Airbyte protocol. It talks to Salesforce only through an [`sf_auth::Session`], which
//! already retries transient failures and renews the token; this crate adds no retry loop but
//! one: a page of [`RestReader::read`] that arrives unreadable is asked for once more
//! ([`ReadStats::pages_read_again`]).
//! A stream is described by sf-discovery's [`StreamSpec`] (from `describe`, or built with
//! [`StreamSpec::from_fields`]) and read as its [`Record`]s: both are re-exported here.
//!
//! ```no_run
//! use chrono::{TimeZone, Utc};
//! use futures_util::StreamExt;
//! use sf_rest::{ReadRequest, RestConfig, RestReader, Window};
//!
//! # async fn run(session: sf_auth::Session, account: sf_discovery::StreamSpec) -> Result<(), sf_rest::Error> {
//! let reader = RestReader::new(session, RestConfig::default())?;
//! let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
//! let request = ReadRequest {
//!     window: Window::for_stream(&account, Some(start), None),
//!     include_deleted: true,
//!     ..ReadRequest::default()
//! };
//! println!("{} rows", reader.count("Account", request.window.as_ref(), true).await?);
//! let mut records = reader.read(&account, request)?;
//! while let Some(record) = records.next().await {
//!     let record = record?;
//!     println!("{}", serde_json::Value::Object(record.to_json()));
//! }
//! println!("{:?}", records.stats());
//! # Ok(())
//! # }
//! ```

mod deleted;
mod engine;
mod error;
mod plan;
mod reader;
mod rows;
mod shape;
mod soql;
mod wire;

pub use deleted::{
    DeletedQuery, DeletedRecord, DeletedRecords, GET_DELETED_BATCH, GET_DELETED_BATCH_MAX_BYTES,
    GET_DELETED_MAX_WINDOW, GET_DELETED_RETENTION,
};
pub use error::{Error, ErrorKind};
pub use reader::{
    ChunkPlan, Miscount, QueryPlan, ReadRequest, ReadStats, RecordStream, RestConfig, RestReader,
};
/// sf-discovery's types this crate's API takes and yields.
pub use sf_discovery::{Columns, FieldSpec, FieldType, Record, StreamSpec};
pub use soql::{CursorKind, CursorPoint, CursorValue, Order, ResumeKey, Soql, Window};
