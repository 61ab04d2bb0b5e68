//! Benchmark: decoding Bulk API 2.0 results pages of 20 columns on one core.
//!
//! `cargo run --release -p sf-bulk --example bench_decode [rows_per_page] [pages] [days]`
//!
//! Generates one results page as Salesforce renders it (every value quoted, nulls empty, Java
//! style doubles, `...000Z` datetimes, a few values with commas, quotes and newlines), then feeds
//! it to a fresh [`PageDecoder`] `pages` times in 16 KiB chunks, as the socket would, dropping
//! each record once made (as a stream consumer does). Prints rows/s and MB/s, and the process's
//! peak resident memory after growing numbers of rows: it stays flat, because nothing but the
//! current record is kept.
//!
//! `days`: the datetimes fall on the 1st to the 28th of their month with `28` (the default, the
//! figures in BENCHMARKS.md), on any day of it with `31`.

use std::time::Instant;

use sf_bulk::PageDecoder;
use sf_discovery::{FieldSpec, FieldType, Record};

const CHUNK: usize = 16 * 1024;

fn fields() -> Vec<FieldSpec> {
    [
        ("Id", "id"),
        ("Name", "string"),
        ("AccountNumber", "string"),
        ("Type", "picklist"),
        ("Industry", "picklist"),
        ("AnnualRevenue", "currency"),
        ("NumberOfEmployees", "int"),
        ("Rating__c", "double"),
        ("IsDeleted", "boolean"),
        ("IsActive__c", "boolean"),
        ("CreatedDate", "datetime"),
        ("LastModifiedDate", "datetime"),
        ("SystemModstamp", "datetime"),
        ("LastActivityDate", "date"),
        ("OwnerId", "reference"),
        ("Phone", "phone"),
        ("Website", "url"),
        ("Email__c", "email"),
        ("Description", "textarea"),
        ("Score__c", "percent"),
    ]
    .iter()
    .map(|(n, t)| FieldSpec::new(*n, FieldType::from_wire(t)))
    .collect()
}

/// xorshift64*: deterministic values without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn page(rows: usize, all_days: bool) -> Vec<u8> {
    let fields = fields();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = String::with_capacity(rows * 400);
    let header: Vec<String> = fields.iter().map(|f| format!("\"{}\"", f.name)).collect();
    out.push_str(&header.join(","));
    out.push('\n');
    let types = ["Customer", "Partner", "Prospect", "Other"];
    let industries = ["Banking", "Retail", "Energy", "Media", "Technology"];
    for i in 0..rows {
        let dt = |rng: &mut Rng| {
            let year = 10 + rng.below(15);
            let month = 1 + rng.below(12);
            let days = match month {
                _ if !all_days => 28,
                // 2010 to 2024: every fourth year is a leap year.
                2 if year.is_multiple_of(4) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            format!(
                "\"20{year:02}-{month:02}-{:02}T{:02}:{:02}:{:02}.000Z\"",
                1 + rng.below(days),
                rng.below(24),
                rng.below(60),
                rng.below(60)
            )
        };
        let revenue = if rng.below(4) == 0 {
            String::new()
        } else {
            format!("\"{}.0E7\"", 1 + rng.below(9))
        };
        let description = match rng.below(10) {
            0 => "\"Line one, with a comma\nand \"\"quotes\"\" on line two\"".to_string(),
            1..=4 => String::new(),
            _ => "\"Key account, renewal due\"".to_string(),
        };
        let cells = [
            format!("\"001R{i:014}\""),
            format!("\"Account {} Inc.\"", rng.below(1_000_000)),
            format!("\"{:08}\"", rng.below(100_000_000)),
            format!("\"{}\"", types[rng.below(4) as usize]),
            format!("\"{}\"", industries[rng.below(5) as usize]),
            revenue,
            format!("\"{}\"", rng.below(50_000)),
            format!("\"{}.{}\"", rng.below(100), rng.below(10)),
            "\"false\"".to_string(),
            format!("\"{}\"", rng.below(2) == 0),
            dt(&mut rng),
            dt(&mut rng),
            dt(&mut rng),
            format!("\"2024-{:02}-{:02}\"", 1 + rng.below(12), 1 + rng.below(28)),
            format!("\"005R{:014}\"", rng.below(1000)),
            format!("\"(555) {:03}-{:04}\"", rng.below(1000), rng.below(10000)),
            format!("\"https://example{}.com\"", rng.below(1000)),
            format!("\"contact{}@example.com\"", rng.below(100_000)),
            description,
            format!("\"{}.5\"", rng.below(100)),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

/// Peak resident memory of this process (`VmHWM`), in MiB; 0 where /proc is not available.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A sink that keeps nothing: counts records and drops them, as a stream consumer would.
#[derive(Default)]
struct Drain {
    records: u64,
    values: u64,
}

impl Extend<Record> for Drain {
    fn extend<I: IntoIterator<Item = Record>>(&mut self, iter: I) {
        for record in iter {
            self.records += 1;
            self.values += record.values.len() as u64;
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows_per_page: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let pages: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let fields = fields();
    let all_days = args.next().is_some_and(|a| a == "31");
    let body = page(rows_per_page, all_days);
    println!(
        "page: {rows_per_page} rows x {} columns, {:.1} MiB of CSV ({:.0} bytes/row); {pages} pages",
        fields.len(),
        body.len() as f64 / (1024.0 * 1024.0),
        body.len() as f64 / rows_per_page as f64
    );
    println!(
        "peak RSS after generating the page: {:.1} MiB",
        peak_rss_mib()
    );
    let checkpoints = [1, 3, 10, pages];
    let mut drain = Drain::default();
    let started = Instant::now();
    for page_no in 1..=pages {
        let mut decoder = match PageDecoder::new(&fields, Some("text/csv; charset=UTF-8")) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("decoder: {e}");
                std::process::exit(1);
            }
        };
        for chunk in body.chunks(CHUNK) {
            if let Err(e) = decoder.push(chunk, &mut drain) {
                eprintln!("decode: {e}");
                std::process::exit(1);
            }
        }
        if let Err(e) = decoder.finish(&mut drain) {
            eprintln!("decode: {e}");
            std::process::exit(1);
        }
        if checkpoints.contains(&page_no) {
            println!(
                "after {:>10} rows: peak RSS {:.1} MiB",
                drain.records,
                peak_rss_mib()
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(drain.records, (rows_per_page * pages) as u64);
    assert_eq!(drain.values, drain.records * fields.len() as u64);
    println!(
        "decoded {} rows in {:.2} s: {:.0} rows/s, {:.0} MiB/s on one core",
        drain.records,
        elapsed,
        drain.records as f64 / elapsed,
        (body.len() * pages) as f64 / (1024.0 * 1024.0) / elapsed
    );
}
