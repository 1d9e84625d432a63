//! RFC 6120 §8 and §10: stanza handling for bound sessions — stamping, addressing, the IQ
//! dispatch to feature modules (one file each), and delivery to local sessions.

pub mod activity;
pub mod blocking;
pub mod caps;
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

use crate::service::XmppService;
use crate::stanza::{self, error_reply, is_error};
use cusax_account::AccountId;
use cusax_xmpp_proto::ns;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;

/// The bound session a stanza came from.
#[derive(Debug, Clone)]
pub struct Session {
    /// The authenticated account.
    pub account: AccountId,
    /// The account's bare JID.
    pub bare: String,
    /// The bound full JID.
    pub full: String,
    /// The router's id of this session.
    pub id: u64,
}

/// Where a stanza is addressed, from the sender's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No `to`, or the sender's own bare JID: the server acts for the account.
    OwnAccount,
    /// A served domain itself.
    Server,
    /// Another bare JID on a served domain.
    LocalBare(AccountId),
    /// A full JID on a served domain (account, resource).
    LocalFull(AccountId, String),
    /// An address on a domain we do not serve.
    Remote(String),
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
    /// Resolves a `to` attribute; `Err` when it is not a valid JID.
    fn target(&self, session: &Session, to: Option<&str>) -> Result<Target, ()> {
        let Some(to) = to else {
            return Ok(Target::OwnAccount);
        };
        let jid = jid::Jid::new(to).map_err(|_| ())?;
        let domain = jid.domain().as_str().to_owned();
        if !self.serves(&domain) {
            return Ok(Target::Remote(jid.to_string()));
        }
        let Some(node) = jid.node() else {
            return Ok(if jid.resource().is_some() {
                Target::Remote(jid.to_string())
            } else {
                Target::Server
            });
        };
        let d = cusax_account::Domain::parse(&domain).map_err(|_| ())?;
        let id = AccountId::new(node.as_str(), d).map_err(|_| ())?;
        Ok(match jid.resource() {
            Some(r) => Target::LocalFull(id, r.as_str().to_owned()),
            None if id == session.account => Target::OwnAccount,
            None => Target::LocalBare(id),
        })
    }

    /// Sends a stanza to one of the sender's own sessions.
    pub(crate) fn reply(&self, session: &Session, el: Element) {
        self.inner.router.send_to(&session.bare, session.id, el);
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
}

/// Handles one stanza from a bound session (RFC 6120 §8.1.2.1: `from` is stamped).
pub async fn handle(svc: &XmppService, session: &Session, mut el: Element) {
    if el.ns() != ns::JABBER_CLIENT {
        return; // nonzas of extensions we do not offer (e.g. stream management)
    }
    stanza::set_attr(&mut el, "from", session.full.clone());
    let target = match svc.target(session, el.attr("to")) {
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
    match el.name() {
        "iq" => iq(svc, session, el, target).await,
        "message" => message::outbound(svc, session, el, target).await,
        "presence" => presence::outbound(svc, session, el, target).await,
        _ => {}
    }
}

/// RFC 6120 §8.2.3 and §10.3: IQ routing and the dispatch to feature modules.
async fn iq(svc: &XmppService, session: &Session, el: Element, target: Target) {
    let kind = stanza::kind(&el, "");
    let request = matches!(kind, "get" | "set");
    if !request && !matches!(kind, "result" | "error") {
        return svc.reply(session, error_reply(&el, E::BadRequest));
    }
    if request && (el.attr("id").is_none() || el.children().count() != 1) {
        return svc.reply(session, error_reply(&el, E::BadRequest));
    }
    match &target {
        Target::LocalFull(id, res) => {
            let bare = id.to_string();
            if svc.inner.router.is_blocked(&session.bare, &bare) && request {
                return svc.reply(session, blocking::blocked_error(&el));
            }
            // XEP-0191 §3.3: from a JID the recipient blocks, a get or set is refused
            // (as if the session were not there), a result or error dropped.
            if svc.inner.router.is_blocked(&bare, &session.full) {
                if request {
                    svc.reply(session, error_reply(&el, E::ServiceUnavailable));
                }
                return;
            }
            if !svc.deliver_full(&bare, res, el.clone()) && request {
                svc.reply(session, error_reply(&el, E::ServiceUnavailable));
            }
            return;
        }
        Target::Remote(_) => {
            if request {
                svc.reply(session, error_reply(&el, E::RemoteServerNotFound));
            }
            return;
        }
        _ => {}
    }
    if !request {
        // Results and errors addressed to the server or an account end here; some answer
        // the server's own questions (XEP-0115 caps).
        if target == Target::Server {
            pep::on_server_answer(svc, session, &el).await;
        }
        return;
    }
    let Some(payload) = stanza::first_child(&el) else {
        return svc.reply(session, error_reply(&el, E::BadRequest));
    };
    let reply = match (payload.ns().as_str(), &target) {
        (ns_, Target::OwnAccount) if ns_ == roster::NS => {
            roster::handle(svc, session, &el, payload).await
        }
        (vcard::NS, _) => vcard::handle(svc, session, &el, payload, &target).await,
        (disco::NS_INFO | disco::NS_ITEMS, _) => disco::handle(svc, payload, &target).await,
        (ping::NS, Target::Server | Target::OwnAccount) => ping::handle(&el),
        (version::NS, Target::Server) => version::handle(&el),
        (blocking::NS, Target::OwnAccount) => blocking::handle(svc, session, &el, payload).await,
        (pep::NS, Target::OwnAccount | Target::LocalBare(_)) => {
            pep::handle(svc, session, &el, payload, &target).await
        }
        (private::NS, _) => private::handle(svc, session, &el, payload, &target).await,
        (register::NS, Target::Server | Target::OwnAccount) => {
            register::handle(svc, session, &el, payload).await
        }
        (_, Target::LocalBare(id)) if !svc.account_exists(id).await => {
            IqReply::Error(E::ServiceUnavailable)
        }
        _ => IqReply::Error(E::ServiceUnavailable),
    };
    let answer = match reply {
        IqReply::Result(p) => stanza::iq_result(&el, p),
        IqReply::Error(c) => error_reply(&el, c),
        IqReply::ErrorWith(c, app) => {
            let mut e = error_reply(&el, c);
            if let Some(err) = e.get_child_mut("error", ns::JABBER_CLIENT) {
                err.append_child(app);
            }
            e
        }
    };
    svc.reply(session, answer);
}
