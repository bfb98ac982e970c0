//! Password hashing (argon2id) and login tokens. Tokens are 32 random bytes shown once to the
//! client; the store keeps only their sha256.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore as _;

/// Hashes a password with argon2id and a random salt (PHC string).
///
/// # Errors
/// Only on an internal argon2 failure.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("Failed to hash password: {e}"))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
#[must_use]
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// How many argon2 hashes run at once in this process. Each takes 19 MiB (argon2id's
/// default `m = 19456 KiB`) for tens of milliseconds; unbounded, 64 concurrent logins took
/// 1.2 GB that the allocator kept. Four keep the peak under 80 MiB and still use two cores
/// fully; the rest wait their turn, which costs them only a few milliseconds each.
const CONCURRENT_HASHES: usize = 4;

/// The turns of [`CONCURRENT_HASHES`].
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_HASHES);

/// Hashes on the blocking pool, at most [`CONCURRENT_HASHES`] at once: argon2 takes tens of
/// milliseconds and 19 MiB by design.
///
/// # Errors
/// As [`hash`].
pub async fn hash_async(password: String) -> anyhow::Result<String> {
    let _turn = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || hash(&password)).await?
}

/// Verifies on the blocking pool, at most [`CONCURRENT_HASHES`] at once.
pub async fn verify_async(password: String, hash: String) -> bool {
    let Ok(_turn) = HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify(&password, &hash))
        .await
        .unwrap_or(false)
}

/// The shortest password accepted (characters).
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The longest password accepted (characters): longer ones only cost hashing time.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// The password policy: at least [`MIN_PASSWORD_CHARS`] characters, at most
/// [`MAX_PASSWORD_CHARS`], and not guessable: zxcvbn's estimate (common-password and
/// word lists, keyboard patterns, dates, repeats, the user's own names) must reach
/// "safely unguessable" (score 3 of 4, about 10^8 guesses).
///
/// # Errors
/// What is wrong with the password, in words a person can act on.
pub fn check_policy(password: &str, user_inputs: &[&str]) -> Result<(), String> {
    let chars = password.chars().count();
    if password.trim().is_empty() {
        return Err("The password cannot be empty".into());
    }
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "The password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!(
            "The password must have at most {MAX_PASSWORD_CHARS} characters"
        ));
    }
    let mut inputs: Vec<&str> = user_inputs
        .iter()
        .copied()
        .filter(|i| !i.is_empty())
        .collect();
    inputs.push("postdesk");
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| format!(" ({w})")))
            .unwrap_or_default();
        return Err(format!(
            "The password is too easy to guess{hint}: use a longer one, e.g. a few unrelated words"
        ));
    }
    Ok(())
}

/// A new login token (URL-safe base64 of 32 random bytes).
#[must_use]
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A readable one-time password for the first admin.
#[must_use]
pub fn new_password() -> String {
    let mut bytes = [0u8; 15];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a token.
#[must_use]
pub fn token_hash(token: &str) -> String {
    postdesk_store::sha256_hex(token.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong", &h));
        assert!(!super::verify("correct horse", "not a hash"));
    }

    #[test]
    fn the_policy_refuses_empty_short_common_and_personal_passwords() {
        let cases = [
            ("", "empty"),
            ("   ", "blank"),
            ("x", "one character"),
            ("Tr0ub4d!", "short"),
            ("password123", "a common password"),
            ("qwertyuiop", "a keyboard row"),
            ("1234567890", "digits in a row"),
            ("dana-dana-dana", "the username repeated"),
        ];
        for (password, what) in cases {
            assert!(
                super::check_policy(password, &["dana", "dana@agents.test"]).is_err(),
                "{what}: {password:?} must be refused"
            );
        }
        for password in ["correct-horse-battery-staple", "mauve glacier tuba 1987"] {
            assert_eq!(
                super::check_policy(password, &["dana"]),
                Ok(()),
                "{password}"
            );
        }
        // The generated first-admin password meets the policy.
        for _ in 0..20 {
            let generated = super::new_password();
            assert_eq!(
                super::check_policy(&generated, &["admin"]),
                Ok(()),
                "{generated}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_than_the_bound_hash_at_once() {
        // All permits taken: a further verify waits instead of running.
        let held: Vec<_> = (0..super::CONCURRENT_HASHES)
            .map(|_| super::HASHING.try_acquire().unwrap())
            .collect();
        let hash = super::hash("correct horse").unwrap();
        let waiting = tokio::spawn(super::verify_async("correct horse".into(), hash));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "a fifth hash ran beside four");
        drop(held);
        assert!(waiting.await.unwrap());
    }

    #[test]
    fn tokens_are_unique_and_hashed() {
        let a = super::new_token();
        assert_ne!(a, super::new_token());
        assert_eq!(super::token_hash(&a).len(), 64);
    }
}
