//! A real DNS server on loopback with the TXT records a test publishes (DKIM keys, SPF and
//! DMARC policies).
//!
//! [`DnsServer::start`] writes a `dnsmasq.conf` into a temp dir and runs Debian's `dnsmasq` in
//! the foreground (`--keep-in-foreground`) on a free `127.0.0.1` port, UDP and TCP. It serves
//! only its own records: no upstream servers, no `/etc/hosts`, and it is authoritative for
//! `.test` (RFC 2606), so a name without records there gets NXDOMAIN at once instead of a
//! timeout. A record longer than 255 octets is split into several strings, as DNS requires
//! (RFC 7208 §3.3, RFC 6376 §3.6.2.2: readers join them).
//!
//! The process is stopped on drop, and by a watchdog when the test process dies.
//!
//! Needs `dnsmasq` (Debian: `dnsmasq-base`); `scripts/test` installs it.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tempfile::TempDir;

use crate::process;

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts with fresh ports when another process took the one picked.
const PORT_ATTEMPTS: usize = 5;

/// A running dnsmasq; see the [module docs](self). Stopped on drop.
pub struct DnsServer {
    child: Child,
    watchdog: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl DnsServer {
    /// Starts dnsmasq serving `txt` records (`(name, text)`, a name may repeat for several
    /// records) and waits until it accepts connections.
    pub async fn start(txt: &[(&str, &str)]) -> anyhow::Result<DnsServer> {
        let program =
            process::find_program("dnsmasq", &["/usr/sbin", "/sbin"]).ok_or_else(|| {
                anyhow!("dnsmasq not found: apt-get install dnsmasq-base (scripts/test does this)")
            })?;
        let dir = tempfile::Builder::new()
            .prefix("postdesk-dns-")
            .tempdir()
            .context("cannot create a temp dir for dnsmasq")?;
        let mut config = String::from("no-resolv\nno-hosts\nno-poll\nlocal=/test/\nlog-queries\n");
        for (name, text) in txt {
            let strings: Vec<String> = chunks(text)
                .into_iter()
                .map(|chunk| format!("\"{}\"", chunk.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let _ = writeln!(config, "txt-record={name},{}", strings.join(","));
        }
        let conf = dir.path().join("dnsmasq.conf");
        std::fs::write(&conf, &config)?;
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = crate::free_port()?;
            match start_on(&program, &conf, &dir, port).await {
                Ok((child, watchdog)) => {
                    return Ok(DnsServer {
                        child,
                        watchdog: Some(watchdog),
                        port,
                        dir,
                    });
                }
                Err(e) => last_error = format!("{e:#}"),
            }
        }
        bail!("dnsmasq did not start after {PORT_ATTEMPTS} attempts: {last_error}")
    }

    /// The address to send queries to (`127.0.0.1:<port>`, UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// What dnsmasq logged (its queries, with `log-queries`).
    pub fn log(&self) -> String {
        process::tail(&self.dir.path().join("dnsmasq.log"), 200)
    }
}

/// Runs dnsmasq on `port`; the child and its watchdog once it accepts TCP connections.
async fn start_on(
    program: &PathBuf,
    conf: &std::path::Path,
    dir: &TempDir,
    port: u16,
) -> anyhow::Result<(Child, Child)> {
    let log = dir.path().join("dnsmasq.log");
    let log_file = std::fs::File::create(&log)?;
    let mut command = Command::new(program);
    command
        .arg("--keep-in-foreground")
        .arg(format!("--conf-file={}", conf.display()))
        .arg(format!("--port={port}"))
        .arg("--listen-address=127.0.0.1")
        .arg("--bind-interfaces")
        .arg("--pid-file")
        .arg("--log-facility=-")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0);
    if process::euid()? == 0 {
        // As root dnsmasq would switch to `nobody`, who cannot write our log; it needs no
        // privileges on a high port.
        command.arg("--user=root");
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let watchdog = process::spawn_watchdog(child.id())?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            process::stop_watchdog(watchdog);
            bail!(
                "dnsmasq exited with {status} on port {port}\n--- dnsmasq.log ---\n{}",
                process::tail(&log, 30)
            );
        }
        if tokio::net::TcpStream::connect((crate::HOST, port))
            .await
            .is_ok()
        {
            return Ok((child, watchdog));
        }
        if Instant::now() >= deadline {
            process::stop_group(&mut child, Duration::from_secs(1));
            process::stop_watchdog(watchdog);
            bail!(
                "dnsmasq not accepting on 127.0.0.1:{port} within {START_TIMEOUT:?}\n--- dnsmasq.log ---\n{}",
                process::tail(&log, 30)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `text` in pieces of at most 255 octets (one DNS character-string each), cut at character
/// boundaries.
fn chunks(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > 255 {
        let mut cut = 255;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        process::stop_group(&mut self.child, Duration::from_secs(2));
        if let Some(watchdog) = self.watchdog.take() {
            process::stop_watchdog(watchdog);
        }
    }
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}
