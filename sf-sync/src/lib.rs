//! The sync engine: reads a configured catalog from an org into a sink, resumably.
//!
//! **Owns (planned):** the config (Airbyte source-salesforce's keys), sync modes, windows on the
//! cursor with lookback, per-stream state (and migration from Airbyte's state forms), choosing REST
//! or Bulk per stream, deletes, stopping early with success at the daily API limit, and concurrency.
//!
//! **Must not know:** the Airbyte message format or the command line (`sf-cli`); HTTP details beyond
//! what `sf-auth`, `sf-rest` and `sf-bulk` expose.
