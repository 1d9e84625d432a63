//! RFC 7081 §2 (client bootstrap): the HTTPS services of `cusaxd`.
//!
//! Today: the provisioning endpoint that turns one service login into a full SIP + XMPP
//! account setup. The router is transport-agnostic; `cusax-server` serves it over TLS.

pub mod admin;
mod limiter;
pub mod provisioning;

pub use admin::{AdminState, BindingInfo, LiveState, MetricsRender, SessionInfo};
pub use limiter::FailureLimiter;
pub use provisioning::{ProvisioningState, ServiceInfo, SipEndpoint, XmppEndpoint};

use axum::Router;
use std::net::SocketAddr;

/// The peer address of an HTTP connection, inserted by the server into each request.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// All HTTP routes of `cusaxd`.
pub fn router(provisioning: ProvisioningState, admin: AdminState) -> Router {
    Router::new()
        .merge(provisioning::routes(provisioning))
        .merge(admin::routes(admin))
}
