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

/// Hashes on the blocking pool: argon2 takes tens of milliseconds by design.
///
/// # Errors
/// As [`hash`].
pub async fn hash_async(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash(&password)).await?
}

/// Verifies on the blocking pool.
pub async fn verify_async(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || verify(&password, &hash))
        .await
        .unwrap_or(false)
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
    fn tokens_are_unique_and_hashed() {
        let a = super::new_token();
        assert_ne!(a, super::new_token());
        assert_eq!(super::token_hash(&a).len(), 64);
    }
}
