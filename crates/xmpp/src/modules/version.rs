//! XEP-0092: Software Version of the server.

use super::IqReply;
use crate::registry::{Dests, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use crate::stanza::text_el;
use async_trait::async_trait;
use minidom::Element;
use std::sync::Arc;

/// The software version namespace.
pub const NS: &str = "jabber:iq:version";

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
        let mut q = Element::bare("query", NS);
        q.append_child(text_el("name", NS, "cusaxd"));
        q.append_child(text_el("version", NS, env!("CARGO_PKG_VERSION")));
        IqReply::Result(Some(q))
    }
}
