//! RFC 6121 §8.5: delivery rules for messages to local bare and full JIDs.

use super::{Destination, Session};
use crate::registry::Event;
use crate::service::XmppService;
use crate::stanza::{error_reply, is_error};
use cusax_account::AccountId;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;

/// Handles a message from a bound session.
pub async fn outbound(svc: &XmppService, session: &Session, el: Element, target: Destination) {
    let to_blocked = el
        .attr("to")
        .is_some_and(|to| svc.router().is_blocked(session.bare.as_str(), to));
    if to_blocked {
        if !is_error(&el) {
            svc.reply(session, super::blocking::blocked_error(&el));
        }
        return;
    }
    if !matches!(target, Destination::Server(_)) {
        let event = Event::MessageSent {
            session,
            message: &el,
            dest: &target,
        };
        svc.fire(&event).await;
    }
    match target {
        Destination::OwnAccount => {
            let own = session.account.clone();
            to_bare(svc, session, &own, el).await;
        }
        Destination::LocalBare(id) => to_bare(svc, session, &id, el).await,
        Destination::LocalFull(id, full) => {
            to_full(svc, session, &id, full.resource().as_str(), el).await;
        }
        Destination::Server(_) => {
            if !is_error(&el) {
                svc.reply(session, error_reply(&el, E::ServiceUnavailable));
            }
        }
        Destination::Remote(to) => svc.route_remote(session, &to, el).await,
        Destination::Component(c, to) => c.stanza(svc, session, &to, el).await,
    }
}

/// §8.5.3.2: a full JID with no such session is treated like the bare JID for chat and
/// normal messages; other types are dropped (errors) or bounced (groupchat).
async fn to_full(svc: &XmppService, session: &Session, id: &AccountId, res: &str, el: Element) {
    let bare = id.to_string();
    if svc.router().is_blocked(&bare, session.full.as_str()) {
        // XEP-0191 §3.3, as for the bare JID: the sender learns nothing more than offline.
        if !is_error(&el) {
            svc.reply(session, error_reply(&el, E::ServiceUnavailable));
        }
        return;
    }
    let recipient = svc.router().session(&bare, res).map(|s| s.id);
    if let Some(rid) = recipient
        && svc.router().send_to(&bare, rid, el.clone())
    {
        return delivered(svc, session, id, &el, &[rid]).await;
    }
    match el.attr("type").unwrap_or("normal") {
        "chat" | "normal" => to_bare(svc, session, id, el).await,
        "groupchat" => svc.reply(session, error_reply(&el, E::ServiceUnavailable)),
        _ => {}
    }
}

/// §8.5.2: a bare JID — to the available resources with non-negative priority, else to
/// offline storage (chat, normal), else dropped (headline, error).
async fn to_bare(svc: &XmppService, session: &Session, id: &AccountId, el: Element) {
    let bare = id.to_string();
    let kind = el.attr("type").unwrap_or("normal").to_owned();
    if !svc.account_exists(id).await {
        if !is_error(&el) {
            svc.reply(session, error_reply(&el, E::ServiceUnavailable));
        }
        return;
    }
    if kind == "groupchat" {
        return svc.reply(session, error_reply(&el, E::ServiceUnavailable));
    }
    let from = el.attr("from").unwrap_or_default().to_owned();
    if svc.router().is_blocked(&bare, &from) {
        if !is_error(&el) {
            svc.reply(session, error_reply(&el, E::ServiceUnavailable));
        }
        return;
    }
    let targets: Vec<_> = svc
        .router()
        .sessions(&bare)
        .into_iter()
        .filter(|s| s.presence.is_some() && s.priority >= 0)
        .collect();
    if targets.is_empty() {
        if matches!(kind.as_str(), "chat" | "normal") {
            super::offline::store(svc, session, id, el).await;
        }
        return;
    }
    let top = targets.iter().map(|s| s.priority).max().unwrap_or(0);
    let mut recipients = Vec::with_capacity(targets.len());
    for s in targets {
        // chat goes to every non-negative resource (RFC 6121 §8.5.2.1.1); others to the
        // highest only
        if kind == "chat" || s.priority == top {
            s.send(el.clone());
            recipients.push(s.id);
        }
    }
    delivered(svc, session, id, &el, &recipients).await;
}

/// The modules learn of a message queued for local sessions.
async fn delivered(
    svc: &XmppService,
    session: &Session,
    to: &AccountId,
    message: &Element,
    recipients: &[u64],
) {
    let event = Event::MessageDelivered {
        session,
        to,
        message,
        recipients,
    };
    svc.fire(&event).await;
}
