//! Regression tests for the `inbound` fuzz target (see docs/fuzzing.md).
//!
//! The pipeline is the fuzz target's own code (`fuzz/pipeline.rs`, included
//! below), run here without libFuzzer over:
//!
//! - every seed of the fuzz corpus (`fuzz/seeds/inbound/`), so the harness
//!   itself is exercised in normal CI;
//! - every input the fuzzer found a crash, timeout or OOM with
//!   (`tests/fixtures/fuzz/`), minimised.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../../../fuzz/pipeline.rs"]
mod pipeline;

/// A single input must go through the whole pipeline well within this (the
/// fuzzer's `-timeout` is 10 s, in an instrumented build).
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// `postdesk_core::thread::reply_references` with the server's limit of 20,
/// restated here since the mail crate cannot depend on postdesk-core.
fn reply_references(parent_references: &[String], parent_id: &str) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    for id in parent_references
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(parent_id))
    {
        if !id.is_empty() && !chain.iter().any(|c| c == id) {
            chain.push(id.to_owned());
        }
    }
    if chain.len() > 20 {
        let newest = chain.split_off(chain.len() - 19);
        chain.truncate(1);
        chain.extend(newest);
    }
    chain
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn run_file(path: &Path) -> pipeline::Outcome {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = Instant::now();
    let outcome = pipeline::run(&data, &reply_references);
    let elapsed = start.elapsed();
    assert!(
        elapsed < TIME_LIMIT,
        "{}: pipeline took {elapsed:?}",
        path.display()
    );
    outcome
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn seeds_go_through_the_whole_pipeline() {
    let seeds = files_in(&repo_root().join("fuzz/seeds/inbound"));
    assert!(seeds.len() >= 6, "seed corpus missing: {seeds:?}");
    for path in seeds {
        let outcome = run_file(&path);
        // Every seed is a real email: it parses, its reply text is empty only
        // when it has no text at all (the digest), and a reply to it builds
        // and parses back.
        let email = outcome
            .email
            .unwrap_or_else(|| panic!("{}: not parsed", path.display()));
        let reply = outcome.reply_text.unwrap();
        assert_eq!(
            reply.trim().is_empty(),
            email.text.trim().is_empty(),
            "{}: reply {reply:?}",
            path.display()
        );
        assert!(
            outcome.built.is_some(),
            "{}: no reply built",
            path.display()
        );
        let again = outcome.reparsed.unwrap();
        assert_eq!(again.message_id, pipeline::REPLY_ID);
        assert_eq!(
            again.in_reply_to.as_deref(),
            Some(email.message_id.as_str())
        );
    }
}

#[test]
fn seeds_cover_what_they_claim() {
    let root = repo_root().join("fuzz/seeds/inbound");
    let parsed = |name: &str| run_file(&root.join(name)).email.unwrap();
    assert!(parsed("dsn.eml").bounce.is_some());
    assert!(parsed("dsn.eml").auto_reply);
    let alternative = parsed("alternative.eml");
    assert!(!alternative.html.unwrap().contains("<script"));
    assert!(alternative.text.contains("Café"));
    assert!(
        parsed("forwarded.eml")
            .attachments
            .iter()
            .any(|a| a.content_type == "message/rfc822")
    );
    assert!(parsed("mixed.eml").attachments.iter().any(|a| a.inline));
    assert_eq!(parsed("encoded.eml").subject, "Antwort: Prüfung für Konto");
}

#[test]
fn crash_inputs_found_by_the_fuzzer_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    for path in files_in(&dir) {
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        // Completes (no panic, no broken guarantee, in time); whether it is
        // an email at all depends on the input.
        let outcome = run_file(&path);
        if let Some(email) = &outcome.email {
            assert!(!email.message_id.is_empty());
        }
    }
}
