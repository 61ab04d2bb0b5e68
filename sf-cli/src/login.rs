//! `sfconnect login`: the OAuth 2.0 web-server flow (PKCE S256, a checked `state`) from a
//! terminal, ending in a ready config file.
//!
//! It listens once on `127.0.0.1:PORT` for the connected app's callback
//! `http://localhost:PORT/OauthRedirect` (1717 unless `--port` says otherwise: the Salesforce
//! CLI's, which many connected apps list already), prints the authorize URL on stderr and tries
//! to open it in a browser, waits for the redirect (`--timeout`), exchanges the code, and writes
//! the config (mode 0600 on Unix). Secrets (the client secret, the code, the verifier, the
//! refresh token) are written to the file only, never to stdout or stderr.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use sf_auth::web_login::{self, CallbackListener, CodeExchange, Pkce};
use sf_auth::{LoginUrl, Secret};

/// The environment variable `login` reads the consumer secret from when `--client-secret` is
/// not given.
const SECRET_ENV: &str = "SFCONNECT_CLIENT_SECRET";

/// `sfconnect login`'s arguments.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// Log in at test.salesforce.com (a sandbox).
    #[arg(long, conflicts_with = "login_url")]
    sandbox: bool,
    /// Log in at this URL: a My Domain (https://acme.my.salesforce.com) or an emulated org.
    #[arg(long)]
    login_url: Option<String>,
    /// The connected app's consumer key.
    #[arg(long)]
    client_id: String,
    /// The connected app's consumer secret (needed when the app requires it for the web-server
    /// flow, Salesforce's default, and by the config's refresh-token grant). Better given as
    /// the environment variable SFCONNECT_CLIENT_SECRET: a command line is visible to every user
    /// of the machine while login waits.
    #[arg(long)]
    client_secret: Option<String>,
    /// The callback's port: the connected app must list http://localhost:PORT/OauthRedirect.
    #[arg(long, default_value_t = 1717)]
    port: u16,
    /// Where to write the config.
    #[arg(long, default_value = "config.json")]
    out: PathBuf,
    /// Print the URL without trying to open a browser.
    #[arg(long)]
    no_browser: bool,
    /// How long to wait for the browser, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Runs the login; the message of an error says what to do.
pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let login_url = LoginUrl::resolve(args.sandbox, args.login_url.as_deref())?;
    let listener = CallbackListener::bind(args.port).await.with_context(|| {
        format!(
            "cannot listen on 127.0.0.1:{} for the callback (is another login running?); \
             choose another --port, one whose http://localhost:PORT/OauthRedirect the \
             connected app lists",
            args.port
        )
    })?;
    let redirect_uri = listener.redirect_uri();
    let pkce = Pkce::new()?;
    let state = web_login::random_token()?;
    let url = web_login::authorize_url(
        &login_url,
        &args.client_id,
        &redirect_uri,
        &state,
        &pkce.challenge,
    );
    eprintln!(
        "Open this URL in a browser and allow access, as the user whose data will be synced:\n\n  \
         {url}\n\nThe connected app must list {redirect_uri} as a callback URL. Waiting up to {} s...",
        args.timeout
    );
    if !args.no_browser {
        open_browser(url.as_str());
    }
    let code = match tokio::time::timeout(Duration::from_secs(args.timeout), listener.code(&state))
        .await
    {
        Ok(answer) => answer?,
        Err(_) => bail!(
            "no answer from the browser within {} s. If Salesforce showed \
             `redirect_uri_mismatch`, add {redirect_uri} to the connected app's callback URLs \
             (Setup > App Manager > the app > Edit), or run again with the --port of one it \
             lists; otherwise run again and finish the consent in time (--timeout)",
            args.timeout
        ),
    };
    let on_command_line = args.client_secret.is_some();
    let client_secret = args
        .client_secret
        .or_else(|| std::env::var(SECRET_ENV).ok())
        .filter(|s| !s.trim().is_empty())
        .map(Secret::new);
    let tokens = web_login::exchange_code(CodeExchange {
        login_url: &login_url,
        client_id: &args.client_id,
        client_secret: client_secret.as_ref(),
        code: &code,
        code_verifier: &pkce.verifier,
        redirect_uri: &redirect_uri,
    })
    .await
    .map_err(|e| anyhow!("exchanging the code failed: {e}"))?;
    let refresh_token = tokens.refresh_token.ok_or_else(|| {
        anyhow!(
            "Salesforce gave no refresh token: add the scope \"Perform requests at any time \
             (refresh_token, offline_access)\" to the connected app and log in again"
        )
    })?;
    let config = config(
        &args.client_id,
        client_secret.as_ref(),
        &refresh_token,
        args.sandbox,
        args.login_url.as_deref(),
    );
    write_private(&args.out, &config)?;
    println!(
        "Logged in to {}. Wrote {} (mode 0600; it holds the refresh token). Next: sfconnect check --config {}",
        tokens.instance_url,
        args.out.display(),
        args.out.display()
    );
    if on_command_line {
        eprintln!(
            "Note: --client-secret was visible to other users of this machine (the process \
             list, shell history) while login waited; give it as {SECRET_ENV} instead next time."
        );
    }
    if client_secret.is_none() {
        eprintln!(
            "Note: no --client-secret or {SECRET_ENV} given; the config's refresh-token grant \
             needs `client_secret`: add it to {} before syncing.",
            args.out.display()
        );
    }
    Ok(())
}

/// The config a sync reads: Airbyte's keys, `auth_type` as the platform writes it.
fn config(
    client_id: &str,
    client_secret: Option<&Secret>,
    refresh_token: &Secret,
    sandbox: bool,
    login_url: Option<&str>,
) -> Value {
    let mut config = json!({
        "auth_type": "Client",
        "client_id": client_id,
        "refresh_token": refresh_token.expose(),
        "is_sandbox": sandbox,
    });
    if let Some(secret) = client_secret {
        config["client_secret"] = json!(secret.expose());
    }
    if let Some(url) = login_url {
        config["login_url"] = json!(url.trim_end_matches('/'));
    }
    config
}

/// Writes the file readable by its owner only (created so from the start on Unix).
fn write_private(path: &Path, config: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(config)?;
    text.push('\n');
    // Whole or not at all: a crash while writing must not lose the refresh token already there.
    crate::files::write_atomically(path, text.as_bytes(), true)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Best effort: the desktop's opener, in the background; any failure is ignored (the URL is
/// printed anyway).
fn open_browser(url: &str) {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        // Not `cmd /C start`: cmd would read the URL's `&`s as command separators.
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    let _ = command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
