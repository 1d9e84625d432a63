//! XEP-0030: Service Discovery for the server and for local accounts. The features and
//! identities are what the modules registered ([`Registry::feature`]).

use super::{Destination, IqReply};
use crate::registry::{Dests, Identity, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use async_trait::async_trait;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::sync::Arc;

/// disco#info.
pub const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
/// disco#items.
pub const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// The disco module.
#[derive(Debug)]
pub struct Disco;

impl Module for Disco {
    fn name(&self) -> &'static str {
        "disco"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.identity(
            Scope::Server,
            Identity {
                category: "server",
                kind: "im",
                name: Some("cusaxd"),
            },
        );
        r.identity(
            Scope::Account,
            Identity {
                category: "account",
                kind: "registered",
                name: None,
            },
        );
        r.feature(Scope::Server, NS_INFO);
        r.feature(Scope::Server, NS_ITEMS);
        r.feature(Scope::Account, NS_INFO);
        for ns in [NS_INFO, NS_ITEMS] {
            r.iq(IqKind::BOTH, ns, None, Dests::ANY, self.clone());
        }
    }
}

fn identity(i: &Identity) -> Element {
    let mut el = Element::bare("identity", NS_INFO);
    crate::stanza::set_attr(&mut el, "category", i.category);
    crate::stanza::set_attr(&mut el, "type", i.kind);
    if let Some(n) = i.name {
        crate::stanza::set_attr(&mut el, "name", n);
    }
    el
}

fn feature(var: &str) -> Element {
    let mut f = Element::bare("feature", NS_INFO);
    crate::stanza::set_attr(&mut f, "var", var);
    f
}

#[async_trait]
impl IqHandler for Disco {
    /// Answers disco#info and disco#items (no nodes; no items yet).
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        let (svc, payload) = (req.svc, req.payload);
        if payload.attr("node").is_some() {
            return IqReply::Error(E::ItemNotFound);
        }
        let scope = match req.dest {
            Destination::Server(_) => Scope::Server,
            Destination::OwnAccount => Scope::Account,
            Destination::LocalBare(id) if svc.account_exists(id).await => Scope::Account,
            _ => return IqReply::Error(E::ServiceUnavailable),
        };
        let ns = payload.ns();
        let mut q = Element::bare("query", ns.as_str());
        if ns == NS_INFO {
            let registry = &svc.inner.registry;
            for i in registry.identities(scope) {
                q.append_child(identity(i));
            }
            for f in registry.features(scope) {
                q.append_child(feature(f));
            }
        }
        IqReply::Result(Some(q))
    }
}
