//! Bulk API 2.0 query jobs: create, poll, download results, delete, as a stream of typed records.
//!
//! **Owns (planned):** the job lifecycle (`UploadComplete → InProgress → JobComplete | Failed |
//! Aborted`), polling with a growing interval, locator paging of results, streaming CSV decoding
//! typed by the stream's schema, count verification, and classifying Bulk failures (not supported,
//! daily job limit, permission) for the sync engine.
//!
//! **Must not know:** the REST query API (`sf-rest`), windows and state (`sf-sync`), or the Airbyte
//! protocol. It talks to Salesforce only through an `sf_auth::Session`.
