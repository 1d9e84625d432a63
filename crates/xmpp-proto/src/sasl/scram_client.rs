//! RFC 5802 / RFC 7677: SCRAM client side (client-first, client-final, server-final check).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::scram::{ScramHash, ct_eq, encode_saslname, valid_nonce};
use super::{ChannelBinding, Mechanism};

/// Highest iteration count the client accepts, so a rogue server cannot burn our CPU.
const MAX_ITERATIONS: u32 = 1_000_000;

/// The client's channel-binding situation, which decides the GS2 flag.
#[derive(Debug, Clone)]
pub enum ClientChannelBinding {
    /// `n`: no channel binding support (e.g. plain TCP).
    Unsupported,
    /// `y`: we support channel binding but the server offered no -PLUS mechanism.
    NotOfferedByServer,
    /// `p=<type>`: bind to this channel (only with a -PLUS mechanism).
    Bind(ChannelBinding),
}

/// What the client authenticates with.
#[derive(Clone)]
pub enum ScramClientSecret {
    /// The plaintext password (SASLprep'd by the client).
    Password(String),
    /// A cached SaltedPassword for a known salt and iteration count (skips PBKDF2).
    Salted {
        /// The salt the cache was computed for.
        salt: Vec<u8>,
        /// The iteration count the cache was computed for.
        iterations: u32,
        /// The cached SaltedPassword.
        salted_password: Vec<u8>,
    },
}

impl fmt::Debug for ScramClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScramClientSecret::Password(_) => f.write_str("Password(..)"),
            ScramClientSecret::Salted { iterations, .. } => f
                .debug_struct("Salted")
                .field("iterations", iterations)
                .finish_non_exhaustive(),
        }
    }
}

/// Why a client-side SCRAM exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramClientError {
    /// Username or password is not valid under SASLprep.
    #[error("username or password rejected by SASLprep")]
    InvalidCredentials,
    /// The channel binding does not match the mechanism (-PLUS needs `Bind`, others must not).
    #[error("channel binding does not match the mechanism")]
    ChannelBindingMismatch,
    /// A server message was not well-formed SCRAM.
    #[error("malformed server message")]
    MalformedServerMessage,
    /// The server nonce does not extend our client nonce.
    #[error("server nonce does not start with the client nonce")]
    NonceMismatch,
    /// The iteration count is zero or above our limit.
    #[error("iteration count {0} out of range")]
    IterationsOutOfRange(u32),
    /// The cached salted password was for another salt or iteration count.
    #[error("cached salted password does not match the server's salt")]
    CachedSaltMismatch,
    /// The server sent `e=<value>` in server-final.
    #[error("server reported error {0}")]
    ServerError(String),
    /// The server signature did not verify: the server does not know our password.
    #[error("server signature mismatch")]
    ServerSignatureMismatch,
    /// A message was fed in the wrong state.
    #[error("message out of order")]
    OutOfOrder,
}

#[derive(Debug)]
enum State {
    Initial,
    SentFirst,
    SentFinal { server_signature: Vec<u8> },
    Done,
}

/// A client-side SCRAM exchange.
pub struct ScramClient {
    hash: ScramHash,
    gs2_header: String,
    cb_data: Option<Vec<u8>>,
    username: String,
    secret: ScramClientSecret,
    client_nonce: String,
    salted: Option<(Vec<u8>, u32, Vec<u8>)>,
    state: State,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("username", &self.username)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Prepares an exchange for a SCRAM mechanism; fails for PLAIN, for SASLprep errors, or
    /// when the channel binding does not fit the mechanism.
    pub fn new(
        mechanism: Mechanism,
        username: &str,
        secret: ScramClientSecret,
        channel_binding: ClientChannelBinding,
        authzid: Option<&str>,
    ) -> Result<ScramClient, ScramClientError> {
        let hash = mechanism
            .scram_hash()
            .ok_or(ScramClientError::ChannelBindingMismatch)?;
        let (flag, cb_data) = match (channel_binding, mechanism.is_plus()) {
            (ClientChannelBinding::Bind(cb), true) => {
                (format!("p={}", cb.kind.name()), Some(cb.data))
            }
            (ClientChannelBinding::Unsupported, false) => ("n".to_owned(), None),
            (ClientChannelBinding::NotOfferedByServer, false) => ("y".to_owned(), None),
            _ => return Err(ScramClientError::ChannelBindingMismatch),
        };
        let authz = authzid
            .map(|a| format!("a={}", encode_saslname(a)))
            .unwrap_or_default();
        let user =
            stringprep::saslprep(username).map_err(|_| ScramClientError::InvalidCredentials)?;
        if user.is_empty() {
            return Err(ScramClientError::InvalidCredentials);
        }
        let secret = match secret {
            ScramClientSecret::Password(p) => ScramClientSecret::Password(
                stringprep::saslprep(&p)
                    .map_err(|_| ScramClientError::InvalidCredentials)?
                    .into_owned(),
            ),
            s => s,
        };
        let mut raw = [0u8; 18];
        rand::fill(&mut raw);
        Ok(ScramClient {
            hash,
            gs2_header: format!("{flag},{authz},"),
            cb_data,
            username: encode_saslname(&user),
            secret,
            client_nonce: B64.encode(raw),
            salted: None,
            state: State::Initial,
        })
    }

    /// Fixes the client nonce (tests only).
    pub fn with_client_nonce(mut self, nonce: &str) -> ScramClient {
        self.client_nonce = nonce.to_owned();
        self
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", self.username, self.client_nonce)
    }

    /// The client-first message (the initial response of `<auth/>`).
    pub fn client_first(&mut self) -> Vec<u8> {
        self.state = State::SentFirst;
        format!("{}{}", self.gs2_header, self.client_first_bare()).into_bytes()
    }

    /// Handles server-first and returns client-final.
    pub fn handle_server_first(&mut self, data: &[u8]) -> Result<Vec<u8>, ScramClientError> {
        if !matches!(self.state, State::SentFirst) {
            return Err(ScramClientError::OutOfOrder);
        }
        self.state = State::Done;
        let msg =
            std::str::from_utf8(data).map_err(|_| ScramClientError::MalformedServerMessage)?;
        let mut attrs = msg.split(',');
        let mut next = |p: &str| {
            attrs
                .next()
                .and_then(|a| a.strip_prefix(p).map(str::to_owned))
                .ok_or(ScramClientError::MalformedServerMessage)
        };
        let nonce = next("r=")?;
        let salt = next("s=")?;
        let iterations = next("i=")?;
        if !valid_nonce(&nonce) {
            return Err(ScramClientError::MalformedServerMessage);
        }
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramClientError::NonceMismatch);
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| ScramClientError::MalformedServerMessage)?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| ScramClientError::MalformedServerMessage)?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(ScramClientError::IterationsOutOfRange(iterations));
        }
        let salted = match &self.secret {
            ScramClientSecret::Password(p) => {
                self.hash.salted_password(p.as_bytes(), &salt, iterations)
            }
            ScramClientSecret::Salted {
                salt: s,
                iterations: i,
                salted_password,
            } => {
                if *s != salt || *i != iterations {
                    return Err(ScramClientError::CachedSaltMismatch);
                }
                salted_password.clone()
            }
        };
        let mut cbind = self.gs2_header.as_bytes().to_vec();
        if let Some(d) = &self.cb_data {
            cbind.extend_from_slice(d);
        }
        let without_proof = format!("c={},r={}", B64.encode(&cbind), nonce);
        let auth_message = [
            self.client_first_bare().into_bytes(),
            b",".to_vec(),
            data.to_vec(),
            b",".to_vec(),
            without_proof.clone().into_bytes(),
        ]
        .concat();
        let client_key = self.hash.hmac(&salted, &[b"Client Key"]);
        let stored_key = self.hash.hash(&client_key);
        let client_signature = self.hash.hmac(&stored_key, &[&auth_message]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = self.hash.hmac(&salted, &[b"Server Key"]);
        let server_signature = self.hash.hmac(&server_key, &[&auth_message]);
        self.salted = Some((salt, iterations, salted));
        self.state = State::SentFinal { server_signature };
        Ok(format!("{},p={}", without_proof, B64.encode(proof)).into_bytes())
    }

    /// Verifies server-final (`v=…`), proving the server knows our verifier.
    pub fn handle_server_final(&mut self, data: &[u8]) -> Result<(), ScramClientError> {
        let State::SentFinal { server_signature } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramClientError::OutOfOrder);
        };
        let msg =
            std::str::from_utf8(data).map_err(|_| ScramClientError::MalformedServerMessage)?;
        let first = msg.split(',').next().unwrap_or_default();
        if let Some(e) = first.strip_prefix("e=") {
            return Err(ScramClientError::ServerError(e.to_owned()));
        }
        let v = first
            .strip_prefix("v=")
            .ok_or(ScramClientError::MalformedServerMessage)?;
        let v = B64
            .decode(v)
            .map_err(|_| ScramClientError::MalformedServerMessage)?;
        if ct_eq(&v, &server_signature) {
            Ok(())
        } else {
            Err(ScramClientError::ServerSignatureMismatch)
        }
    }

    /// After server-first: `(salt, iterations, SaltedPassword)` to cache for later logins.
    pub fn salted_password(&self) -> Option<(&[u8], u32, &[u8])> {
        self.salted
            .as_ref()
            .map(|(s, i, p)| (s.as_slice(), *i, p.as_slice()))
    }
}
