#![allow(clippy::unwrap_used)]
//! `sfconnect discover` never leaves an object out silently: one LOG line per object left out,
//! saying why, before the CATALOG.

mod harness;

use fixtures::{OrgConfig, Scale};
use harness::Env;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn discover_logs_each_object_left_out_before_the_catalog() {
    let env = Env::start("discover-log", OrgConfig::new(53, Scale::Tiny)).await;
    let config = env.write("config.json", &env.config(json!({})));
    let run = env
        .run(&["discover", "--config", config.to_str().unwrap()], &[])
        .await;
    run.assert_contract();
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let catalog_at = run
        .messages
        .iter()
        .position(|m| m["type"] == "CATALOG")
        .unwrap();
    let left_out: Vec<(usize, &str)> = run
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m["type"] == "LOG")
        .filter_map(|(i, m)| m["log"]["message"].as_str().map(|t| (i, t)))
        .filter(|(_, t)| t.contains("` is left out: "))
        .collect();
    assert!(!left_out.is_empty(), "{}", run.dump());
    let offered: Vec<&str> = run.messages[catalog_at]["catalog"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for (at, line) in &left_out {
        assert!(*at < catalog_at, "{line}: after the CATALOG");
        let name = line.trim_start_matches('`').split('`').next().unwrap();
        assert!(!offered.contains(&name), "{name} is offered and left out");
    }
    // Every object the org lists is offered or left out with a reason.
    let listed = env.org.control().object_names();
    let mut silent = Vec::new();
    for name in &listed {
        let said = left_out
            .iter()
            .any(|(_, t)| t.starts_with(&format!("`{name}` ")));
        let warned = !run.logs_with("WARN", &format!("`{name}`")).is_empty();
        if !offered.contains(&name.as_str()) && !said && !warned {
            silent.push(name.clone());
        }
    }
    // Objects the running user cannot see are not listed to it at all (describeGlobal leaves
    // them out), so nothing can be said of them.
    let hidden = ["Restricted_Data__c"];
    silent.retain(|n| !hidden.contains(&n.as_str()));
    assert!(silent.is_empty(), "left out silently: {silent:?}");
}
