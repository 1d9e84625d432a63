//! RFC 7081 (CUSAX): the cusax client library — for now its SIP side (RFC 3261 user agent with
//! RFC 3264 offer/answer and RFC 3550 RTP audio in G.711); the XMPP side comes later.
//!
//! The protocol logic comes from the sans-IO `cusax-sip-proto` crate (parser, builders,
//! transaction machines, digest arithmetic); this crate drives it with tokio sockets and timers
//! and reports what happens as a stream of typed [`Event`]s.

pub mod cusax;
pub mod event;
pub mod media;
pub mod setup;
pub mod sip;
pub mod tls;
pub mod xmpp;

pub use event::{CallDirection, CallState, Event};
pub use media::{AudioSource, Codec, MediaConfig, MediaStats};
pub use sip::{Account, Secret, TransportKind, UaConfig, UaError, UserAgent};
