//! Fuzz target over the whole inbound processing of one raw message:
//! parse (with auto-reply/bounce classification and HTML sanitising), reply
//! trimming, sanitising, cid rewriting, threading, reply subject, inspect,
//! and a build/parse round trip of a reply. See docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postdesk_core::thread;

#[path = "../pipeline.rs"]
mod pipeline;

/// Longest References chain a reply carries (as the server does).
const REFERENCES_LIMIT: usize = 20;

fuzz_target!(|data: &[u8]| {
    let outcome = pipeline::run(data, &|refs, id| {
        thread::reply_references(refs, None, id, REFERENCES_LIMIT)
    });
    // A built reply always parses back (pipeline::run asserts it).
    assert_eq!(outcome.built.is_some(), outcome.reparsed.is_some());
    assert_eq!(outcome.email.is_some(), outcome.reply_text.is_some());
    if let Some(email) = &outcome.email {
        let candidates = thread::candidates(email.in_reply_to.as_deref(), &email.references);
        for reason in &candidates {
            let _ = reason.describe();
        }
        let chain =
            thread::reply_references(&email.references, None, &email.message_id, REFERENCES_LIMIT);
        assert!(chain.len() <= REFERENCES_LIMIT);
    }
});
