//! XEP-0199: XMPP Ping — `<ping xmlns='urn:xmpp:ping'/>`.

use super::PayloadError;
use minidom::Element;

/// The ping namespace.
pub const NS: &str = "urn:xmpp:ping";

/// A ping request (the answer is an empty result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping;

impl TryFrom<&Element> for Ping {
    type Error = PayloadError;

    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if el.is("ping", NS) {
            Ok(Ping)
        } else {
            Err(PayloadError::Unexpected)
        }
    }
}

impl From<Ping> for Element {
    fn from(_: Ping) -> Element {
        Element::bare("ping", NS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let el = Element::from(Ping);
        assert_eq!(Ping::try_from(&el), Ok(Ping));
        assert!(Ping::try_from(&Element::bare("pong", NS)).is_err());
    }
}
