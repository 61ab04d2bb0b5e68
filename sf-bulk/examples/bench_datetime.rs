//! Benchmark: normalising datetime cells, as both the Bulk and the REST path do for every one.
//!
//! `cargo run --release -p sf-bulk --example bench_datetime [values] [rounds]`
//!
//! Generates `values` datetimes spread over every day of 2000 to 2039 (the 29th to the 31st
//! included), renders them in the forms Salesforce sends (Bulk's `...sssZ`, REST's `...sss+0000`)
//! and in forms it does not (an offset other than UTC, a 6-digit fraction), then times
//! `sf_discovery::normalize_datetime` (which [`sf_bulk::PageDecoder`] calls for every datetime
//! cell) over each set `rounds` times and prints nanoseconds per value. A plain copy of each value (one allocation,
//! as any cell turned into a JSON string costs) is timed alongside as the floor.

use std::hint::black_box;
use std::time::Instant;

use sf_discovery::normalize_datetime;

/// xorshift64*: deterministic values without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Renders a datetime from `YYYY-MM-DDTHH:MM:SS` and milliseconds.
type Render = fn(&str, u64) -> String;

/// `count` datetimes rendered by `render(date_time, millis)`.
fn values(count: usize, render: Render) -> Vec<String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..count)
        .map(|_| {
            let year = 2000 + rng.below(40);
            let month = 1 + rng.below(12);
            let day = 1 + rng.below(days_in_month(year, month));
            let date_time = format!(
                "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
                rng.below(24),
                rng.below(60),
                rng.below(60)
            );
            render(&date_time, rng.below(1000))
        })
        .collect()
}

/// Nanoseconds per value of `f` over `inputs`, best of `rounds`.
fn time(inputs: &[String], rounds: usize, f: impl Fn(&str) -> Option<String>) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut ok = 0usize;
        for input in inputs {
            if let Some(out) = f(black_box(input)) {
                ok += black_box(out).len() / 24;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(ok, inputs.len(), "every input is a valid datetime");
        best = best.min(elapsed * 1e9 / inputs.len() as f64);
    }
    best
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let forms: [(&str, Render); 4] = [
        ("Bulk   YYYY-MM-DDTHH:MM:SS.sssZ", |dt, ms| {
            format!("{dt}.{ms:03}Z")
        }),
        ("REST   YYYY-MM-DDTHH:MM:SS.sss+0000", |dt, ms| {
            format!("{dt}.{ms:03}+0000")
        }),
        ("other  YYYY-MM-DDTHH:MM:SS.sss-0800", |dt, ms| {
            format!("{dt}.{ms:03}-0800")
        }),
        ("other  YYYY-MM-DDTHH:MM:SS.ssssssZ", |dt, ms| {
            format!("{dt}.{ms:03}123Z")
        }),
    ];
    println!("{count} values per form, best of {rounds} rounds, ns per value");
    for (name, render) in forms {
        let inputs = values(count, render);
        let normalize = time(&inputs, rounds, normalize_datetime);
        // The floor: one allocation and copy of a 24-byte string per value.
        let copy = time(&inputs, rounds, |s| Some(s[..24].to_string()));
        println!("{name:<38} normalize_datetime {normalize:>7.1}   copy {copy:>5.1}");
    }
}
