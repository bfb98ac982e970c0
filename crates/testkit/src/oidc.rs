//! A real OpenID Connect provider on loopback: panva's certified `oidc-provider` (Node.js).
//!
//! [`OidcProvider::start`] writes the [`OidcConfig`] as JSON to a temp dir and runs
//! `node tests/oidc/provider.mjs <dir>/config.json` in its own process group. The script
//! (our own small program around the library, pinned in `tests/oidc/package-lock.json`)
//! binds `127.0.0.1:0`, so there is no port race, and prints `READY http://127.0.0.1:PORT`
//! once it serves; that URL is the issuer. Everything the process prints goes to
//! `<dir>/provider.log` (one line per request and per provider error), quoted in errors.
//!
//! What the provider does, which is what a server under test can rely on:
//! - Plain HTTP; issuer `http://127.0.0.1:PORT` (no path), discovery at
//!   `/.well-known/openid-configuration`, keys at `/jwks` (one RSA key, ID tokens are
//!   `RS256`), endpoints `/auth`, `/token`, `/me` (userinfo).
//! - Authorization code flow only (`response_type=code`, query response mode). PKCE with
//!   `S256` is **required** for every client. The redirect back carries `code`, `state` and
//!   `iss` (RFC 9207).
//! - Clients are confidential: at the token endpoint each one may authenticate with
//!   `client_secret_basic` (HTTP Basic) or `client_secret_post` (form fields), both are
//!   accepted (not both at once). A code is single use: redeeming it again fails with
//!   `invalid_grant` and revokes the tokens issued for it.
//! - Scopes `openid` (`sub`, `postdesk_role`, `groups`), `email` (`email`,
//!   `email_verified`) and `profile` (`name`). The ID token carries every claim the granted
//!   scopes cover (not only `sub`), plus `nonce` when the request had one; userinfo returns
//!   the same claims.
//! - Sign-in is our own page: `GET /interaction/:uid` shows a form with the fields `login`
//!   (email, case-insensitive, or `sub`) and `password`; `POST /interaction/:uid` checks them
//!   (a wrong one gets the form again, with status 401). Consent is always granted, so there
//!   is no consent page. [`OidcProvider::sign_in`] goes through this like a browser would.
//!
//! Needs `node` (or `$POSTDESK_NODE`) and `npm ci` in `tests/oidc` (`scripts/test` does
//! both). The Node process is stopped on drop, and exits by itself when the test process
//! dies (it watches its stdin pipe).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use reqwest::Url;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::process;

/// How long a start may take before it is reported as failed.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one HTTP request of [`OidcProvider::sign_in`] may take.
const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// Redirects and pages [`OidcProvider::sign_in`] follows before giving up.
const MAX_HOPS: usize = 20;
/// Lines of log quoted in error messages.
const LOG_TAIL: usize = 30;

/// One registered (confidential, first-party) client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClient {
    /// The `client_id`.
    pub client_id: String,
    /// The `client_secret`.
    pub client_secret: String,
    /// The exact redirect URIs the client may use (compared as strings by the provider).
    pub redirect_uris: Vec<String>,
}

/// One account that can sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcUser {
    /// The `sub` claim; also accepted as the login name.
    pub sub: String,
    /// The `email` claim; the login name on the sign-in form (case-insensitive).
    pub email: String,
    /// The `email_verified` claim.
    pub email_verified: bool,
    /// The `name` claim (scope `profile`).
    pub name: String,
    /// The custom `postdesk_role` claim (comes with scope `openid`); absent when `None`.
    #[serde(
        rename = "postdesk_role",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub role: Option<String>,
    /// The custom `groups` claim, an array (comes with scope `openid`); absent when empty.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub groups: Vec<String>,
    /// The password the sign-in form accepts.
    pub password: String,
}

/// What the provider serves: its clients and accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcConfig {
    /// Registered clients; the first one is what [`OidcProvider::client_id`] and friends
    /// return. Must not be empty.
    pub clients: Vec<OidcClient>,
    /// Accounts that can sign in.
    pub users: Vec<OidcUser>,
}

impl OidcConfig {
    /// One client, `postdesk-test` with a random secret and the single redirect URI
    /// `redirect_uri`, and three users:
    ///
    /// | login (email)             | sub          | email_verified | postdesk_role | groups              | password              |
    /// |---------------------------|--------------|----------------|---------------|---------------------|-----------------------|
    /// | `ana@example.test`        | `ana`        | true           | `agent`       | `support`           | `ana-password`        |
    /// | `root@example.test`       | `root`       | true           | `admin`       | `support`, `admins` | `root-password`       |
    /// | `unverified@example.test` | `unverified` | false          | `agent`       | `support`           | `unverified-password` |
    pub fn default_for(redirect_uri: &str) -> OidcConfig {
        let user = |sub: &str, name: &str, verified: bool, role: &str, groups: &[&str]| OidcUser {
            sub: sub.to_string(),
            email: format!("{sub}@example.test"),
            email_verified: verified,
            name: name.to_string(),
            role: Some(role.to_string()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            password: format!("{sub}-password"),
        };
        OidcConfig {
            clients: vec![OidcClient {
                client_id: "postdesk-test".to_string(),
                client_secret: format!("secret-{}", uuid::Uuid::new_v4().simple()),
                redirect_uris: vec![redirect_uri.to_string()],
            }],
            users: vec![
                user("ana", "Ana Agent", true, "agent", &["support"]),
                user("root", "Root Admin", true, "admin", &["support", "admins"]),
                user("unverified", "Una Verified", false, "agent", &["support"]),
            ],
        }
    }

    /// The user whose email (case-insensitive) or `sub` is `login`, as the sign-in form
    /// looks them up.
    pub fn user(&self, login: &str) -> Option<&OidcUser> {
        self.users
            .iter()
            .find(|u| u.sub == login || u.email.eq_ignore_ascii_case(login))
    }
}

/// The JSON handed to `provider.mjs`.
#[derive(Serialize)]
struct ScriptConfig<'a> {
    port: u16,
    exit_on_stdin_eof: bool,
    #[serde(flatten)]
    config: &'a OidcConfig,
}

/// A running provider; see the [module docs](self). Stopped on drop.
pub struct OidcProvider {
    child: Mutex<Child>,
    /// Held open so the script can notice (EOF) when this process goes away.
    _stdin: Option<ChildStdin>,
    issuer: String,
    port: u16,
    config: OidcConfig,
    dir: TempDir,
}

impl OidcProvider {
    /// Starts the provider with `config` and waits until it serves (its `READY` line).
    ///
    /// Fails with the command and the tail of its log when Node or the `oidc-provider`
    /// package is missing, the config is refused, or it is not up within a few seconds.
    pub async fn start(config: OidcConfig) -> anyhow::Result<OidcProvider> {
        ensure!(
            !config.clients.is_empty(),
            "OidcConfig needs at least one client"
        );
        let root = workspace_root();
        let script = root.join("tests/oidc/provider.mjs");
        let package = root.join("tests/oidc/node_modules/oidc-provider");
        ensure!(
            package.is_dir(),
            "the oidc-provider package is not installed ({} is missing): run scripts/test \
             (it runs `npm ci` in tests/oidc)",
            package.display()
        );
        let node = std::env::var_os("POSTDESK_NODE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("node"));

        let dir = tempfile::Builder::new()
            .prefix("postdesk-oidc-")
            .tempdir()
            .context("cannot create a temp dir for the OIDC provider")?;
        let config_path = dir.path().join("config.json");
        let json = serde_json::to_vec_pretty(&ScriptConfig {
            port: 0,
            exit_on_stdin_eof: true,
            config: &config,
        })?;
        fs::write(&config_path, json)?;
        let log = dir.path().join("provider.log");
        let log_file = fs::File::create(&log)?;
        let command = format!(
            "{} {} {}",
            node.display(),
            script.display(),
            config_path.display()
        );
        let started = Instant::now();
        let mut child = Command::new(&node)
            .arg(&script)
            .arg(&config_path)
            .current_dir(dir.path())
            .env("NODE_ENV", "test")
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run `{command}`: is node installed? (scripts/test installs it; \
                     or set POSTDESK_NODE)"
                )
            })?;
        let stdin = child.stdin.take();
        let mut provider = OidcProvider {
            child: Mutex::new(child),
            _stdin: stdin,
            issuer: String::new(),
            port: 0,
            config,
            dir,
        };

        let deadline = Instant::now() + START_TIMEOUT;
        let ready = loop {
            if let Err(e) = provider.check_alive() {
                break Err(e);
            }
            let text = fs::read_to_string(&log).unwrap_or_default();
            if let Some(issuer) = text
                .lines()
                .find_map(|line| line.strip_prefix("READY "))
                .map(str::trim)
            {
                break Ok(issuer.to_string());
            }
            if Instant::now() >= deadline {
                break Err(anyhow!("no READY line within {START_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let issuer = ready
            .and_then(|issuer| {
                let url = Url::parse(&issuer)
                    .with_context(|| format!("bad issuer in the READY line: {issuer:?}"))?;
                let port = url
                    .port()
                    .ok_or_else(|| anyhow!("no port in the issuer {issuer:?}"))?;
                Ok((issuer, port))
            })
            .map_err(|e| {
                anyhow!(
                    "OIDC provider did not start: `{command}`: {e:#}\n--- provider.log tail ---\n{}",
                    process::tail(&log, LOG_TAIL)
                )
            })?;
        (provider.issuer, provider.port) = issuer;
        tracing::debug!(
            "oidc provider up at {} in {:?}",
            provider.issuer,
            started.elapsed()
        );
        Ok(provider)
    }

    /// The issuer, `http://127.0.0.1:PORT` (no trailing slash), exactly as in discovery and
    /// in the `iss` claim.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Always `"127.0.0.1"`.
    pub fn host(&self) -> &str {
        crate::HOST
    }

    /// The port the provider listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The first configured client's `client_id`.
    pub fn client_id(&self) -> &str {
        &self.config.clients[0].client_id
    }

    /// The first configured client's `client_secret`.
    pub fn client_secret(&self) -> &str {
        &self.config.clients[0].client_secret
    }

    /// The first configured client's first redirect URI (empty if it has none).
    pub fn redirect_uri(&self) -> &str {
        self.config.clients[0]
            .redirect_uris
            .first()
            .map_or("", String::as_str)
    }

    /// The configuration the provider was started with.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// See [`OidcConfig::user`].
    pub fn user(&self, login: &str) -> Option<&OidcUser> {
        self.config.user(login)
    }

    /// The instance's temp dir (`config.json`, `provider.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the provider printed so far (requests, errors), for diagnostics.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("provider.log")).unwrap_or_default()
    }

    /// Signs in like a fresh browser (no cookies yet) would: requests `authorize_url` (an
    /// authorization request to this provider, built by the code under test), follows the
    /// provider's redirects while keeping its cookies, fills in the login form with `login`
    /// (email or `sub`) and `password`, submits it, and follows the redirects that follow.
    ///
    /// Returns the URL of the first redirect that leaves the provider (one of the configured
    /// redirect URIs, or any other origin) **without fetching it**: on success it carries
    /// `code`, `state` and `iss`; if the provider refused the request but could redirect
    /// (e.g. no PKCE), it carries `error` and `error_description` instead.
    ///
    /// Fails when the login is refused (the form comes back), or the provider answers with
    /// an error page (e.g. unknown client or redirect URI); the error quotes the page.
    pub async fn sign_in(
        &self,
        authorize_url: &str,
        login: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        let issuer = Url::parse(&self.issuer)?;
        let mut url = Url::parse(authorize_url)
            .with_context(|| format!("sign_in: bad authorize URL {authorize_url:?}"))?;
        ensure!(
            url.origin() == issuer.origin(),
            "sign_in: {authorize_url} is not on this provider ({})",
            self.issuer
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(IO_TIMEOUT)
            .build()?;
        let mut jar = CookieJar::default();
        let mut form: Option<Vec<(&str, &str)>> = None;
        let mut submitted = false;
        let mut trail = Vec::new();
        for _ in 0..MAX_HOPS {
            let method = if form.is_some() { "POST" } else { "GET" };
            trail.push(format!("{method} {url}"));
            let request = match form.take() {
                Some(fields) => http.post(url.clone()).form(&fields),
                None => http.get(url.clone()),
            };
            let request = match jar.header_for(&url) {
                Some(cookies) => request.header(COOKIE, cookies),
                None => request,
            };
            let response = request
                .send()
                .await
                .with_context(|| format!("sign_in: {method} {url} failed"))?;
            jar.store(&url, response.headers());
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| anyhow!("sign_in: {status} without Location from {url}"))?;
                let next = url
                    .join(location)
                    .with_context(|| format!("sign_in: bad Location {location:?} from {url}"))?;
                if next.origin() != issuer.origin() || self.is_redirect_uri(&next) {
                    return Ok(next.to_string());
                }
                url = next;
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            if let Some(action) = login_form_action(&body) {
                if submitted {
                    bail!(
                        "sign_in: the provider rejected the login of {login:?} ({status}: {})\n\
                         trail: {}",
                        error_message(&body).unwrap_or("no message"),
                        trail.join(" -> ")
                    );
                }
                url = url
                    .join(&action)
                    .with_context(|| format!("sign_in: bad form action {action:?}"))?;
                form = Some(vec![("login", login), ("password", password)]);
                submitted = true;
                continue;
            }
            bail!(
                "sign_in: unexpected {status} from {url}:\n{}\ntrail: {}\n--- provider.log tail ---\n{}",
                body.chars().take(2000).collect::<String>(),
                trail.join(" -> "),
                process::tail(&self.dir.path().join("provider.log"), LOG_TAIL)
            );
        }
        bail!(
            "sign_in: still on the provider after {MAX_HOPS} requests: {}",
            trail.join(" -> ")
        )
    }

    /// Whether `url`, without query and fragment, is one of the configured redirect URIs.
    fn is_redirect_uri(&self, url: &Url) -> bool {
        let mut bare = url.clone();
        bare.set_query(None);
        bare.set_fragment(None);
        self.config
            .clients
            .iter()
            .flat_map(|c| &c.redirect_uris)
            .any(|r| Url::parse(r).is_ok_and(|r| r == bare))
    }

    fn check_alive(&self) -> anyhow::Result<()> {
        let mut child = self
            .child
            .lock()
            .map_err(|_| anyhow!("child lock poisoned"))?;
        match child.try_wait() {
            Ok(Some(status)) => Err(anyhow!("the OIDC provider process exited with {status}")),
            Ok(None) => Ok(()),
            Err(e) => Err(anyhow!("cannot check the OIDC provider process: {e}")),
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        process::stop_group(child, Duration::from_secs(2));
    }
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// The workspace root (this crate is `crates/testkit`).
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest_dir.join("../.."), Path::to_path_buf)
}

/// The `action` of our login page's `<form id="login" ...>`, if `html` is that page.
fn login_form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form id=\"login\"")?..];
    let form = &form[..form.find('>')?];
    let start = form.find("action=\"")? + "action=\"".len();
    let end = start + form[start..].find('"')?;
    Some(form[start..end].replace("&amp;", "&"))
}

/// The text of our login page's error paragraph, if any.
fn error_message(html: &str) -> Option<&str> {
    let start = html.find("id=\"error\"")?;
    let text = &html[start..];
    let text = &text[text.find('>')? + 1..];
    Some(text[..text.find('<')?].trim())
}

/// A minimal cookie jar for one host: remembers `name=value` per (path, name) from
/// `Set-Cookie`, drops expired ones, and sends those whose path matches.
#[derive(Default)]
struct CookieJar {
    cookies: BTreeMap<(String, String), String>,
}

impl CookieJar {
    fn store(&mut self, url: &Url, headers: &reqwest::header::HeaderMap) {
        for header in headers.get_all(SET_COOKIE) {
            let Ok(header) = header.to_str() else {
                continue;
            };
            let mut parts = header.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            // Default path: the request path up to its last '/' (RFC 6265 5.1.4).
            let mut path = match url.path().rfind('/') {
                Some(0) | None => "/".to_string(),
                Some(i) => url.path()[..i].to_string(),
            };
            let mut expired = false;
            for attribute in parts {
                let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
                let (key, val) = (key.trim().to_ascii_lowercase(), val.trim());
                match key.as_str() {
                    "path" if val.starts_with('/') => path = val.to_string(),
                    "max-age" => expired |= val.parse::<i64>().is_ok_and(|age| age <= 0),
                    // Deleting cookies is done with an expiry in 1970.
                    "expires" => expired |= val.contains("1970"),
                    _ => {}
                }
            }
            if expired {
                self.cookies.remove(&(path, name));
            } else {
                self.cookies.insert((path, name), value);
            }
        }
    }

    fn header_for(&self, url: &Url) -> Option<String> {
        let request_path = url.path();
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|((path, _), _)| {
                request_path == path
                    || (request_path.starts_with(path.as_str())
                        && (path.ends_with('/') || request_path[path.len()..].starts_with('/')))
            })
            .map(|((_, name), value)| format!("{name}={value}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}
