//! RFC 3261 §22, RFC 7616 §3, RFC 8760: HTTP Digest authentication, server side.
//!
//! Nonces are stateless (a timestamp and an HMAC under a server secret, see [`nonce`]); only the
//! nonce-count replay check keeps state, in a fixed-capacity [`replay::NonceCounts`]. Accounts
//! store HA1 per algorithm, never passwords, and the verifier takes that HA1.

pub mod nonce;
pub mod replay;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};
use subtle::ConstantTimeEq;

use crate::message::headers::Credentials;
pub use nonce::NonceKey;
pub use replay::{NonceCounts, ReplayCheck};

/// A digest hash algorithm (RFC 7616 §6.1, RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 3261 default; the only one most deployed phones speak).
    Md5,
    /// `SHA-256` (RFC 8760).
    Sha256,
    /// `SHA-512-256` (RFC 8760).
    Sha512_256,
}

/// A lowercase hex digest of up to 256 bits, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexDigest {
    buf: [u8; 64],
    len: u8,
}

impl HexDigest {
    /// The hex characters.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The hex as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl std::fmt::Debug for HexDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hash_parts<D: Digest>(parts: &[&[u8]]) -> HexDigest {
    let mut d = D::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(p);
    }
    let out = d.finalize();
    let mut hex = HexDigest {
        buf: [0; 64],
        len: 0,
    };
    let n = base16ct::lower::encode(&out, &mut hex.buf).map_or(0, <[u8]>::len);
    hex.len = u8::try_from(n).expect("digest outputs are at most 32 bytes, 64 hex chars");
    hex
}

impl Algorithm {
    /// The token used in challenges and credentials.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
            Self::Sha512_256 => "SHA-512-256",
        }
    }

    /// Parses an `algorithm` token (case-insensitive); `-sess` variants are not supported.
    pub fn from_token(t: &[u8]) -> Option<Self> {
        [Self::Md5, Self::Sha256, Self::Sha512_256]
            .into_iter()
            .find(|a| t.eq_ignore_ascii_case(a.name().as_bytes()))
    }

    /// Length of the hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Md5 => 32,
            Self::Sha256 | Self::Sha512_256 => 64,
        }
    }

    /// `H(p1:p2:…)` as lowercase hex.
    pub fn hash(self, parts: &[&[u8]]) -> HexDigest {
        match self {
            Self::Md5 => hash_parts::<Md5>(parts),
            Self::Sha256 => hash_parts::<Sha256>(parts),
            Self::Sha512_256 => hash_parts::<Sha512_256>(parts),
        }
    }

    /// `HA1 = H(username:realm:password)` (RFC 7616 §3.4.2), what an account stores.
    pub fn ha1(self, username: &[u8], realm: &[u8], password: &[u8]) -> HexDigest {
        self.hash(&[username, realm, password])
    }
}

/// The `response` value a client must send (RFC 7616 §3.4.1; RFC 2069 form when `qop` is absent).
pub fn expected_response(
    alg: Algorithm,
    ha1: &[u8],
    method: &[u8],
    uri: &[u8],
    nonce: &[u8],
    qop: Option<(&[u8], &[u8], &[u8])>,
) -> HexDigest {
    let ha2 = alg.hash(&[method, uri]);
    match qop {
        Some((nc, cnonce, qop)) => alg.hash(&[ha1, nonce, nc, cnonce, qop, ha2.as_bytes()]),
        None => alg.hash(&[ha1, nonce, ha2.as_bytes()]),
    }
}

/// Server-side digest settings.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// Algorithms offered, in preference order (one challenge each; SHA-256 first by default).
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce stays fresh, in seconds; older ones get `stale=true`.
    pub nonce_ttl_secs: u64,
    /// Accept credentials without `qop` (RFC 2069 style) for MD5.
    pub allow_rfc2069: bool,
}

impl Default for DigestConfig {
    fn default() -> Self {
        Self {
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_ttl_secs: 300,
            allow_rfc2069: true,
        }
    }
}

/// Builds the challenge values for a 401/407, one per configured algorithm.
///
/// `peer` is bound into the nonce (e.g. the source address, or empty); `now_secs` is Unix time.
pub fn challenges(
    cfg: &DigestConfig,
    key: &NonceKey,
    realm: &[u8],
    peer: &[u8],
    now_secs: u64,
    stale: bool,
) -> Vec<Vec<u8>> {
    let nonce = key.issue(now_secs, realm, peer);
    cfg.algorithms
        .iter()
        .map(|a| {
            let mut v = Vec::with_capacity(128);
            v.extend_from_slice(b"Digest realm=\"");
            v.extend_from_slice(realm);
            v.extend_from_slice(b"\", nonce=\"");
            v.extend_from_slice(nonce.as_bytes());
            v.extend_from_slice(b"\", algorithm=");
            v.extend_from_slice(a.name().as_bytes());
            v.extend_from_slice(b", qop=\"auth\"");
            if stale {
                v.extend_from_slice(b", stale=true");
            }
            v
        })
        .collect()
}

/// Why credentials were refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not the Digest scheme, or a required parameter is missing.
    #[error("malformed credentials")]
    Malformed,
    /// The realm is not ours.
    #[error("wrong realm")]
    WrongRealm,
    /// The algorithm is unknown or not enabled.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The qop is not `auth`, or `qop` is absent where RFC 2069 mode is not allowed.
    #[error("unsupported qop")]
    UnsupportedQop,
    /// The nonce was not issued by us (bad MAC or format).
    #[error("invalid nonce")]
    BadNonce,
    /// The stored HA1 does not have the length of the chosen algorithm.
    #[error("stored HA1 does not match the algorithm")]
    BadHa1,
    /// The response does not match: wrong password (or wrong username/HA1).
    #[error("wrong response")]
    WrongResponse,
    /// The nonce-count was already used with this nonce.
    #[error("replayed nonce-count")]
    Replay,
}

/// The outcome of a successful check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Authenticated.
    Ok,
    /// The response is right but the nonce is expired or forgotten: challenge again with `stale=true`.
    Stale,
}

/// Verifies credentials against the stored HA1 (lowercase hex for `creds`' algorithm).
///
/// The caller has already looked the user up by `creds.username` and should check that the
/// digest `uri` designates the Request-URI. `now_secs` is Unix time.
#[allow(clippy::too_many_arguments)] // each input is distinct; a struct would only rename them
pub fn verify(
    cfg: &DigestConfig,
    key: &NonceKey,
    counts: &mut NonceCounts,
    creds: &Credentials<'_>,
    realm: &[u8],
    method: &[u8],
    ha1: &[u8],
    peer: &[u8],
    now_secs: u64,
) -> Result<Verified, DigestError> {
    if !creds.is_digest() {
        return Err(DigestError::Malformed);
    }
    let (Some(nonce), Some(uri), Some(resp)) = (creds.nonce, creds.uri, creds.response) else {
        return Err(DigestError::Malformed);
    };
    if creds.realm != Some(realm) {
        return Err(DigestError::WrongRealm);
    }
    let alg = match creds.algorithm {
        None => Algorithm::Md5,
        Some(t) => Algorithm::from_token(t).ok_or(DigestError::UnsupportedAlgorithm)?,
    };
    if !cfg.algorithms.contains(&alg) {
        return Err(DigestError::UnsupportedAlgorithm);
    }
    if ha1.len() != alg.hex_len() {
        return Err(DigestError::BadHa1);
    }
    let checked = key
        .check(nonce, realm, peer, now_secs, cfg.nonce_ttl_secs)
        .ok_or(DigestError::BadNonce)?;
    let qop = match creds.qop {
        Some(q) if q.eq_ignore_ascii_case(b"auth") => {
            let (Some(nc), Some(cnonce)) = (creds.nc, creds.cnonce) else {
                return Err(DigestError::Malformed);
            };
            Some((nc, cnonce, q))
        }
        Some(_) => return Err(DigestError::UnsupportedQop),
        None if cfg.allow_rfc2069 && alg == Algorithm::Md5 => None,
        None => return Err(DigestError::UnsupportedQop),
    };
    let expected = expected_response(alg, ha1, method, uri, nonce, qop);
    let mut got = [0u8; 64];
    if resp.len() != expected.as_bytes().len() {
        return Err(DigestError::WrongResponse);
    }
    for (g, r) in got.iter_mut().zip(resp) {
        *g = r.to_ascii_lowercase();
    }
    if !bool::from(got[..resp.len()].ct_eq(expected.as_bytes())) {
        return Err(DigestError::WrongResponse);
    }
    if checked.expired {
        return Ok(Verified::Stale);
    }
    if let Some((nc, ..)) = qop {
        let nc = nonce::parse_nc(nc).ok_or(DigestError::Malformed)?;
        match counts.check(checked.id, nc, now_secs) {
            ReplayCheck::Fresh => {}
            ReplayCheck::Replayed => return Err(DigestError::Replay),
            ReplayCheck::Unknown => return Ok(Verified::Stale),
        }
    }
    Ok(Verified::Ok)
}

#[cfg(test)]
mod tests;
