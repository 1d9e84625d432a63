//! RFC 5626 §5.3 and RFC 3581 §4 (flows, NAT), RFC 3261 §16.5: whether requests for a binding
//! go over the flow its REGISTER came on (source address and connection) or to its Contact,
//! under the policy `sip.nat_traversal` ([`NatTraversal`]).
//!
//! NAT is detected once, when the REGISTER arrives, in the manner of Kamailio's
//! `nat_uac_test` (tests 1, 2 and 16), and stored with the binding:
//! - the Contact host is an IP address that is not globally routable (RFC 1918, RFC 6598,
//!   loopback, link-local, unspecified, IPv6 unique-local) and differs from the source IP;
//! - the top Via sent-by is an IP address that differs from the source IP (what `received`
//!   records), or, over UDP, its port differs from the source port (what `rport` records).
//!
//! A public Contact address that differs from the source is *not* NAT: that is a third-party
//! registration (RFC 3261 §10.2, a PBX registering its extensions), which wants the Contact.
//! A Via or Contact naming a host by DNS name cannot be compared and counts as no evidence.

use crate::config::NatTraversal;
use crate::types::{Peer, Transport};
use cusax_sip_proto::Request;
use cusax_sip_proto::message::uri::Uri;
use cusax_store::Binding;
use std::net::IpAddr;

/// The REGISTER's top Via shows that the packet did not come from where the client thinks it
/// sends from (evidence shared by every Contact of the request).
pub(crate) fn via_shows_nat(req: &Request, peer: &Peer) -> bool {
    let Ok(via) = req.top_via() else {
        return false;
    };
    let source = peer.addr.ip().to_canonical();
    let host_differs = std::str::from_utf8(via.host().as_bytes())
        .ok()
        .and_then(|h| h.parse::<IpAddr>().ok())
        .is_some_and(|ip| ip.to_canonical() != source);
    // Only UDP: on TCP/TLS the sent-by port is a listening port, never the connection's.
    let port_differs =
        peer.transport == Transport::Udp && via.port().unwrap_or(5060) != peer.addr.port();
    host_differs || port_differs
}

/// The Contact names an address that cannot be reached from where the REGISTER came from.
pub(crate) fn contact_shows_nat(contact: &Uri<'_>, peer: &Peer) -> bool {
    let ip = contact
        .host()
        .and_then(|h| std::str::from_utf8(h.as_bytes()).ok())
        .and_then(|h| h.parse::<IpAddr>().ok());
    ip.is_some_and(|ip| {
        let ip = ip.to_canonical();
        !is_global(ip) && ip != peer.addr.ip().to_canonical()
    })
}

/// Not a private, shared, loopback, link-local or unspecified address.
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let shared = a == 100 && (b & 0xc0) == 64; // RFC 6598 100.64.0.0/10
            !(v4.is_private()
                || shared
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let unique_local = (first & 0xfe00) == 0xfc00; // fc00::/7
            let link_local = (first & 0xffc0) == 0xfe80; // fe80::/10
            !(v6.is_loopback() || v6.is_unspecified() || unique_local || link_local)
        }
    }
}

/// Whether requests for `b` go over its flow (true) or to its Contact (false). A binding
/// without a recorded source can only be reached at its Contact.
pub(crate) fn use_flow(b: &Binding, policy: NatTraversal) -> bool {
    if b.source.is_none() {
        return false;
    }
    let outbound = b.reg_id.is_some() && b.instance.is_some();
    let connection = Transport::from_name(b.transport.as_bytes())
        .is_some_and(Transport::is_reliable)
        || b.transport.eq_ignore_ascii_case("ws")
        || b.transport.eq_ignore_ascii_case("wss");
    match policy {
        NatTraversal::Always => true,
        NatTraversal::Never => outbound,
        NatTraversal::Auto => outbound || connection || b.nat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cusax_account::Aor;

    fn peer(addr: &str, transport: Transport) -> Peer {
        Peer {
            addr: addr.parse().expect("test address"),
            transport,
        }
    }

    fn register(via: &str) -> Request {
        crate::registrar::tests::request(&format!(
            "REGISTER sip:example.org SIP/2.0\nVia: SIP/2.0/UDP {via};branch=z9hG4bKn\n\
             From: <sip:a@example.org>;tag=1\nTo: <sip:a@example.org>\nCall-ID: n\n\
             CSeq: 1 REGISTER\nContent-Length: 0\n\n"
        ))
    }

    fn contact_nat(contact: &str, from: &str) -> bool {
        let uri = Uri::parse(contact.as_bytes()).expect("test URI");
        contact_shows_nat(&uri, &peer(from, Transport::Udp))
    }

    #[test]
    fn private_or_loopback_contact_elsewhere_is_nat_a_public_one_is_third_party() {
        assert!(contact_nat("sip:a@10.0.0.99:5999", "127.0.0.1:5070"));
        assert!(contact_nat("sip:a@192.168.1.5", "203.0.113.9:40000"));
        assert!(contact_nat("sip:a@100.64.3.4", "203.0.113.9:40000"));
        assert!(contact_nat("sip:a@127.0.0.1:5070", "203.0.113.9:5070"));
        assert!(contact_nat("sip:a@[fd00::5]:5060", "[2001:db8::1]:5060"));
        assert!(contact_nat("sip:a@0.0.0.0:5070", "127.0.0.1:5070"));
        // Same address, another port: a separate registration agent, not NAT.
        assert!(!contact_nat("sip:a@127.0.0.1:5080", "127.0.0.1:5070"));
        assert!(!contact_nat("sip:a@192.168.1.5:5080", "192.168.1.5:5060"));
        // A public Contact elsewhere: third-party registration (RFC 3261 §10.2).
        assert!(!contact_nat("sip:a@198.51.100.7", "203.0.113.9:5060"));
        assert!(!contact_nat("sip:a@phone.example.net", "203.0.113.9:5060"));
        // An IPv4-mapped source is the same address.
        assert!(!contact_nat(
            "sip:a@127.0.0.1:5080",
            "[::ffff:127.0.0.1]:5070"
        ));
    }

    #[test]
    fn via_elsewhere_is_nat() {
        let udp = peer("203.0.113.9:40000", Transport::Udp);
        assert!(via_shows_nat(&register("192.168.1.5:5060"), &udp));
        assert!(via_shows_nat(&register("203.0.113.9:5060"), &udp), "rport");
        assert!(
            via_shows_nat(&register("203.0.113.9"), &udp),
            "default 5060"
        );
        assert!(!via_shows_nat(&register("203.0.113.9:40000"), &udp));
        assert!(!via_shows_nat(&register("phone.example.net:40000"), &udp));
        let tcp = peer("203.0.113.9:40000", Transport::Tcp);
        assert!(
            !via_shows_nat(&register("203.0.113.9:5060"), &tcp),
            "TCP port"
        );
        assert!(via_shows_nat(&register("10.1.1.1:5060"), &tcp));
    }

    fn binding(transport: &str, outbound: bool, nat: bool) -> Binding {
        Binding {
            aor: Aor::parse("sip:a@example.org").expect("aor"),
            contact: "sip:a@127.0.0.1:5080".to_owned(),
            expires_at: 1,
            q: None,
            call_id: "c".to_owned(),
            cseq: 1,
            instance: outbound.then(|| "urn:uuid:1".to_owned()),
            reg_id: outbound.then_some(1),
            path: Vec::new(),
            source: Some("127.0.0.1:5070".parse().expect("addr")),
            transport: transport.to_owned(),
            nat,
            user_agent: None,
            registered_at: 1,
        }
    }

    #[test]
    fn the_policy_decides_flow_or_contact() {
        use NatTraversal::{Always, Auto, Never};
        let plain = binding("udp", false, false);
        assert!(!use_flow(&plain, Auto), "nothing asks for the flow");
        assert!(use_flow(&plain, Always));
        assert!(!use_flow(&plain, Never));
        assert!(use_flow(&binding("udp", false, true), Auto), "NAT");
        assert!(!use_flow(&binding("udp", false, true), Never));
        assert!(use_flow(&binding("tcp", false, false), Auto), "connection");
        assert!(use_flow(&binding("tls", false, false), Auto), "connection");
        assert!(!use_flow(&binding("tcp", false, false), Never));
        for p in [Auto, Always, Never] {
            assert!(use_flow(&binding("udp", true, false), p), "outbound, {p:?}");
        }
        let mut unknown = binding("udp", true, true);
        unknown.source = None;
        assert!(!use_flow(&unknown, Always), "no source: the Contact");
    }
}
