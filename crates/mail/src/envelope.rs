//! The SMTP envelope of a stored email, read back from its trace fields, for SPF.
//!
//! SPF (RFC 7208) checks the address of the client that handed the email to the receiving
//! mail server, the name it gave in `EHLO`/`HELO` and the `MAIL FROM` address. postdesk sees
//! the email after that server, so it reads them from what that server wrote on top of the
//! email (RFC 5321 §4.4): the `Received` field naming the client, and `Return-Path` (the
//! `MAIL FROM` of the final delivery).
//!
//! - **Over postdesk's SMTP ingress**: the topmost `Received` and `Return-Path` are postdesk's
//!   own (the ingress writes them from the connection's peer address, `EHLO` and `MAIL FROM`),
//!   so they are taken as they are.
//! - **Over IMAP**: the topmost `Received` that names a client IP on the internet. Hops inside
//!   the receiving organisation (loopback, private and link-local addresses: a content filter,
//!   LMTP to the mailbox server) are skipped, since SPF of such an address says nothing. A
//!   `Received` field below the one the receiving server wrote was written by the sender's side
//!   and is not trusted more than the topmost public one.
//! - Nothing known (no such field): no client, and SPF is `none`.

use std::net::IpAddr;

use mail_parser::{HeaderName, HeaderValue, Host, MessageParser};

/// What the receiving mail server knew of the SMTP session that delivered an email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The SMTP client's address.
    pub client_ip: Option<IpAddr>,
    /// The name the client gave in `EHLO`/`HELO`.
    pub helo: Option<String>,
    /// The `MAIL FROM` address; empty for the null sender `<>` (bounces).
    pub mail_from: Option<String>,
}

/// Where a stored email came from, which decides which trace fields are trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Received by postdesk's own SMTP ingress: the topmost trace fields are postdesk's.
    SmtpIngress,
    /// Fetched from a mailbox over IMAP: the receiving server's trace fields.
    Imap,
}

/// Reads the envelope of `raw` from its trace fields (see the module's documentation).
/// Never fails: what cannot be read is left out.
#[must_use]
pub fn envelope(raw: &[u8], arrival: Arrival) -> Envelope {
    let Some(message) = MessageParser::new().parse_headers(raw) else {
        return Envelope::default();
    };
    let mut found = Envelope::default();
    for header in message.headers() {
        match (&header.name, &header.value) {
            (HeaderName::Received, HeaderValue::Received(received))
                if found.client_ip.is_none() =>
            {
                let Some(ip) = received.from_ip else {
                    continue;
                };
                if arrival == Arrival::Imap && !is_public(ip) {
                    continue;
                }
                found.client_ip = Some(ip);
                found.helo = received
                    .helo
                    .as_ref()
                    .or(received.from.as_ref())
                    .and_then(host_name);
            }
            (HeaderName::ReturnPath, _) if found.mail_from.is_none() => {
                let value = raw
                    .get(header.offset_start as usize..header.offset_end as usize)
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                found.mail_from = Some(path(&value));
            }
            _ => {}
        }
    }
    found
}

/// A host named in a `Received` field, when it is a name (an address literal is no HELO
/// name SPF can check).
fn host_name(host: &Host<'_>) -> Option<String> {
    match host {
        Host::Name(name) if !name.is_empty() && !name.starts_with('[') => {
            Some(name.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// The address inside a `Return-Path` value (`<a@b>` → `a@b`, `<>` → empty).
fn path(value: &str) -> String {
    let value = value.trim();
    let inner = match (value.find('<'), value.rfind('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value,
    };
    // A source route (`<@relay:user@domain>`, RFC 5321 appendix C) is ignored.
    let inner = inner.rsplit_once(':').map_or(inner, |(_, rest)| rest);
    inner.trim().to_owned()
}

/// An address of a host on the internet (not loopback, private, link-local or unspecified).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT (RFC 6598).
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
                && v6
                    .to_ipv4_mapped()
                    .is_none_or(|v4| is_public(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_receiving_servers_received_field_and_return_path_give_the_envelope() {
        let cases = vec![
            (
                "Return-Path: <alice@example.org>\r\nReceived: from mail.example.org (mail.example.org [203.0.113.5])\r\n\tby mx.support.test (Postfix) with ESMTPS id 4Xy; Mon, 1 Jan 2024 10:00:00 +0000\r\nReceived: from [10.0.0.2] (unknown [10.0.0.2]) by mail.example.org; Mon, 1 Jan 2024 09:59:59 +0000\r\nFrom: a@example.org\r\n\r\nbody\r\n",
                Envelope {
                    client_ip: ip("203.0.113.5"),
                    helo: Some("mail.example.org".into()),
                    mail_from: Some("alice@example.org".into()),
                },
                "Postfix's Received; the sender's own lower Received is not used",
            ),
            (
                "Received: from mx.support.test ([127.0.0.1]) by imap.support.test with LMTP id x; Mon, 1 Jan 2024 10:00:01 +0000\r\nReceived: from out.example.org (out.example.org [2001:db8::25]) by mx.support.test with ESMTP; Mon, 1 Jan 2024 10:00:00 +0000\r\nReturn-Path: <>\r\nFrom: a@example.org\r\n\r\nbody\r\n",
                Envelope {
                    client_ip: ip("2001:db8::25"),
                    helo: Some("out.example.org".into()),
                    mail_from: Some(String::new()),
                },
                "the internal LMTP hop on loopback is skipped; <> is the null sender",
            ),
            (
                "From: a@example.org\r\nSubject: no trace\r\n\r\nbody\r\n",
                Envelope::default(),
                "nothing known",
            ),
            (
                "Received: by mail.example.org (Postfix, from userid 1000) id 1; Mon, 1 Jan 2024 10:00:00 +0000\r\nReturn-Path: <@relay.test:bob@example.org>\r\nFrom: a@example.org\r\n\r\nbody\r\n",
                Envelope {
                    client_ip: None,
                    helo: None,
                    mail_from: Some("bob@example.org".into()),
                },
                "a Received naming no client; a source route is dropped",
            ),
        ];
        for (raw, expected, description) in cases {
            assert_eq!(
                envelope(raw.as_bytes(), Arrival::Imap),
                expected,
                "{description}"
            );
        }
    }

    #[test]
    fn over_the_smtp_ingress_postdesks_own_topmost_fields_are_used_even_on_loopback() {
        // What the SMTP ingress writes (crates/server/src/smtp_ingress.rs).
        let raw = b"Return-Path: <carol@sender.test>\r\nReceived: from client.sender.test ([127.0.0.1])\r\n\tby [127.0.0.1] (postdesk) with ESMTP id 0a1b\r\n\tfor <support@example.test>; Mon, 1 Jan 2024 10:00:00 +0000\r\nReceived: from evil (evil [198.51.100.9]) by forged; Mon, 1 Jan 2024 09:00:00 +0000\r\nFrom: carol@sender.test\r\n\r\nhi\r\n";
        assert_eq!(
            envelope(raw, Arrival::SmtpIngress),
            Envelope {
                client_ip: ip("127.0.0.1"),
                helo: Some("client.sender.test".into()),
                mail_from: Some("carol@sender.test".into()),
            }
        );
        assert_eq!(
            envelope(raw, Arrival::Imap).client_ip,
            ip("198.51.100.9"),
            "over IMAP the loopback hop is skipped"
        );
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for (text, public) in [
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("192.168.0.1", false),
            ("172.16.5.4", false),
            ("169.254.1.1", false),
            ("100.64.0.1", false),
            ("203.0.113.5", true),
            ("8.8.8.8", true),
            ("::1", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("::ffff:10.0.0.1", false),
            ("2001:db8::1", true),
        ] {
            assert_eq!(is_public(text.parse().unwrap()), public, "{text}");
        }
    }
}
