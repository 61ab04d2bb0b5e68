//! Shared helpers: a session against a mockito server, test streams, draining record streams.
#![allow(clippy::unwrap_used, dead_code)]

use fixtures::recorded::Scenario;
use futures_util::StreamExt;
use sf_auth::{Credentials, LoginUrl, RetryConfig, Secret, Session, SessionConfig};
use sf_discovery::{FieldSpec, FieldType, Record, StreamSpec};
use sf_rest::{Error, RecordStream, RestConfig, RestReader};

/// Logs in against `server` (mounting the recorded token answer first).
pub async fn session(server: &mut mockito::ServerGuard) -> Session {
    session_with(server, |_| {}).await
}

/// Logs in against `server` (mounting the recorded token answer first) with the test settings
/// (two retries, at once), adjusted by `adjust`.
pub async fn session_with(
    server: &mut mockito::ServerGuard,
    adjust: impl FnOnce(&mut SessionConfig),
) -> Session {
    Scenario::load("auth", "refresh_ok")
        .unwrap()
        .mount_async(server)
        .await;
    let mut config = SessionConfig::new(
        LoginUrl::parse(&server.url()).unwrap(),
        Credentials {
            client_id: "test-client-id".into(),
            client_secret: Secret::new("test-secret"),
            refresh_token: Some(Secret::new("test-refresh")),
        },
    );
    config.retry = RetryConfig {
        max_retries: 2,
        ..RetryConfig::immediate()
    };
    adjust(&mut config);
    Session::login(config).await.unwrap()
}

/// A mock server that answers the token request, and a session logged in to it.
pub async fn server() -> (mockito::ServerGuard, Session) {
    let mut server = mockito::Server::new_async().await;
    let session = session(&mut server).await;
    (server, session)
}

/// A mock server with `rest/<name>` mounted, its mocks, and a reader to it (default config).
pub async fn reader_for(name: &str) -> (mockito::ServerGuard, Vec<mockito::Mock>, RestReader) {
    let (mut server, session) = server().await;
    let mocks = mount(&mut server, name).await;
    let reader = RestReader::new(session, RestConfig::default()).unwrap();
    (server, mocks, reader)
}

/// Mounts `rest/<name>` on `server`.
pub async fn mount(server: &mut mockito::ServerGuard, name: &str) -> Vec<mockito::Mock> {
    Scenario::load("rest", name)
        .unwrap()
        .mount_async(server)
        .await
}

fn field(name: &str, wire: &str) -> FieldSpec {
    let mut f = FieldSpec::new(name, FieldType::from_wire(wire));
    f.custom = name.ends_with("__c");
    f
}

/// An Account stream shaped like a describe of it.
pub fn account() -> StreamSpec {
    StreamSpec {
        name: "Account".into(),
        fields: vec![
            field("Id", "id"),
            field("Name", "string"),
            field("IsDeleted", "boolean"),
            field("AnnualRevenue", "currency"),
            field("NumberOfEmployees", "int"),
            field("CreatedDate", "datetime"),
            field("SystemModstamp", "datetime"),
            field("LastActivityDate", "date"),
            field("Description", "textarea"),
            field("BillingAddress", "address"),
            field("Geo__c", "location"),
        ],
        primary_key: Some("Id".into()),
        cursor_field: Some("SystemModstamp".into()),
        supports_incremental: true,
        has_is_deleted: true,
        custom: false,
    }
}

/// Drains a stream: the records before the first error, and that error.
pub async fn drain(mut stream: RecordStream) -> (Vec<Record>, Option<Error>, RecordStream) {
    let mut records = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(r) => records.push(r),
            Err(e) => {
                assert!(
                    stream.next().await.is_none(),
                    "the stream ends after an error"
                );
                return (records, Some(e), stream);
            }
        }
    }
    (records, None, stream)
}

/// The record's values as a JSON object.
pub fn json(record: &Record) -> serde_json::Value {
    serde_json::Value::Object(record.to_json())
}

/// Column names of a record.
pub fn names(record: &Record) -> Vec<&str> {
    record.columns.iter().map(String::as_str).collect()
}
