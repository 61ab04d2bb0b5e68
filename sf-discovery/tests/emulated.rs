#![allow(clippy::unwrap_used)]
//! Discovery against the emulated org: call counts by the org's request counter, and which
//! objects the user gets.

use fixtures::{EmulatedOrg, Faults, OrgConfig, Scale};
use sf_auth::{Credentials, ErrorKind, LoginUrl, Secret, Session, SessionConfig};
use sf_discovery::{
    candidate_objects, describe_global, describe_streams, discover, DiscoveryOptions,
    DiscoveryWarning, Error, StreamCriteria,
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
    // ⌈1000/25⌉ + 1 HTTP calls: one describeGlobal and 40 composite calls; no describe sent alone.
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
    assert_eq!(requests.composite - requests_before.composite, 40);
    assert_eq!(
        requests.describe - requests_before.describe,
        1000,
        "describes inside the composite calls"
    );
    assert_eq!(requests.composite_batch, requests_before.composite_batch);
    // The daily allowance counts a composite call once: 41 API calls, not 1,001.
    assert_eq!(after.api_usage.used - before.api_usage.used, 41);
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

/// An org with at least 60 objects to describe, a session on it, and 60 of its streams' names.
async fn sixty_objects(seed: u64) -> (EmulatedOrg, Session, Vec<String>) {
    let org = EmulatedOrg::start(OrgConfig::new(seed, Scale::Tiny).extra_custom_objects(60, 1))
        .await
        .unwrap();
    let session = session(&org).await;
    let listed = describe_global(&session).await.unwrap();
    let names: Vec<String> = candidate_objects(&listed, &StreamCriteria::all())
        .into_iter()
        .take(60)
        .collect();
    assert_eq!(names.len(), 60);
    (org, session, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_describes_cost_three_api_calls_by_the_orgs_count() {
    let (org, session, names) = sixty_objects(21).await;
    let before = org.control().stats();
    let sent_before = session.request_count();
    let catalog = describe_streams(&session, &names, &DiscoveryOptions::default())
        .await
        .unwrap();
    let after = org.control().stats();
    assert_eq!(catalog.len(), 60);
    // 25 + 25 + 10 describes in three composite calls: three API calls by the org's count
    // (DailyApiRequests), three HTTP requests by the session's.
    assert_eq!(after.api_usage.used - before.api_usage.used, 3);
    assert_eq!(session.request_count() - sent_before, 3);
    assert_eq!(after.requests.composite - before.requests.composite, 3);
    assert_eq!(after.requests.describe - before.requests.describe, 60);
    assert_eq!(
        after.requests.composite_batch,
        before.requests.composite_batch
    );
    // The session reads the same figure from Sforce-Limit-Info.
    assert_eq!(
        session.api_usage().map(|u| u.used),
        Some(after.api_usage.used)
    );
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_object_fails_only_its_own_describe() {
    let (org, session, mut names) = sixty_objects(22).await;
    // The 30th describe, in the second call, names an object the org does not have.
    names[29] = "Gone__c".to_string();
    let before = org.control().stats();
    let options = DiscoveryOptions {
        skip_inaccessible: true,
        describe_retries: 0,
        ..Default::default()
    };
    let catalog = describe_streams(&session, &names, &options).await.unwrap();
    let after = org.control().stats();
    assert_eq!(catalog.len(), 59);
    assert!(catalog.stream("Gone__c").is_none());
    for name in names.iter().filter(|n| *n != "Gone__c") {
        assert!(catalog.stream(name).is_some(), "{name}");
    }
    assert!(matches!(
        &catalog.warnings[..],
        [DiscoveryWarning::ObjectSkipped { object, error_code: Some(code), .. }]
            if object == "Gone__c" && code == "NOT_FOUND"
    ));
    // Still three calls: the failed subrequest did not stop the others of its call.
    assert_eq!(after.api_usage.used - before.api_usage.used, 3);
    assert_eq!(after.requests.describe - before.requests.describe, 60);

    // Without skipping, the error names the object; a missing object is not retried alone.
    // One call at a time: the third call is never sent, as the error comes first.
    let before = org.control().stats();
    let one_at_a_time = DiscoveryOptions {
        describe_batches_in_flight: 1,
        ..Default::default()
    };
    let err = describe_streams(&session, &names, &one_at_a_time)
        .await
        .unwrap_err();
    let after = org.control().stats();
    match &err {
        Error::Describe {
            object, attempts, ..
        } => assert_eq!((object.as_str(), *attempts), ("Gone__c", 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.error_code(), Some("NOT_FOUND"));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Two composite calls, and no describe alone.
    assert_eq!(after.api_usage.used - before.api_usage.used, 2);
    assert_eq!(after.requests.composite - before.requests.composite, 2);
    assert_eq!(after.requests.describe - before.requests.describe, 50);
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_refuses_a_composite_call_as_a_whole() {
    let (org, session, names) = sixty_objects(23).await;
    let control = org.control();
    // One API call left: the first composite call gets it, the second is refused whole.
    let used = control.stats().api_usage.used;
    control.set_faults(Faults {
        daily_api_limit: used + 1,
        ..Faults::default()
    });
    let before = control.stats();
    let options = DiscoveryOptions {
        describe_batches_in_flight: 1,
        describe_retries: 3,
        ..Default::default()
    };
    let err = describe_streams(&session, &names, &options)
        .await
        .unwrap_err();
    let after = control.stats();
    assert!(matches!(err, Error::BatchRequest { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::DailyLimitExceeded);
    assert_eq!(err.error_code(), Some("REQUEST_LIMIT_EXCEEDED"));
    let text = err.to_string();
    assert!(text.contains("and 23 more (composite) failed"), "{text}");
    assert!(text.contains("403 REQUEST_LIMIT_EXCEEDED"), "{text}");
    // The first call's 25 describes ran; the refused call ran none, counted nothing, and
    // nothing was retried alone.
    assert_eq!(after.api_usage.used, used + 1);
    assert_eq!(after.requests.composite - before.requests.composite, 1);
    assert_eq!(after.requests.describe - before.requests.describe, 25);
    org.shutdown().await;
}
