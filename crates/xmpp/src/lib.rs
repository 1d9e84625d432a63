//! RFC 6120/6121: the XMPP service of `cusaxd` — c2s sessions, the router and the feature
//! modules (roster, presence, messages, offline storage, vCards with the pinned SIP address,
//! disco, ping, version, blocking, password change, private storage, and PEP with "on the
//! phone" and the SIP reachability address).
//!
//! Each feature is a module (`modules/<feature>.rs`) that registers its disco features, IQ
//! handlers and hooks with the [`registry`]; stanzas are addressed to a typed
//! [`Destination`], with seams for hosted sub-domains ([`Component`]) and federation
//! ([`S2sRouter`], for now [`Bounce`]).
//!
//! Sockets and TLS belong to `cusax-server`: it accepts connections, performs TLS and hands
//! each stream to [`XmppService::serve`]. Negotiation and stanza parsing are the sans-IO
//! machines of `cusax-xmpp-proto`; this crate drives them with tokio and the account store.

mod c2s;
mod config;
mod destination;
pub mod modules;
pub mod registry;
mod router;
mod service;
mod stanza;
mod throttle;

pub use c2s::{Connection, Io, TlsUpgrade};
pub use config::XmppConfig;
pub use destination::{Bounce, Component, Destination, S2sRouter};
pub use router::{Delivery, Inbox, Router, SessionHandle};
pub use service::{XmppService, XmppStore};
