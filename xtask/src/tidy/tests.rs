//! The metadata checks on the real workspace and on doctored copies of its metadata.

use super::*;

fn real_metadata() -> Value {
    metadata(&crate::workspace_root()).expect("cargo metadata runs")
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// The problems of the real workspace with these extra dependencies (package, dependency,
/// kind).
fn check_with_deps(deps: &[(&str, &str, Option<&str>)]) -> Vec<String> {
    let mut meta = real_metadata();
    let pkgs = meta["packages"].as_array_mut().expect("packages");
    for (package, dep, kind) in deps {
        let pkg = pkgs
            .iter_mut()
            .find(|p| p["name"] == *package)
            .expect("package present");
        pkg["dependencies"]
            .as_array_mut()
            .expect("dependencies")
            .push(serde_json::json!({"name": dep, "kind": kind}));
    }
    check(&meta, &read)
}

#[test]
fn the_workspace_is_tidy() {
    let problems = check(&real_metadata(), &read);
    assert!(
        problems.is_empty(),
        "tidy problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_member_is_checked() {
    let meta = real_metadata();
    let names: Vec<&str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for expected in crate::CONNECTOR_CRATES.into_iter().chain(["xtask"]) {
        assert!(
            names.contains(&expected),
            "{expected} missing from the workspace"
        );
    }
}

#[test]
fn anyhow_in_a_library_crate_fails() {
    let problems = check_with_deps(&[("sf-rest", "anyhow", None)]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("sf-rest depends on `anyhow`"));
}

#[test]
fn clap_in_a_library_crate_fails_but_anyhow_as_dev_dependency_is_fine() {
    let problems = check_with_deps(&[
        ("sf-sync", "clap", None),
        ("sf-auth", "anyhow", Some("dev")),
    ]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("sf-sync depends on `clap`"));
}

#[test]
fn layering_violations_fail() {
    let problems = check_with_deps(&[
        ("sf-bulk", "sf-rest", None),         // sideways
        ("sf-auth", "sf-discovery", None),    // upwards
        ("sf-sync", "fixtures", None),        // fixtures as a normal dependency
        ("sf-sync", "fixtures", Some("dev")), // fine
        ("sf-cli", "fixtures", None),         // fine: the CLI serves the emulated org
        ("sf-discovery", "reqwest", None),    // only sf-auth speaks HTTP
    ]);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for start in [
        "sf-bulk depends on `sf-rest`",
        "sf-auth depends on `sf-discovery`",
        "sf-sync depends on `fixtures`",
        "sf-discovery depends on `reqwest`",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(start)), "{start}");
    }
}

#[test]
fn xtask_links_no_crate_of_the_workspace() {
    // It drives the binaries (`sfconnect`, fixtures' examples) as a user would.
    for dep in ["fixtures", "sf-auth"] {
        let problems = check_with_deps(&[("xtask", dep, None)]);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].starts_with(&format!("xtask depends on `{dep}`")));
    }
}

#[test]
fn a_crate_without_a_crate_doc_fails() {
    let meta = real_metadata();
    let problems = check(&meta, &|p: &Path| {
        if p.ends_with("sf-bulk/src/lib.rs") {
            Some("pub fn f() {}\n".to_string())
        } else {
            read(p)
        }
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("sf-bulk:"));
}

#[test]
fn the_source_checks_read_every_crate_and_name_file_and_line() {
    let meta = real_metadata();
    let doctored = |text: String| {
        move |p: &Path| {
            if p.ends_with("sf-rest/src/lib.rs") {
                Some(text.clone())
            } else {
                read(p)
            }
        }
    };
    let mapping =
        "//! A crate.\nfn f(e: &sf_auth::ApiError) -> bool {\n    e.code_is(\"NOT_FOUND\")\n}\n";
    let problems = check(&meta, &doctored(mapping.to_string()));
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems
        .iter()
        .all(|p| p.starts_with("sf-rest/src/lib.rs:3: ")));
    let long = format!("//! A crate.\n{}", "\n".repeat(700));
    let problems = check(&meta, &doctored(long));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("sf-rest/src/lib.rs:701: 701 lines, more than 700"));
}
