//! XEP-0054: vcard-temp — the `<vCard xmlns='vcard-temp'>` element as the server reads it:
//! its fields kept as they are, and the `<TEL>` fields with their `<NUMBER>`, which is where
//! the server pins the account's SIP addresses.

use super::{PayloadError, text_el};
use minidom::Element;

/// The vcard-temp namespace.
pub const NS: &str = "vcard-temp";

/// A vCard: its fields (child elements) in document order, none interpreted but `TEL`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VCard {
    /// The child elements.
    pub fields: Vec<Element>,
}

impl VCard {
    /// The fields that are telephone entries with a number, with that entry.
    pub fn tels(&self) -> impl Iterator<Item = (&Element, Tel)> {
        self.fields
            .iter()
            .filter_map(|f| Tel::try_from(f).ok().map(|t| (f, t)))
    }
}

impl TryFrom<&Element> for VCard {
    type Error = PayloadError;

    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if !el.is("vCard", NS) {
            return Err(PayloadError::Unexpected);
        }
        Ok(Self {
            fields: el.children().cloned().collect(),
        })
    }
}

impl From<&VCard> for Element {
    fn from(v: &VCard) -> Element {
        let mut out = Element::bare("vCard", NS);
        for f in &v.fields {
            out.append_child(f.clone());
        }
        out
    }
}

/// A `<TEL>` entry: the `VOICE` and `VIDEO` type flags and the `NUMBER` (other flags are
/// not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tel {
    /// `<VOICE/>`.
    pub voice: bool,
    /// `<VIDEO/>`.
    pub video: bool,
    /// The `<NUMBER>` text, trimmed (a telephone number or a URI such as `sip:…`).
    pub number: String,
}

impl TryFrom<&Element> for Tel {
    type Error = PayloadError;

    /// Another element, or a TEL without NUMBER, is `Unexpected`.
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if !el.is("TEL", NS) {
            return Err(PayloadError::Unexpected);
        }
        let number = el.get_child("NUMBER", NS).ok_or(PayloadError::Unexpected)?;
        Ok(Self {
            voice: el.get_child("VOICE", NS).is_some(),
            video: el.get_child("VIDEO", NS).is_some(),
            number: number.text().trim().to_owned(),
        })
    }
}

impl From<&Tel> for Element {
    fn from(t: &Tel) -> Element {
        let mut tel = Element::bare("TEL", NS);
        if t.voice {
            tel.append_child(Element::bare("VOICE", NS));
        }
        if t.video {
            tel.append_child(Element::bare("VIDEO", NS));
        }
        tel.append_child(text_el("NUMBER", NS, &t.number));
        tel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<VCard, PayloadError> {
        VCard::try_from(&s.parse::<Element>().expect("valid test XML"))
    }

    #[test]
    fn fields_and_tels_parse_and_round_trip() {
        let v = parse(
            "<vCard xmlns='vcard-temp'><FN>Alice</FN>\
             <TEL><HOME/><VOICE/><NUMBER> +4930123 </NUMBER></TEL>\
             <TEL><VOICE/></TEL></vCard>",
        )
        .expect("parses");
        assert_eq!(v.fields.len(), 3);
        let tels: Vec<Tel> = v.tels().map(|(_, t)| t).collect();
        assert_eq!(
            tels,
            [Tel {
                voice: true,
                video: false,
                number: "+4930123".into()
            }]
        );
        assert_eq!(VCard::try_from(&Element::from(&v)), Ok(v));
        let pinned = Tel {
            voice: true,
            video: true,
            number: "sip:alice@example.com".into(),
        };
        let el = Element::from(&pinned);
        let names: Vec<&str> = el.children().map(Element::name).collect();
        assert_eq!(names, ["VOICE", "VIDEO", "NUMBER"]);
        assert_eq!(Tel::try_from(&el), Ok(pinned));
    }

    #[test]
    fn other_payloads_and_tels_without_number_are_rejected() {
        assert_eq!(parse("<vCard xmlns='vcard-temp'/>"), Ok(VCard::default()));
        assert_eq!(
            parse("<vcard xmlns='vcard-temp'/>"),
            Err(PayloadError::Unexpected)
        );
        assert_eq!(
            parse("<vCard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/>"),
            Err(PayloadError::Unexpected)
        );
        let no_number = "<TEL xmlns='vcard-temp'><VOICE/></TEL>"
            .parse::<Element>()
            .expect("valid test XML");
        assert_eq!(Tel::try_from(&no_number), Err(PayloadError::Unexpected));
    }
}
