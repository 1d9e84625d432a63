//! RFC 3261: the SIP user agent of the client — transport, digest, registration, dialogs and
//! calls, driven by one tokio task over the sans-IO `cusax-sip-proto` machines.

pub mod auth;
mod call;
mod callee;
pub mod dialog;
mod register;
pub mod transport;
mod ua;

pub use auth::Secret;
pub use call::recording_path;
pub use transport::TransportKind;
pub use ua::{Account, UaConfig, UaError, UserAgent};
