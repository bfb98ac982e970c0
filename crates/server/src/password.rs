//! Password hashing (argon2id) and login tokens. Tokens are 32 random bytes shown once to the
//! client; the store keeps only their sha256.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Argon2, Block};
use base64::Engine as _;
use rand::RngCore as _;

/// The working memory of the hashes in flight, kept for the next ones: at most
/// [`CONCURRENT_HASHES`] buffers of 19 MiB. Allocated anew for each hash, glibc's allocator
/// kept every one (its mmap threshold rises to their size after the first, and small
/// allocations then split the freed buffer): 64 sign-ins grew the server by 1.2 GB for good.
/// A std mutex: held to take or return a buffer, never while hashing.
static MEMORY: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());

/// Runs `f` with a reused buffer of `blocks` argon2 blocks.
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let taken = MEMORY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pop();
    let mut memory = taken
        .filter(|m| m.len() == blocks)
        .unwrap_or_else(|| vec![Block::default(); blocks]);
    let out = f(&mut memory);
    let mut pool = MEMORY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if pool.len() < CONCURRENT_HASHES {
        pool.push(memory);
    }
    out
}

/// The raw argon2 output of `password` under `hasher` into `out`.
fn raw_hash(
    hasher: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    with_memory(hasher.params().block_count(), |memory| {
        hasher.hash_password_into_with_memory(password, salt, out, memory)
    })
}

/// Hashes a password with argon2id (the crate's default parameters: m = 19 MiB, t = 2,
/// p = 1) and a random salt, as a PHC string.
///
/// # Errors
/// Only on an internal argon2 failure.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("Failed to hash password: {e}");
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let hasher = Argon2::default();
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    raw_hash(&hasher, password.as_bytes(), salt_raw, &mut out).map_err(|e| failed(&e))?;
    let params = ParamsString::try_from(hasher.params()).map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(argon2::Version::V0x13.into()),
        params,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash` (any argon2 variant and parameters it
/// names). A malformed hash never matches. The comparison takes constant time.
#[must_use]
pub fn verify(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let hasher = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    raw_hash(&hasher, password.as_bytes(), salt_raw, &mut out).is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
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
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong", &h));
        assert!(!super::verify("correct horse", "not a hash"));
        // Hashes made by the argon2 crate's own hasher (every stored one so far) still verify,
        // and ours verify with its verifier.
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let salt = argon2::password_hash::SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = argon2::Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(super::verify("correct horse", &theirs));
        assert!(!super::verify("correct horsE", &theirs));
        let ours = argon2::password_hash::PasswordHash::new(&h).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"correct horse", &ours)
                .is_ok()
        );
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
