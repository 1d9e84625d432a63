//! XEP-0152 (Reachability Addresses) §4.2 over PEP, for RFC 7081 §3.3: contacts learn where a
//! user is reached by SIP without fetching the vCard.
//!
//! The node `urn:xmpp:reach:0` of every account is the server's: it always holds the
//! account's SIP address of record and then its operator-assigned aliases, as the same SIP
//! URIs the vCard pins (numbers as `sip:+4930…@domain;user=phone`). Contacts get it when they
//! come online or subscribe, can fetch it at any time, and get the new item when an
//! operator changes the aliases.

use super::pep::{self, Item};
use crate::service::XmppService;
use crate::stanza::set_attr;
use cusax_account::AccountId;
use minidom::Element;

/// The reachability namespace (also the PEP node).
pub const NS: &str = "urn:xmpp:reach:0";

/// `<reach/>` with one `<addr uri=…/>` per address, in order.
pub fn payload<'a>(uris: impl IntoIterator<Item = &'a str>) -> Element {
    let mut reach = Element::bare("reach", NS);
    for uri in uris {
        let mut addr = Element::bare("addr", NS);
        set_attr(&mut addr, "uri", uri);
        reach.append_child(addr);
    }
    reach
}

/// The item of `owner`'s node: the AOR, then the aliases (`None` if the store fails).
pub(crate) async fn item(svc: &XmppService, owner: &AccountId) -> Option<Item> {
    let aliases = svc.store().aliases(owner).await.ok()?;
    let domain = owner.domain().as_str();
    let mut uris = vec![owner.aor().to_string()];
    uris.extend(aliases.iter().map(|a| a.sip_uri(domain)));
    Some(Item {
        id: "current".to_owned(),
        payload: payload(uris.iter().map(String::as_str)),
    })
}

/// The aliases of `owner` changed: subscribers get the new addresses.
pub(crate) async fn republish(svc: &XmppService, owner: &AccountId) {
    if let Some(item) = item(svc, owner).await {
        pep::broadcast(svc, owner, NS, &item).await;
    }
}
