//! XEP-0199: XMPP Ping — the server answers pings addressed to it or to the sender's account.

use super::IqReply;
use crate::registry::{Dests, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use async_trait::async_trait;
use std::sync::Arc;

pub use cusax_xmpp_proto::ext::ping::NS;

/// The ping module.
#[derive(Debug)]
pub struct Ping;

impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, NS);
        // Any element and kind of the namespace gets its result, as before the registry.
        let dests = Dests::SERVER.or(Dests::OWN_ACCOUNT);
        r.iq(IqKind::BOTH, NS, None, dests, self);
    }
}

#[async_trait]
impl IqHandler for Ping {
    /// An empty result.
    async fn handle(&self, _req: &IqRequest<'_>) -> IqReply {
        IqReply::Result(None)
    }
}
