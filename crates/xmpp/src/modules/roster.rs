//! RFC 6121 §2: roster get, set, remove, pushes and versioning (§2.6).

use super::{IqReply, Session};
use crate::registry::{Dests, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use crate::service::XmppService;
use crate::stanza::{set_attr, stanza, text_el};
use async_trait::async_trait;
use cusax_account::AccountId;
use cusax_store::RosterItem;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::sync::Arc;

/// The roster namespace.
pub const NS: &str = "jabber:iq:roster";
/// Longest roster item name or group name accepted, in bytes.
const MAX_NAME: usize = 1024;
/// Most groups per item.
const MAX_GROUPS: usize = 64;

/// The roster module.
#[derive(Debug)]
pub struct Roster;

impl Module for Roster {
    fn name(&self) -> &'static str {
        "roster"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, NS);
        r.feature(Scope::Server, "urn:xmpp:features:rosterver");
        r.iq(IqKind::BOTH, NS, None, Dests::OWN_ACCOUNT, self);
    }
}

#[async_trait]
impl IqHandler for Roster {
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        handle(req.svc, req.session, req.iq, req.payload).await
    }
}

/// The `<item/>` a client sees (the pending-in flag stays on the server).
pub fn item_element(item: &RosterItem) -> Element {
    let mut el = Element::bare("item", NS);
    set_attr(&mut el, "jid", item.jid.clone());
    if let Some(n) = &item.name {
        set_attr(&mut el, "name", n.clone());
    }
    set_attr(&mut el, "subscription", item.subscription.as_str());
    if item.ask {
        set_attr(&mut el, "ask", "subscribe");
    }
    for g in &item.groups {
        el.append_child(text_el("group", NS, g));
    }
    el
}

/// §2.1.6: sends a roster push for one item (or its removal) to every session of `owner`.
pub fn push(svc: &XmppService, owner: &AccountId, item: Element, ver: u64) {
    let bare = owner.to_string();
    for s in svc.router().sessions(&bare) {
        let to = format!("{bare}/{}", s.resource);
        let id = format!("push{ver}");
        let mut iq = stanza("iq", &[("type", "set"), ("id", &id), ("to", &to)]);
        let mut q = Element::bare("query", NS);
        set_attr(&mut q, "ver", ver.to_string());
        q.append_child(item.clone());
        iq.append_child(q);
        s.send(iq);
    }
}

/// Stores an item and pushes it; store errors are logged (the caller cannot do better).
pub async fn save(svc: &XmppService, owner: &AccountId, item: &RosterItem) {
    match svc.store().put_roster_item(owner, item).await {
        Ok(ver) => push(svc, owner, item_element(item), ver),
        Err(e) => tracing::warn!(error = %e, %owner, "storing a roster item failed"),
    }
}

/// Handles a roster get or set from the account itself.
pub async fn handle(svc: &XmppService, session: &Session, iq: &Element, q: &Element) -> IqReply {
    if iq.attr("type") == Some("get") {
        return get(svc, session, q).await;
    }
    let items: Vec<&Element> = q.children().filter(|c| c.is("item", NS)).collect();
    let [item] = items.as_slice() else {
        return IqReply::Error(E::BadRequest);
    };
    let Some(jid) = item.attr("jid").and_then(|j| jid::BareJid::new(j).ok()) else {
        return IqReply::Error(E::BadRequest);
    };
    let contact = jid.to_string();
    if item.attr("subscription") == Some("remove") {
        return remove(svc, session, &contact).await;
    }
    let name = item
        .attr("name")
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let mut groups: Vec<String> = item
        .children()
        .filter(|c| c.is("group", NS))
        .map(Element::text)
        .collect();
    if groups.iter().any(|g| g.is_empty() || g.len() > MAX_NAME)
        || groups.len() > MAX_GROUPS
        || name.as_ref().is_some_and(|n| n.len() > MAX_NAME)
    {
        return IqReply::Error(E::NotAcceptable);
    }
    groups.sort();
    groups.dedup();
    let existing = match svc.store().roster_item(&session.account, &contact).await {
        Ok(e) => e,
        Err(_) => return IqReply::Error(E::InternalServerError),
    };
    let updated = RosterItem {
        jid: contact,
        name,
        groups,
        ..existing.unwrap_or_default()
    };
    save(svc, &session.account, &updated).await;
    IqReply::Result(None)
}

async fn get(svc: &XmppService, session: &Session, q: &Element) -> IqReply {
    let Ok((ver, items)) = svc.store().roster(&session.account).await else {
        return IqReply::Error(E::InternalServerError);
    };
    if q.attr("ver") == Some(ver.to_string().as_str()) {
        return IqReply::Result(None); // §2.6.3: up to date, pushes follow
    }
    let mut out = Element::bare("query", NS);
    set_attr(&mut out, "ver", ver.to_string());
    for i in items.iter().filter(|i| !super::presence::is_hidden(i)) {
        out.append_child(item_element(i));
    }
    IqReply::Result(Some(out))
}

/// §2.5: removing an item also cancels both subscription directions.
async fn remove(svc: &XmppService, session: &Session, contact: &str) -> IqReply {
    let Ok(Some(item)) = svc.store().roster_item(&session.account, contact).await else {
        return IqReply::Error(E::ItemNotFound);
    };
    if item.subscription.has_to() || item.ask {
        super::presence::subscription_from_user(svc, session, contact, "unsubscribe").await;
    }
    if item.subscription.has_from() || item.pending_in {
        super::presence::subscription_from_user(svc, session, contact, "unsubscribed").await;
    }
    match svc
        .store()
        .remove_roster_item(&session.account, contact)
        .await
    {
        Ok(Some(ver)) => {
            let mut el = Element::bare("item", NS);
            set_attr(&mut el, "jid", contact);
            set_attr(&mut el, "subscription", "remove");
            push(svc, &session.account, el, ver);
            IqReply::Result(None)
        }
        Ok(None) => IqReply::Result(None),
        Err(_) => IqReply::Error(E::InternalServerError),
    }
}
