//! XEP-0191: Blocking Command — block list request, block, unblock and the block list.

use super::{PayloadError, set_attr};
use jid::Jid;
use minidom::Element;

/// The blocking namespace.
pub const NS: &str = "urn:xmpp:blocking";
/// Application error namespace for stanzas sent to a blocked JID (§3.3).
pub const NS_ERRORS: &str = "urn:xmpp:blocking:errors";

/// A blocking command (the payload of a get or set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockingCommand {
    /// `<blocklist/>`: the list, or (in a result) its items.
    Blocklist(Vec<Jid>),
    /// `<block>`: JIDs to add (§3.3; at least one, checked by the server).
    Block(Vec<Jid>),
    /// `<unblock>`: JIDs to remove, none meaning all (§3.4).
    Unblock(Vec<Jid>),
}

impl BlockingCommand {
    /// The element name of the command.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Blocklist(_) => "blocklist",
            Self::Block(_) => "block",
            Self::Unblock(_) => "unblock",
        }
    }

    /// The JIDs it names.
    pub fn jids(&self) -> &[Jid] {
        match self {
            Self::Blocklist(j) | Self::Block(j) | Self::Unblock(j) => j,
        }
    }
}

fn items(el: &Element) -> Result<Vec<Jid>, PayloadError> {
    el.children()
        .filter(|c| c.is("item", NS))
        .map(|c| {
            c.attr("jid")
                .and_then(|j| Jid::new(j).ok())
                .ok_or(PayloadError::JidMalformed)
        })
        .collect()
}

impl TryFrom<&Element> for BlockingCommand {
    type Error = PayloadError;

    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if el.ns() != NS {
            return Err(PayloadError::Unexpected);
        }
        match el.name() {
            "blocklist" => Ok(Self::Blocklist(items(el)?)),
            "block" => Ok(Self::Block(items(el)?)),
            "unblock" => Ok(Self::Unblock(items(el)?)),
            _ => Err(PayloadError::Unexpected),
        }
    }
}

impl From<&BlockingCommand> for Element {
    fn from(cmd: &BlockingCommand) -> Element {
        let mut out = Element::bare(cmd.name(), NS);
        for j in cmd.jids() {
            let mut i = Element::bare("item", NS);
            set_attr(&mut i, "jid", j.as_str());
            out.append_child(i);
        }
        out
    }
}

/// The `<blocked/>` condition of an error for a stanza to a JID the sender blocks.
pub fn blocked_condition() -> Element {
    Element::bare("blocked", NS_ERRORS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<BlockingCommand, PayloadError> {
        BlockingCommand::try_from(&s.parse::<Element>().expect("valid test XML"))
    }

    #[test]
    fn commands_parse_and_bad_jids_are_malformed() {
        let cmd =
            parse("<block xmlns='urn:xmpp:blocking'><item jid='a@x/r'/><item jid='y'/></block>");
        let jids = vec![Jid::new("a@x/r").expect("jid"), Jid::new("y").expect("jid")];
        assert_eq!(cmd, Ok(BlockingCommand::Block(jids)));
        let again = Element::from(cmd.as_ref().expect("parsed"));
        assert_eq!(BlockingCommand::try_from(&again), cmd);
        assert_eq!(
            parse("<unblock xmlns='urn:xmpp:blocking'/>"),
            Ok(BlockingCommand::Unblock(vec![]))
        );
        assert_eq!(
            parse("<block xmlns='urn:xmpp:blocking'><item/></block>"),
            Err(PayloadError::JidMalformed)
        );
        assert_eq!(
            parse("<block xmlns='urn:xmpp:blocking'><item jid='@@'/></block>"),
            Err(PayloadError::JidMalformed)
        );
        assert_eq!(
            parse("<other xmlns='urn:xmpp:blocking'/>"),
            Err(PayloadError::Unexpected)
        );
    }
}
