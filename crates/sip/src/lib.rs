//! RFC 3261 §10 and §16, RFC 7081: the SIP half of a CUSAX service — registrar, location
//! service and proxy — over the account store shared with XMPP (the layering is in
//! `core.rs` and ARCHITECTURE.md).
//!
//! [`SipCore`] is synchronous and never waits on the store on the hot path: accounts come from
//! an in-memory cache ([`accounts`]) invalidated by the store's change feed, bindings live in
//! memory ([`location`]) and are written behind. The socket loops live in `cusax-server`.

pub mod accounts;
mod auth;
pub mod calls;
pub mod config;
mod context;
mod core;
pub mod date;
mod gruu;
pub mod location;
mod nat;
pub mod proxy;
mod registrar;
mod types;

pub use config::{Advertised, DomainPolicy, NatTraversal, ProxyConfig, RegistrarConfig};
pub use core::SipCore;
pub use location::Location;
pub use types::{ALLOW, Outcome, Peer, SUPPORTED, Transport};
