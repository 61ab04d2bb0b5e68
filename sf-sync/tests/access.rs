//! `check_access` against the emulated org: the restricted user really reads fewer rows, and the
//! check says so before the sync; the admin gets no warning.
#![allow(clippy::unwrap_used)]

mod common;

use common::{allow_calls, configure, connect, login, org_config, run_fresh};
use serde_json::json;
use sf_sync::{check_access, AccessWarning, SyncConfig};

fn org() -> fixtures::OrgConfig {
    org_config(61)
        .rows("User", 6)
        .rows("Account", 240)
        .rows("Contact", 120)
        .rows("Lead", 90)
}

#[tokio::test]
async fn the_admin_sees_everything_and_gets_no_warning() {
    let c = connect(org(), json!({})).await;
    let catalog = configure(
        &c.catalog,
        &["Account", "User", "ActiveProfileMetric"],
        None,
    );
    let before = c.org.control().stats().api_usage.used;
    let report = check_access(&c.session, Some(&catalog)).await.unwrap();
    let stats = c.org.control().stats();
    // describeGlobal, User, Organization, PermissionSetAssignment, PermissionSet, limits (no
    // ObjectPermissions: View All Data covers every object).
    assert_eq!(stats.api_usage.used - before, 6);
    assert_eq!(report.warnings, []);
    let user = report.user.clone().unwrap();
    assert_eq!(user.id.len(), 15);
    assert!(user.username.is_some());
    let org = report.org.clone().unwrap();
    assert_eq!(org.edition.as_deref(), Some("Enterprise Edition"));
    assert_eq!(org.id[..15], c.session.org_id().unwrap());
    let permissions = report.permissions.clone().unwrap();
    assert!(permissions.view_all_data && permissions.view_all_users);
    assert_eq!(report.api_version, "62.0");
    let listed = sf_discovery::describe_global(&c.session).await.unwrap();
    assert_eq!(
        report.readable_objects,
        listed.iter().filter(|o| o.queryable).count()
    );
    // The allowance is read last: every call of the check is in it.
    let allowance = report.allowance.unwrap();
    assert_eq!(allowance.used as u64, stats.api_usage.used);
    assert_eq!(allowance.max as u64, stats.api_usage.max);
    assert!(
        report.message().ends_with("No access problems found."),
        "{}",
        report.message()
    );
}

#[tokio::test]
async fn the_restricted_user_reads_fewer_rows_and_the_check_says_so_first() {
    let c = connect(org(), json!({})).await;
    let names = ["Account", "Contact", "User", "ActiveProfileMetric"];
    let mut catalog = configure(&c.catalog, &names, None);
    let (admin_result, admin_sink) = run_fresh(&c.session, &c.config, &catalog).await;
    admin_result.unwrap();

    // The same connected app, the restricted user's refresh token.
    let restricted = c.org.restricted_login_info();
    let config = SyncConfig::from_value(
        &json!({
            "client_id": restricted.client_id, "client_secret": restricted.client_secret,
            "refresh_token": restricted.refresh_token, "login_url": restricted.login_url,
            "start_date": "2021-01-01",
        }),
        c.org.control().now(),
    )
    .unwrap()
    .config;
    let session = login(&config).await;

    // Before the sync: a catalog stream the user cannot read is named too.
    let with_gone = {
        let mut value = serde_json::json!({"streams": []});
        for s in &catalog.streams {
            value["streams"].as_array_mut().unwrap().push(json!({
                "stream": {"name": s.name, "json_schema": {}}, "sync_mode": "full_refresh"}));
        }
        value["streams"].as_array_mut().unwrap().push(json!({
            "stream": {"name": "Restricted_Data__c", "json_schema": {}}, "sync_mode": "full_refresh"}));
        sf_sync::ConfiguredCatalog::from_value(&value).unwrap()
    };
    let report = check_access(&session, Some(&with_gone)).await.unwrap();
    assert_eq!(
        report.user.as_ref().unwrap().id,
        c.org.control().restricted_user_id()[..15]
    );
    let permissions = report.permissions.clone().unwrap();
    assert!(!permissions.view_all_data && !permissions.view_all_users);
    assert!(permissions.view_all_records.contains("Contact"));
    assert_eq!(
        report.warnings,
        [
            AccessWarning::RowsHiddenBySharing {
                objects: vec!["Account".to_string()]
            },
            AccessWarning::NeedsViewAllUsers {
                streams: vec!["User".to_string(), "ActiveProfileMetric".to_string()]
            },
            AccessWarning::NotReadable {
                streams: vec!["Restricted_Data__c".to_string()]
            },
        ]
    );
    let message = report.message();
    assert!(message.contains("3 warnings: "), "{message}");
    assert!(message.contains("rows that sharing rules hide from it will not be synced"));

    // The check from no catalog names every readable object without View All Records.
    let all = check_access(&session, None).await.unwrap();
    match &all.warnings[0] {
        AccessWarning::RowsHiddenBySharing { objects } => {
            assert!(objects.contains(&"Account".to_string()));
            assert!(objects.contains(&"Lead".to_string()));
            assert!(!objects.contains(&"Contact".to_string()));
        }
        other => panic!("{other:?}"),
    }

    // The sync: fewer Account rows, every Contact row, its own User row, no metrics.
    catalog.streams.retain(|s| s.name != "Restricted_Data__c");
    let (result, sink) = run_fresh(&session, &config, &catalog).await;
    result.unwrap();
    let owners = c.org.control().restricted_owner_ids();
    let accounts = sink.records("Account");
    let all_accounts = admin_sink.records("Account");
    assert!(!accounts.is_empty() && accounts.len() < all_accounts.len());
    let expected = all_accounts
        .iter()
        .filter(|r| {
            let owner = r.to_json()["OwnerId"].as_str().unwrap().to_string();
            owners.iter().any(|o| o == &owner)
        })
        .count();
    assert_eq!(accounts.len(), expected);
    assert_eq!(
        sink.records("Contact").len(),
        admin_sink.records("Contact").len()
    );
    assert_eq!(sink.records("User").len(), 1);
    assert!(!admin_sink.records("ActiveProfileMetric").is_empty());
    assert_eq!(sink.records("ActiveProfileMetric").len(), 0);
}

/// The daily limit reached while the check reads the user's permissions: the warning says to
/// run the check again, not to grant a permission the user may well have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_unread_at_the_limit_are_not_blamed_on_a_permission() {
    let c = connect(org_config(95), json!({})).await;
    let ctl = c.org.control();
    let mut seen = 0;
    for calls in 1..8 {
        allow_calls(&ctl, calls);
        let Ok(report) = sf_sync::check_access(&c.session, None).await else {
            continue;
        };
        for warning in &report.warnings {
            if let AccessWarning::PermissionsUnknown { refused, .. } = warning {
                seen += 1;
                assert!(!refused, "{warning}");
                assert!(
                    warning.to_string().contains("run the check again"),
                    "{warning}"
                );
            }
        }
    }
    assert!(seen > 0, "the limit never fell on the permission queries");
}

/// The check counts and filters what discovery offers, not every queryable object: on an org
/// with objects Salesforce serves only with a filter (Vote, FieldDefinition) or lists as
/// deprecated (Scontrol), the readable count is the catalog's, and criteria that keep only
/// such an object keep nothing, which the check says.
#[tokio::test]
async fn the_check_counts_what_discovery_offers() {
    let c = connect(org().real_org_objects(true), json!({})).await;
    let listed = sf_discovery::describe_global(&c.session).await.unwrap();
    let left_out: Vec<&str> = listed
        .iter()
        .filter(|o| o.queryable && o.exclusion().is_some())
        .map(|o| o.name.as_str())
        .collect();
    assert!(left_out.contains(&"Vote"), "{left_out:?}");
    let offered = c
        .catalog
        .streams
        .iter()
        .filter(|s| s.name != sf_discovery::DescribeStream::NAME)
        .count();
    let report = check_access(&c.session, None).await.unwrap();
    assert_eq!(report.readable_objects, offered);
    let vote =
        sf_discovery::StreamCriteria::from_json(&json!([{"criteria": "exacts", "value": "Vote"}]))
            .unwrap();
    let report = sf_sync::check_access_with(&c.session, None, &vote)
        .await
        .unwrap();
    assert_eq!(report.selected_objects, Some(0));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| matches!(w, AccessWarning::CriteriaKeepNothing { criteria: 1 })),
        "{:?}",
        report.warnings
    );
    // A catalog naming such an object (from an older discovery, say) is not told the user
    // cannot read it: the user can query it.
    let catalog = sf_sync::ConfiguredCatalog::from_value(&json!({"streams": [
        {"stream": {"name": "Vote", "json_schema": {}}, "sync_mode": "full_refresh"},
        {"stream": {"name": "Account", "json_schema": {}}, "sync_mode": "full_refresh"},
    ]}))
    .unwrap();
    let report = check_access(&c.session, Some(&catalog)).await.unwrap();
    assert_eq!(report.warnings, [], "{:?}", report.warnings);
    c.org.shutdown().await;
}

/// Objects without record-level sharing (custom metadata types, big objects, external objects)
/// are not among those whose rows sharing may hide: the restricted user's check names Account,
/// not them.
#[tokio::test]
async fn objects_without_sharing_are_not_said_to_hide_rows() {
    let c = connect(org().real_org_objects(true), json!({})).await;
    let restricted = c.org.restricted_login_info();
    let config = SyncConfig::from_value(
        &json!({
            "client_id": restricted.client_id, "client_secret": restricted.client_secret,
            "refresh_token": restricted.refresh_token, "login_url": restricted.login_url,
        }),
        c.org.control().now(),
    )
    .unwrap()
    .config;
    let session = login(&config).await;
    let unshared = ["Feature_Flag__mdt", "Archived_Event__b", "Legacy_Order__x"];
    let report = check_access(&session, None).await.unwrap();
    let Some(AccessWarning::RowsHiddenBySharing { objects }) = report
        .warnings
        .iter()
        .find(|w| matches!(w, AccessWarning::RowsHiddenBySharing { .. }))
    else {
        panic!("{:?}", report.warnings)
    };
    assert!(objects.contains(&"Account".to_string()), "{objects:?}");
    for name in unshared {
        assert!(
            c.catalog.stream(name).is_some(),
            "{name} is offered, so it is checked"
        );
        assert!(!objects.contains(&name.to_string()), "{name}: {objects:?}");
    }
    c.org.shutdown().await;
}
