//! RFC 6120 §3 and XEP-0368: XMPP client-to-server listeners feeding `cusax-xmpp`.

use crate::server::{Services, StartError};
use std::net::SocketAddr;
use tokio::task::JoinSet;

/// Binds the c2s listener and spawns its accept loop; returns the bound address.
pub(crate) async fn start(
    _services: &Services,
    _tasks: &mut JoinSet<()>,
) -> Result<Option<SocketAddr>, StartError> {
    Ok(None)
}
