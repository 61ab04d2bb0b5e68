//! Shared test plumbing: a session against a mockito server, a client, and stream collection.
#![allow(clippy::unwrap_used, dead_code)]

use fixtures::recorded::Scenario;
use futures_util::StreamExt;
use sf_auth::{Credentials, LoginUrl, RetryConfig, Secret, Session, SessionConfig};
use sf_bulk::{BulkClient, BulkConfig, BulkItem, BulkStream, Error, Operation};
use sf_discovery::{FieldSpec, FieldType, Record};

/// A mock server with the token answer and the named `bulk` scenarios mounted.
pub struct Mock {
    pub server: mockito::ServerGuard,
    /// Every bulk mock, in scenario order, and whether its exchange has an `expect` count.
    mocks: Vec<(mockito::Mock, bool)>,
}

impl Mock {
    pub async fn start(scenarios: &[&str]) -> Mock {
        let mut server = mockito::Server::new_async().await;
        Scenario::load("auth", "refresh_ok")
            .unwrap()
            .mount_async(&mut server)
            .await;
        let mut mocks = Vec::new();
        for name in scenarios {
            let scenario = Scenario::load("bulk", name).unwrap();
            let mounted = scenario.mount_async(&mut server).await;
            for (exchange, mock) in scenario.exchanges.iter().zip(mounted) {
                mocks.push((mock, exchange.expect.is_some()));
            }
        }
        Mock { server, mocks }
    }

    /// Every exchange with an `expect` count got exactly that many requests.
    pub async fn assert_expectations(&self) {
        for (mock, expected) in &self.mocks {
            if *expected {
                mock.assert_async().await;
            }
        }
    }

    pub async fn session(&self) -> Session {
        session_for(&self.server.url()).await
    }

    pub async fn client(&self, config: BulkConfig) -> BulkClient {
        BulkClient::new(self.session().await, config).unwrap()
    }

    /// A mock with `scenarios` mounted, and a client to it with `config`.
    pub async fn with_client(scenarios: &[&str], config: BulkConfig) -> (Mock, BulkClient) {
        let mock = Mock::start(scenarios).await;
        let client = mock.client(config).await;
        (mock, client)
    }
}

pub async fn session_for(url: &str) -> Session {
    session_with(url, |_| {}).await
}

/// The login settings of the recorded token answer for a server at `url`, with the defaults.
pub fn session_config(url: &str) -> SessionConfig {
    SessionConfig::new(
        LoginUrl::parse(url).unwrap(),
        Credentials {
            client_id: "test-client-id".to_string(),
            client_secret: Secret::new("test-secret"),
            refresh_token: Some(Secret::new("test-refresh")),
        },
    )
}

/// A session to `url` with the test settings, adjusted by `adjust` before logging in.
pub async fn session_with(url: &str, adjust: impl FnOnce(&mut SessionConfig)) -> Session {
    // With paused time the clock jumps to the next timer whenever the runtime waits on the mock
    // server's thread: no transport timers, so the only timers are the ones under test.
    let mut config = session_config(url).for_paused_time();
    config.retry = RetryConfig::immediate();
    adjust(&mut config);
    Session::login(config).await.unwrap()
}

/// The defaults, with pages of 2 records (the recorded scenarios ask for `maxRecords=2`).
pub fn config() -> BulkConfig {
    BulkConfig {
        max_records: Some(2),
        // Recorded page-by-page traces: no resultPages.
        parallel_pages: 1,
        ..BulkConfig::default()
    }
}

/// The columns of the recorded Account scenarios.
pub fn account_fields() -> Vec<FieldSpec> {
    [
        ("Id", "id"),
        ("Name", "string"),
        ("AnnualRevenue", "currency"),
        ("NumberOfEmployees", "int"),
        ("IsDeleted", "boolean"),
        ("SystemModstamp", "datetime"),
        ("Code__c", "string"),
    ]
    .iter()
    .map(|(name, ty)| FieldSpec::new(*name, FieldType::from_wire(ty)))
    .collect()
}

pub const ACCOUNT_SOQL: &str =
    "SELECT Id, Name, AnnualRevenue, NumberOfEmployees, IsDeleted, SystemModstamp, Code__c FROM Account";

/// Runs [`ACCOUNT_SOQL`] (`queryAll`, [`account_fields`]) with `client` to its end.
pub async fn query_accounts(client: &BulkClient) -> (Vec<BulkItem>, Option<Error>) {
    collect(client.query(Operation::QueryAll, ACCOUNT_SOQL, &account_fields())).await
}

/// Everything a stream yields: its items until the first error, and that error.
pub async fn collect(mut stream: BulkStream) -> (Vec<BulkItem>, Option<Error>) {
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(item) => items.push(item),
            Err(e) => {
                assert!(
                    stream.next().await.is_none(),
                    "the stream ends after an error"
                );
                return (items, Some(e));
            }
        }
    }
    (items, None)
}

pub fn records(items: &[BulkItem]) -> Vec<Record> {
    items
        .iter()
        .filter_map(|item| match item {
            BulkItem::Record(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

pub fn records_json(items: &[BulkItem]) -> Vec<serde_json::Value> {
    records(items)
        .into_iter()
        .map(|r| serde_json::Value::Object(r.to_json()))
        .collect()
}

/// A compact picture of a run: `created:ID`, `completed:N`, `record:ID`, `page:ROWS/TOTAL->NEXT`.
pub fn outline(items: &[BulkItem]) -> Vec<String> {
    items
        .iter()
        .map(|item| match item {
            BulkItem::JobCreated { job_id } => format!("created:{job_id}"),
            BulkItem::JobCompleted(info) => {
                format!("completed:{}", info.records_processed.unwrap_or(u64::MAX))
            }
            BulkItem::Record(r) => format!("record:{}", r.id().unwrap_or("-")),
            BulkItem::PageDone(p) => format!(
                "page:{}/{}->{}",
                p.rows,
                p.rows_total,
                p.next_locator.as_deref().unwrap_or("end")
            ),
        })
        .collect()
}
