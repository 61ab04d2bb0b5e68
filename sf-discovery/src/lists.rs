//! The fixed object lists: objects discovery never offers, and objects that reject filtering.
//!
//! The names are facts about Salesforce, carried over from Airbyte's source-salesforce (`api.py`)
//! so that both connectors offer the same streams; the kinds told by suffix are in `kinds`.

use crate::kinds::ObjectKind;

/// Objects that cannot be queried without an object id: never offered.
pub const UNSUPPORTED_OBJECTS: &[&str] = &["ActivityMetric", "ActivityMetricRollup"];

/// Objects that are queryable only with a restricting `WHERE` clause: not offered.
pub const QUERY_RESTRICTED_OBJECTS: &[&str] = &[
    "Announcement",
    "AppTabMember",
    "CollaborationGroupRecord",
    "ColorDefinition",
    "ContentFolderItem",
    "ContentFolderMember",
    "DataStatistics",
    "DatacloudDandBCompany",
    "EntityParticle",
    "FieldDefinition",
    "FieldHistoryArchive",
    "FlexQueueItem",
    "FlowVariableView",
    "FlowVersionView",
    "IconDefinition",
    "IdeaComment",
    "NetworkUserHistoryRecent",
    "OwnerChangeOptionInfo",
    "PicklistValueInfo",
    "PlatformAction",
    "RelationshipDomain",
    "RelationshipInfo",
    "SearchLayout",
    "SiteDetail",
    "UserEntityAccess",
    "UserFieldAccess",
    "Vote",
];

/// Objects listed as queryable that a plain `SELECT ... FROM` cannot read: not offered.
pub const QUERY_INCOMPATIBLE_OBJECTS: &[&str] = &[
    "AIPredictionEvent",
    "ActivityHistory",
    "AggregateResult",
    "ApiAnomalyEvent",
    "ApiEventStream",
    "AssetTokenEvent",
    "AsyncOperationEvent",
    "AsyncOperationStatus",
    "AttachedContentDocument",
    "AttachedContentNote",
    "BatchApexErrorEvent",
    "BulkApiResultEvent",
    "CombinedAttachment",
    "ConcurLongRunApexErrEvent",
    "ContentBody",
    "CredentialStuffingEvent",
    "DataType",
    "DatacloudAddress",
    "EmailStatus",
    "FeedLike",
    "FeedSignal",
    "FeedTrackedChange",
    "FlowExecutionErrorEvent",
    "FolderedContentDocument",
    "LightningUriEventStream",
    "ListViewChartInstance",
    "ListViewEventStream",
    "LoginAsEventStream",
    "LoginEventStream",
    "LogoutEventStream",
    "LookedUpFromActivity",
    "Name",
    "NoteAndAttachment",
    "OpenActivity",
    "OrgLifecycleNotification",
    "OutgoingEmail",
    "OutgoingEmailRelation",
    "OwnedContentDocument",
    "PlatformStatusAlertEvent",
    "ProcessExceptionEvent",
    "ProcessInstanceHistory",
    "QuoteTemplateRichTextData",
    "RemoteKeyCalloutEvent",
    "ReportAnomalyEvent",
    "ReportEventStream",
    "SessionHijackingEvent",
    "UriEventStream",
    "UserRecordAccess",
];

/// Objects that reject filtering and ordering on their cursor: full refresh only, whatever fields
/// they have.
pub const UNSUPPORTED_FILTERING_OBJECTS: &[&str] = &[
    "ActivityFieldHistory",
    "ApiEvent",
    "BulkApiResultEventStore",
    "ContentDocumentLink",
    "EmbeddedServiceDetail",
    "EmbeddedServiceLabel",
    "FormulaFunction",
    "FormulaFunctionAllowedType",
    "FormulaFunctionCategory",
    "IdentityProviderEventStore",
    "IdentityVerificationEvent",
    "LightningUriEvent",
    "ListViewEvent",
    "LoginAsEvent",
    "LoginEvent",
    "LogoutEvent",
    "Publisher",
    "RecordActionHistory",
    "ReportEvent",
    "TabDefinition",
    "UriEvent",
];

/// Why discovery does not offer an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exclusion {
    /// describeGlobal says `queryable: false`.
    NotQueryable,
    /// On [`UNSUPPORTED_OBJECTS`]: needs an object id to be queried.
    Unsupported,
    /// A change-data-capture event object (`*ChangeEvent`): not readable through query.
    ChangeEvent,
    /// On [`QUERY_RESTRICTED_OBJECTS`]: needs a restricting `WHERE` clause.
    QueryRestricted,
    /// On [`QUERY_INCOMPATIBLE_OBJECTS`]: not readable with a plain query.
    QueryIncompatible,
    /// A platform event (`__e`): published to subscribers, not stored for query.
    PlatformEvent,
    /// describeGlobal says `deprecatedAndHidden`: kept only for old clients.
    DeprecatedAndHidden,
}

impl Exclusion {
    /// A short reason, for logs and warnings.
    pub fn reason(&self) -> &'static str {
        match self {
            Exclusion::NotQueryable => "not queryable (describeGlobal says queryable: false)",
            Exclusion::Unsupported => "cannot be queried without an object id",
            Exclusion::ChangeEvent => {
                "a change event: delivered to subscribers (Change Data Capture), not stored for \
                 query"
            }
            Exclusion::QueryRestricted => {
                "needs a filter: Salesforce serves it only with a WHERE clause on a parent or \
                 the user"
            }
            Exclusion::QueryIncompatible => "cannot be read with a plain query",
            Exclusion::PlatformEvent => {
                "a platform event: published to subscribers, not stored for query"
            }
            Exclusion::DeprecatedAndHidden => {
                "deprecated and hidden: Salesforce keeps it only for old clients"
            }
        }
    }
}

impl std::fmt::Display for Exclusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// Why the object called `name` is never offered by name alone (queryability aside), if it is not.
///
/// Names are compared exactly, as Salesforce spells them.
pub fn name_exclusion(name: &str) -> Option<Exclusion> {
    if UNSUPPORTED_OBJECTS.contains(&name) {
        Some(Exclusion::Unsupported)
    } else if name.ends_with("ChangeEvent") {
        Some(Exclusion::ChangeEvent)
    } else if ObjectKind::of(name) == ObjectKind::PlatformEvent {
        Some(Exclusion::PlatformEvent)
    } else if QUERY_RESTRICTED_OBJECTS.contains(&name) {
        Some(Exclusion::QueryRestricted)
    } else if QUERY_INCOMPATIBLE_OBJECTS.contains(&name) {
        Some(Exclusion::QueryIncompatible)
    } else {
        None
    }
}

/// True when the object rejects filtering on its cursor, so it is read by full refresh only: on
/// [`UNSUPPORTED_FILTERING_OBJECTS`], or of a kind read whole ([`ObjectKind::full_refresh_only`]).
pub fn filtering_unsupported(name: &str) -> bool {
    UNSUPPORTED_FILTERING_OBJECTS.contains(&name) || ObjectKind::of(name).full_refresh_only()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_have_their_sizes_and_no_duplicates() {
        for (list, len) in [
            (QUERY_RESTRICTED_OBJECTS, 27),
            (QUERY_INCOMPATIBLE_OBJECTS, 48),
            (UNSUPPORTED_FILTERING_OBJECTS, 21),
            (UNSUPPORTED_OBJECTS, 2),
        ] {
            assert_eq!(list.len(), len);
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), len, "duplicates in {list:?}");
        }
    }

    #[test]
    fn exclusions_by_name() {
        assert_eq!(
            name_exclusion("ActivityMetric"),
            Some(Exclusion::Unsupported)
        );
        assert_eq!(
            name_exclusion("AccountChangeEvent"),
            Some(Exclusion::ChangeEvent)
        );
        assert_eq!(
            name_exclusion("Invoice__ChangeEvent"),
            Some(Exclusion::ChangeEvent)
        );
        assert_eq!(
            name_exclusion("FieldDefinition"),
            Some(Exclusion::QueryRestricted)
        );
        assert_eq!(
            name_exclusion("UserRecordAccess"),
            Some(Exclusion::QueryIncompatible)
        );
        assert_eq!(name_exclusion("Account"), None);
        assert_eq!(name_exclusion("ContentDocumentLink"), None);
        // Exact names: a custom object that merely contains a listed name is offered.
        assert_eq!(name_exclusion("Vote__c"), None);
        assert_eq!(name_exclusion("Alert__e"), Some(Exclusion::PlatformEvent));
        // Offered: read by PublishStatus when the org refuses an unfiltered query (sf-sync).
        assert_eq!(name_exclusion("Knowledge__kav"), None);
        assert_eq!(name_exclusion("Reading__b"), None);
        assert!(filtering_unsupported("Reading__b"));
        assert!(filtering_unsupported("Setting__mdt"));
        assert!(!filtering_unsupported("Invoice__History"));
        assert!(filtering_unsupported("LoginEvent"));
        assert!(!filtering_unsupported("LoginHistory"));
    }
}
