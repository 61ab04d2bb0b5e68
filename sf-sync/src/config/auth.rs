//! The config keys that say how to log in: `auth_flow`/`auth_type` (the grant), `login_url`.

use serde_json::Value;
use sf_auth::{Grant, JwtBearer, LoginUrl, Secret, PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL};

use super::Reader;

impl Reader<'_> {
    /// The grant: `auth_flow` when set (sfconnect's key: 2.10.3's spec pins `auth_type` to
    /// `Client`, which the platform always writes), else `auth_type` (`Client`, or
    /// `client_credentials` as configs written for earlier sfconnect versions have it).
    pub(super) fn grant(&mut self) -> Grant {
        let by_type = self.grant_by_auth_type();
        let Some(value) = self.get("auth_flow").cloned() else {
            return by_type;
        };
        let flow = match value.as_str().map(str::trim) {
            Some(s) if s.eq_ignore_ascii_case("refresh_token") => Grant::RefreshToken,
            Some(s) if s.eq_ignore_ascii_case("client_credentials") => Grant::ClientCredentials,
            Some(s) if s.eq_ignore_ascii_case("jwt") => Grant::JwtBearer,
            _ => {
                self.problem(
                    "auth_flow",
                    Some(&value),
                    "is not supported; use `refresh_token` (the default), `client_credentials` \
                     (to a My Domain `login_url`) or `jwt` (the JWT bearer flow, with `username` \
                     and `private_key`)",
                );
                return by_type;
            }
        };
        if by_type != Grant::RefreshToken && by_type != flow {
            self.problem(
                "auth_flow",
                Some(&value),
                "contradicts `auth_type`; leave `auth_type` out (or `Client`) and choose the \
                 grant with `auth_flow` alone",
            );
        }
        flow
    }

    fn grant_by_auth_type(&mut self) -> Grant {
        let Some(value) = self.get("auth_type").cloned() else {
            return Grant::RefreshToken;
        };
        let expected = "is not supported; use `Client` (refresh token grant) or \
                        `client_credentials` (client credentials grant to a My Domain `login_url`); \
                        other grants are chosen with `auth_flow` (`jwt`: the JWT bearer flow)";
        match value.as_str().map(str::trim) {
            Some(s) if s.eq_ignore_ascii_case("client") => Grant::RefreshToken,
            Some(s)
                if s.eq_ignore_ascii_case("client_credentials")
                    || s.eq_ignore_ascii_case("clientcredentials") =>
            {
                Grant::ClientCredentials
            }
            _ => {
                self.problem("auth_type", Some(&value), expected);
                Grant::RefreshToken
            }
        }
    }

    pub(super) fn login_url(&mut self, is_sandbox: bool, grant: Grant) -> Option<LoginUrl> {
        let given = self.string(
            "login_url",
            "a URL such as `https://acme.my.salesforce.com`",
        );
        let given = given.filter(|s| !s.trim().is_empty());
        if grant == Grant::ClientCredentials && given.is_none() {
            self.problem(
                "login_url",
                None,
                "the client credentials grant logs in at the org's My Domain; give it, e.g. \
                 `https://acme.my.salesforce.com`",
            );
            return None;
        }
        match LoginUrl::resolve(is_sandbox, given.as_deref()) {
            // Salesforce answers this grant at its shared login hosts with `invalid_grant`
            // "request not supported on this domain": said now, before any request.
            Ok(url)
                if grant == Grant::ClientCredentials
                    && [PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL].contains(&url.as_str()) =>
            {
                self.problem(
                    "login_url",
                    Some(&Value::String(url.as_str().to_string())),
                    "is Salesforce's shared login host, where the client credentials grant is \
                     not supported; give the org's My Domain, e.g. \
                     `https://acme.my.salesforce.com` (Setup > My Domain)",
                );
                None
            }
            Ok(url) => Some(url),
            Err(e) => {
                let reason = match e {
                    sf_auth::Error::InvalidLoginUrl { reason, .. } => reason,
                    other => other.to_string(),
                };
                // Shown without what may be a secret (credentials, a token in a query).
                let given = given.map(|url| Value::String(LoginUrl::redacted(&url)));
                self.problem(
                    "login_url",
                    given.as_ref(),
                    format!("is not usable: {reason}"),
                );
                None
            }
        }
    }

    /// `username` and `private_key` when the grant is the JWT bearer flow: the key must sign.
    pub(super) fn jwt_bearer(&mut self, grant: Grant) -> Option<Option<JwtBearer>> {
        if grant != Grant::JwtBearer {
            return Some(None);
        }
        let username = self.required_string(
            "username",
            "the Salesforce username the JWT bearer flow logs in as",
        );
        let key = self.required_string(
            "private_key",
            "the RSA private key (PEM) whose certificate is uploaded to the connected app",
        );
        let key = Secret::new(key?);
        match JwtBearer::new(username?, &key) {
            Ok(jwt) => Some(Some(jwt)),
            Err(e) => {
                let reason = match e {
                    sf_auth::Error::InvalidPrivateKey { reason } => reason,
                    other => other.to_string(),
                };
                self.problem(
                    "private_key",
                    Some(&Value::String(String::new())),
                    format!("is not usable: {reason}"),
                );
                None
            }
        }
    }
}
