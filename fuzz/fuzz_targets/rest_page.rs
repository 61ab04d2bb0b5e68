//! The REST query decoding, through its public entry point `RestReader::read`, on pages from a
//! loopback server: the input holds a status byte and up to two bodies (the first page and the
//! one its `nextRecordsUrl` leads to). Reading never panics; every record it yields has one value
//! per column.
#![no_main]

use std::sync::OnceLock;

use futures_util::StreamExt;
use libfuzzer_sys::fuzz_target;
use sf_rest::{ReadRequest, RestConfig, RestReader};
use sfconnect_fuzz::{account, split_at, PageServer};

struct Harness {
    runtime: tokio::runtime::Runtime,
    server: PageServer,
    reader: RestReader,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let server = PageServer::start().expect("a loopback server");
        let session = runtime
            .block_on(server.login())
            .expect("login against the loopback server");
        let reader = RestReader::new(session, RestConfig::default()).expect("a reader");
        Harness {
            runtime,
            server,
            reader,
        }
    })
}

const STATUSES: [u16; 8] = [200, 200, 200, 200, 400, 403, 404, 500];

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else {
        return;
    };
    let h = harness();
    let (first, second) = split_at(rest, b"\n--page--\n");
    h.server.set_pages(vec![
        (STATUSES[usize::from(selector & 7)], first.to_vec()),
        (200, second.to_vec()),
    ]);
    let stream = account();
    let fields: Vec<String> = match selector >> 3 & 3 {
        0 => vec!["Id".into(), "Name".into()],
        1 => vec![
            "Id".into(),
            "SystemModstamp".into(),
            "BillingAddress".into(),
        ],
        2 => vec![
            "Name".into(),
            "AnnualRevenue".into(),
            "NumberOfEmployees".into(),
        ],
        _ => Vec::new(),
    };
    let request = ReadRequest {
        fields,
        include_deleted: selector & 0x20 != 0,
        ..ReadRequest::default()
    };
    let Ok(mut records) = h.reader.read(&stream, request) else {
        return;
    };
    let width = records.columns().len();
    h.runtime.block_on(async {
        while let Some(item) = records.next().await {
            match item {
                Ok(record) => assert_eq!(record.values.len(), width),
                Err(_) => break,
            }
            assert!(h.server.served() <= 16, "the reader keeps asking for pages");
        }
    });
});
