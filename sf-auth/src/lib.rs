//! sf-auth: OAuth 2.0 and the one authenticated session (in progress).
