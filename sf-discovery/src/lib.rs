//! Discovery: turns an org's `describeGlobal` and per-object `describe` into a catalog of streams.
//!
//! **Owns:** the domain types shared by the extraction crates ([`StreamSpec`], [`FieldSpec`],
//! [`FieldType`], [`Record`]), and (in progress) which objects are queryable and not excluded, the
//! stream-name criteria (`starts with`, `not contains`, ...), describes batched through
//! `/composite/batch`, the JSON schema of each object, its primary key and cursor, and the
//! per-field facts the sync engine needs (Bulk-unservable fields, formula fields, `IsDeleted`).
//!
//! **Must not know:** how records are extracted (REST or Bulk), sync state, or the Airbyte protocol.
//! It talks to Salesforce only through an [`sf_auth::Session`].
//!
//! ```
//! use sf_discovery::{FieldSpec, FieldType};
//!
//! let field = FieldSpec::new("SystemModstamp", FieldType::from_wire("datetime"));
//! assert_eq!(field.json_schema()["format"], "date-time");
//! ```

mod model;

pub use model::{normalize_datetime, Columns, FieldSpec, FieldType, Record, StreamSpec, ValueKind};
