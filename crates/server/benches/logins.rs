//! Peak memory of concurrent sign-ins: `cargo bench -p postdesk --bench logins`.
//!
//! Starts the real binary (bench profile), creates `BENCH_LOGINS` users (default 64), resets
//! the server's peak RSS, then sends all their sign-ins at once, right passwords (each one
//! runs argon2id: 19 MiB for tens of milliseconds) and, in a second round, wrong ones. It
//! prints the server's resident memory before, the peak during each round and after, and how
//! long each round took. The target (issue 9): the peak of 64 concurrent sign-ins under
//! 200 MiB; figures in docs/benchmarks.md.

#[path = "ingest/server.rs"]
#[allow(dead_code)]
mod server;

use std::time::{Duration, Instant};

use serde_json::json;

const MIB: f64 = 1024.0 * 1024.0;

/// The target for the peak of the server's resident memory while the sign-ins run.
const TARGET_PEAK_MIB: f64 = 200.0;

fn mib(bytes: u64) -> f64 {
    // Memory figures fit an f64 exactly enough for a report.
    #[allow(clippy::cast_precision_loss)]
    let bytes = bytes as f64;
    bytes / MIB
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn round(
    postdesk: &server::Postdesk,
    users: &[String],
    password: &str,
) -> anyhow::Result<(Duration, u64, Vec<u16>)> {
    anyhow::ensure!(
        postdesk.reset_peak(),
        "cannot reset the peak RSS (/proc/PID/clear_refs)"
    );
    let start = Instant::now();
    let logins = users.iter().map(|username| {
        let client = reqwest::Client::new();
        let url = format!("{}/api/v1/login", postdesk.base);
        let body = json!({ "username": username, "password": password });
        async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let statuses = futures::future::join_all(logins).await;
    let took = start.elapsed();
    let (_, peak) = postdesk.memory()?;
    Ok((took, peak, statuses))
}

fn tally(statuses: &[u16]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for s in statuses {
        *counts.entry(*s).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{n}× {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let password = "orchid-lantern-meadow-51";
    let postdesk = server::Postdesk::start_with(None, &[]).await?;
    let (started, _) = postdesk.memory()?;
    let mut users = Vec::new();
    for i in 0..n {
        let username = format!("agent{i}");
        let response = postdesk
            .client
            .post(format!("{}/api/v1/users", postdesk.base))
            .bearer_auth(&postdesk.token)
            .json(&json!({ "username": username, "password": password, "roles": ["agent"] }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "creating {username}: {}",
            response.text().await?
        );
        users.push(username);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (before, _) = postdesk.memory()?;
    let (right_took, right_peak, right) = round(&postdesk, &users, password).await?;
    let (wrong_took, wrong_peak, wrong) =
        round(&postdesk, &users, "not-the-password-at-all").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (after, _) = postdesk.memory()?;
    postdesk.stop().await;

    let verdict = |peak: u64| {
        if mib(peak) < TARGET_PEAK_MIB {
            "met"
        } else {
            "MISSED"
        }
    };
    println!(
        "concurrent sign-ins: {n}, {} cores",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    println!(
        "RSS after start: {:.1} MiB; after creating the users one by one: {:.1} MiB",
        mib(started),
        mib(before)
    );
    println!(
        "right passwords: {:.2} s, peak {:.1} MiB ({}; target < {TARGET_PEAK_MIB} MiB); answers {}",
        right_took.as_secs_f64(),
        mib(right_peak),
        verdict(right_peak),
        tally(&right)
    );
    println!(
        "wrong passwords: {:.2} s, peak {:.1} MiB ({}); answers {}",
        wrong_took.as_secs_f64(),
        mib(wrong_peak),
        verdict(wrong_peak),
        tally(&wrong)
    );
    println!("RSS 2 s after: {:.1} MiB", mib(after));
    Ok(())
}
