//! The OAuth 2.0 JWT bearer flow (RFC 7523) as Salesforce takes it: no refresh token, a new
//! signed assertion for every login and renewal.
//!
//! The assertion is `base64url(header).base64url(claims).base64url(signature)`: header
//! `{"alg":"RS256"}`, claims `iss` (the connected app's consumer key), `sub` (the username),
//! `aud` ([`jwt_audience`]) and `exp` (seconds since the epoch, [`ASSERTION_LIFETIME_SECS`]
//! ahead), signed RSASSA-PKCS1-v1_5 with SHA-256 by the key whose certificate the connected app
//! holds. It is posted to the login host's token endpoint (a My Domain's too) as
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion=...` [Salesforce's
//! "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration"; sure of the claims and the form].
//! The audience is `https://login.salesforce.com`, `https://test.salesforce.com`, or the org's
//! My Domain URL [the project's reference notes, `salesforce-api.md` §10; Salesforce's page
//! names the two login hosts and an Experience Cloud site's URL]. For a My Domain, sfconnect
//! names the login host of the org's kind ([`jwt_audience`]: test for a sandbox or a scratch
//! org, login otherwise), as the Salesforce CLI's audience rules do [belief: newer CLI versions
//! try the My Domain URL itself first, then those hosts]; an audience the org refuses is
//! answered `invalid_grant` "audience is invalid".

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use crate::config::LoginUrl;
use crate::error::Error;
use crate::secret::Secret;

/// The form's `grant_type`.
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How far ahead of its minting an assertion expires: Salesforce asks for "within 3 minutes".
pub const ASSERTION_LIFETIME_SECS: i64 = 180;

/// The JWT bearer flow's own credentials: who the sync runs as and the key that signs for the
/// connected app. `Debug` shows the username and never the key.
#[derive(Clone)]
pub struct JwtBearer {
    /// The Salesforce username (`sub`), pre-authorized for the connected app.
    pub username: String,
    key: Arc<RsaKeyPair>,
}

impl fmt::Debug for JwtBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBearer")
            .field("username", &self.username)
            .field("private_key", &"***")
            .finish()
    }
}

/// The same username and the same key (compared by its public half).
impl PartialEq for JwtBearer {
    fn eq(&self, other: &Self) -> bool {
        self.username == other.username && self.key.public().as_ref() == other.key.public().as_ref()
    }
}

impl JwtBearer {
    /// Reads an RSA private key in PEM (`BEGIN PRIVATE KEY`, PKCS#8, or `BEGIN RSA PRIVATE KEY`,
    /// PKCS#1; unencrypted). The error says what is wrong without a byte of the key.
    pub fn new(username: impl Into<String>, private_key_pem: &Secret) -> Result<JwtBearer, Error> {
        let bad = |reason: &str| Error::InvalidPrivateKey {
            reason: reason.to_string(),
        };
        let pem = private_key_pem.expose().trim();
        if pem.contains("ENCRYPTED PRIVATE KEY") {
            return Err(bad("it is encrypted; give the key without a passphrase \
                 (`openssl pkcs8 -topk8 -nocrypt -in key.pem`)"));
        }
        // A key pasted into a one-line JSON field often arrives with `\n` written out.
        let pem = pem.replace("\\n", "\n");
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
            bad("no PEM private key found; give the whole file, from `-----BEGIN PRIVATE KEY-----` \
                 (or `-----BEGIN RSA PRIVATE KEY-----`) to its END line")
        })?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(bad(
                    "it is not an RSA key; the JWT bearer flow signs with RS256",
                ))
            }
        }
        .map_err(|_| bad("it is not a usable RSA key (RS256 needs RSA, 2048 bits or more)"))?;
        Ok(JwtBearer {
            username: username.into(),
            key: Arc::new(key),
        })
    }

    /// A signed assertion for `client_id` to `audience`, expiring [`ASSERTION_LIFETIME_SECS`]
    /// after `now` (seconds since the epoch). It is a credential until then (whoever holds it
    /// can exchange it for an access token), so it comes as a [`Secret`].
    pub fn assertion(&self, client_id: &str, audience: &str, now: i64) -> Result<Secret, Error> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": self.username,
            "aud": audience,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::InvalidPrivateKey {
                reason: "signing the assertion failed".to_string(),
            })?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }

    /// The token request's form body: a fresh assertion for the login host (its `aud`).
    pub(crate) fn token_form(
        &self,
        client_id: &str,
        login_url: &LoginUrl,
    ) -> Result<String, Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let assertion = self.assertion(client_id, &jwt_audience(login_url), now)?;
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", JWT_BEARER_GRANT_TYPE);
        form.append_pair("assertion", assertion.expose());
        Ok(form.finish())
    }
}

/// The assertion's `aud` for a login at `login_url`: `https://test.salesforce.com` for the
/// sandbox login host, a sandbox's My Domain (`*.sandbox.my.salesforce.com`, or the older
/// `name--sandbox.my.salesforce.com`) and a scratch org's (`*.scratch.my.salesforce.com`: scratch
/// orgs run on sandbox instances), `https://login.salesforce.com` for the production login host
/// and any other My Domain, and the login URL itself otherwise (an Experience Cloud site, or an
/// emulated org on loopback).
pub(crate) fn jwt_audience(login_url: &LoginUrl) -> String {
    let url = login_url.as_str();
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let my_domain = host.ends_with(".my.salesforce.com");
    let sandbox = host == "test.salesforce.com"
        || host.ends_with(".sandbox.my.salesforce.com")
        || host.ends_with(".scratch.my.salesforce.com")
        || (my_domain
            && host
                .split('.')
                .next()
                .is_some_and(|name| name.contains("--")));
    if sandbox {
        crate::config::SANDBOX_LOGIN_URL.to_string()
    } else if my_domain || host == "login.salesforce.com" {
        crate::config::PRODUCTION_LOGIN_URL.to_string()
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_is_a_login_host_for_my_domains_and_the_url_otherwise() {
        for (login_url, audience) in [
            (
                "https://login.salesforce.com",
                "https://login.salesforce.com",
            ),
            ("https://test.salesforce.com", "https://test.salesforce.com"),
            (
                "https://acme.my.salesforce.com",
                "https://login.salesforce.com",
            ),
            (
                "https://ACME.My.Salesforce.com/",
                "https://login.salesforce.com",
            ),
            (
                "https://acme--uat.sandbox.my.salesforce.com",
                "https://test.salesforce.com",
            ),
            (
                "https://acme--uat.my.salesforce.com",
                "https://test.salesforce.com",
            ),
            (
                "https://power-dream-1234-dev-ed.scratch.my.salesforce.com",
                "https://test.salesforce.com",
            ),
            ("https://acme.my.site.com", "https://acme.my.site.com"),
            ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ] {
            let url = LoginUrl::parse(login_url).unwrap();
            assert_eq!(jwt_audience(&url), audience, "{login_url}");
        }
    }

    const KEY: &str = include_str!("../../fixtures/keys/jwt-test-key.pem");
    const KEY_PKCS1: &str = include_str!("../../fixtures/keys/jwt-test-key.pkcs1.pem");

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
    }

    #[test]
    fn assertions_carry_the_claims_and_an_rs256_signature() {
        let jwt = JwtBearer::new("sync@acme.com", &Secret::new(KEY)).expect("key");
        let a = jwt
            .assertion("3MVG9key", "https://login.salesforce.com", 1_700_000_000)
            .expect("signed");
        assert!(!format!("{a:?} {a}").contains(a.expose()));
        let parts: Vec<&str> = a.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(decode(parts[0]), serde_json::json!({"alg": "RS256"}));
        assert_eq!(
            decode(parts[1]),
            serde_json::json!({"iss": "3MVG9key", "sub": "sync@acme.com",
                               "aud": "https://login.salesforce.com", "exp": 1_700_000_180})
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url");
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            jwt.key.public().as_ref(),
        );
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the signature verifies");
        // The PKCS#1 form of the same key signs the same (PKCS#1 v1.5 is deterministic).
        let pkcs1 = JwtBearer::new("sync@acme.com", &Secret::new(KEY_PKCS1)).expect("key");
        let b = pkcs1
            .assertion("3MVG9key", "https://login.salesforce.com", 1_700_000_000)
            .expect("signed");
        assert_eq!(a.expose(), b.expose());
        assert!(!format!("{jwt:?}").contains("BEGIN"));
    }

    #[test]
    fn keys_that_cannot_sign_are_refused_without_showing_them() {
        let one_line = KEY.replace('\n', "\\n");
        assert!(JwtBearer::new("u", &Secret::new(one_line)).is_ok());
        for (pem, want) in [
            ("not a key", "no PEM private key found"),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----",
                "it is encrypted",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----",
                "not a usable RSA key",
            ),
        ] {
            let err = JwtBearer::new("u", &Secret::new(pem))
                .expect_err(pem)
                .to_string();
            assert!(err.contains(want), "{err}");
            assert!(err.contains("private_key"), "{err}");
            assert!(!err.contains("c2VjcmV0") && !err.contains("MIIB"), "{err}");
        }
    }
}
