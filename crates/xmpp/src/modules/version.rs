//! XEP-0092: Software Version of the server.

use super::IqReply;
use crate::stanza::text_el;
use minidom::Element;

/// The software version namespace.
pub const NS: &str = "jabber:iq:version";

/// Answers with the server's name and version (no operating system, to say less).
pub fn handle(_iq: &Element) -> IqReply {
    let mut q = Element::bare("query", NS);
    q.append_child(text_el("name", NS, "cusaxd"));
    q.append_child(text_el("version", NS, env!("CARGO_PKG_VERSION")));
    IqReply::Result(Some(q))
}
