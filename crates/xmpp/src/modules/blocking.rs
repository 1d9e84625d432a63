//! XEP-0191: Blocking Command — block lists kept in the store and cached per online user.

use super::{IqReply, Session};
use crate::registry::{
    Dests, Event, Hook, HookPoint, IqHandler, IqKind, IqRequest, Module, Registry, Scope,
};
use crate::service::XmppService;
use crate::stanza::{error_reply, set_attr, stanza};
use async_trait::async_trait;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::collections::HashSet;
use std::sync::Arc;

/// The blocking namespace.
pub const NS: &str = "urn:xmpp:blocking";
/// Application error namespace for stanzas sent to a blocked JID.
pub const NS_ERRORS: &str = "urn:xmpp:blocking:errors";
/// Most entries per block list.
const MAX_ITEMS: usize = 1000;

/// The blocking command module; the block lists are cached in the router, which applies them
/// to every stanza.
#[derive(Debug)]
pub struct Blocking;

impl Module for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, NS);
        r.iq(IqKind::BOTH, NS, None, Dests::OWN_ACCOUNT, self.clone());
        r.hook(&[HookPoint::SessionStarted], 0, self);
    }
}

#[async_trait]
impl IqHandler for Blocking {
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        handle(req.svc, req.session, req.iq, req.payload).await
    }
}

#[async_trait]
impl Hook for Blocking {
    async fn on(&self, svc: &XmppService, event: &Event<'_>) {
        if let Event::SessionStarted { session } = event {
            load(svc, session).await;
        }
    }
}

/// Loads the user's block list into the router cache when a session binds.
pub async fn load(svc: &XmppService, session: &Session) {
    if svc.inner.router.blocklist(session.bare.as_str()).is_some() {
        return;
    }
    let list = svc
        .inner
        .store
        .blocklist(&session.account)
        .await
        .unwrap_or_default();
    svc.inner
        .router
        .set_blocklist(session.bare.as_str(), list.into_iter().collect());
}

/// §3.3: the error for a stanza the user sent to a JID they block.
pub fn blocked_error(el: &Element) -> Element {
    let mut e = error_reply(el, E::NotAcceptable);
    if let Some(err) = e.get_child_mut("error", cusax_xmpp_proto::ns::JABBER_CLIENT) {
        err.append_child(Element::bare("blocked", NS_ERRORS));
    }
    e
}

fn items(el: &Element) -> Option<Vec<String>> {
    el.children()
        .filter(|c| c.is("item", NS))
        .map(|c| {
            c.attr("jid")
                .and_then(|j| jid::Jid::new(j).ok())
                .map(|j| j.to_string())
        })
        .collect()
}

/// Handles blocklist get, block and unblock, pushing changes to all the user's sessions.
pub async fn handle(svc: &XmppService, session: &Session, iq: &Element, q: &Element) -> IqReply {
    let store = &svc.inner.store;
    match (iq.attr("type"), q.name()) {
        (Some("get"), "blocklist") => {
            let Ok(list) = store.blocklist(&session.account).await else {
                return IqReply::Error(E::InternalServerError);
            };
            let mut out = Element::bare("blocklist", NS);
            for j in list {
                let mut i = Element::bare("item", NS);
                set_attr(&mut i, "jid", j);
                out.append_child(i);
            }
            IqReply::Result(Some(out))
        }
        (Some("set"), kind @ ("block" | "unblock")) => {
            let Some(jids) = items(q) else {
                return IqReply::Error(E::JidMalformed);
            };
            if kind == "block" && jids.is_empty() {
                return IqReply::Error(E::BadRequest);
            }
            let Ok(before) = store.blocklist(&session.account).await else {
                return IqReply::Error(E::InternalServerError);
            };
            let before: HashSet<String> = before.into_iter().collect();
            let result = if kind == "block" {
                if before.len() + jids.len() > MAX_ITEMS {
                    return IqReply::Error(E::ResourceConstraint);
                }
                store.block(&session.account, &jids).await
            } else {
                store.unblock(&session.account, &jids).await
            };
            if result.is_err() {
                return IqReply::Error(E::InternalServerError);
            }
            let list: HashSet<String> = store
                .blocklist(&session.account)
                .await
                .unwrap_or_default()
                .into_iter()
                .collect();
            svc.inner
                .router
                .set_blocklist(session.bare.as_str(), list.clone());
            for s in svc.inner.router.sessions(session.bare.as_str()) {
                let to = format!("{}/{}", session.bare, s.resource);
                let mut push = stanza("iq", &[("type", "set"), ("id", "block-push"), ("to", &to)]);
                push.append_child(q.clone());
                s.send(push);
            }
            super::presence::after_block_change(svc, session, &before, &list).await;
            IqReply::Result(None)
        }
        _ => IqReply::Error(E::BadRequest),
    }
}
