//! `sfconnect`: the connector's command line.
//!
//! **Owns (planned):** the binary `sfconnect` with `spec`, `check`, `discover` and `read` speaking the
//! Airbyte protocol on stdout, reading Airbyte source-salesforce's config, catalog and state files as
//! they are; `emulate` (serve the emulated org) and `demo` (a whole sync against it).
//!
//! **Must not know:** HTTP, SOQL, CSV or Salesforce error bodies. It maps the sync engine's sink
//! events to Airbyte messages and errors to exit codes; it is the only crate besides `xtask` that
//! uses `anyhow` and `clap`.
