//! The pages a query has followed, so a server that names one again is refused, the path a
//! `nextRecordsUrl` names, and the row offset it carries.

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

/// The row offset a `nextRecordsUrl` names: the number after the last `-` of its last segment
/// (`/services/data/v62.0/query/01gRO0000016PIAYA2-2000`: the rows of the query before that
/// page). Fairly sure of the form: the reference's §4.3, from Salesforce's examples and every
/// answer recorded; `None` for a path not of that form, which is then not checked.
fn offset_of(path: &str) -> Option<u64> {
    let segment = path.rsplit('/').next()?;
    segment.rsplit_once('-')?.1.parse().ok()
}

/// True when a page fetched as `asked` that carried `rows` rows, and named `next` as the page
/// after it, carried fewer rows than the offsets between them: a row of the query went missing
/// from the page, which the query's `totalSize` would show only at its end, after the stream's
/// checkpoints had moved past it.
pub(super) fn short_page(asked: &Next, next: &Next, rows: u64) -> bool {
    let start = match asked {
        Next::First(_) => Some(0),
        Next::Url(path) => offset_of(path),
        Next::Done => None,
    };
    match (start, next) {
        (Some(start), Next::Url(path)) => offset_of(path).is_some_and(|end| start + rows < end),
        _ => false,
    }
}

#[cfg(test)]
mod offset_tests {
    use super::*;

    #[test]
    fn a_page_short_of_its_offsets_is_told() {
        let url = |s: &str| Next::Url(s.to_string());
        let first = Next::First("SELECT Id FROM Account".to_string());
        let at = |n: u64| {
            url(&format!(
                "/services/data/v62.0/query/01gRO0000016PIAYA2-{n}"
            ))
        };
        assert!(!short_page(&first, &at(2000), 2000));
        assert!(short_page(&first, &at(2000), 1999));
        assert!(!short_page(&at(2000), &at(4000), 2000));
        assert!(short_page(&at(2000), &at(4000), 1998));
        // More rows than the offsets say is not a missing row; the last page has no next.
        assert!(!short_page(&at(2000), &at(4000), 2001));
        assert!(!short_page(&at(2000), &Next::Done, 5));
        // A path of another form is not checked.
        assert!(!short_page(
            &first,
            &url("/services/data/v62.0/query/01gRO0000016PIAYA2"),
            1
        ));
        assert!(!short_page(&url("/next/page"), &at(4000), 1));
        assert_eq!(offset_of("/services/data/v62.0/query/01g-x-200"), Some(200));
    }
}
