//! Repository checks over `cargo metadata` and the crates' sources: crate docs, forbidden
//! dependencies, layering (here), file length and who maps errors (in `sources`).

mod lex;
mod sources;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use sources::Source;

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
        // xtask drives the binaries (`sfconnect`, fixtures' examples) and links no crate of
        // the workspace; the emulated org knows none of the connector's crates.
        _ => &[],
    }
}

/// `cargo metadata --no-deps` of the workspace at `root`.
pub fn metadata(root: &Path) -> Result<Value> {
    let out = crate::cargo_stdout(
        root,
        &[
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ],
    )?;
    serde_json::from_slice(&out).context("`cargo metadata` printed invalid JSON")
}

/// Runs `cargo metadata` for the workspace at `root` and checks it.
pub fn check_workspace(root: &Path) -> Result<Vec<String>> {
    Ok(check(&metadata(root)?, &|p| {
        std::fs::read_to_string(p).ok()
    }))
}

/// Checks workspace metadata (`cargo metadata --no-deps` JSON) and the files under each
/// member's `src/` (listed from the disk); `read` gives a file's text. Returns one line per
/// problem, empty when the house is in order.
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
    problems.extend(sources::check(&sources(metadata, read)));
    problems
}

/// The files under each member's `src/` directory (next to its manifest), as `read` gives them.
fn sources(metadata: &Value, read: &dyn Fn(&Path) -> Option<String>) -> Vec<Source> {
    let root = PathBuf::from(metadata["workspace_root"].as_str().unwrap_or("."));
    let mut out = Vec::new();
    for pkg in metadata["packages"].as_array().into_iter().flatten() {
        let (Some(name), Some(manifest)) = (pkg["name"].as_str(), pkg["manifest_path"].as_str())
        else {
            continue;
        };
        let Some(dir) = Path::new(manifest).parent() else {
            continue;
        };
        let mut files = Vec::new();
        walk(&dir.join("src"), &mut files);
        files.sort();
        for file in files {
            let Some(text) = read(&file) else { continue };
            let relative = file.strip_prefix(&root).unwrap_or(&file);
            let path = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push(Source {
                package: name.to_string(),
                path,
                text,
            });
        }
    }
    out
}

/// Every file below `dir`.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
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
mod tests;
