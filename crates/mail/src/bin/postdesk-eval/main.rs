//! `postdesk-eval`: scores postdesk's mail understanding against third-party
//! corpora, read where they lie (never copied into the repository).
//!
//! ```text
//! cargo run -q -p postdesk-mail --bin postdesk-eval -- [CORPORA_DIR] [--verbose]
//! cargo run -q -p postdesk-mail --bin postdesk-eval -- --heldout [DIR] [--verbose]
//! ```
//!
//! `CORPORA_DIR` defaults to `../shared/corpora` (relative to the current
//! directory, else to the workspace root). Known corpora inside it:
//!
//! - `email-reply-trimmer/`: `trim::reply_text` of each `emails/NAME.txt`
//!   must equal the gold `trimmed` text (both trimmed at both ends).
//! - `sisimai/`: each gold email is parsed with `postdesk_mail::parse`; bounces
//!   and reports must be detected, failed recipients extracted, and
//!   non-bounces left alone.
//!
//! Prints a summary per corpus and the failing cases; `--verbose` also shows
//! what was expected and what came out, `--dump` the classification of every
//! sisimai email. Writes nothing. Exit status: 0 when
//! every target is met, or when the corpora folder is absent (skipped); 1
//! when a target is missed; 2 on bad usage or unreadable gold files.
//!
//! `--heldout [DIR]` scores the held-out set instead (`DIR` defaults to
//! `crates/mail/tests/heldout`; see `heldout.rs`): exit status 1 when a
//! target is missed on its test split, 2 when the set cannot be read.
//!
//! See docs/evaluation.md for the method and the figures.

mod heldout;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use postdesk_mail::{ParsedEmail, parse, trim};
use serde_json::Value;

/// Exact matches required on email-reply-trimmer.
const TRIM_TARGET: f64 = 0.90;
/// Bounces and reports detected on sisimai.
const DETECTION_TARGET: f64 = 0.95;
/// Failure records with the right failed recipients on sisimai.
const RECIPIENTS_TARGET: f64 = 0.90;

struct Options {
    dir: PathBuf,
    verbose: bool,
    dump: bool,
    /// `--heldout [DIR]`: score the held-out set in DIR instead of the corpora.
    heldout: Option<PathBuf>,
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            eprintln!("usage: postdesk-eval [CORPORA_DIR] [--verbose] [--dump]");
            eprintln!("       postdesk-eval --heldout [DIR] [--verbose]");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &options.heldout {
        return match heldout::run(dir, options.verbose) {
            Ok(true) => {
                println!("\nall held-out targets met (test split)");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                println!("\nHELD-OUT TARGET MISSED (test split)");
                ExitCode::from(1)
            }
            Err(message) => {
                eprintln!("{message}");
                ExitCode::from(2)
            }
        };
    }
    if !options.dir.is_dir() {
        println!("corpora not found at {}, skipped", options.dir.display());
        return ExitCode::SUCCESS;
    }
    println!("corpora: {}", options.dir.display());

    let mut ran = 0;
    let mut all_met = true;
    type Runner = fn(&Path, &Options) -> Result<bool, String>;
    let corpora: [(&str, Runner); 2] = [
        ("email-reply-trimmer", eval_trimmer),
        ("sisimai", eval_sisimai),
    ];
    for (name, run) in corpora {
        let dir = options.dir.join(name);
        if !dir.join("gold.jsonl").is_file() {
            println!("\n{name}: not found in {}, skipped", options.dir.display());
            continue;
        }
        ran += 1;
        match run(&dir, &options) {
            Ok(met) => all_met &= met,
            Err(message) => {
                eprintln!("{name}: {message}");
                return ExitCode::from(2);
            }
        }
    }
    println!();
    if ran == 0 {
        println!("no known corpus found, skipped");
        ExitCode::SUCCESS
    } else if all_met {
        println!("all targets met");
        ExitCode::SUCCESS
    } else {
        println!("TARGET MISSED");
        ExitCode::from(1)
    }
}

fn options() -> Result<Options, String> {
    let mut dir = None;
    let mut verbose = false;
    let mut dump = false;
    let mut heldout = false;
    let mut heldout_dir = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "-v" | "--verbose" => verbose = true,
            "--dump" => dump = true,
            "--heldout" => heldout = true,
            path if heldout && heldout_dir.is_none() && !path.starts_with('-') => {
                heldout_dir = Some(PathBuf::from(path));
            }
            "-h" | "--help" => {
                return Err("postdesk-eval: scores trimming and bounce detection".into());
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            path if dir.is_none() => dir = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    if heldout && dir.is_some() {
        return Err("--heldout takes its own folder, not CORPORA_DIR".into());
    }
    let dir = dir.unwrap_or_else(default_dir);
    let heldout = heldout.then(|| heldout_dir.unwrap_or_else(heldout::default_dir));
    Ok(Options {
        dir,
        verbose,
        dump,
        heldout,
    })
}

/// `../shared/corpora` from the current directory, else from the workspace
/// root.
fn default_dir() -> PathBuf {
    let here = PathBuf::from("../shared/corpora");
    if here.is_dir() {
        return here;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let from_root = root.join("../shared/corpora");
    if from_root.is_dir() { from_root } else { here }
}

fn gold(dir: &Path) -> Result<Vec<Value>, String> {
    let path = dir.join("gold.jsonl");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

fn percent(n: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        n as f64 * 100.0 / total as f64
    }
}

fn verdict(n: usize, total: usize, target: f64) -> (bool, String) {
    let met = total == 0 || n as f64 >= target * total as f64 - 1e-9;
    let text = format!(
        "{n}/{total} ({:.1}%), target >= {:.0}%: {}",
        percent(n, total),
        target * 100.0,
        if met { "met" } else { "MISSED" }
    );
    (met, text)
}

fn print_list(label: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    println!("  {label} ({}):", items.len());
    for item in items {
        println!("    {item}");
    }
}

// --- email-reply-trimmer -------------------------------------------------------------

fn eval_trimmer(dir: &Path, options: &Options) -> Result<bool, String> {
    let records = gold(dir)?;
    let mut exact = 0;
    let mut kept_all = 0;
    let mut failing = Vec::new();
    for record in &records {
        let name = record["name"].as_str().unwrap_or("?").to_string();
        let input = record["input"]
            .as_str()
            .ok_or_else(|| format!("{name}: no input"))?;
        let path = dir.join(input);
        let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let expected = record["trimmed"].as_str().unwrap_or_default().trim();
        let got = trim::reply_text(&text);
        // Every line of the expected new text is still there (nothing of the
        // customer's was lost, whatever else was kept).
        let got_lines: Vec<&str> = got.lines().map(str::trim).collect();
        if expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .all(|l| got_lines.contains(&l))
        {
            kept_all += 1;
        }
        if got.trim() == expected {
            exact += 1;
        } else {
            if options.verbose {
                println!(
                    "--- {name}: expected\n{expected}\n--- got\n{}\n",
                    got.trim()
                );
            }
            failing.push(name);
        }
    }
    let (met, line) = verdict(exact, records.len(), TRIM_TARGET);
    println!("\nemail-reply-trimmer: {} cases", records.len());
    println!("  exact match: {line}");
    println!(
        "  secondary: every line of the expected text kept: {kept_all}/{} ({:.1}%)",
        records.len(),
        percent(kept_all, records.len())
    );
    print_list("not matching", &failing);
    Ok(met)
}

// --- sisimai ---------------------------------------------------------------------------

/// Gold reasons that are not delivery failures.
const NOT_FAILURES: [&str; 3] = ["vacation", "feedback", "delivered"];

#[derive(Default)]
struct SisimaiScore {
    reports: usize,
    detected: usize,
    not_detected: Vec<String>,
    failure_records: usize,
    recipients_ok: usize,
    recipients_wrong: Vec<String>,
    non_bounces: usize,
    false_positives: Vec<String>,
    status_compared: usize,
    status_found: usize,
    status_exact: usize,
    status_class: usize,
    hard_compared: usize,
    hard_agree: usize,
    class5_agree: usize,
    original_id: usize,
    to_compared: usize,
    to_agree: usize,
    kinds: std::collections::BTreeMap<String, (usize, usize)>,
}

fn eval_sisimai(dir: &Path, options: &Options) -> Result<bool, String> {
    let records = gold(dir)?;
    let mut score = SisimaiScore::default();
    for record in &records {
        let file = record["file"].as_str().unwrap_or("?");
        let name = Path::new(file)
            .file_name()
            .map_or(file.to_string(), |n| n.to_string_lossy().into_owned());
        let path = dir.join(file);
        let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let parsed = parse(&bytes);
        let expected = record["expected"].as_array().cloned().unwrap_or_default();
        let is_report = record["is_bounce_or_report"].as_bool().unwrap_or(false);
        if options.dump {
            let got = parsed.as_ref().ok();
            println!(
                "{name}\tauto_reply={}\t{}",
                got.is_some_and(|e| e.auto_reply),
                got.and_then(|e| e.bounce.as_ref())
                    .map_or("no report".to_string(), |b| serde_json::to_string(b)
                        .unwrap_or_default())
            );
        }
        score_record(
            &mut score,
            &name,
            parsed.as_ref().ok(),
            &expected,
            is_report,
            options,
        );
    }

    let (detect_met, detect_line) = verdict(score.detected, score.reports, DETECTION_TARGET);
    let (rcpt_met, rcpt_line) = verdict(
        score.recipients_ok,
        score.failure_records,
        RECIPIENTS_TARGET,
    );
    let fp_met = score.false_positives.is_empty();
    println!(
        "\nsisimai: {} records ({} bounces/reports, {} non-bounces)",
        records.len(),
        score.reports,
        score.non_bounces
    );
    println!("  detected: {detect_line}");
    for (kind, (detected, total)) in &score.kinds {
        println!("    {kind}: {detected}/{total}");
    }
    println!(
        "  failed recipients (failure records: some extracted, count = gold rows): {rcpt_line}"
    );
    println!(
        "  non-bounces called a bounce or report: {}/{}, target 0: {}",
        score.false_positives.len(),
        score.non_bounces,
        if fp_met { "met" } else { "MISSED" }
    );
    println!("  secondary:");
    println!(
        "    status found: {}/{} failure records with a gold status ({:.1}%)",
        score.status_found,
        score.status_compared,
        percent(score.status_found, score.status_compared)
    );
    println!(
        "    status equal to gold: {}/{} ({:.1}%); same class (2/4/5): {}/{} ({:.1}%)",
        score.status_exact,
        score.status_compared,
        percent(score.status_exact, score.status_compared),
        score.status_class,
        score.status_compared,
        percent(score.status_class, score.status_compared)
    );
    println!(
        "    permanent == gold hard_bounce: {}/{} ({:.1}%); permanent == gold status 5.x.x: {}/{} ({:.1}%)",
        score.hard_agree,
        score.hard_compared,
        percent(score.hard_agree, score.hard_compared),
        score.class5_agree,
        score.hard_compared,
        percent(score.class5_agree, score.hard_compared)
    );
    println!(
        "    original Message-ID found: {}/{} detected reports ({:.1}%)",
        score.original_id,
        score.detected,
        percent(score.original_id, score.detected)
    );
    println!(
        "    recipient == the single To of the attached original: {}/{} ({:.1}%)",
        score.to_agree,
        score.to_compared,
        percent(score.to_agree, score.to_compared)
    );
    print_list("not detected", &score.not_detected);
    print_list("recipients wrong", &score.recipients_wrong);
    print_list("false positives", &score.false_positives);
    Ok(detect_met && rcpt_met && fp_met)
}

fn score_record(
    score: &mut SisimaiScore,
    name: &str,
    email: Option<&ParsedEmail>,
    expected: &[Value],
    is_report: bool,
    options: &Options,
) {
    let bounce = email.and_then(|e| e.bounce.as_ref());
    if !is_report {
        score.non_bounces += 1;
        if bounce.is_some() {
            score.false_positives.push(name.to_string());
        }
        return;
    }
    score.reports += 1;
    let reasons: Vec<&str> = expected
        .iter()
        .map(|row| row["reason"].as_str().unwrap_or_default())
        .collect();
    let vacation = !reasons.is_empty() && reasons.iter().all(|r| *r == "vacation");
    let group = if vacation {
        "vacation (auto_reply)"
    } else if reasons.contains(&"feedback") {
        "feedback"
    } else if reasons.contains(&"delivered") {
        "delivered"
    } else {
        "failure"
    };
    let detected = if vacation {
        email.is_some_and(|e| e.auto_reply)
    } else {
        bounce.is_some()
    };
    let entry = score.kinds.entry(group.to_string()).or_default();
    entry.1 += 1;
    if detected {
        entry.0 += 1;
        score.detected += 1;
        if bounce.is_some_and(|b| b.original_message_id.is_some()) {
            score.original_id += 1;
        }
    } else {
        score.not_detected.push(format!("{name} ({group})"));
        if options.verbose {
            println!("--- {name}: not detected ({group})");
        }
    }

    let failure = !reasons.is_empty() && reasons.iter().any(|r| !NOT_FAILURES.contains(r));
    if !failure {
        return;
    }
    score.failure_records += 1;
    let got = bounce.map_or(0, |b| b.recipients.len());
    if got > 0 && got == expected.len() {
        score.recipients_ok += 1;
    } else {
        score
            .recipients_wrong
            .push(format!("{name} (got {got}, gold {})", expected.len()));
        if options.verbose {
            println!(
                "--- {name}: recipients {:?}, gold rows {}",
                bounce.map(|b| &b.recipients),
                expected.len()
            );
        }
    }

    let Some(bounce) = bounce else {
        return;
    };
    // The gold names no addresses. Where the returned message is attached
    // and was sent to a single address, that address is the failed one.
    if expected.len() == 1
        && let Some(to) = email.and_then(attached_single_to)
    {
        score.to_compared += 1;
        if bounce.recipients.len() == 1 && bounce.recipients[0].eq_ignore_ascii_case(&to) {
            score.to_agree += 1;
        } else if options.dump {
            println!("TO-MISMATCH {name} {:?} vs {to}", bounce.recipients);
        }
    }
    let gold_status = expected[0]["status"].as_str().unwrap_or_default();
    if !gold_status.is_empty() {
        score.status_compared += 1;
        if let Some(status) = &bounce.status {
            score.status_found += 1;
            if status == gold_status {
                score.status_exact += 1;
            }
            if status.chars().next() == gold_status.chars().next() {
                score.status_class += 1;
            }
        }
        score.hard_compared += 1;
        let hard = expected
            .iter()
            .any(|row| row["hard_bounce"].as_bool().unwrap_or(false));
        if bounce.permanent == hard {
            score.hard_agree += 1;
        }
        if bounce.permanent == gold_status.starts_with('5') {
            score.class5_agree += 1;
        }
    }
}

/// The only To address of the message attached to `email` (the returned
/// original), if there is exactly one.
fn attached_single_to(email: &ParsedEmail) -> Option<String> {
    let attached = email
        .attachments
        .iter()
        .find(|a| a.content_type == "message/rfc822" || a.content_type == "message/global")?;
    let original = parse(&attached.bytes).ok()?;
    match original.to.as_slice() {
        [only] => Some(only.email.clone()),
        _ => None,
    }
}
