//! XEP-0163 (Personal Eventing Protocol) §4 and §6: a minimal PEP service on every account.
//!
//! Every account is a virtual pubsub service at its bare JID with singleton nodes:
//!
//! * `urn:xmpp:reach:0` (XEP-0152) is the server's: it always holds the account's SIP
//!   addresses (see `reach.rs`); clients cannot publish to it (`forbidden`).
//! * `http://jabber.org/protocol/activity` (XEP-0108) is the user's, except while the server
//!   shows "on the phone" for a user who opted in (see `activity.rs`); the user's own item
//!   comes back when the call ends.
//! * the user may also publish mood (XEP-0107) and tune (XEP-0118); other nodes are refused
//!   with `feature-not-implemented` (no auto-create for them), so private data such as
//!   bookmarks is never broadcast by mistake.
//!
//! Client items live in memory only (lost on restart) and have the `presence` access model:
//! the owner and contacts with a presence subscription to the owner (`from`/`both`) may
//! retrieve them (`<items node=…/>`), and get notifications (§4.3): every available resource
//! of the owner and of such contacts that wants the node (XEP-0115 `NODE+notify`, see
//! `caps.rs` for the rule without caps), except where either side blocks the other
//! (XEP-0191). A newly available resource gets the current items of its own account and of
//! the accounts it is subscribed to (§4.3.4), and so does a new subscriber.
//!
//! Not offered: explicit subscriptions, node creation, configuration, retraction and
//! deletion (`feature-not-implemented`), access models other than `presence`
//! (`precondition-not-met` in publish-options), persistent items, XEP-0033 replyto.

use super::{Destination, IqReply, Session, activity, caps, reach};
use crate::registry::{
    Dests, Event, Hook, HookPoint, Identity, IqHandler, IqKind, IqRequest, Module, Registry, Scope,
};
use crate::service::XmppService;
use crate::stanza::{self, set_attr};
use async_trait::async_trait;
use cusax_account::AccountId;
use cusax_store::RosterItem;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The pubsub namespace.
pub const NS: &str = "http://jabber.org/protocol/pubsub";
/// Event notifications.
pub const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// Application-specific error conditions.
pub const NS_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
/// XEP-0107 User Mood.
pub const NS_MOOD: &str = "http://jabber.org/protocol/mood";
/// XEP-0118 User Tune.
pub const NS_TUNE: &str = "http://jabber.org/protocol/tune";
/// Nodes (each named after its payload namespace) that clients may publish to.
const CLIENT_NODES: &[&str] = &[activity::NS, NS_MOOD, NS_TUNE];
/// Largest client payload, in bytes of XML.
const MAX_PAYLOAD: usize = 8 * 1024;

/// The pubsub features of the PEP service, listed in the account's disco#info (§6.1).
pub const ACCOUNT_FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#auto-subscribe",
    "http://jabber.org/protocol/pubsub#filtered-notifications",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#presence-notifications",
];

/// One item of a singleton node: its id and payload.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) payload: Element,
}

/// What the service keeps for one account with something published or in a call.
#[derive(Debug, Default)]
pub(crate) struct Owner {
    /// The items the user's clients published, by node.
    pub(crate) published: HashMap<String, Item>,
    /// The account is in at least one SIP call.
    pub(crate) in_call: bool,
    /// Contacts currently see "on the phone" instead of the user's own activity.
    pub(crate) phone_shown: bool,
}

impl Owner {
    fn is_empty(&self) -> bool {
        self.published.is_empty() && !self.in_call && !self.phone_shown
    }
}

/// The PEP module, which owns the PEP state of the whole service (reached by other modules
/// through [`state`]).
#[derive(Debug, Default)]
pub(crate) struct Pep {
    owners: Mutex<HashMap<String, Owner>>,
    pub(crate) caps: caps::Caps,
    next_id: AtomicU64,
}

impl Pep {
    /// Runs `f` on an account's state (created on demand, dropped again when empty).
    pub(crate) fn with_owner<T>(&self, bare: &str, f: impl FnOnce(&mut Owner) -> T) -> T {
        let mut map = self
            .owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let owner = map.entry(bare.to_owned()).or_default();
        let out = f(owner);
        if owner.is_empty() {
            map.remove(bare);
        }
        out
    }

    /// Drops a deleted account's items.
    pub(crate) fn forget(&self, bare: &str) {
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(bare);
    }

    fn next(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// The PEP state of the service.
pub(crate) fn state(svc: &XmppService) -> &Pep {
    // `XmppService::new` registers every default module, this one included.
    svc.module::<Pep>()
        .expect("the PEP module is one of the default modules")
}

impl Module for Pep {
    fn name(&self) -> &'static str {
        "pep"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        // XEP-0163 §6.1: every account is a PEP service.
        r.identity(
            Scope::Account,
            Identity {
                category: "pubsub",
                kind: "pep",
                name: None,
            },
        );
        for f in ACCOUNT_FEATURES {
            r.feature(Scope::Account, f);
        }
        r.iq(IqKind::BOTH, NS, None, Dests::ACCOUNTS, self.clone());
        r.hook(
            &[HookPoint::PresenceChanged, HookPoint::IqAnswer],
            0,
            self.clone(),
        );
        // Before the presence module's `unavailable` (the caps are the session's own).
        r.hook(&[HookPoint::SessionEnded], 10, self.clone());
        r.provide(self);
    }
}

#[async_trait]
impl IqHandler for Pep {
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        handle(req.svc, req.session, req.iq, req.payload, req.dest).await
    }
}

#[async_trait]
impl Hook for Pep {
    async fn on(&self, svc: &XmppService, event: &Event<'_>) {
        match event {
            Event::PresenceChanged {
                session,
                presence,
                initial,
                roster,
            } => on_available(svc, session, presence, *initial, roster).await,
            Event::IqAnswer { session, iq } => on_server_answer(svc, session, iq).await,
            Event::SessionEnded { session, .. } => self.caps.forget(session.id),
            _ => {}
        }
    }
}

/// The nodes of an account that hold an item now.
fn nodes(svc: &XmppService, bare: &str) -> Vec<String> {
    let mut v = vec![reach::NS.to_owned()];
    state(svc).with_owner(bare, |o| {
        v.extend(o.published.keys().cloned());
        if o.phone_shown && !o.published.contains_key(activity::NS) {
            v.push(activity::NS.to_owned());
        }
    });
    v
}

/// The item a node of `owner` shows now.
pub(crate) async fn current(svc: &XmppService, owner: &AccountId, node: &str) -> Option<Item> {
    if node == reach::NS {
        return reach::item(svc, owner).await;
    }
    state(svc).with_owner(&owner.to_string(), |o| {
        if node == activity::NS && o.phone_shown {
            return Some(activity::on_the_phone());
        }
        o.published.get(node).cloned()
    })
}

fn item_el(ns: &str, item: &Item) -> Element {
    let mut el = Element::bare("item", ns);
    set_attr(&mut el, "id", item.id.clone());
    el.append_child(item.payload.clone());
    el
}

/// §4.3.1: the notification of `item` from `owner` (bare JID) to one resource.
fn event(svc: &XmppService, owner: &str, to: &str, node: &str, item: &Item) -> Element {
    let id = format!("pep-{}", state(svc).next());
    let mut msg = stanza::stanza(
        "message",
        &[
            ("type", "headline"),
            ("from", owner),
            ("to", to),
            ("id", &id),
        ],
    );
    let mut items = Element::bare("items", NS_EVENT);
    set_attr(&mut items, "node", node);
    items.append_child(item_el(NS_EVENT, item));
    let mut ev = Element::bare("event", NS_EVENT);
    ev.append_child(items);
    msg.append_child(ev);
    msg
}

/// Whether a block list names `jid` (full, bare or its domain), as XEP-0191 §3.3 matches.
pub fn list_blocks(list: &HashSet<String>, jid: &str) -> bool {
    let bare = jid.split('/').next().unwrap_or(jid);
    let domain = bare.rsplit('@').next().unwrap_or(bare);
    list.contains(jid) || list.contains(bare) || list.contains(domain)
}

/// An account's block list: the router's cache while it has sessions, else the store's.
async fn block_list(svc: &XmppService, account: &AccountId) -> HashSet<String> {
    let bare = account.to_string();
    if let Some(l) = svc.router().blocklist(&bare) {
        return HashSet::clone(&l);
    }
    svc.store()
        .blocklist(account)
        .await
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// §4.1–§4.2: who gets `owner`'s notifications — the owner, then every contact with a
/// presence subscription to the owner (`from`/`both`) that is `local` and that the owner
/// does not block.
pub fn subscribers(
    owner: &str,
    roster: &[RosterItem],
    blocked: &HashSet<String>,
    local: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = vec![owner.to_owned()];
    out.extend(
        roster
            .iter()
            .filter(|i| i.subscription.has_from() && i.jid != owner)
            .filter(|i| !list_blocks(blocked, &i.jid) && local(&i.jid))
            .map(|i| i.jid.clone()),
    );
    out
}

fn local_account(svc: &XmppService, jid: &str) -> Option<AccountId> {
    let id = AccountId::parse(jid).ok()?;
    svc.serves(id.domain().as_str()).then_some(id)
}

/// Sends `item` to every available resource of `to` (a bare JID) that wants `node`, unless
/// `to` blocks the owner.
fn to_resources(svc: &XmppService, owner: &str, to: &str, node: &str, item: &Item) {
    if to != owner && svc.router().is_blocked(to, owner) {
        return;
    }
    for s in svc.router().sessions(to) {
        if s.presence.is_some() && state(svc).caps.wants(s.id, node) {
            s.send(event(
                svc,
                owner,
                &format!("{to}/{}", s.resource),
                node,
                item,
            ));
        }
    }
}

/// §4.3.3: notifies the owner's resources and subscribed contacts of a new item.
pub(crate) async fn broadcast(svc: &XmppService, owner: &AccountId, node: &str, item: &Item) {
    let bare = owner.to_string();
    let roster = svc
        .store()
        .roster(owner)
        .await
        .map(|r| r.1)
        .unwrap_or_default();
    let blocked = block_list(svc, owner).await;
    for to in subscribers(&bare, &roster, &blocked, |j| {
        local_account(svc, j).is_some()
    }) {
        to_resources(svc, &bare, &to, node, item);
    }
}

/// §4.3.4: the current items of the session's own account and of every local account it
/// has a presence subscription to (`to`/`both`), for a newly available resource.
async fn send_last_items(svc: &XmppService, session: &Session, roster: &[RosterItem]) {
    let mut owners = vec![session.account.clone()];
    owners.extend(
        roster
            .iter()
            .filter(|i| i.subscription.has_to())
            .filter(|i| !svc.router().is_blocked(session.bare.as_str(), &i.jid))
            .filter_map(|i| local_account(svc, &i.jid)),
    );
    for owner in owners {
        let bare = owner.to_string();
        if owner != session.account
            && list_blocks(&block_list(svc, &owner).await, session.bare.as_str())
        {
            continue;
        }
        for node in nodes(svc, &bare) {
            if !state(svc).caps.wants(session.id, &node) {
                continue;
            }
            if let Some(item) = current(svc, &owner, &node).await {
                svc.reply(
                    session,
                    event(svc, &bare, session.full.as_str(), &node, &item),
                );
            }
        }
    }
}

/// Presence hook: an available presence from `session` (`initial`: its first one). Learns
/// the resource's interests and sends it the last items (§4.3.4).
pub(crate) async fn on_available(
    svc: &XmppService,
    session: &Session,
    presence: &Element,
    initial: bool,
    roster: &[RosterItem],
) {
    let ready = matches!(
        caps::on_presence(svc, session, presence, initial),
        caps::Announce::Ready
    );
    if ready && initial {
        send_last_items(svc, session, roster).await;
    }
}

/// IQ hook: a result or error addressed to the server (maybe the answer to a caps question,
/// after which deferred last items go out).
pub(crate) async fn on_server_answer(svc: &XmppService, session: &Session, iq: &Element) {
    if !caps::on_answer(svc, session, iq) {
        return;
    }
    let available = svc
        .router()
        .update(session.bare.as_str(), session.id, |s| s.presence.is_some())
        .unwrap_or(false);
    if available {
        let roster = super::roster_items(svc, &session.account).await;
        send_last_items(svc, session, &roster).await;
    }
}

/// Subscription hook: `owner` approved `subscriber`'s presence subscription, so the
/// subscriber's available resources get the owner's current items (§4.3.4, "new subscribers").
pub(crate) async fn on_subscribed(svc: &XmppService, owner: &AccountId, subscriber: &str) {
    let Some(sub) = local_account(svc, subscriber) else {
        return;
    };
    let (bare, sub_bare) = (owner.to_string(), sub.to_string());
    if list_blocks(&block_list(svc, owner).await, &sub_bare) {
        return;
    }
    for node in nodes(svc, &bare) {
        if let Some(item) = current(svc, owner, &node).await {
            to_resources(svc, &bare, &sub_bare, &node, &item);
        }
    }
}

fn app_error(condition: E, name: &str, feature: Option<&str>) -> IqReply {
    let mut el = Element::bare(name, NS_ERRORS);
    if let Some(f) = feature {
        set_attr(&mut el, "feature", f);
    }
    IqReply::ErrorWith(condition, el)
}

/// Handles `<pubsub/>` IQs addressed to an account: publish (own account) and items.
async fn handle(
    svc: &XmppService,
    session: &Session,
    iq: &Element,
    payload: &Element,
    target: &Destination,
) -> IqReply {
    if payload.name() != "pubsub" {
        return IqReply::Error(E::BadRequest);
    }
    let owner = match target {
        Destination::OwnAccount => session.account.clone(),
        Destination::LocalBare(id) => id.clone(),
        _ => return IqReply::Error(E::ServiceUnavailable),
    };
    let Some(verb) = payload
        .children()
        .find(|c| c.ns() == NS && c.name() != "publish-options")
    else {
        return IqReply::Error(E::BadRequest);
    };
    match (iq.attr("type"), verb.name()) {
        (Some("set"), "publish") if owner == session.account => {
            publish(svc, session, verb, payload.get_child("publish-options", NS)).await
        }
        (Some("set"), "publish") => IqReply::Error(E::Forbidden),
        (Some("get"), "items") => items(svc, session, &owner, verb).await,
        (_, other) => {
            let feature = match other {
                "create" => "create-nodes",
                "retract" => "retract-items",
                "subscribe" | "unsubscribe" => "subscribe",
                "configure" => "config-node",
                "options" => "subscription-options",
                "subscriptions" => "retrieve-subscriptions",
                "affiliations" => "retrieve-affiliations",
                "default" => "retrieve-default",
                _ => return IqReply::Error(E::FeatureNotImplemented),
            };
            app_error(E::FeatureNotImplemented, "unsupported", Some(feature))
        }
    }
}

/// XEP-0060 §7.1.5: publish-options we can honour (only the `presence` access model).
fn options_acceptable(options: &Element) -> bool {
    let Some(form) = options.get_child("x", "jabber:x:data") else {
        return true;
    };
    form.children()
        .filter(|f| f.attr("var") == Some("pubsub#access_model"))
        .flat_map(|f| f.children().filter(|v| v.name() == "value"))
        .all(|v| v.text().trim() == "presence")
}

/// A payload without children or text ("stop publishing", e.g. XEP-0108 §2.2 `<activity/>`).
fn is_empty_payload(p: &Element) -> bool {
    p.children().next().is_none() && p.text().trim().is_empty()
}

/// XEP-0060 §7.1: a client publishes one item to one of [`CLIENT_NODES`].
async fn publish(
    svc: &XmppService,
    session: &Session,
    publish: &Element,
    options: Option<&Element>,
) -> IqReply {
    let Some(node) = publish.attr("node") else {
        return app_error(E::BadRequest, "nodeid-required", None);
    };
    if node == reach::NS {
        return IqReply::Error(E::Forbidden); // the server's own node
    }
    if !CLIENT_NODES.contains(&node) {
        return app_error(E::FeatureNotImplemented, "unsupported", Some("auto-create"));
    }
    if options.is_some_and(|o| !options_acceptable(o)) {
        return app_error(E::Conflict, "precondition-not-met", None);
    }
    let items: Vec<&Element> = publish.children().filter(|c| c.is("item", NS)).collect();
    let [item] = items.as_slice() else {
        return app_error(E::BadRequest, "item-required", None);
    };
    let payloads: Vec<&Element> = item.children().collect();
    let payload = match payloads.as_slice() {
        [p] if p.ns() == node => *p,
        [] => return app_error(E::BadRequest, "payload-required", None),
        _ => return app_error(E::BadRequest, "invalid-payload", None),
    };
    let mut xml = Vec::new();
    if cusax_xmpp_proto::xml::write_element(payload, "", &mut xml).is_err() {
        return app_error(E::BadRequest, "invalid-payload", None);
    }
    if xml.len() > MAX_PAYLOAD {
        return app_error(E::NotAcceptable, "payload-too-big", None);
    }
    let id = match item.attr("id") {
        Some(i) => i.to_owned(),
        None => format!("{:x}", state(svc).next()),
    };
    let new = Item {
        id: id.clone(),
        payload: payload.clone(),
    };
    let empty = is_empty_payload(payload);
    let visible = state(svc).with_owner(session.bare.as_str(), |o| {
        if empty {
            o.published.remove(node);
        } else {
            o.published.insert(node.to_owned(), new.clone());
        }
        !(node == activity::NS && o.phone_shown)
    });
    if visible {
        broadcast(svc, &session.account, node, &new).await;
    }
    let mut done = Element::bare("item", NS);
    set_attr(&mut done, "id", id);
    let mut p = Element::bare("publish", NS);
    set_attr(&mut p, "node", node);
    p.append_child(done);
    let mut out = Element::bare("pubsub", NS);
    out.append_child(p);
    IqReply::Result(Some(out))
}

/// The `presence` access model: the owner's roster grants `requester` a subscription and
/// the owner does not block them.
async fn may_retrieve(svc: &XmppService, owner: &AccountId, requester: &str) -> bool {
    let item = svc
        .store()
        .roster_item(owner, requester)
        .await
        .ok()
        .flatten();
    item.is_some_and(|i| i.subscription.has_from())
        && !list_blocks(&block_list(svc, owner).await, requester)
}

/// XEP-0060 §6.5: the current item of a node (optionally only if it has a requested id).
async fn items(svc: &XmppService, session: &Session, owner: &AccountId, req: &Element) -> IqReply {
    let Some(node) = req.attr("node") else {
        return app_error(E::BadRequest, "nodeid-required", None);
    };
    if *owner != session.account {
        if !svc.account_exists(owner).await {
            return IqReply::Error(E::ServiceUnavailable);
        }
        if !may_retrieve(svc, owner, session.bare.as_str()).await {
            return app_error(E::NotAuthorized, "presence-subscription-required", None);
        }
    }
    let Some(item) = current(svc, owner, node).await else {
        return IqReply::Error(E::ItemNotFound);
    };
    let wanted: Vec<&str> = req
        .children()
        .filter(|c| c.is("item", NS))
        .filter_map(|c| c.attr("id"))
        .collect();
    let mut list = Element::bare("items", NS);
    set_attr(&mut list, "node", node);
    if wanted.is_empty() || wanted.contains(&item.id.as_str()) {
        list.append_child(item_el(NS, &item));
    }
    let mut out = Element::bare("pubsub", NS);
    out.append_child(list);
    IqReply::Result(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cusax_store::Subscription;

    fn item(jid: &str, subscription: Subscription) -> RosterItem {
        RosterItem {
            jid: jid.to_owned(),
            subscription,
            ..RosterItem::default()
        }
    }

    #[test]
    fn subscribers_are_the_owner_and_unblocked_local_contacts_with_from() {
        let roster = [
            item("both@x", Subscription::Both),
            item("from@x", Subscription::From),
            item("to@x", Subscription::To),
            item("none@x", Subscription::None),
            item("blocked@x", Subscription::Both),
            item("far@remote", Subscription::Both),
            item("domainblocked@spam", Subscription::Both),
        ];
        let blocked: HashSet<String> = ["blocked@x".to_owned(), "spam".to_owned()].into();
        let got = subscribers("me@x", &roster, &blocked, |j| !j.ends_with("@remote"));
        assert_eq!(got, vec!["me@x", "both@x", "from@x"]);
    }

    #[test]
    fn block_lists_match_full_bare_and_domain() {
        let list: HashSet<String> = ["a@x".to_owned(), "y".to_owned()].into();
        assert!(list_blocks(&list, "a@x/phone"));
        assert!(list_blocks(&list, "b@y"));
        assert!(!list_blocks(&list, "b@x"));
    }

    #[test]
    fn only_presence_access_is_accepted_in_publish_options() {
        let form = |model: &str| -> Element {
            format!(
                "<publish-options xmlns='{NS}'><x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE' type='hidden'><value>{NS}#publish-options</value></field>\
                 <field var='pubsub#access_model'><value>{model}</value></field></x>\
                 </publish-options>"
            )
            .parse()
            .expect("valid test XML")
        };
        assert!(options_acceptable(&form("presence")));
        assert!(!options_acceptable(&form("whitelist")));
        assert!(!options_acceptable(&form("open")));
    }

    #[test]
    fn empty_payload_means_stop_publishing() {
        let e: Element = "<activity xmlns='http://jabber.org/protocol/activity'/>"
            .parse()
            .expect("valid test XML");
        assert!(is_empty_payload(&e));
        assert!(!is_empty_payload(&activity::on_the_phone().payload));
    }
}
