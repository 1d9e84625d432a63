//! RFC 6121 §2: roster get, set, remove, pushes and versioning (§2.6).

use super::{IqReply, Session};
use crate::registry::{Dests, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use crate::service::XmppService;
use crate::stanza::stanza;
use async_trait::async_trait;
use cusax_account::AccountId;
use cusax_store::{RosterItem, Subscription};
use cusax_xmpp_proto::ext::roster::{self as proto, Item, RosterQuery};
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use jid::BareJid;
use minidom::Element;
use std::sync::Arc;

pub use cusax_xmpp_proto::ext::roster::NS;
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

/// The item a client sees (the pending-in flag stays on the server); `None` for a stored JID
/// that is not a bare JID (stored ones were parsed as bare JIDs before).
pub fn client_item(item: &RosterItem) -> Option<Item> {
    let Ok(jid) = BareJid::new(&item.jid) else {
        tracing::warn!(jid = %item.jid, "stored roster item with an unparsable JID skipped");
        return None;
    };
    let subscription = match item.subscription {
        Subscription::None => proto::Subscription::None,
        Subscription::To => proto::Subscription::To,
        Subscription::From => proto::Subscription::From,
        Subscription::Both => proto::Subscription::Both,
    };
    Some(Item {
        jid,
        name: item.name.clone(),
        subscription: Some(subscription),
        ask: item.ask,
        groups: item.groups.clone(),
    })
}

/// §2.1.6: sends a roster push for one item (or its removal) to every session of `owner`.
pub fn push(svc: &XmppService, owner: &AccountId, item: Item, ver: u64) {
    let bare = owner.to_string();
    let q = Element::from(&RosterQuery {
        ver: Some(ver.to_string()),
        items: vec![item],
    });
    for s in svc.router().sessions(&bare) {
        let to = format!("{bare}/{}", s.resource);
        let id = format!("push{ver}");
        let mut iq = stanza("iq", &[("type", "set"), ("id", &id), ("to", &to)]);
        iq.append_child(q.clone());
        s.send(iq);
    }
}

/// Stores an item and pushes it; store errors are logged (the caller cannot do better).
pub async fn save(svc: &XmppService, owner: &AccountId, item: &RosterItem) {
    match svc.store().put_roster_item(owner, item).await {
        Ok(ver) => {
            if let Some(i) = client_item(item) {
                push(svc, owner, i, ver);
            }
        }
        Err(e) => tracing::warn!(error = %e, %owner, "storing a roster item failed"),
    }
}

/// Handles a roster get or set from the account itself.
pub async fn handle(svc: &XmppService, session: &Session, iq: &Element, q: &Element) -> IqReply {
    // §2.3.3: a malformed or missing JID, or another payload, is `bad-request`.
    let Ok(query) = RosterQuery::try_from(q) else {
        return IqReply::Error(E::BadRequest);
    };
    if iq.attr("type") == Some("get") {
        return get(svc, session, &query).await;
    }
    let [item] = query.items.as_slice() else {
        return IqReply::Error(E::BadRequest);
    };
    let contact = item.jid.to_string();
    if item.subscription == Some(proto::Subscription::Remove) {
        return remove(svc, session, &item.jid).await;
    }
    let name = item.name.clone().filter(|n| !n.is_empty());
    let mut groups = item.groups.clone();
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

async fn get(svc: &XmppService, session: &Session, q: &RosterQuery) -> IqReply {
    let Ok((ver, items)) = svc.store().roster(&session.account).await else {
        return IqReply::Error(E::InternalServerError);
    };
    let ver = ver.to_string();
    if q.ver.as_deref() == Some(ver.as_str()) {
        return IqReply::Result(None); // §2.6.3: up to date, pushes follow
    }
    let out = RosterQuery {
        ver: Some(ver),
        items: items
            .iter()
            .filter(|i| !super::presence::is_hidden(i))
            .filter_map(client_item)
            .collect(),
    };
    IqReply::Result(Some(Element::from(&out)))
}

/// §2.5: removing an item also cancels both subscription directions.
async fn remove(svc: &XmppService, session: &Session, jid: &BareJid) -> IqReply {
    let contact = jid.as_str();
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
            let mut el = Item::new(jid.clone());
            el.subscription = Some(proto::Subscription::Remove);
            push(svc, &session.account, el, ver);
            IqReply::Result(None)
        }
        Ok(None) => IqReply::Result(None),
        Err(_) => IqReply::Error(E::InternalServerError),
    }
}
