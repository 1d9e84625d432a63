//! RFC 3261: the SIP user agent of the client — transport (UDP, TCP, TLS), digest,
//! registration, keep-alives and reconnection, dialogs and calls, driven by one tokio task over
//! the sans-IO `cusax-sip-proto` machines.
//!
//! Imports go one way: `context.rs` (shared vocabulary) and `state.rs` (what the task holds)
//! are below `ua.rs` (the task), which is below the files that extend it (`call.rs`,
//! `callee.rs`, `register.rs`, `flow.rs`).

pub mod auth;
mod call;
mod callee;
mod context;
pub mod dialog;
mod flow;
mod keepalive;
mod register;
mod state;
mod stun;
pub mod transport;
mod ua;

pub use auth::Secret;
pub use call::recording_path;
pub(crate) use context::token;
pub use context::{CallOptions, UaError};
pub use state::FlowConfig;
pub use transport::{OpenError, TransportKind};
pub use ua::{Account, UaConfig, UserAgent};
