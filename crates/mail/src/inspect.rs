//! JSON summary of a raw message, for `postdesk inspect FILE.eml`.

use serde_json::{Value, json};

use crate::parse::parse;
use crate::trim::explain;

/// Parses `raw` and describes it as JSON. Never panics.
///
/// For an email:
///
/// ```json
/// {
///   "message_id": "abc@example.com", "message_id_synthetic": false,
///   "in_reply_to": "x@example.com" | null, "references": ["..."],
///   "from": {"name": "Jane" | null, "email": "jane@example.org"} | null,
///   "to": [{"name", "email"}], "cc": [...], "reply_to": [...],
///   "subject": "...", "date": "2024-01-01T10:00:00+00:00" | null,
///   "text": "...", "html": "<p>...</p>" | null,
///   "reply_text": "...",            // trim::reply_text_of(text, html)
///   "reply_source": "html" | "text", // where the quoted history was found
///   "reply_rules": ["html: blockquote type=cite", "trailing quote block removed"],
///   "remote_images": false,
///   "attachments": [{"filename", "content_type", "size", "inline", "content_id"}],
///   "auto_reply": false, "auto_reply_rule": "Auto-Submitted: auto-replied" | null,
///   "bounce": {"is_bounce", "recipients", "status", "permanent", "diagnostic",
///              "kind", "original_message_id", "feedback_type",
///              "rule": "RFC 3464 delivery-status report (...)"} | null
/// }
/// ```
///
/// For input that is not an email: `{"error": "not an email: ..."}`.
pub fn inspect(raw: &[u8]) -> Value {
    let email = match parse(raw) {
        Ok(email) => email,
        Err(err) => return json!({ "error": err.to_string() }),
    };
    let reply = explain(&email.text, email.html.as_deref(), &[]);
    let attachments: Vec<Value> = email
        .attachments
        .iter()
        .map(|a| {
            json!({
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "inline": a.inline,
                "content_id": a.content_id,
            })
        })
        .collect();
    json!({
        "message_id": email.message_id,
        "message_id_synthetic": email.message_id_synthetic,
        "in_reply_to": email.in_reply_to,
        "references": email.references,
        "from": email.from,
        "to": email.to,
        "cc": email.cc,
        "reply_to": email.reply_to,
        "subject": email.subject,
        "date": email.date.map(|d| d.to_rfc3339()),
        "text": email.text,
        "reply_text": reply.text,
        "reply_source": reply.source,
        "reply_rules": reply.rules,
        "html": email.html,
        "remote_images": email.remote_images,
        "attachments": attachments,
        "auto_reply": email.auto_reply,
        "auto_reply_rule": email.auto_reply_rule,
        "bounce": email.bounce,
    })
}
