//! RFC 5627 §3.2 and §5.4: temporary GRUUs — `sip:tgruu.TOKEN@domain;gr`, where TOKEN is a
//! keyed hash of the AOR and the instance, so that it reveals neither and cannot be guessed.
//!
//! The token → (AOR, instance) map lives in memory and is filled whenever a registrar answer
//! hands a temporary GRUU out; after a restart a device's temporary GRUU works again from
//! its next registration refresh (RFC 5627 §3.2 lets them expire with the registration).

use cusax_account::Aor;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;

/// The user-part prefix of every temporary GRUU this server issues.
pub(crate) const PREFIX: &str = "tgruu.";

const MAX_ENTRIES: usize = 1 << 20;

/// Issued temporary GRUUs.
#[derive(Debug)]
pub(crate) struct TempGruus {
    key: [u8; 32],
    map: Mutex<HashMap<String, (Aor, String)>>,
}

impl TempGruus {
    pub(crate) fn new(secret: [u8; 32]) -> Self {
        // A key of its own, derived from the process secret, so a token says nothing about
        // nonces and vice versa.
        let mut key = secret;
        for (i, b) in key.iter_mut().enumerate() {
            *b ^= 0x5c ^ u8::try_from(i).unwrap_or(0);
        }
        Self {
            key,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The temporary GRUU user part for `aor` and `instance` (stable within a process).
    pub(crate) fn temp_for(&self, aor: &Aor, instance: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("invariant: HMAC takes keys of any length");
        mac.update(aor.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(instance.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut token = String::with_capacity(PREFIX.len() + 24);
        token.push_str(PREFIX);
        for b in &tag[..12] {
            token.push_str(&format!("{b:02x}"));
        }
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.entry(token.clone())
            .or_insert_with(|| (aor.clone(), instance.to_owned()));
        token
    }

    /// The AOR and instance a temporary GRUU user part stands for.
    pub(crate) fn resolve(&self, user: &str) -> Option<(Aor, String)> {
        if !user.starts_with(PREFIX) {
            return None;
        }
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(user)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_gruus_are_stable_distinct_and_resolve() {
        let g = TempGruus::new([7; 32]);
        let a = Aor::parse("sip:alice@example.org").expect("aor");
        let b = Aor::parse("sip:bob@example.org").expect("aor");
        let t1 = g.temp_for(&a, "urn:uuid:1");
        assert_eq!(t1, g.temp_for(&a, "urn:uuid:1"));
        assert_ne!(t1, g.temp_for(&a, "urn:uuid:2"));
        assert_ne!(t1, g.temp_for(&b, "urn:uuid:1"));
        assert!(!t1.contains("alice"));
        assert_eq!(g.resolve(&t1), Some((a, "urn:uuid:1".to_owned())));
        assert_eq!(g.resolve("tgruu.00"), None);
        assert_eq!(g.resolve("alice"), None);
        let other = TempGruus::new([8; 32]);
        assert_ne!(
            other.temp_for(&b, "urn:uuid:1"),
            g.temp_for(&b, "urn:uuid:1")
        );
    }
}
