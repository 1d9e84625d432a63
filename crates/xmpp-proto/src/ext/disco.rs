//! XEP-0030: Service Discovery — disco#info and disco#items requests and answers.

use super::{PayloadError, set_attr};
use minidom::Element;

/// disco#info.
pub const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
/// disco#items.
pub const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// A disco#info or disco#items request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoQuery {
    /// `true` for disco#info, `false` for disco#items.
    pub info: bool,
    /// The node asked about, if any (§3.2, §4.2).
    pub node: Option<String>,
}

impl TryFrom<&Element> for DiscoQuery {
    type Error = PayloadError;

    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        let info = match el.ns().as_str() {
            NS_INFO => true,
            NS_ITEMS => false,
            _ => return Err(PayloadError::Unexpected),
        };
        Ok(Self {
            info,
            node: el.attr("node").map(str::to_owned),
        })
    }
}

impl From<&DiscoQuery> for Element {
    /// The request (e.g. the server's question to a client, for XEP-0115).
    fn from(q: &DiscoQuery) -> Element {
        let mut el = Element::bare("query", if q.info { NS_INFO } else { NS_ITEMS });
        if let Some(n) = &q.node {
            set_attr(&mut el, "node", n.as_str());
        }
        el
    }
}

/// A XEP-0030 §3.1 identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `category`, e.g. `server`.
    pub category: String,
    /// `type`, e.g. `im`.
    pub kind: String,
    /// Optional `name`.
    pub name: Option<String>,
}

/// A disco#info answer: identities, then features.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoInfo {
    /// The node, echoed from the request.
    pub node: Option<String>,
    /// Who the entity is.
    pub identities: Vec<Identity>,
    /// The `var`s of what it supports.
    pub features: Vec<String>,
}

impl TryFrom<&Element> for DiscoInfo {
    type Error = PayloadError;

    /// Reads an answer (e.g. a client's, for XEP-0115); children it does not know are skipped.
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if !el.is("query", NS_INFO) {
            return Err(PayloadError::Unexpected);
        }
        let mut info = DiscoInfo {
            node: el.attr("node").map(str::to_owned),
            ..DiscoInfo::default()
        };
        for c in el.children() {
            if c.is("feature", NS_INFO) {
                info.features.extend(c.attr("var").map(str::to_owned));
            } else if c.is("identity", NS_INFO)
                && let (Some(category), Some(kind)) = (c.attr("category"), c.attr("type"))
            {
                info.identities.push(Identity {
                    category: category.to_owned(),
                    kind: kind.to_owned(),
                    name: c.attr("name").map(str::to_owned),
                });
            }
        }
        Ok(info)
    }
}

impl From<DiscoInfo> for Element {
    fn from(info: DiscoInfo) -> Element {
        let mut q = Element::bare("query", NS_INFO);
        if let Some(n) = &info.node {
            set_attr(&mut q, "node", n.as_str());
        }
        for i in &info.identities {
            let mut el = Element::bare("identity", NS_INFO);
            set_attr(&mut el, "category", i.category.as_str());
            set_attr(&mut el, "type", i.kind.as_str());
            if let Some(n) = &i.name {
                set_attr(&mut el, "name", n.as_str());
            }
            q.append_child(el);
        }
        for f in &info.features {
            let mut el = Element::bare("feature", NS_INFO);
            set_attr(&mut el, "var", f.as_str());
            q.append_child(el);
        }
        q
    }
}

/// A disco#items answer with no items (the server hosts none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoItems {
    /// The node, echoed from the request.
    pub node: Option<String>,
}

impl From<DiscoItems> for Element {
    fn from(items: DiscoItems) -> Element {
        let mut q = Element::bare("query", NS_ITEMS);
        if let Some(n) = &items.node {
            set_attr(&mut q, "node", n.as_str());
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_round_trip_keeps_order() {
        let info = DiscoInfo {
            node: Some("urn:test#ver".into()),
            identities: vec![Identity {
                category: "server".into(),
                kind: "im".into(),
                name: Some("cusaxd".into()),
            }],
            features: vec![NS_INFO.into(), "urn:xmpp:ping".into()],
        };
        let el = Element::from(info.clone());
        assert_eq!(DiscoInfo::try_from(&el), Ok(info));
    }

    #[test]
    fn queries_are_info_or_items() {
        let q = DiscoQuery::try_from(&Element::bare("query", NS_ITEMS));
        assert_eq!(
            q,
            Ok(DiscoQuery {
                info: false,
                node: None
            })
        );
        assert!(DiscoQuery::try_from(&Element::bare("query", "urn:other")).is_err());
        let asked = DiscoQuery {
            info: true,
            node: Some("n#v".into()),
        };
        let el = Element::from(&asked);
        assert!(el.is("query", NS_INFO));
        assert_eq!(DiscoQuery::try_from(&el), Ok(asked));
    }
}
