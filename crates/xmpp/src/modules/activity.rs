//! XEP-0108 (User Activity) §2.2 over PEP: "on the phone" while a user is in a SIP call.
//!
//! The server crate tells the service when an account starts its first call and ends its
//! last one ([`XmppService::set_in_call`]). For users who opted in, the PEP node
//! `http://jabber.org/protocol/activity` then shows
//! `<activity><talking><on_the_phone/></talking></activity>`; when the call ends it shows the
//! activity the user's client had published again, or `<activity/>` (§2.2 "stop command").
//!
//! The opt-in (CUSAX SEC-10: a call is private by default) is the user's own setting, kept in
//! XEP-0049 private XML storage under [`NS_OPT_IN`]:
//! `<phone-activity xmlns='urn:cusax:phone-activity:0' publish='true'/>`. Anything else —
//! nothing stored, `publish='false'` — means off. Changing it during a call takes effect at
//! once.

use super::pep::{self, Item};
use crate::service::XmppService;
use cusax_account::AccountId;
use minidom::Element;
use std::str::FromStr;

/// The user activity namespace (also the PEP node).
pub const NS: &str = "http://jabber.org/protocol/activity";
/// The private-storage namespace of the user's "on the phone" opt-in.
pub const NS_OPT_IN: &str = "urn:cusax:phone-activity:0";

/// The server's item while a user is on the phone.
pub(crate) fn on_the_phone() -> Item {
    let mut talking = Element::bare("talking", NS);
    talking.append_child(Element::bare("on_the_phone", NS));
    let mut payload = Element::bare("activity", NS);
    payload.append_child(talking);
    Item {
        id: "current".to_owned(),
        payload,
    }
}

/// §2.2 "stop command": an empty activity.
fn stopped() -> Item {
    Item {
        id: "current".to_owned(),
        payload: Element::bare("activity", NS),
    }
}

/// Whether a stored private-XML fragment switches the publication on.
pub fn opt_in_from(fragment: &str) -> bool {
    let wrapped = format!("<query xmlns='{}'>{fragment}</query>", super::private::NS);
    Element::from_str(&wrapped).is_ok_and(|q| {
        q.children().any(|c| {
            c.is("phone-activity", NS_OPT_IN) && matches!(c.attr("publish"), Some("true" | "1"))
        })
    })
}

async fn opted_in(svc: &XmppService, account: &AccountId) -> bool {
    match svc.store().private_xml(account, NS_OPT_IN).await {
        Ok(Some(fragment)) => opt_in_from(&fragment),
        _ => false,
    }
}

/// The account started its first call (`true`) or ended its last one (`false`).
pub(crate) async fn set_in_call(svc: &XmppService, account: &AccountId, in_call: bool) {
    let changed = pep::state(svc).with_owner(&account.to_string(), |o| {
        std::mem::replace(&mut o.in_call, in_call) != in_call
    });
    if changed {
        refresh(svc, account).await;
    }
}

/// Shows or withdraws "on the phone" to match the call state and the user's setting.
pub(crate) async fn refresh(svc: &XmppService, account: &AccountId) {
    let bare = account.to_string();
    let in_call = pep::state(svc).with_owner(&bare, |o| o.in_call);
    let show = in_call && opted_in(svc, account).await;
    let next = pep::state(svc).with_owner(&bare, |o| {
        if o.phone_shown == show {
            return None;
        }
        o.phone_shown = show;
        Some(if show {
            on_the_phone()
        } else {
            o.published.get(NS).cloned().unwrap_or_else(stopped)
        })
    });
    if let Some(item) = next {
        tracing::debug!(account = %account, on_the_phone = show, "user activity");
        pep::broadcast(svc, account, NS, &item).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_in_needs_publish_true() {
        assert!(opt_in_from(
            "<phone-activity xmlns='urn:cusax:phone-activity:0' publish='true'/>"
        ));
        assert!(opt_in_from(
            "<phone-activity xmlns='urn:cusax:phone-activity:0' publish='1'/>"
        ));
        assert!(!opt_in_from(
            "<phone-activity xmlns='urn:cusax:phone-activity:0' publish='false'/>"
        ));
        assert!(!opt_in_from(
            "<phone-activity xmlns='urn:cusax:phone-activity:0'/>"
        ));
        assert!(!opt_in_from(
            "<phone-activity xmlns='urn:other' publish='true'/>"
        ));
        assert!(!opt_in_from("<broken"));
    }
}
