//! RFC 7081 §3.2 (service management): `cusaxd`'s configuration, data directory, TLS material,
//! listeners and lifecycle, composed from the protocol crates.
//!
//! Libraries take bound listeners and a shutdown signal; the binary parses flags, calls
//! [`Server::start`] and waits for a signal.

pub mod config;
pub mod datadir;
mod http_listener;
mod live;
pub mod logging;
mod on_the_phone;
mod server;
mod sip_listener;
mod sip_tcp;
mod sip_udp;
pub mod tls;
mod xmpp_listener;

pub use config::Config;
pub use server::{Listening, RunningServer, Server, Services, StartError};
