//! The key that encrypts mail-server passwords at rest (ChaCha20-Poly1305). It lives in the data
//! folder (`secret.key`, created on first start, readable by its owner only) unless given in
//! `POSTDESK_SECRET_KEY`. Stored form: 12-byte nonce followed by the ciphertext and tag.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

const NONCE_LEN: usize = 12;

/// Encrypts and decrypts stored secrets.
#[derive(Clone)]
pub struct Secrets {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// Loads the key from `configured` (base64) or from `data_dir/secret.key`, creating that
    /// file with a fresh random key when it does not exist.
    ///
    /// # Errors
    /// A configured key that is not base64 of 32 bytes, or a key file that cannot be read or
    /// written.
    pub fn load(data_dir: &Path, configured: Option<&str>) -> anyhow::Result<Self> {
        let key: Vec<u8> = if let Some(text) = configured {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .context("POSTDESK_SECRET_KEY is not valid base64")?
        } else {
            let path = data_dir.join("secret.key");
            if path.exists() {
                std::fs::read(&path)
                    .with_context(|| format!("Failed to read {}", path.display()))?
            } else {
                let key = ChaCha20Poly1305::generate_key(&mut OsRng).to_vec();
                write_private(&path, &key)?;
                key
            }
        };
        let key: [u8; 32] = key
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("The secret key must be 32 bytes, found {}", key.len()))?;
        Ok(Self {
            cipher: ChaCha20Poly1305::new(&Key::from(key)),
        })
    }

    /// Encrypts `plain`.
    #[must_use]
    pub fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption into a Vec cannot fail for inputs below the cipher's ~256 GiB limit.
        out.extend(self.cipher.encrypt(&nonce, plain).unwrap_or_default());
        out
    }

    /// Decrypts what [`Secrets::encrypt`] made.
    ///
    /// # Errors
    /// Data too short or not made with this key (a changed `secret.key`).
    pub fn decrypt(&self, stored: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(stored.len() > NONCE_LEN, "Stored secret is too short");
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into()?;
        self.cipher
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| {
                anyhow::anyhow!("Stored secret cannot be decrypted: was the secret key changed?")
            })
    }

    /// Decrypts a stored password to text.
    ///
    /// # Errors
    /// As [`Secrets::decrypt`], or a password that is not UTF-8.
    pub fn decrypt_string(&self, stored: &[u8]) -> anyhow::Result<String> {
        String::from_utf8(self.decrypt(stored)?).context("Stored password is not UTF-8")
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("Failed to create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("Failed to write {}", path.display()))?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_the_key_file_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets::load(dir.path(), None).unwrap();
        let stored = secrets.encrypt(b"imap-password");
        assert_ne!(&stored[NONCE_LEN..], b"imap-password");
        let again = Secrets::load(dir.path(), None).unwrap();
        assert_eq!(again.decrypt(&stored).unwrap(), b"imap-password");

        let other = tempfile::tempdir().unwrap();
        let stranger = Secrets::load(other.path(), None).unwrap();
        assert!(
            stranger.decrypt(&stored).is_err(),
            "another key must not decrypt"
        );
        assert!(
            Secrets::load(dir.path(), Some("c2hvcnQ=")).is_err(),
            "a 5-byte key is refused"
        );
    }
}
