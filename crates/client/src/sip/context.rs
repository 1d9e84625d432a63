//! RFC 3261 §8.1: what every file of the user agent shares — its name, what it allows,
//! the options of a call, its errors and random tokens. It imports no other file of the user
//! agent but the transport's error, so that every file can import it.

use super::transport::OpenError;
use crate::media::audio::AudioError;
use crate::tls::TlsError;

/// The `User-Agent` and `Server` value.
pub(crate) const USER_AGENT: &str = concat!("cusax/", env!("CARGO_PKG_VERSION"));
/// Methods this user agent accepts (`Allow`).
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";

/// Options of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Hide who calls: From `"Anonymous" <sip:anonymous@anonymous.invalid>`, `Privacy: id`,
    /// no `Call-Info` (RFC 3323 §4.1.1.3, RFC 3325, CUSAX CL-23). The proxy still knows the
    /// caller from the digest authentication and may assert it to trusted peers.
    pub anonymous: bool,
}

/// Why a user agent operation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum UaError {
    /// A socket could not be opened.
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
    /// The call target is not a SIP URI.
    #[error("not a SIP URI: {0}")]
    BadTarget(String),
    /// The audio source or recording cannot be used.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The user agent task has ended.
    #[error("the user agent has stopped")]
    Stopped,
    /// The TLS trust policy cannot be used (CA file unreadable, no roots).
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The TLS server name is not a valid DNS name or IP address.
    #[error("not a valid TLS server name: {0}")]
    BadServerName(String),
    /// The flow could not be opened: connection timed out, or the TLS handshake failed (an
    /// untrusted certificate, or one for another name).
    #[error("connecting to the server: {0}")]
    Connect(OpenError),
}

impl From<OpenError> for UaError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Io(e) => Self::Io(e),
            e => Self::Connect(e),
        }
    }
}

/// A random lowercase hex token of `n` bytes (tags, branches, Call-IDs, cnonces).
pub(crate) fn token(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
