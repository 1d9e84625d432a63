//! XEP-0280 §4–§7: "Message Carbons … keeps all of a user's clients in the conversation" —
//! per-session enable/disable, `<sent/>` copies of what one resource sends to the user's other
//! enabled resources, `<received/>` copies of what the user receives to the enabled resources
//! that did not get the original; none for `<private/>`/`<no-copy/>` (XEP-0334) messages.

use super::{Destination, IqReply, Session};
use crate::registry::{
    Dests, Event, Hook, HookPoint, IqHandler, IqKind, IqRequest, Module, Registry, Scope,
};
use crate::service::XmppService;
use async_trait::async_trait;
use cusax_account::AccountId;
use cusax_xmpp_proto::ext::carbons::{self, CarbonsRequest, Direction};
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub use cusax_xmpp_proto::ext::carbons::NS;

/// The carbons module; its state is the set of sessions (router ids) that enabled carbons.
#[derive(Debug, Default)]
pub struct Carbons {
    enabled: Mutex<HashSet<u64>>,
}

impl Carbons {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.enabled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the session with router id `session` has carbons enabled.
    pub fn is_enabled(&self, session: u64) -> bool {
        self.lock().contains(&session)
    }

    /// §4, §5 and §9 (multiple requests): enabling or disabling twice is no error.
    fn set(&self, session: u64, on: bool) {
        let mut set = self.lock();
        if on {
            set.insert(session);
        } else {
            set.remove(&session);
        }
    }

    /// Queues `original`'s copy for every enabled session of `account` except `skip`.
    fn copy(
        &self,
        svc: &XmppService,
        account: &AccountId,
        direction: Direction,
        original: &Element,
        skip: &[u64],
    ) {
        let bare = account.to_string();
        let targets: Vec<_> = {
            let enabled = self.lock();
            if enabled.is_empty() {
                return;
            }
            svc.router()
                .sessions(&bare)
                .into_iter()
                .filter(|s| enabled.contains(&s.id) && !skip.contains(&s.id))
                .collect()
        };
        for s in targets {
            let to = format!("{bare}/{}", s.resource);
            s.send(carbons::wrap(direction, &bare, &to, original));
        }
    }
}

impl Module for Carbons {
    fn name(&self) -> &'static str {
        "carbons"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, NS);
        r.iq(&[IqKind::Set], NS, None, Dests::OWN_ACCOUNT, self.clone());
        let points = &[
            HookPoint::MessageSent,
            HookPoint::MessageDelivered,
            HookPoint::SessionEnded,
        ];
        r.hook(points, 0, self.clone());
        r.provide(self);
    }
}

#[async_trait]
impl IqHandler for Carbons {
    /// §4 enable, §5 disable, for the requesting session.
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        match CarbonsRequest::try_from(req.payload) {
            Ok(r) => {
                self.set(req.session.id, r == CarbonsRequest::Enable);
                IqReply::Result(None)
            }
            Err(_) => IqReply::Error(E::BadRequest),
        }
    }
}

#[async_trait]
impl Hook for Carbons {
    async fn on(&self, svc: &XmppService, event: &Event<'_>) {
        match event {
            Event::MessageSent {
                session,
                message,
                dest,
            } => self.sent(svc, session, message, dest),
            Event::MessageDelivered {
                session,
                to,
                message,
                recipients,
            } => self.received(svc, session, to, message, recipients),
            Event::SessionEnded { session, .. } => self.set(session.id, false),
            _ => {}
        }
    }
}

impl Carbons {
    /// §6.4: the user's other enabled resources get a `<sent/>` copy, whether or not the
    /// sending one enabled carbons. A message to the user's own account is copied as
    /// received instead (when it is delivered).
    fn sent(&self, svc: &XmppService, session: &Session, message: &Element, dest: &Destination) {
        let own = match dest {
            Destination::OwnAccount => true,
            Destination::LocalBare(id) | Destination::LocalFull(id, _) => *id == session.account,
            _ => false,
        };
        if own || !carbons::is_eligible(message) {
            return;
        }
        self.copy(
            svc,
            &session.account,
            Direction::Sent,
            message,
            &[session.id],
        );
    }

    /// §6.3: the enabled resources of `to` that did not get the original get a `<received/>`
    /// copy; nor does the sender, when it wrote to its own account.
    fn received(
        &self,
        svc: &XmppService,
        session: &Session,
        to: &AccountId,
        message: &Element,
        recipients: &[u64],
    ) {
        if !carbons::is_eligible(message) {
            return;
        }
        let mut skip = recipients.to_vec();
        skip.push(session.id);
        self.copy(svc, to, Direction::Received, message, &skip);
    }
}
