//! RFC 6120 §10 (server rules for processing XML stanzas): where a stanza from a bound
//! session is addressed, as a type — the sender's own account, another local account or one
//! of its resources, the server, a component hosted on a sub-domain, or a remote domain — and
//! the seams for the last two: [`Component`] and [`S2sRouter`].

use crate::modules::Session;
use crate::service::XmppService;
use crate::stanza::{error_reply, is_error};
use async_trait::async_trait;
use cusax_account::{AccountId, Domain};
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use jid::{DomainPart, FullJid, Jid};
use minidom::Element;
use std::sync::Arc;

/// Where a stanza is addressed, from the sender's point of view.
#[derive(Clone)]
pub enum Destination {
    /// No `to`, or the sender's own bare JID: the server acts for the account (§10.3).
    OwnAccount,
    /// A served domain itself.
    Server(DomainPart),
    /// Another bare JID on a served domain.
    LocalBare(AccountId),
    /// A full JID on a served domain: the account and the whole JID.
    LocalFull(AccountId, FullJid),
    /// A component hosted on a sub-domain (`conference.DOMAIN`, `upload.DOMAIN`).
    Component(Arc<dyn Component>, Jid),
    /// An address on a domain we do not serve (§10.4: handed to the [`S2sRouter`]).
    Remote(Jid),
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OwnAccount => f.write_str("OwnAccount"),
            Self::Server(d) => write!(f, "Server({d})"),
            Self::LocalBare(id) => write!(f, "LocalBare({id})"),
            Self::LocalFull(_, j) => write!(f, "LocalFull({j})"),
            Self::Component(c, j) => write!(f, "Component({}, {j})", c.domain()),
            Self::Remote(j) => write!(f, "Remote({j})"),
        }
    }
}

impl Destination {
    /// Resolves a `to` attribute for `session`; `Err` when it is not a valid JID.
    pub(crate) fn resolve(
        svc: &XmppService,
        session: &Session,
        to: Option<&str>,
    ) -> Result<Self, ()> {
        let Some(to) = to else {
            return Ok(Self::OwnAccount);
        };
        let jid = Jid::new(to).map_err(|_| ())?;
        let domain = jid.domain().as_str();
        if let Some(c) = svc.registry().component_for(domain) {
            return Ok(Self::Component(c.clone(), jid));
        }
        if !svc.serves(domain) {
            return Ok(Self::Remote(jid));
        }
        let Some(node) = jid.node() else {
            // A resource on the domain itself names nothing we host: as before, remote.
            return Ok(if jid.resource().is_some() {
                Self::Remote(jid)
            } else {
                Self::Server(jid.domain().to_owned())
            });
        };
        let d = Domain::parse(domain).map_err(|_| ())?;
        let id = AccountId::new(node.as_str(), d).map_err(|_| ())?;
        Ok(match jid.try_into_full() {
            Ok(full) => Self::LocalFull(id, full),
            Err(_) if id == session.account => Self::OwnAccount,
            Err(_) => Self::LocalBare(id),
        })
    }
}

/// A service on its own sub-domain of a served domain (XEP-0045 rooms at `conference.DOMAIN`,
/// XEP-0363 at `upload.DOMAIN`): it gets every stanza addressed to its domain or below it.
#[async_trait]
pub trait Component: Send + Sync {
    /// The domain it is hosted on (lower-case).
    fn domain(&self) -> &str;
    /// Handles one stanza from a local session (`from` stamped), `to` as addressed.
    async fn stanza(&self, svc: &XmppService, session: &Session, to: &Jid, el: Element);
}

/// Carries stanzas for remote domains (XMPP federation, RFC 6120 §13.5 and §10.4).
#[async_trait]
pub trait S2sRouter: Send + Sync {
    /// Routes one stanza from a local session (`from` stamped) towards `to`.
    async fn route(&self, svc: &XmppService, session: &Session, to: &Jid, el: Element);
}

/// The router while there is no federation: requests and messages come back with
/// `remote-server-not-found` (RFC 6120 §8.3.3.16); presence, results and errors are dropped.
#[derive(Debug, Default)]
pub struct Bounce;

#[async_trait]
impl S2sRouter for Bounce {
    async fn route(&self, svc: &XmppService, session: &Session, _to: &Jid, el: Element) {
        let answerable = match el.name() {
            "iq" => matches!(el.attr("type"), Some("get" | "set")),
            "message" => !is_error(&el),
            _ => false,
        };
        if answerable {
            svc.reply(session, error_reply(&el, E::RemoteServerNotFound));
        }
    }
}

impl XmppService {
    /// Hands a stanza for a remote domain to the S2S router.
    pub(crate) async fn route_remote(&self, session: &Session, to: &Jid, el: Element) {
        match self.inner.registry.s2s_router() {
            Some(r) => r.route(self, session, to, el).await,
            None => Bounce.route(self, session, to, el).await,
        }
    }
}
