//! XEP-0049 (Private XML Storage) §2–§3: any XML a user's clients keep on the server, one
//! fragment per namespace, readable and writable by the account's own resources only.
//!
//! Also where users switch "on the phone" on (see `activity.rs`): storing the namespace
//! `urn:cusax:phone-activity:0` takes effect at once.

use super::{Destination, IqReply, Session};
use crate::registry::{Dests, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use crate::service::XmppService;
use async_trait::async_trait;
use cusax_xmpp_proto::ext::PayloadError;
use cusax_xmpp_proto::ext::private::PrivateQuery;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

pub use cusax_xmpp_proto::ext::private::NS;
#[cfg(test)]
use cusax_xmpp_proto::ext::private::reserved;
/// Largest fragment per namespace, in bytes of XML.
const MAX_FRAGMENT: usize = 64 * 1024;
/// Most namespaces per account.
const MAX_NAMESPACES: u32 = 64;

/// The private XML storage module.
#[derive(Debug)]
pub struct Private;

impl Module for Private {
    fn name(&self) -> &'static str {
        "private"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, NS);
        r.iq(IqKind::BOTH, NS, None, Dests::ANY, self);
    }
}

#[async_trait]
impl IqHandler for Private {
    /// Private storage get and set (own account only).
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        handle(req).await
    }
}

async fn handle(req: &IqRequest<'_>) -> IqReply {
    let (svc, session, iq, payload) = (req.svc, req.session, req.iq, req.payload);
    let query = PrivateQuery::try_from(payload);
    if query == Err(PayloadError::Unexpected) {
        return IqReply::Error(E::BadRequest);
    }
    if !matches!(req.dest, Destination::OwnAccount) {
        return IqReply::Error(E::Forbidden);
    }
    let Ok(query) = query else {
        return IqReply::Error(E::NotAcceptable); // empty, or a reserved namespace
    };
    if iq.attr("type") == Some("set") {
        return set(svc, session, &query.fragments).await;
    }
    let [asked] = query.fragments.as_slice() else {
        return IqReply::Error(E::BadRequest); // one namespace per get
    };
    get(svc, session, asked).await
}

async fn get(svc: &XmppService, session: &Session, asked: &Element) -> IqReply {
    let ns = asked.ns();
    let stored = match svc.store().private_xml(&session.account, &ns).await {
        Ok(s) => s,
        Err(_) => return IqReply::Error(E::InternalServerError),
    };
    let mut fragments = match stored {
        Some(fragment) => {
            match Element::from_str(&format!("<query xmlns='{NS}'>{fragment}</query>")) {
                Ok(q) => q.children().cloned().collect(),
                Err(_) => return IqReply::Error(E::InternalServerError),
            }
        }
        None => Vec::new(),
    };
    if fragments.is_empty() {
        fragments.push(Element::bare(asked.name(), ns.as_str())); // nothing stored: echo
    }
    IqReply::Result(Some(Element::from(&PrivateQuery { fragments })))
}

async fn set(svc: &XmppService, session: &Session, children: &[Element]) -> IqReply {
    let mut by_ns: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for c in children {
        let xml = by_ns.entry(c.ns()).or_default();
        if cusax_xmpp_proto::xml::write_element(c, "", xml).is_err() {
            return IqReply::Error(E::BadRequest);
        }
        if xml.len() > MAX_FRAGMENT {
            return IqReply::Error(E::NotAcceptable);
        }
    }
    let store = &svc.store();
    for (ns, xml) in &by_ns {
        let text = String::from_utf8_lossy(xml);
        match store
            .set_private_xml(&session.account, ns, &text, MAX_NAMESPACES)
            .await
        {
            Ok(true) => {}
            Ok(false) => return IqReply::Error(E::ResourceConstraint),
            Err(_) => return IqReply::Error(E::InternalServerError),
        }
    }
    if by_ns.contains_key(super::activity::NS_OPT_IN) {
        super::activity::refresh(svc, &session.account).await;
    }
    IqReply::Result(None)
}

#[cfg(test)]
mod tests {
    use super::reserved;

    #[test]
    fn protocol_namespaces_are_reserved() {
        for ns in [
            "jabber:iq:roster",
            "http://jabber.org/protocol/disco#info",
            "vcard-temp",
            "",
        ] {
            assert!(reserved(ns), "{ns}");
        }
        for ns in [
            "urn:cusax:phone-activity:0",
            "storage:bookmarks",
            "exodus:prefs",
        ] {
            assert!(!reserved(ns), "{ns}");
        }
    }
}
