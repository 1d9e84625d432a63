//! RFC 6120 §4.3.2 and XEP-0440: building and reading `<stream:features/>`.

use minidom::Element;

use crate::ns;
use crate::sasl::{ChannelBindingKind, Mechanism};
use crate::xml::{set_attr, text_el};

/// What a server offers in one `<stream:features/>` element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// STARTTLS offered; `Some(true)` when required.
    pub starttls: Option<bool>,
    /// SASL mechanisms offered, in the server's order.
    pub mechanisms: Vec<Mechanism>,
    /// Unknown mechanism names the server also offered.
    pub other_mechanisms: Vec<String>,
    /// XEP-0440 channel-binding types the server supports.
    pub channel_bindings: Vec<ChannelBindingKind>,
    /// Resource binding offered.
    pub bind: bool,
    /// Legacy session offered; `Some(true)` when marked `<optional/>`.
    pub session: Option<bool>,
    /// XEP-0352 §3 Client State Indication offered (after authentication).
    pub csi: bool,
}

impl Features {
    /// The `<stream:features/>` element.
    pub fn to_element(&self) -> Element {
        let mut f = Element::bare("features", ns::STREAM);
        if let Some(required) = self.starttls {
            let mut tls = Element::bare("starttls", ns::TLS);
            if required {
                tls.append_child(Element::bare("required", ns::TLS));
            }
            f.append_child(tls);
        }
        if !self.mechanisms.is_empty() {
            let mut mechs = Element::bare("mechanisms", ns::SASL);
            for m in &self.mechanisms {
                mechs.append_child(text_el("mechanism", ns::SASL, m.name()));
            }
            f.append_child(mechs);
            if !self.channel_bindings.is_empty() {
                let mut cb = Element::bare("sasl-channel-binding", ns::SASL_CB);
                for k in &self.channel_bindings {
                    let mut t = Element::bare("channel-binding", ns::SASL_CB);
                    set_attr(&mut t, "type", k.name());
                    cb.append_child(t);
                }
                f.append_child(cb);
            }
        }
        if self.bind {
            f.append_child(Element::bare("bind", ns::BIND));
        }
        if let Some(optional) = self.session {
            let mut s = Element::bare("session", ns::SESSION);
            if optional {
                s.append_child(Element::bare("optional", ns::SESSION));
            }
            f.append_child(s);
        }
        if self.csi {
            f.append_child(Element::bare("csi", ns::CSI));
        }
        f
    }

    /// Reads a received `<stream:features/>` element; unknown features are ignored.
    pub fn from_element(el: &Element) -> Option<Features> {
        if el.name() != "features" || el.ns() != ns::STREAM {
            return None;
        }
        let mut f = Features::default();
        for child in el.children() {
            let child_ns = child.ns();
            match (child_ns.as_str(), child.name()) {
                (ns::TLS, "starttls") => {
                    f.starttls = Some(child.has_child("required", ns::TLS));
                }
                (ns::SASL, "mechanisms") => {
                    for m in child.children().filter(|m| m.is("mechanism", ns::SASL)) {
                        let name = m.text();
                        match Mechanism::from_name(name.trim()) {
                            Some(mech) => f.mechanisms.push(mech),
                            None => f.other_mechanisms.push(name),
                        }
                    }
                }
                (ns::SASL_CB, "sasl-channel-binding") => {
                    f.channel_bindings = child
                        .children()
                        .filter_map(|c| c.attr("type"))
                        .filter_map(ChannelBindingKind::from_name)
                        .collect();
                }
                (ns::BIND, "bind") => f.bind = true,
                (ns::SESSION, "session") => {
                    f.session = Some(child.has_child("optional", ns::SESSION));
                }
                (ns::CSI, "csi") => f.csi = true,
                _ => {}
            }
        }
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csi_is_written_after_bind_and_read_back() {
        let f = Features {
            bind: true,
            csi: true,
            ..Features::default()
        };
        let el = f.to_element();
        let names: Vec<_> = el.children().map(|c| (c.name(), c.ns())).collect();
        assert_eq!(
            names,
            [("bind", ns::BIND.to_owned()), ("csi", ns::CSI.to_owned())]
        );
        assert_eq!(Features::from_element(&el), Some(f));
        let without = Features {
            bind: true,
            ..Features::default()
        };
        assert!(!without.to_element().has_child("csi", ns::CSI));
    }
}
