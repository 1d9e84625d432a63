//! XEP-0049: Private XML Storage — `<query xmlns='jabber:iq:private'>` carrying the fragments
//! a client stores or asks for.

use super::PayloadError;
use minidom::Element;

/// The private storage namespace.
pub const NS: &str = "jabber:iq:private";

/// §3 (error conditions): namespaces reserved by the protocol, which cannot be stored.
pub fn reserved(ns: &str) -> bool {
    ns.is_empty()
        || ns.starts_with("jabber:")
        || ns.starts_with("http://jabber.org/")
        || ns == "vcard-temp"
}

/// A private storage query: the fragments of a set or result, or the one element of a get
/// naming the namespace asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateQuery {
    /// The child elements, in document order; never empty, none in a reserved namespace.
    pub fragments: Vec<Element>,
}

impl TryFrom<&Element> for PrivateQuery {
    type Error = PayloadError;

    /// §2: at least one child, else `NotAcceptable`; a reserved namespace is `NotAcceptable`
    /// too (§3). How many a get may name is the server's to check.
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if !el.is("query", NS) {
            return Err(PayloadError::Unexpected);
        }
        let fragments: Vec<Element> = el.children().cloned().collect();
        if fragments.is_empty() || fragments.iter().any(|c| reserved(&c.ns())) {
            return Err(PayloadError::NotAcceptable);
        }
        Ok(Self { fragments })
    }
}

impl From<&PrivateQuery> for Element {
    fn from(q: &PrivateQuery) -> Element {
        let mut out = Element::bare("query", NS);
        for f in &q.fragments {
            out.append_child(f.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PrivateQuery, PayloadError> {
        PrivateQuery::try_from(&s.parse::<Element>().expect("valid test XML"))
    }

    #[test]
    fn fragments_parse_and_round_trip() {
        let q = parse(
            "<query xmlns='jabber:iq:private'><prefs xmlns='exodus:prefs'><d>1</d></prefs>\
             <storage xmlns='storage:bookmarks'/></query>",
        )
        .expect("parses");
        assert_eq!(q.fragments.len(), 2);
        assert!(q.fragments[0].is("prefs", "exodus:prefs"));
        assert_eq!(
            q.fragments[0]
                .get_child("d", "exodus:prefs")
                .map(Element::text),
            Some("1".into())
        );
        assert!(q.fragments[1].is("storage", "storage:bookmarks"));
        assert_eq!(PrivateQuery::try_from(&Element::from(&q)), Ok(q));
    }

    #[test]
    fn empty_reserved_and_other_payloads_are_rejected() {
        assert_eq!(
            parse("<query xmlns='jabber:iq:private'/>"),
            Err(PayloadError::NotAcceptable)
        );
        for ns in [
            "jabber:iq:roster",
            "http://jabber.org/protocol/muc",
            "vcard-temp",
        ] {
            let xml = format!("<query xmlns='jabber:iq:private'><x xmlns='{ns}'/></query>");
            assert_eq!(parse(&xml), Err(PayloadError::NotAcceptable), "{ns}");
        }
        assert_eq!(
            parse("<query xmlns='jabber:iq:register'><x xmlns='a:b'/></query>"),
            Err(PayloadError::Unexpected)
        );
    }
}
