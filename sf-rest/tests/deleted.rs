#![allow(clippy::unwrap_used)]
//! getDeleted (`RestReader::deleted`) against the emulated org: hard deletes and purged rows
//! that `queryAll` no longer returns, and the refusal of a window older than the delete log.

mod common;

use chrono::{Duration, TimeZone, Utc};
use fixtures::{EmulatedOrg, Mutation, OrgConfig, Scale};
use sf_auth::{Credentials, LoginUrl, RetryConfig, Secret, Session, SessionConfig};
use sf_rest::{DeletedQuery, ErrorKind, RestConfig, RestReader};

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
    // Its own kind: a caller reads the log's earliest date and asks from there.
    assert_eq!(
        refused.kind(),
        ErrorKind::ReplicationDateRefused,
        "{refused}"
    );
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

#[tokio::test]
async fn a_batch_answers_each_window_as_the_direct_call_does_for_one_api_call() {
    let start = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    let org = EmulatedOrg::start(OrgConfig::new(13, Scale::Tiny).clock_start(start))
        .await
        .unwrap();
    let ctl = org.control();
    ctl.advance_clock(3600);
    let accounts = ctl.mutate(Mutation::new("Account").hard_delete(2));
    let leads = ctl.mutate(Mutation::new("Lead").hard_delete(3));
    assert_eq!(
        (accounts.hard_deleted.len(), leads.hard_deleted.len()),
        (2, 3)
    );
    ctl.advance_clock(120);
    let reader = RestReader::new(login(&org).await, RestConfig::default()).unwrap();
    let now = ctl.now();
    let window = |object: &str, from| DeletedQuery {
        object: object.to_string(),
        start: from,
        end: now,
    };
    let queries = [
        window("Account", start + Duration::minutes(30)),
        window("Lead", start + Duration::minutes(30)),
        // Older than the log keeps: refused, alone.
        window("Contact", now - Duration::days(20)),
    ];
    let used = ctl.stats().api_usage.used;
    let answers = reader.deleted_batch(&queries).await.unwrap();
    assert_eq!(ctl.stats().api_usage.used - used, 1, "one API call for all");
    assert_eq!(ctl.stats().requests.composite, 1);
    assert_eq!(answers.len(), 3);
    for (answer, query) in answers.iter().zip(&queries).take(2) {
        let direct = reader
            .deleted(&query.object, query.start, query.end)
            .await
            .unwrap();
        assert_eq!(answer.as_ref().unwrap(), &direct, "{}", query.object);
    }
    let ids = |i: usize| -> Vec<String> {
        let mut ids: Vec<String> = answers[i]
            .as_ref()
            .unwrap()
            .records
            .iter()
            .map(|r| r.id.clone())
            .collect();
        ids.sort_unstable();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort_unstable();
        v
    };
    assert_eq!(ids(0), sorted(accounts.hard_deleted.clone()));
    assert_eq!(ids(1), sorted(leads.hard_deleted.clone()));
    let refused = answers[2].as_ref().unwrap_err();
    assert!(
        refused.to_string().contains("INVALID_REPLICATION_DATE"),
        "{refused}"
    );
    assert!(refused.to_string().contains("Contact"), "{refused}");

    // An answer larger than the bound fails the batch, naming the bound; the same batch under a
    // bound it fits answers as before.
    let small = reader
        .deleted_batch_within(&queries, 200)
        .await
        .unwrap_err();
    assert!(
        small.to_string().contains("larger than 200 bytes"),
        "{small}"
    );
    let roomy = reader
        .deleted_batch_within(&queries, 1 << 20)
        .await
        .unwrap();
    assert_eq!(roomy.len(), 3);
    assert_eq!(roomy[0].as_ref().unwrap(), answers[0].as_ref().unwrap());

    // Bad input is refused before anything is sent.
    let before = ctl.stats().requests.composite;
    let too_many: Vec<DeletedQuery> = (0..26).map(|_| window("Account", start)).collect();
    for bad in [
        Vec::new(),
        too_many,
        vec![window("Account; DROP", start)],
        vec![window("Account", now)],
    ] {
        let err = reader.deleted_batch(&bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    }
    assert_eq!(ctl.stats().requests.composite, before);
}

/// Composite answers that cannot be matched to the windows asked: nothing is known, the whole
/// batch is an error (each window may then be asked alone), and nothing panics.
#[tokio::test]
async fn an_answer_not_matching_the_windows_asked_is_an_error_for_the_batch() {
    let start = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    let ok = r#"{"deletedRecords":[],"earliestDateAvailable":"2024-05-20T00:00:00.000+0000","latestDateCovered":"2024-06-01T01:00:00.000+0000"}"#;
    let sub = |reference: &str| {
        format!(
            r#"{{"body":{ok},"httpHeaders":{{}},"httpStatusCode":200,"referenceId":"{reference}"}}"#
        )
    };
    let answers = [
        format!(r#"{{"compositeResponse":[{}]}}"#, sub("g0")),
        format!(r#"{{"compositeResponse":[{},{}]}}"#, sub("g0"), sub("g0")),
        format!(r#"{{"compositeResponse":[{},{}]}}"#, sub("g0"), sub("x1")),
        r#"{"compositeResponse":"#.to_string(),
        "<html>maintenance</html>".to_string(),
    ];
    for body in answers {
        let (mut server, session) = common::server().await;
        server
            .mock("POST", mockito::Matcher::Regex("/composite$".into()))
            .with_header("content-type", "application/json")
            .with_body(&body)
            .create_async()
            .await;
        let reader = RestReader::new(session, RestConfig::default()).unwrap();
        let queries: Vec<DeletedQuery> = ["Account", "Lead"]
            .into_iter()
            .map(|object| DeletedQuery {
                object: object.to_string(),
                start,
                end: start + Duration::hours(1),
            })
            .collect();
        let err = reader.deleted_batch(&queries).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedBody, "{body}: {err}");
    }
}
