#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn a_page_followed_twice_is_refused() {
    let mut followed = Followed::default();
    let url = |p: &str| Next::Url(format!("/services/data/v62.0/query/01g-{p}"));
    assert!(followed.refuse_repeat("Account", &url("2000")).is_ok());
    assert!(followed.refuse_repeat("Account", &url("4000")).is_ok());
    assert!(followed
        .refuse_repeat("Account", &Next::First("SELECT Id FROM Account".into()))
        .is_ok());
    assert!(followed.refuse_repeat("Account", &Next::Done).is_ok());
    let e = followed.refuse_repeat("Account", &url("2000")).unwrap_err();
    assert!(matches!(&e, Error::QueryDecode { stream, .. } if stream == "Account"));
    assert!(
        e.to_string()
            .contains("`/services/data/v62.0/query/01g-2000`"),
        "{e}"
    );
    // Another query has its own trail.
    assert!(Followed::default()
        .refuse_repeat("Account", &url("2000"))
        .is_ok());
}

#[test]
fn next_urls_become_paths() {
    assert_eq!(
        path_of("/services/data/v62.0/query/01g-2000").as_deref(),
        Some("/services/data/v62.0/query/01g-2000")
    );
    assert_eq!(
        path_of("https://x.my.salesforce.com/services/data/v62.0/query/01g-4000").as_deref(),
        Some("/services/data/v62.0/query/01g-4000")
    );
    assert_eq!(path_of("query/01g"), None);
    assert_eq!(
        path_of("//evil.example.com/services/data/v62.0/query/01g"),
        None
    );
    assert_eq!(
        path_of("/\\evil.example.com/services/data/v62.0/query/01g"),
        None
    );
    assert_eq!(
        path_of("https://x.my.salesforce.com//evil.example.com/q"),
        None
    );
    assert_eq!(path_of("https://host-only"), None);
}
