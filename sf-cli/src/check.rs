//! `check`: log in, then tell what a sync will see (CONNECTION_STATUS, preceded by LOG lines).
//!
//! A refused login or an unreadable config or catalog is `FAILED`; a failure that is not the
//! config's (an org whose API does not answer, a network error) is a TRACE error and exit 1, as
//! the Airbyte CDK's `check` raises it. Otherwise the status is `SUCCEEDED` and its message says who is logged in, to which
//! org and edition, the API version, the daily allowance used and left, how many objects are
//! readable, and each warning with its fix (rows hidden by sharing, security streams without
//! "View All Users", catalog streams no longer readable, a daily API usage that has reached the
//! allocation or the `api_budget`): a warning never fails the check, as the credentials work.
//! The check's own requests ignore `api_budget` (it would stop them and hide the allowance). The same facts come first as LOG lines (INFO, then one WARN a warning).

use std::path::Path;
use std::sync::Arc;

use sf_sync::{ConfiguredCatalog, SyncConfig};

use crate::commands::{emit, load_config, login, LoadedConfig};
use crate::failure::Failure;
use crate::files::{in_file, read_json, FileKind};
use crate::protocol::{self, Output};

/// `check --config ... [--catalog ...]`.
pub async fn run(
    config_path: &Path,
    catalog_path: Option<&Path>,
    out: Arc<Output>,
) -> Result<(), Failure> {
    match report(config_path, catalog_path, out.clone()).await {
        Ok(report) => {
            emit(&out, &protocol::log("INFO", &report.summary()))?;
            for warning in &report.warnings {
                emit(&out, &protocol::log("WARN", &warning.to_string()))?;
            }
            emit(
                &out,
                &protocol::connection_status(true, Some(&report.message())),
            )
        }
        // As the Airbyte CDK's `check`: a config error is a FAILED status (exit 0); any other
        // failure (Salesforce down, a network error) is raised as a TRACE error with exit 1, so
        // the platform does not blame the credentials for an outage.
        Err(f) if f.failure_type == crate::protocol::FailureType::Config => {
            emit(&out, &protocol::connection_status(false, Some(&f.message)))
        }
        Err(f) => Err(f),
    }
}

async fn report(
    config_path: &Path,
    catalog_path: Option<&Path>,
    out: Arc<Output>,
) -> Result<sf_sync::AccessReport, Failure> {
    let loaded = load_config(config_path, &out)?;
    let catalog = match catalog_path {
        Some(path) => {
            let json = read_json(FileKind::Catalog, path)?;
            Some(
                ConfiguredCatalog::from_value(&json)
                    .map_err(|e| Failure::config(in_file(FileKind::Catalog, path, e)))?,
            )
        }
        None => None,
    };
    // The check's few requests are made whatever the `api_budget` (Salesforce's own limit still
    // applies): stopped by it, they could not tell the allowance, and the report would blame
    // the permissions. The usage read is set against the budget instead.
    let budget = loaded.config.api_budget;
    let unbudgeted = LoadedConfig {
        raw: loaded.raw.clone(),
        config: SyncConfig {
            api_budget: None,
            ..loaded.config
        },
    };
    let session = login(&unbudgeted, out).await?;
    let criteria = sf_discovery::StreamCriteria(unbudgeted.config.streams_criteria.clone());
    let mut report = sf_sync::check_access_with(&session, catalog.as_ref(), &criteria)
        .await
        .map_err(|e| Failure::from_sync("the connection check failed", &e))?;
    report.note_api_budget(budget);
    Ok(report)
}
