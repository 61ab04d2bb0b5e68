#![allow(clippy::unwrap_used)]
//! getDeleted (`RestReader::deleted`) against the emulated org: hard deletes and purged rows
//! that `queryAll` no longer returns, and the refusal of a window older than the delete log.

use chrono::{Duration, TimeZone, Utc};
use fixtures::{EmulatedOrg, Mutation, OrgConfig, Scale};
use sf_auth::{Credentials, LoginUrl, RetryConfig, Secret, Session, SessionConfig};
use sf_rest::{ErrorKind, RestConfig, RestReader};

async fn login(org: &EmulatedOrg) -> Session {
    let info = org.login_info();
    let mut config = SessionConfig::new(
        LoginUrl::parse(&info.login_url).unwrap(),
        Credentials {
            client_id: info.client_id,
            client_secret: Secret::new(info.client_secret),
            refresh_token: Some(Secret::new(info.refresh_token)),
        },
    );
    config.retry = RetryConfig::immediate();
    Session::login(config).await.unwrap()
}

#[tokio::test]
async fn lists_hard_deletes_and_purges_and_refuses_a_window_past_the_log() {
    let start = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    let org = EmulatedOrg::start(OrgConfig::new(12, Scale::Tiny).clock_start(start))
        .await
        .unwrap();
    let ctl = org.control();
    ctl.advance_clock(3600);
    let hard = ctl.mutate(Mutation::new("Account").hard_delete(2));
    let soft = ctl.mutate(Mutation::new("Account").delete(1));
    let purged = ctl.mutate(Mutation::new("Account").empty_recycle_bin(true));
    assert!(purged.purged.contains(&soft.deleted[0]));
    ctl.advance_clock(120);
    let reader = RestReader::new(login(&org).await, RestConfig::default()).unwrap();
    let now = ctl.now();

    let got = reader
        .deleted("Account", start + Duration::minutes(30), now)
        .await
        .unwrap();
    let mut ids: Vec<&str> = got.records.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = hard
        .hard_deleted
        .iter()
        .chain(&soft.deleted)
        .map(String::as_str)
        .collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    assert!(got
        .records
        .iter()
        .all(|r| r.deleted_date == start + Duration::hours(1)));
    assert_eq!(got.earliest_date_available, Some(now - Duration::days(15)));
    assert_eq!(got.latest_date_covered, Some(now));

    let refused = reader
        .deleted("Account", now - Duration::days(20), now)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Other, "{refused}");
    assert!(
        refused.to_string().contains("INVALID_REPLICATION_DATE"),
        "{refused}"
    );
    let bad = reader
        .deleted("Account; DROP", start, now)
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidRequest);
    assert_eq!(org.control().stats().requests.get_deleted, 2);
}
