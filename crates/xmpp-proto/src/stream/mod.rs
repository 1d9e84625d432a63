//! RFC 6120 §4–§7: stream negotiation (STARTTLS, SASL, resource binding) and stream errors.

pub mod error;

pub use error::{StreamError, StreamErrorCondition};
