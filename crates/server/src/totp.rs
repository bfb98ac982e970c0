//! Two-factor sign-in with time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits,
//! 30 s steps, what every authenticator app reads from an `otpauth://` URI) and one-time
//! recovery codes. The clock is [`Clock`], which tests move.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rand::RngCore as _;
use totp_rs::{Algorithm, TOTP};

/// Seconds in one time step.
const STEP_SECONDS: u64 = 30;

/// How many steps before and after now a code may be from (clocks drift, people type slowly).
const SKEW_STEPS: i64 = 1;

/// How many recovery codes an enrolment gives.
pub const RECOVERY_CODES: usize = 10;

/// The wall clock, moved by an offset in tests.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    /// Seconds since the Unix epoch, with the offset.
    #[must_use]
    pub fn now_seconds(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.offset_seconds.load(Ordering::Relaxed)
    }

    /// Moves the clock by `seconds` (tests).
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::Relaxed);
    }
}

fn totp(secret: &[u8], account: &str) -> anyhow::Result<TOTP> {
    // An account name may not hold ':' in an otpauth URI.
    let account = account.replace(':', "_");
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        Some("postdesk".into()),
        account,
    )
    .map_err(|e| anyhow::anyhow!("Invalid TOTP secret: {e}"))
}

/// A new secret: 160 random bits, as RFC 4226 recommends.
#[must_use]
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// The `otpauth://` URI an authenticator app enrols from, and the secret in base32 for
/// typing it in by hand.
///
/// # Errors
/// Only for a secret shorter than 128 bits.
pub fn enrolment(secret: &[u8], account: &str) -> anyhow::Result<(String, String)> {
    let totp = totp(secret, account)?;
    Ok((totp.get_url(), totp.get_secret_base32()))
}

/// The time step a 6-digit `code` belongs to, within [`SKEW_STEPS`] of `now`; `None` when it
/// matches none. The caller makes sure no step is used twice.
#[must_use]
pub fn matching_step(secret: &[u8], code: &str, now_seconds: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "check").ok()?;
    let step_seconds = i64::try_from(STEP_SECONDS).ok()?;
    let now_step = now_seconds.div_euclid(step_seconds);
    (-SKEW_STEPS..=SKEW_STEPS)
        .map(|skew| now_step + skew)
        .find(|step| {
            u64::try_from(step * step_seconds)
                .is_ok_and(|time| crate::web::constant_time_eq(&totp.generate(time), &code))
        })
}

/// The secret of an enrolment's base32 text (what a person types into an app by hand).
#[must_use]
pub fn secret_from_base32(text: &str) -> Option<Vec<u8>> {
    totp_rs::Secret::Encoded(text.trim().to_owned())
        .to_bytes()
        .ok()
}

/// The code of `secret` at `seconds` (what an authenticator app shows; for tests and tools).
///
/// # Errors
/// Only for an invalid secret.
pub fn code_at(secret: &[u8], seconds: i64) -> anyhow::Result<String> {
    Ok(totp(secret, "code")?.generate(u64::try_from(seconds)?))
}

/// The letters and digits of recovery codes: no 0/o, 1/l/i to misread.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// New recovery codes, `xxxxx-xxxxx` of [`RECOVERY_ALPHABET`] (about 50 random bits each).
#[must_use]
pub fn new_recovery_codes() -> Vec<String> {
    use rand::Rng as _;
    let mut rng = rand::rngs::OsRng;
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut pick =
                || char::from(RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())]);
            let first: String = (0..5).map(|_| pick()).collect();
            let second: String = (0..5).map(|_| pick()).collect();
            format!("{first}-{second}")
        })
        .collect()
}

/// What the store keeps of a recovery code: the sha256 of its normalised form.
#[must_use]
pub fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    postdesk_store::sha256_hex(format!("postdesk-recovery:{normal}").as_bytes())
}

/// Whether `code` looks like a recovery code rather than a 6-digit one.
#[must_use]
pub fn is_recovery_code(code: &str) -> bool {
    code.trim().len() > 6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&secret, now).unwrap();
        let step = now / 30;
        assert_eq!(matching_step(&secret, &code, now), Some(step));
        assert_eq!(
            matching_step(&secret, &code, now + 30),
            Some(step),
            "one step late"
        );
        assert_eq!(
            matching_step(&secret, &code, now - 30),
            Some(step),
            "one step early"
        );
        assert_eq!(
            matching_step(&secret, &code, now + 90),
            None,
            "three steps late"
        );
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
        assert_eq!(
            matching_step(&new_secret(), &code, now),
            None,
            "another secret"
        );
    }

    #[test]
    fn the_enrolment_uri_names_postdesk_and_the_user() {
        let (uri, base32) = enrolment(&new_secret(), "ana").unwrap();
        assert!(uri.starts_with("otpauth://totp/postdesk:ana?"), "{uri}");
        assert!(uri.contains(&format!("secret={base32}")), "{uri}");
        assert_eq!(base32.len(), 32);
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_whatever_their_case() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'),
            "{codes:?}"
        );
        assert_eq!(
            recovery_hash(&codes[0]),
            recovery_hash(&codes[0].to_uppercase().replace('-', " "))
        );
        assert!(is_recovery_code(&codes[0]));
        assert!(!is_recovery_code("123456"));
    }
}
