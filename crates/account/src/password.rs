//! RFC 5802 §2.2 / RFC 4013: the one password of an account, held only while credentials are derived.

use zeroize::Zeroizing;

/// A cleartext password in memory. Its `Debug` never shows the secret and the bytes are wiped on drop.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password as typed by the user.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The raw UTF-8 bytes, as used for SIP digest HA1 (RFC 3261 §22.4).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The password prepared with SASLprep (RFC 4013), as SCRAM's `Normalize()` requires.
    /// Falls back to the raw string when SASLprep rejects it, which is what common clients do.
    pub fn saslprepped(&self) -> Zeroizing<String> {
        match stringprep::saslprep(&self.0) {
            Ok(p) => Zeroizing::new(p.into_owned()),
            Err(_) => self.0.clone(),
        }
    }

    /// True when the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn saslprep_maps_non_ascii_space() {
        let p = Password::new("a\u{00A0}b");
        assert_eq!(p.saslprepped().as_str(), "a b");
    }
}
