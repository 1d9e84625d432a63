//! XEP-0280 §4–§7: Message Carbons (`urn:xmpp:carbons:2`) — enable/disable requests, the
//! §6.1 eligibility rules with the §7 `<private/>` and XEP-0334 `<no-copy/>` hints, and the
//! XEP-0297 forwarded copies (`<sent/>`, `<received/>`).

use super::{PayloadError, set_attr};
use minidom::Element;

/// The carbons namespace (version 2).
pub const NS: &str = "urn:xmpp:carbons:2";
/// XEP-0297 Stanza Forwarding.
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
/// XEP-0334 Message Processing Hints.
pub const NS_HINTS: &str = "urn:xmpp:hints";
/// XEP-0184 receipts, XEP-0085 chat states, XEP-0333 chat markers: IM payloads (§6.1).
const IM_PAYLOADS: [&str; 3] = [
    "urn:xmpp:receipts",
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:chat-markers:0",
];
/// XEP-0249 direct MUC invitations (§6.1.1: carbon-copied).
const NS_CONFERENCE: &str = "jabber:x:conference";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";

/// A carbons request (§4, §5): the payload of an IQ set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarbonsRequest {
    /// `<enable/>`.
    Enable,
    /// `<disable/>`.
    Disable,
}

impl TryFrom<&Element> for CarbonsRequest {
    type Error = PayloadError;

    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if el.ns() != NS {
            return Err(PayloadError::Unexpected);
        }
        match el.name() {
            "enable" => Ok(Self::Enable),
            "disable" => Ok(Self::Disable),
            _ => Err(PayloadError::Unexpected),
        }
    }
}

impl From<CarbonsRequest> for Element {
    fn from(r: CarbonsRequest) -> Element {
        let name = match r {
            CarbonsRequest::Enable => "enable",
            CarbonsRequest::Disable => "disable",
        };
        Element::bare(name, NS)
    }
}

/// Which way a forwarded copy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// §6.4: a message one of the user's resources sent.
    Sent,
    /// §6.3: a message the user received.
    Received,
}

/// §7: whether the sender asked that the message not be copied (`<private/>`, or the
/// XEP-0334 `<no-copy/>` hint).
pub fn is_private(message: &Element) -> bool {
    message.has_child("private", NS) || message.has_child("no-copy", NS_HINTS)
}

/// §6.1: whether a message is eligible for carbons delivery. Error messages are not copied
/// (the server does not track which messages they answer), nor groupchat ones (§6.1.1).
pub fn is_eligible(message: &Element) -> bool {
    if message.name() != "message" || is_private(message) {
        return false;
    }
    // A copy is never copied again.
    if message.has_child("sent", NS) || message.has_child("received", NS) {
        return false;
    }
    match message.attr("type").unwrap_or("normal") {
        "chat" => true,
        "groupchat" | "error" => false,
        kind => {
            (kind == "normal" && message.children().any(|c| c.name() == "body"))
                || message
                    .children()
                    .any(|c| IM_PAYLOADS.contains(&c.ns().as_str()))
                || message.has_child("x", NS_CONFERENCE)
                || message
                    .get_child("x", NS_MUC_USER)
                    .is_some_and(|x| x.has_child("invite", NS_MUC_USER))
        }
    }
}

/// The XEP-0297 wrapped copy of `original` for the user's resource `to` (§6.3, §6.4):
/// `from` the user's bare JID, the original's `type` kept.
pub fn wrap(direction: Direction, bare: &str, to: &str, original: &Element) -> Element {
    let mut copy = Element::bare("message", crate::ns::JABBER_CLIENT);
    set_attr(&mut copy, "from", bare);
    set_attr(&mut copy, "to", to);
    if let Some(t) = original.attr("type") {
        set_attr(&mut copy, "type", t);
    }
    let mut forwarded = Element::bare("forwarded", NS_FORWARD);
    forwarded.append_child(original.clone());
    let name = match direction {
        Direction::Sent => "sent",
        Direction::Received => "received",
    };
    let mut wrapper = Element::bare(name, NS);
    wrapper.append_child(forwarded);
    copy.append_child(wrapper);
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Element {
        s.parse().expect("test XML")
    }

    #[test]
    fn requests_round_trip() {
        for r in [CarbonsRequest::Enable, CarbonsRequest::Disable] {
            assert_eq!(CarbonsRequest::try_from(&Element::from(r)), Ok(r));
        }
        assert!(CarbonsRequest::try_from(&Element::bare("enable", "urn:xmpp:carbons:1")).is_err());
        assert!(CarbonsRequest::try_from(&Element::bare("private", NS)).is_err());
    }

    #[test]
    fn eligibility_follows_section_6_1_and_the_hints() {
        let c = "xmlns='jabber:client'";
        for (xml, want) in [
            (format!("<message {c} type='chat'/>"), true),
            (format!("<message {c}><body>hi</body></message>"), true),
            (format!("<message {c} type='normal'/>"), false),
            (
                format!(
                    "<message {c}><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
                ),
                true,
            ),
            (
                format!("<message {c} type='headline'><body>x</body></message>"),
                false,
            ),
            (
                format!("<message {c} type='groupchat'><body>x</body></message>"),
                false,
            ),
            (
                format!("<message {c} type='error'><body>x</body></message>"),
                false,
            ),
            (
                format!("<message {c} type='chat'><body>x</body><private xmlns='{NS}'/></message>"),
                false,
            ),
            (
                format!("<message {c} type='chat'><no-copy xmlns='{NS_HINTS}'/></message>"),
                false,
            ),
            (
                format!(
                    "<message {c}><x xmlns='{NS_CONFERENCE}' jid='room@muc.example'/></message>"
                ),
                true,
            ),
            (
                format!("<message {c} type='chat'><sent xmlns='{NS}'/></message>"),
                false,
            ),
        ] {
            assert_eq!(is_eligible(&msg(&xml)), want, "{xml}");
        }
    }

    #[test]
    fn a_copy_is_forwarded_from_the_bare_jid() {
        let original = msg(
            "<message xmlns='jabber:client' from='r@x/home' to='j@y/b' type='chat'><body>hi</body></message>",
        );
        let copy = wrap(Direction::Sent, "r@x", "r@x/garden", &original);
        assert_eq!(copy.attr("from"), Some("r@x"));
        assert_eq!(copy.attr("to"), Some("r@x/garden"));
        assert_eq!(copy.attr("type"), Some("chat"));
        let inner = copy
            .get_child("sent", NS)
            .and_then(|s| s.get_child("forwarded", NS_FORWARD))
            .and_then(|f| f.get_child("message", crate::ns::JABBER_CLIENT));
        assert_eq!(inner, Some(&original));
        let received = wrap(Direction::Received, "r@x", "r@x/garden", &original);
        assert!(received.has_child("received", NS));
    }
}
