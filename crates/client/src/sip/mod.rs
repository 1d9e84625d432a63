//! RFC 3261: the SIP user agent of the client — transport (UDP, TCP, TLS), digest,
//! registration, keep-alives and reconnection, dialogs and calls, driven by one tokio task over
//! the sans-IO `cusax-sip-proto` machines.

pub mod auth;
mod call;
mod callee;
pub mod dialog;
mod flow;
mod keepalive;
mod register;
pub mod transport;
mod ua;

pub use auth::Secret;
pub use call::recording_path;
pub use flow::FlowConfig;
pub use transport::{OpenError, TransportKind};
pub(crate) use ua::token;
pub use ua::{Account, CallOptions, UaConfig, UaError, UserAgent};
