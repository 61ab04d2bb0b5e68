//! What a sync will see, told before it runs: who is logged in, the org and its edition, the
//! daily API allowance, how many objects are readable, and the permissions that decide whether
//! rows are silently left out ([`check_access`] → [`AccessReport`]).
//!
//! Permissions are read as Salesforce documents them: the user's permission set assignments
//! (`PermissionSetAssignment`, which include the profile's own permission set), their system
//! permissions (`PermissionSet.PermissionsViewAllData`, `PermissionsViewAllUsers`) and, when the
//! user lacks "View All Data", the objects on which they grant "View All Records"
//! (`ObjectPermissions`). With describeGlobal, the user, the org and `/limits`, that is at most
//! seven API calls. Reading permissions needs "View Setup and Configuration"; without it the
//! report says the permissions are unknown instead of failing.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};
use sf_auth::Session;
use sf_discovery::{DescribeStream, StreamCriteria};
use sf_rest::{ErrorKind, RestConfig, RestReader};

use crate::catalog::ConfiguredCatalog;
use crate::error::{Error, Failure};

/// The streams that need "View All Users" to be complete (as Airbyte's setup guide lists them).
pub const SECURITY_STREAMS: [&str; 3] =
    ["User", "ActivePermSetLicenseMetric", "ActiveProfileMetric"];

/// Objects named at most in one warning line; the rest are counted.
const NAMED_AT_MOST: usize = 12;

/// Who is logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The User id (15 or 18 characters).
    pub id: String,
    /// `Username`, when the User row could be read.
    pub username: Option<String>,
    /// `Name`, when the User row could be read.
    pub name: Option<String>,
}

/// The org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgInfo {
    /// The org id.
    pub id: String,
    /// The org's name.
    pub name: Option<String>,
    /// `Organization.OrganizationType`, e.g. `Enterprise Edition`.
    pub edition: Option<String>,
    /// Whether the org is a sandbox.
    pub is_sandbox: Option<bool>,
}

/// The daily API allowance (`DailyApiRequests` of `/limits`, read after the check's own calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Allowance {
    /// Requests used in the last 24 hours.
    pub used: i64,
    /// The allowance.
    pub max: i64,
}

impl Allowance {
    /// Requests left.
    pub fn left(&self) -> i64 {
        self.max.saturating_sub(self.used)
    }
}

/// The user's permissions that decide what a sync sees.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    /// The permission sets assigned (the profile's included), by `Name`.
    pub permission_sets: Vec<String>,
    /// "View All Data": every row of every object, whatever sharing says.
    pub view_all_data: bool,
    /// "View All Users": every user and the license metrics.
    pub view_all_users: bool,
    /// Objects with "View All Records" (empty when `view_all_data`: it covers them all).
    pub view_all_records: BTreeSet<String>,
}

/// A problem found by the check: what will go wrong and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessWarning {
    /// Without "View All Data" or the object's "View All Records", rows that sharing hides from
    /// the user are not synced, without any error.
    RowsHiddenBySharing {
        /// The objects concerned.
        objects: Vec<String>,
    },
    /// The security streams are incomplete without "View All Users".
    NeedsViewAllUsers {
        /// The streams concerned.
        streams: Vec<String>,
    },
    /// Streams of the configured catalog the user can no longer read (or that no longer exist).
    NotReadable {
        /// The streams.
        streams: Vec<String>,
    },
    /// The config's `streams_criteria` keeps none of the readable objects: discover offers no
    /// object stream, and a sync reads nothing.
    CriteriaKeepNothing {
        /// How many criteria the config has.
        criteria: usize,
    },
    /// The permissions could not be read, so hidden rows cannot be ruled out.
    PermissionsUnknown {
        /// Why.
        reason: String,
        /// Whether the org refused the permission queries for the user's lack of access (the
        /// fix is a permission), rather than for a passing reason (the daily limit, an outage:
        /// the fix is to run the check again).
        refused: bool,
    },
    /// The org's daily API usage has reached the allocation, or the config's `api_budget`: a
    /// read stops at once (with success) and reads nothing.
    AllowanceUsedUp {
        /// Requests used in the rolling 24 hours (every client's).
        used: i64,
        /// The org's daily allocation.
        max: i64,
        /// The `api_budget` reached and the usage it stops at, when it is the budget (not the
        /// allocation) that is reached.
        budget: Option<(f64, u64)>,
    },
}

/// `n` and the noun, singular for one.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn names(list: &[String]) -> String {
    crate::sink::name_list(list, NAMED_AT_MOST)
}

impl fmt::Display for AccessWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessWarning::RowsHiddenBySharing { objects } => write!(
                f,
                "the user lacks \"View All Data\" and \"View All Records\" on {} ({}): \
                 rows that sharing rules hide from it will not be synced, without an error. Fix: \
                 grant \"View All Data\" to the user's permission set, or \"View All Records\" on \
                 these objects",
                count(objects.len(), "object", "objects"),
                names(objects)
            ),
            AccessWarning::NeedsViewAllUsers { streams } => write!(
                f,
                "{} {} \"View All Users\", which the user lacks: {} only the users it can \
                 see. Fix: grant \"View All Users\" to the user's permission set",
                names(streams),
                if streams.len() == 1 { "needs" } else { "need" },
                if streams.len() == 1 {
                    "it will hold"
                } else {
                    "they will hold"
                }
            ),
            AccessWarning::NotReadable { streams } => write!(
                f,
                "{} of the catalog {} not readable by this user or no longer {} ({}). Fix: \
                 grant Read on {}, or run discover again and remove {} from the catalog",
                count(streams.len(), "stream", "streams"),
                if streams.len() == 1 { "is" } else { "are" },
                if streams.len() == 1 {
                    "exists"
                } else {
                    "exist"
                },
                names(streams),
                if streams.len() == 1 { "it" } else { "them" },
                if streams.len() == 1 { "it" } else { "them" }
            ),
            AccessWarning::AllowanceUsedUp {
                used,
                max,
                budget: None,
            } => write!(
                f,
                "the org has used {used} of its {max} daily API requests (every client's, in \
                 the last 24 hours): Salesforce may refuse any request now, and a read it refuses \
                 stops with success and its state, to resume when the usage falls. Fix: run the \
                 sync later, or ask Salesforce for a larger allocation"
            ),
            AccessWarning::AllowanceUsedUp {
                used,
                max,
                budget: Some((share, stop)),
            } => write!(
                f,
                "api_budget {share} stops requests once the org's usage reaches {stop} of its \
                 {max} daily API requests, and {used} are used (every client's, in the last 24 \
                 hours): a read stops at once, with success, and reads nothing. Fix: raise \
                 `api_budget` (at most 1), or run the sync when the usage has fallen"
            ),
            AccessWarning::CriteriaKeepNothing { criteria } => write!(
                f,
                "the config's streams_criteria ({}) keep none of the readable \
                 objects: discover offers no object stream and a sync reads nothing. Fix: check \
                 the criteria's values (they match object API names, such as `Account` or \
                 `Invoice__c`, case-insensitively)",
                count(*criteria, "criterion", "criteria")
            ),
            AccessWarning::PermissionsUnknown {
                reason,
                refused: true,
            } => write!(
                f,
                "the user's permissions could not be read ({reason}), so rows hidden by sharing \
                 cannot be ruled out. Fix: grant \"View Setup and Configuration\" to check them, \
                 and \"View All Data\" for a complete sync"
            ),
            AccessWarning::PermissionsUnknown {
                reason,
                refused: false,
            } => write!(
                f,
                "the user's permissions could not be read ({reason}), so rows hidden by sharing \
                 cannot be ruled out. Fix: run the check again once that has passed"
            ),
        }
    }
}

/// What the check found: who, where, the allowance, the readable objects and the warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessReport {
    /// The user logged in, when the token answer named one.
    pub user: Option<UserInfo>,
    /// The org, when known.
    pub org: Option<OrgInfo>,
    /// The REST API version in use.
    pub api_version: String,
    /// The daily API allowance, when `/limits` answered.
    pub allowance: Option<Allowance>,
    /// Queryable objects in describeGlobal (which lists only what the user may access).
    pub readable_objects: usize,
    /// Of those, the ones the config's `streams_criteria` keeps, when it has criteria and no
    /// catalog was given (with a catalog, its streams are what a sync reads).
    pub selected_objects: Option<usize>,
    /// The permissions, when they could be read.
    pub permissions: Option<Permissions>,
    /// What will be missing from a sync, and the fix for each.
    pub warnings: Vec<AccessWarning>,
}

impl AccessReport {
    /// One line: who, where, the API version, the allowance and the readable objects.
    pub fn summary(&self) -> String {
        let user = match &self.user {
            Some(u) => match &u.username {
                Some(name) => format!("{name} ({})", u.id),
                None => u.id.clone(),
            },
            None => "an unnamed user".to_string(),
        };
        let org = match &self.org {
            Some(o) => {
                let mut text = o.name.clone().unwrap_or_else(|| "the org".to_string());
                text.push_str(&format!(" ({}", o.id));
                if let Some(edition) = &o.edition {
                    text.push_str(&format!(", {edition}"));
                }
                if o.is_sandbox == Some(true) {
                    text.push_str(", sandbox");
                }
                text.push(')');
                text
            }
            None => "the org".to_string(),
        };
        let allowance = match &self.allowance {
            Some(a) => format!(
                "{} of {} daily API requests used ({} left)",
                a.used,
                a.max,
                a.left()
            ),
            None => "daily API allowance unknown".to_string(),
        };
        let kept = match self.selected_objects {
            Some(n) => format!(" ({n} kept by streams_criteria)"),
            None => String::new(),
        };
        format!(
            "logged in as {user} to {org}, API v{}; {allowance}; {} objects readable{kept}",
            self.api_version, self.readable_objects
        )
    }

    /// Adds a warning when the daily API usage has reached `api_budget` (a share of the
    /// allocation, as the config's key; `None`: no budget) but not the allocation itself (which
    /// [`check_access`] warns about). The check's own requests are best made without the budget
    /// (it would stop them too, and the report would not say why): the usage it reads is then
    /// set against the budget here.
    pub fn note_api_budget(&mut self, api_budget: Option<f64>) {
        let (Some(share), Some(a)) = (api_budget, self.allowance) else {
            return;
        };
        let usage = sf_auth::ApiUsage {
            used: u64::try_from(a.used).unwrap_or(0),
            max: u64::try_from(a.max).unwrap_or(0),
        };
        if a.used >= a.max || !usage.over_budget(share) {
            return;
        }
        self.warnings.push(AccessWarning::AllowanceUsedUp {
            used: a.used,
            max: a.max,
            budget: Some((share, usage.budget(share))),
        });
    }

    /// The summary and every warning, as one message.
    pub fn message(&self) -> String {
        let mut text = self.summary();
        match self.warnings.len() {
            0 => text.push_str(". No access problems found."),
            n => {
                text.push_str(&format!(". {}: ", count(n, "warning", "warnings")));
                let items: Vec<String> = self
                    .warnings
                    .iter()
                    .enumerate()
                    .map(|(i, w)| format!("({}) {w}", i + 1))
                    .collect();
                text.push_str(&items.join("; "));
                text.push('.');
            }
        }
        text
    }
}

/// Checks the connection and tells what a sync of `catalog` (or of every readable object, when
/// `None`) will see. Fails only when describeGlobal fails (the credentials or API access do not
/// work); everything else it cannot read becomes a missing field or a warning.
pub async fn check_access(
    session: &Session,
    catalog: Option<&ConfiguredCatalog>,
) -> Result<AccessReport, Error> {
    check_access_with(session, catalog, &StreamCriteria::all()).await
}

/// [`check_access`], with the config's `streams_criteria`: without a catalog, what a sync will
/// see is the readable objects the criteria keep (counted, and a warning when none is).
pub async fn check_access_with(
    session: &Session,
    catalog: Option<&ConfiguredCatalog>,
    criteria: &StreamCriteria,
) -> Result<AccessReport, Error> {
    let objects =
        sf_discovery::describe_global(session)
            .await
            .map_err(|e| Error::CheckRequest {
                error_code: e.error_code().map(str::to_string),
                message: e.to_string(),
                at_limit: e.kind() == sf_auth::ErrorKind::DailyLimitExceeded,
                failure: Failure::of(e.kind()),
            })?;
    // What discovery offers: queryable, and not left out by name (events, objects served only
    // with a filter, deprecated ones), so the count and the criteria match the catalog.
    let readable: BTreeSet<String> = objects
        .iter()
        .filter(|o| o.exclusion().is_none())
        .map(|o| o.name.clone())
        .collect();
    // What the user may query at all: a catalog stream outside it is not readable by this user
    // (a stream discovery no longer offers, but the user can query, is not blamed on access).
    let queryable: BTreeSet<String> = objects
        .iter()
        .filter(|o| o.queryable)
        .map(|o| o.name.clone())
        .collect();
    // Objects without record-level sharing: no row of theirs is hidden by sharing rules.
    let unshared: BTreeSet<String> = objects
        .into_iter()
        .filter(|o| o.custom_setting || !shares_rows(sf_discovery::ObjectKind::of(&o.name)))
        .map(|o| o.name)
        .collect();
    let reader = RestReader::new(session.clone(), RestConfig::default()).ok();
    let user_id = session.user_id().filter(|id| is_id(id));
    let mut report = AccessReport {
        user: None,
        org: None,
        api_version: session.api_version().to_string(),
        allowance: None,
        readable_objects: readable.len(),
        selected_objects: None,
        permissions: None,
        warnings: Vec::new(),
    };
    if let Some(reader) = &reader {
        if let Some(id) = &user_id {
            let row = first_row(
                reader,
                "User",
                &format!("SELECT Id, Username, Name FROM User WHERE Id = '{id}'"),
            )
            .await;
            report.user = Some(UserInfo {
                id: id.clone(),
                username: text(&row, "Username"),
                name: text(&row, "Name"),
            });
        }
        let row = first_row(
            reader,
            "Organization",
            "SELECT Id, Name, OrganizationType, IsSandbox FROM Organization",
        )
        .await;
        report.org = text(&row, "Id")
            .or_else(|| session.org_id())
            .map(|id| OrgInfo {
                id,
                name: text(&row, "Name"),
                edition: text(&row, "OrganizationType"),
                is_sandbox: row
                    .as_ref()
                    .and_then(|r| r.get("IsSandbox"))
                    .and_then(Value::as_bool),
            });
        report.permissions = match &user_id {
            Some(id) => match permissions(reader, id).await {
                Ok(p) => Some(p),
                Err((reason, refused)) => {
                    report
                        .warnings
                        .push(AccessWarning::PermissionsUnknown { reason, refused });
                    None
                }
            },
            None => {
                report.warnings.push(AccessWarning::PermissionsUnknown {
                    reason: "the token answer named no user".to_string(),
                    refused: false,
                });
                None
            }
        };
    }
    if let Ok(limits) = session.limits().await {
        report.allowance = Some(Allowance {
            used: limits
                .daily_api_requests
                .max
                .saturating_sub(limits.daily_api_requests.remaining),
            max: limits.daily_api_requests.max,
        });
    }
    if let Some(a) = report.allowance.filter(|a| a.max > 0 && a.used >= a.max) {
        report.warnings.push(AccessWarning::AllowanceUsedUp {
            used: a.used,
            max: a.max,
            budget: None,
        });
    }
    let selected: Vec<String> = match catalog {
        Some(c) => c
            .streams
            .iter()
            .filter(|s| s.name != DescribeStream::NAME)
            .map(|s| s.name.clone())
            .collect(),
        None => readable
            .iter()
            .filter(|name| criteria.matches(name))
            .cloned()
            .collect(),
    };
    if catalog.is_none() && !criteria.0.is_empty() {
        report.selected_objects = Some(selected.len());
        if selected.is_empty() {
            report.warnings.push(AccessWarning::CriteriaKeepNothing {
                criteria: criteria.0.len(),
            });
        }
    }
    report.warnings.extend(warnings(
        &selected,
        &queryable,
        &unshared,
        report.permissions.as_ref(),
    ));
    Ok(report)
}

/// Whether objects of `kind` have record-level sharing, so that a user without "View All"
/// may be shown only some of their rows. Custom metadata types are read by the type's
/// permission, whole [doc: Salesforce Help, "Protection and Privacy Options for Custom Metadata
/// Types"]; big objects take object and field permissions only, and external objects' rows come
/// from the external system [belief: both from Salesforce's implementation guides, not checked
/// here]. Custom settings (describeGlobal's `customSetting`) have no owner to share by.
fn shares_rows(kind: sf_discovery::ObjectKind) -> bool {
    use sf_discovery::ObjectKind as K;
    !matches!(kind, K::CustomMetadata | K::BigObject | K::External)
}

/// The warnings for the `selected` objects, given what the user may query (`readable`), which
/// objects have no record-level sharing, and the permissions.
fn warnings(
    selected: &[String],
    readable: &BTreeSet<String>,
    unshared: &BTreeSet<String>,
    permissions: Option<&Permissions>,
) -> Vec<AccessWarning> {
    let mut out = Vec::new();
    let (reachable, gone): (Vec<&String>, Vec<&String>) =
        selected.iter().partition(|s| readable.contains(*s));
    if let Some(p) = permissions {
        if !p.view_all_data {
            let objects: Vec<String> = reachable
                .iter()
                .filter(|s| !SECURITY_STREAMS.contains(&s.as_str()))
                .filter(|s| !unshared.contains(**s))
                .filter(|s| !p.view_all_records.contains(**s))
                .map(|s| (*s).clone())
                .collect();
            if !objects.is_empty() {
                out.push(AccessWarning::RowsHiddenBySharing { objects });
            }
        }
        if !p.view_all_data && !p.view_all_users {
            let streams: Vec<String> = reachable
                .iter()
                .filter(|s| SECURITY_STREAMS.contains(&s.as_str()))
                .map(|s| (*s).clone())
                .collect();
            if !streams.is_empty() {
                out.push(AccessWarning::NeedsViewAllUsers { streams });
            }
        }
    }
    if !gone.is_empty() {
        out.push(AccessWarning::NotReadable {
            streams: gone.into_iter().cloned().collect(),
        });
    }
    out
}

/// The user's permissions: 2 queries, or 3 without "View All Data".
///
/// `Err` holds why, and whether the org refused the queries for the user's lack of access.
async fn permissions(reader: &RestReader, user_id: &str) -> Result<Permissions, (String, bool)> {
    let query = |object: &'static str, soql: String| async move {
        reader.query_rows(object, &soql).await.map_err(|e| {
            // A passing reason (the limit, an outage) says nothing of the user's access.
            let refused = !matches!(
                e.kind(),
                ErrorKind::DailyLimitExceeded
                    | ErrorKind::ConcurrentLimit
                    | ErrorKind::Transient
                    | ErrorKind::Unauthenticated
            );
            (e.to_string(), refused)
        })
    };
    let assignments = query(
        "PermissionSetAssignment",
        format!(
            "SELECT PermissionSetId FROM PermissionSetAssignment WHERE AssigneeId = '{user_id}'"
        ),
    )
    .await?;
    let ids: Vec<String> = assignments
        .iter()
        .filter_map(|r| text(&Some(r.clone()), "PermissionSetId"))
        .filter(|id| is_id(id))
        .map(|id| format!("'{id}'"))
        .collect();
    if ids.is_empty() {
        return Ok(Permissions::default());
    }
    let ids = ids.join(",");
    let sets = query(
        "PermissionSet",
        format!(
            "SELECT Id, Name, PermissionsViewAllData, PermissionsViewAllUsers FROM PermissionSet \
             WHERE Id IN ({ids})"
        ),
    )
    .await?;
    let flag = |name: &str| sets.iter().any(|s| s.get(name) == Some(&Value::Bool(true)));
    let mut p = Permissions {
        permission_sets: sets
            .iter()
            .filter_map(|s| s.get("Name").and_then(Value::as_str).map(str::to_string))
            .collect(),
        view_all_data: flag("PermissionsViewAllData"),
        view_all_users: flag("PermissionsViewAllUsers"),
        view_all_records: BTreeSet::new(),
    };
    if !p.view_all_data {
        let rows = query(
            "ObjectPermissions",
            format!(
                "SELECT SobjectType FROM ObjectPermissions WHERE ParentId IN ({ids}) AND \
                 PermissionsViewAllRecords = true"
            ),
        )
        .await?;
        p.view_all_records = rows
            .iter()
            .filter_map(|r| {
                r.get("SobjectType")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
    }
    Ok(p)
}

/// The first row of a query, or `None` when it fails or finds nothing.
async fn first_row(reader: &RestReader, object: &str, soql: &str) -> Option<Map<String, Value>> {
    reader
        .query_rows(object, soql)
        .await
        .ok()?
        .into_iter()
        .next()
}

fn text(row: &Option<Map<String, Value>>, field: &str) -> Option<String> {
    row.as_ref()?.get(field)?.as_str().map(str::to_string)
}

/// A Salesforce id (15 or 18 letters and digits): safe to put between quotes in SOQL.
fn is_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests;
