//! What every postdesk benchmark reports: the machine, the commit and the load it ran at,
//! memory and threads from `/proc`, percentiles, and the tables `BENCH_WRITE=1` keeps in
//! `docs/benchmarks.md`. Shared by the `ingest` and `cluster` benches (`#[path]`).

use std::path::PathBuf;
use std::time::Duration;

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

pub struct Summary {
    pub p50: Duration,
    pub p90: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn summary(values: &[Duration]) -> Summary {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    Summary {
        p50: percentile(&sorted, 0.5),
        p90: percentile(&sorted, 0.9),
        p95: percentile(&sorted, 0.95),
        p99: percentile(&sorted, 0.99),
        max: sorted.last().copied().unwrap_or_default(),
    }
}

/// This process's (VmRSS, VmHWM) in bytes.
pub fn own_memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// "2 CPUs (AMD EPYC), 23 GiB".
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1_048_576.0);
    format!("{cpus} CPUs ({model}), {mem_gib:.0} GiB")
}

/// The short commit, with `+` when the work tree has changes.
pub fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("{hash}{}", if dirty { "+" } else { "" })
        }
        None => "unknown".into(),
    }
}

/// The 1-minute load average.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// `docs/benchmarks.md`, where `BENCH_WRITE=1` puts a run.
pub fn docs_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/benchmarks.md"
    ))
}

/// Adds `row` to the table between the lines `begin` and `end` of the markdown file `path`,
/// writing it again under `header` with the most recent `keep` rows (rows start with
/// `| 20`, the year of their date). `upgrade` brings an older row to today's columns.
pub fn write_row(
    path: &std::path::Path,
    begin: &str,
    end: &str,
    header: &str,
    row: &str,
    keep: usize,
    upgrade: fn(&str) -> String,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let first = text
        .find(begin)
        .with_context(|| format!("{} has no line {begin}", path.display()))?;
    let last = text
        .find(end)
        .with_context(|| format!("{} has no line {end}", path.display()))?;
    anyhow::ensure!(
        first < last,
        "the markers in {} are out of order",
        path.display()
    );
    let inside = &text[first + begin.len()..last];
    let mut rows: Vec<String> = inside
        .lines()
        .filter(|l| l.starts_with("| 20"))
        .map(upgrade)
        .collect();
    rows.push(row.to_owned());
    let rows = &rows[rows.len().saturating_sub(keep)..];
    let section = format!("{begin}\n{header}\n{}\n{end}", rows.join("\n"));
    let updated = format!("{}{section}{}", &text[..first], &text[last + end.len()..]);
    std::fs::write(path, updated)?;
    Ok(())
}

/// `name` from the environment, parsed, or `default` when unset or empty.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid")),
        _ => Ok(default),
    }
}

/// `BENCH_DB`: true for `postgres`, false for `sqlite` (and `default` when unset).
pub fn postgres_from_env(default: &str) -> anyhow::Result<bool> {
    let db: String = env_or("BENCH_DB", default.to_owned())?;
    anyhow::ensure!(
        db == "sqlite" || db == "postgres",
        "BENCH_DB must be sqlite or postgres, not {db:?}"
    );
    Ok(db == "postgres")
}

/// `BENCH_ONLY`: the parts to run, each one of `parts` (all of them when unset).
pub fn parts_from_env(parts: &[&str]) -> anyhow::Result<Vec<String>> {
    let only: String = env_or("BENCH_ONLY", parts.join(","))?;
    let only: Vec<String> = only
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    for part in &only {
        anyhow::ensure!(
            parts.contains(&part.as_str()),
            "BENCH_ONLY: unknown part {part:?}"
        );
    }
    Ok(only)
}

/// Whether `cargo bench` runs this bench: it passes `--bench`, `cargo test --benches` does
/// not, and then the bench only says how to run it (`cargo bench -p postdesk --bench NAME`).
pub fn benchmarking(name: &str) -> bool {
    let asked = std::env::args().any(|a| a == "--bench");
    if !asked {
        println!(
            "{name} benchmark: run it with `cargo bench -p postdesk --bench {name}` (skipped in test mode)"
        );
    }
    asked
}

/// The benches' runtime: two worker threads, as many as the machine the figures come from
/// has cores.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
