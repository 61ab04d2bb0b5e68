#![allow(clippy::unwrap_used)]
//! `describe_batches_in_flight` bounds the `composite` calls running at once.
//!
//! An in-test server, on the test's runtime with paused tokio time, holds every composite call for
//! one (virtual) second and counts the calls it holds at once. Paused time only moves when
//! nothing else can run: every call the client has started has reached the server by then. So
//! the most calls held at once is exactly the most the client had in flight, a count, not a
//! timing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sf_auth::{Credentials, LoginUrl, Secret, Session, SessionConfig};
use sf_discovery::{describe_streams, discover, DiscoveryOptions};

/// Composite calls arrived, held now, and the most held at once.
#[derive(Debug, Default, Clone, Copy)]
struct Gate {
    arrived: usize,
    held: usize,
    most_held: usize,
}

struct Server {
    objects: Vec<String>,
    gate: Mutex<Gate>,
    /// Subrequests seen.
    described: Mutex<Vec<String>>,
}

fn describe(name: &str) -> Value {
    json!({
        "name": name, "label": name, "custom": true, "queryable": true,
        "fields": [
            {"name": "Id", "type": "id", "filterable": true, "sortable": true},
            {"name": "SystemModstamp", "type": "datetime", "filterable": true, "sortable": true},
        ]
    })
}

async fn token(headers: HeaderMap) -> Json<Value> {
    let host = headers["host"].to_str().unwrap().to_string();
    let base = format!("http://{host}");
    Json(json!({
        "access_token": "00D000000000001!IN_FLIGHT_TEST",
        "signature": "c2lnbmF0dXJl",
        "scope": "api",
        "instance_url": base,
        "id": format!("{base}/id/00D000000000001AAA/005000000000001AAA"),
        "token_type": "Bearer",
        "issued_at": "1667600739962"
    }))
}

async fn global(State(server): State<Arc<Server>>) -> Json<Value> {
    let sobjects: Vec<Value> = server
        .objects
        .iter()
        .map(|n| json!({"name": n, "label": n, "queryable": true, "custom": true}))
        .collect();
    Json(json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects}))
}

async fn composite(State(server): State<Arc<Server>>, Json(body): Json<Value>) -> Json<Value> {
    {
        let mut g = server.gate.lock().unwrap();
        g.arrived += 1;
        g.held += 1;
        g.most_held = g.most_held.max(g.held);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut answers = Vec::new();
    for sub in body["compositeRequest"].as_array().unwrap() {
        // /services/data/v62.0/sobjects/{name}/describe
        let url = sub["url"].as_str().unwrap();
        let name = url.split('/').nth(5).unwrap().to_string();
        answers.push(json!({
            "body": describe(&name),
            "httpHeaders": {},
            "httpStatusCode": 200,
            "referenceId": sub["referenceId"],
        }));
        server.described.lock().unwrap().push(name);
    }
    server.gate.lock().unwrap().held -= 1;
    Json(json!({"compositeResponse": answers}))
}

/// Serves `objects` on the current runtime.
async fn serve(objects: usize) -> (Arc<Server>, SocketAddr) {
    let server = Arc::new(Server {
        objects: (0..objects).map(|i| format!("Object_{i:03}__c")).collect(),
        gate: Mutex::new(Gate::default()),
        described: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data/v62.0/sobjects", get(global))
        .route("/services/data/v62.0/composite", post(composite))
        .with_state(Arc::clone(&server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (server, addr)
}

async fn session(addr: SocketAddr) -> Session {
    let config = SessionConfig::new(
        LoginUrl::parse(&format!("http://{addr}")).unwrap(),
        Credentials {
            client_id: "test-client-id".to_string(),
            client_secret: Secret::new("test-secret"),
            refresh_token: Some(Secret::new("test-refresh")),
        },
    );
    Session::login(config).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn composite_calls_in_flight_never_exceed_the_bound() {
    // 23 objects in batches of 2: 12 calls, in rounds of `bound` calls a (virtual) second.
    for bound in [1, 3, 5, 12, 20] {
        let (server, addr) = serve(23).await;
        let session = session(addr).await;
        let options = DiscoveryOptions {
            describe_batch_size: 2,
            describe_batches_in_flight: bound,
            ..DiscoveryOptions::default()
        };
        let started = tokio::time::Instant::now();
        let catalog = discover(&session, &options).await.unwrap();
        assert_eq!(catalog.len(), 23);
        let gate = *server.gate.lock().unwrap();
        assert_eq!(gate.arrived, 12, "bound {bound}");
        assert_eq!(gate.held, 0);
        assert_eq!(gate.most_held, bound.min(12), "bound {bound}");
        // On the virtual clock: one second per round of calls, ⌈12 / bound⌉ rounds.
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(12_u64.div_ceil(bound as u64)),
            "bound {bound}"
        );
        let mut described = server.described.lock().unwrap().clone();
        described.sort();
        assert_eq!(described, server.objects, "each object described once");
    }
}

/// The count is the client's: two discoveries side by side, each within its bound of 2, are
/// seen as 4 calls at once.
#[tokio::test(start_paused = true)]
async fn the_server_counts_every_call_the_client_has_in_flight() {
    let (server, addr) = serve(8).await;
    let session = session(addr).await;
    let names: Vec<String> = server.objects.clone();
    let options = DiscoveryOptions {
        describe_batch_size: 1,
        describe_batches_in_flight: 2,
        ..DiscoveryOptions::default()
    };
    let (a, b) = tokio::join!(
        describe_streams(&session, &names[..4], &options),
        describe_streams(&session, &names[4..], &options),
    );
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 8);
    let gate = *server.gate.lock().unwrap();
    assert_eq!((gate.arrived, gate.most_held), (8, 4));
}
