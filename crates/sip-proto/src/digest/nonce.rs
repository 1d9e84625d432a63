//! RFC 7616 §3.3 and §5.4: stateless nonces (timestamp + HMAC-SHA-256 under a server secret).
//!
//! Format: 16 hex digits of the issue time (Unix seconds, big-endian), 16 hex digits of a
//! per-key issue counter, then 32 hex digits of the first 16 bytes of
//! `HMAC-SHA-256(secret, time ‖ counter ‖ realm ‖ 0x00 ‖ peer)`. Any node holding the secret
//! validates any nonce, so nothing is stored per challenge. The counter makes every issued
//! nonce distinct: without it, two challenges to the same peer in the same second were equal,
//! and the second client's `nc=00000001` was reported as a replay of the first.

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::message::text::hex_val;

const TS_HEX: usize = 16;
const CTR_HEX: usize = 16;
const MAC_BYTES: usize = 16;
/// Length of an issued nonce in characters.
pub const NONCE_LEN: usize = TS_HEX + CTR_HEX + 2 * MAC_BYTES;
/// Clock skew tolerated for nonces issued "in the future" by another node, in seconds.
const MAX_SKEW_SECS: u64 = 30;

/// The server secret nonces are authenticated with, and the counter that keeps them unique.
pub struct NonceKey {
    secret: [u8; 32],
    counter: AtomicU64,
}

impl Clone for NonceKey {
    fn clone(&self) -> Self {
        Self {
            secret: self.secret,
            counter: AtomicU64::new(self.counter.load(Ordering::Relaxed)),
        }
    }
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

/// An issued nonce, as ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce {
    buf: [u8; NONCE_LEN],
}

impl Nonce {
    /// The nonce text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// A nonce that passed the MAC check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedNonce {
    /// The MAC, used as the nonce's identity for nonce-count tracking.
    pub id: [u8; MAC_BYTES],
    /// Issue time (Unix seconds).
    pub issued: u64,
    /// True when older than the configured lifetime.
    pub expired: bool,
}

impl NonceKey {
    /// Creates a key from a 32-byte secret (share it across cluster nodes).
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            secret,
            counter: AtomicU64::new(0),
        }
    }

    fn mac(&self, ts: u64, ctr: u64, realm: &[u8], peer: &[u8]) -> [u8; MAC_BYTES] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts any key length");
        m.update(&ts.to_be_bytes());
        m.update(&ctr.to_be_bytes());
        m.update(realm);
        m.update(&[0]);
        m.update(peer);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }

    /// Issues a nonce at `now_secs` bound to `realm` and `peer`.
    pub fn issue(&self, now_secs: u64, realm: &[u8], peer: &[u8]) -> Nonce {
        let mut buf = [0u8; NONCE_LEN];
        let ctr = self.counter.fetch_add(1, Ordering::Relaxed);
        let mac = self.mac(now_secs, ctr, realm, peer);
        let (ts_hex, rest) = buf.split_at_mut(TS_HEX);
        let (ctr_hex, mac_hex) = rest.split_at_mut(CTR_HEX);
        // All destinations are exactly twice the source length.
        let _ = base16ct::lower::encode(&now_secs.to_be_bytes(), ts_hex);
        let _ = base16ct::lower::encode(&ctr.to_be_bytes(), ctr_hex);
        let _ = base16ct::lower::encode(&mac, mac_hex);
        Nonce { buf }
    }

    /// Checks a nonce's MAC and age; `None` when it was not issued by this key for this realm/peer.
    pub fn check(
        &self,
        nonce: &[u8],
        realm: &[u8],
        peer: &[u8],
        now_secs: u64,
        ttl_secs: u64,
    ) -> Option<CheckedNonce> {
        if nonce.len() != NONCE_LEN {
            return None;
        }
        let mut ts_bytes = [0u8; 8];
        decode_hex(&nonce[..TS_HEX], &mut ts_bytes)?;
        let mut ctr_bytes = [0u8; 8];
        decode_hex(&nonce[TS_HEX..TS_HEX + CTR_HEX], &mut ctr_bytes)?;
        let mut mac = [0u8; MAC_BYTES];
        decode_hex(&nonce[TS_HEX + CTR_HEX..], &mut mac)?;
        let issued = u64::from_be_bytes(ts_bytes);
        let expect = self.mac(issued, u64::from_be_bytes(ctr_bytes), realm, peer);
        if !bool::from(expect.ct_eq(&mac)) || issued > now_secs.saturating_add(MAX_SKEW_SECS) {
            return None;
        }
        Some(CheckedNonce {
            id: mac,
            issued,
            expired: now_secs.saturating_sub(issued) > ttl_secs,
        })
    }
}

fn decode_hex(src: &[u8], dst: &mut [u8]) -> Option<()> {
    if src.len() != dst.len() * 2 {
        return None;
    }
    for (d, pair) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = hex_val(pair[0])? << 4 | hex_val(pair[1])?;
    }
    Some(())
}

/// Parses an 8-hex-digit nonce-count.
pub fn parse_nc(nc: &[u8]) -> Option<u32> {
    let mut b = [0u8; 4];
    decode_hex(nc, &mut b)?;
    Some(u32::from_be_bytes(b))
}
