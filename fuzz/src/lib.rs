//! Shared pieces of the fuzz targets: column sets for the Bulk CSV decoder, and a loopback HTTP
//! server that answers the token request and then serves whatever pages a fuzz input holds, so
//! the REST reader decodes untrusted JSON through its real entry point (`RestReader::read`).
//!
//! Must not know: the connector's internals. Every target goes through public APIs only.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sf_auth::{Credentials, LoginUrl, RetryConfig, Secret, Session, SessionConfig};
use sf_discovery::{FieldSpec, FieldType, StreamSpec};

/// Field types the decoders treat differently, picked by fuzz bytes.
const TYPES: [&str; 12] = [
    "id", "string", "boolean", "currency", "double", "int", "long", "datetime", "date", "time",
    "textarea", "percent",
];

/// Up to four columns, their count and types chosen by `selector`.
pub fn fields(selector: u32) -> Vec<FieldSpec> {
    let count = 1 + (selector & 3) as usize;
    (0..count)
        .map(|i| {
            let pick = (selector >> (2 + 4 * i)) as usize % TYPES.len();
            FieldSpec::new(format!("F{i}"), FieldType::from_wire(TYPES[pick]))
        })
        .collect()
}

/// The `Content-Type` a page claims, chosen by `selector`.
pub fn content_type(selector: u8) -> Option<&'static str> {
    [
        None,
        Some("text/csv; charset=UTF-8"),
        Some("text/csv; charset=ISO-8859-1"),
        Some("text/csv;charset=\"windows-1252\""),
    ][usize::from(selector % 4)]
}

/// An Account-like stream with each kind of column the REST shaping treats specially.
pub fn account() -> StreamSpec {
    let field = |name: &str, wire: &str| FieldSpec::new(name, FieldType::from_wire(wire));
    StreamSpec {
        name: "Account".into(),
        fields: vec![
            field("Id", "id"),
            field("Name", "string"),
            field("IsDeleted", "boolean"),
            field("AnnualRevenue", "currency"),
            field("NumberOfEmployees", "int"),
            field("SystemModstamp", "datetime"),
            field("LastActivityDate", "date"),
            field("BillingAddress", "address"),
        ],
        primary_key: Some("Id".into()),
        cursor_field: Some("SystemModstamp".into()),
        supports_incremental: true,
        has_is_deleted: true,
        custom: false,
    }
}

/// The page served once the queued ones run out: it ends any read.
pub const LAST_PAGE: &[u8] = br#"{"totalSize":0,"done":true,"records":[]}"#;

/// A loopback HTTP/1.1 server: the OAuth token endpoint answers a fixed token, every other
/// request gets the next queued `(status, body)` (then [`LAST_PAGE`]).
pub struct PageServer {
    base_url: String,
    pages: Arc<Mutex<VecDeque<(u16, Vec<u8>)>>>,
    served: Arc<AtomicUsize>,
}

impl PageServer {
    /// Binds `127.0.0.1:0` and serves from background threads for the life of the process.
    pub fn start() -> std::io::Result<PageServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let pages: Arc<Mutex<VecDeque<(u16, Vec<u8>)>>> = Arc::default();
        let served = Arc::new(AtomicUsize::new(0));
        let (p, s, url) = (pages.clone(), served.clone(), base_url.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (p, s, url) = (p.clone(), s.clone(), url.clone());
                std::thread::spawn(move || serve(conn, &p, &s, &url));
            }
        });
        Ok(PageServer {
            base_url,
            pages,
            served,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Replaces the queue of answers and resets the request count.
    pub fn set_pages(&self, pages: Vec<(u16, Vec<u8>)>) {
        let mut queue = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        *queue = pages.into();
        self.served.store(0, Ordering::SeqCst);
    }

    /// API requests answered since the last [`PageServer::set_pages`].
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// A session logged in against this server, retrying at most once with millisecond waits.
    pub async fn login(&self) -> Result<Session, sf_auth::Error> {
        let mut config = SessionConfig::new(
            LoginUrl::parse(&self.base_url)?,
            Credentials {
                client_id: "fuzz-client".into(),
                client_secret: Secret::new("fuzz-secret"),
                refresh_token: Some(Secret::new("fuzz-refresh")),
            },
        );
        config.retry = RetryConfig {
            max_retries: 1,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            ..RetryConfig::default()
        };
        config.read_timeout = Some(Duration::from_secs(5));
        Session::login(config).await
    }
}

fn serve(
    conn: TcpStream,
    pages: &Mutex<VecDeque<(u16, Vec<u8>)>>,
    served: &AtomicUsize,
    base_url: &str,
) {
    let _ = conn.set_nodelay(true);
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || line.is_empty() {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line.split(' ').nth(1).unwrap_or("");
        let (status, body) = if path.starts_with("/services/oauth2/token") {
            let token = format!(
                r#"{{"access_token":"00Dfuzz!AQfuzztoken","instance_url":"{base_url}","id":"{base_url}/id/00D/005","token_type":"Bearer","issued_at":"1700000000000","signature":"x"}}"#
            );
            (200, token.into_bytes())
        } else {
            served.fetch_add(1, Ordering::SeqCst);
            let mut queue = pages.lock().unwrap_or_else(|p| p.into_inner());
            queue.pop_front().unwrap_or((200, LAST_PAGE.to_vec()))
        };
        let mut answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(&body);
        // One write, no Nagle delay: a keep-alive exchange would otherwise wait for delayed ACKs.
        if writer.write_all(&answer).is_err() {
            return;
        }
    }
}

/// Splits `data` at the first occurrence of `sep` (the rest is empty when there is none).
pub fn split_at<'a>(data: &'a [u8], sep: &[u8]) -> (&'a [u8], &'a [u8]) {
    match data.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (&data[..at], &data[at + sep.len()..]),
        None => (data, &[]),
    }
}
