//! XEP-0092: Software Version — `<query xmlns='jabber:iq:version'/>` and its answer.

use super::{PayloadError, text_el};
use minidom::Element;

/// The software version namespace.
pub const NS: &str = "jabber:iq:version";

/// The answer: name, version and, optionally, the operating system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareVersion {
    /// The software's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The operating system (`None`: not told).
    pub os: Option<String>,
}

impl TryFrom<&Element> for SoftwareVersion {
    type Error = PayloadError;

    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if !el.is("query", NS) {
            return Err(PayloadError::Unexpected);
        }
        let text = |n: &str| el.get_child(n, NS).map(Element::text);
        Ok(Self {
            name: text("name").ok_or(PayloadError::Unexpected)?,
            version: text("version").ok_or(PayloadError::Unexpected)?,
            os: text("os"),
        })
    }
}

impl From<SoftwareVersion> for Element {
    fn from(v: SoftwareVersion) -> Element {
        let mut q = Element::bare("query", NS);
        q.append_child(text_el("name", NS, &v.name));
        q.append_child(text_el("version", NS, &v.version));
        if let Some(os) = &v.os {
            q.append_child(text_el("os", NS, os));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_without_os() {
        let v = SoftwareVersion {
            name: "cusaxd".into(),
            version: "1.0".into(),
            os: None,
        };
        let el = Element::from(v.clone());
        assert!(el.get_child("os", NS).is_none());
        assert_eq!(SoftwareVersion::try_from(&el), Ok(v));
        assert!(SoftwareVersion::try_from(&Element::bare("query", NS)).is_err());
    }
}
