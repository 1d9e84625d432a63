//! RFC 6120 §8: small helpers to read and build stanzas (addresses, IQ replies, errors).

use cusax_xmpp_proto::ns;
use cusax_xmpp_proto::stanza::{StanzaError, StanzaErrorCondition};
use minidom::Element;

/// Sets (or replaces) an unqualified attribute; attribute names here are constants.
pub(crate) fn set_attr(el: &mut Element, name: &str, value: impl Into<String>) {
    if let Ok(n) = rxml::NcName::try_from(name) {
        el.set_attr(rxml::Namespace::NONE, n, value.into());
    }
}

/// Removes an unqualified attribute.
pub(crate) fn remove_attr(el: &mut Element, name: &str) {
    if let Ok(n) = rxml::NcName::try_from(name) {
        el.attrs_mut().remove(&rxml::Namespace::NONE, &n);
    }
}

/// A `jabber:client` stanza with the given name and attributes.
pub(crate) fn stanza(name: &str, attrs: &[(&str, &str)]) -> Element {
    let mut el = Element::bare(name, ns::JABBER_CLIENT);
    for (k, v) in attrs {
        set_attr(&mut el, k, *v);
    }
    el
}

/// The `type` attribute, or the default given.
pub(crate) fn kind<'a>(el: &'a Element, default: &'a str) -> &'a str {
    el.attr("type").unwrap_or(default)
}

/// The IQ result for `iq`, with an optional payload.
pub(crate) fn iq_result(iq: &Element, payload: Option<Element>) -> Element {
    let mut r = Element::bare("iq", ns::JABBER_CLIENT);
    for (attr, src) in [("id", "id"), ("to", "from"), ("from", "to")] {
        if let Some(v) = iq.attr(src) {
            set_attr(&mut r, attr, v);
        }
    }
    set_attr(&mut r, "type", "result");
    if let Some(p) = payload {
        r.append_child(p);
    }
    r
}

/// The error reply to `stanza` with a defined condition (RFC 6120 §8.3).
pub(crate) fn error_reply(stanza: &Element, condition: StanzaErrorCondition) -> Element {
    StanzaError::new(condition).reply_to(stanza)
}

/// Whether a stanza is itself an error (errors are never answered with errors).
pub(crate) fn is_error(el: &Element) -> bool {
    el.attr("type") == Some("error")
}

/// The stanza's payload children (for IQs: the one query element).
pub(crate) fn first_child(el: &Element) -> Option<&Element> {
    el.children().next()
}
