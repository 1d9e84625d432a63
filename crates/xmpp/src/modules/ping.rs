//! XEP-0199: XMPP Ping — the server answers pings addressed to it.

use super::IqReply;
use minidom::Element;

/// The ping namespace.
pub const NS: &str = "urn:xmpp:ping";

/// Answers `<ping/>` with an empty result.
pub fn handle(_iq: &Element) -> IqReply {
    IqReply::Result(None)
}
