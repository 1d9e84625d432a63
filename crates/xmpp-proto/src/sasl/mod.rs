//! RFC 6120 §6: SASL mechanisms (SCRAM per RFC 5802/7677, PLAIN per RFC 4616), sans-IO.
//!
//! The server side is driven by [`SaslServer`]: start it with the mechanism the client chose,
//! feed it each decoded payload, and answer [`ServerStep::NeedCredentials`] or
//! [`ServerStep::VerifyPlain`] from the account store. The client side is [`ScramClient`] and
//! [`plain_client_message`].

mod end_point;
mod plain;
mod scram;
mod scram_client;

use std::fmt;

pub use plain::{PlainAuth, Secret, parse_plain, plain_client_message};
pub use scram::{FakeSaltKey, ScramCredentials, ScramHash, ScramServer, ScramSuccess};
pub use scram_client::{ClientChannelBinding, ScramClient, ScramClientError, ScramClientSecret};

/// A SASL mechanism this crate implements, as named in the IANA SASL registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mechanism {
    /// `SCRAM-SHA-256-PLUS` (RFC 7677 with channel binding).
    ScramSha256Plus,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-1-PLUS` (RFC 5802 with channel binding).
    ScramSha1Plus,
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `PLAIN` (RFC 4616); only acceptable over TLS.
    Plain,
}

impl Mechanism {
    /// All mechanisms in descending order of preference.
    pub const ALL: [Mechanism; 5] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    /// The registered mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// Looks a mechanism up by its registered name (case-sensitive, as RFC 4422 §3.1 names are).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The SCRAM hash of this mechanism, or `None` for PLAIN.
    pub fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::ScramSha256Plus | Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            Mechanism::ScramSha1Plus | Mechanism::ScramSha1 => Some(ScramHash::Sha1),
            Mechanism::Plain => None,
        }
    }

    /// Whether this is a channel-binding (`-PLUS`) variant.
    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha256Plus | Mechanism::ScramSha1Plus)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A channel-binding type (RFC 5056) usable with SCRAM-PLUS; `tls-unique` is deliberately absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelBindingKind {
    /// `tls-exporter` (RFC 9266): TLS 1.3, or TLS 1.2 with extended master secret.
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929 §4): hash of the server certificate; see
    /// [`ChannelBinding::tls_server_end_point`].
    TlsServerEndPoint,
}

impl ChannelBindingKind {
    /// The registered channel-binding type name.
    pub fn name(self) -> &'static str {
        match self {
            ChannelBindingKind::TlsExporter => "tls-exporter",
            ChannelBindingKind::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// Looks a channel-binding type up by its registered name.
    pub fn from_name(name: &str) -> Option<ChannelBindingKind> {
        match name {
            "tls-exporter" => Some(ChannelBindingKind::TlsExporter),
            "tls-server-end-point" => Some(ChannelBindingKind::TlsServerEndPoint),
            _ => None,
        }
    }
}

/// Channel-binding data of the current TLS connection, supplied by the IO layer.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelBinding {
    /// Which binding type `data` is.
    pub kind: ChannelBindingKind,
    /// The binding bytes (exporter output or certificate hash).
    pub data: Vec<u8>,
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelBinding")
            .field("kind", &self.kind)
            .field("len", &self.data.len())
            .finish()
    }
}

/// A SASL failure condition of RFC 6120 §6.5, sent inside `<failure/>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SaslCondition {
    /// §6.5.1: the client aborted the exchange.
    #[error("aborted")]
    Aborted,
    /// §6.5.2: the account is disabled.
    #[error("account-disabled")]
    AccountDisabled,
    /// §6.5.3: the credentials have expired.
    #[error("credentials-expired")]
    CredentialsExpired,
    /// §6.5.4: the mechanism requires an encrypted stream.
    #[error("encryption-required")]
    EncryptionRequired,
    /// §6.5.5: the data was not valid base64.
    #[error("incorrect-encoding")]
    IncorrectEncoding,
    /// §6.5.6: the authorization identity is not valid or not permitted.
    #[error("invalid-authzid")]
    InvalidAuthzid,
    /// §6.5.7: the mechanism is not supported or not offered.
    #[error("invalid-mechanism")]
    InvalidMechanism,
    /// §6.5.8: the request was syntactically wrong.
    #[error("malformed-request")]
    MalformedRequest,
    /// §6.5.9: the mechanism is weaker than server policy allows.
    #[error("mechanism-too-weak")]
    MechanismTooWeak,
    /// §6.5.10: the credentials are wrong (also used for unknown users).
    #[error("not-authorized")]
    NotAuthorized,
    /// §6.5.11: a temporary server-side error.
    #[error("temporary-auth-failure")]
    TemporaryAuthFailure,
}

impl SaslCondition {
    /// The element name of the condition inside `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>`.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslCondition::Aborted => "aborted",
            SaslCondition::AccountDisabled => "account-disabled",
            SaslCondition::CredentialsExpired => "credentials-expired",
            SaslCondition::EncryptionRequired => "encryption-required",
            SaslCondition::IncorrectEncoding => "incorrect-encoding",
            SaslCondition::InvalidAuthzid => "invalid-authzid",
            SaslCondition::InvalidMechanism => "invalid-mechanism",
            SaslCondition::MalformedRequest => "malformed-request",
            SaslCondition::MechanismTooWeak => "mechanism-too-weak",
            SaslCondition::NotAuthorized => "not-authorized",
            SaslCondition::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }

    /// Parses a condition element name.
    pub fn from_name(name: &str) -> Option<SaslCondition> {
        const ALL: [SaslCondition; 11] = [
            SaslCondition::Aborted,
            SaslCondition::AccountDisabled,
            SaslCondition::CredentialsExpired,
            SaslCondition::EncryptionRequired,
            SaslCondition::IncorrectEncoding,
            SaslCondition::InvalidAuthzid,
            SaslCondition::InvalidMechanism,
            SaslCondition::MalformedRequest,
            SaslCondition::MechanismTooWeak,
            SaslCondition::NotAuthorized,
            SaslCondition::TemporaryAuthFailure,
        ];
        ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// What a [`SaslServer`] needs or produced after a step.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerStep {
    /// SCRAM: look up the account and call [`SaslServer::credentials`] (with `None` if unknown).
    NeedCredentials {
        /// The SASLprep'd authentication identity.
        username: String,
        /// The requested authorization identity, if any; the caller must check it.
        authzid: Option<String>,
    },
    /// PLAIN: verify the password and finish with [`SaslServer::plain_verified`].
    VerifyPlain(PlainAuth),
    /// Send this challenge to the client in `<challenge/>`.
    Challenge(Vec<u8>),
    /// Authentication succeeded; send `<success/>` with the additional data if present.
    Success {
        /// The authenticated (SASLprep'd) username.
        username: String,
        /// The authorization identity the client asked for, if any.
        authzid: Option<String>,
        /// Additional data with success (the SCRAM server-final message).
        additional_data: Option<Vec<u8>>,
    },
}

/// Server-side SASL configuration shared by all exchanges.
#[derive(Clone, Debug)]
pub struct SaslServerConfig {
    /// Key that derives stable fake salts for unknown users, so user existence does not leak.
    pub fake_salt_key: FakeSaltKey,
    /// Iteration count advertised to unknown users; should match the store's usual count.
    pub fake_iterations: u32,
}

/// One server-side SASL exchange, over any implemented mechanism.
#[derive(Debug)]
pub enum SaslServer {
    /// A SCRAM exchange.
    Scram(ScramServer),
    /// A PLAIN exchange.
    Plain(plain::PlainServer),
}

impl SaslServer {
    /// Starts an exchange. `channel_bindings` is the connection's binding data (one entry per
    /// available type, possibly none); `plus_advertised` says whether -PLUS variants were
    /// offered (for the `y` downgrade check).
    pub fn start(
        config: &SaslServerConfig,
        mechanism: Mechanism,
        channel_bindings: &[ChannelBinding],
        plus_advertised: bool,
    ) -> Result<SaslServer, SaslCondition> {
        match mechanism.scram_hash() {
            Some(hash) => Ok(SaslServer::Scram(ScramServer::new(
                config,
                hash,
                mechanism.is_plus(),
                channel_bindings,
                plus_advertised,
            )?)),
            None => Ok(SaslServer::Plain(plain::PlainServer::default())),
        }
    }

    /// Feeds one client message (the initial response or a `<response/>` payload, decoded).
    pub fn step(&mut self, data: &[u8]) -> Result<ServerStep, SaslCondition> {
        match self {
            SaslServer::Scram(s) => s.step(data),
            SaslServer::Plain(p) => p.step(data),
        }
    }

    /// Answers [`ServerStep::NeedCredentials`]; returns the server-first challenge.
    pub fn credentials(
        &mut self,
        credentials: Option<ScramCredentials>,
    ) -> Result<ServerStep, SaslCondition> {
        match self {
            SaslServer::Scram(s) => s
                .provide_credentials(credentials)
                .map(ServerStep::Challenge),
            SaslServer::Plain(_) => Err(SaslCondition::MalformedRequest),
        }
    }

    /// Answers [`ServerStep::VerifyPlain`] with the result of the password check.
    pub fn plain_verified(&mut self, ok: bool) -> Result<ServerStep, SaslCondition> {
        match self {
            SaslServer::Plain(p) => p.verified(ok),
            SaslServer::Scram(_) => Err(SaslCondition::MalformedRequest),
        }
    }
}
