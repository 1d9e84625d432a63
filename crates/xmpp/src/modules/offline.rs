//! XEP-0160: Best Practices for Handling Offline Messages, with XEP-0203 delay stamps.
//!
//! Chat and normal messages with a body for an account with no available resource are
//! stored (bounded per account) and delivered when the account next sends initial presence
//! with a non-negative priority.

use super::Session;
use crate::registry::{Event, Module, Registry, Scope};
use crate::service::XmppService;
use crate::stanza::{error_reply, set_attr};
use cusax_account::AccountId;
use cusax_xmpp_proto::ns;
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::str::FromStr;
use std::sync::Arc;

/// XEP-0203 namespace.
pub const NS_DELAY: &str = "urn:xmpp:delay";

/// The offline storage module (storage and delivery are called by the message and presence
/// rules; the module announces them).
#[derive(Debug)]
pub struct Offline;

impl Module for Offline {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, "msgoffline");
        r.feature(Scope::Server, NS_DELAY);
    }
}

/// Stores a message for later, stamped with when it arrived.
pub async fn store(svc: &XmppService, session: &Session, owner: &AccountId, mut el: Element) {
    let has_content = el.get_child("body", ns::JABBER_CLIENT).is_some()
        || el.get_child("subject", ns::JABBER_CLIENT).is_some();
    if !has_content {
        return; // chat states and receipts are not worth keeping
    }
    let mut delay = Element::bare("delay", NS_DELAY);
    set_attr(&mut delay, "from", owner.domain().as_str());
    set_attr(
        &mut delay,
        "stamp",
        chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
    );
    el.append_child(delay);
    let mut xml = Vec::new();
    if cusax_xmpp_proto::xml::write_element(&el, "", &mut xml).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(&xml);
    match svc
        .store()
        .push_offline(owner, &text, svc.config().max_offline)
        .await
    {
        Ok(true) => {
            let event = Event::MessageStored {
                session,
                owner,
                message: &el,
            };
            svc.fire(&event).await;
        }
        Ok(false) => svc.reply(session, error_reply(&el, E::ServiceUnavailable)),
        Err(e) => {
            tracing::warn!(error = %e, "storing an offline message failed");
            svc.reply(session, error_reply(&el, E::InternalServerError));
        }
    }
}

/// Sends and removes the stored messages of the session's account.
pub async fn deliver(svc: &XmppService, session: &Session) {
    let stored = match svc.store().take_offline(&session.account).await {
        Ok(s) => s,
        Err(e) => return tracing::warn!(error = %e, "reading offline messages failed"),
    };
    for xml in stored {
        match Element::from_str(&xml) {
            Ok(mut el) => {
                set_attr(&mut el, "to", session.full.to_string());
                svc.reply(session, el);
            }
            Err(_) => tracing::warn!("dropping an unreadable stored message"),
        }
    }
}
