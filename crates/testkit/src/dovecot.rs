//! A throw-away Dovecot (IMAP, IMAPS, LMTP; optionally submission and OAuth2) on loopback,
//! one per test.
//!
//! [`Dovecot::start`] writes a complete `dovecot.conf` (no includes from `/etc/dovecot`)
//! into a fresh temp dir and runs `dovecot -F -c <dir>/dovecot.conf` as a child process
//! in its own process group. Everything the instance owns lives in that dir:
//!
//! ```text
//! <tmp>/dovecot.conf   generated config        <tmp>/dovecot.log     log_path / info_log_path
//! <tmp>/users/<user>   passwd-file ({PLAIN})   <tmp>/dovecot.stderr  early errors (before the log process)
//! <tmp>/cert.pem       self-signed, CN and SAN localhost + IP 127.0.0.1
//! <tmp>/key.pem        its P-256 key           <tmp>/mail/<user>/Maildir   mail (owned by the mail uid)
//! <tmp>/run            base_dir (sockets)      <tmp>/state           state_dir
//! <tmp>/oauth2-users/<user>        userdb entry of an OAuth2-only user (no password)
//! <tmp>/dovecot-oauth2.conf.ext    the oauth2 passdb's settings (mode 0600)
//! ```
//!
//! Ports are picked free (see [`crate::free_port`]); a start that loses the race for a
//! port retries with new ones. The packaged system instance (`/etc/dovecot`, port 143) is
//! never used, so it may run or not.
//!
//! As root, Dovecot runs its internal services as `dovecot`, its login processes as
//! `dovenull` and mail processes as `dovecot` (uid/gid from `/etc/passwd`, with
//! `first_valid_uid` lowered to it); the temp dir is made world-traversable and `mail/` is
//! chowned to `dovecot`. As a normal user, everything runs as that user.
//!
//! Stopping sends `TERM` to the master, then `KILL` to its whole process group; this also
//! happens on `Drop`. A watchdog `sh` per instance does the same if the test process dies
//! without running destructors, so no `dovecot` outlives the test binary.
//!
//! # OAuth2
//!
//! [`Dovecot::start_with`] with [`DovecotOptions::oauth2`] (usually
//! [`OAuth2Passdb::for_provider`] of an [`OidcProvider`] started with
//! [`OidcConfig::mailbox`](crate::oidc::OidcConfig::mailbox)) adds, on the same ports:
//!
//! - `auth_mechanisms = plain login xoauth2 oauthbearer`: IMAP `AUTHENTICATE XOAUTH2`
//!   (`user=<name>^Aauth=Bearer <token>^A^A`) and `AUTHENTICATE OAUTHBEARER` (RFC 7628), and
//!   the same SMTP `AUTH` mechanisms on submission.
//! - `passdb { driver = oauth2, mechanisms = xoauth2 oauthbearer }`: every login POSTs the
//!   token to the introspection endpoint (`introspection_mode = post`, the client's
//!   credentials as HTTP Basic in `introspection_url`), and succeeds only when the answer
//!   has `active: true`, `username` (the account's email) equal to the login name, and the
//!   scope `mail` (`scope = mail`). `auth_cache_size = 0`: nothing is cached, so an
//!   expired or revoked token is refused at the next login. A refusal is
//!   `NO [AUTHENTICATIONFAILED]` on IMAP and `535 5.7.8` on SMTP, after the mechanism's
//!   error challenge (base64 JSON `{"status":"401",...}` that the client answers with an
//!   empty line); the reason is in the log (`oauth2 failed: Introspection failed: ...`).
//! - The password passdb (`passwd-file`) then serves only `plain login`, so a password is
//!   never checked as a token nor a token as a password. Users from
//!   [`Dovecot::add_oauth2_user`] have no password: `LOGIN` fails for them, even with a
//!   valid access token as the password. Users from [`Dovecot::add_user`] keep their
//!   password and can also use XOAUTH2 if a token's `username` is their name.
//! - A second `passwd-file` userdb, `oauth2-users/%u`, so LMTP delivers to OAuth2-only
//!   users and their mail lives in `mail/<user>/Maildir` like everyone's.
//!
//! # Submission
//!
//! With [`DovecotOptions::submission_relay_port`], Dovecot's submission service (Debian
//! `dovecot-submissiond`) listens on [`Dovecot::submission_port`] (plain TCP, `STARTTLS`
//! offered, `AUTH` allowed without TLS) and relays every accepted message to
//! `127.0.0.1:<relay port>` (no TLS, not trusted: no XCLIENT), e.g. an
//! [`SmtpCapture`](crate::SmtpCapture). Authentication is required before `MAIL`; with
//! OAuth2 the mechanisms above apply. What arrives at the capture is the DATA the client
//! sent with one `Received: from ... by localhost with ESMTPA ...` header prepended by
//! Dovecot; its relayed `MAIL FROM` carries `AUTH=<login name>` (RFC 4954), which the
//! capture accepts.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow, bail, ensure};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::OidcProvider;
use crate::process;

/// How long a start may take before it is reported as failed.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one IMAP or LMTP helper conversation may take.
const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines of log quoted in error messages.
const LOG_TAIL: usize = 30;

/// A running throw-away Dovecot; see the [module docs](self). Stopped on drop.
pub struct Dovecot {
    /// `None` only between stop and start inside [`Dovecot::restart`].
    running: Option<Running>,
    dovecot_bin: PathBuf,
    ports: Ports,
    options: DovecotOptions,
    /// username -> password, as written to `<dir>/users/<username>`.
    users: Mutex<BTreeMap<String, String>>,
    mail_owner: Option<(u32, u32)>,
    /// Length of the log when the current process was started (see `port_clash`).
    log_mark: usize,
    dir: TempDir,
}

struct Running {
    master: Child,
    watchdog: Child,
}

#[derive(Clone, Copy)]
struct Ports {
    imap: u16,
    imaps: u16,
    lmtp: u16,
    /// Picked always, listened on only with [`DovecotOptions::submission_relay_port`].
    submission: u16,
}

/// What a [`Dovecot::start_with`] instance serves beyond the default (`passwd-file`
/// users with passwords over IMAP, IMAPS and LMTP). `Default` is exactly [`Dovecot::start`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DovecotOptions {
    /// Adds `AUTHENTICATE XOAUTH2` and `OAUTHBEARER` (and SMTP `AUTH XOAUTH2`/`OAUTHBEARER`
    /// on submission), checked by Dovecot's `oauth2` passdb against an introspection
    /// endpoint. See the [module docs](self#oauth2).
    pub oauth2: Option<OAuth2Passdb>,
    /// Adds Dovecot's submission service (SMTP, [`Dovecot::submission_port`]) that relays
    /// every accepted message to `127.0.0.1:<this port>`, e.g. an
    /// [`SmtpCapture`](crate::SmtpCapture)'s.
    pub submission_relay_port: Option<u16>,
}

/// The settings of Dovecot's `oauth2` passdb (written to `<dir>/dovecot-oauth2.conf.ext`):
/// tokens are checked by RFC 7662 introspection (`introspection_mode = post`, the client
/// authenticated with HTTP Basic from the URL), on every login (no cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Passdb {
    /// The introspection endpoint, plain `http://` on loopback.
    pub introspection_url: String,
    /// The client Dovecot authenticates as at the introspection endpoint.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The field of the introspection answer that must equal the login name
    /// (`username_attribute`).
    pub username_attribute: String,
    /// A scope the token must have (`scope`), or `None` for any.
    pub scope: Option<String>,
}

impl OAuth2Passdb {
    /// Introspection at `provider` ([`OidcProvider::introspection_endpoint`]) with its
    /// [`introspection_client`](crate::oidc::OidcConfig::introspection_client) (the first
    /// client when it has none), `username_attribute = username` (the account's email) and
    /// scope [`MAIL_SCOPE`](crate::oidc::MAIL_SCOPE) required.
    pub fn for_provider(provider: &OidcProvider) -> OAuth2Passdb {
        let client = provider
            .introspection_client()
            .unwrap_or(&provider.config().clients[0]);
        OAuth2Passdb {
            introspection_url: provider.introspection_endpoint(),
            client_id: client.client_id.clone(),
            client_secret: client.client_secret.clone(),
            username_attribute: "username".to_string(),
            scope: Some(crate::oidc::MAIL_SCOPE.to_string()),
        }
    }

    /// The `dovecot-oauth2.conf.ext` text.
    fn conf(&self) -> anyhow::Result<String> {
        let mut url = reqwest::Url::parse(&self.introspection_url)
            .with_context(|| format!("bad introspection URL {:?}", self.introspection_url))?;
        url.set_username(&self.client_id)
            .and_then(|()| url.set_password(Some(&self.client_secret)))
            .map_err(|()| anyhow!("cannot put credentials into {url}"))?;
        let scope = self
            .scope
            .as_deref()
            .map_or(String::new(), |s| format!("scope = {s}\n"));
        Ok(format!(
            "# Generated by postdesk-testkit; see crates/testkit/src/dovecot.rs.\n\
             introspection_mode = post\n\
             introspection_url = {url}\n\
             username_attribute = {}\n\
             active_attribute = active\n\
             active_value = true\n\
             {scope}\
             timeout_msecs = 10000\n",
            self.username_attribute
        ))
    }
}

/// Who the Dovecot processes run as.
struct Identity {
    internal_user: String,
    internal_group: String,
    login_user: String,
    mail_uid: u32,
    mail_gid: u32,
    running_as_root: bool,
}

impl Dovecot {
    /// Starts a new instance on free loopback ports with an empty user list.
    ///
    /// Fails with the command, ports and the tail of the Dovecot log when Dovecot does not
    /// greet on its IMAP port within a few seconds.
    pub async fn start() -> anyhow::Result<Dovecot> {
        Dovecot::start_with(DovecotOptions::default()).await
    }

    /// [`Dovecot::start`] with `options`: OAuth2 sign-in and/or the submission service.
    pub async fn start_with(options: DovecotOptions) -> anyhow::Result<Dovecot> {
        let dovecot_bin = std::env::var_os("POSTDESK_DOVECOT")
            .map(PathBuf::from)
            .or_else(|| process::find_program("dovecot", &["/usr/sbin", "/usr/local/sbin"]))
            .ok_or_else(|| {
                anyhow!(
                    "`dovecot` not found in PATH or /usr/sbin: install it \
                     (Debian: apt-get install dovecot-imapd dovecot-lmtpd) or run scripts/test"
                )
            })?;
        let identity = identity()?;
        let (cert, key) = tokio::task::spawn_blocking(tls_material)
            .await
            .context("TLS certificate generation panicked")??;

        let tmp_root = if std::env::temp_dir().as_os_str().len() > 40 {
            // Unix socket paths under base_dir must stay below 108 bytes.
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("postdesk-dovecot-")
            .tempdir_in(&tmp_root)
            .with_context(|| format!("cannot create a temp dir in {}", tmp_root.display()))?;
        let root = dir.path();
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
        fs::write(root.join("cert.pem"), cert)?;
        fs::write(root.join("key.pem"), key)?;
        fs::set_permissions(root.join("key.pem"), fs::Permissions::from_mode(0o600))?;
        for sub in ["mail", "state", "users", "oauth2-users"] {
            fs::create_dir(root.join(sub))?;
            fs::set_permissions(root.join(sub), fs::Permissions::from_mode(0o755))?;
        }
        let mail_owner = identity
            .running_as_root
            .then_some((identity.mail_uid, identity.mail_gid));
        if let Some((uid, gid)) = mail_owner {
            std::os::unix::fs::chown(root.join("mail"), Some(uid), Some(gid))
                .context("cannot chown the mail dir to the dovecot user")?;
        }
        if let Some(oauth2) = &options.oauth2 {
            let path = root.join("dovecot-oauth2.conf.ext");
            fs::write(&path, oauth2.conf()?)?;
            // Holds the introspection client's secret: readable by the auth process only.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            if let Some((uid, gid)) = mail_owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
            }
        }

        let mut dovecot = Dovecot {
            running: None,
            dovecot_bin,
            ports: Ports {
                imap: 0,
                imaps: 0,
                lmtp: 0,
                submission: 0,
            },
            options,
            users: Mutex::new(BTreeMap::new()),
            mail_owner,
            log_mark: 0,
            dir,
        };

        let mut attempt = 0;
        loop {
            attempt += 1;
            dovecot.ports = distinct_free_ports()?;
            fs::write(dovecot.config_path(), dovecot.config(&identity))?;
            match dovecot.spawn().await {
                Ok(()) => return Ok(dovecot),
                Err(e) if attempt < 4 && dovecot.port_clash() => {
                    tracing::debug!("dovecot lost a port race, retrying with new ports: {e:#}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Always `"127.0.0.1"`.
    pub fn host(&self) -> &str {
        crate::HOST
    }

    /// Plain IMAP (STARTTLS is offered too, with the self-signed certificate).
    pub fn imap_port(&self) -> u16 {
        self.ports.imap
    }

    /// IMAP over implicit TLS, with the self-signed certificate ([`Dovecot::cert_pem`]).
    pub fn imaps_port(&self) -> u16 {
        self.ports.imaps
    }

    /// LMTP over plain TCP.
    pub fn lmtp_port(&self) -> u16 {
        self.ports.lmtp
    }

    /// SMTP submission (plain TCP, STARTTLS offered, AUTH allowed without TLS), when
    /// started with [`DovecotOptions::submission_relay_port`]; `None` otherwise.
    pub fn submission_port(&self) -> Option<u16> {
        self.options
            .submission_relay_port
            .map(|_| self.ports.submission)
    }

    /// The options this instance was started with.
    pub fn options(&self) -> &DovecotOptions {
        &self.options
    }

    /// The PEM of the self-signed server certificate (valid for `localhost` and
    /// `127.0.0.1`, not a CA), for clients that should trust exactly this server.
    pub fn cert_pem(&self) -> String {
        fs::read_to_string(self.dir.path().join("cert.pem")).unwrap_or_default()
    }

    /// The instance's temp dir (config, log, users, `mail/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The maildir of `username` (`<dir>/mail/<username>/Maildir`); it exists once the
    /// user has logged in or received mail. New mail is in `new/`, seen mail in `cur/`.
    pub fn maildir(&self, username: &str) -> PathBuf {
        self.dir.path().join("mail").join(username).join("Maildir")
    }

    /// Adds a user (or changes their password), usable immediately. Changing an existing
    /// user's password blocks for up to a second (Dovecot re-reads a passwd-file at most
    /// once a second); adding users never waits. `username` must not contain `:`, `/`, whitespace or
    /// control characters; `password` must not contain `:` or control characters.
    pub fn add_user(&self, username: &str, password: &str) -> anyhow::Result<()> {
        check_username(username)?;
        ensure!(
            !password.chars().any(|c| c == ':' || c.is_control()),
            "invalid Dovecot test password for {username:?}: no ':' or control characters"
        );
        let mut users = self
            .users
            .lock()
            .map_err(|_| anyhow!("users lock poisoned"))?;
        let previous = users.insert(username.to_string(), password.to_string());
        self.write_user(username, password)?;
        if previous.is_some_and(|p| p != password) {
            // See `write_user`: let Dovecot's once-a-second passwd-file check come round.
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            std::thread::sleep(
                Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()))
                    + Duration::from_millis(20),
            );
        }
        Ok(())
    }

    /// Adds a user who signs in with OAuth2 only (`AUTHENTICATE XOAUTH2`/`OAUTHBEARER`, SMTP
    /// `AUTH XOAUTH2`/`OAUTHBEARER`): a mailbox and a userdb entry (so LMTP delivers to them),
    /// no password, so `LOGIN`/`PLAIN` are refused. With [`OAuth2Passdb::for_provider`]
    /// the name is the account's email, e.g. `ana@example.test`. Usable immediately.
    /// Fails unless started with [`DovecotOptions::oauth2`].
    pub fn add_oauth2_user(&self, username: &str) -> anyhow::Result<()> {
        ensure!(
            self.options.oauth2.is_some(),
            "add_oauth2_user: this Dovecot was started without DovecotOptions::oauth2"
        );
        check_username(username)?;
        let path = self.dir.path().join("oauth2-users").join(username);
        process::write_atomic(&path, format!("{username}:::::::\n").as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        Ok(())
    }

    /// Stores `raw` in `mailbox` of `username` with IMAP `APPEND` over plain TCP
    /// (LOGIN, APPEND with a synchronizing literal, LOGOUT). Creates the mailbox if the
    /// server answers `[TRYCREATE]`. Mailbox names are sent as quoted strings, so keep them
    /// ASCII (or pass modified UTF-7 yourself).
    pub async fn append(
        &self,
        username: &str,
        password: &str,
        mailbox: &str,
        raw: &[u8],
    ) -> anyhow::Result<()> {
        let port = self.ports.imap;
        let work = async {
            let mut conn = Conn::connect(port).await?;
            let greeting = conn.line().await?;
            ensure!(
                greeting.starts_with("* OK"),
                "bad IMAP greeting {greeting:?}"
            );
            conn.command(
                "a1",
                &format!("LOGIN {} {}", quote(username)?, quote(password)?),
            )
            .await?;
            let mut tag = 2;
            let mut created = false;
            loop {
                let t = format!("a{tag}");
                tag += 1;
                conn.send(
                    format!("{t} APPEND {} {{{}}}\r\n", quote(mailbox)?, raw.len()).as_bytes(),
                )
                .await?;
                // Dovecot may refuse before the literal (e.g. [TRYCREATE]) or after it.
                let mut reply = loop {
                    let line = conn.line().await?;
                    if line.starts_with('+') || line.starts_with(&format!("{t} ")) {
                        break line;
                    }
                };
                if reply.starts_with('+') {
                    conn.send(raw).await?;
                    conn.send(b"\r\n").await?;
                    reply = conn.tagged(&t).await?;
                }
                if reply.starts_with(&format!("{t} OK")) {
                    break;
                }
                if reply.contains("[TRYCREATE]") && !created {
                    created = true;
                    let c = format!("a{tag}");
                    tag += 1;
                    conn.command(&c, &format!("CREATE {}", quote(mailbox)?))
                        .await?;
                    continue;
                }
                bail!("APPEND failed: {reply:?}");
            }
            let _ = conn.command(&format!("a{tag}"), "LOGOUT").await;
            Ok(())
        };
        tokio::time::timeout(IO_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(anyhow!("timed out after {IO_TIMEOUT:?}")))
            .with_context(|| {
                format!(
                    "IMAP APPEND of {} bytes to {mailbox:?} as {username:?} on 127.0.0.1:{port} failed\n\
                     --- dovecot log tail ---\n{}",
                    raw.len(),
                    self.log_tail()
                )
            })
    }

    /// Delivers `raw` to `rcpt` over LMTP (LHLO, `MAIL FROM:<testkit@localhost>`,
    /// `RCPT TO:<rcpt>`, DATA). Bare LF line ends are sent as CRLF and lines starting with
    /// `.` are dot-stuffed. `rcpt` is a user name as given to [`Dovecot::add_user`].
    pub async fn deliver_lmtp(&self, rcpt: &str, raw: &[u8]) -> anyhow::Result<()> {
        let port = self.ports.lmtp;
        let work = async {
            let mut conn = Conn::connect(port).await?;
            conn.expect_reply("greeting", "220").await?;
            conn.send(b"LHLO localhost\r\n").await?;
            conn.expect_reply("LHLO", "250").await?;
            conn.send(b"MAIL FROM:<testkit@localhost>\r\n").await?;
            conn.expect_reply("MAIL FROM", "250").await?;
            conn.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
                .await?;
            conn.expect_reply("RCPT TO", "250").await?;
            conn.send(b"DATA\r\n").await?;
            conn.expect_reply("DATA", "354").await?;
            conn.send(&dot_stuff(raw)).await?;
            conn.expect_reply("end of DATA", "250").await?;
            conn.send(b"QUIT\r\n").await?;
            let _ = conn.reply().await;
            Ok(())
        };
        tokio::time::timeout(IO_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(anyhow!("timed out after {IO_TIMEOUT:?}")))
            .with_context(|| {
                format!(
                    "LMTP delivery of {} bytes to <{rcpt}> on 127.0.0.1:{port} failed\n\
                     --- dovecot log tail ---\n{}",
                    raw.len(),
                    self.log_tail()
                )
            })
    }

    /// Stops Dovecot and starts it again with the same config: same ports, same users,
    /// same maildirs (mail, UIDs and UIDVALIDITY are kept). Open client connections drop.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        // The old processes are gone, but a port may still be held briefly; retry a bit.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn().await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline && self.port_clash() => {
                    tracing::debug!("dovecot restart: port still busy, retrying: {e:#}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.context("Dovecot restart failed")),
            }
        }
    }

    /// Appends `lines` to the generated configuration and restarts on the same ports and
    /// mail, e.g. `imap_capability = IMAP4rev1 UIDPLUS` for a server without IDLE.
    pub async fn reconfigure(&mut self, lines: &str) -> anyhow::Result<()> {
        let mut config = fs::read_to_string(self.config_path())?;
        config.push('\n');
        config.push_str(lines);
        config.push('\n');
        fs::write(self.config_path(), config)?;
        self.restart().await
    }

    /// Lets up to `sessions` IMAP sessions be open at once (the default allows about a
    /// thousand, less what Dovecot's own services can take), for a benchmark of many idle
    /// mailboxes, and restarts on the same ports and mail (open connections drop). Each
    /// session keeps its own `imap` process, as in a default Dovecot, so `service imap`'s
    /// `process_limit` is exactly `sessions`: one more waits until one ends. Every such
    /// process holds a connection to Dovecot's `anvil` and `stats` services, so
    /// `default_client_limit` is raised to match; the login processes run in Dovecot's
    /// high-performance mode (`service_count = 0`: two long-lived processes take every new
    /// connection, instead of a process per connection capped at 100), and one user may hold
    /// every session (`mail_max_userip_connections`, at least the usual 100).
    pub async fn allow_imap_sessions(&mut self, sessions: usize) -> anyhow::Result<()> {
        ensure!(sessions > 0, "allow_imap_sessions: at least one session");
        self.reconfigure(&sessions_config(sessions)).await
    }

    /// How many IMAP sessions of `username` are open now, as Dovecot counts them
    /// (`doveadm who`: one line per connection).
    pub fn imap_sessions(&self, username: &str) -> anyhow::Result<usize> {
        self.count_imap_sessions(Some(username))
    }

    /// How many IMAP sessions of every user are open now, as Dovecot counts them.
    pub fn all_imap_sessions(&self) -> anyhow::Result<usize> {
        self.count_imap_sessions(None)
    }

    /// `doveadm who -1 [username]`: one line per connection, "username proto pid ip" after
    /// a header line; counts the `imap` ones (of `username`, when given).
    fn count_imap_sessions(&self, username: Option<&str>) -> anyhow::Result<usize> {
        let doveadm = process::find_program("doveadm", &["/usr/bin", "/usr/sbin"])
            .context("doveadm is not installed (Debian: dovecot-core)")?;
        let output = Command::new(&doveadm)
            .arg("-c")
            .arg(self.config_path())
            .args(["who", "-1"])
            .args(username)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", doveadm.display()))?;
        ensure!(
            output.status.success(),
            "doveadm who failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| {
                let mut fields = line.split_whitespace();
                let user = fields.next();
                fields.next() == Some("imap") && username.is_none_or(|u| user == Some(u))
            })
            .count())
    }

    /// How many times `username` signed in over IMAP so far (successful logins in Dovecot's
    /// log).
    pub fn imap_logins(&self, username: &str) -> usize {
        let needle = format!(" Login: user=<{username}>,");
        fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("imap-login:") && line.contains(&needle))
            .count()
    }

    /// The Dovecot log so far (plus anything it printed to stderr), for diagnostics.
    pub fn log(&self) -> String {
        let mut out = fs::read_to_string(self.log_path()).unwrap_or_default();
        if let Ok(stderr) = fs::read_to_string(self.stderr_path())
            && !stderr.trim().is_empty()
        {
            out.push_str("--- stderr ---\n");
            out.push_str(&stderr);
        }
        out
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.log")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.stderr")
    }

    fn log_tail(&self) -> String {
        let mut out = process::tail(&self.log_path(), LOG_TAIL);
        let stderr = process::tail(&self.stderr_path(), LOG_TAIL);
        if !stderr.contains("is empty") && !stderr.starts_with("(cannot read") {
            out.push_str("\n--- stderr ---\n");
            out.push_str(&stderr);
        }
        out
    }

    /// Whether the last start failed because a port was taken (judged from what Dovecot
    /// logged since that start, and its stderr).
    fn port_clash(&self) -> bool {
        let log = fs::read(self.log_path()).unwrap_or_default();
        let new = String::from_utf8_lossy(log.get(self.log_mark..).unwrap_or_default());
        let stderr = fs::read_to_string(self.stderr_path()).unwrap_or_default();
        [new.as_ref(), stderr.as_str()]
            .iter()
            .any(|text| text.contains("Address already in use"))
    }

    /// Writes `<dir>/users/<name>`, a one-line passwd-file. Dovecot's passwd-file driver
    /// stats a file at most once per second and serves its cached copy in between; with
    /// one file per user (path `users/%u`) a new user is a new file, read on first lookup.
    /// A changed password is a changed file: its mtime is made strictly newer, and the
    /// caller waits for the next second so the next lookup stats it again.
    fn write_user(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let path = self.dir.path().join("users").join(name);
        let previous_mtime = fs::metadata(&path).and_then(|m| m.modified()).ok();
        process::write_atomic(
            &path,
            format!("{name}:{{PLAIN}}{password}::::::\n").as_bytes(),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        let now = SystemTime::now();
        let mtime = match previous_mtime {
            Some(prev) if now < prev + Duration::from_secs(1) => prev + Duration::from_secs(1),
            _ => now,
        };
        fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(mtime)?;
        Ok(())
    }

    fn config(&self, id: &Identity) -> String {
        static INSTANCE: AtomicU32 = AtomicU32::new(0);
        let root = self.dir.path().display();
        let instance = format!(
            "postdesk-test-{}-{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed)
        );
        let Ports {
            imap,
            imaps,
            lmtp,
            submission,
        } = self.ports;
        let (internal, group, login) = (&id.internal_user, &id.internal_group, &id.login_user);
        let (uid, gid) = (id.mail_uid, id.mail_gid);
        // Chroots need root; as a normal user run login and anvil unchrooted.
        let chroot = if id.running_as_root {
            ""
        } else {
            "  chroot =\n"
        };
        let mut protocols = "imap lmtp".to_string();
        let mut mechanisms = "plain login".to_string();
        // Passwords check against passwd-file, bearer tokens against introspection; never
        // one against the other (XOAUTH2 hands its token to every passdb as a password).
        let mut password_mechanisms = "";
        let mut extra = String::new();
        if self.options.oauth2.is_some() {
            mechanisms.push_str(" xoauth2 oauthbearer");
            password_mechanisms = "  mechanisms = plain login\n";
            extra.push_str(&format!(
                r#"
# OAuth2 (DovecotOptions::oauth2): bearer tokens checked by introspection on every login.
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
# OAuth2-only users (add_oauth2_user): a mailbox, no password.
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/oauth2-users/%u
  default_fields = uid={uid} gid={gid} home={root}/mail/%u
}}
"#
            ));
        }
        if let Some(relay) = self.options.submission_relay_port {
            protocols.push_str(" submission");
            extra.push_str(&format!(
                r#"
# Submission (DovecotOptions::submission_relay_port): relays to a capture server.
hostname = localhost
submission_relay_host = 127.0.0.1
submission_relay_port = {relay}
submission_relay_ssl = no
submission_relay_trusted = no
service submission-login {{
{chroot}  inet_listener submission {{
    address = 127.0.0.1
    port = {submission}
  }}
}}
"#
            ));
        }
        let config = format!(
            r#"# Generated by postdesk-testkit for one test; see crates/testkit/src/dovecot.rs.
instance_name = {instance}
protocols = {protocols}
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
debug_log_path = {root}/dovecot.log

default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = {uid}
first_valid_gid = {gid}

disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
auth_cache_size = 0
auth_username_format = %u
auth_verbose = yes
mailbox_idle_check_interval = 1 secs
mail_location = maildir:~/Maildir

ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem

passdb {{
  driver = passwd-file
{password_mechanisms}  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u
  default_fields = uid={uid} gid={gid} home={root}/mail/%u
}}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \Junk
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \Archive
    auto = subscribe
  }}
}}

protocol imap {{
  mail_max_userip_connections = 100
}}

service imap-login {{
{chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
# mode = 0 turns off the auth penalty (2-15 s delays after failed logins from one IP).
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"#
        );
        config + &extra
    }

    /// Starts the master with the current config and waits for the IMAP greeting.
    async fn spawn(&mut self) -> anyhow::Result<()> {
        let config = self.config_path();
        let command = format!("{} -F -c {}", self.dovecot_bin.display(), config.display());
        let ports = format!(
            "imap 127.0.0.1:{}, imaps :{}, lmtp :{}",
            self.ports.imap, self.ports.imaps, self.ports.lmtp
        );
        let stderr = fs::File::create(self.stderr_path())?;
        self.log_mark = fs::metadata(self.log_path()).map_or(0, |m| m.len() as usize);
        let started = Instant::now();
        let mut master = Command::new(&self.dovecot_bin)
            .arg("-F")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(stderr.try_clone()?)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot run `{command}`"))?;
        let watchdog = match process::spawn_watchdog(master.id()) {
            Ok(w) => w,
            Err(e) => {
                process::stop_group(&mut master, Duration::from_secs(2));
                return Err(e);
            }
        };
        self.running = Some(Running { master, watchdog });

        let ready = process::wait_for_greeting(
            self.ports.imap,
            START_TIMEOUT,
            // "* OK Waiting for authentication process to respond.." comes first while the
            // auth process starts; wait for the real "ready" greeting.
            |line| line.starts_with("* OK") && !line.contains("Waiting for authentication"),
            || match self.running.as_mut().map(|r| r.master.try_wait()) {
                Some(Ok(Some(status))) => Err(anyhow!("dovecot exited with {status}")),
                _ => Ok(()),
            },
        )
        .await;
        match ready {
            Ok(()) => {
                tracing::debug!(
                    "dovecot up in {:?} ({ports}, dir {})",
                    started.elapsed(),
                    self.dir.path().display()
                );
                Ok(())
            }
            Err(e) => {
                self.stop();
                Err(anyhow!(
                    "Dovecot did not start: `{command}` ({ports}): {e:#}\n--- dovecot log tail ---\n{}",
                    self.log_tail()
                ))
            }
        }
    }

    fn stop(&mut self) {
        if let Some(Running {
            mut master,
            watchdog,
        }) = self.running.take()
        {
            process::stop_group(&mut master, Duration::from_secs(5));
            process::stop_watchdog(watchdog);
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dovecot")
            .field("imap_port", &self.ports.imap)
            .field("imaps_port", &self.ports.imaps)
            .field("lmtp_port", &self.ports.lmtp)
            .field("dir", &self.dir.path())
            .field("mail_owner", &self.mail_owner)
            .finish()
    }
}

/// A user name usable as a passwd-file line and a file name.
fn check_username(username: &str) -> anyhow::Result<()> {
    ensure!(
        !username.is_empty()
            && !username
                .chars()
                .any(|c| c == ':' || c == '/' || c.is_whitespace() || c.is_control())
            && username != "."
            && username != "..",
        "invalid Dovecot test username {username:?}"
    );
    Ok(())
}

/// Four different free ports (each [`crate::free_port`] call could repeat one).
/// The configuration lines of [`Dovecot::allow_imap_sessions`]: Dovecot merges them into the
/// generated blocks of the same name, and a setting given again takes the later value.
fn sessions_config(sessions: usize) -> String {
    // Each imap process connects to anvil and to stats; the rest is room for Dovecot's own.
    let clients = (2 * sessions + 100).max(1000);
    // Never below the 100 of the generated configuration.
    let per_user = sessions.max(100);
    format!(
        "# Dovecot::allow_imap_sessions({sessions})\n\
         default_client_limit = {clients}\n\
         service imap {{\n  process_limit = {sessions}\n}}\n\
         service imap-login {{\n  service_count = 0\n  process_min_avail = 2\n}}\n\
         protocol imap {{\n  mail_max_userip_connections = {per_user}\n}}\n"
    )
}

fn distinct_free_ports() -> anyhow::Result<Ports> {
    let mut ports: Vec<u16> = Vec::with_capacity(4);
    for _ in 0..50 {
        let port = crate::free_port()?;
        if !ports.contains(&port) {
            ports.push(port);
        }
        if let [imap, imaps, lmtp, submission] = ports[..] {
            return Ok(Ports {
                imap,
                imaps,
                lmtp,
                submission,
            });
        }
    }
    bail!("could not find four distinct free ports on 127.0.0.1")
}

fn identity() -> anyhow::Result<Identity> {
    let uid = process::euid()?;
    if uid == 0 {
        let (_, mail_uid, mail_gid) = process::passwd_lookup(|name, _| name == "dovecot")
            .ok_or_else(|| anyhow!("running as root but there is no `dovecot` user in /etc/passwd: install dovecot-core"))?;
        ensure!(
            process::passwd_lookup(|name, _| name == "dovenull").is_some(),
            "running as root but there is no `dovenull` user in /etc/passwd: install dovecot-core"
        );
        Ok(Identity {
            internal_user: "dovecot".into(),
            internal_group: "dovecot".into(),
            login_user: "dovenull".into(),
            mail_uid,
            mail_gid,
            running_as_root: true,
        })
    } else {
        let (name, uid, gid) = process::passwd_lookup(|_, u| u == uid).ok_or_else(|| {
            anyhow!("uid {uid} has no /etc/passwd entry; Dovecot needs a user name")
        })?;
        let group = process::group_name(gid).ok_or_else(|| {
            anyhow!("gid {gid} has no /etc/group entry; Dovecot needs a group name")
        })?;
        Ok(Identity {
            internal_user: name.clone(),
            internal_group: group,
            login_user: name,
            mail_uid: uid,
            mail_gid: gid,
            running_as_root: false,
        })
    }
}

/// A self-signed P-256 certificate for `localhost`/`127.0.0.1` (not a CA, so rustls
/// accepts it as a trust anchor for itself), made once per test process with `openssl`.
fn tls_material() -> anyhow::Result<(String, String)> {
    static MATERIAL: OnceLock<Result<(String, String), String>> = OnceLock::new();
    MATERIAL
        .get_or_init(|| generate_cert().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn generate_cert() -> anyhow::Result<(String, String)> {
    let dir = tempfile::Builder::new()
        .prefix("postdesk-cert-")
        .tempdir()?;
    let cnf = dir.path().join("openssl.cnf");
    fs::write(
        &cnf,
        "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n\
         [dn]\nCN = localhost\n\
         [ext]\nbasicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost,IP:127.0.0.1\n",
    )?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let args = [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "3650",
        "-config",
    ];
    let output = Command::new("openssl")
        .args(args)
        .arg(&cnf)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("cannot run `openssl req` (install openssl)")?;
    ensure!(
        output.status.success(),
        "`openssl {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((fs::read_to_string(cert)?, fs::read_to_string(key)?))
}

/// An IMAP quoted string.
fn quote(s: &str) -> anyhow::Result<String> {
    ensure!(
        !s.contains(['\r', '\n', '\0']),
        "{s:?} cannot be sent as an IMAP quoted string"
    );
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// CRLF line ends, dot-stuffing and the final `.` line for SMTP/LMTP DATA.
fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut line_start = true;
    for (i, &b) in raw.iter().enumerate() {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A line-oriented client connection for the IMAP and LMTP helpers.
struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    async fn connect(port: u16) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect((crate::HOST, port))
            .await
            .with_context(|| format!("cannot connect to 127.0.0.1:{port}"))?;
        Ok(Conn {
            stream: BufReader::new(stream),
        })
    }

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.get_mut().write_all(bytes).await?;
        Ok(())
    }

    async fn line(&mut self) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        let n = self.stream.read_until(b'\n', &mut buf).await?;
        ensure!(n > 0, "server closed the connection");
        Ok(String::from_utf8_lossy(&buf).trim_end().to_string())
    }

    /// Reads until the tagged response for `tag`, skipping untagged lines.
    async fn tagged(&mut self, tag: &str) -> anyhow::Result<String> {
        let prefix = format!("{tag} ");
        loop {
            let line = self.line().await?;
            if line.starts_with(&prefix) {
                return Ok(line);
            }
        }
    }

    /// Sends an IMAP command and requires a tagged OK.
    async fn command(&mut self, tag: &str, command: &str) -> anyhow::Result<String> {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        let reply = self.tagged(tag).await?;
        let verb = command.split(' ').next().unwrap_or(command);
        ensure!(
            reply.starts_with(&format!("{tag} OK")),
            "IMAP {verb} failed: {reply:?}"
        );
        Ok(reply)
    }

    /// Reads a (possibly multi-line) SMTP/LMTP reply, returning all its lines.
    async fn reply(&mut self) -> anyhow::Result<String> {
        let mut all = String::new();
        loop {
            let line = self.line().await?;
            all.push_str(&line);
            all.push('\n');
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(all);
            }
        }
    }

    async fn expect_reply(&mut self, step: &str, code: &str) -> anyhow::Result<()> {
        let reply = self.reply().await?;
        ensure!(
            reply.starts_with(code),
            "LMTP {step}: expected {code}, got {:?}",
            reply.trim_end()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(dot_stuff(b"a\n.b\r\n..c"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff(b".x\r\n"), b"..x\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b"\r\n.\r\n");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert!(quote("a\r\nb").is_err());
    }
}
