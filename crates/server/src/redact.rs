//! Secrets never reach the log, at any level. The mail libraries trace what they send: the
//! IMAP client its commands (`LOGIN "user" "password"`), lettre its SMTP lines (`AUTH PLAIN
//! <base64>`). Every log line goes through [`RedactingWriter`], which replaces each secret
//! postdesk has handed out ([`register_credentials`]) in every form it is sent in (as is,
//! quoted and escaped, base64, SASL PLAIN), and the argument of the protocols' sign-in
//! commands even for a secret it was not told about.

use std::io::Write;
use std::sync::RwLock;

/// What a secret becomes in the log.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not searched for (they would blank out ordinary words);
/// the sign-in commands are still cut.
const MIN_SECRET_LEN: usize = 4;

/// Every form of every secret handed out, longest first. A std lock: held only to read or
/// push, never across an await.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The command words after which the rest of a logged line is a credential.
const SIGN_IN_COMMANDS: [&str; 6] = [
    " LOGIN ",
    "AUTHENTICATE PLAIN ",
    "AUTHENTICATE XOAUTH2 ",
    "AUTH PLAIN ",
    "AUTH XOAUTH2 ",
    "AUTH LOGIN ",
];

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Registers a mail server's login so that its password (or token) never appears in the log
/// in any of the forms the IMAP and SMTP libraries send and trace it in.
pub fn register_credentials(username: &str, secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let debug = format!("{secret:?}");
    let debug = debug.trim_matches('"').to_owned();
    let imap_quoted = secret.replace('\\', "\\\\").replace('"', "\\\"");
    let forms = [
        secret.to_owned(),
        debug.clone(),
        format!("{:?}", imap_quoted).trim_matches('"').to_owned(),
        imap_quoted,
        base64(secret.as_bytes()),
        base64(format!("\0{username}\0{secret}").as_bytes()),
        base64(format!("{username}\0{username}\0{secret}").as_bytes()),
    ];
    remember(forms);
}

/// Registers an OAuth2 access (or refresh) token used by `username`: the token as is and the
/// SASL `XOAUTH2` and `OAUTHBEARER` responses it is sent in (base64), as the IMAP and SMTP
/// libraries trace them.
pub fn register_bearer(username: &str, token: &str) {
    register_credentials(username, token);
    if token.len() < MIN_SECRET_LEN {
        return;
    }
    let forms = [
        base64(format!("user={username}\x01auth=Bearer {token}\x01\x01").as_bytes()),
        base64(format!("n,a={username},\x01auth=Bearer {token}\x01\x01").as_bytes()),
    ];
    remember(forms);
}

/// Adds `forms` to the secrets cut out of the log, longest first.
fn remember(forms: impl IntoIterator<Item = String>) {
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for form in forms {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `line` with every registered secret, and the argument of every sign-in command, replaced
/// by [`REDACTED`].
#[must_use]
pub fn redact(line: &str) -> String {
    let mut out = line.to_owned();
    {
        let secrets = SECRETS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
    }
    for command in SIGN_IN_COMMANDS {
        let mut from = 0;
        while let Some(at) = out[from..].find(command) {
            let start = from + at + command.len();
            // The credential runs to the end of the logged command (its CRLF, as escaped in
            // the log, or the end of the line).
            let end = ["\\r\\n", "\r\n", "\\n", "\n", "\")"]
                .iter()
                .filter_map(|stop| out[start..].find(stop))
                .min()
                .map_or(out.len(), |n| start + n);
            out.replace_range(start..end, REDACTED);
            from = start + REDACTED.len();
        }
    }
    out
}

/// `line`, a JSON log event, with every string in it redacted as [`redact`] does a text line.
/// The strings are redacted as they are, not as JSON escaped them (a quote or a backslash in
/// a secret is escaped again in JSON), so the same forms are found as in the text format; the
/// line stays JSON. A line that is not JSON is redacted as text.
#[must_use]
pub fn redact_json(line: &str) -> String {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text) => {
                let redacted = redact(text);
                if redacted != *text {
                    *text = redacted;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            serde_json::Value::Object(fields) => fields.values_mut().for_each(walk),
            _ => {}
        }
    }
    let body = line.trim_end_matches(['\r', '\n']);
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut value) => {
            walk(&mut value);
            format!("{value}{}", &line[body.len()..])
        }
        Err(_) => redact(line),
    }
}

/// A log writer that redacts each formatted event before it is written to `W`.
#[derive(Debug)]
pub struct RedactingWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
    /// The events are JSON objects ([`redact_json`]), not text lines.
    json: bool,
}

impl<W: Write> RedactingWriter<W> {
    /// Wraps `inner`, for events formatted as text.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buffer: Vec::new(),
            json: false,
        }
    }

    /// Wraps `inner`, for events formatted as one JSON object per line.
    pub fn json(inner: W) -> Self {
        Self {
            inner,
            buffer: Vec::new(),
            json: true,
        }
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            let line = String::from_utf8_lossy(&self.buffer);
            let text = if self.json {
                redact_json(&line)
            } else {
                redact(&line)
            };
            self.buffer.clear();
            self.inner.write_all(text.as_bytes())?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        // The log subscriber writes one event, then drops its writer.
        let _ = self.flush();
    }
}

/// Makes a [`RedactingWriter`] over standard error for each log event.
#[must_use]
pub fn stderr() -> RedactingWriter<std::io::Stderr> {
    RedactingWriter::new(std::io::stderr())
}

/// Makes a [`RedactingWriter`] of JSON events over standard error for each log event.
#[must_use]
pub fn stderr_json() -> RedactingWriter<std::io::Stderr> {
    RedactingWriter::json(std::io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_registered_secret_is_redacted() {
        let secret = "p\"ss\\w0rd-Xy";
        register_credentials("carol@example.test", secret);
        let lines = [
            format!("password is {secret} here"),
            format!(
                "encode: input: Some(\"a1\"), Ok({:?})",
                format!(
                    "a1 LOGIN \"carol\" \"{}\"\r\n",
                    secret.replace('\\', "\\\\").replace('"', "\\\"")
                )
            ),
            format!(
                "Wrote: AUTH PLAIN {}",
                base64(format!("\0carol@example.test\0{secret}").as_bytes())
            ),
            format!("Wrote: {}", base64(secret.as_bytes())),
        ];
        for line in lines {
            let out = redact(&line);
            assert!(!out.contains("w0rd-Xy"), "{out}");
            assert!(!out.contains(&base64(secret.as_bytes())), "{out}");
            assert!(out.contains(REDACTED), "{out}");
        }
    }

    #[test]
    fn sign_in_commands_are_cut_even_for_unknown_secrets() {
        let out = redact(
            "encode: input: Some(\"a2\"), Ok(\"a2 LOGIN \\\"bob\\\" \\\"never-registered\\\"\\r\\n\")",
        );
        assert!(!out.contains("never-registered"), "{out}");
        assert!(out.contains("LOGIN [redacted]"), "{out}");
        let out = redact("Wrote: AUTH XOAUTH2 dXNlcj1ib2IBYXV0aD1CZWFyZXIgdG9rZW4BAQ==\\r\\n");
        assert!(!out.contains("dXNlcj1"), "{out}");
        assert_eq!(redact("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn a_json_event_is_redacted_in_its_strings_and_stays_json() {
        // A quote and a backslash: JSON escapes them once more than the text format does.
        let secret = "j\"s\\on-S3cret";
        register_credentials("dana@example.test", secret);
        let traced = format!(
            "encode: input: Some(\"a1\"), Ok({:?})",
            format!(
                "a1 LOGIN \"dana\" \"{}\"\r\n",
                secret.replace('\\', "\\\\").replace('"', "\\\"")
            )
        );
        let event = serde_json::json!({
            "level": "TRACE",
            "fields": { "message": traced, "password": secret, "n": 3 },
            "target": "async_imap",
        });
        let line = format!("{event}\n");
        assert!(
            !line.contains(secret),
            "JSON escapes the secret, so a text search misses it"
        );
        let out = redact_json(&line);
        assert!(out.ends_with('\n'), "{out}");
        let parsed: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(parsed["level"], "TRACE");
        assert_eq!(parsed["fields"]["n"], 3);
        assert_eq!(parsed["fields"]["password"], REDACTED);
        let message = parsed["fields"]["message"].as_str().unwrap();
        assert!(message.contains(REDACTED), "{message}");
        assert!(!out.contains("on-S3cret"), "{out}");
        assert_eq!(
            redact_json("not json: AUTH PLAIN AGEAYg==\n"),
            "not json: AUTH PLAIN [redacted]\n"
        );
    }

    #[test]
    fn an_oauth2_token_is_redacted_also_inside_its_sasl_responses() {
        let token = "ya29.a0-token-of-the-provider";
        register_bearer("ana@example.test", token);
        let xoauth2 =
            base64(format!("user=ana@example.test\x01auth=Bearer {token}\x01\x01").as_bytes());
        let oauthbearer =
            base64(format!("n,a=ana@example.test,\x01auth=Bearer {token}\x01\x01").as_bytes());
        for line in [
            format!("Bearer {token}"),
            format!("encode: input: None, Ok(\"{xoauth2}\\r\\n\")"),
            format!("{oauthbearer}\r\n"),
        ] {
            let out = redact(&line);
            assert!(
                !out.contains(token) && !out.contains(&xoauth2) && !out.contains(&oauthbearer),
                "{out}"
            );
            assert!(out.contains(REDACTED), "{out}");
        }
    }
}
