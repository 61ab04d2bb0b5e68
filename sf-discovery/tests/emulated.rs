#![allow(clippy::unwrap_used)]
//! Discovery against the emulated org: call counts by the org's request counter, and which
//! objects the user gets.

use fixtures::{EmulatedOrg, OrgConfig, Scale};
use sf_auth::{Credentials, LoginUrl, Secret, Session, SessionConfig};
use sf_discovery::{
    candidate_objects, describe_global, describe_streams, discover, DiscoveryOptions,
    StreamCriteria,
};

async fn session(org: &EmulatedOrg) -> Session {
    let login = org.login_info();
    let config = SessionConfig::new(
        LoginUrl::parse(&login.login_url).unwrap(),
        Credentials {
            client_id: login.client_id,
            client_secret: Secret::new(login.client_secret),
            refresh_token: Some(Secret::new(login.refresh_token)),
        },
    );
    Session::login(config).await.unwrap()
}

/// How many objects of a plain emulated org become streams.
async fn base_stream_count() -> usize {
    let org = EmulatedOrg::start(OrgConfig::new(11, Scale::Tiny))
        .await
        .unwrap();
    let session = session(&org).await;
    let catalog = discover(&session, &DiscoveryOptions::default())
        .await
        .unwrap();
    org.shutdown().await;
    catalog.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_object_org_is_discovered_in_forty_one_calls() {
    let base = base_stream_count().await;
    assert!(base > 0 && base < 1000, "{base}");
    let org =
        EmulatedOrg::start(OrgConfig::new(11, Scale::Tiny).extra_custom_objects(1000 - base, 1))
            .await
            .unwrap();
    let session = session(&org).await;
    let before = org.control().stats();
    let sent_before = session.request_count();
    let catalog = discover(&session, &DiscoveryOptions::default())
        .await
        .unwrap();
    let after = org.control().stats();
    assert_eq!(catalog.len(), 1000);
    assert!(catalog.warnings.is_empty(), "{:?}", catalog.warnings);
    // ⌈1000/25⌉ + 1 HTTP calls: one describeGlobal and 40 batches; no describe sent alone.
    assert_eq!(
        session.request_count() - sent_before,
        41,
        "sent by the session"
    );
    let (requests, requests_before) = (&after.requests, &before.requests);
    assert_eq!(
        requests.describe_global - requests_before.describe_global,
        1
    );
    assert_eq!(
        requests.composite_batch - requests_before.composite_batch,
        40
    );
    assert_eq!(
        requests.describe - requests_before.describe,
        1000,
        "describes inside the batches"
    );
    // The daily allowance charges every subrequest: 1,001 requests of it, not 41.
    assert_eq!(after.api_usage.used - before.api_usage.used, 1001);
    let custom = catalog
        .streams
        .iter()
        .filter(|s| s.name.starts_with("Custom_Object_"))
        .count();
    assert_eq!(custom, 1000 - base);
    let first = catalog.stream("Custom_Object_0001__c").unwrap();
    assert!(first.custom);
    assert_eq!(first.primary_key.as_deref(), Some("Id"));
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_the_user_cannot_query_do_not_appear() {
    let org = EmulatedOrg::start(OrgConfig::new(5, Scale::Tiny))
        .await
        .unwrap();
    let session = session(&org).await;
    let listed = describe_global(&session).await.unwrap();
    let not_queryable: Vec<&str> = listed
        .iter()
        .filter(|o| !o.queryable)
        .map(|o| o.name.as_str())
        .collect();
    assert!(
        not_queryable.contains(&"AccountChangeEvent"),
        "{not_queryable:?}"
    );
    let catalog = discover(&session, &DiscoveryOptions::default())
        .await
        .unwrap();
    for name in &not_queryable {
        assert!(catalog.stream(name).is_none(), "{name} is offered");
    }
    // An object the user cannot see at all is not even listed, nor offered.
    assert!(!listed.iter().any(|o| o.name == "Restricted_Data__c"));
    assert!(catalog.stream("Restricted_Data__c").is_none());
    assert!(catalog.stream("Invoice__c").is_some());
    assert_eq!(
        catalog.names().collect::<Vec<_>>(),
        candidate_objects(&listed, &StreamCriteria::all())
    );
    // Every object the org lists is either offered or excluded for a reason.
    for object in &listed {
        assert_eq!(
            catalog.stream(&object.name).is_some(),
            object.exclusion().is_none(),
            "{}",
            object.name
        );
    }
    // Asked for by name, a hidden object fails as not found, naming it.
    let hidden = vec!["Restricted_Data__c".to_string()];
    let err = describe_streams(&session, &hidden, &DiscoveryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.object(), Some("Restricted_Data__c"));
    // Asked for by name (as at read time), a non-queryable object is left out or fails.
    let wanted = vec!["Account".to_string(), "AccountChangeEvent".to_string()];
    let err = describe_streams(&session, &wanted, &DiscoveryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.object(), Some("AccountChangeEvent"));
    assert!(err.is_inaccessible());
    let skip = DiscoveryOptions {
        skip_inaccessible: true,
        ..Default::default()
    };
    let catalog = describe_streams(&session, &wanted, &skip).await.unwrap();
    assert_eq!(catalog.names().collect::<Vec<_>>(), ["Account"]);
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulated_standard_objects_carry_the_facts_the_sync_needs() {
    let org = EmulatedOrg::start(OrgConfig::new(3, Scale::Tiny))
        .await
        .unwrap();
    let session = session(&org).await;
    let catalog = discover(&session, &DiscoveryOptions::default())
        .await
        .unwrap();
    let account = catalog.stream("Account").unwrap();
    assert_eq!(account.cursor_field.as_deref(), Some("SystemModstamp"));
    assert!(account.has_is_deleted && account.supports_incremental);
    let unservable: Vec<&str> = account
        .bulk_unservable_fields()
        .map(|f| f.name.as_str())
        .collect();
    assert!(unservable.contains(&"BillingAddress"), "{unservable:?}");
    let attachment = catalog.stream("Attachment").unwrap();
    assert!(attachment
        .bulk_unservable_fields()
        .any(|f| f.name == "Body"));
    let invoice = catalog.stream("Invoice__c").unwrap();
    assert!(invoice.custom);
    assert!(invoice.formula_fields().count() >= 1);
    org.shutdown().await;
}
