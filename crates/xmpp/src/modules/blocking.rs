//! XEP-0191: Blocking Command — block lists kept in the store and cached per online user.

use super::{IqReply, Session};
use crate::registry::{
    Dests, Event, Hook, HookPoint, IqHandler, IqKind, IqRequest, Module, Registry, Scope,
};
use crate::service::XmppService;
use crate::stanza::{error_reply, stanza};
use async_trait::async_trait;
use cusax_xmpp_proto::ext::PayloadError;
use cusax_xmpp_proto::ext::blocking::{self, BlockingCommand};
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::collections::HashSet;
use std::sync::Arc;

pub use cusax_xmpp_proto::ext::blocking::{NS, NS_ERRORS};
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
        handle(req.svc, req.session, req.kind, req.payload).await
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
    if svc.router().blocklist(session.bare.as_str()).is_some() {
        return;
    }
    let list = svc
        .store()
        .blocklist(&session.account)
        .await
        .unwrap_or_default();
    svc.router()
        .set_blocklist(session.bare.as_str(), list.into_iter().collect());
}

/// §3.3: the error for a stanza the user sent to a JID they block.
pub fn blocked_error(el: &Element) -> Element {
    let mut e = error_reply(el, E::NotAcceptable);
    if let Some(err) = e.get_child_mut("error", cusax_xmpp_proto::ns::JABBER_CLIENT) {
        err.append_child(blocking::blocked_condition());
    }
    e
}

/// Handles blocklist get, block and unblock, pushing changes to all the user's sessions.
async fn handle(svc: &XmppService, session: &Session, kind: IqKind, q: &Element) -> IqReply {
    match (kind, q.name()) {
        (IqKind::Get, "blocklist") => list(svc, session).await,
        (IqKind::Set, "block" | "unblock") => match BlockingCommand::try_from(q) {
            Ok(cmd) => change(svc, session, &cmd, q).await,
            Err(PayloadError::JidMalformed) => IqReply::Error(E::JidMalformed),
            Err(_) => IqReply::Error(E::BadRequest),
        },
        _ => IqReply::Error(E::BadRequest),
    }
}

/// §3.2: the block list.
async fn list(svc: &XmppService, session: &Session) -> IqReply {
    let Ok(list) = svc.store().blocklist(&session.account).await else {
        return IqReply::Error(E::InternalServerError);
    };
    // Stored entries were JIDs when they were blocked.
    let jids = list.iter().filter_map(|j| jid::Jid::new(j).ok()).collect();
    IqReply::Result(Some((&BlockingCommand::Blocklist(jids)).into()))
}

/// §3.3, §3.4: block or unblock; every session of the user gets the command pushed.
async fn change(
    svc: &XmppService,
    session: &Session,
    cmd: &BlockingCommand,
    q: &Element,
) -> IqReply {
    let store = &svc.store();
    let jids: Vec<String> = cmd.jids().iter().map(ToString::to_string).collect();
    let block = matches!(cmd, BlockingCommand::Block(_));
    if block && jids.is_empty() {
        return IqReply::Error(E::BadRequest);
    }
    let Ok(before) = store.blocklist(&session.account).await else {
        return IqReply::Error(E::InternalServerError);
    };
    let before: HashSet<String> = before.into_iter().collect();
    let result = if block {
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
    let bare = session.bare.as_str();
    svc.router().set_blocklist(bare, list.clone());
    for s in svc.router().sessions(bare) {
        let to = format!("{bare}/{}", s.resource);
        let mut push = stanza("iq", &[("type", "set"), ("id", "block-push"), ("to", &to)]);
        // The command as the client sent it (§3.3: "the same JIDs").
        push.append_child(q.clone());
        s.send(push);
    }
    super::presence::after_block_change(svc, session, &before, &list).await;
    IqReply::Result(None)
}
