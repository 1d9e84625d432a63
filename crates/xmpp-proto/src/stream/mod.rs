//! RFC 6120 §4–§7: stream negotiation (STARTTLS, SASL, resource binding) and stream errors.

mod bind;
mod bound;
pub mod client;
pub mod error;
mod features;
pub mod server;

pub use bind::generate_resource;
pub use bound::{BoundEvent, BoundStream};
pub use client::{ClientConfig, ClientError, ClientEvent, ClientNegotiation};
pub use error::{StreamError, StreamErrorCondition};
pub use features::Features;
pub use server::{ServerConfig, ServerEvent, ServerNegotiation};

/// Whether STARTTLS is offered, and whether it must be used before anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// STARTTLS is offered and required (the default).
    #[default]
    Required,
    /// STARTTLS is offered but optional (PLAIN still needs TLS).
    Optional,
    /// STARTTLS is not offered (plain TCP for tests and benchmarks, or direct TLS).
    Disabled,
}
