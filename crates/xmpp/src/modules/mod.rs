//! RFC 6120 §8 and §10: stanza handling for bound sessions — stamping, addressing, the IQ
//! dispatch through the [module registry](crate::registry) to feature modules (one file
//! each), and delivery to local sessions.

pub mod activity;
pub mod blocking;
pub mod caps;
pub mod carbons;
pub mod csi;
pub mod disco;
pub mod message;
pub mod offline;
pub mod pep;
pub mod ping;
pub mod presence;
pub mod private;
pub mod reach;
pub mod register;
pub mod roster;
pub mod vcard;
pub mod version;

pub use crate::destination::Destination;
use crate::registry::{Event, IqKind, IqRequest, Module};
use crate::service::XmppService;
use crate::stanza::{self, error_reply, is_error};
use cusax_account::AccountId;
use cusax_xmpp_proto::ns;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use jid::{BareJid, FullJid};
use minidom::Element;
use std::sync::Arc;

/// The modules every service runs, in registration order (which is also the order of the
/// server's disco#info features).
pub fn default_modules() -> Vec<Arc<dyn Module>> {
    vec![
        Arc::new(disco::Disco),
        Arc::new(roster::Roster),
        Arc::new(vcard::VCard),
        Arc::new(ping::Ping),
        Arc::new(version::Version),
        Arc::new(blocking::Blocking),
        Arc::new(register::Register),
        Arc::new(private::Private),
        Arc::new(offline::Offline),
        Arc::new(carbons::Carbons::default()),
        Arc::new(csi::Csi),
        Arc::new(pep::Pep::default()),
        Arc::new(presence::Presence),
    ]
}

/// The bound session a stanza came from.
#[derive(Debug, Clone)]
pub struct Session {
    /// The authenticated account.
    pub account: AccountId,
    /// The account's bare JID.
    pub bare: BareJid,
    /// The bound full JID.
    pub full: FullJid,
    /// The router's id of this session.
    pub id: u64,
}

impl Session {
    /// The session of `account` bound to `resource` with the router's `id`; `Err` if the
    /// resource is not a valid resourcepart (RFC 7622 §3.4).
    pub fn new(account: AccountId, resource: &str, id: u64) -> Result<Self, jid::Error> {
        let bare = BareJid::new(&account.to_string())?;
        let full = bare.with_resource_str(resource)?;
        Ok(Self {
            account,
            bare,
            full,
            id,
        })
    }
}

/// What an IQ handler answers.
#[derive(Debug)]
pub enum IqReply {
    /// `type='result'` with an optional payload.
    Result(Option<Element>),
    /// An error condition.
    Error(E),
    /// An error condition with an application-specific condition element (RFC 6120 §8.3.3.2).
    ErrorWith(E, Element),
}

impl XmppService {
    /// Sends a stanza to one of the sender's own sessions.
    pub(crate) fn reply(&self, session: &Session, el: Element) {
        self.inner
            .router
            .send_to(session.bare.as_str(), session.id, el);
    }

    /// Delivers to a full JID if that session exists and does not block the sender.
    pub(crate) fn deliver_full(&self, bare: &str, resource: &str, el: Element) -> bool {
        let from = el.attr("from").unwrap_or_default().to_owned();
        if self.inner.router.is_blocked(bare, &from) {
            return true;
        }
        match self.inner.router.session(bare, resource) {
            Some(s) => {
                s.send(el);
                true
            }
            None => false,
        }
    }

    /// Runs the hooks of an event.
    pub(crate) async fn fire(&self, event: &Event<'_>) {
        self.inner.registry.fire(self, event).await;
    }
}

/// A resource was bound: the modules prepare for it (block list cache, …).
pub async fn session_started(svc: &XmppService, session: &Session) {
    svc.fire(&Event::SessionStarted { session }).await;
}

/// A session ended: it leaves the router, then the modules clean up after it (RFC 6121
/// §4.5.2: `unavailable` on its behalf).
pub async fn session_ended(svc: &XmppService, session: &Session) {
    let last = svc.router().unregister(session.bare.as_str(), session.id);
    svc.fire(&Event::SessionEnded {
        session,
        last: last.as_ref(),
    })
    .await;
}

/// Handles one stanza from a bound session (RFC 6120 §8.1.2.1: `from` is stamped).
pub async fn handle(svc: &XmppService, session: &Session, mut el: Element) {
    if el.ns() != ns::JABBER_CLIENT {
        return; // nonzas of extensions we do not offer (e.g. stream management)
    }
    stanza::set_attr(&mut el, "from", session.full.to_string());
    let dest = match Destination::resolve(svc, session, el.attr("to")) {
        Ok(t) => t,
        Err(()) => {
            if !is_error(&el) && el.name() != "presence" {
                svc.reply(session, error_reply(&el, E::JidMalformed));
            }
            return;
        }
    };
    let kind: &'static str = match el.name() {
        "iq" => "iq",
        "message" => "message",
        "presence" => "presence",
        _ => "other",
    };
    metrics::counter!("cusax_xmpp_stanzas_total", "kind" => kind).increment(1);
    if let Destination::Component(c, to) = &dest {
        return c.stanza(svc, session, to, el).await;
    }
    match el.name() {
        "iq" => iq(svc, session, el, dest).await,
        "message" => message::outbound(svc, session, el, dest).await,
        "presence" => presence::outbound(svc, session, el, dest).await,
        _ => {}
    }
}

/// RFC 6120 §8.2.3 and §10.3: IQ routing; requests to the server or an account go to the
/// handler a module registered for them, and to nobody else.
async fn iq(svc: &XmppService, session: &Session, el: Element, dest: Destination) {
    let type_attr = stanza::kind(&el, "");
    let kind = IqKind::from_attr(type_attr);
    if kind.is_none() && !matches!(type_attr, "result" | "error") {
        return svc.reply(session, error_reply(&el, E::BadRequest));
    }
    if kind.is_some() && (el.attr("id").is_none() || el.children().count() != 1) {
        return svc.reply(session, error_reply(&el, E::BadRequest));
    }
    match &dest {
        Destination::LocalFull(id, full) => {
            return to_full_jid(
                svc,
                session,
                id,
                full.resource().as_str(),
                el,
                kind.is_some(),
            );
        }
        Destination::Remote(to) => return svc.route_remote(session, to, el).await,
        _ => {}
    }
    let Some(kind) = kind else {
        // Results and errors addressed to the server or an account end here; some answer
        // the server's own questions (XEP-0115 caps).
        if matches!(dest, Destination::Server(_)) {
            svc.fire(&Event::IqAnswer { session, iq: &el }).await;
        }
        return;
    };
    let Some(payload) = stanza::first_child(&el) else {
        return svc.reply(session, error_reply(&el, E::BadRequest));
    };
    let reply = match svc.registry().iq_handler(kind, payload, &dest) {
        Some(h) => {
            let req = IqRequest {
                svc,
                session,
                iq: &el,
                payload,
                kind,
                dest: &dest,
            };
            h.handle(&req).await
        }
        None => IqReply::Error(E::ServiceUnavailable),
    };
    svc.reply(session, answer(&el, reply));
}

/// An IQ to another session: delivered unless either side blocks the other (XEP-0191 §3.3).
fn to_full_jid(
    svc: &XmppService,
    session: &Session,
    id: &AccountId,
    res: &str,
    el: Element,
    request: bool,
) {
    let bare = id.to_string();
    if svc.router().is_blocked(session.bare.as_str(), &bare) && request {
        return svc.reply(session, blocking::blocked_error(&el));
    }
    // XEP-0191 §3.3: from a JID the recipient blocks, a get or set is refused
    // (as if the session were not there), a result or error dropped.
    if svc.router().is_blocked(&bare, session.full.as_str()) {
        if request {
            svc.reply(session, error_reply(&el, E::ServiceUnavailable));
        }
        return;
    }
    if !svc.deliver_full(&bare, res, el.clone()) && request {
        svc.reply(session, error_reply(&el, E::ServiceUnavailable));
    }
}

/// The stanza for a handler's answer to `iq`.
fn answer(iq: &Element, reply: IqReply) -> Element {
    match reply {
        IqReply::Result(p) => stanza::iq_result(iq, p),
        IqReply::Error(c) => error_reply(iq, c),
        IqReply::ErrorWith(c, app) => {
            let mut e = error_reply(iq, c);
            if let Some(err) = e.get_child_mut("error", ns::JABBER_CLIENT) {
                err.append_child(app);
            }
            e
        }
    }
}

/// The account's roster items for a fan-out (presence, PEP notifications); a store failure
/// reaches nobody rather than failing the stanza that caused it.
pub(crate) async fn roster_items(
    svc: &XmppService,
    account: &cusax_account::AccountId,
) -> Vec<cusax_store::RosterItem> {
    svc.store()
        .roster(account)
        .await
        .map(|r| r.1)
        .unwrap_or_default()
}
