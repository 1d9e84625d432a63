//! RFC 5802 / RFC 7677: SCRAM-SHA-1 and SCRAM-SHA-256 (with -PLUS), server side and shared parts.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::{ChannelBinding, ChannelBindingKind, SaslCondition, SaslServerConfig, ServerStep};

/// Length of the random part of a server nonce, in bytes before base64.
const SERVER_NONCE_BYTES: usize = 18;

/// The hash function of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScramHash {
    /// SHA-1 (SCRAM-SHA-1, RFC 5802).
    Sha1,
    /// SHA-256 (SCRAM-SHA-256, RFC 7677).
    Sha256,
}

impl ScramHash {
    /// Output length of the hash in bytes.
    pub fn output_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }

    /// HMAC(key, concatenation of `parts`).
    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
            let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
                return Vec::new();
            };
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            ScramHash::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
            ScramHash::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        }
    }

    /// H(data).
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            ScramHash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }

    /// SaltedPassword := Hi(Normalize(password), salt, i) over an already prepared password.
    pub(crate) fn salted_password(self, prepared: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        let rounds = iterations.max(1);
        match self {
            ScramHash::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(prepared, salt, rounds, &mut out),
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(prepared, salt, rounds, &mut out)
            }
        }
        out
    }
}

/// The per-account SCRAM verifier: what the store keeps instead of a password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The account's salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// StoredKey := H(HMAC(SaltedPassword, "Client Key")).
    pub stored_key: Vec<u8>,
    /// ServerKey := HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("salt", &B64.encode(&self.salt))
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Derives a verifier from a password (SASLprep'd here) with PBKDF2; fails with
    /// `malformed-request` if the password is not valid under SASLprep.
    pub fn derive(
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramCredentials, SaslCondition> {
        let prepared =
            stringprep::saslprep(password).map_err(|_| SaslCondition::MalformedRequest)?;
        let salted = hash.salted_password(prepared.as_bytes(), salt, iterations);
        Ok(ScramCredentials::from_salted_password(
            hash, &salted, salt, iterations,
        ))
    }

    /// Builds the verifier from an already computed SaltedPassword.
    pub fn from_salted_password(
        hash: ScramHash,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredentials {
        let client_key = hash.hmac(salted_password, &[b"Client Key"]);
        ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(salted_password, &[b"Server Key"]),
        }
    }
}

/// Secret key from which fake salts for unknown users are derived (stable per username).
#[derive(Clone)]
pub struct FakeSaltKey(pub [u8; 32]);

impl FakeSaltKey {
    /// A fresh random key; persist one in the server so fake salts stay stable across restarts.
    pub fn random() -> FakeSaltKey {
        let mut k = [0u8; 32];
        rand::fill(&mut k);
        FakeSaltKey(k)
    }
}

impl fmt::Debug for FakeSaltKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FakeSaltKey(..)")
    }
}

/// Result of a successful SCRAM exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramSuccess {
    /// The server-final message (`v=…`), sent as additional data with success.
    pub server_final: Vec<u8>,
    /// The authenticated, SASLprep'd username.
    pub username: String,
    /// The requested authorization identity, if any.
    pub authzid: Option<String>,
}

/// The parsed GS2 header of a client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gs2Flag {
    /// `n`: the client does not support channel binding.
    No,
    /// `y`: the client supports it but thinks the server does not.
    Yes,
    /// `p=<type>`: the client uses channel binding of that type.
    Plus(String),
}

#[derive(Debug)]
enum State {
    Initial { empty_seen: bool },
    ClientFirst(ClientFirst),
    ServerFirst(Box<Pending>),
    Done,
}

#[derive(Debug)]
struct ClientFirst {
    gs2_header: String,
    cb_data: Option<Vec<u8>>,
    bare: String,
    client_nonce: String,
    username: String,
    authzid: Option<String>,
}

#[derive(Debug)]
struct Pending {
    first: ClientFirst,
    server_first: String,
    nonce: String,
    credentials: ScramCredentials,
    known: bool,
}

/// A server-side SCRAM exchange as a state machine.
#[derive(Debug)]
pub struct ScramServer {
    hash: ScramHash,
    plus: bool,
    channel_bindings: Vec<ChannelBinding>,
    plus_advertised: bool,
    fake_salt_key: FakeSaltKey,
    fake_iterations: u32,
    server_nonce: Option<String>,
    state: State,
}

impl ScramServer {
    /// Starts a SCRAM exchange. A `-PLUS` mechanism needs channel-binding data, else it fails
    /// with `invalid-mechanism`.
    pub fn new(
        config: &SaslServerConfig,
        hash: ScramHash,
        plus: bool,
        channel_bindings: &[ChannelBinding],
        plus_advertised: bool,
    ) -> Result<ScramServer, SaslCondition> {
        if plus && channel_bindings.is_empty() {
            return Err(SaslCondition::InvalidMechanism);
        }
        Ok(ScramServer {
            hash,
            plus,
            channel_bindings: channel_bindings.to_vec(),
            plus_advertised,
            fake_salt_key: config.fake_salt_key.clone(),
            fake_iterations: config.fake_iterations,
            server_nonce: None,
            state: State::Initial { empty_seen: false },
        })
    }

    /// Fixes the server's part of the nonce (tests only; production uses a random one).
    pub fn with_server_nonce(mut self, nonce: &str) -> ScramServer {
        self.server_nonce = Some(nonce.to_owned());
        self
    }

    /// Feeds a client message: client-first yields `NeedCredentials`, client-final `Success`.
    pub fn step(&mut self, data: &[u8]) -> Result<ServerStep, SaslCondition> {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::Initial { empty_seen } => {
                if data.is_empty() && !empty_seen {
                    // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
                    self.state = State::Initial { empty_seen: true };
                    return Ok(ServerStep::Challenge(Vec::new()));
                }
                let first = self.parse_client_first(data)?;
                let step = ServerStep::NeedCredentials {
                    username: first.username.clone(),
                    authzid: first.authzid.clone(),
                };
                self.state = State::ClientFirst(first);
                Ok(step)
            }
            State::ServerFirst(pending) => {
                let ok = self.finish(*pending, data)?;
                Ok(ServerStep::Success {
                    username: ok.username,
                    authzid: ok.authzid,
                    additional_data: Some(ok.server_final),
                })
            }
            State::ClientFirst(_) | State::Done => Err(SaslCondition::MalformedRequest),
        }
    }

    /// Supplies the account's verifier (`None` for an unknown user) and returns server-first.
    pub fn provide_credentials(
        &mut self,
        credentials: Option<ScramCredentials>,
    ) -> Result<Vec<u8>, SaslCondition> {
        let State::ClientFirst(first) = std::mem::replace(&mut self.state, State::Done) else {
            return Err(SaslCondition::MalformedRequest);
        };
        let (credentials, known) = match credentials {
            Some(c) if c.stored_key.len() == self.hash.output_len() && c.iterations > 0 => {
                (c, true)
            }
            Some(_) => return Err(SaslCondition::TemporaryAuthFailure),
            None => (self.fake_credentials(&first.username), false),
        };
        let server_part = match &self.server_nonce {
            Some(n) => n.clone(),
            None => {
                let mut raw = [0u8; SERVER_NONCE_BYTES];
                rand::fill(&mut raw);
                B64.encode(raw)
            }
        };
        let nonce = format!("{}{}", first.client_nonce, server_part);
        let server_first = format!(
            "r={},s={},i={}",
            nonce,
            B64.encode(&credentials.salt),
            credentials.iterations
        );
        let out = server_first.clone().into_bytes();
        self.state = State::ServerFirst(Box::new(Pending {
            first,
            server_first,
            nonce,
            credentials,
            known,
        }));
        Ok(out)
    }

    fn fake_credentials(&self, username: &str) -> ScramCredentials {
        let key = &self.fake_salt_key.0;
        let h = ScramHash::Sha256;
        let salt = h.hmac(key, &[b"salt\0", username.as_bytes()]);
        let salted = h.hmac(key, &[b"salted\0", username.as_bytes()]);
        let salted = &salted[..self.hash.output_len().min(salted.len())];
        ScramCredentials::from_salted_password(
            self.hash,
            salted,
            &salt[..16],
            self.fake_iterations.max(1),
        )
    }

    fn parse_client_first(&self, data: &[u8]) -> Result<ClientFirst, SaslCondition> {
        let msg = std::str::from_utf8(data).map_err(|_| SaslCondition::MalformedRequest)?;
        let (flag, authzid, bare, gs2_header) = split_gs2(msg)?;
        let cb_data = match (&flag, self.plus) {
            (Gs2Flag::Plus(name), true) => {
                let kind =
                    ChannelBindingKind::from_name(name).ok_or(SaslCondition::NotAuthorized)?;
                let cb = self
                    .channel_bindings
                    .iter()
                    .find(|cb| cb.kind == kind)
                    .ok_or(SaslCondition::NotAuthorized)?;
                Some(cb.data.clone())
            }
            (Gs2Flag::Plus(_), false) | (Gs2Flag::No | Gs2Flag::Yes, true) => {
                return Err(SaslCondition::MalformedRequest);
            }
            // RFC 5802 §6: "y" while we offered channel binding means a downgrade attack.
            (Gs2Flag::Yes, false) if self.plus_advertised => {
                return Err(SaslCondition::NotAuthorized);
            }
            (Gs2Flag::No | Gs2Flag::Yes, false) => None,
        };
        let mut attrs = bare.split(',');
        let user = attrs
            .next()
            .and_then(|a| a.strip_prefix("n="))
            .ok_or(SaslCondition::MalformedRequest)?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(SaslCondition::MalformedRequest)?;
        for ext in attrs {
            check_extension(ext)?;
        }
        if !valid_nonce(nonce) {
            return Err(SaslCondition::MalformedRequest);
        }
        let user = decode_saslname(user).ok_or(SaslCondition::MalformedRequest)?;
        let username = stringprep::saslprep(&user)
            .map_err(|_| SaslCondition::MalformedRequest)?
            .into_owned();
        if username.is_empty() {
            return Err(SaslCondition::MalformedRequest);
        }
        Ok(ClientFirst {
            gs2_header: gs2_header.to_owned(),
            cb_data,
            bare: bare.to_owned(),
            client_nonce: nonce.to_owned(),
            username,
            authzid,
        })
    }

    fn finish(&mut self, p: Pending, data: &[u8]) -> Result<ScramSuccess, SaslCondition> {
        let msg = std::str::from_utf8(data).map_err(|_| SaslCondition::MalformedRequest)?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(SaslCondition::MalformedRequest)?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(SaslCondition::MalformedRequest)?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(SaslCondition::MalformedRequest)?;
        for ext in attrs {
            check_extension(ext)?;
        }
        let cbind = B64
            .decode(cbind)
            .map_err(|_| SaslCondition::IncorrectEncoding)?;
        let proof = B64
            .decode(proof)
            .map_err(|_| SaslCondition::IncorrectEncoding)?;

        let mut expected_cb = p.first.gs2_header.as_bytes().to_vec();
        if let Some(d) = &p.first.cb_data {
            expected_cb.extend_from_slice(d);
        }
        let cb_ok = ct_eq(&cbind, &expected_cb);
        let nonce_ok = ct_eq(nonce.as_bytes(), p.nonce.as_bytes());

        let auth_message = [
            p.first.bare.as_bytes(),
            b",",
            p.server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = self.hash.hmac(&p.credentials.stored_key, &auth_message);
        let proof_ok = if proof.len() == client_signature.len() {
            let client_key: Vec<u8> = proof
                .iter()
                .zip(&client_signature)
                .map(|(a, b)| a ^ b)
                .collect();
            ct_eq(&self.hash.hash(&client_key), &p.credentials.stored_key)
        } else {
            false
        };
        if !(cb_ok & nonce_ok & proof_ok & p.known) {
            return Err(SaslCondition::NotAuthorized);
        }
        let server_signature = self.hash.hmac(&p.credentials.server_key, &auth_message);
        Ok(ScramSuccess {
            server_final: format!("v={}", B64.encode(server_signature)).into_bytes(),
            username: p.first.username,
            authzid: p.first.authzid,
        })
    }
}

/// Constant-time equality of two byte strings (length is not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Splits a client-first message into flag, authzid, client-first-bare and the raw GS2 header.
pub(crate) fn split_gs2(msg: &str) -> Result<(Gs2Flag, Option<String>, &str, &str), SaslCondition> {
    let (flag, rest) = msg.split_once(',').ok_or(SaslCondition::MalformedRequest)?;
    let (authz, bare) = rest
        .split_once(',')
        .ok_or(SaslCondition::MalformedRequest)?;
    let header = &msg[..flag.len() + authz.len() + 2];
    let flag = match flag {
        "n" => Gs2Flag::No,
        "y" => Gs2Flag::Yes,
        f => match f.strip_prefix("p=") {
            Some(name)
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
            {
                Gs2Flag::Plus(name.to_owned())
            }
            _ => return Err(SaslCondition::MalformedRequest),
        },
    };
    let authzid = if authz.is_empty() {
        None
    } else {
        let raw = authz
            .strip_prefix("a=")
            .filter(|a| !a.is_empty())
            .ok_or(SaslCondition::MalformedRequest)?;
        Some(decode_saslname(raw).ok_or(SaslCondition::InvalidAuthzid)?)
    };
    Ok((flag, authzid, bare, header))
}

/// An optional extension attribute: `x=value` with x a letter; `m` (mandatory) is rejected.
fn check_extension(ext: &str) -> Result<(), SaslCondition> {
    let mut b = ext.bytes();
    match (b.next(), b.next()) {
        (Some(k), Some(b'=')) if k.is_ascii_alphabetic() && k != b'm' => Ok(()),
        _ => Err(SaslCondition::MalformedRequest),
    }
}

/// A nonce is a non-empty run of printable ASCII except `,`.
pub(crate) fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Decodes a SCRAM `saslname` (`=2C` → `,`, `=3D` → `=`); `None` on a bad escape or raw `,`.
pub(crate) fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['=', ',']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = t;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// Encodes a `saslname` (`,` → `=2C`, `=` → `=3D`).
pub(crate) fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}
