//! Repository checks over `cargo metadata`: crate docs, forbidden dependencies, layering.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The five library crates, top of the stack first. A crate may depend on crates that come later
/// in its own list only (see [`allowed_internal`]).
const LIBRARY_CRATES: [&str; 5] = ["sf-sync", "sf-bulk", "sf-rest", "sf-discovery", "sf-auth"];

/// Dependencies no library crate may have: they belong to binaries.
const BINARY_ONLY_DEPS: [&str; 2] = ["anyhow", "clap"];

/// Which workspace crates `name` may name as a normal (non-dev) dependency.
fn allowed_internal(name: &str) -> &'static [&'static str] {
    match name {
        "sf-auth" => &[],
        "sf-discovery" => &["sf-auth"],
        "sf-bulk" | "sf-rest" => &["sf-discovery", "sf-auth"],
        "sf-sync" => &["sf-bulk", "sf-rest", "sf-discovery", "sf-auth"],
        "sf-cli" => &[
            "sf-sync",
            "sf-bulk",
            "sf-rest",
            "sf-discovery",
            "sf-auth",
            "fixtures",
        ],
        "xtask" => &["fixtures"],
        // The emulated org knows none of the connector's crates.
        _ => &[],
    }
}

/// Runs `cargo metadata` for the workspace at `root` and checks it.
pub fn check_workspace(root: &Path) -> Result<Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("could not run `cargo metadata`")?;
    if !out.status.success() {
        bail!(
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let metadata: Value =
        serde_json::from_slice(&out.stdout).context("`cargo metadata` printed invalid JSON")?;
    Ok(check(&metadata, &|p| std::fs::read_to_string(p).ok()))
}

/// Checks workspace metadata (`cargo metadata --no-deps` JSON); `read` gives a source file's text.
/// Returns one line per problem, empty when the house is in order.
pub fn check(metadata: &Value, read: &dyn Fn(&Path) -> Option<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let members: Vec<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    for pkg in &packages {
        let name = pkg["name"].as_str().unwrap_or("?");
        check_docs(name, pkg, read, &mut problems);
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or("?");
            let kind = dep["kind"].as_str().unwrap_or("normal");
            let is_dev = kind == "dev";
            let is_library = LIBRARY_CRATES.contains(&name);
            if is_library && !is_dev && BINARY_ONLY_DEPS.contains(&dep_name) {
                problems.push(format!(
                    "{name} depends on `{dep_name}`: library crates return typed errors and take no \
                     command line; move it to sf-cli or xtask"
                ));
            }
            if is_library && !is_dev && dep_name == "reqwest" && name != "sf-auth" {
                problems.push(format!(
                    "{name} depends on `reqwest`: only sf-auth speaks HTTP; go through sf_auth::Session"
                ));
            }
            if members.iter().any(|m| m == dep_name)
                && !is_dev
                && !allowed_internal(name).contains(&dep_name)
            {
                problems.push(format!(
                    "{name} depends on `{dep_name}`: this breaks the layering \
                     sf-cli → sf-sync → (sf-bulk, sf-rest) → sf-discovery → sf-auth \
                     (fixtures only as a dev-dependency, except in sf-cli)"
                ));
            }
        }
    }
    problems
}

fn check_docs(
    name: &str,
    pkg: &Value,
    read: &dyn Fn(&Path) -> Option<String>,
    problems: &mut Vec<String>,
) {
    for target in pkg["targets"].as_array().into_iter().flatten() {
        let kinds: Vec<&str> = target["kind"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let is_crate_root = kinds
            .iter()
            .any(|k| matches!(*k, "lib" | "rlib" | "bin" | "proc-macro"));
        if !is_crate_root {
            continue;
        }
        let Some(path) = target["src_path"].as_str() else {
            continue;
        };
        let has_doc = read(Path::new(path))
            .and_then(|text| {
                text.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with("#!["))
                    .map(|l| l.starts_with("//!"))
            })
            .unwrap_or(false);
        if !has_doc {
            problems.push(format!(
                "{name}: {path} does not start with a `//!` crate doc saying what the crate owns \
                 and what it must not know"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_metadata() -> Value {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let out = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(crate::workspace_root())
            .output()
            .expect("cargo metadata runs");
        assert!(out.status.success(), "cargo metadata failed");
        serde_json::from_slice(&out.stdout).expect("metadata is JSON")
    }

    fn read(p: &Path) -> Option<String> {
        std::fs::read_to_string(p).ok()
    }

    fn add_dep(meta: &mut Value, package: &str, dep: &str, kind: Option<&str>) {
        let pkgs = meta["packages"].as_array_mut().expect("packages");
        let pkg = pkgs
            .iter_mut()
            .find(|p| p["name"] == package)
            .expect("package present");
        pkg["dependencies"]
            .as_array_mut()
            .expect("dependencies")
            .push(serde_json::json!({"name": dep, "kind": kind}));
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
        for expected in [
            "sf-auth",
            "sf-discovery",
            "sf-bulk",
            "sf-rest",
            "sf-sync",
            "sf-cli",
            "fixtures",
            "xtask",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from the workspace"
            );
        }
    }

    #[test]
    fn anyhow_in_a_library_crate_fails() {
        let mut meta = real_metadata();
        add_dep(&mut meta, "sf-rest", "anyhow", None);
        let problems = check(&meta, &read);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("sf-rest depends on `anyhow`"));
    }

    #[test]
    fn clap_in_a_library_crate_fails_but_anyhow_as_dev_dependency_is_fine() {
        let mut meta = real_metadata();
        add_dep(&mut meta, "sf-sync", "clap", None);
        add_dep(&mut meta, "sf-auth", "anyhow", Some("dev"));
        let problems = check(&meta, &read);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("sf-sync depends on `clap`"));
    }

    #[test]
    fn layering_violations_fail() {
        let mut meta = real_metadata();
        add_dep(&mut meta, "sf-bulk", "sf-rest", None); // sideways
        add_dep(&mut meta, "sf-auth", "sf-discovery", None); // upwards
        add_dep(&mut meta, "sf-sync", "fixtures", None); // fixtures as a normal dependency
        add_dep(&mut meta, "sf-sync", "fixtures", Some("dev")); // fine
        add_dep(&mut meta, "sf-cli", "fixtures", None); // fine: the CLI serves the emulated org
        add_dep(&mut meta, "sf-discovery", "reqwest", None); // only sf-auth speaks HTTP
        let problems = check(&meta, &read);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems
            .iter()
            .any(|p| p.starts_with("sf-bulk depends on `sf-rest`")));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("sf-auth depends on `sf-discovery`")));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("sf-sync depends on `fixtures`")));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("sf-discovery depends on `reqwest`")));
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
}
