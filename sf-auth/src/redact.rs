//! Secrets kept out of error text: a proxy's or firewall's page may echo the request it refused,
//! and serde quotes the values it cannot read.

/// `text` with every occurrence of each of `secrets` replaced by `***`, longest first (one may
/// hold another). Values under 4 characters are left alone: no real secret is that short, and
/// replacing them would mangle the text.
pub(crate) fn redact<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut secrets: Vec<&str> = secrets
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| s.len() >= 4)
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut text = text.to_string();
    for secret in secrets {
        if text.contains(secret) {
            text = text.replace(secret, "***");
        }
    }
    text
}

/// The secrets of a token request's form body: every value but the grant type, the client id
/// and the redirect URI, as sent (form-encoded) and decoded.
pub(crate) fn form_secrets(form: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    for (key, value) in url::form_urlencoded::parse(form.as_bytes()) {
        if matches!(key.as_ref(), "grant_type" | "client_id" | "redirect_uri") {
            continue;
        }
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        if encoded != value {
            secrets.push(encoded);
        }
        secrets.push(value.into_owned());
    }
    secrets
}

/// What is wrong with a token answer that is not the JSON expected, without quoting it: serde
/// quotes the values it refuses (`invalid type: string "..."`), and a token answer's values are
/// tokens. What lies between the first and the last `"` is left out.
pub(crate) fn token_answer_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match (text.find('"'), text.rfind('"')) {
        (Some(first), Some(last)) if last > first => {
            format!(
                "token response: {}\"...\"{}",
                &text[..first],
                &text[last + 1..]
            )
        }
        _ => format!("token response: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_as_sent_and_decoded_longest_first() {
        let form =
            "grant_type=refresh_token&client_id=app&client_secret=s%21cr+t&refresh_token=5Aep.tok";
        let secrets = form_secrets(form);
        assert_eq!(secrets, ["s%21cr+t", "s!cr t", "5Aep.tok"]);
        assert_eq!(
            redact(
                "echo: client_secret=s%21cr+t (s!cr t) refresh_token=5Aep.tok client_id=app",
                &secrets
            ),
            "echo: client_secret=*** (***) refresh_token=*** client_id=app"
        );
        // One secret inside another: the longer goes first, so nothing of it is left.
        assert_eq!(redact("x abcdefgh y", &["abcd", "abcdefgh"]), "x *** y");
        // Under 4 characters: left alone.
        assert_eq!(redact("a b c", &["b"]), "a b c");
    }

    #[test]
    fn a_token_answer_problem_quotes_nothing() {
        let e = serde_json::from_str::<u32>("\"5Aep861SECRET\"").unwrap_err();
        let text = token_answer_problem(&e);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            text.starts_with("token response: invalid type: string"),
            "{text}"
        );
        let e = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert!(token_answer_problem(&e).contains("EOF"));
    }
}
