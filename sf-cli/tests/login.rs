//! The ways in, end to end against the emulated org: `sfconnect login` with a test playing the
//! browser (consent page, Allow or Deny, the redirect to the listener), and a JWT bearer config;
//! each ends in `sfconnect check`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use fixtures::{EmulatedOrg, OrgConfig, Scale};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_sfconnect");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sfconnect-login-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An org whose connected app lists the callback of `port`.
async fn org_with_callback(port: u16) -> EmulatedOrg {
    let config = OrgConfig::new(3, Scale::Tiny)
        .callback_urls(vec![format!("http://localhost:{port}/OauthRedirect")]);
    EmulatedOrg::start(config).await.unwrap()
}

/// `sfconnect login` against `org` on `port`, and the authorize URL it printed.
/// A running login: the process, the authorize URL it printed, and its stderr so far and to come.
struct Login {
    child: Child,
    url: String,
    stderr: tokio::task::JoinHandle<String>,
}

async fn start_login(org: &EmulatedOrg, port: u16, out: &Path, timeout: u64) -> Login {
    start_login_with(org, port, out, timeout, false).await
}

/// As [`start_login`], the client secret given as `--client-secret` or, with `secret_in_env`,
/// as `SFCONNECT_CLIENT_SECRET`.
async fn start_login_with(
    org: &EmulatedOrg,
    port: u16,
    out: &Path,
    timeout: u64,
    secret_in_env: bool,
) -> Login {
    let info = org.login_info();
    let mut command = Command::new(BIN);
    command.args([
        "login",
        "--login-url",
        &info.login_url,
        "--client-id",
        &info.client_id,
    ]);
    if secret_in_env {
        command.env("SFCONNECT_CLIENT_SECRET", &info.client_secret);
    } else {
        command
            .env_remove("SFCONNECT_CLIENT_SECRET")
            .args(["--client-secret", &info.client_secret]);
    }
    let mut child = command
        .arg("--no-browser")
        .args([
            "--port",
            &port.to_string(),
            "--timeout",
            &timeout.to_string(),
        ])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut printed = String::new();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the URL is printed");
        printed.push_str(&line);
        printed.push('\n');
        if let Some(at) = line.find("http") {
            if line.contains("/services/oauth2/authorize?") {
                break line[at..].trim().to_string();
            }
        }
    };
    // Keep what follows for the checks on secrets.
    let rest = tokio::spawn(async move {
        let mut rest = printed;
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    Login {
        child,
        url,
        stderr: rest,
    }
}

/// The login's exit code, stdout and stderr.
async fn finish(login: Login) -> (i32, String, String) {
    let Login {
        mut child, stderr, ..
    } = login;
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .await
        .unwrap();
    let status = child.wait().await.unwrap();
    let stderr = stderr.await.unwrap();
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// The browser's side of one HTTP/1.1 exchange: status, `Location`, body. `localhost` is
/// reached on 127.0.0.1.
async fn browse(method: &str, url: &str, form: Option<&str>) -> (u16, Option<String>, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let port = authority.rsplit(':').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let body = form.unwrap_or("");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let location = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .starts_with("location:")
            .then(|| l[9..].trim().to_string())
    });
    (status, location, body.to_string())
}

/// Opens the consent page, presses `decision` (`allow` or `deny`) and follows the redirect to
/// the listener; returns the listener's page.
async fn consent(authorize_url: &str, decision: &str) -> String {
    let (status, _, page) = browse("GET", authorize_url, None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Allow") && page.contains("Deny"), "{page}");
    let marker = "name=\"consent\" value=\"";
    let at = page.find(marker).unwrap() + marker.len();
    let id = &page[at..at + page[at..].find('"').unwrap()];
    let origin = &authorize_url[..authorize_url.find("/services").unwrap()];
    let (status, location, _) = browse(
        "POST",
        &format!("{origin}/services/oauth2/authorize"),
        Some(&format!("consent={id}&decision={decision}")),
    )
    .await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let (status, _, page) = browse("GET", &location, None).await;
    assert_eq!(status, 200);
    page
}

async fn check(config: &Path) -> Value {
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("CONNECTION_STATUS"))
        .unwrap_or_else(|| panic!("no status: {text}"));
    serde_json::from_str::<Value>(line).unwrap()["connectionStatus"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_writes_a_config_that_check_accepts() {
    let port = free_port();
    let org = org_with_callback(port).await;
    let dir = scratch("allow");
    let out = dir.join("config.json");
    let login = start_login(&org, port, &out, 120).await;
    let url = login.url.clone();
    assert!(
        url.contains("code_challenge_method=S256") && url.contains("state="),
        "{url}"
    );
    assert!(
        url.contains(&format!(
            "redirect_uri=http%3A%2F%2Flocalhost%3A{port}%2FOauthRedirect"
        )),
        "{url}"
    );
    let page = consent(&login.url, "allow").await;
    assert!(page.contains("Logged in"), "{page}");
    // The code is exchanged after this page: the terminal says whether the login worked.
    assert!(page.contains("Return to the terminal"), "{page}");
    let (code, stdout, stderr) = finish(login).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Wrote") && stdout.contains("sfconnect check"),
        "{stdout}"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let info = org.login_info();
    assert_eq!(config["client_id"], json!(info.client_id));
    assert_eq!(config["auth_type"], "Client");
    assert_eq!(config["login_url"], json!(info.login_url));
    let refresh = config["refresh_token"].as_str().unwrap();
    assert!(!refresh.is_empty());
    for secret in [refresh, info.client_secret.as_str()] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret was printed"
        );
    }
    assert!(
        stderr.contains("--client-secret was visible to other users")
            && stderr.contains("SFCONNECT_CLIENT_SECRET"),
        "{stderr}"
    );
    let status = check(&out).await;
    assert_eq!(status["status"], "SUCCEEDED", "{status}");
    org.shutdown().await;
}

/// The consumer secret given as `SFCONNECT_CLIENT_SECRET`, out of the process list: it goes
/// into the config as from the flag, and nothing is said about the command line.
#[tokio::test(flavor = "multi_thread")]
async fn the_client_secret_can_come_from_the_environment() {
    let port = free_port();
    let org = org_with_callback(port).await;
    let dir = scratch("env-secret");
    let out = dir.join("config.json");
    let login = start_login_with(&org, port, &out, 120, true).await;
    let page = consent(&login.url, "allow").await;
    assert!(page.contains("Logged in"), "{page}");
    let (code, stdout, stderr) = finish(login).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let info = org.login_info();
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(config["client_secret"], json!(info.client_secret));
    assert!(!stderr.contains("--client-secret"), "{stderr}");
    assert!(!stderr.contains(info.client_secret.as_str()), "{stderr}");
    assert_eq!(check(&out).await["status"], "SUCCEEDED");
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_consent_is_explained() {
    let port = free_port();
    let org = org_with_callback(port).await;
    let dir = scratch("deny");
    let out = dir.join("config.json");
    let login = start_login(&org, port, &out, 120).await;
    let page = consent(&login.url, "deny").await;
    assert!(page.contains("denied"), "{page}");
    let (code, _, stderr) = finish(login).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the consent was denied in the browser (error=access_denied)"),
        "{stderr}"
    );
    assert!(!out.exists());
    org.shutdown().await;
}

/// A redirect with another `state` (a stale tab of an earlier login, another page) is refused
/// with a 400 and does not end the login: this login's own redirect still completes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_with_another_state_is_refused_and_the_login_waits_on() {
    let port = free_port();
    let org = org_with_callback(port).await;
    let dir = scratch("state");
    let out = dir.join("config.json");
    let login = start_login(&org, port, &out, 120).await;
    let callback = format!("http://localhost:{port}/OauthRedirect");
    let (status, _, _) = browse("GET", &format!("http://localhost:{port}/favicon.ico"), None).await;
    assert_eq!(status, 404, "other paths are waited past");
    let (status, _, page) =
        browse("GET", &format!("{callback}?code=aPrx1&state=forged"), None).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("state does not match"), "{page}");
    assert!(!out.exists(), "the forged code was not used");
    let page = consent(&login.url, "allow").await;
    assert!(page.contains("Logged in"), "{page}");
    let (code, stdout, stderr) = finish(login).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(config["refresh_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    org.shutdown().await;
}

/// The connected app does not list the callback: Salesforce shows an error page and never
/// redirects, so the login times out and says what to fix.
#[tokio::test(flavor = "multi_thread")]
async fn an_unlisted_callback_times_out_with_the_fix() {
    let port = free_port();
    let org = EmulatedOrg::start(OrgConfig::new(3, Scale::Tiny))
        .await
        .unwrap();
    let dir = scratch("mismatch");
    let out = dir.join("config.json");
    let login = start_login(&org, port, &out, 2).await;
    let (status, location, page) = browse("GET", &login.url, None).await;
    assert_eq!((status, location), (400, None));
    assert!(page.contains("redirect_uri_mismatch"), "{page}");
    let (code, _, stderr) = finish(login).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no answer from the browser within 2 s"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "add http://localhost:{port}/OauthRedirect to the connected app's callback URLs"
        )),
        "{stderr}"
    );
    org.shutdown().await;
}

/// A JWT bearer config (the TEST-ONLY key of `fixtures/keys/`) passes `check`; a key the
/// connected app does not know is a config error naming `private_key`.
#[tokio::test(flavor = "multi_thread")]
async fn a_jwt_config_passes_check() {
    let org = EmulatedOrg::start(OrgConfig::new(3, Scale::Tiny))
        .await
        .unwrap();
    let dir = scratch("jwt");
    let info = org.login_info();
    let mut config = json!({
        "auth_type": "Client", "auth_flow": "jwt", "client_id": info.client_id, "client_secret": "",
        "username": OrgConfig::new(3, Scale::Tiny).username, "login_url": info.login_url,
        "private_key": fixtures::JWT_TEST_PRIVATE_KEY_PEM,
    });
    let path = dir.join("jwt.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let status = check(&path).await;
    assert_eq!(status["status"], "SUCCEEDED", "{status}");

    config["private_key"] = json!(fixtures::JWT_OTHER_PRIVATE_KEY_PEM);
    std::fs::write(&path, config.to_string()).unwrap();
    let status = check(&path).await;
    assert_eq!(status["status"], "FAILED", "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("invalid assertion") && message.contains("check `private_key`"),
        "{message}"
    );
    assert!(!message.contains("MII"), "{message}");
    org.shutdown().await;
}
