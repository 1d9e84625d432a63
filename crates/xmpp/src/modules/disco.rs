//! XEP-0030: Service Discovery for the server and for local accounts. The features and
//! identities are what the modules registered ([`Registry::feature`]).

use super::{Destination, IqReply};
use crate::registry::{Dests, Identity, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use async_trait::async_trait;
use cusax_xmpp_proto::ext::disco::{self, DiscoInfo, DiscoItems, DiscoQuery};
pub use cusax_xmpp_proto::ext::disco::{NS_INFO, NS_ITEMS};
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use std::sync::Arc;

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

fn identity(i: &Identity) -> disco::Identity {
    disco::Identity {
        category: i.category.to_owned(),
        kind: i.kind.to_owned(),
        name: i.name.map(str::to_owned),
    }
}

#[async_trait]
impl IqHandler for Disco {
    /// Answers disco#info and disco#items (no nodes; no items yet).
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        let svc = req.svc;
        let Ok(query) = DiscoQuery::try_from(req.payload) else {
            return IqReply::Error(E::BadRequest); // registered for both namespaces only
        };
        if query.node.is_some() {
            return IqReply::Error(E::ItemNotFound);
        }
        let scope = match req.dest {
            Destination::Server(_) => Scope::Server,
            Destination::OwnAccount => Scope::Account,
            Destination::LocalBare(id) if svc.account_exists(id).await => Scope::Account,
            _ => return IqReply::Error(E::ServiceUnavailable),
        };
        if !query.info {
            return IqReply::Result(Some(DiscoItems::default().into()));
        }
        let registry = &svc.registry();
        let info = DiscoInfo {
            node: None,
            identities: registry.identities(scope).map(identity).collect(),
            features: registry.features(scope).map(str::to_owned).collect(),
        };
        IqReply::Result(Some(info.into()))
    }
}
