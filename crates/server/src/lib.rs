//! RFC 7081 §3.2 (service management): `cusaxd`'s configuration, data directory, TLS material,
//! listeners and lifecycle, composed from the protocol crates.
//!
//! Libraries take bound listeners and a shutdown signal; the binary parses flags, binds the
//! [`Listeners`], calls [`Server::start`] and waits for a signal.

mod changes;
pub mod config;
pub mod datadir;
mod http_listener;
pub mod listeners;
mod live;
pub mod logging;
mod on_the_phone;
mod server;
mod services;
mod sip;
pub mod tls;
mod xmpp_listener;

pub use config::Config;
pub use listeners::{Listeners, SipListeners, XmppListeners};
pub use server::{RunningServer, Server};
pub use services::{Listening, Services, StartError};
