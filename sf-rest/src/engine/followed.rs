//! The pages a query has followed, so a server that names one again is refused, and the path
//! a `nextRecordsUrl` names.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::Next;
use crate::error::Error;

/// The `nextRecordsUrl`s one query has followed, kept as 64-bit hashes (8 bytes a page), so
/// that a server naming a page already read again is refused instead of read forever.
#[derive(Debug, Default)]
pub(super) struct Followed(HashSet<u64>);

impl Followed {
    fn key(path: &str) -> u64 {
        let mut hasher = DefaultHasher::new();
        path.hash(&mut hasher);
        hasher.finish()
    }

    /// Whether the query has read the page at `path` already.
    pub(super) fn has(&self, path: &str) -> bool {
        self.0.contains(&Followed::key(path))
    }

    /// Records the page `next` names; fails when the query has read that page already.
    pub(super) fn refuse_repeat(&mut self, stream: &str, next: &Next) -> Result<(), Error> {
        let Next::Url(path) = next else {
            return Ok(());
        };
        if self.0.insert(Followed::key(path)) {
            return Ok(());
        }
        Err(Error::QueryDecode {
            stream: stream.to_string(),
            message: format!(
                "nextRecordsUrl `{path}` names a page this query has already read; the server \
                 repeats its pages, so the read stops rather than loop"
            ),
        })
    }
}

/// The path of a `nextRecordsUrl`: kept when it is a path, cut out of an absolute URL. A path
/// that starts with `//` or `/\` is refused: joined to the instance URL it would name another
/// host, and the request carries the bearer token.
pub(crate) fn path_of(url: &str) -> Option<String> {
    let path = if url.starts_with('/') {
        url
    } else {
        let (_, rest) = url.split_once("://")?;
        &rest[rest.find('/')?..]
    };
    let names_a_host = path[1..].starts_with(['/', '\\']);
    (!names_a_host).then(|| path.to_string())
}
