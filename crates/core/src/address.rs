//! Email addresses as postdesk keeps them: trimmed and lowercased, so one contact is one row.

use std::fmt;

/// Why a text is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an email address (expected local@domain)")]
pub struct AddressError(pub String);

/// A normalised email address: `local@domain`, lowercase, no spaces or angle brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalises an address.
    ///
    /// # Errors
    /// [`AddressError`] when the text has no `@`, an empty side, whitespace, angle brackets or
    /// control characters.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let trimmed = text.trim();
        let bad = || AddressError(text.to_owned());
        let (local, domain) = trimmed.rsplit_once('@').ok_or_else(bad)?;
        let forbidden =
            |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';');
        if local.is_empty()
            || domain.is_empty()
            || trimmed.contains(forbidden)
            || domain.contains('@')
        {
            return Err(bad());
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(bad());
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    /// The address text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lowercased() {
        let a = EmailAddress::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "alice@example.com");
        assert_eq!(a.domain(), "example.com");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for (input, why) in [
            ("", "empty"),
            ("alice", "no @"),
            ("@example.com", "no local part"),
            ("alice@", "no domain"),
            ("al ice@example.com", "space"),
            ("<alice@example.com>", "brackets"),
            ("alice@example.com\r\nBcc: x@y", "header injection"),
            ("alice@.com", "leading dot"),
        ] {
            assert!(
                EmailAddress::parse(input).is_err(),
                "{why}: {input:?} was accepted"
            );
        }
    }
}
