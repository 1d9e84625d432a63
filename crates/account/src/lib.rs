//! RFC 7081 §3.2: one account, shared by the SIP and XMPP halves of a CUSAX service.
//!
//! This crate holds the identities (domains, account ids, SIP AORs, JIDs, operator-assigned
//! aliases), the rule that ties a SIP address of record to a JID, and the credentials derived
//! from one password: SCRAM verifiers for XMPP SASL and digest HA1s for SIP. The password itself
//! is never stored. It is sans-IO: no sockets, no clock, no environment.

mod alias;
mod credentials;
mod error;
mod id;
mod password;
pub mod verify;

pub use alias::Alias;
pub use credentials::{
    Credentials, DEFAULT_SCRAM_ITERATIONS, DigestAlgorithm, DigestHa1, ScramHash, ScramVerifier,
};
pub use error::AddressError;
pub use id::{AccountId, Aor, Domain};
pub use jid::{BareJid, FullJid};
pub use password::Password;
