//! XEP-0352 §3–§5: "If the server supports CSI, it advertises it in the stream features after
//! the client has authenticated" — while a client says it is `<inactive/>`, its session holds
//! presence (the latest per sender) and PEP notifications, delivers everything else at once
//! after the held stanzas, and flushes them in order on `<active/>`.

use crate::registry::{Module, Registry};
use minidom::Element;
use std::sync::Arc;

pub use cusax_xmpp_proto::ns::CSI as NS;

/// XEP-0060 §4.3 event notifications (what PEP sends).
const NS_PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// Held stanzas at most; one more flushes them all (a bound on an inactive session's memory).
const HOLD_LIMIT: usize = 128;

/// The CSI module: offers the stream feature (the held stanzas are the session's own).
#[derive(Debug)]
pub struct Csi;

impl Module for Csi {
    fn name(&self) -> &'static str {
        "csi"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.provide(self);
    }
}

/// A client state nonza (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// `<active/>`.
    Active,
    /// `<inactive/>`.
    Inactive,
}

impl ClientState {
    /// The state a top-level element sets, if it is a CSI nonza.
    pub fn from_element(el: &Element) -> Option<Self> {
        if el.ns() != NS {
            return None;
        }
        match el.name() {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// What an inactive session holds back, in arrival order.
#[derive(Debug, Default)]
pub struct Held {
    stanzas: Vec<Element>,
}

/// Whether a stanza can wait while the client is inactive: presence updates (available or
/// unavailable; subscription requests and errors cannot) and PEP notifications without a body.
fn can_wait(el: &Element) -> bool {
    match el.name() {
        "presence" => matches!(el.attr("type"), None | Some("unavailable")),
        "message" => {
            el.has_child("event", NS_PUBSUB_EVENT)
                && !el.children().any(|c| c.name() == "body")
                && el.attr("type") != Some("error")
        }
        _ => false,
    }
}

impl Held {
    /// Takes a stanza routed to the inactive session: `None` when it is held, else what to
    /// send now (the held stanzas, then it).
    pub fn offer(&mut self, el: Element) -> Option<Vec<Element>> {
        if !can_wait(&el) {
            let mut out = std::mem::take(&mut self.stanzas);
            out.push(el);
            return Some(out);
        }
        if el.name() == "presence" {
            // Only the latest presence of each sender is worth sending.
            let from = el.attr("from");
            self.stanzas
                .retain(|h| !(h.name() == "presence" && h.attr("from") == from));
        }
        self.stanzas.push(el);
        if self.stanzas.len() > HOLD_LIMIT {
            return Some(self.flush());
        }
        None
    }

    /// Everything held, in order (on `<active/>`).
    pub fn flush(&mut self) -> Vec<Element> {
        std::mem::take(&mut self.stanzas)
    }

    /// How many stanzas are held.
    pub fn len(&self) -> usize {
        self.stanzas.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.stanzas.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cusax_xmpp_proto::ns;

    fn el(s: &str) -> Element {
        s.parse().expect("test XML")
    }

    fn presence(from: &str, status: &str) -> Element {
        el(&format!(
            "<presence xmlns='jabber:client' from='{from}'><status>{status}</status></presence>"
        ))
    }

    fn status(e: &Element) -> String {
        e.get_child("status", ns::JABBER_CLIENT)
            .map(Element::text)
            .unwrap_or_default()
    }

    #[test]
    fn presence_is_held_latest_per_sender_and_flushed_before_a_message() {
        let mut h = Held::default();
        assert!(h.offer(presence("b@x/1", "one")).is_none());
        assert!(h.offer(presence("c@x/1", "c")).is_none());
        assert!(h.offer(presence("b@x/1", "two")).is_none());
        let pep = el(&format!(
            "<message xmlns='jabber:client' from='b@x'><event xmlns='{NS_PUBSUB_EVENT}'/></message>"
        ));
        assert!(h.offer(pep).is_none());
        assert_eq!(h.len(), 3);
        let out = h
            .offer(el(
                "<message xmlns='jabber:client' type='chat'><body>hi</body></message>",
            ))
            .expect("a message is sent at once");
        let names: Vec<_> = out.iter().map(|e| (e.name(), status(e))).collect();
        assert_eq!(
            names,
            [
                ("presence", "c".to_owned()),
                ("presence", "two".to_owned()),
                ("message", String::new()),
                ("message", String::new()),
            ]
        );
        assert!(out[3].has_child("body", ns::JABBER_CLIENT));
        assert!(h.is_empty());
    }

    #[test]
    fn subscriptions_and_iqs_are_not_held_and_the_hold_is_bounded() {
        let mut h = Held::default();
        let sub = el("<presence xmlns='jabber:client' from='b@x' type='subscribe'/>");
        assert_eq!(h.offer(sub).map(|v| v.len()), Some(1));
        let iq = el("<iq xmlns='jabber:client' type='result' id='1'/>");
        assert_eq!(h.offer(iq).map(|v| v.len()), Some(1));
        for i in 0..HOLD_LIMIT {
            assert!(h.offer(presence(&format!("u{i}@x/r"), "s")).is_none());
        }
        let out = h
            .offer(presence("last@x/r", "s"))
            .expect("flushed at the limit");
        assert_eq!(out.len(), HOLD_LIMIT + 1);
        assert!(h.flush().is_empty());
    }

    #[test]
    fn the_nonzas_are_recognised() {
        let a = el(&format!("<active xmlns='{NS}'/>"));
        let i = el(&format!("<inactive xmlns='{NS}'/>"));
        assert_eq!(ClientState::from_element(&a), Some(ClientState::Active));
        assert_eq!(ClientState::from_element(&i), Some(ClientState::Inactive));
        assert_eq!(
            ClientState::from_element(&el("<active xmlns='jabber:client'/>")),
            None
        );
    }
}
