//! Typed payloads of the XEPs the server answers itself: each parses from the request's
//! payload element (`TryFrom<&Element>`) and builds the answer's (`From<…> for Element`), so
//! the handlers in `cusax-xmpp` do not pick strings out of elements.

pub mod blocking;
pub mod caps;
pub mod carbons;
pub mod disco;
pub mod ping;
pub mod private;
pub mod register;
pub mod roster;
pub mod vcard;
pub mod version;

use minidom::Element;

/// Why a payload is not the one expected, with the stanza error it deserves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Another element or namespace (`bad-request`).
    #[error("unexpected payload element")]
    Unexpected,
    /// A JID attribute that is missing or not a JID (`jid-malformed`).
    #[error("malformed JID in payload")]
    JidMalformed,
    /// Well-formed but what the protocol refuses, e.g. an empty query (`not-acceptable`).
    #[error("payload not acceptable")]
    NotAcceptable,
}

/// Sets an unqualified attribute (names here are constants).
pub(crate) fn set_attr(el: &mut Element, name: &str, value: impl Into<String>) {
    if let Ok(n) = rxml::NcName::try_from(name) {
        el.set_attr(rxml::Namespace::NONE, n, value.into());
    }
}

/// An element with text content.
pub(crate) fn text_el(name: &str, ns: &str, text: &str) -> Element {
    let mut el = Element::bare(name, ns);
    el.append_text(text.to_owned());
    el
}
