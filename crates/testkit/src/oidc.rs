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
//!   `RS256`), endpoints `/auth`, `/token`, `/me` (userinfo), `/token/introspection`,
//!   `/token/revocation`.
//! - Authorization code flow (`response_type=code`, query response mode) and the
//!   `refresh_token` grant (see below). PKCE with
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
//! # Mailbox OAuth2 (what Gmail and Microsoft 365 do for IMAP and SMTP)
//!
//! The same provider is also the authorization server of mailbox sign-in, for Dovecot's
//! `oauth2` passdb (see [`crate::dovecot`] and [`OidcConfig::mailbox`]):
//! - Scope [`MAIL_SCOPE`] (`mail`, like Google's `https://mail.google.com/`) grants
//!   mailbox access. Every code exchange whose scopes include `mail` (or `offline_access`,
//!   which the library keeps only with `prompt=consent`) also answers a `refresh_token`.
//!   Plain sign-in scopes (`openid email profile`) get none, as before.
//! - Access tokens are opaque and live [`OidcConfig::access_token_ttl_secs`] (3600 unless
//!   set; a few seconds for expiry tests); refresh tokens live
//!   [`OidcConfig::refresh_token_ttl_secs`] (86400). Refresh tokens are **rotated on every
//!   use**: the answer has a new one and the used one is consumed. Presenting a consumed
//!   one is refused with `invalid_grant` **and revokes the whole grant** (reuse
//!   detection), so its successor is refused too.
//! - Introspection (RFC 7662) at [`OidcProvider::introspection_endpoint`]
//!   (`/token/introspection`), HTTP Basic with any registered client (an anonymous call
//!   gets 400 `invalid_request`): an active access token answers `active: true`, `sub`,
//!   `client_id`, `scope`, `exp`, `iat`, `iss`, `token_type` and `username`, the account's
//!   email (the mailbox name); anything unknown, expired or revoked answers
//!   `{"active": false}`. [`OidcConfig::introspection_client`] registers a client for a
//!   resource server that has no flow of its own ([`INTROSPECTION_CLIENT_ID`], `dovecot`,
//!   in [`OidcConfig::mailbox`]).
//! - Revocation (RFC 7009) at [`OidcProvider::revocation_endpoint`] (`/token/revocation`),
//!   a client revoking its own tokens: revoking a refresh or access token revokes its
//!   grant, i.e. every token issued under it. [`OidcProvider::revoke_grants`] does that to
//!   every grant of an account, from the provider's side (a test-only endpoint guarded by a
//!   random admin token), as when the user removes the app's access.
//! - Refused refreshes answer 400 `{"error": "invalid_grant", "error_description": "grant
//!   request is invalid"}` (the library keeps the precise reason, e.g. "refresh token
//!   already used", in `provider.log` only).
//! - [`OidcProvider::authorize`] runs the code flow with PKCE non-interactively and
//!   redeems the code ([`TokenSet`]); [`OidcProvider::refresh`],
//!   [`OidcProvider::revoke`] and [`OidcProvider::introspect`] call the other endpoints as
//!   the first client (or the introspection client). A refusal of the token endpoint is a
//!   [`TokenError`] inside the `anyhow::Error`.
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

/// What the provider serves: its clients and accounts, and how long tokens live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcConfig {
    /// Registered clients; the first one is what [`OidcProvider::client_id`] and friends
    /// return. Must not be empty.
    pub clients: Vec<OidcClient>,
    /// Accounts that can sign in.
    pub users: Vec<OidcUser>,
    /// Lifetime of access tokens (`expires_in` of the token response), in seconds.
    /// [`OidcConfig::default_for`] sets 3600; a few seconds makes expiry testable.
    #[serde(default = "default_access_token_ttl")]
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens, in seconds (86400 by default). A rotated one gets a
    /// fresh lifetime.
    #[serde(default = "default_refresh_token_ttl")]
    pub refresh_token_ttl_secs: u64,
    /// A client that has no flow of its own and is only used to call the introspection
    /// endpoint (a resource server, e.g. Dovecot's `oauth2` passdb); its `redirect_uris`
    /// are ignored. Any client may introspect, this one is for servers that should not be
    /// able to do anything else. [`OidcConfig::mailbox`] sets one, `dovecot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_client: Option<OidcClient>,
}

fn default_access_token_ttl() -> u64 {
    3600
}

fn default_refresh_token_ttl() -> u64 {
    86400
}

/// The scope that grants mailbox access (IMAP, SMTP) and brings a refresh token, like
/// Google's `https://mail.google.com/`; Dovecot's `oauth2` passdb from
/// [`crate::dovecot::OAuth2Passdb::for_provider`] requires it.
pub const MAIL_SCOPE: &str = "mail";

/// The `client_id` of the introspection client of [`OidcConfig::mailbox`].
pub const INTROSPECTION_CLIENT_ID: &str = "dovecot";

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
            access_token_ttl_secs: default_access_token_ttl(),
            refresh_token_ttl_secs: default_refresh_token_ttl(),
            introspection_client: None,
        }
    }

    /// [`OidcConfig::default_for`] plus an [`introspection_client`](Self::introspection_client)
    /// with id [`INTROSPECTION_CLIENT_ID`] (`dovecot`) and a random secret: what a mail
    /// server checking bearer tokens needs. The mailbox of each user is their email
    /// (`ana@example.test`, ...), returned as `username` by introspection.
    pub fn mailbox(redirect_uri: &str) -> OidcConfig {
        OidcConfig {
            introspection_client: Some(OidcClient {
                client_id: INTROSPECTION_CLIENT_ID.to_string(),
                client_secret: format!("secret-{}", uuid::Uuid::new_v4().simple()),
                redirect_uris: Vec::new(),
            }),
            ..OidcConfig::default_for(redirect_uri)
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

/// A successful token response (authorization code or refresh token grant).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenSet {
    /// The bearer token for IMAP `AUTHENTICATE XOAUTH2` / SMTP `AUTH XOAUTH2` (opaque).
    pub access_token: String,
    /// Present when the grant includes scope `mail` or `offline_access`; a new one on every
    /// refresh (rotation).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds the access token is valid ([`OidcConfig::access_token_ttl_secs`]).
    pub expires_in: u64,
    /// The granted scopes, space separated.
    #[serde(default)]
    pub scope: String,
    /// `Bearer`.
    pub token_type: String,
    /// Present when scope `openid` was granted (not on refresh).
    #[serde(default)]
    pub id_token: Option<String>,
}

/// The token endpoint refused a request: its status and OAuth error (RFC 6749 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// The HTTP status (400 for `invalid_grant`, 401 for `invalid_client`).
    pub status: u16,
    /// The `error` code, e.g. `invalid_grant`.
    pub error: String,
    /// The `error_description`, e.g. `grant request is invalid`.
    pub error_description: Option<String>,
    /// The whole response body.
    pub body: String,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "token endpoint refused ({}): {}: {}",
            self.status,
            self.error,
            self.error_description
                .as_deref()
                .unwrap_or("(no description)")
        )
    }
}

impl std::error::Error for TokenError {}

/// Who calls an endpoint of the provider.
#[derive(Clone, Copy)]
enum Caller<'a> {
    /// A registered client, with HTTP Basic.
    Client(&'a OidcClient),
    /// The test harness, with the admin token (`/testkit/...` endpoints).
    Admin,
}

/// The JSON handed to `provider.mjs`.
#[derive(Serialize)]
struct ScriptConfig<'a> {
    port: u16,
    exit_on_stdin_eof: bool,
    admin_token: &'a str,
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
    /// Bearer token of the script's `/testkit/...` endpoints.
    admin_token: String,
    http: reqwest::Client,
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
        let admin_token = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let json = serde_json::to_vec_pretty(&ScriptConfig {
            port: 0,
            exit_on_stdin_eof: true,
            admin_token: &admin_token,
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
            admin_token,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(IO_TIMEOUT)
                .build()?,
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

    /// `<issuer>/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// `<issuer>/auth`.
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    /// `<issuer>/token/introspection` (RFC 7662; HTTP Basic with a client's credentials,
    /// form field `token`).
    pub fn introspection_endpoint(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// `<issuer>/token/revocation` (RFC 7009; a client revokes its own tokens).
    pub fn revocation_endpoint(&self) -> String {
        format!("{}/token/revocation", self.issuer)
    }

    /// The configured [`OidcConfig::introspection_client`], if any.
    pub fn introspection_client(&self) -> Option<&OidcClient> {
        self.config.introspection_client.as_ref()
    }

    /// Runs the whole authorization code flow with PKCE (`S256`) for the first client and
    /// its first redirect URI, as a mail client's "connect your mailbox" would: builds the
    /// authorization request for `scope` (e.g. `"openid email mail"`; see [`MAIL_SCOPE`]),
    /// signs `login` in with [`OidcProvider::sign_in`], checks `state` on the way back,
    /// and redeems the code at the token endpoint (HTTP Basic client authentication).
    ///
    /// With scope `mail` (or `offline_access` plus `prompt=consent`, which this does not
    /// send) the answer carries a refresh token. Fails with the provider's words when any
    /// step is refused.
    pub async fn authorize(
        &self,
        login: &str,
        password: &str,
        scope: &str,
    ) -> anyhow::Result<TokenSet> {
        let client = &self.config.clients[0];
        let redirect_uri = self.redirect_uri();
        ensure!(
            !redirect_uri.is_empty(),
            "authorize: the first client has no redirect URI"
        );
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = {
            use base64::Engine;
            use sha2::Digest;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()))
        };
        let state = uuid::Uuid::new_v4().simple().to_string();
        let url = Url::parse_with_params(
            &self.authorization_endpoint(),
            [
                ("response_type", "code"),
                ("client_id", client.client_id.as_str()),
                ("redirect_uri", redirect_uri),
                ("scope", scope),
                ("state", state.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )?;
        let back = self.sign_in(url.as_str(), login, password).await?;
        let back = Url::parse(&back)?;
        let param = |name: &str| {
            back.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(error) = param("error") {
            bail!(
                "authorize: the provider refused: {error}: {}",
                param("error_description").unwrap_or_default()
            );
        }
        ensure!(
            param("state").as_deref() == Some(state.as_str()),
            "authorize: state mismatch in {back}"
        );
        let code = param("code").ok_or_else(|| anyhow!("authorize: no code in {back}"))?;
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &verifier),
        ])
        .await
    }

    /// Redeems `refresh_token` at the token endpoint as the first client (the
    /// `refresh_token` grant). The answer has a new access token and a new refresh token:
    /// `refresh_token` is consumed (rotation). Presenting a consumed refresh token again
    /// is refused and revokes the whole grant, so its successor stops working too.
    ///
    /// When the provider refuses (e.g. `invalid_grant` for a used, revoked or expired
    /// refresh token), the error is a [`TokenError`]: `err.downcast_ref::<TokenError>()`.
    pub async fn refresh(&self, refresh_token: &str) -> anyhow::Result<TokenSet> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Revokes `token` (a refresh or access token of the first client) at the revocation
    /// endpoint (RFC 7009), as a client does when it disconnects a mailbox. The provider
    /// revokes the whole grant: every access and refresh token issued under it.
    pub async fn revoke(&self, token: &str) -> anyhow::Result<()> {
        let client = &self.config.clients[0];
        let url = self.revocation_endpoint();
        self.post_form_ok(
            "revocation",
            &url,
            Caller::Client(client),
            &[("token", token)],
        )
        .await?;
        Ok(())
    }

    /// What the introspection endpoint says about `token` (RFC 7662), asked with the
    /// [`introspection_client`](OidcConfig::introspection_client) (or the first client when
    /// there is none), exactly as a mail server would: `{"active": false}` for anything
    /// unknown, expired or revoked; for an active access token `active`, `sub`,
    /// `client_id`, `scope`, `exp`, `iat`, `iss`, `token_type` and `username` (the account's
    /// email).
    pub async fn introspect(&self, token: &str) -> anyhow::Result<serde_json::Value> {
        let client = self
            .config
            .introspection_client
            .as_ref()
            .unwrap_or(&self.config.clients[0]);
        let url = self.introspection_endpoint();
        let body = self
            .post_form_ok(
                "introspection",
                &url,
                Caller::Client(client),
                &[("token", token)],
            )
            .await?;
        serde_json::from_str(&body).with_context(|| format!("introspection answered {body:?}"))
    }

    /// Revokes every grant `account` (`sub` or email) has given, with every access and
    /// refresh token issued under them, as when the user removes the app's access at
    /// their provider or an admin resets the account. Returns how many grants there were.
    /// The next refresh fails with `invalid_grant` and introspection says `active: false`.
    pub async fn revoke_grants(&self, account: &str) -> anyhow::Result<usize> {
        let url = format!("{}/testkit/revoke-grants", self.issuer);
        let body = self
            .post_form_ok(
                "revoke-grants",
                &url,
                Caller::Admin,
                &[("account", account)],
            )
            .await?;
        let answer: serde_json::Value = serde_json::from_str(&body)?;
        answer["revoked"]
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| anyhow!("revoke-grants answered {body:?}"))
    }

    /// POSTs `form` to the token endpoint as the first client (HTTP Basic).
    async fn token_request(&self, form: &[(&str, &str)]) -> anyhow::Result<TokenSet> {
        let client = &self.config.clients[0];
        let grant = form.first().map_or("", |(_, v)| *v);
        let what = format!("token request ({grant})");
        let url = self.token_endpoint();
        let (status, body) = self
            .post_form(&what, &url, Caller::Client(client), form)
            .await?;
        if !status.is_success() {
            let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            return Err(TokenError {
                status: status.as_u16(),
                error: answer["error"].as_str().unwrap_or_default().to_string(),
                error_description: answer["error_description"].as_str().map(str::to_string),
                body,
            }
            .into());
        }
        serde_json::from_str(&body).with_context(|| format!("{what} answered {body:?}"))
    }

    /// POSTs `form` to `url` as `caller`; returns the status and body, whatever they are.
    async fn post_form(
        &self,
        what: &str,
        url: &str,
        caller: Caller<'_>,
        form: &[(&str, &str)],
    ) -> anyhow::Result<(reqwest::StatusCode, String)> {
        let request = self.http.post(url).form(form);
        let request = match caller {
            Caller::Client(c) => request.basic_auth(&c.client_id, Some(&c.client_secret)),
            Caller::Admin => request.bearer_auth(&self.admin_token),
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("{what} failed"))?;
        let status = response.status();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    /// [`Self::post_form`] that requires a 2xx status; returns the body.
    async fn post_form_ok(
        &self,
        what: &str,
        url: &str,
        caller: Caller<'_>,
        form: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let (status, body) = self.post_form(what, url, caller, form).await?;
        ensure!(
            status.is_success(),
            "{what} refused ({status}): {body}\n--- provider.log tail ---\n{}",
            self.log_tail()
        );
        Ok(body)
    }

    fn log_tail(&self) -> String {
        process::tail(&self.dir.path().join("provider.log"), LOG_TAIL)
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
