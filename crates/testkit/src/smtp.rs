//! A real SMTP server on loopback that captures exactly the bytes it is sent.
//!
//! [`SmtpCapture::start`] writes the embedded `smtp_capture.py` (an aiosmtpd server) to a
//! temp dir and runs `python3 smtp_capture.py <dir>`. The script binds `127.0.0.1:0` and
//! reports its port in `<dir>/port`, so there is no port race. For the N-th message it
//! writes `<dir>/N.eml` (the DATA bytes after de-dot-stuffing) and then `<dir>/N.json`
//! (envelope), both atomically, so a `.json` means "complete".
//!
//! [`SmtpCapture::reject_with`] puts a reply line in `<dir>/reject`; while it is there,
//! every DATA is answered with that line and nothing is stored.
//!
//! The server speaks plain SMTP (no TLS), offers 8BITMIME and SMTPUTF8, and offers AUTH
//! PLAIN/LOGIN without TLS that accepts any credentials, so clients configured with or
//! without a login both work; the `AUTH=<...>` MAIL parameter (RFC 4954, sent by relays
//! such as Dovecot submission) is accepted and ignored. Lines over 1000 bytes are refused (`500 Line too long`), as
//! RFC 5321 allows.
//!
//! Needs `python3` (or `$POSTDESK_PYTHON`) with `aiosmtpd` installed; `scripts/test`
//! installs it. The Python process is killed on drop, and exits by itself when the test
//! process dies (it watches its stdin pipe).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use tempfile::TempDir;

use crate::process;

const SCRIPT: &str = include_str!("smtp_capture.py");
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One message as the SMTP server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMail {
    /// The `MAIL FROM` address, without angle brackets (empty for the null sender `<>`).
    pub mail_from: String,
    /// The accepted `RCPT TO` addresses, in order, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message exactly as sent in DATA, after removing the SMTP dot-stuffing and
    /// without the terminating `.` line.
    pub data: Vec<u8>,
}

#[derive(Deserialize)]
struct Envelope {
    mail_from: String,
    rcpt_tos: Vec<String>,
}

/// A running capture server; see the [module docs](self). Stopped on drop.
pub struct SmtpCapture {
    child: Mutex<Child>,
    /// Held open so the script can notice (EOF) when this process goes away.
    _stdin: Option<ChildStdin>,
    port: u16,
    dir: TempDir,
}

impl SmtpCapture {
    /// Starts the server and waits for its `220` greeting.
    pub async fn start() -> anyhow::Result<SmtpCapture> {
        let python = std::env::var_os("POSTDESK_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("python3"));
        let dir = tempfile::Builder::new()
            .prefix("postdesk-smtp-")
            .tempdir()
            .context("cannot create a temp dir for the SMTP capture")?;
        let script = dir.path().join("smtp_capture.py");
        fs::write(&script, SCRIPT)?;
        let log = dir.path().join("smtp.log");
        let log_file = fs::File::create(&log)?;
        let command = format!(
            "{} {} {}",
            python.display(),
            script.display(),
            dir.path().display()
        );
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!("cannot run `{command}`: is python3 installed? (or set POSTDESK_PYTHON)")
            })?;
        let stdin = child.stdin.take();
        let mut capture = SmtpCapture {
            child: Mutex::new(child),
            _stdin: stdin,
            port: 0,
            dir,
        };

        let port_file = capture.dir.path().join("port");
        let deadline = Instant::now() + START_TIMEOUT;
        let started = Instant::now();
        let ready = async {
            let port = loop {
                capture.check_alive()?;
                if let Ok(text) = fs::read_to_string(&port_file)
                    && let Ok(port) = text.trim().parse::<u16>()
                {
                    break port;
                }
                if Instant::now() >= deadline {
                    bail!(
                        "no port reported in {} within {START_TIMEOUT:?}",
                        port_file.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            process::wait_for_greeting(
                port,
                deadline.saturating_duration_since(Instant::now()),
                |line| line.starts_with("220"),
                || capture.check_alive(),
            )
            .await?;
            Ok(port)
        }
        .await;
        match ready {
            Ok(port) => {
                capture.port = port;
                tracing::debug!(
                    "smtp capture up on 127.0.0.1:{port} in {:?}",
                    started.elapsed()
                );
                Ok(capture)
            }
            Err(e) => {
                let tail = process::tail(&log, 30);
                let hint = if tail.contains("No module named 'aiosmtpd'") {
                    "\nhint: python3 -m pip install aiosmtpd (scripts/test does this)"
                } else {
                    ""
                };
                Err(anyhow!(
                    "SMTP capture did not start: `{command}`: {e:#}\n--- smtp.log tail ---\n{tail}{hint}"
                ))
            }
        }
    }

    /// Always `"127.0.0.1"`.
    pub fn host(&self) -> &str {
        crate::HOST
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The capture dir (`N.eml`, `N.json`, `reject`, `smtp.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// All complete messages so far, in arrival order.
    pub fn messages(&self) -> Vec<CapturedMail> {
        let mut numbers: Vec<u64> = fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()?
                            .strip_suffix(".json")?
                            .parse::<u64>()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        numbers.sort_unstable();
        numbers
            .into_iter()
            .filter_map(|n| self.read_message(n))
            .collect()
    }

    /// Waits until at least `n` messages have arrived and returns all of them. The error
    /// says how many arrived (and what the server logged) when `timeout` passes first.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<CapturedMail>> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return Ok(messages);
            }
            if let Err(e) = self.check_alive() {
                bail!(
                    "waiting for {n} message(s) on 127.0.0.1:{}: {} arrived, then {e:#}\n--- smtp.log tail ---\n{}",
                    self.port,
                    messages.len(),
                    process::tail(&self.dir.path().join("smtp.log"), 30)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "expected {n} message(s) on SMTP 127.0.0.1:{} within {timeout:?}, but {} arrived\n--- smtp.log tail ---\n{}",
                    self.port,
                    messages.len(),
                    process::tail(&self.dir.path().join("smtp.log"), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `Some(line)`: answer every following DATA with `line`, e.g.
    /// `"550 5.7.1 Rejected for test"` or `"451 4.3.0 Try later"` (a full SMTP reply
    /// line: code, enhanced status, text). `None`: accept again.
    ///
    /// # Panics
    /// If the reject file cannot be written (a broken temp dir), as this is test-only code.
    pub fn reject_with(&self, line: Option<&str>) {
        let path = self.dir.path().join("reject");
        match line {
            Some(line) => {
                assert!(
                    line.len() >= 3 && line.as_bytes()[..3].iter().all(u8::is_ascii_digit),
                    "reject_with needs an SMTP reply line starting with a code, got {line:?}"
                );
                process::write_atomic(&path, line.trim_end().as_bytes())
                    .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            }
            None => match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("cannot remove {}: {e}", path.display()),
            },
        }
    }

    fn read_message(&self, n: u64) -> Option<CapturedMail> {
        let json = fs::read(self.dir.path().join(format!("{n}.json"))).ok()?;
        let envelope: Envelope = serde_json::from_slice(&json).ok()?;
        let data = fs::read(self.dir.path().join(format!("{n}.eml"))).ok()?;
        Some(CapturedMail {
            mail_from: envelope.mail_from,
            rcpt_to: envelope.rcpt_tos,
            data,
        })
    }

    fn check_alive(&self) -> anyhow::Result<()> {
        let mut child = self
            .child
            .lock()
            .map_err(|_| anyhow!("child lock poisoned"))?;
        match child.try_wait() {
            Ok(Some(status)) => Err(anyhow!("the SMTP capture process exited with {status}")),
            Ok(None) => Ok(()),
            Err(e) => Err(anyhow!("cannot check the SMTP capture process: {e}")),
        }
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        process::stop_group(child, Duration::from_secs(2));
    }
}

impl std::fmt::Debug for SmtpCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCapture")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}
