//! `read --report`: the run report's figures equal the emulated org's own counts.
#![allow(clippy::unwrap_used)]

mod harness;

use fixtures::{OrgConfig, Scale};
use harness::{catalog, Env};
use serde_json::{json, Value};

fn sum(report: &Value, kind: &str) -> u64 {
    let streams: u64 = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["calls"][kind].as_u64().unwrap())
        .sum();
    streams + report["setup_calls"][kind].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_adds_up_to_the_orgs_counts() {
    let env = Env::start(
        "report",
        OrgConfig::new(17, Scale::Tiny)
            .rows("Account", 900)
            .rows("Contact", 300)
            .bulk_timing(20, 60),
    )
    .await;
    // Account through Bulk (a small threshold for REST), Contact and Lead through REST.
    let config = env.write("config.json", &env.config(json!({})));
    let streams = env.write(
        "catalog.json",
        &catalog(&[
            ("Account", "incremental"),
            ("Contact", "full_refresh"),
            ("Lead", "incremental"),
            ("ContentDocumentLink", "full_refresh"),
        ]),
    );
    let bulk_config = env.write(
        "bulk.json",
        &env.config(json!({"force_use_bulk_api": true})),
    );
    for (name, config) in [("rest", &config), ("bulk", &bulk_config)] {
        let control = env.org.control();
        let before = control.stats();
        let path = env.dir.join(format!("{name}.report.json"));
        let run = env
            .run(
                &[
                    "read",
                    "--config",
                    config.to_str().unwrap(),
                    "--catalog",
                    streams.to_str().unwrap(),
                    "--report",
                    path.to_str().unwrap(),
                ],
                &[],
            )
            .await;
        run.assert_success();
        let after = control.stats();
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (b, a) = (&before.requests, &after.requests);
        assert_eq!(
            sum(&report, "count") + sum(&report, "query"),
            a.query - b.query,
            "{name}"
        );
        // Each kind of call the report counts, against the org's own count of it.
        for (kind, org) in [
            ("query_more", a.query_more - b.query_more),
            ("bulk_create", a.bulk_create - b.bulk_create),
            ("bulk_poll", a.bulk_poll - b.bulk_poll),
            ("bulk_results", a.bulk_results - b.bulk_results),
            (
                "bulk_result_pages",
                a.bulk_result_pages - b.bulk_result_pages,
            ),
            ("bulk_delete", a.bulk_delete - b.bulk_delete),
            ("composite", a.composite - b.composite),
        ] {
            assert_eq!(sum(&report, kind), org, "{name}: {kind}");
        }
        assert_eq!(sum(&report, "limits"), a.limits - b.limits, "{name}");
        assert_eq!(report["setup_calls"]["limits"], 2, "before and after");
        let charged = after.api_usage.used - before.api_usage.used;
        assert_eq!(
            sum(&report, "total"),
            charged,
            "{name}: every call charged once"
        );
        // The allowance: read before and after, each reading counting itself.
        let used = |k: &str| report[k]["used"].as_u64().unwrap();
        assert_eq!(
            used("allowance_after") - used("allowance_before"),
            charged - 1
        );
        assert_eq!(report["allowance_after"]["max"], after.api_usage.max);
        for s in report["streams"].as_array().unwrap() {
            let stream = s["stream"].as_str().unwrap();
            assert_eq!(
                s["rows"],
                run.records(stream).len() as u64,
                "{name} {stream}"
            );
            assert_eq!(s["status"], "complete");
            assert_eq!(s["bulk_jobs"], s["calls"]["bulk_create"]);
            assert_eq!(s["bulk_polls"], s["calls"]["bulk_poll"]);
            assert!(s["why"].as_str().is_some_and(|w| !w.is_empty()), "{s}");
            assert!(s["windows"].as_u64().unwrap() >= 1, "{s}");
        }
        let account = &report["streams"][0];
        if name == "bulk" {
            assert_eq!(account["api"], "bulk");
            assert_eq!(account["why"], "force_use_bulk_api");
            assert!(account["bulk_jobs"].as_u64().unwrap() >= 1);
        } else {
            assert_eq!(account["api"], "rest");
            assert_eq!(account["bulk_jobs"], 0);
        }
    }
}

/// A report asked for in a directory that does not exist is refused before anything is read,
/// as a config error naming `--report`; the earlier report of a run is replaced whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_path_in_no_directory_is_refused_before_the_read() {
    let env = Env::start(
        "report-path",
        OrgConfig::new(18, Scale::Tiny).rows("Account", 50),
    )
    .await;
    let config = env.write("config.json", &env.config(json!({})));
    let streams = env.write("catalog.json", &catalog(&[("Account", "full_refresh")]));
    let read = |report: std::path::PathBuf| {
        let args: Vec<String> = [
            "read",
            "--config",
            config.to_str().unwrap(),
            "--catalog",
            streams.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args
    };
    let before = env.org.control().stats().requests.query;
    let missing = env.dir.join("no-such-dir").join("run.json");
    let args = read(missing.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = env.run(&args, &[]).await;
    run.assert_contract();
    assert_eq!(run.code, Some(1), "{}", run.dump());
    let error = run.trace_error().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`--report ") && message.contains("is not a directory"),
        "{message}"
    );
    assert!(run.of_type("RECORD").is_empty());
    assert_eq!(
        env.org.control().stats().requests.query,
        before,
        "nothing read"
    );
    assert!(!missing.exists());
    // A directory given for the report is said to be one, with a file name to give instead.
    let args = read(env.dir.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = env.run(&args, &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.dump());
    let message = run.trace_error().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("is a directory; give a file name in it")
            && message.contains(&env.dir.join("run.json").display().to_string()),
        "{message}"
    );

    // A report already there is replaced by the new one, whole.
    let path = env.dir.join("run.json");
    std::fs::write(&path, "an earlier report").unwrap();
    let args = read(path.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args, &[]).await.assert_success();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(report["streams"][0]["rows"], 50);
}

/// A read whose stdout closes early (`sfconnect read ... | head -n 3`) still writes its run
/// report: the report does not go through the output that failed.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_whose_stdout_closes_still_writes_its_report() {
    let env = Env::start(
        "report-stdout-closed",
        OrgConfig::new(58, Scale::Tiny)
            .rows("Contact", 20_000)
            .default_batch_size(200),
    )
    .await;
    let config = env.write("config.json", &env.config(json!({})));
    let streams = env.write("catalog.json", &catalog(&[("Contact", "full_refresh")]));
    let path = env.dir.join("closed.report.json");
    let dir = env.dir.clone();
    let report = path.clone();
    let code = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(harness::BIN)
            .args([
                "read",
                "--config",
                config.to_str().unwrap(),
                "--catalog",
                streams.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        for _ in 0..3 {
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
        drop(reader);
        child.wait().unwrap().code()
    })
    .await
    .unwrap();
    assert_ne!(
        code,
        Some(0),
        "a read that could not write its output succeeded"
    );
    let text = std::fs::read_to_string(&path).expect("no report written");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["streams"][0]["stream"], "Contact", "{report}");
}

/// A stream whose Bulk jobs fail twice switches to REST: its report keeps the row count taken
/// for the plan (the ESTIMATE emitted), not the REST plan's none.
#[tokio::test(flavor = "multi_thread")]
async fn a_switch_to_rest_keeps_the_counted_estimate_in_the_report() {
    let org = OrgConfig::new(59, Scale::Tiny)
        .rows("Contact", 500)
        .faults(fixtures::Faults {
            bulk_fail_next: 2,
            ..fixtures::Faults::default()
        });
    let env = Env::start("report-fallback", org).await;
    let config = env.write("config.json", &env.config(json!({})));
    let streams = env.write("catalog.json", &catalog(&[("Contact", "full_refresh")]));
    let path = env.dir.join("fallback.report.json");
    let run = env
        .run(
            &[
                "read",
                "--config",
                config.to_str().unwrap(),
                "--catalog",
                streams.to_str().unwrap(),
                "--rest-max-rows",
                "100",
                "--report",
                path.to_str().unwrap(),
            ],
            &[],
        )
        .await;
    run.assert_success();
    let estimate = run
        .of_type("TRACE")
        .into_iter()
        .find(|m| m["trace"]["type"] == "ESTIMATE")
        .map(|m| m["trace"]["estimate"]["row_estimate"].clone())
        .unwrap_or_else(|| panic!("no ESTIMATE: {}", run.dump()));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let contact = &report["streams"][0];
    assert_eq!(contact["api"], "rest", "{report}");
    assert_eq!(contact["estimated_rows"], estimate, "{report}");
}
