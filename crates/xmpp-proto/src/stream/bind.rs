//! RFC 6120 §7: resource binding requests and replies.

use base64::Engine as _;
use minidom::Element;

use crate::ns;
use crate::stanza::{StanzaError, StanzaErrorCondition};
use crate::xml::{set_attr, text_el};

/// A refused bind request: `Some((iq id, condition))` to answer, `None` if not a bind request.
pub(crate) type BindReject = Option<(String, StanzaErrorCondition)>;

/// Parses a bind request: `Ok((iq id, resourceprep'd resource if the client chose one))`;
/// `Err(Some((id, condition)))` to answer with an IQ error; `Err(None)` if it is no bind request.
pub(crate) fn parse_request(el: &Element) -> Result<(String, Option<String>), BindReject> {
    let id = el.attr("id").ok_or(None)?.to_owned();
    let bind = el.get_child("bind", ns::BIND).ok_or(None)?;
    if el.attr("type") != Some("set") {
        return Err(Some((id, StanzaErrorCondition::BadRequest)));
    }
    let resource = bind.get_child("resource", ns::BIND).map(Element::text);
    match resource.as_deref().map(str::trim) {
        None | Some("") => Ok((id, None)),
        Some(r) => match r.parse::<jid::ResourcePart>() {
            Ok(part) => Ok((id, Some(part.into_inner()))),
            Err(_) => Err(Some((id, StanzaErrorCondition::BadRequest))),
        },
    }
}

/// A random server-generated resource.
pub fn generate_resource() -> String {
    let mut raw = [0u8; 9];
    rand::fill(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Builds the full JID, validating the final resource.
pub(crate) fn full_jid(
    user: jid::NodePart,
    domain: jid::DomainPart,
    resource: &str,
) -> Result<jid::FullJid, StanzaErrorCondition> {
    let resource = resource
        .parse::<jid::ResourcePart>()
        .map_err(|_| StanzaErrorCondition::BadRequest)?;
    Ok(jid::FullJid::from_parts(Some(&user), &domain, &resource))
}

/// `<iq type='result'><bind><jid>…</jid></bind></iq>`.
pub(crate) fn result(id: &str, full: &jid::FullJid) -> Element {
    let mut bind = Element::bare("bind", ns::BIND);
    bind.append_child(text_el("jid", ns::BIND, full.as_str()));
    let mut iq = Element::bare("iq", ns::JABBER_CLIENT);
    set_attr(&mut iq, "type", "result");
    set_attr(&mut iq, "id", id);
    iq.append_child(bind);
    iq
}

/// An IQ error reply for a bind request.
pub(crate) fn error(id: &str, condition: StanzaErrorCondition) -> Element {
    let mut iq = Element::bare("iq", ns::JABBER_CLIENT);
    set_attr(&mut iq, "type", "error");
    set_attr(&mut iq, "id", id);
    iq.append_child(StanzaError::new(condition).to_element(ns::JABBER_CLIENT));
    iq
}

/// A bind request (client side), with an optional resource.
pub(crate) fn request(id: &str, resource: Option<&str>) -> Element {
    let mut bind = Element::bare("bind", ns::BIND);
    if let Some(r) = resource {
        bind.append_child(text_el("resource", ns::BIND, r));
    }
    let mut iq = Element::bare("iq", ns::JABBER_CLIENT);
    set_attr(&mut iq, "type", "set");
    set_attr(&mut iq, "id", id);
    iq.append_child(bind);
    iq
}

/// A legacy session request (client side).
pub(crate) fn session_request(id: &str) -> Element {
    let mut iq = Element::bare("iq", ns::JABBER_CLIENT);
    set_attr(&mut iq, "type", "set");
    set_attr(&mut iq, "id", id);
    iq.append_child(Element::bare("session", ns::SESSION));
    iq
}

/// Whether `el` is a legacy session request; answered with an empty result.
pub(crate) fn is_session_request(el: &Element) -> bool {
    el.is("iq", ns::JABBER_CLIENT)
        && el.attr("type") == Some("set")
        && el.has_child("session", ns::SESSION)
}

/// An empty IQ result.
pub(crate) fn iq_result(id: &str) -> Element {
    let mut iq = Element::bare("iq", ns::JABBER_CLIENT);
    set_attr(&mut iq, "type", "result");
    set_attr(&mut iq, "id", id);
    iq
}
