//! RFC 6121 §2: the roster — `<query xmlns='jabber:iq:roster' ver='…'>` with its items.

use super::{PayloadError, set_attr, text_el};
use jid::BareJid;
use minidom::Element;

/// The roster namespace.
pub const NS: &str = "jabber:iq:roster";

/// The `subscription` attribute of an item (§2.1.2.5), with `remove` of a roster set (§2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// Neither direction.
    None,
    /// The user receives the contact's presence.
    To,
    /// The contact receives the user's presence.
    From,
    /// Both directions.
    Both,
    /// A roster set removing the item.
    Remove,
}

impl Subscription {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::To => "to",
            Self::From => "from",
            Self::Both => "both",
            Self::Remove => "remove",
        }
    }

    /// Parses an attribute value; others are `None` (§2.1.2.5: the server ignores them).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "to" => Self::To,
            "from" => Self::From,
            "both" => Self::Both,
            "remove" => Self::Remove,
            _ => return None,
        })
    }
}

/// One `<item/>` (§2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The contact's bare JID (required).
    pub jid: BareJid,
    /// The user's handle for the contact, as sent (an empty one is the client's to mean none).
    pub name: Option<String>,
    /// The subscription state, or `remove`; absent or unknown values are `None`.
    pub subscription: Option<Subscription>,
    /// `ask='subscribe'` (§2.1.2.2); other values are ignored.
    pub ask: bool,
    /// The `<group/>` texts, in document order, as sent.
    pub groups: Vec<String>,
}

impl Item {
    /// An item with the JID only.
    pub fn new(jid: BareJid) -> Self {
        Self {
            jid,
            name: None,
            subscription: None,
            ask: false,
            groups: Vec::new(),
        }
    }
}

impl TryFrom<&Element> for Item {
    type Error = PayloadError;

    /// A missing JID, or one that is not a bare JID, is `JidMalformed`.
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if !el.is("item", NS) {
            return Err(PayloadError::Unexpected);
        }
        let jid = el
            .attr("jid")
            .and_then(|j| BareJid::new(j).ok())
            .ok_or(PayloadError::JidMalformed)?;
        Ok(Self {
            jid,
            name: el.attr("name").map(str::to_owned),
            subscription: el.attr("subscription").and_then(Subscription::parse),
            ask: el.attr("ask") == Some("subscribe"),
            groups: el
                .children()
                .filter(|c| c.is("group", NS))
                .map(Element::text)
                .collect(),
        })
    }
}

impl From<&Item> for Element {
    fn from(item: &Item) -> Element {
        let mut el = Element::bare("item", NS);
        set_attr(&mut el, "jid", item.jid.as_str());
        if let Some(n) = &item.name {
            set_attr(&mut el, "name", n.as_str());
        }
        if let Some(s) = item.subscription {
            set_attr(&mut el, "subscription", s.as_str());
        }
        if item.ask {
            set_attr(&mut el, "ask", "subscribe");
        }
        for g in &item.groups {
            el.append_child(text_el("group", NS, g));
        }
        el
    }
}

/// A roster query: a get (with the version the client has), a set, a push or a result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterQuery {
    /// `ver` (§2.6): the version the client has, or the one pushed or returned.
    pub ver: Option<String>,
    /// The items (none in a get; exactly one in a set or push, checked by the server).
    pub items: Vec<Item>,
}

impl TryFrom<&Element> for RosterQuery {
    type Error = PayloadError;

    /// Children other than items are skipped; any bad item rejects the query.
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if !el.is("query", NS) {
            return Err(PayloadError::Unexpected);
        }
        Ok(Self {
            ver: el.attr("ver").map(str::to_owned),
            items: el
                .children()
                .filter(|c| c.is("item", NS))
                .map(Item::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl From<&RosterQuery> for Element {
    fn from(q: &RosterQuery) -> Element {
        let mut out = Element::bare("query", NS);
        if let Some(v) = &q.ver {
            set_attr(&mut out, "ver", v.as_str());
        }
        for i in &q.items {
            out.append_child(Element::from(i));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RosterQuery, PayloadError> {
        RosterQuery::try_from(&s.parse::<Element>().expect("valid test XML"))
    }

    #[test]
    fn set_parses_and_round_trips() {
        let q = parse(
            "<query xmlns='jabber:iq:roster' ver='7'><item jid='b@x' name='Bee' \
             subscription='both' ask='subscribe'><group>Work</group><group>A</group></item>\
             <other xmlns='urn:x'/></query>",
        )
        .expect("parses");
        let item = Item {
            jid: BareJid::new("b@x").expect("jid"),
            name: Some("Bee".into()),
            subscription: Some(Subscription::Both),
            ask: true,
            groups: vec!["Work".into(), "A".into()],
        };
        assert_eq!(
            q,
            RosterQuery {
                ver: Some("7".into()),
                items: vec![item]
            }
        );
        let el = Element::from(&q);
        assert_eq!(el.attr("ver"), Some("7"));
        assert_eq!(RosterQuery::try_from(&el), Ok(q));
    }

    #[test]
    fn get_and_remove_and_unknown_values() {
        assert_eq!(
            parse("<query xmlns='jabber:iq:roster'/>"),
            Ok(RosterQuery::default())
        );
        let q = parse(
            "<query xmlns='jabber:iq:roster'><item jid='c@x' subscription='remove'/>\
             <item jid='d@x' subscription='weird' ask='maybe'/></query>",
        )
        .expect("parses");
        assert_eq!(q.items[0].subscription, Some(Subscription::Remove));
        assert_eq!(q.items[1].subscription, None);
        assert!(!q.items[1].ask);
        let bare = Element::from(&Item::new(BareJid::new("e@x").expect("jid")));
        assert_eq!(bare.attr("subscription"), None);
        assert_eq!(bare.attr("ask"), None);
        assert_eq!(bare.attr("name"), None);
    }

    #[test]
    fn malformed_items_and_other_payloads_are_rejected() {
        for bad in [
            "<query xmlns='jabber:iq:roster'><item/></query>",
            "<query xmlns='jabber:iq:roster'><item jid='@@'/></query>",
            "<query xmlns='jabber:iq:roster'><item jid='a@x/res'/></query>",
        ] {
            assert_eq!(parse(bad), Err(PayloadError::JidMalformed), "{bad}");
        }
        assert_eq!(
            parse("<query xmlns='jabber:iq:private'/>"),
            Err(PayloadError::Unexpected)
        );
        assert_eq!(
            parse("<item xmlns='jabber:iq:roster' jid='a@x'/>"),
            Err(PayloadError::Unexpected)
        );
    }
}
