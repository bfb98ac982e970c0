//! Threading: which earlier Message-IDs an inbound email may belong under.
//!
//! The email's In-Reply-To comes first (it names the message being answered), then its
//! References from newest to oldest (mail clients append, so the last is the nearest ancestor).
//! The store matches these, in order, against every Message-ID it holds for the inbox, inbound
//! and outbound; the first hit wins. No hit means a new conversation.

/// Why an inbound email landed where it did; kept on the message so "why did this email do
/// that" has an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadReason {
    /// In-Reply-To matched a stored message.
    InReplyTo(String),
    /// A References entry matched a stored message.
    References(String),
    /// Nothing matched: a new conversation.
    New,
}

impl ThreadReason {
    /// A short text form for storing and showing.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            ThreadReason::InReplyTo(id) => format!("in-reply-to <{id}>"),
            ThreadReason::References(id) => format!("references <{id}>"),
            ThreadReason::New => "new conversation".to_owned(),
        }
    }
}

/// The Message-IDs to look up, in priority order, without duplicates or empties, each paired
/// with the reason it would give.
#[must_use]
pub fn candidates(in_reply_to: Option<&str>, references: &[String]) -> Vec<ThreadReason> {
    let mut out: Vec<ThreadReason> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    if let Some(id) = in_reply_to.map(str::trim).filter(|id| !id.is_empty()) {
        seen.push(id);
        out.push(ThreadReason::InReplyTo(id.to_owned()));
    }
    for id in references.iter().rev().map(|id| id.trim()) {
        if !id.is_empty() && !seen.contains(&id) {
            seen.push(id);
            out.push(ThreadReason::References(id.to_owned()));
        }
    }
    out
}

/// The References header of a reply: the parent's References (or, when it has none, its
/// single In-Reply-To, as RFC 5322 §3.6.4 says) followed by the parent's own Message-ID,
/// without duplicates, capped to the newest `limit` entries (long chains are cut from the
/// front, keeping the root, as RFC 5322 §3.6.4 suggests).
#[must_use]
pub fn reply_references(
    parent_references: &[String],
    parent_in_reply_to: Option<&str>,
    parent_id: &str,
    limit: usize,
) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    let before: Vec<&str> = if parent_references.is_empty() {
        parent_in_reply_to.into_iter().collect()
    } else {
        parent_references.iter().map(String::as_str).collect()
    };
    for id in before.into_iter().chain(std::iter::once(parent_id)) {
        if !id.is_empty() && !chain.iter().any(|c| c == id) {
            chain.push(id.to_owned());
        }
    }
    if limit >= 2 && chain.len() > limit {
        let newest = chain.split_off(chain.len() - (limit - 1));
        chain.truncate(1);
        chain.extend(newest);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_reply_to_comes_first_then_references_newest_first() {
        let refs = vec!["a@x".to_owned(), "b@x".to_owned(), "c@x".to_owned()];
        let got = candidates(Some("c@x"), &refs);
        assert_eq!(
            got,
            vec![
                ThreadReason::InReplyTo("c@x".into()),
                ThreadReason::References("b@x".into()),
                ThreadReason::References("a@x".into()),
            ]
        );
    }

    #[test]
    fn no_headers_means_no_candidates() {
        assert!(candidates(None, &[]).is_empty());
        assert!(candidates(Some("  "), &[String::new()]).is_empty());
    }

    #[test]
    fn reply_references_append_the_parent_once() {
        let refs = vec!["a@x".to_owned(), "b@x".to_owned()];
        assert_eq!(
            reply_references(&refs, Some("b@x"), "c@x", 20),
            vec!["a@x", "b@x", "c@x"]
        );
        assert_eq!(reply_references(&refs, None, "b@x", 20), vec!["a@x", "b@x"]);
    }

    #[test]
    fn a_parent_without_references_passes_on_its_in_reply_to() {
        assert_eq!(
            reply_references(&[], Some("ours@x"), "theirs@x", 20),
            vec!["ours@x", "theirs@x"]
        );
        assert_eq!(
            reply_references(&[], None, "theirs@x", 20),
            vec!["theirs@x"]
        );
    }

    #[test]
    fn long_reference_chains_keep_the_root_and_the_newest() {
        let refs: Vec<String> = (0..30).map(|i| format!("{i}@x")).collect();
        let got = reply_references(&refs, None, "new@x", 5);
        assert_eq!(got, vec!["0@x", "27@x", "28@x", "29@x", "new@x"]);
    }
}
