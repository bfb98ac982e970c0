//! A deterministic corpus of varied, realistic support emails.
//!
//! Same seed, same bytes. The mix: about 600 customers (some with non-ASCII names), subjects in
//! several languages (RFC 2047 encoded when not ASCII), 1 to 8 paragraphs of text, a quarter of
//! the emails are replies to an earlier one (In-Reply-To, References, "Re:" and a quoted part),
//! about a third are multipart/alternative with an HTML part, one in ten is quoted-printable
//! UTF-8, about one in nine has one or two small attachments (2 to 60 KB), and every email has
//! the Received and DKIM-Signature headers a real one carries.

use base64::Engine as _;
use chrono::{Duration as ChronoDuration, TimeZone as _, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// The inbox address every email is sent to.
pub const SUPPORT: &str = "support@example.test";

/// One generated email.
pub struct Email {
    /// The bytes, CRLF line ends, no line starting with a dot.
    pub raw: Vec<u8>,
    /// With attachments.
    pub attachments: bool,
    /// A reply to an earlier email of the corpus.
    pub reply: bool,
    /// multipart/alternative with HTML.
    pub html: bool,
}

/// What a corpus holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub emails: usize,
    pub bytes: usize,
    pub largest: usize,
    pub attachments: usize,
    pub replies: usize,
    pub html: usize,
}

impl Stats {
    pub fn of(emails: &[Email]) -> Stats {
        Stats {
            emails: emails.len(),
            bytes: emails.iter().map(|e| e.raw.len()).sum(),
            largest: emails.iter().map(|e| e.raw.len()).max().unwrap_or(0),
            attachments: emails.iter().filter(|e| e.attachments).count(),
            replies: emails.iter().filter(|e| e.reply).count(),
            html: emails.iter().filter(|e| e.html).count(),
        }
    }
}

const FIRST: &[&str] = &[
    "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj",
    "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoë", "José", "Łukasz",
    "Søren", "Amélie", "Jürgen", "Chiara", "Ayşe", "Mei",
];
const LAST: &[&str] = &[
    "Customer",
    "Miller",
    "Smith",
    "Jones",
    "García",
    "Müller",
    "Rossi",
    "Dubois",
    "Nowak",
    "Kowalski",
    "Hansen",
    "Yılmaz",
    "Tanaka",
    "Okafor",
    "Silva",
    "Novák",
    "Andersson",
    "O'Brien",
    "Nguyen",
    "Schmidt",
    "Bianchi",
    "Lefèvre",
    "Haddad",
];
const DOMAINS: &[&str] = &[
    "customer.test",
    "mail.example.org",
    "shop-owner.test",
    "acme.test",
    "contoso.test",
    "initech.test",
    "globex.test",
    "umbrella.test",
];
const SUBJECTS: &[&str] = &[
    "Order #{n} has not arrived",
    "Cannot log in to my account",
    "Question about invoice {n}",
    "Refund request for order #{n}",
    "Password reset email never arrives",
    "Feature request: export to CSV",
    "Wrong item delivered (order {n})",
    "How do I change my billing address?",
    "Subscription renewal charged twice",
    "App crashes when I upload a photo",
    "Problème de facturation n°{n}",
    "Bestellung {n}: Ware beschädigt",
    "Consulta sobre el pedido {n}",
    "ご注文 {n} について",
    "Urgent: site down since this morning",
    "Can you send me a copy of my contract?",
];
const WORDS: &[&str] = &[
    "the",
    "order",
    "account",
    "invoice",
    "please",
    "help",
    "yesterday",
    "package",
    "delivery",
    "refund",
    "payment",
    "card",
    "error",
    "message",
    "screen",
    "login",
    "password",
    "email",
    "support",
    "team",
    "thanks",
    "regards",
    "week",
    "again",
    "still",
    "not",
    "working",
    "when",
    "I",
    "we",
    "you",
    "our",
    "my",
    "could",
    "would",
    "should",
    "can",
    "is",
    "was",
    "were",
    "have",
    "had",
    "it",
    "this",
    "that",
    "with",
    "from",
    "for",
    "about",
    "after",
    "before",
    "update",
    "customer",
    "number",
    "address",
    "shipping",
    "tracking",
    "status",
    "problem",
    "issue",
    "request",
    "question",
    "subscription",
    "plan",
    "upgrade",
    "cancel",
    "charge",
    "twice",
    "receipt",
    "attached",
    "screenshot",
    "browser",
    "phone",
    "app",
    "version",
    "today",
    "morning",
    "afternoon",
    "urgent",
    "soon",
    "possible",
    "understand",
    "explain",
    "already",
    "tried",
    "restart",
    "cache",
    "settings",
    "profile",
    "changed",
    "missing",
    "received",
    "sent",
    "wrong",
    "size",
    "colour",
    "item",
    "return",
    "label",
    "warehouse",
    "courier",
    "café",
    "naïve",
    "über",
    "déjà",
    "vu",
    "ça",
    "fünf",
];
const ATTACHMENTS: &[(&str, &str)] = &[
    ("invoice-{n}.pdf", "application/pdf"),
    ("screenshot-{n}.png", "image/png"),
    ("photo_{n}.jpg", "image/jpeg"),
    ("export-{n}.csv", "text/csv"),
    ("logs-{n}.txt", "text/plain"),
];

struct Sent {
    message_id: String,
    references: Vec<String>,
    subject: String,
    from: (String, String),
    body: String,
}

/// `n` emails from `seed`.
pub fn generate(n: usize, seed: u64) -> Vec<Email> {
    let mut rng = StdRng::seed_from_u64(seed);
    let contacts: Vec<(String, String)> = (0..600)
        .map(|i| {
            let first = FIRST[rng.gen_range(0..FIRST.len())];
            let last = LAST[rng.gen_range(0..LAST.len())];
            let domain = DOMAINS[rng.gen_range(0..DOMAINS.len())];
            let local = format!("{}.{}{i}", ascii(first), ascii(last)).to_lowercase();
            (format!("{first} {last}"), format!("{local}@{domain}"))
        })
        .collect();
    let start = Utc
        .with_ymd_and_hms(2026, 11, 1, 8, 0, 0)
        .single()
        .unwrap_or_default();
    let mut sent: Vec<Sent> = Vec::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let date = start + ChronoDuration::seconds(i64::try_from(i).unwrap_or(0) * 97);
        let message_id = format!(
            "{i}.{:016x}@{}",
            rng.r#gen::<u64>(),
            DOMAINS[i % DOMAINS.len()]
        );
        let parent = (i > 0 && rng.gen_bool(0.25)).then(|| rng.gen_range(i.saturating_sub(300)..i));
        let (from, subject, in_reply_to, references, quoted) = match parent {
            Some(p) => {
                let parent = &sent[p];
                let mut refs = parent.references.clone();
                refs.push(parent.message_id.clone());
                let keep = refs.len().saturating_sub(10);
                let subject = if parent.subject.starts_with("Re: ") {
                    parent.subject.clone()
                } else {
                    format!("Re: {}", parent.subject)
                };
                let quoted: String = parent
                    .body
                    .lines()
                    .take(12)
                    .map(|l| format!("> {l}\r\n"))
                    .collect();
                let quoted = format!(
                    "On {}, {} wrote:\r\n{quoted}",
                    date.format("%a, %d %b %Y at %H:%M"),
                    parent.from.0
                );
                (
                    parent.from.clone(),
                    subject,
                    Some(parent.message_id.clone()),
                    refs.split_off(keep),
                    Some(quoted),
                )
            }
            None => {
                let contact = contacts[rng.gen_range(0..contacts.len())].clone();
                let template = SUBJECTS[rng.gen_range(0..SUBJECTS.len())];
                let subject = template.replace("{n}", &rng.gen_range(10_000..99_999).to_string());
                (contact, subject, None, Vec::new(), None)
            }
        };
        let body = paragraphs(&mut rng, &from.0);
        let html = rng.gen_bool(0.33);
        let qp = !html && rng.gen_bool(0.15);
        let attachments: Vec<(String, String, Vec<u8>)> = if rng.gen_bool(0.11) {
            (0..rng.gen_range(1..=2))
                .map(|_| attachment(&mut rng))
                .collect()
        } else {
            Vec::new()
        };
        let text = match &quoted {
            Some(q) => format!("{body}\r\n{q}"),
            None => body.clone(),
        };

        let mut head = String::new();
        for hop in 0..rng.gen_range(2..=3) {
            head.push_str(&format!(
                "Received: from mx{hop}.{} (mx{hop}.{} [192.0.2.{}])\r\n\tby mail.example.test (Postfix) with ESMTPS id {:X}\r\n\tfor <{SUPPORT}>; {}\r\n",
                DOMAINS[(i + hop) % DOMAINS.len()],
                DOMAINS[(i + hop) % DOMAINS.len()],
                rng.gen_range(1..250),
                rng.r#gen::<u32>(),
                date.to_rfc2822()
            ));
        }
        let signature =
            base64::engine::general_purpose::STANDARD.encode(random_bytes(&mut rng, 192));
        head.push_str(&format!(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={}; s=s1;\r\n\th=from:to:subject:date:message-id; bh={};\r\n\tb={}\r\n",
            from.1.split('@').nth(1).unwrap_or("customer.test"),
            &signature[..44],
            fold(&signature, 70, "\r\n\t ")
        ));
        head.push_str(&format!("From: {} <{}>\r\n", encode_word(&from.0), from.1));
        head.push_str(&format!("To: Example Support <{SUPPORT}>\r\n"));
        head.push_str(&format!("Subject: {}\r\n", encode_word(&subject)));
        head.push_str(&format!("Date: {}\r\n", date.to_rfc2822()));
        head.push_str(&format!("Message-ID: <{message_id}>\r\n"));
        if let Some(parent) = &in_reply_to {
            head.push_str(&format!("In-Reply-To: <{parent}>\r\n"));
            let refs: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
            head.push_str(&format!("References: {}\r\n", refs.join("\r\n ")));
        }
        if rng.gen_bool(0.5) {
            head.push_str("User-Agent: Mozilla Thunderbird\r\n");
        }
        head.push_str("MIME-Version: 1.0\r\n");

        let text_part = if qp {
            format!(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\n",
                quoted_printable(&text)
            )
        } else {
            format!(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n"
            )
        };
        let content = if html {
            let html_body: String = text
                .split("\r\n\r\n")
                .map(|p| format!("<p>{}</p>\r\n", escape_html(p).replace("\r\n", "<br>\r\n")))
                .collect();
            let html_part = format!(
                "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<html><head><style>p {{ margin: 0 0 1em }}</style></head><body>\r\n{html_body}<p><a href=\"https://{}/account\">My account</a></p>\r\n<img src=\"https://tracker.example.test/open/{i}.gif\" width=\"1\" height=\"1\"></body></html>\r\n",
                DOMAINS[i % DOMAINS.len()]
            );
            format!(
                "Content-Type: multipart/alternative; boundary=\"alt-{i}\"\r\n\r\n--alt-{i}\r\n{text_part}--alt-{i}\r\n{html_part}--alt-{i}--\r\n"
            )
        } else {
            text_part
        };
        let mime = if attachments.is_empty() {
            content
        } else {
            let mut mixed = format!(
                "Content-Type: multipart/mixed; boundary=\"mix-{i}\"\r\n\r\nThis is a multi-part message in MIME format.\r\n--mix-{i}\r\n{content}"
            );
            for (filename, content_type, bytes) in &attachments {
                mixed.push_str(&format!(
                    "--mix-{i}\r\nContent-Type: {content_type}; name=\"{filename}\"\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                    base64_lines(bytes)
                ));
            }
            mixed.push_str(&format!("--mix-{i}--\r\n"));
            mixed
        };
        let raw = format!("{head}{mime}").into_bytes();
        out.push(Email {
            raw,
            attachments: !attachments.is_empty(),
            reply: parent.is_some(),
            html,
        });
        sent.push(Sent {
            message_id,
            references,
            subject,
            from,
            body,
        });
    }
    out
}

/// One email of about `target` bytes (not more), with one random binary attachment making up
/// nearly all of it: the size-limit email.
pub fn big_email(target: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let build = |payload: &[u8]| -> Vec<u8> {
        format!(
            "From: Carol Customer <carol@customer.test>\r\nTo: Example Support <{SUPPORT}>\r\nSubject: The full database dump you asked for\r\n\
             Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <big.{seed}@customer.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Hello, here is the dump (compressed).\r\n\r\nCarol\r\n--big\r\nContent-Type: application/octet-stream; name=\"dump.tar.zst\"\r\n\
             Content-Disposition: attachment; filename=\"dump.tar.zst\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--big--\r\n",
            base64_lines(payload)
        )
        .into_bytes()
    };
    let overhead = build(&[]).len();
    // 57 bytes become one 76-character line plus CRLF.
    let payload = (target.saturating_sub(overhead + 80)) / 78 * 57;
    build(&random_bytes(&mut rng, payload))
}

fn paragraphs(rng: &mut StdRng, name: &str) -> String {
    let mut out = String::from(if rng.gen_bool(0.5) {
        "Hello,\r\n\r\n"
    } else {
        "Hi support team,\r\n\r\n"
    });
    for _ in 0..rng.gen_range(1..=8) {
        let mut line_len = 0;
        for s in 0..rng.gen_range(1..=5) {
            for w in 0..rng.gen_range(6..=18) {
                let mut word = WORDS[rng.gen_range(0..WORDS.len())].to_owned();
                if w == 0 {
                    word = capitalise(&word);
                }
                if line_len + word.len() > 72 {
                    out.push_str("\r\n");
                    line_len = 0;
                } else if w > 0 || s > 0 {
                    out.push(' ');
                    line_len += 1;
                }
                line_len += word.len();
                out.push_str(&word);
            }
            out.push(if rng.gen_bool(0.2) { '?' } else { '.' });
        }
        out.push_str("\r\n\r\n");
    }
    out.push_str(&format!(
        "Best regards,\r\n{name}\r\n-- \r\nSent from my phone\r\n"
    ));
    out
}

fn attachment(rng: &mut StdRng) -> (String, String, Vec<u8>) {
    let (name, content_type) = ATTACHMENTS[rng.gen_range(0..ATTACHMENTS.len())];
    let filename = name.replace("{n}", &rng.gen_range(100..9999).to_string());
    let size = rng.gen_range(2_000..60_000);
    let bytes = if content_type.starts_with("text/") {
        let mut text = String::with_capacity(size + 64);
        while text.len() < size {
            text.push_str(&format!(
                "{},{},{:.2}\r\n",
                rng.gen_range(1..100_000),
                WORDS[rng.gen_range(0..WORDS.len())],
                rng.gen_range(0.0..999.0)
            ));
        }
        text.into_bytes()
    } else {
        random_bytes(rng, size)
    };
    (filename, content_type.to_owned(), bytes)
}

fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rng.fill(&mut bytes[..]);
    bytes
}

fn base64_lines(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    fold(&encoded, 76, "\r\n")
}

fn fold(s: &str, width: usize, separator: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / width * separator.len() + 4);
    for (i, chunk) in s.as_bytes().chunks(width).enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out
}

/// An RFC 2047 encoded word when `s` is not plain ASCII.
fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        s.to_owned()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }
}

fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 11 / 10);
    for line in text.split("\r\n") {
        let mut col = 0;
        for &b in line.as_bytes() {
            let piece = if (b == b' ' || b.is_ascii_graphic()) && b != b'=' {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            col += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn ascii(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).collect()
}
