//! RFC 6120/6121: XMPP core protocol pieces, sans-IO — SASL, XML stream, negotiation, errors,
//! and typed payloads of the XEPs the server answers itself (`ext/`).
//!
//! No sockets, no async runtime and no clock: callers feed bytes in and drain bytes and events
//! out.

pub mod ext;
pub mod ns;
pub mod sasl;
pub mod stanza;
pub mod stream;
pub mod xml;
