//! XEP-0115: Entity Capabilities — the `<c xmlns='http://jabber.org/protocol/caps'/>` of a
//! presence.

use super::{PayloadError, set_attr};
use minidom::Element;

/// The entity capabilities namespace.
pub const NS: &str = "http://jabber.org/protocol/caps";

/// A capabilities announcement (§4): `node`, `ver` and, outside the legacy format, `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityCaps {
    /// The software's URI (`node`).
    pub node: String,
    /// The verification string (`ver`), not checked here.
    pub ver: String,
    /// The hash function (`hash`, e.g. `sha-1`); `None` in the legacy format (§8.3).
    pub hash: Option<String>,
}

impl EntityCaps {
    /// The node a disco#info question about these capabilities names (§6.2: `node#ver`).
    pub fn disco_node(&self) -> String {
        format!("{}#{}", self.node, self.ver)
    }
}

impl TryFrom<&Element> for EntityCaps {
    type Error = PayloadError;

    /// Another element, or one without `node` or `ver`, is `Unexpected`.
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if !el.is("c", NS) {
            return Err(PayloadError::Unexpected);
        }
        let attr = |n: &str| el.attr(n).map(str::to_owned);
        Ok(Self {
            node: attr("node").ok_or(PayloadError::Unexpected)?,
            ver: attr("ver").ok_or(PayloadError::Unexpected)?,
            hash: attr("hash"),
        })
    }
}

impl From<&EntityCaps> for Element {
    fn from(c: &EntityCaps) -> Element {
        let mut el = Element::bare("c", NS);
        if let Some(h) = &c.hash {
            set_attr(&mut el, "hash", h.as_str());
        }
        set_attr(&mut el, "node", c.node.as_str());
        set_attr(&mut el, "ver", c.ver.as_str());
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<EntityCaps, PayloadError> {
        EntityCaps::try_from(&s.parse::<Element>().expect("valid test XML"))
    }

    #[test]
    fn caps_parse_and_round_trip() {
        let c = parse(
            "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
             node='https://slixmpp.dev' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>",
        )
        .expect("parses");
        assert_eq!(c.hash.as_deref(), Some("sha-1"));
        assert_eq!(
            c.disco_node(),
            "https://slixmpp.dev#QgayPKawpkPSDYmwT/WM94uAlu0="
        );
        assert_eq!(EntityCaps::try_from(&Element::from(&c)), Ok(c));
        let legacy =
            parse("<c xmlns='http://jabber.org/protocol/caps' node='n' ver='1.0'/>").expect("ok");
        assert_eq!(legacy.hash, None);
        assert_eq!(Element::from(&legacy).attr("hash"), None);
    }

    #[test]
    fn caps_without_node_or_ver_are_rejected() {
        for bad in [
            "<c xmlns='http://jabber.org/protocol/caps' ver='v'/>",
            "<c xmlns='http://jabber.org/protocol/caps' node='n'/>",
            "<c xmlns='urn:other' node='n' ver='v'/>",
        ] {
            assert_eq!(parse(bad), Err(PayloadError::Unexpected), "{bad}");
        }
    }
}
