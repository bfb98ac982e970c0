//! What an SMTP server's answer means for an outgoing email, and when to try again.

use std::time::Duration;

/// The outcome of one attempt to hand an email to the SMTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted: the email is sent.
    Sent,
    /// A temporary failure (4xx, a dropped connection, a timeout): try again later.
    Retry {
        /// The server's or the connection's error text.
        reason: String,
    },
    /// A permanent refusal (5xx): trying again would not help.
    Failed {
        /// The server's error text.
        reason: String,
    },
}

/// How many attempts an outgoing email gets before it is marked failed for good.
pub const MAX_ATTEMPTS: i64 = 8;

/// Classifies an SMTP reply code that refused the email.
///
/// 4xx is temporary and 5xx permanent (RFC 5321 §4.2.1), except replies servers are known to
/// miscode: 552 "mailbox full" is temporary in practice (RFC 5321 §4.5.3.1.10 even says to treat
/// 552 on RCPT as 452).
#[must_use]
pub fn classify_reply(code: u16, reason: String) -> SendOutcome {
    match code {
        200..=399 => SendOutcome::Sent,
        552 | 400..=499 => SendOutcome::Retry { reason },
        _ => SendOutcome::Failed { reason },
    }
}

/// The wait before attempt `attempt + 1` after `attempt` failed attempts: 30 s doubling up to
/// one hour, so eight attempts span about four hours of an outage. `jitter` in `0.0..1.0`
/// spreads retries of many emails apart by up to a quarter of the wait.
#[must_use]
pub fn retry_delay(attempt: i64, jitter: f64) -> Duration {
    let exponent = u32::try_from(attempt.clamp(1, 16) - 1).unwrap_or(0);
    let base = 30u64.saturating_mul(1u64 << exponent).min(3600);
    let spread = (base as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as u64;
    Duration::from_secs(base + spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes_are_classified() {
        for (code, expected, why) in [
            (250, "sent", "accepted"),
            (421, "retry", "service not available"),
            (451, "retry", "local error"),
            (452, "retry", "insufficient storage"),
            (552, "retry", "mailbox full is miscoded as permanent"),
            (550, "failed", "mailbox unavailable"),
            (554, "failed", "transaction failed"),
        ] {
            let got = match classify_reply(code, "x".into()) {
                SendOutcome::Sent => "sent",
                SendOutcome::Retry { .. } => "retry",
                SendOutcome::Failed { .. } => "failed",
            };
            assert_eq!(got, expected, "{code}: {why}");
        }
    }

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        assert_eq!(retry_delay(1, 0.0), Duration::from_secs(30));
        assert_eq!(retry_delay(2, 0.0), Duration::from_secs(60));
        assert_eq!(retry_delay(3, 0.0), Duration::from_secs(120));
        assert_eq!(retry_delay(12, 0.0), Duration::from_secs(3600));
        assert_eq!(retry_delay(1, 1.0), Duration::from_secs(37));
    }
}
