//! RFC 3261: SIP message layer, transactions and digest authentication, sans-IO.
//!
//! Nothing here touches sockets, threads or the clock: parsers take bytes, the digest code and
//! the transaction state machines take the current time as a parameter, and outputs are values
//! the caller acts on. The crate is the L0 base of the registrar and proxy.

pub mod digest;
pub mod error;
pub mod message;
pub mod stun;
pub mod transaction;

pub use error::{Invalid, ParseError};
pub use message::{
    DatagramOptions, Header, HeaderKind, Limits, Method, Request, Response, SipMessage,
    StreamFrame, frame_stream, parse_datagram, parse_stream_message,
};
