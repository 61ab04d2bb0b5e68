//! Discovery: turns an org's `describeGlobal` and per-object `describe` into a catalog of streams.
//!
//! **Owns:** the domain types shared by the extraction crates ([`StreamSpec`], [`FieldSpec`],
//! [`FieldType`], [`Record`]); which objects are offered ([`ObjectInfo::exclusion`]: queryable, not
//! on the fixed lists such as [`QUERY_RESTRICTED_OBJECTS`], not an event; each object left out is
//! in [`Catalog::excluded`] with why, never silently); the kinds of objects told by their suffix
//! ([`ObjectKind`]: big objects, external objects and custom metadata types are read whole, through
//! REST; knowledge article versions are offered and read through REST, by `PublishStatus` where
//! Salesforce refuses them unfiltered); the stream-name
//! criteria ([`StreamCriteria`]: `starts with`, `not contains`, ...); describes batched 25 to a
//! `composite` call with a bounded number of calls in flight ([`describe_objects`]); and per
//! stream its JSON schema, primary key, cursor, whether it can be read incrementally
//! ([`UNSUPPORTED_FILTERING_OBJECTS`] cannot), and the per-field facts the sync engine needs
//! (Bulk-unservable fields, formula fields, `IsDeleted`). The entry points are [`discover`] (the
//! whole org) and [`describe_streams`] (only the named objects, without describeGlobal); both
//! return a [`Catalog`]. The [`DescribeStream`] (one record per object: its describe) is always
//! offered besides. Helpers the crates above share: [`is_valid_object_name`] (checked before a
//! name goes into a request path), and Salesforce's datetimes read ([`parse_datetime`]) and
//! written in the one form records carry ([`format_datetime`], [`normalize_datetime`]).
//!
//! **Cost.** For N objects, [`discover`] sends ⌈N/25⌉ + 1 HTTP requests (describeGlobal and one
//! `POST composite` call per 25 describes), and they are also what it costs of the daily API
//! allowance (`DailyApiRequests`): Salesforce counts a composite call as one API call, however
//! many subrequests it carries. So 1,000 objects cost 41 calls (40 for the describes) where one
//! describe call per object, or `composite/batch` (which charges each subrequest), would cost
//! 1,001. A describe that fails inside a call and is retried alone costs one call more.
//!
//! **Must not know:** how records are extracted (REST or Bulk, and the object-level Bulk denylist),
//! sync state, or the Airbyte protocol. It talks to Salesforce only through an
//! [`sf_auth::Session`]; Salesforce's describe payloads stay in a private `wire` module.
//!
//! ```no_run
//! use sf_discovery::{discover, DiscoveryOptions, StreamCriteria};
//!
//! # async fn run(session: sf_auth::Session) -> Result<(), sf_discovery::Error> {
//! let criteria = StreamCriteria::from_json(&serde_json::json!([
//!     {"criteria": "starts with", "value": "Acc"},
//!     {"criteria": "ends with", "value": "__c"},
//! ]))?;
//! let options = DiscoveryOptions { streams_criteria: criteria, ..Default::default() };
//! let catalog = discover(&session, &options).await?;
//! for stream in &catalog.streams {
//!     println!(
//!         "{}: key {:?}, cursor {:?}, {} Bulk-unservable fields",
//!         stream.name,
//!         stream.primary_key,
//!         stream.cursor_field,
//!         stream.bulk_unservable_fields().count()
//!     );
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ```
//! use sf_discovery::{FieldSpec, FieldType};
//!
//! let field = FieldSpec::new("SystemModstamp", FieldType::from_wire("datetime"));
//! assert_eq!(field.json_schema()["format"], "date-time");
//! ```

mod criteria;
mod datetime;
mod describe;
mod describe_stream;
mod discover;
mod error;
mod kinds;
mod lists;
mod model;
mod options;
mod wire;

pub use criteria::{Criterion, StreamCriteria, StreamCriterion};
pub use datetime::{format_datetime, normalize_datetime, parse_datetime};
pub use describe::{describe_objects, is_valid_object_name, ObjectDescribe};
pub use describe_stream::DescribeStream;
pub use discover::{
    candidate_objects, describe_global, describe_streams, discover, excluded_objects, Catalog,
    ExcludedObject, ObjectInfo,
};
pub use error::Error;
pub use kinds::ObjectKind;
pub use lists::{
    filtering_unsupported, name_exclusion, Exclusion, QUERY_INCOMPATIBLE_OBJECTS,
    QUERY_RESTRICTED_OBJECTS, UNSUPPORTED_FILTERING_OBJECTS, UNSUPPORTED_OBJECTS,
};
pub use model::{Columns, FieldSpec, FieldType, Record, StreamSpec, ValueKind};
pub use options::{DiscoveryOptions, DiscoveryWarning, MAX_BATCH_SIZE};
