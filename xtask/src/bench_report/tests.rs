//! The report's arithmetic, verdicts, table and splicing, on made-up results.

use serde_json::json;

use super::*;
use crate::bench_cases::{Component, Discovery, Latency, Limit, SyncRun};
use crate::bench_proc::RunResult;
use crate::bench_raw::RawDownload;

fn read(case: &str, rows: u64, secs: f64, rss_mib: u64, api: &str, job_secs: f64) -> Throughput {
    let polls = if job_secs > 0.0 {
        6
    } else {
        u64::from(api == "BULK")
    };
    Throughput {
        case: case.to_string(),
        object: "Account".to_string(),
        rows,
        columns: 20,
        api: api.to_string(),
        run: RunResult {
            seconds: secs,
            cpu_secs: secs * 0.8,
            peak_rss_kib: rss_mib * 1024,
            records: rows,
            ..RunResult::default()
        },
        calls: Calls::of(
            json!({"describe": 1, "composite": 1, "composite_describes": 1, "composite_subrequests": 1,
                   "bulk_create": u64::from(api == "BULK"), "bulk_poll": polls}),
            0,
        ),
        org_cpu_secs: 0.0,
        other_cpu_secs: 0.0,
        job_secs,
        limit: None,
    }
}

fn results() -> Results {
    let mut bulk = read("bulk-20", 1_000_000, 2.5, 15, "BULK", 0.0);
    bulk.limit = Some(Limit {
        raw_gzip: RawDownload {
            seconds: 1.0,
            ..RawDownload::default()
        },
        raw_plain: RawDownload::default(),
        parse_secs: 1.0,
    });
    let sync = |secs: f64, api: u64| SyncRun {
        run: RunResult {
            seconds: secs,
            ..RunResult::default()
        },
        calls: Calls::of(
            json!({"describe": 6, "composite": 1, "composite_describes": 1, "composite_subrequests": 6}),
            api,
        ),
    };
    Results {
        quick: false,
        machine: Machine {
            cpu: "cpu".into(),
            cores: 2,
            memory: "1 GiB".into(),
            date: "2025-01-01".into(),
        },
        load: ("0.1".into(), "0.2".into()),
        repeat: 3,
        busy_runs: (1, 12),
        quiet_wait_secs: 60,
        command: "cargo xtask bench".into(),
        revision: "abc1234".into(),
        cases: vec![
            bulk,
            read("rest-20", 200_000, 2.5, 33, "REST", 0.0),
            read("slow", 100_000, 14.0, 14, "BULK", 12.0),
        ],
        curve: vec![
            read("curve-100000", 100_000, 0.5, 14, "BULK", 0.0),
            read("curve-5000000", 5_000_000, 13.0, 70, "BULK", 0.0),
        ],
        discovery: Discovery {
            objects: 1000,
            streams: 999,
            run: RunResult::default(),
            calls: Calls::default(),
        },
        latency: Latency {
            first: sync(0.8, 20),
            next: sync(5.0, 12),
            changes: 300,
            job_secs: 12.0,
        },
        components: vec![Component {
            command: "cargo xtask bench-emulator".into(),
            output: "served".into(),
        }],
        issue17: crate::bench_issue17::Issue17::default(),
    }
}

#[test]
fn verdicts_follow_the_targets() {
    let v = verdicts(&results());
    let met = |prefix: &str| -> Vec<bool> {
        v.iter()
            .filter(|x| x.target.starts_with(prefix))
            .map(|x| x.met)
            .collect()
    };
    assert_eq!(met("Peak RSS ≤ 64 MiB"), [false]); // the 5M point has 70 MiB
    assert_eq!(met("Peak RSS flat"), [false]); // 14 → 70 MiB
    assert_eq!(met("Time grows linearly"), [true]); // 2.5 → 2.6 µs per row
    assert_eq!(met("Connector time ≤ 2×"), [false]); // 2.5 s ÷ 1.0 s
    assert_eq!(met("Bulk path ≥"), [true]); // 400,000 rows/s
    assert_eq!(met("REST path ≥"), [false]); // 80,000 rows/s
                                             // The slow 12 s job polls 6 times (issue 17's schedule allows 11); the syncs describe 6
                                             // objects in one composite call.
    assert_eq!(met("API calls: describes"), [true, true, true]);
    // 12 polls for one 12 s job are one too many; 6 describes sent alone are 5 too many.
    let mut r = results();
    r.cases[2].calls = Calls::of(
        json!({"describe": 1, "composite": 1, "composite_describes": 1, "composite_subrequests": 1,
               "bulk_create": 1, "bulk_poll": 12}),
        0,
    );
    r.latency.first.calls = Calls::of(json!({"describe": 6}), 6);
    let v2 = verdicts(&r);
    let again: Vec<bool> = v2
        .iter()
        .filter(|x| x.target.starts_with("API calls: describes"))
        .map(|x| x.met)
        .collect();
    assert_eq!(again, [false, false, true]);
    assert!(v2.iter().any(|x| x.measured.contains(
        "slow: 1 describe API call(s) for 1 object(s) (1 describes in 1 composite call(s)); 12 \
         polls for 1 job(s) of 12 s (schedule: 11 per job; one per 5 s: 3)"
    )));
    assert_eq!(met("Realistic latency"), [true, false]); // 5.0 s > 22.2 / 5
    let text = render(&results());
    assert!(text.starts_with(BEGIN) && text.trim_end().ends_with(END));
    assert!(text.contains("| bulk-20 | Account | BULK | 1,000,000 | 20 | 2.50 | 400,000 |"));
    assert!(text.contains("| 5,000,000 | 13.00 | 2.60 | 384,615 | 2.08 | 0.00 | 70.0 |"));
    assert!(text.contains("load average 0.1 before, 0.2 after"));
    assert!(text.contains("Command: `cargo xtask bench` · commit abc1234 · date: 2025-01-01"));
    assert!(text.contains("1 of 12 measured runs started on a busy machine"));
    assert_eq!(text.matches("**missed**").count(), 5);
}

#[test]
fn civil_dates() {
    assert_eq!(civil_date(0), "1970-01-01");
    assert_eq!(civil_date(11_016), "2000-02-29");
    assert_eq!(civil_date(19_782), "2024-02-29");
    assert_eq!(civil_date(20_089), "2025-01-01");
}

#[test]
fn splicing_keeps_the_hand_written_text() {
    let section = format!("{BEGIN}\nnew table\n{END}\n");
    let fresh = splice("", &section);
    assert!(fresh.starts_with("# Benchmarks\n\n"));
    assert!(fresh.contains("new table"));

    let old = format!("# B\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## Profiles\nnotes\n");
    let new = splice(&old, &section);
    assert_eq!(
        new,
        format!("# B\n\nintro\n\n{BEGIN}\nnew table\n{END}\n\n## Profiles\nnotes\n")
    );
    let appended = splice("# B\n\nintro\n", &section);
    assert_eq!(
        appended,
        format!("# B\n\nintro\n\n{BEGIN}\nnew table\n{END}\n")
    );
}

#[test]
fn call_arithmetic() {
    // 30 describes in 2 composite calls: the org counts 2 API calls for them, as it counts
    // describeGlobal, the query, the job's create, 3 polls, 10 result pages and the delete.
    let c = Calls::of(
        json!({"token": 1, "describe_global": 1, "describe": 30, "composite": 2, "composite_describes": 2,
               "composite_subrequests": 30, "query": 1, "bulk_create": 1, "bulk_poll": 3,
               "bulk_results": 10, "bulk_delete": 1}),
        1 + 2 + 1 + 1 + 3 + 10 + 1,
    );
    // Every API call is a round trip, and so is the login.
    assert_eq!(round_trips(&c), 19 + 1);
    // describeGlobal, 2 composite calls, 3 polls.
    assert_eq!(overhead(&c), 1 + 2 + 3);
    // 60 describes, 2 composite calls: 50 rode in them, 10 were sent alone (one call each).
    let direct = Calls::of(
        json!({"describe": 60, "composite": 2, "composite_describes": 2, "composite_subrequests": 50}),
        2 + 10,
    );
    assert_eq!(round_trips(&direct), 12);
    assert_eq!(overhead(&direct), 2 + 10);
    // 30 describes in 2 composite/batch envelopes: the org counts each describe, and the
    // envelopes are the round trips.
    let batch = Calls::of(
        json!({"describe": 30, "composite_batch": 2, "batch_subrequests": 30}),
        30,
    );
    assert_eq!(round_trips(&batch), 2);
    assert_eq!(overhead(&batch), 30);
    // Both: 25 describes in a composite call, 5 in a composite/batch envelope.
    let both = Calls::of(
        json!({"describe": 30, "composite": 1, "composite_describes": 1, "composite_batch": 1,
               "composite_subrequests": 25, "batch_subrequests": 5}),
        1 + 5,
    );
    assert_eq!(round_trips(&both), 2);
    assert_eq!(overhead(&both), 1 + 5);
    // 6 describes in a part-filled composite call and one retried alone: 2 API calls.
    let retried = Calls::of(
        json!({"describe": 7, "composite": 1, "composite_describes": 1, "composite_subrequests": 6}),
        2,
    );
    assert_eq!(round_trips(&retried), 2);
    assert_eq!(overhead(&retried), 2);
    // 6 describes in one composite call, 6 streams' getDeleted in another: one describe call.
    let deletes = Calls::of(
        json!({"describe": 6, "get_deleted": 6, "composite": 2, "composite_describes": 1,
               "composite_subrequests": 12}),
        2,
    );
    assert_eq!(round_trips(&deletes), 2);
    assert_eq!(overhead(&deletes), 1);
    assert_eq!(airbyte_overhead(6, 0, 12.0), 6);
    assert_eq!(airbyte_overhead(1, 2, 12.0), 1 + 2 * 3);
    assert_eq!(airbyte_overhead(1, 1, 0.0), 2);
    assert_eq!(thousands(1_234_567), "1,234,567");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_000), "1,000");
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(123_456), "123,456");
}
