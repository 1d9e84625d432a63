//! XEP-0030: Service Discovery for the server and for local accounts.

use super::{IqReply, Target};
use crate::service::XmppService;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;

/// disco#info.
pub const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
/// disco#items.
pub const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// Features the server itself implements.
const SERVER_FEATURES: &[&str] = &[
    NS_INFO,
    NS_ITEMS,
    super::roster::NS,
    "urn:xmpp:features:rosterver",
    super::vcard::NS,
    super::ping::NS,
    super::version::NS,
    super::blocking::NS,
    super::register::NS,
    super::private::NS,
    "msgoffline",
    "urn:xmpp:delay",
];

fn identity(category: &str, kind: &str, name: Option<&str>) -> Element {
    let mut i = Element::bare("identity", NS_INFO);
    crate::stanza::set_attr(&mut i, "category", category);
    crate::stanza::set_attr(&mut i, "type", kind);
    if let Some(n) = name {
        crate::stanza::set_attr(&mut i, "name", n);
    }
    i
}

fn feature(var: &str) -> Element {
    let mut f = Element::bare("feature", NS_INFO);
    crate::stanza::set_attr(&mut f, "var", var);
    f
}

/// Answers disco#info and disco#items (no nodes; no items yet).
pub async fn handle(svc: &XmppService, payload: &Element, target: &Target) -> IqReply {
    if payload.attr("node").is_some() {
        return IqReply::Error(E::ItemNotFound);
    }
    let account = match target {
        Target::Server => false,
        Target::OwnAccount => true,
        Target::LocalBare(id) if svc.account_exists(id).await => true,
        _ => return IqReply::Error(E::ServiceUnavailable),
    };
    let ns = payload.ns();
    let mut q = Element::bare("query", ns.as_str());
    if ns == NS_INFO {
        if account {
            q.append_child(identity("account", "registered", None));
            // XEP-0163 §6.1: every account is a PEP service.
            q.append_child(identity("pubsub", "pep", None));
            q.append_child(feature(NS_INFO));
            for f in super::pep::ACCOUNT_FEATURES {
                q.append_child(feature(f));
            }
        } else {
            q.append_child(identity("server", "im", Some("cusaxd")));
            for f in SERVER_FEATURES {
                q.append_child(feature(f));
            }
        }
    }
    IqReply::Result(Some(q))
}
