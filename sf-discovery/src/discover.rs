//! Discovery: describeGlobal → candidate objects → batched describes → the catalog.

use futures_util::StreamExt;
use serde::Deserialize;
use sf_auth::Session;

use crate::criteria::StreamCriteria;
use crate::describe::{describe_objects, is_valid_object_name, ObjectDescribe};
use crate::describe_stream::DescribeStream;
use crate::error::Error;
use crate::lists::{name_exclusion, Exclusion};
use crate::model::StreamSpec;
use crate::options::{DiscoveryOptions, DiscoveryWarning};
use crate::wire::{GlobalObjectWire, GlobalWire};

/// One object as describeGlobal lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// API name, e.g. `Account`, `Invoice__c`.
    pub name: String,
    /// Display label.
    pub label: Option<String>,
    /// Usable in SOQL.
    pub queryable: bool,
    /// A custom object.
    pub custom: bool,
    /// A custom setting.
    pub custom_setting: bool,
    /// Supports retrieve.
    pub retrieveable: bool,
    /// Supports replication (getUpdated / getDeleted).
    pub replicateable: bool,
    /// Deprecated and hidden.
    pub deprecated_and_hidden: bool,
    /// The 3-character id prefix, when the object has one.
    pub key_prefix: Option<String>,
}

impl ObjectInfo {
    /// Why discovery does not offer this object, if it does not: not queryable, or on one of the
    /// fixed lists (see [`name_exclusion`]).
    pub fn exclusion(&self) -> Option<Exclusion> {
        // Events first: they say more than "not queryable", which they also are.
        let by_name = name_exclusion(&self.name);
        if let Some(event @ (Exclusion::ChangeEvent | Exclusion::PlatformEvent)) = by_name {
            return Some(event);
        }
        if !self.queryable {
            return Some(Exclusion::NotQueryable);
        }
        if self.deprecated_and_hidden {
            return Some(Exclusion::DeprecatedAndHidden);
        }
        by_name
    }
}

/// `GET sobjects` (describeGlobal): every object the user can see, in Salesforce's order.
///
/// An entry that cannot be read (no name, a name that cannot be an object's, a flag of the
/// wrong type) is left out with a WARN in the log (`ListingEntrySkipped`) rather than failing
/// the listing; [`discover`] also puts it in the catalog's warnings
/// ([`DiscoveryWarning::ListingEntrySkipped`]). A flag sent as `null` reads as when absent.
pub async fn describe_global(session: &Session) -> Result<Vec<ObjectInfo>, Error> {
    list_objects(session).await.map(|(objects, _)| objects)
}

/// describeGlobal, with the warnings for the entries left out.
async fn list_objects(
    session: &Session,
) -> Result<(Vec<ObjectInfo>, Vec<DiscoveryWarning>), Error> {
    let response = session
        .fetch(sf_auth::Request::get("sobjects"))
        .await
        .map_err(|source| Error::GlobalRequest {
            source: Box::new(source),
        })?;
    read_listing(&response.body)
}

/// Reads a describeGlobal body: the objects in Salesforce's order, and a warning for each entry
/// left out. A body that is not a describeGlobal result is [`Error::GlobalDecode`].
fn read_listing(body: &[u8]) -> Result<(Vec<ObjectInfo>, Vec<DiscoveryWarning>), Error> {
    let global: GlobalWire = serde_json::from_slice(body).map_err(|e| Error::GlobalDecode {
        message: e.to_string(),
    })?;
    let mut objects = Vec::with_capacity(global.sobjects.len());
    let mut warnings = Vec::new();
    for (index, entry) in global.sobjects.iter().enumerate() {
        let read = GlobalObjectWire::deserialize(entry)
            .map_err(|e| e.to_string())
            .and_then(|o| {
                if is_valid_object_name(&o.name) {
                    Ok(o)
                } else {
                    Err(Error::InvalidObjectName { name: o.name }.to_string())
                }
            });
        match read {
            Ok(o) => objects.push(ObjectInfo {
                name: o.name,
                label: o.label,
                queryable: o.queryable,
                custom: o.custom,
                custom_setting: o.custom_setting,
                retrieveable: o.retrieveable,
                replicateable: o.replicateable,
                deprecated_and_hidden: o.deprecated_and_hidden,
                key_prefix: o.key_prefix,
            }),
            Err(reason) => {
                let name = entry
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string);
                tracing::warn!(index, name = ?name, reason = %reason, "ListingEntrySkipped");
                warnings.push(DiscoveryWarning::ListingEntrySkipped {
                    index,
                    name,
                    reason,
                });
            }
        }
    }
    Ok((objects, warnings))
}

/// The objects to describe: those not excluded ([`ObjectInfo::exclusion`]) that pass `criteria`,
/// sorted by name, without duplicates.
pub fn candidate_objects(objects: &[ObjectInfo], criteria: &StreamCriteria) -> Vec<String> {
    let mut names: Vec<String> = objects
        .iter()
        .filter(|o| o.exclusion().is_none() && criteria.matches(&o.name))
        .map(|o| o.name.clone())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The streams of an org: one per queryable, offered object, sorted by name.
///
/// The `Describe` stream ([`DescribeStream`]) is always available besides these.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// The streams, sorted by name.
    pub streams: Vec<StreamSpec>,
    /// What discovery noticed without failing (describeGlobal entries that could not be read,
    /// unknown field types, skipped objects), each naming what it is about.
    pub warnings: Vec<DiscoveryWarning>,
    /// The objects describeGlobal lists (and the criteria keep) that are not offered, each with
    /// why, sorted by name: discovery never leaves an object out silently.
    pub excluded: Vec<ExcludedObject>,
}

/// An object discovery does not offer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludedObject {
    /// The object.
    pub object: String,
    /// Why.
    pub reason: Exclusion,
}

impl std::fmt::Display for ExcludedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is left out: {}", self.object, self.reason)
    }
}

/// The objects of `objects` that `criteria` keep but discovery does not offer, with why, sorted
/// by name, without duplicates.
pub fn excluded_objects(objects: &[ObjectInfo], criteria: &StreamCriteria) -> Vec<ExcludedObject> {
    let mut out: Vec<ExcludedObject> = objects
        .iter()
        .filter(|o| criteria.matches(&o.name))
        .filter_map(|o| {
            o.exclusion().map(|reason| ExcludedObject {
                object: o.name.clone(),
                reason,
            })
        })
        .collect();
    out.sort_by(|a, b| a.object.cmp(&b.object));
    out.dedup_by(|a, b| a.object == b.object);
    out
}

impl Catalog {
    /// The stream called `name` (exact match first, then case-insensitive).
    pub fn stream(&self, name: &str) -> Option<&StreamSpec> {
        self.streams.iter().find(|s| s.name == name).or_else(|| {
            self.streams
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(name))
        })
    }

    /// The stream names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.streams.iter().map(|s| s.name.as_str())
    }

    /// Number of object streams (the `Describe` stream not counted).
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// True when no object became a stream.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

/// Discovers the org's catalog: describeGlobal, the objects that are queryable, not excluded and
/// pass the criteria, each described through `composite`.
///
/// Sends ⌈N/25⌉ + 1 HTTP requests for N described objects (with the default batch size; plus one
/// per describe retried alone), and costs as many API calls of the daily allowance: a composite
/// call counts once (see the crate docs).
pub async fn discover(session: &Session, options: &DiscoveryOptions) -> Result<Catalog, Error> {
    options.validate()?;
    let (objects, mut warnings) = list_objects(session).await?;
    let names = candidate_objects(&objects, &options.streams_criteria);
    tracing::info!(
        listed = objects.len(),
        candidates = names.len(),
        "ObjectsListed"
    );
    let mut catalog = collect(session, names, options).await?;
    // The listing's warnings first: they were noticed first.
    warnings.append(&mut catalog.warnings);
    catalog.warnings = warnings;
    catalog.excluded = excluded_objects(&objects, &options.streams_criteria);
    tracing::info!(
        streams = catalog.len(),
        warnings = catalog.warnings.len(),
        "CatalogDiscovered"
    );
    Ok(catalog)
}

/// Describes only the named objects into a [`Catalog`], without describeGlobal, the fixed lists
/// or the criteria: ⌈N/25⌉ HTTP requests and as many API calls of the daily allowance.
///
/// Names are matched as Salesforce spells them; the describe's own spelling names the stream.
/// Duplicates (case-insensitive) and the `Describe` stream's name are ignored. An object that does
/// not exist or cannot be queried, or whose describe fails for a reason of its own
/// ([`Error::is_confined_to_object`]: refused for the object, a describe that cannot be read),
/// fails the call, or is left out with a warning naming it and why when
/// `options.skip_inaccessible` is set. Even then, when no object at all could be described and one
/// failed for a reason other than being inaccessible, that failure is returned: an org that fails
/// every describe yields an error, not an empty catalog. A failure that is not one object's (the
/// daily limit, a composite call refused, the session refused) always fails the call.
pub async fn describe_streams(
    session: &Session,
    names: &[String],
    options: &DiscoveryOptions,
) -> Result<Catalog, Error> {
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim();
        if name == DescribeStream::NAME || unique.iter().any(|u| u.eq_ignore_ascii_case(name)) {
            continue;
        }
        unique.push(name.to_string());
    }
    collect(session, unique, options).await
}

async fn collect(
    session: &Session,
    names: Vec<String>,
    options: &DiscoveryOptions,
) -> Result<Catalog, Error> {
    let mut described = describe_objects(session, names, options)?;
    let mut catalog = Catalog::default();
    // The first object left out for a failure of its describe (not for being inaccessible).
    let mut first_failure: Option<Error> = None;
    while let Some(item) = described.next().await {
        match item {
            Ok(ObjectDescribe {
                stream, warnings, ..
            }) => {
                catalog.warnings.extend(warnings);
                catalog.streams.push(stream);
            }
            Err(e) if options.skip_inaccessible && e.is_confined_to_object() => {
                let object = e.object().unwrap_or_default().to_string();
                tracing::warn!(object = %object, error = %e, "ObjectSkipped");
                catalog.warnings.push(DiscoveryWarning::ObjectSkipped {
                    object,
                    error_code: e.error_code().map(str::to_string),
                    reason: e.to_string(),
                });
                if first_failure.is_none() && !e.is_inaccessible() {
                    first_failure = Some(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    // Every describe failing is the org's trouble, not each object's: no empty catalog for it.
    if catalog.streams.is_empty() {
        if let Some(e) = first_failure {
            return Err(e);
        }
    }
    catalog.streams.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criteria::{Criterion, StreamCriterion};

    fn info(name: &str, queryable: bool) -> ObjectInfo {
        ObjectInfo {
            name: name.to_string(),
            label: None,
            queryable,
            custom: name.ends_with("__c"),
            custom_setting: false,
            retrieveable: true,
            replicateable: true,
            deprecated_and_hidden: false,
            key_prefix: None,
        }
    }

    #[test]
    fn candidates_drop_exclusions_then_apply_criteria() {
        let objects = vec![
            info("Contact", true),
            info("Account", true),
            info("AccountChangeEvent", true),
            info("ActivityMetric", true),
            info("AccountUserTerritory2View", false),
            info("FieldDefinition", true),
            info("UserRecordAccess", true),
            info("Invoice__c", true),
            info("LoginEvent", true),
            info("Account", true),
        ];
        assert_eq!(
            candidate_objects(&objects, &StreamCriteria::all()),
            ["Account", "Contact", "Invoice__c", "LoginEvent"]
        );
        let criteria = StreamCriteria(vec![StreamCriterion::new(Criterion::StartsWith, "acc")]);
        assert_eq!(candidate_objects(&objects, &criteria), ["Account"]);
        assert_eq!(objects[4].exclusion(), Some(Exclusion::NotQueryable));
        assert_eq!(objects[2].exclusion(), Some(Exclusion::ChangeEvent));
        let excluded: Vec<String> = excluded_objects(&objects, &StreamCriteria::all())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            excluded,
            [
                "`AccountChangeEvent` is left out: a change event: delivered to subscribers \
                 (Change Data Capture), not stored for query",
                "`AccountUserTerritory2View` is left out: not queryable (describeGlobal says \
                 queryable: false)",
                "`ActivityMetric` is left out: cannot be queried without an object id",
                "`FieldDefinition` is left out: needs a filter: Salesforce serves it only with a \
                 WHERE clause on a parent or the user",
                "`UserRecordAccess` is left out: cannot be read with a plain query",
            ]
        );
        // Only what the criteria keep is reported.
        let criteria = StreamCriteria(vec![StreamCriterion::new(Criterion::StartsWith, "acc")]);
        assert_eq!(excluded_objects(&objects, &criteria).len(), 2);
    }

    #[test]
    fn a_listing_entry_that_cannot_be_read_is_left_out_with_a_warning_not_the_listing() {
        let body = serde_json::json!({"encoding": "UTF-8", "sobjects": [
            {"name": "Account", "queryable": null, "custom": null, "retrieveable": null,
             "deprecatedAndHidden": null},
            {"label": "Nameless", "queryable": true},
            {"name": null},
            {"name": "", "queryable": true},
            {"name": "Two Words", "queryable": true},
            {"name": "Odd__c", "queryable": "yes"},
            {"name": "Invoice__c", "queryable": true, "custom": true}
        ]});
        let (objects, warnings) = read_listing(body.to_string().as_bytes()).unwrap();
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["Account", "Invoice__c"]);
        // null flags read as when absent: not queryable, retrieveable.
        assert!(!objects[0].queryable && objects[0].retrieveable && !objects[0].custom);
        assert_eq!(objects[0].exclusion(), Some(Exclusion::NotQueryable));
        let skipped: Vec<(usize, Option<&str>)> = warnings
            .iter()
            .map(|w| match w {
                DiscoveryWarning::ListingEntrySkipped { index, name, .. } => {
                    (*index, name.as_deref())
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            skipped,
            [
                (1, None),
                (2, None),
                (3, Some("")),
                (4, Some("Two Words")),
                (5, Some("Odd__c"))
            ]
        );
        assert_eq!(
            warnings[3].to_string(),
            "describeGlobal's entry 4 (`Two Words`) is left out: `Two Words` is not a valid \
             object name (letters, digits and `_` only)"
        );
        assert!(
            warnings[0].to_string().contains("missing field `name`"),
            "{}",
            warnings[0]
        );
        // Not a listing at all: still an error.
        let bad_bodies: [&[u8]; 3] = [b"<html>", br#"{"sobjects": {"name": "Account"}}"#, b"{}"];
        for bad in bad_bodies {
            assert!(
                matches!(read_listing(bad), Err(Error::GlobalDecode { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn events_and_deprecated_objects_are_left_out_with_their_reason_article_versions_offered() {
        let mut event = info("Alert__e", false);
        assert_eq!(event.exclusion(), Some(Exclusion::PlatformEvent));
        event.queryable = true;
        assert_eq!(event.exclusion(), Some(Exclusion::PlatformEvent));
        let mut old = info("OldThing", true);
        old.deprecated_and_hidden = true;
        assert_eq!(old.exclusion(), Some(Exclusion::DeprecatedAndHidden));
        for offered in [
            "Knowledge__kav",
            "Reading__b",
            "Order__x",
            "Setting__mdt",
            "Invoice__History",
        ] {
            assert_eq!(info(offered, true).exclusion(), None, "{offered}");
        }
    }
}
