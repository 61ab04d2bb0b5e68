use super::*;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn list(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn report_with(used: i64, max: i64) -> AccessReport {
    AccessReport {
        user: None,
        org: None,
        api_version: "62.0".to_string(),
        allowance: Some(Allowance { used, max }),
        readable_objects: 3,
        selected_objects: None,
        permissions: None,
        warnings: Vec::new(),
    }
}

#[test]
fn a_usage_past_the_api_budget_is_a_warning_naming_the_key() {
    let mut report = report_with(7, 1_000);
    report.note_api_budget(Some(0.5));
    report.note_api_budget(None);
    assert_eq!(report.warnings, []);
    report.note_api_budget(Some(0.0015));
    assert_eq!(
        report.warnings,
        [AccessWarning::AllowanceUsedUp {
            used: 7,
            max: 1_000,
            budget: Some((0.0015, 1)),
        }]
    );
    let text = report.warnings[0].to_string();
    assert!(
        text.starts_with(
            "api_budget 0.0015 stops requests once the org's usage reaches 1 of its 1000"
        ),
        "{text}"
    );
    assert!(
        text.contains("7 are used") && text.contains("Fix: raise `api_budget`"),
        "{text}"
    );
    // At the allocation itself the check's own warning says it; the budget adds none.
    let mut report = report_with(1_000, 1_000);
    report.note_api_budget(Some(0.5));
    assert_eq!(report.warnings, []);
    // Without an allowance read, nothing is claimed.
    let mut report = report_with(0, 0);
    report.allowance = None;
    report.note_api_budget(Some(0.5));
    assert_eq!(report.warnings, []);
    let limit = AccessWarning::AllowanceUsedUp {
        used: 15_100,
        max: 15_000,
        budget: None,
    }
    .to_string();
    assert!(
        limit.starts_with("the org has used 15100 of its 15000 daily API requests"),
        "{limit}"
    );
}

#[test]
fn warnings_name_the_objects_and_the_fix() {
    let readable = set(&["Account", "Contact", "User", "Lead"]);
    let restricted = Permissions {
        view_all_records: set(&["Contact"]),
        ..Permissions::default()
    };
    let selected = list(&["Account", "Contact", "User", "Gone__c"]);
    let found = warnings(&selected, &readable, &BTreeSet::new(), Some(&restricted));
    assert_eq!(
        found,
        [
            AccessWarning::RowsHiddenBySharing {
                objects: list(&["Account"])
            },
            AccessWarning::NeedsViewAllUsers {
                streams: list(&["User"])
            },
            AccessWarning::NotReadable {
                streams: list(&["Gone__c"])
            },
        ]
    );
    assert!(found[0].to_string().contains("(Account)"));
    assert!(found[0]
        .to_string()
        .contains("Fix: grant \"View All Data\""));
    assert!(found[1]
        .to_string()
        .starts_with("User needs \"View All Users\""));
    let admin = Permissions {
        view_all_data: true,
        view_all_users: true,
        ..Permissions::default()
    };
    assert_eq!(
        warnings(
            &list(&["Account", "User"]),
            &readable,
            &BTreeSet::new(),
            Some(&admin)
        ),
        []
    );
    // Unknown permissions: only what is certain.
    assert_eq!(
        warnings(&list(&["Account"]), &readable, &BTreeSet::new(), None),
        []
    );
}

#[test]
fn long_lists_are_cut_and_counted() {
    let many: Vec<String> = (0..15).map(|i| format!("O{i}__c")).collect();
    let text = AccessWarning::RowsHiddenBySharing { objects: many }.to_string();
    assert!(text.contains("on 15 objects ("));
    assert!(text.contains("O11__c and 3 more"));
    assert!(!text.contains("O12__c"));
}

#[test]
fn ids_are_checked_before_they_reach_soql() {
    assert!(is_id("005000000000001"));
    assert!(is_id("005000000000001AAA"));
    assert!(!is_id("005' OR Id != '"));
    assert!(!is_id("005"));
}

#[test]
fn unknown_permissions_blame_a_permission_only_when_access_was_refused() {
    let refused = AccessWarning::PermissionsUnknown {
        reason: "INSUFFICIENT_ACCESS".into(),
        refused: true,
    };
    assert!(refused
        .to_string()
        .contains("Fix: grant \"View Setup and Configuration\""));
    let passing = AccessWarning::PermissionsUnknown {
        reason: "the daily API limit is reached".into(),
        refused: false,
    };
    let text = passing.to_string();
    assert!(text.contains("Fix: run the check again"), "{text}");
    assert!(!text.contains("View Setup"), "{text}");
}
