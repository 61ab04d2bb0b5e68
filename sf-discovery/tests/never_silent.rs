#![allow(clippy::unwrap_used)]
//! Discovery is never silent: every object describeGlobal lists becomes a stream or is left out
//! with a reason, and a production-sized org is discovered within ⌈N/25⌉ + 1 calls after login.

use std::collections::BTreeSet;

use fixtures::{EmulatedOrg, OrgConfig, Scale};
use sf_auth::{Credentials, LoginUrl, Secret, Session, SessionConfig};
use sf_discovery::{
    describe_global, discover, DiscoveryOptions, DiscoveryWarning, Exclusion, ObjectKind,
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

/// Discovers `org` with inaccessible objects skipped (as `sfconnect discover` does) and checks
/// that each listed object is offered, left out with a reason, or skipped with a warning, once;
/// returns the catalog and the API calls discovery cost after login.
async fn discover_all(org: &EmulatedOrg) -> (sf_discovery::Catalog, u64, usize) {
    let session = session(org).await;
    let listed = describe_global(&session).await.unwrap();
    let before = session.request_count();
    let options = DiscoveryOptions {
        skip_inaccessible: true,
        ..DiscoveryOptions::default()
    };
    let catalog = discover(&session, &options).await.unwrap();
    let calls = session.request_count() - before;
    let offered: BTreeSet<&str> = catalog.names().collect();
    let excluded: BTreeSet<&str> = catalog.excluded.iter().map(|e| e.object.as_str()).collect();
    let skipped: BTreeSet<&str> = catalog
        .warnings
        .iter()
        .filter_map(|w| match w {
            DiscoveryWarning::ObjectSkipped { object, .. } => Some(object.as_str()),
            _ => None,
        })
        .collect();
    for object in &listed {
        let name = object.name.as_str();
        let places = [&offered, &excluded, &skipped]
            .iter()
            .filter(|set| set.contains(name))
            .count();
        assert_eq!(places, 1, "{name}: offered, left out or skipped, once");
    }
    let described = listed.len() - excluded.len();
    (catalog, calls, described)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_object_is_offered_or_left_out_with_a_reason() {
    let org = EmulatedOrg::start(OrgConfig::new(21, Scale::Tiny))
        .await
        .unwrap();
    let (catalog, _, _) = discover_all(&org).await;
    assert!(!catalog.excluded.is_empty());
    for excluded in &catalog.excluded {
        let line = excluded.to_string();
        assert!(
            line.starts_with(&format!("`{}` is left out: ", excluded.object)),
            "{line}"
        );
        assert!(line.len() > excluded.object.len() + 20, "{line}");
        // Events are named as events, not merely as not queryable.
        match ObjectKind::of(&excluded.object) {
            ObjectKind::ChangeEvent => assert_eq!(excluded.reason, Exclusion::ChangeEvent),
            ObjectKind::PlatformEvent => assert_eq!(excluded.reason, Exclusion::PlatformEvent),
            _ => {}
        }
    }
    // Offered streams of kinds read whole are full refresh only.
    for stream in &catalog.streams {
        if ObjectKind::of(&stream.name).full_refresh_only() {
            assert!(!stream.supports_incremental, "{}", stream.name);
        }
    }
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_sized_org_is_discovered_within_n_over_25_plus_one_calls() {
    let org = EmulatedOrg::start(OrgConfig::new(22, Scale::Tiny).extra_custom_objects(1550, 0))
        .await
        .unwrap();
    let (catalog, calls, described) = discover_all(&org).await;
    assert!(described >= 1550, "{described}");
    // describeGlobal once, then one composite call per 25 described objects.
    let bound = described.div_ceil(25) as u64 + 1;
    assert!(
        calls <= bound,
        "{calls} calls for {described} objects (bound {bound})"
    );
    assert!(catalog.len() >= 1550);
    org.shutdown().await;
}
