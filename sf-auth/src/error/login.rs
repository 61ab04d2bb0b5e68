//! What a refused login means, and what the user should do about it.

use super::ApiError;

/// Why logging in failed, in terms a user can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// `invalid_grant` "expired access/refresh token": the refresh token was revoked or expired.
    ExpiredRefreshToken,
    /// `invalid_grant` "authentication failure" and similar: the credentials or login host are wrong.
    AuthenticationFailure,
    /// `invalid_client_id`: the client id (consumer key) is unknown.
    UnknownClientId,
    /// `invalid_client`: the client secret is wrong.
    WrongClientSecret,
    /// client_credentials sent to a login host rather than a My Domain.
    WrongDomainForGrant,
    /// client_credentials: `invalid_grant` "no client credentials user enabled": the connected
    /// app names no Run As user for the flow [believed from users' reports of the message].
    NoClientCredentialsUser,
    /// JWT bearer: `invalid_grant` "audience is invalid": the assertion's `aud` is not the
    /// login host.
    JwtAudience,
    /// JWT bearer: `invalid_grant` "invalid assertion": the signature does not verify against
    /// the connected app's certificate, or the assertion is malformed.
    JwtSignature,
    /// JWT bearer: `invalid_grant` "expired authorization code": the assertion's `exp` has
    /// passed (a clock that is behind). Only the JWT bearer grant reads those words so: for the
    /// refresh-token grant they are a concurrent refresh ([`ErrorKind::Transient`]).
    JwtExpired,
    /// JWT bearer: `invalid_grant` "user hasn't approved this consumer": the user is unknown or
    /// not pre-authorized for the connected app.
    JwtUserNotApproved,
    /// A grant other than the JWT bearer one: `invalid_grant` "user hasn't approved this
    /// consumer": the user did not authorize the connected app, or the app admits only users
    /// an admin approved and this one is not.
    AppNotApproved,
    /// `invalid_grant` "inactive user": the user the connection logs in as is deactivated
    /// (Salesforce's token-endpoint errors).
    InactiveUser,
    /// `invalid_grant` "ip restricted or invalid login hours": the user's profile refuses logins
    /// from this address or at this hour [reported: users' reports of the message].
    IpOrHoursRestricted,
    /// Web-server flow: the `authorization_code` was used already or has expired
    /// (`invalid_grant` "expired authorization code" answering a code exchange).
    CodeExpired,
    /// Web-server flow: `redirect_uri_mismatch`: the callback URL is not one the connected app
    /// lists, or not the one of the authorize request.
    RedirectUriMismatch,
    /// Web-server flow: `invalid_grant` "invalid code verifier": the PKCE verifier does not
    /// match the challenge.
    CodeVerifier,
    /// Any other refusal.
    Other,
}

impl LoginFailure {
    /// The failure an answer names (sf-auth reads answers; other crates match on this).
    pub(crate) fn from_api(err: &ApiError) -> LoginFailure {
        let msg = err.message.to_ascii_lowercase();
        match err.error_code.as_deref() {
            Some("invalid_grant") if msg.contains("expired access/refresh token") => {
                LoginFailure::ExpiredRefreshToken
            }
            Some("invalid_grant") if msg.contains("not supported on this domain") => {
                LoginFailure::WrongDomainForGrant
            }
            Some("invalid_grant") if msg.contains("client credentials user") => {
                LoginFailure::NoClientCredentialsUser
            }
            Some("invalid_grant") if msg.contains("audience is invalid") => {
                LoginFailure::JwtAudience
            }
            Some("invalid_grant") if msg.contains("invalid assertion") => {
                LoginFailure::JwtSignature
            }
            Some("invalid_grant") if msg.contains("expired authorization code") => {
                LoginFailure::JwtExpired
            }
            Some("invalid_grant") if msg.contains("hasn't approved this consumer") => {
                LoginFailure::JwtUserNotApproved
            }
            Some("invalid_grant") if msg.contains("code verifier") => LoginFailure::CodeVerifier,
            Some("invalid_grant") if msg.contains("inactive user") => LoginFailure::InactiveUser,
            Some("invalid_grant")
                if msg.contains("ip restricted") || msg.contains("login hours") =>
            {
                LoginFailure::IpOrHoursRestricted
            }
            Some("redirect_uri_mismatch") => LoginFailure::RedirectUriMismatch,
            Some("invalid_grant") => LoginFailure::AuthenticationFailure,
            Some("invalid_client_id") => LoginFailure::UnknownClientId,
            Some("invalid_client") => LoginFailure::WrongClientSecret,
            _ => LoginFailure::Other,
        }
    }

    /// What the user should do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            LoginFailure::ExpiredRefreshToken => {
                "the refresh token was revoked or has expired: re-authenticate and replace \
                 `refresh_token` in the config (if the connected app rotates refresh tokens, \
                 the config of the last CONTROL message a sync wrote holds the current one)"
            }
            LoginFailure::AuthenticationFailure => {
                "check `client_id`, `client_secret` and `refresh_token`, and that the login host \
                 matches the org (`is_sandbox` for sandboxes, or `login_url` for a My Domain)"
            }
            LoginFailure::UnknownClientId => {
                "the connected app's consumer key is not known to this org: check `client_id` \
                 and the login host"
            }
            LoginFailure::WrongClientSecret => {
                "the consumer secret does not match the connected app: check `client_secret`"
            }
            LoginFailure::WrongDomainForGrant => {
                "the client credentials flow needs the org's My Domain: set `login_url` to \
                 https://<mydomain>.my.salesforce.com"
            }
            LoginFailure::NoClientCredentialsUser => {
                "the connected app has no user to run the client credentials flow as: in Setup, \
                 App Manager, the app's Manage, Edit Policies, set Client Credentials Flow's \
                 Run As user (one with API access)"
            }
            LoginFailure::JwtAudience => {
                "the assertion's audience was refused: sfconnect names https://test.salesforce.com \
                 for a sandbox or scratch org (`is_sandbox`, or a `login_url` ending \
                 .sandbox.my.salesforce.com or .scratch.my.salesforce.com) and \
                 https://login.salesforce.com for production and its My Domain; check \
                 `is_sandbox` and `login_url`"
            }
            LoginFailure::JwtSignature => {
                "the assertion's signature does not match the certificate uploaded to the \
                 connected app: check `private_key` (and `client_id`)"
            }
            LoginFailure::JwtExpired => {
                "the assertion had expired when Salesforce read it: check this machine's clock"
            }
            LoginFailure::JwtUserNotApproved => {
                "`username` is not pre-authorized for the connected app: in its policies, set \
                 \"Admin approved users are pre-authorized\" and add the user's profile or a \
                 permission set, or check `username` and the login host"
            }
            LoginFailure::AppNotApproved => {
                "the user has not approved the connected app, or the app admits only users an \
                 admin approved: re-authenticate (`sfconnect login`, or the platform's \
                 Authenticate button), or in the app's policies add the user's profile or a \
                 permission set"
            }
            LoginFailure::InactiveUser => {
                "the user the connection logs in as is deactivated or frozen: reactivate it \
                 (Setup > Users), or re-authenticate as an active user"
            }
            LoginFailure::IpOrHoursRestricted => {
                "Salesforce refused a login from this machine's address or at this hour: add the \
                 address to the user's profile Login IP Ranges (or relax the connected app's IP \
                 restrictions), and check the profile's Login Hours"
            }
            LoginFailure::CodeExpired => {
                "the authorization code was used already or has expired (codes live minutes): \
                 run the login again"
            }
            LoginFailure::RedirectUriMismatch => {
                "the callback URL is not one of the connected app's: add it to the app's \
                 Callback URL list (Setup > App Manager > the app > Edit), or use the port of one \
                 it lists"
            }
            LoginFailure::CodeVerifier => {
                "the PKCE code verifier does not match the challenge: run the login again"
            }
            LoginFailure::Other => "check the connected app and the credentials in the config",
        }
    }
}
