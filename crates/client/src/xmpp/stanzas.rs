//! RFC 6121 §2–§5, XEP-0054, XEP-0030/0115 and XEP-0199 as the client needs them: building
//! the stanzas it sends and reading the ones it receives (pure functions over `minidom`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use minidom::Element;
use serde::Serialize;
use sha1::{Digest as _, Sha1};

use cusax_xmpp_proto::ns;

/// `jabber:iq:roster` (RFC 6121 §2).
pub const ROSTER: &str = "jabber:iq:roster";
/// `vcard-temp` (XEP-0054).
pub const VCARD: &str = "vcard-temp";
/// Service discovery info (XEP-0030).
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// Entity capabilities (XEP-0115).
pub const CAPS: &str = "http://jabber.org/protocol/caps";
/// XMPP ping (XEP-0199).
pub const PING: &str = "urn:xmpp:ping";
/// Delayed delivery (XEP-0203), to mark offline messages.
pub const DELAY: &str = "urn:xmpp:delay";
/// Software version (XEP-0092).
pub const VERSION: &str = "jabber:iq:version";
/// The caps node of this client.
pub const CAPS_NODE: &str = "https://cusax.org/client";

/// The features the client announces in disco#info and caps. RFC 7081 §2 (CL-03/CL-04): calls
/// go over SIP, so no Jingle RTP application or transport is among them.
pub const FEATURES: &[&str] = &[
    DISCO_INFO,
    CAPS,
    PING,
    VERSION,
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:receipts",
];

/// The Jingle namespace; RTP session requests under it are refused (CL-04).
pub const JINGLE: &str = "urn:xmpp:jingle:1";

/// Attribute setting on element builders (minidom takes NCNames; ours are constants).
pub(crate) trait Attr: Sized {
    /// Sets attribute `name` (a constant NCName) to `value`.
    fn a(self, name: &str, value: impl Into<String>) -> Self;
}

impl Attr for minidom::ElementBuilder {
    fn a(self, name: &str, value: impl Into<String>) -> Self {
        match rxml::NcName::try_from(name) {
            Ok(n) => self.attr(n, value.into()),
            Err(_) => self,
        }
    }
}

/// An element in the client namespace.
fn client(name: &str) -> minidom::ElementBuilder {
    Element::builder(name, ns::JABBER_CLIENT)
}

/// `<iq type=.. id=.. [to=..]>` with one child.
pub fn iq(kind: &str, id: &str, to: Option<&str>, child: Option<Element>) -> Element {
    let mut b = client("iq").a("type", kind).a("id", id);
    if let Some(to) = to {
        b = b.a("to", to);
    }
    if let Some(c) = child {
        b = b.append(c);
    }
    b.build()
}

/// The roster request (RFC 6121 §2.1.3).
pub fn roster_get(id: &str) -> Element {
    iq(
        "get",
        id,
        None,
        Some(Element::builder("query", ROSTER).build()),
    )
}

/// A roster set adding or updating an item (RFC 6121 §2.1.5).
pub fn roster_set(id: &str, jid: &str, name: Option<&str>) -> Element {
    let mut item = Element::builder("item", ROSTER).a("jid", jid);
    if let Some(n) = name {
        item = item.a("name", n);
    }
    let q = Element::builder("query", ROSTER)
        .append(item.build())
        .build();
    iq("set", id, None, Some(q))
}

/// A vCard request (XEP-0054 §3.1 own, §3.2 another user's: `to` is their bare JID).
pub fn vcard_get(id: &str, to: Option<&str>) -> Element {
    iq(
        "get",
        id,
        to,
        Some(Element::builder("vCard", VCARD).build()),
    )
}

/// Publishes our vCard (XEP-0054 §3.3): name and TELs. A CUSAX server may pin the TEL that
/// carries our own SIP address (RFC 7081 §3.1); other servers store what we send.
pub fn vcard_set(id: &str, card: &VCard) -> Element {
    let mut v = Element::builder("vCard", VCARD);
    if let Some(n) = &card.full_name {
        v = v.append(Element::builder("FN", VCARD).append(n.as_str()).build());
    }
    if let Some(n) = &card.nickname {
        v = v.append(
            Element::builder("NICKNAME", VCARD)
                .append(n.as_str())
                .build(),
        );
    }
    for t in &card.tels {
        let mut tel = Element::builder("TEL", VCARD);
        for ty in &t.types {
            tel = tel.append(Element::builder(ty.as_str(), VCARD).build());
        }
        tel = tel.append(
            Element::builder("NUMBER", VCARD)
                .append(t.number.as_str())
                .build(),
        );
        v = v.append(tel.build());
    }
    iq("set", id, None, Some(v.build()))
}

/// A chat message (RFC 6121 §5.2).
pub fn chat(to: &str, id: &str, body: &str) -> Element {
    client("message")
        .a("to", to)
        .a("type", "chat")
        .a("id", id)
        .append(client("body").append(body).build())
        .build()
}

/// Our presence availability (RFC 6121 §4.7.2.1 `show`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Show {
    /// Available, no `show`.
    #[default]
    Available,
    /// `chat`.
    Chat,
    /// `away`.
    Away,
    /// `xa`.
    Xa,
    /// `dnd`.
    Dnd,
    /// Unavailable (presence type `unavailable`).
    Offline,
}

impl Show {
    /// The `show` value, if one is sent.
    pub fn as_show(self) -> Option<&'static str> {
        match self {
            Show::Chat => Some("chat"),
            Show::Away => Some("away"),
            Show::Xa => Some("xa"),
            Show::Dnd => Some("dnd"),
            Show::Available | Show::Offline => None,
        }
    }

    /// Parses a `show` value or the CLI words `available`/`offline`.
    pub fn parse(s: &str) -> Option<Show> {
        Some(match s {
            "available" | "online" | "" => Show::Available,
            "chat" => Show::Chat,
            "away" => Show::Away,
            "xa" => Show::Xa,
            "dnd" => Show::Dnd,
            "offline" | "unavailable" => Show::Offline,
            _ => return None,
        })
    }
}

/// What we tell our contacts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OwnPresence {
    /// Availability.
    pub show: Show,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The XEP-0115 §5.1 verification string of our identity and features.
pub fn caps_ver() -> String {
    let mut feats: Vec<&str> = FEATURES.to_vec();
    feats.sort_unstable();
    let mut s = String::from("client/pc//cusax<");
    for f in feats {
        s.push_str(f);
        s.push('<');
    }
    B64.encode(Sha1::digest(s.as_bytes()))
}

/// Our broadcast presence (RFC 6121 §4.2), with XEP-0115 caps.
pub fn presence(p: &OwnPresence, priority: i8) -> Element {
    let mut b = client("presence");
    if p.show == Show::Offline {
        b = b.a("type", "unavailable");
    } else {
        if let Some(s) = p.show.as_show() {
            b = b.append(client("show").append(s).build());
        }
        b = b.append(client("priority").append(priority.to_string()).build());
        b = b.append(
            Element::builder("c", CAPS)
                .a("hash", "sha-1")
                .a("node", CAPS_NODE)
                .a("ver", caps_ver())
                .build(),
        );
    }
    if let Some(st) = &p.status {
        b = b.append(client("status").append(st.as_str()).build());
    }
    b.build()
}

/// A directed subscription presence (`subscribe`, `subscribed`, `unsubscribe`, `unsubscribed`).
pub fn subscription(to: &str, kind: &str) -> Element {
    client("presence").a("to", to).a("type", kind).build()
}

/// The disco#info answer (XEP-0030 §3.1) for our node or the caps node.
pub fn disco_info_result(req: &Element) -> Element {
    let node = req
        .get_child("query", DISCO_INFO)
        .and_then(|q| q.attr("node"))
        .map(str::to_owned);
    let mut q = Element::builder("query", DISCO_INFO);
    if let Some(n) = &node {
        q = q.a("node", n.as_str());
    }
    q = q.append(
        Element::builder("identity", DISCO_INFO)
            .a("category", "client")
            .a("type", "pc")
            .a("name", "cusax")
            .build(),
    );
    for f in FEATURES {
        q = q.append(Element::builder("feature", DISCO_INFO).a("var", *f).build());
    }
    result_to(req, Some(q.build()))
}

/// The software version answer (XEP-0092).
pub fn version_result(req: &Element) -> Element {
    let q = Element::builder("query", VERSION)
        .append(Element::builder("name", VERSION).append("cusax").build())
        .append(
            Element::builder("version", VERSION)
                .append(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .build();
    result_to(req, Some(q))
}

/// An IQ result answering `req`.
pub fn result_to(req: &Element, child: Option<Element>) -> Element {
    let mut b = client("iq")
        .a("type", "result")
        .a("id", req.attr("id").unwrap_or_default());
    if let Some(from) = req.attr("from") {
        b = b.a("to", from);
    }
    if let Some(c) = child {
        b = b.append(c);
    }
    b.build()
}

/// One roster entry (RFC 6121 §2.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterItem {
    /// The contact's bare JID.
    pub jid: String,
    /// The name we gave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `none`, `to`, `from`, `both` or `remove`.
    pub subscription: String,
    /// Whether we asked to subscribe and wait for their answer.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending_out: bool,
    /// Groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// The items of a roster result or push.
pub fn roster_items(query: &Element) -> Vec<RosterItem> {
    query
        .children()
        .filter(|c| c.is("item", ROSTER))
        .filter_map(|c| {
            let jid = c.attr("jid")?;
            Some(RosterItem {
                jid: jid.to_owned(),
                name: c.attr("name").filter(|n| !n.is_empty()).map(str::to_owned),
                subscription: c.attr("subscription").unwrap_or("none").to_owned(),
                pending_out: c.attr("ask") == Some("subscribe"),
                groups: c
                    .children()
                    .filter(|g| g.is("group", ROSTER))
                    .map(Element::text)
                    .collect(),
            })
        })
        .collect()
}

/// One TEL of a vCard (XEP-0054 / RFC 2426 §3.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tel {
    /// The NUMBER: a `sip:`/`tel:` URI or digits.
    pub number: String,
    /// The type flags present (`VOICE`, `VIDEO`, `WORK`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
}

/// What the client reads from a vCard.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VCard {
    /// The formatted name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// The nickname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// Every TEL with a NUMBER.
    pub tels: Vec<Tel>,
}

/// Reads a `<vCard xmlns='vcard-temp'>` (an empty result is an empty vCard).
pub fn parse_vcard(v: &Element) -> VCard {
    let text = |name: &str| {
        v.get_child(name, VCARD)
            .map(|e| e.text().trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let tels = v
        .children()
        .filter(|c| c.is("TEL", VCARD))
        .filter_map(|t| {
            let number = t.get_child("NUMBER", VCARD)?.text().trim().to_owned();
            if number.is_empty() {
                return None;
            }
            let types = t
                .children()
                .filter(|c| c.name() != "NUMBER")
                .map(|c| c.name().to_owned())
                .collect();
            Some(Tel { number, types })
        })
        .collect();
    VCard {
        full_name: text("FN"),
        nickname: text("NICKNAME"),
        tels,
    }
}

/// The bare part of a JID string (`user@domain/res` → `user@domain`).
pub fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().expect("test XML")
    }

    #[test]
    fn caps_ver_follows_xep_0115_and_has_no_jingle() {
        // XEP-0115 §5.2's worked example, computed the same way, pins the algorithm.
        let s = "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<";
        assert_eq!(
            B64.encode(Sha1::digest(s.as_bytes())),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
        assert_eq!(caps_ver().len(), 28);
        assert!(FEATURES.iter().all(|f| !f.contains("jingle")));
    }

    #[test]
    fn disco_info_answer_lists_no_rtp_feature() {
        let req = el(
            "<iq xmlns='jabber:client' type='get' id='d1' from='bob@x/r'><query xmlns='http://jabber.org/protocol/disco#info' node='https://cusax.org/client#abc'/></iq>",
        );
        let r = disco_info_result(&req);
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(r.attr("to"), Some("bob@x/r"));
        let q = r.get_child("query", DISCO_INFO).expect("query");
        assert_eq!(q.attr("node"), Some("https://cusax.org/client#abc"));
        let vars: Vec<&str> = q
            .children()
            .filter_map(|f| f.attr("var"))
            .collect::<Vec<_>>();
        assert!(vars.contains(&DISCO_INFO));
        assert!(!vars.iter().any(|v| v.starts_with("urn:xmpp:jingle")));
    }

    #[test]
    fn roster_and_vcard_are_read() {
        let q = el(
            "<query xmlns='jabber:iq:roster'><item jid='bob@x' name='Bob' subscription='both'><group>Friends</group></item><item jid='carol@x' ask='subscribe'/><item name='no jid'/></query>",
        );
        let items = roster_items(&q);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].name.as_deref(), Some("Bob"));
        assert_eq!(items[0].groups, vec!["Friends".to_owned()]);
        assert_eq!(items[1].subscription, "none");
        assert!(items[1].pending_out);

        let v = el(
            "<vCard xmlns='vcard-temp'><FN>Bob B</FN><TEL><VOICE/><WORK/><NUMBER> sip:bob@x </NUMBER></TEL><TEL><NUMBER/></TEL><TEL><CELL/><NUMBER>+49 30 1234</NUMBER></TEL></vCard>",
        );
        let c = parse_vcard(&v);
        assert_eq!(c.full_name.as_deref(), Some("Bob B"));
        assert_eq!(c.tels.len(), 2);
        assert_eq!(c.tels[0].number, "sip:bob@x");
        assert_eq!(c.tels[0].types, vec!["VOICE".to_owned(), "WORK".to_owned()]);
        assert_eq!(c.tels[1].number, "+49 30 1234");
    }

    #[test]
    fn vcard_set_round_trips() {
        let card = VCard {
            full_name: Some("Bob".into()),
            nickname: None,
            tels: vec![Tel {
                number: "sip:bob@x".into(),
                types: vec!["VOICE".into(), "WORK".into()],
            }],
        };
        let iq = vcard_set("v1", &card);
        assert_eq!(iq.attr("type"), Some("set"));
        let v = iq.get_child("vCard", VCARD).expect("vCard");
        assert_eq!(parse_vcard(v), card);
    }

    #[test]
    fn presence_carries_show_status_and_caps() {
        let p = presence(
            &OwnPresence {
                show: Show::Dnd,
                status: Some("On the phone".into()),
            },
            0,
        );
        assert_eq!(
            p.get_child("show", ns::JABBER_CLIENT).map(Element::text),
            Some("dnd".into())
        );
        assert!(p.get_child("c", CAPS).is_some());
        let off = presence(
            &OwnPresence {
                show: Show::Offline,
                status: None,
            },
            0,
        );
        assert_eq!(off.attr("type"), Some("unavailable"));
        assert_eq!(Show::parse("xa"), Some(Show::Xa));
        assert_eq!(Show::parse("bogus"), None);
        assert_eq!(bare("a@b/c"), "a@b");
    }
}
