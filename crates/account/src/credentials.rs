//! RFC 5802 §3, RFC 7677 and RFC 7616 §3.4.2: the verifiers derived from one password.
//!
//! When a password is set the account gets SCRAM-SHA-1 and SCRAM-SHA-256 verifiers
//! (`{salt, iterations, StoredKey, ServerKey}`) for XMPP SASL and a digest HA1 per realm and
//! algorithm for SIP. The password is not kept; any of these alone cannot log in elsewhere
//! except where HA1 itself is the secret (SIP digest, by design of RFC 3261).

use crate::{AccountId, Password};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512_256};

/// SCRAM iteration count used when the operator does not choose one (RFC 7677 §4 minimum).
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScramHash {
    /// SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
}

impl ScramHash {
    /// The name used in storage and in the SASL mechanism name suffix.
    pub fn name(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SHA-1",
            ScramHash::Sha256 => "SHA-256",
        }
    }

    /// Reads a name produced by [`ScramHash::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SHA-1" => Some(ScramHash::Sha1),
            "SHA-256" => Some(ScramHash::Sha256),
            _ => None,
        }
    }

    /// `H()`: the plain hash.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    /// `HMAC(key, data)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(key)
                    .expect("invariant: HMAC accepts keys of any length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha256 => {
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                    .expect("invariant: HMAC accepts keys of any length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// `Hi(Normalize(password), salt, i)`: PBKDF2 with this HMAC (RFC 5802 §2.2).
    pub fn salted_password(self, password: &Password, salt: &[u8], iterations: u32) -> Vec<u8> {
        let p = password.saslprepped();
        match self {
            ScramHash::Sha1 => {
                pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(p.as_bytes(), salt, iterations).to_vec()
            }
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(p.as_bytes(), salt, iterations).to_vec()
            }
        }
    }
}

/// What the server stores for one SCRAM mechanism (RFC 5802 §3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// Which hash function these keys are for.
    pub hash: ScramHash,
    /// The per-account random salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// `H(ClientKey)`: verifies client proofs.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server's final message.
    pub server_key: Vec<u8>,
}

impl ScramVerifier {
    /// Derives the verifier for `password` with the given salt and iteration count.
    pub fn derive(hash: ScramHash, password: &Password, salt: &[u8], iterations: u32) -> Self {
        let salted = hash.salted_password(password, salt, iterations);
        Self::from_salted_password(hash, &salted, salt, iterations)
    }

    /// Derives StoredKey and ServerKey from an already salted password.
    pub fn from_salted_password(
        hash: ScramHash,
        salted: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let client_key = hash.hmac(salted, b"Client Key");
        Self {
            hash,
            salt: salt.to_vec(),
            iterations,
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(salted, b"Server Key"),
        }
    }
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A SIP digest algorithm (RFC 3261 §22.4, RFC 7616 §3.2, RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// MD5, what every SIP phone speaks.
    Md5,
    /// SHA-256 (RFC 8760).
    Sha256,
    /// SHA-512/256 (RFC 8760).
    Sha512_256,
}

impl DigestAlgorithm {
    /// All algorithms, strongest first (the order challenges are offered in, RFC 8760 §2.4).
    pub const ALL: [DigestAlgorithm; 3] = [
        DigestAlgorithm::Sha512_256,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Md5,
    ];

    /// The `algorithm=` token.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha512_256 => "SHA-512-256",
        }
    }

    /// Reads an `algorithm=` token, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// `H(data)` as lower-case hex, the form digest computations concatenate.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            DigestAlgorithm::Md5 => base16ct::lower::encode_string(&md5::Md5::digest(data)),
            DigestAlgorithm::Sha256 => base16ct::lower::encode_string(&Sha256::digest(data)),
            DigestAlgorithm::Sha512_256 => {
                base16ct::lower::encode_string(&Sha512_256::digest(data))
            }
        }
    }
}

/// `HA1 = H(username ":" realm ":" password)` for one realm and algorithm, as lower-case hex.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestHa1 {
    /// The protection realm (by default the account's domain).
    pub realm: String,
    /// The hash algorithm.
    pub algorithm: DigestAlgorithm,
    /// Lower-case hex of H(A1).
    pub ha1: String,
}

impl DigestHa1 {
    /// Derives HA1 for `username` in `realm`.
    pub fn derive(
        algorithm: DigestAlgorithm,
        username: &str,
        realm: &str,
        password: &Password,
    ) -> Self {
        let mut a1 =
            Vec::with_capacity(username.len() + realm.len() + 2 + password.as_bytes().len());
        a1.extend_from_slice(username.as_bytes());
        a1.push(b':');
        a1.extend_from_slice(realm.as_bytes());
        a1.push(b':');
        a1.extend_from_slice(password.as_bytes());
        let ha1 = algorithm.hex(&a1);
        zeroize::Zeroize::zeroize(&mut a1);
        Self {
            realm: realm.to_owned(),
            algorithm,
            ha1,
        }
    }
}

impl std::fmt::Debug for DigestHa1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestHa1")
            .field("realm", &self.realm)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Everything stored for an account's password: both SCRAM verifiers and the HA1s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// SCRAM-SHA-1 and SCRAM-SHA-256 verifiers.
    pub scram: Vec<ScramVerifier>,
    /// Digest HA1 per realm and algorithm.
    pub ha1: Vec<DigestHa1>,
}

impl Credentials {
    /// Derives all verifiers for `account` from `password`, with fresh random salts. The digest
    /// username is the account's user part and the realms default to the account's domain.
    pub fn derive(
        account: &AccountId,
        password: &Password,
        realms: &[&str],
        iterations: u32,
    ) -> Self {
        let iterations = iterations.max(1);
        let mut scram = Vec::with_capacity(2);
        for hash in [ScramHash::Sha1, ScramHash::Sha256] {
            let mut salt = [0u8; SALT_LEN];
            rand::fill(&mut salt);
            scram.push(ScramVerifier::derive(hash, password, &salt, iterations));
        }
        let own = [account.domain().as_str()];
        let realms = if realms.is_empty() { &own[..] } else { realms };
        let mut ha1 = Vec::with_capacity(realms.len() * DigestAlgorithm::ALL.len());
        for realm in realms {
            for alg in DigestAlgorithm::ALL {
                ha1.push(DigestHa1::derive(alg, account.user(), realm, password));
            }
        }
        Self { scram, ha1 }
    }

    /// The SCRAM verifier for one hash, if stored.
    pub fn scram(&self, hash: ScramHash) -> Option<&ScramVerifier> {
        self.scram.iter().find(|v| v.hash == hash)
    }

    /// The HA1 for a realm and algorithm, if stored.
    pub fn ha1(&self, realm: &str, algorithm: DigestAlgorithm) -> Option<&DigestHa1> {
        self.ha1
            .iter()
            .find(|h| h.algorithm == algorithm && h.realm == realm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_covers_both_protocols_and_salts_differ() {
        let id = AccountId::parse("alice@example.org").expect("valid");
        let pw = Password::new("s3cret");
        let c = Credentials::derive(&id, &pw, &[], 16);
        let c2 = Credentials::derive(&id, &pw, &[], 16);
        assert_eq!(c.scram.len(), 2);
        assert_eq!(c.ha1.len(), 3);
        let md5 = c.ha1("example.org", DigestAlgorithm::Md5).expect("stored");
        assert_eq!(
            md5.ha1,
            DigestAlgorithm::Md5.hex(b"alice:example.org:s3cret")
        );
        assert_ne!(
            c.scram(ScramHash::Sha256).map(|v| &v.salt),
            c2.scram(ScramHash::Sha256).map(|v| &v.salt)
        );
        assert_eq!(c.ha1, c2.ha1, "HA1 carries no salt");
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in DigestAlgorithm::ALL {
            assert_eq!(
                DigestAlgorithm::from_name(&a.name().to_lowercase()),
                Some(a)
            );
        }
        assert_eq!(ScramHash::from_name("SHA-256"), Some(ScramHash::Sha256));
    }
}
