//! XEP-0077: In-Band Registration, password change only (RFC 7081 §3.2: one password).
//!
//! A new password re-derives every credential of the account — SCRAM verifiers and the SIP
//! digest HA1s — so it takes effect on both protocols at the next authentication.
//! Registering new accounts and cancelling one in band are not offered (`not-allowed`).

use super::{IqReply, Session};
use crate::registry::{Dests, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use crate::service::XmppService;
use async_trait::async_trait;
use cusax_account::{Credentials, Password};
use cusax_xmpp_proto::ext::register::RegisterQuery;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::sync::Arc;

pub use cusax_xmpp_proto::ext::register::NS;
/// Longest password accepted, in bytes.
const MAX_PASSWORD: usize = 1024;

/// The in-band registration (password change) module.
#[derive(Debug)]
pub struct Register;

impl Module for Register {
    fn name(&self) -> &'static str {
        "register"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, NS);
        let dests = Dests::SERVER.or(Dests::OWN_ACCOUNT);
        r.iq(IqKind::BOTH, NS, None, dests, self);
    }
}

#[async_trait]
impl IqHandler for Register {
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        handle(req.svc, req.session, req.iq, req.payload).await
    }
}

/// Handles the registration form request and the password change.
pub async fn handle(svc: &XmppService, session: &Session, iq: &Element, q: &Element) -> IqReply {
    let Ok(q) = RegisterQuery::try_from(q) else {
        return IqReply::Error(E::BadRequest);
    };
    if iq.attr("type") == Some("get") {
        let form = RegisterQuery {
            registered: true,
            username: Some(session.account.user().to_owned()),
            password: Some(String::new()),
            remove: false,
        };
        return IqReply::Result(Some(Element::from(&form)));
    }
    if q.remove {
        return IqReply::Error(E::NotAllowed);
    }
    if let Some(u) = &q.username
        && u.trim() != session.account.user()
    {
        return IqReply::Error(E::NotAllowed);
    }
    let Some(pw) = q.password else {
        return IqReply::Error(E::BadRequest);
    };
    if pw.is_empty() || pw.len() > MAX_PASSWORD || pw.chars().any(char::is_control) {
        return IqReply::Error(E::NotAcceptable);
    }
    let store = &svc.store();
    let Ok(Some(rec)) = store.account(&session.account).await else {
        return IqReply::Error(E::InternalServerError);
    };
    let mut realms: Vec<&str> = rec
        .credentials
        .ha1
        .iter()
        .map(|h| h.realm.as_str())
        .collect();
    realms.sort_unstable();
    realms.dedup();
    let iterations = svc.config().scram_iterations;
    let account = session.account.clone();
    let realms: Vec<String> = realms.into_iter().map(str::to_owned).collect();
    // PBKDF2 is CPU work: keep it off the async workers.
    let creds = tokio::task::spawn_blocking(move || {
        let r: Vec<&str> = realms.iter().map(String::as_str).collect();
        Credentials::derive(&account, &Password::new(&pw), &r, iterations)
    })
    .await;
    let Ok(creds) = creds else {
        return IqReply::Error(E::InternalServerError);
    };
    match store.set_credentials(&session.account, &creds).await {
        Ok(()) => {
            tracing::info!(account = %session.account, "password changed in band");
            IqReply::Result(None)
        }
        Err(_) => IqReply::Error(E::InternalServerError),
    }
}
