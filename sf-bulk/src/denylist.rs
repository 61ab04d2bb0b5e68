//! Objects Bulk API 2.0 does not serve: the sync engine reads them through REST.

/// Objects Bulk API 2.0 refuses to query, sorted by name: Airbyte source-salesforce's
/// `UNSUPPORTED_BULK_API_SALESFORCE_OBJECTS` (47 distinct names; it lists `ContractStatus` twice),
/// which includes the twenty objects its documentation names.
pub const BULK_UNSUPPORTED_OBJECTS: [&str; 47] = [
    "AcceptedEventRelation",
    "AccountBrandShare",
    "AccountFeed",
    "AggregateResult",
    "AssetFeed",
    "AssetTokenEvent",
    "AttachedContentDocument",
    "AttachedContentNote",
    "Attachment",
    "CaseStatus",
    "CaseTeamMember",
    "CaseTeamRole",
    "CaseTeamTemplate",
    "CaseTeamTemplateMember",
    "CaseTeamTemplateRecord",
    "ChannelProgramLevelShare",
    "CombinedAttachment",
    "ContentFolderItem",
    "ContractStatus",
    "DeclinedEventRelation",
    "EventWhoRelation",
    "FieldSecurityClassification",
    "FolderedContentDocument",
    "KnowledgeArticle",
    "KnowledgeArticleVersion",
    "KnowledgeArticleVersionHistory",
    "KnowledgeArticleViewStat",
    "KnowledgeArticleVoteStat",
    "LookedUpFromActivity",
    "Name",
    "NoteAndAttachment",
    "OpenActivity",
    "OrderStatus",
    "OwnedContentDocument",
    "PartnerRole",
    "QuoteTemplateRichTextData",
    "RecentlyViewed",
    "ServiceAppointmentStatus",
    "ShiftStatus",
    "SolutionStatus",
    "TaskPriority",
    "TaskStatus",
    "TaskWhoRelation",
    "UndecidedEventRelation",
    "UserRecordAccess",
    "WorkOrderLineItemStatus",
    "WorkOrderStatus",
];

/// True when Bulk API 2.0 cannot serve `object` (API names compare case-insensitively, as
/// Salesforce compares them).
pub fn is_bulk_unsupported(object: &str) -> bool {
    BULK_UNSUPPORTED_OBJECTS
        .iter()
        .any(|name| name.eq_ignore_ascii_case(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_distinct() {
        assert!(BULK_UNSUPPORTED_OBJECTS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_documented_twenty_are_denied() {
        let documented = "AcceptedEventRelation Attachment CaseStatus ContractStatus \
            DeclinedEventRelation FieldSecurityClassification KnowledgeArticle \
            KnowledgeArticleVersion KnowledgeArticleVersionHistory KnowledgeArticleViewStat \
            KnowledgeArticleVoteStat OrderStatus PartnerRole RecentlyViewed \
            ServiceAppointmentStatus ShiftStatus SolutionStatus TaskPriority TaskStatus \
            UndecidedEventRelation";
        assert_eq!(documented.split_whitespace().count(), 20);
        for name in documented.split_whitespace() {
            assert!(is_bulk_unsupported(name), "{name}");
        }
    }

    #[test]
    fn lookups_ignore_case_and_reject_others() {
        assert!(is_bulk_unsupported("casestatus"));
        assert!(is_bulk_unsupported("ASSETFEED"));
        for name in [
            "Account",
            "Contact",
            "Task",
            "Case",
            "AccountFeedX",
            "",
            "Attachments",
        ] {
            assert!(!is_bulk_unsupported(name), "{name}");
        }
    }
}
