//! XEP-0092: Software Version of the server.

use super::IqReply;
use crate::registry::{Dests, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use async_trait::async_trait;
pub use cusax_xmpp_proto::ext::version::NS;
use cusax_xmpp_proto::ext::version::SoftwareVersion;
use std::sync::Arc;

/// The version module.
#[derive(Debug)]
pub struct Version;

impl Module for Version {
    fn name(&self) -> &'static str {
        "version"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, NS);
        r.iq(IqKind::BOTH, NS, None, Dests::SERVER, self);
    }
}

#[async_trait]
impl IqHandler for Version {
    /// The server's name and version (no operating system, to say less).
    async fn handle(&self, _req: &IqRequest<'_>) -> IqReply {
        let answer = SoftwareVersion {
            name: "cusaxd".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            os: None,
        };
        IqReply::Result(Some(answer.into()))
    }
}
