#![allow(clippy::unwrap_used)]
//! The byte budget of parallel pages: what it lets through, deterministically, and the bytes
//! really held while a slow reader takes a job's pages from the emulated org.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;

use super::budget::{head_share, Budget};
use super::Pages;
use crate::{BulkClient, BulkConfig, Operation};

#[test]
fn the_head_share_is_a_quarter_at_most_one_mib_and_never_more_than_the_whole() {
    assert_eq!(head_share(1), 1);
    assert_eq!(head_share(3), 1);
    assert_eq!(head_share(1024), 256);
    assert_eq!(head_share(4 << 20), 1 << 20);
    assert_eq!(head_share(16 << 20), 1 << 20);
    assert_eq!(Budget::new(1024).piece(), 256);
    assert_eq!(Budget::new(16 << 20).piece(), 1 << 20);
    assert_eq!(Budget::new(1).piece(), 1);
}

#[tokio::test]
async fn pages_ahead_wait_once_their_share_is_spent_and_the_head_never_waits_on_them() {
    // 1,000 bytes: 250 for the page being emitted (page 0), 750 for the pages ahead.
    let budget = Budget::new(1000);
    let (head, rx) = watch::channel(0u64);
    let (mut ahead_1, mut ahead_2, mut at_head) = (rx.clone(), rx.clone(), rx.clone());
    let a = budget
        .hold(250, 1, &mut ahead_1)
        .now_or_never()
        .unwrap()
        .unwrap();
    let b = budget
        .hold(250, 2, &mut ahead_2)
        .now_or_never()
        .unwrap()
        .unwrap();
    let c = budget
        .hold(250, 1, &mut ahead_1)
        .now_or_never()
        .unwrap()
        .unwrap();
    assert_eq!(budget.held(), 750);
    // The pages ahead have spent their share: the next piece waits...
    assert!(budget.hold(1, 2, &mut ahead_2).now_or_never().is_none());
    // ... while the page being emitted still gets its own, and then waits on itself only.
    let h = budget
        .hold(250, 0, &mut at_head)
        .now_or_never()
        .unwrap()
        .unwrap();
    assert_eq!(budget.held(), 1000);
    assert!(budget.hold(1, 0, &mut at_head).now_or_never().is_none());
    // Decoding a piece gives its bytes back.
    drop(h);
    assert_eq!(budget.held(), 750);
    let h = budget
        .hold(100, 0, &mut at_head)
        .now_or_never()
        .unwrap()
        .unwrap();
    drop(a);
    let d = budget
        .hold(200, 2, &mut ahead_2)
        .now_or_never()
        .unwrap()
        .unwrap();
    assert_eq!(budget.held(), 800);
    // A page waiting for the ahead share goes on from the head's once its turn comes.
    let waiting = tokio::spawn({
        let budget = Arc::clone(&budget);
        async move {
            let held = budget.hold(100, 2, &mut ahead_2).await.unwrap();
            drop(held);
        }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    drop(h);
    head.send_replace(2);
    waiting.await.unwrap();
    assert_eq!(budget.peak(), 1000);
    drop((b, c, d));
    assert_eq!(budget.held(), 0);
    // The pages gone (the sender dropped), a page waiting for its turn gives up.
    let (head, mut rx) = watch::channel(0u64);
    let small = Budget::new(4);
    assert_eq!(small.piece(), 1);
    let _full: Vec<_> = (0..3)
        .map(|_| small.hold(1, 1, &mut rx).now_or_never().unwrap().unwrap())
        .collect();
    let gone = tokio::spawn({
        let small = Arc::clone(&small);
        async move { small.hold(1, 1, &mut rx).await.is_none() }
    });
    tokio::task::yield_now().await;
    drop(head);
    assert!(gone.await.unwrap());
}

/// A client of the emulated org reading `rows` Invoice__c rows in pages of 500, `width` at once,
/// with a budget of `budget` bytes; the org, and the id of a finished job of them.
async fn finished_job(
    rows: u64,
    width: usize,
    budget: usize,
) -> (fixtures::EmulatedOrg, BulkClient, String) {
    let config = fixtures::OrgConfig::new(7, fixtures::Scale::Tiny).rows("Invoice__c", rows);
    let org = fixtures::EmulatedOrg::start(config).await.unwrap();
    let login = org.login_info();
    let session = sf_auth::Session::login(sf_auth::SessionConfig::new(
        sf_auth::LoginUrl::parse(&login.login_url).unwrap(),
        sf_auth::Credentials {
            client_id: login.client_id,
            client_secret: sf_auth::Secret::new(login.client_secret),
            refresh_token: Some(sf_auth::Secret::new(login.refresh_token)),
        },
    ))
    .await
    .unwrap();
    let config = BulkConfig {
        max_records: Some(500),
        parallel_pages: width,
        parallel_buffer_bytes: budget,
        ..BulkConfig::default()
    };
    let client = BulkClient::new(session, config).unwrap();
    let soql = "SELECT Id, Name, Amount__c, Notes__c, SystemModstamp FROM Invoice__c";
    let job = client.create_job(Operation::QueryAll, soql).await.unwrap();
    client.wait_for_completion(&job.id).await.unwrap();
    (org, client, job.id)
}

/// Every page's bytes, in order, read slowly: after each chunk the reader pauses, so the
/// downloads run ahead as far as the budget lets them. Checks the bytes held after each chunk.
async fn read_slowly(client: &BulkClient, job_id: &str, budget: usize) -> (Vec<Vec<u8>>, usize) {
    let mut pages = Pages::open(client, job_id, None).await.unwrap().unwrap();
    let mut bodies = Vec::new();
    while let Some((_, _, mut body)) = pages.next_page().await.unwrap() {
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
            assert!(
                pages.budget.held() <= budget,
                "{} held",
                pages.budget.held()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        bodies.push(bytes);
    }
    (bodies, pages.budget.peak())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytes_held_stay_within_the_budget_the_page_being_emitted_included() {
    let (org, client, job_id) = finished_job(3_000, 4, 1 << 20).await;
    // The same job read with a budget larger than the whole job: the bytes to expect.
    let (expected, _) = read_slowly(&client, &job_id, 1 << 20).await;
    assert_eq!(expected.len(), 6);
    let page = expected.iter().map(Vec::len).max().unwrap();
    for (width, budget) in [(4, 16 << 10), (4, 8 << 10), (16, 4 << 10), (2, 3 << 10)] {
        let client = BulkClient::new(
            client.session().clone(),
            BulkConfig {
                parallel_pages: width,
                parallel_buffer_bytes: budget,
                ..client.config().clone()
            },
        )
        .unwrap();
        // Pages larger than the budget: without a bound on the page being emitted, a slow
        // reader would hold a whole page and more.
        assert!(page > 2 * budget, "{page} bytes a page");
        let (bodies, peak) = read_slowly(&client, &job_id, budget).await;
        assert_eq!(bodies, expected, "{width} {budget}");
        assert!(peak <= budget, "{width} {budget}: {peak} held");
        // The pages ahead did download ahead (more than the head's share was held at once).
        assert!(peak > head_share(budget), "{width} {budget}: {peak} held");
    }
    org.shutdown().await;
}
