//! sf-bulk: Bulk API 2.0 query jobs, from `POST jobs/query` to typed records, as a stream.
//!
//! **Owns:** the job lifecycle (`UploadComplete → InProgress → JobComplete | Failed | Aborted`),
//! polling on a schedule ([`PollSchedule`]: at once, then so that a job is seen done within a
//! fifth of its age, a bound never under a second nor over 30 s), the job timeout and abort, locator paging of the results,
//! streaming CSV decoding typed by the selected fields ([`PageDecoder`]), count verification
//! (`Sforce-NumberOfRecords` per page, `numberRecordsProcessed` per job), checkpoints to resume a
//! download ([`PageProgress`], [`ResumePoint`]), job deletion, what each failure means as
//! sf-auth's [`ErrorKind`] (asked of the session error each keeps as its source: not supported,
//! daily job limit, failed job, permission), and
//! the objects Bulk API 2.0 does not serve ([`is_bulk_unsupported`]).
//!
//! **Must not know:** the REST query API (`sf-rest`), how SOQL is built, windows and state
//! (`sf-sync`), or the Airbyte protocol. It takes a SOQL string and the [`FieldSpec`]s of its
//! columns, and talks to Salesforce only through an [`sf_auth::Session`], which owns
//! authentication and the retries of transient failures. Fields and records are sf-discovery's
//! types ([`FieldSpec`], [`FieldType`], [`Record`]), re-exported here.
//!
//! [`BulkClient::query`] runs one query end to end and yields [`BulkItem`]s: `JobCreated`,
//! `JobCompleted`, then each page's `Record`s followed by its `PageDone` checkpoint. A caller
//! that wants the CSV itself creates a job ([`BulkClient::create_job`]), waits for it
//! ([`BulkClient::wait_for_completion`]) and reads its pages as bytes
//! ([`BulkClient::results_page`]).
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use sf_bulk::{BulkClient, BulkConfig, BulkItem, FieldSpec, FieldType, Operation};
//!
//! # async fn run(session: sf_auth::Session) -> Result<(), sf_bulk::Error> {
//! let client = BulkClient::new(session, BulkConfig::default())?;
//! let fields = [
//!     FieldSpec::new("Id", FieldType::Id),
//!     FieldSpec::new("SystemModstamp", FieldType::DateTime),
//! ];
//! let mut items = client.query(Operation::Query, "SELECT Id, SystemModstamp FROM Account", &fields);
//! while let Some(item) = items.next().await {
//!     match item {
//!         Ok(BulkItem::Record(record)) => println!("{:?}", record.to_json()),
//!         Ok(BulkItem::PageDone(progress)) => println!("checkpoint: {:?}", progress.resume_point()),
//!         Ok(_) => {}
//!         Err(e) => {
//!             // A job whose download failed is kept for `BulkClient::resume`; giving up,
//!             // delete it, or it stays on the org with its results for 7 days.
//!             if let Some(job_id) = e.job_id() {
//!                 let _ = client.delete(job_id).await;
//!             }
//!             return Err(e);
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod config;
mod decode;
mod denylist;
mod error;
mod job;
mod parallel;
mod raw;
mod run;
mod wire;

pub use config::{BulkConfig, PollSchedule};
pub use decode::PageDecoder;
pub use denylist::{is_bulk_unsupported, BULK_UNSUPPORTED_OBJECTS};
pub use error::{DecodeError, Error, ErrorKind, EXEMPT_FROM_TRANSACTION_SECURITY, VIEW_ALL_DATA};
pub use job::{BulkClient, JobInfo, JobState, Operation};
pub use raw::RawPage;
pub use run::{BulkItem, BulkStream, PageProgress, ResumePoint};
/// sf-discovery's types this crate's API takes and yields.
pub use sf_discovery::{Columns, FieldSpec, FieldType, Record};
