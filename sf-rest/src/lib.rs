//! REST query extraction: SOQL through `/query` and `/queryAll`, paged by `nextRecordsUrl`.
//!
//! **Owns (planned):** building SOQL for a stream and window, URL encoding, paging, normalising
//! records to the same shape the Bulk path yields, splitting too-long field lists into chunks merged
//! on `Id`, error classification for the sync engine, and the denylist of objects Bulk API 2.0
//! cannot serve.
//!
//! **Must not know:** Bulk API jobs (`sf-bulk`), windows and state (`sf-sync`), or the Airbyte
//! protocol. It talks to Salesforce only through an `sf_auth::Session`.
