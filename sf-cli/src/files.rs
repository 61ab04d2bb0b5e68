//! Reading the config, catalog and state files, with errors that name the file and the fix.

use std::path::Path;

use serde_json::Value;

use crate::failure::Failure;

/// Which file is being read, for messages.
#[derive(Debug, Clone, Copy)]
pub enum FileKind {
    /// `--config`
    Config,
    /// `--catalog`
    Catalog,
    /// `--state`
    State,
}

impl FileKind {
    fn name(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Catalog => "catalog",
            FileKind::State => "state",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            FileKind::Config => {
                "pass a JSON object with the connector's config (its keys: `sfconnect spec`)"
            }
            FileKind::Catalog => {
                "pass a configured catalog: a JSON object {\"streams\": [...]} built from `sfconnect discover`"
            }
            FileKind::State => {
                "pass the STATE messages' `state` objects of the last sync as a JSON list, a legacy state object, or `[]`"
            }
        }
    }
}

/// Reads and parses a JSON file; the name need not end in `.json`.
pub fn read_json(kind: FileKind, path: &Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_string()
        } else {
            format!("cannot be read ({e})")
        };
        Failure::config(format!(
            "{} file `{}` {what}: {}",
            kind.name(),
            path.display(),
            kind.fix()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::config(format!(
            "{} file `{}` is not valid JSON: {} at line {}, column {}: {}",
            kind.name(),
            path.display(),
            classify_json_error(&e),
            e.line(),
            e.column(),
            kind.fix()
        ))
    })
}

fn classify_json_error(e: &serde_json::Error) -> String {
    // serde_json's message ends with " at line L column C"; keep only the reason.
    let text = e.to_string();
    match text.find(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// Prefixes an error about a file's content with the file's name.
pub fn in_file(kind: FileKind, path: &Path, error: impl std::fmt::Display) -> String {
    format!("{} file `{}`: {error}", kind.name(), path.display())
}

/// Writes `bytes` to `path` whole or not at all where it can: into a new file beside it
/// (readable by the owner only when `private`), flushed to disk, then renamed over `path`, so a
/// crash or a full disk leaves the earlier file as it was. A symbolic link is followed (the file
/// it names is replaced, the link kept). Where a file cannot be put beside it (a directory this
/// user may not write, a file mounted on its own into a container, which cannot be renamed over)
/// the file is written in place, as before.
pub fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match write_beside(&target, bytes, private) {
        Ok(()) => Ok(()),
        Err(_) => write_in_place(&target, bytes, private),
    }
}

/// File options that create a file readable by its owner only when `private` (on Unix).
fn open_options(private: bool) -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options
}

fn write_beside(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let temp = path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let written = open_options(private)
        .create_new(true)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
    let renamed = written.and_then(|()| std::fs::rename(&temp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    renamed
}

fn write_in_place(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = open_options(private)
        .create(true)
        .truncate(true)
        .open(path)?;
    #[cfg(unix)]
    if private {
        // An existing file keeps its mode on open: narrow it too.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_whole_or_leave_it() {
        let dir = std::env::temp_dir().join(format!("sfconnect-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No file beside it is left behind.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["config.json".to_string()]);
        // Into a directory that does not exist: an error, and nothing written.
        let nowhere = dir.join("missing").join("run.json");
        assert!(write_atomically(&nowhere, b"x", false).is_err());
        assert!(!dir.join("missing").exists());
        // Through a symbolic link: the file it names is replaced, the link kept.
        #[cfg(unix)]
        {
            let link = dir.join("link.json");
            std::os::unix::fs::symlink(&path, &link).unwrap();
            write_atomically(&link, b"through the link", true).unwrap();
            assert!(std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "through the link");
            std::fs::remove_file(&link).unwrap();
        }
        // The in-place fallback writes a new file too.
        write_in_place(&dir.join("direct.json"), b"direct", false).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("direct.json")).unwrap(),
            "direct"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_and_invalid_files_are_named() {
        let dir = std::env::temp_dir().join(format!("sfconnect-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("nope.conf");
        let e = read_json(FileKind::Config, &missing).unwrap_err();
        assert!(e.message.contains("config file"), "{}", e.message);
        assert!(
            e.message.contains("nope.conf` does not exist"),
            "{}",
            e.message
        );
        let bad = dir.join("catalog.txt");
        std::fs::write(&bad, "{\"streams\": [\n  {\"x\": }\n]}").unwrap();
        let e = read_json(FileKind::Catalog, &bad).unwrap_err();
        assert!(e.message.contains("is not valid JSON"), "{}", e.message);
        assert!(e.message.contains("line 2"), "{}", e.message);
        let good = dir.join("state");
        std::fs::write(&good, "[]").unwrap();
        assert_eq!(
            read_json(FileKind::State, &good).unwrap(),
            serde_json::json!([])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
