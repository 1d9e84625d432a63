//! RFC 6120 §8: stanza semantics shared by client and server.

pub mod error;

pub use error::{StanzaError, StanzaErrorCondition, StanzaErrorType};
