//! The kinds of objects a real org holds, told by their API name's suffix, and what each allows.
//!
//! What each kind allows, and how sure we are (`[doc]` Salesforce documentation, `[belief]` our
//! reading where the documentation says nothing directly):
//! - Platform events (`__e`) are published to subscribers and not stored for SOQL; describeGlobal
//!   lists them with `queryable: false` [doc: Platform Events Developer Guide].
//! - Change events (`*ChangeEvent`, `*__ChangeEvent`) are delivered to subscribers and cannot be
//!   queried [doc: Change Data Capture Developer Guide]; Airbyte's connector leaves them out too.
//! - Knowledge article versions (`__kav`, and the standard `KnowledgeArticleVersion` they derive
//!   from, named exactly): the object reference says a query must filter on
//!   `PublishStatus` or `Id`, while the Knowledge Developer Guide ("Salesforce Knowledge with SOQL
//!   and SOSL") says that from API 47.0, with Lightning Knowledge, an unfiltered query returns
//!   draft, published and archived versions, and that archived versions are otherwise queried
//!   per article (`KnowledgeArticleId`, `IsLatestVersion = false`) [doc, both; which one an org
//!   follows is known only by asking it]. They are read through REST (few rows; whether Bulk
//!   serves them is only believed): unfiltered first, and by `PublishStatus` when refused.
//! - Big objects (`__b`) answer SOQL filtered only on their index fields, have no `queryAll` (no
//!   recycle bin) and no Bulk API 2.0 query [doc: Big Objects Implementation Guide, "SOQL with
//!   Big Objects"]: read in full through REST `query`, never by a cursor window.
//! - External objects (`__x`) are read from an external system through Salesforce Connect, have
//!   no audit fields to window on and no Bulk API query [belief, from the External Objects
//!   documentation's list of supported calls]: read in full through REST.
//! - Custom metadata types (`__mdt`) answer SOQL without `COUNT()` and are not served by the Bulk
//!   API [belief: the custom metadata SOQL page lists the clauses allowed, and COUNT() is not
//!   among them]: read in full through REST (they hold few rows).
//! - History (`*History`, `*__History`), share (`*Share`, `*__Share`) and feed (`*Feed`,
//!   `*__Feed`) objects are ordinary queryable objects; history rows have no `SystemModstamp`
//!   (the cursor is `CreatedDate`) [doc: Object Reference, "Associated Objects"].

/// What kind of object an API name names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A standard object (`Account`).
    Standard,
    /// A custom object (`__c`).
    Custom,
    /// A custom metadata type (`__mdt`).
    CustomMetadata,
    /// A big object (`__b`).
    BigObject,
    /// An external object (`__x`).
    External,
    /// A platform event (`__e`).
    PlatformEvent,
    /// A change event (`*ChangeEvent`).
    ChangeEvent,
    /// Field history (`*History`, `*__History`).
    History,
    /// Sharing rows (`*Share`, `*__Share`).
    Share,
    /// Chatter feed items (`*Feed`, `*__Feed`).
    Feed,
    /// Knowledge article versions (`__kav`, and the standard `KnowledgeArticleVersion`).
    KnowledgeArticleVersion,
}

impl ObjectKind {
    /// The kind of the object called `name`, by its suffix (and, for the standard
    /// `KnowledgeArticleVersion`, by its exact name: it has no suffix, and the same
    /// `PublishStatus` rule as the `__kav` objects derived from it).
    pub fn of(name: &str) -> ObjectKind {
        let suffix = |s: &str| name.len() > s.len() && name.ends_with(s);
        if name == "KnowledgeArticleVersion" {
            ObjectKind::KnowledgeArticleVersion
        } else if suffix("ChangeEvent") {
            ObjectKind::ChangeEvent
        } else if suffix("__e") {
            ObjectKind::PlatformEvent
        } else if suffix("__mdt") {
            ObjectKind::CustomMetadata
        } else if suffix("__b") {
            ObjectKind::BigObject
        } else if suffix("__x") {
            ObjectKind::External
        } else if suffix("__kav") {
            ObjectKind::KnowledgeArticleVersion
        } else if suffix("History") {
            ObjectKind::History
        } else if suffix("Share") {
            ObjectKind::Share
        } else if suffix("Feed") {
            ObjectKind::Feed
        } else if suffix("__c") {
            ObjectKind::Custom
        } else {
            ObjectKind::Standard
        }
    }

    /// True for kinds read whole, never by cursor windows: big objects filter only on their
    /// index, external objects and custom metadata types have no cursor to window on.
    pub fn full_refresh_only(self) -> bool {
        matches!(
            self,
            ObjectKind::BigObject | ObjectKind::External | ObjectKind::CustomMetadata
        )
    }

    /// True for kinds the Bulk API 2.0 does not query: read through REST.
    pub fn rest_only(self) -> bool {
        matches!(
            self,
            ObjectKind::BigObject
                | ObjectKind::External
                | ObjectKind::CustomMetadata
                | ObjectKind::KnowledgeArticleVersion
        )
    }

    /// What the kind is called, for logs.
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Standard => "standard object",
            ObjectKind::Custom => "custom object",
            ObjectKind::CustomMetadata => "custom metadata type",
            ObjectKind::BigObject => "big object",
            ObjectKind::External => "external object",
            ObjectKind::PlatformEvent => "platform event",
            ObjectKind::ChangeEvent => "change event",
            ObjectKind::History => "history object",
            ObjectKind::Share => "share object",
            ObjectKind::Feed => "feed object",
            ObjectKind::KnowledgeArticleVersion => "knowledge article version",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_suffix() {
        use ObjectKind as K;
        for (name, kind) in [
            ("Account", K::Standard),
            ("Invoice__c", K::Custom),
            ("Setting__mdt", K::CustomMetadata),
            ("Reading__b", K::BigObject),
            ("Order__x", K::External),
            ("Alert__e", K::PlatformEvent),
            ("AccountChangeEvent", K::ChangeEvent),
            ("Invoice__ChangeEvent", K::ChangeEvent),
            ("AccountHistory", K::History),
            ("Invoice__History", K::History),
            ("AccountShare", K::Share),
            ("Invoice__Share", K::Share),
            ("AccountFeed", K::Feed),
            ("Knowledge__kav", K::KnowledgeArticleVersion),
            // The standard object the `__kav` objects derive from, by its exact name only.
            ("KnowledgeArticleVersion", K::KnowledgeArticleVersion),
            ("KnowledgeArticleVersionHistory", K::History),
            // A bare suffix is a name, not a kind.
            ("History", K::Standard),
            ("Feed", K::Standard),
        ] {
            assert_eq!(ObjectKind::of(name), kind, "{name}");
        }
        assert!(K::BigObject.full_refresh_only() && K::BigObject.rest_only());
        assert!(!K::KnowledgeArticleVersion.full_refresh_only());
        assert!(K::KnowledgeArticleVersion.rest_only());
        assert!(!K::History.full_refresh_only() && !K::Custom.rest_only());
        assert_eq!(K::External.label(), "external object");
    }
}
