//! RFC 6121 §3–§4: presence subscriptions (the state machine of both sides, for local
//! contacts), initial presence with probes, broadcast, directed presence, and the
//! `unavailable` sent for a session that ends without one.

use super::{Destination, Session};
use crate::registry::{Event, Hook, HookPoint, Module, Registry};
use crate::router::SessionHandle;
use crate::service::XmppService;
use crate::stanza::{self, set_attr};
use async_trait::async_trait;
use cusax_account::AccountId;
use cusax_store::RosterItem;
use minidom::Element;
use std::collections::HashSet;
use std::sync::Arc;

/// The presence module: the rules below are called for every presence stanza; the module
/// hooks into the end of sessions.
#[derive(Debug)]
pub struct Presence;

impl Module for Presence {
    fn name(&self) -> &'static str {
        "presence"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.hook(&[HookPoint::SessionEnded], 0, self);
    }
}

#[async_trait]
impl Hook for Presence {
    async fn on(&self, svc: &XmppService, event: &Event<'_>) {
        if let Event::SessionEnded {
            session,
            last: Some(last),
        } = event
        {
            on_disconnect(svc, session, last).await;
        }
    }
}

/// Handles a presence stanza from a bound session.
pub async fn outbound(svc: &XmppService, session: &Session, el: Element, target: Destination) {
    let kind = el.attr("type").map(str::to_owned);
    match (kind.as_deref(), el.attr("to").is_some()) {
        (None | Some("unavailable"), false) => broadcast(svc, session, el).await,
        (Some(k @ ("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed")), true) => {
            let contact = match &target {
                Destination::LocalBare(id) | Destination::LocalFull(id, _) => id.to_string(),
                Destination::Remote(j) => j.to_bare().to_string(),
                Destination::OwnAccount | Destination::Server(_) | Destination::Component(..) => {
                    return;
                }
            };
            subscription_from_user(svc, session, &contact, k).await;
        }
        (None | Some("unavailable") | Some("error"), true) => {
            if let Some((to, el)) = directed(svc, session, el, &target) {
                svc.route_remote(session, &to, el).await;
            }
        }
        _ => {} // probes from clients and unknown types are ignored
    }
}

fn priority(el: &Element) -> i8 {
    el.get_child("priority", cusax_xmpp_proto::ns::JABBER_CLIENT)
        .and_then(|p| p.text().trim().parse().ok())
        .unwrap_or(0)
}

/// Sends a presence to every available session of a local user that does not block `from`.
fn to_available(svc: &XmppService, user: &str, el: &Element) {
    let from = el.attr("from").unwrap_or_default();
    if svc.router().is_blocked(user, from) {
        return;
    }
    for s in svc.router().sessions(user) {
        if s.presence.is_some() {
            s.send(el.clone());
        }
    }
}

fn local_account(svc: &XmppService, jid: &str) -> Option<AccountId> {
    let id = AccountId::parse(jid).ok()?;
    svc.serves(id.domain().as_str()).then_some(id)
}

/// §4.6: presence addressed to one entity; available presence is remembered so that the
/// entity gets `unavailable` when the session ends. Returns what goes to a remote domain.
fn directed(
    svc: &XmppService,
    session: &Session,
    el: Element,
    target: &Destination,
) -> Option<(jid::Jid, Element)> {
    if svc
        .router()
        .is_blocked(session.bare.as_str(), el.attr("to").unwrap_or_default())
    {
        return None;
    }
    let available = el.attr("type").is_none();
    let unavailable = el.attr("type") == Some("unavailable");
    let to = el.attr("to").unwrap_or_default().to_owned();
    let mut remote = None;
    match target {
        Destination::LocalBare(id) => to_available(svc, &id.to_string(), &el),
        Destination::OwnAccount => to_available(svc, session.bare.as_str(), &el),
        Destination::LocalFull(id, full) => {
            svc.deliver_full(&id.to_string(), full.resource().as_str(), el);
        }
        Destination::Remote(j) => remote = Some((j.clone(), el)),
        Destination::Server(_) | Destination::Component(..) => {}
    }
    if available || unavailable {
        svc.router().update(session.bare.as_str(), session.id, |s| {
            if available {
                s.directed.insert(to);
            } else {
                s.directed.remove(&to);
            }
        });
    }
    remote
}

/// §4.2–§4.5: broadcast of available or unavailable presence to subscribers and own
/// resources; the first available presence also probes contacts and releases pending
/// subscription requests and offline messages.
async fn broadcast(svc: &XmppService, session: &Session, mut el: Element) {
    let available = el.attr("type").is_none();
    let prio = priority(&el);
    let router = &svc.router();
    let stored = available.then(|| Arc::new(el.clone()));
    let Some((was_available, directed)) = router.update(session.bare.as_str(), session.id, |s| {
        let was = s.presence.is_some();
        s.presence = stored;
        s.priority = prio;
        let d = if available {
            HashSet::new()
        } else {
            std::mem::take(&mut s.directed)
        };
        (was, d)
    }) else {
        return;
    };
    if !available && !was_available {
        return;
    }
    stanza::remove_attr(&mut el, "to");
    let roster = super::roster_items(svc, &session.account).await;
    let sent = send_to_subscribers(svc, session, &roster, &el);
    if !available {
        for j in directed.difference(&sent) {
            send_directed_unavailable(svc, j, &el);
        }
        return;
    }
    let event = Event::PresenceChanged {
        session,
        presence: &el,
        initial: !was_available,
        roster: &roster,
    };
    svc.fire(&event).await;
    if was_available {
        return;
    }
    probe_contacts(svc, session, &roster);
    if prio >= 0 {
        for item in roster.iter().filter(|i| i.pending_in) {
            let req = stanza::stanza(
                "presence",
                &[
                    ("type", "subscribe"),
                    ("from", &item.jid),
                    ("to", session.bare.as_str()),
                ],
            );
            svc.reply(session, req);
        }
        super::offline::deliver(svc, session).await;
    }
}

/// Sends `el` to contacts with a `from` subscription and to the user's available resources,
/// the sending one included (RFC 6121 §4.2.2, §4.4.2, §4.5.2: a client learns that its
/// presence was broadcast from the copy it gets back); returns the bare JIDs reached.
fn send_to_subscribers(
    svc: &XmppService,
    session: &Session,
    roster: &[RosterItem],
    el: &Element,
) -> HashSet<String> {
    let mut sent = HashSet::new();
    for item in roster.iter().filter(|i| i.subscription.has_from()) {
        if svc.router().is_blocked(session.bare.as_str(), &item.jid) {
            continue;
        }
        if local_account(svc, &item.jid).is_some() {
            let mut p = el.clone();
            set_attr(&mut p, "to", item.jid.clone());
            to_available(svc, &item.jid, &p);
        }
        sent.insert(item.jid.clone());
    }
    for s in svc.router().sessions(session.bare.as_str()) {
        // The sender is still registered (also while it goes unavailable, its presence
        // already cleared); a session that has ended is not, so nothing is sent to it.
        if s.id == session.id || s.presence.is_some() {
            let mut p = el.clone();
            set_attr(&mut p, "to", format!("{}/{}", session.bare, s.resource));
            s.send(p);
        }
    }
    sent
}

fn send_directed_unavailable(svc: &XmppService, to: &str, el: &Element) {
    let mut p = el.clone();
    set_attr(&mut p, "to", to);
    let (bare, res) = match to.split_once('/') {
        Some((b, r)) => (b, Some(r)),
        None => (to, None),
    };
    match res {
        Some(r) => {
            svc.deliver_full(bare, r, p);
        }
        None => to_available(svc, bare, &p),
    }
}

/// §4.3: answers the probes of an initial presence for local contacts directly.
fn probe_contacts(svc: &XmppService, session: &Session, roster: &[RosterItem]) {
    let mut contacts: Vec<&str> = roster
        .iter()
        .filter(|i| {
            i.subscription.has_to() && !svc.router().is_blocked(session.bare.as_str(), &i.jid)
        })
        .map(|i| i.jid.as_str())
        .collect();
    contacts.push(session.bare.as_str());
    for c in contacts {
        if svc.router().is_blocked(c, session.bare.as_str()) {
            continue;
        }
        for s in svc.router().sessions(c) {
            if s.id == session.id {
                continue;
            }
            if let Some(p) = &s.presence {
                let mut p = Element::clone(p);
                set_attr(&mut p, "to", session.full.to_string());
                svc.reply(session, p);
            }
        }
    }
}

/// Sends the presence of every available session of `user` to `to` (after `subscribed`),
/// or `unavailable` from each (after `unsubscribed`); a full `to` gets it at that session only.
fn presence_of_user_to(svc: &XmppService, user: &str, to: &str, available: bool) {
    let (bare, resource) = match to.split_once('/') {
        Some((b, r)) => (b, Some(r)),
        None => (to, None),
    };
    let Some(_) = local_account(svc, bare) else {
        return;
    };
    for s in svc.router().sessions(user) {
        let Some(p) = &s.presence else { continue };
        let mut p = if available {
            Element::clone(p)
        } else {
            let from = format!("{user}/{}", s.resource);
            stanza::stanza("presence", &[("type", "unavailable"), ("from", &from)])
        };
        set_attr(&mut p, "to", to);
        match resource {
            Some(r) => {
                svc.deliver_full(bare, r, p);
            }
            None => to_available(svc, bare, &p),
        }
    }
}

/// XEP-0191 §3.3 and §3.4: the user's block list changed from `before` to `after`. A JID
/// allowed to see the user's presence (a `from` subscription, RFC 6121 §4) that the change
/// blocks gets `unavailable` from each available resource, one it unblocks gets the current
/// presence; a JID that only had directed presence (§4.6) gets `unavailable` when blocked.
pub(crate) async fn after_block_change(
    svc: &XmppService,
    session: &Session,
    before: &HashSet<String>,
    after: &HashSet<String>,
) {
    use super::pep::list_blocks;
    if before == after {
        return;
    }
    let changed = |j: &str| list_blocks(before, j) != list_blocks(after, j);
    let roster = super::roster_items(svc, &session.account).await;
    let subscribers: HashSet<&str> = roster
        .iter()
        .filter(|i| i.subscription.has_from() && i.jid != session.bare.as_str())
        .map(|i| i.jid.as_str())
        .collect();
    // Bare subscribers whose state changed, then full JIDs named in the change whose
    // subscriber's bare JID kept its state (the change concerns that resource only).
    let mut targets: Vec<&str> = subscribers.iter().copied().filter(|j| changed(j)).collect();
    for j in before.symmetric_difference(after) {
        if let Some((bare, _)) = j.split_once('/')
            && subscribers.contains(bare)
            && !changed(bare)
            && changed(j)
        {
            targets.push(j);
        }
    }
    for to in targets {
        presence_of_user_to(svc, session.bare.as_str(), to, list_blocks(before, to));
    }
    for s in svc.router().sessions(session.bare.as_str()) {
        let newly: Vec<String> = s
            .directed
            .iter()
            .filter(|d| {
                let bare = d.split('/').next().unwrap_or(d);
                !subscribers.contains(bare) && !list_blocks(before, d) && list_blocks(after, d)
            })
            .cloned()
            .collect();
        if newly.is_empty() {
            continue;
        }
        let from = format!("{}/{}", session.bare, s.resource);
        let el = stanza::stanza("presence", &[("type", "unavailable"), ("from", &from)]);
        for d in &newly {
            send_directed_unavailable(svc, d, &el);
        }
        svc.router().update(session.bare.as_str(), s.id, |h| {
            for d in &newly {
                h.directed.remove(d);
            }
        });
    }
}

/// §3 (user's server, outbound): a subscription stanza from the user about `contact`.
pub async fn subscription_from_user(
    svc: &XmppService,
    session: &Session,
    contact: &str,
    kind: &str,
) {
    let store = &svc.store();
    let existing = store
        .roster_item(&session.account, contact)
        .await
        .ok()
        .flatten();
    let mut item = existing.clone().unwrap_or_else(|| RosterItem {
        jid: contact.to_owned(),
        ..RosterItem::default()
    });
    let changed = match kind {
        "subscribe" if !item.subscription.has_to() && !item.ask => {
            item.ask = true;
            true
        }
        "unsubscribe" if item.subscription.has_to() || item.ask => {
            item.subscription = item.subscription.with_to(false);
            item.ask = false;
            true
        }
        "subscribed" if item.pending_in => {
            item.subscription = item.subscription.with_from(true);
            item.pending_in = false;
            true
        }
        "subscribed" => return, // no pre-approval (§3.4) offered
        "unsubscribed" if item.subscription.has_from() || item.pending_in => {
            item.subscription = item.subscription.with_from(false);
            item.pending_in = false;
            true
        }
        _ => false,
    };
    if changed {
        super::roster::save(svc, &session.account, &item).await;
    }
    if let Some(cid) = local_account(svc, contact) {
        let p = stanza::stanza(
            "presence",
            &[
                ("type", kind),
                ("from", session.bare.as_str()),
                ("to", contact),
            ],
        );
        subscription_to_contact(svc, &cid, session.bare.as_str(), kind, p).await;
    } else if let Ok(to) = jid::Jid::new(contact) {
        let p = stanza::stanza(
            "presence",
            &[
                ("type", kind),
                ("from", session.bare.as_str()),
                ("to", contact),
            ],
        );
        svc.route_remote(session, &to, p).await;
    }
    match kind {
        "subscribed" => {
            presence_of_user_to(svc, session.bare.as_str(), contact, true);
            super::pep::on_subscribed(svc, &session.account, contact).await;
        }
        "unsubscribed" => presence_of_user_to(svc, session.bare.as_str(), contact, false),
        _ => {}
    }
}

/// §3 (contact's server, inbound): a subscription stanza from `from` for local `contact`.
async fn subscription_to_contact(
    svc: &XmppService,
    contact: &AccountId,
    from: &str,
    kind: &str,
    p: Element,
) {
    let cbare = contact.to_string();
    if svc.router().is_blocked(&cbare, from) || !svc.account_exists(contact).await {
        return;
    }
    let store = &svc.store();
    let existing = store.roster_item(contact, from).await.ok().flatten();
    let mut item = existing.clone().unwrap_or_else(|| RosterItem {
        jid: from.to_owned(),
        ..RosterItem::default()
    });
    let deliver = match kind {
        "subscribe" if item.subscription.has_from() => {
            // Already approved: answer for the contact (§3.1.3).
            if let Some(uid) = local_account(svc, from) {
                let back = stanza::stanza(
                    "presence",
                    &[("type", "subscribed"), ("from", &cbare), ("to", from)],
                );
                Box::pin(subscription_to_contact(
                    svc,
                    &uid,
                    &cbare,
                    "subscribed",
                    back,
                ))
                .await;
                presence_of_user_to(svc, &cbare, from, true);
            }
            return;
        }
        "subscribe" => {
            if !item.pending_in {
                item.pending_in = true;
                store_quietly(svc, contact, &item, existing.is_none()).await;
            }
            true
        }
        "unsubscribe" if item.subscription.has_from() || item.pending_in => {
            item.subscription = item.subscription.with_from(false);
            item.pending_in = false;
            store_quietly(svc, contact, &item, false).await;
            presence_of_user_to(svc, &cbare, from, false);
            true
        }
        "subscribed" if item.ask => {
            item.subscription = item.subscription.with_to(true);
            item.ask = false;
            super::roster::save(svc, contact, &item).await;
            true
        }
        "unsubscribed" if item.subscription.has_to() || item.ask => {
            item.subscription = item.subscription.with_to(false);
            item.ask = false;
            super::roster::save(svc, contact, &item).await;
            true
        }
        _ => false,
    };
    if deliver {
        to_available(svc, &cbare, &p);
    }
}

/// Stores an item; pushes it unless it only records a request the user has not seen yet.
async fn store_quietly(svc: &XmppService, owner: &AccountId, item: &RosterItem, hidden: bool) {
    if hidden {
        if let Err(e) = svc.store().put_roster_item(owner, item).await {
            tracing::warn!(error = %e, "storing a subscription request failed");
        }
    } else {
        super::roster::save(svc, owner, item).await;
    }
}

/// Whether an item exists only to remember an unanswered request (§3.1.3: not in the roster).
pub fn is_hidden(item: &RosterItem) -> bool {
    item.pending_in
        && !item.ask
        && item.subscription == cusax_store::Subscription::None
        && item.name.is_none()
        && item.groups.is_empty()
}

/// §4.5.2: a session that ends while available sends `unavailable` on its behalf.
async fn on_disconnect(svc: &XmppService, session: &Session, handle: &SessionHandle) {
    if handle.presence.is_none() {
        return;
    }
    let el = stanza::stanza(
        "presence",
        &[("type", "unavailable"), ("from", session.full.as_str())],
    );
    let roster = super::roster_items(svc, &session.account).await;
    let sent = send_to_subscribers(svc, session, &roster, &el);
    for j in handle.directed.difference(&sent) {
        send_directed_unavailable(svc, j, &el);
    }
}
