//! Process plumbing shared by the server helpers: signals (through `sh`'s `kill`, since the
//! workspace forbids `unsafe`), a parent-death watchdog, log tails, readiness probes and
//! `/etc/passwd` lookups.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader as TokioBufReader};
use tokio::net::TcpStream;

/// Sends `sig` (a name such as `TERM`, `KILL` or `0`) to `target`, a pid or `-pgid`.
/// Returns whether `kill` succeeded, i.e. whether anything received the signal.
pub(crate) fn signal(target: &str, sig: &str) -> bool {
    Command::new("sh")
        .args(["-c", "kill -s \"$1\" -- \"$2\"", "sh", sig, target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether any live (not zombie) process is still in process group `pgid`, from
/// `/proc/<pid>/stat`. Zombies are ignored: they hold no sockets, and whether they are
/// reaped promptly is up to the (sub)reaper, not to us.
pub(crate) fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return signal(&format!("-{pgid}"), "0");
    };
    entries.filter_map(Result::ok).any(|entry| {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<u32>().ok());
        pgrp == Some(pgid) && state != "Z" && state != "X"
    })
}

/// Starts a tiny `sh` that sleeps on a pipe from this process and, when the pipe closes
/// (this test process exited or was killed without running destructors), sends TERM and
/// then KILL to process group `pgid`. The watchdog is its own process group leader, so
/// [`stop_watchdog`] can remove it in one go.
pub(crate) fn spawn_watchdog(pgid: u32) -> anyhow::Result<Child> {
    Command::new("sh")
        .args([
            "-c",
            "while read -r _; do :; done; kill -s TERM -- \"-$1\" 2>/dev/null; sleep 1; kill -s KILL -- \"-$1\" 2>/dev/null",
            "postdesk-testkit-watchdog",
            &pgid.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the watchdog `sh`")
}

/// Kills a watchdog from [`spawn_watchdog`] without letting it signal anything.
pub(crate) fn stop_watchdog(mut watchdog: Child) {
    signal(&format!("-{}", watchdog.id()), "KILL");
    drop(watchdog.stdin.take());
    let _ = watchdog.wait();
}

/// Stops `child` (a process group leader): `TERM` to the whole group, up to `grace` for the
/// leader to exit, then `KILL` to the group, and waits (bounded) until no live process is
/// left in it, so that listening sockets held by its children are closed.
pub(crate) fn stop_group(child: &mut Child, grace: Duration) {
    let pid = child.id();
    let started = Instant::now();
    if matches!(child.try_wait(), Ok(None)) {
        signal(&format!("-{pid}"), "TERM");
        let deadline = Instant::now() + grace;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Stragglers (and the leader itself if it ignored TERM).
    let leader_exited = started.elapsed();
    signal(&format!("-{pid}"), "KILL");
    let _ = child.kill();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(2);
    while group_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    tracing::debug!(
        "stopped process group {pid}: leader exited after {leader_exited:?}, group gone after {:?}",
        started.elapsed()
    );
}

/// The last `max_lines` lines of a text file, or a note saying why there are none.
pub(crate) fn tail(path: &Path, max_lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(max_lines);
            if lines.is_empty() {
                format!("({} is empty)", path.display())
            } else {
                lines[start..].join("\n")
            }
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Writes `contents` to `path` atomically (temp file in the same dir, then rename).
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(contents)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Connects to `127.0.0.1:port` until it accepts and its first line satisfies `ready`
/// (e.g. an IMAP `* OK` or SMTP `220` greeting), or `timeout` passes. `alive` is polled
/// between attempts and aborts the wait with its error (the server process died).
pub(crate) async fn wait_for_greeting(
    port: u16,
    timeout: Duration,
    ready: impl Fn(&str) -> bool,
    mut alive: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        alive()?;
        let last = match TcpStream::connect((crate::HOST, port)).await {
            Ok(stream) => {
                let mut reader = TokioBufReader::new(stream);
                let mut line = String::new();
                match tokio::time::timeout(Duration::from_secs(2), reader.read_line(&mut line))
                    .await
                {
                    Ok(Ok(_)) if ready(line.trim_end()) => return Ok(()),
                    Ok(Ok(_)) => format!("greeting was {:?}", line.trim_end()),
                    Ok(Err(e)) => format!("reading the greeting failed: {e}"),
                    Err(_) => "no greeting within 2s".to_string(),
                }
            }
            Err(e) => format!("connect failed: {e}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "127.0.0.1:{port} not ready after {:.1}s ({last})",
                timeout.as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The effective uid of this process (owner of `/proc/self`).
pub(crate) fn euid() -> anyhow::Result<u32> {
    Ok(std::fs::metadata("/proc/self")
        .context("cannot stat /proc/self to find our uid")?
        .uid())
}

/// A user entry from `/etc/passwd`: (name, uid, gid).
pub(crate) fn passwd_lookup(matches: impl Fn(&str, u32) -> bool) -> Option<(String, u32, u32)> {
    let file = std::fs::File::open("/etc/passwd").ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let (name, uid, gid) = (fields.first()?, fields.get(2)?, fields.get(3)?);
            let (uid, gid) = (uid.parse().ok()?, gid.parse().ok()?);
            matches(name, uid).then(|| (name.to_string(), uid, gid))
        })
}

/// The name of group `gid` from `/etc/group`.
pub(crate) fn group_name(gid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == gid).then(|| name.to_string())
    })
}

/// Finds `program` in `$PATH` or one of `extra_dirs` (e.g. `/usr/sbin`, often not in a
/// non-root `PATH`).
pub(crate) fn find_program(program: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
