//! RFC 6120 namespace names used on c2s streams.

/// The stream namespace (RFC 6120 §4.8.1).
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// The client content namespace.
pub const JABBER_CLIENT: &str = "jabber:client";
/// The server-to-server content namespace.
pub const JABBER_SERVER: &str = "jabber:server";
/// Stream error conditions (RFC 6120 §4.9.3).
pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// Stanza error conditions (RFC 6120 §8.3.3).
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// STARTTLS (RFC 6120 §5).
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL (RFC 6120 §6).
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding (RFC 6120 §7).
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Legacy session establishment (RFC 3921 §3, draft-cridland-xmpp-session).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// XEP-0440: SASL channel-binding type capability.
pub const SASL_CB: &str = "urn:xmpp:sasl-cb:0";
/// XEP-0352: Client State Indication (stream feature and nonzas).
pub const CSI: &str = "urn:xmpp:csi:0";
/// The XML namespace bound to the `xml` prefix.
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
