//! RFC 3261 §7 / §18.3: fuzz the SIP parser, both framings, and every typed accessor.
#![no_main]

use bytes::{Bytes, BytesMut};
use cusax_sip_proto::message::headers::{CSeq, CallInfo, ContactValue, Credentials, Event, NameAddr, Via};
use cusax_sip_proto::message::{Edits, HeaderKind, Limits, ResponseBuilder, SipMessage, Uri, frame_stream, parse_datagram, parse_stream_message};
use libfuzzer_sys::fuzz_target;

fn exercise(msg: &SipMessage) {
    let _ = msg.validate();
    let head = msg.head();
    for h in head.headers() {
        for v in h.values() {
            match h.kind {
                HeaderKind::Via => drop(Via::parse(v)),
                HeaderKind::From | HeaderKind::To | HeaderKind::Route | HeaderKind::RecordRoute | HeaderKind::Path => {
                    if let Some(n) = NameAddr::parse(v) {
                        let _ = (n.tag(), n.display_name(), n.uri().equivalent(&n.uri()));
                    }
                }
                HeaderKind::Contact => drop(ContactValue::parse(v)),
                HeaderKind::CallInfo => drop(CallInfo::parse(v)),
                _ => {}
            }
        }
        match h.kind {
            HeaderKind::CSeq => drop(CSeq::parse(h.value)),
            HeaderKind::Event => drop(Event::parse(h.value)),
            HeaderKind::Authorization | HeaderKind::ProxyAuthorization => drop(Credentials::parse(h.value).map(|c| c.username())),
            _ => {}
        }
    }
    let _ = (head.top_via(), head.from_addr(), head.to_addr(), head.call_id(), head.cseq(), head.max_forwards(), head.expires());
    for c in head.contacts().flatten() {
        if let ContactValue::Addr(c) = c {
            let _ = (c.expires(), c.q(), c.instance(), c.reg_id());
        }
    }
    if let SipMessage::Request(r) = msg {
        if let Some(u) = r.uri() {
            let _ = u.equivalent(&u);
        }
        if r.can_respond() {
            let resp = ResponseBuilder::new(r, 400, "Bad").to_tag(b"t").via_received("192.0.2.1", 5060).build();
            let _ = parse_datagram(resp.freeze(), &Limits::default()).expect("own responses parse");
        }
        let mut e = Edits::new(r);
        e.insert_via(b"SIP/2.0/UDP p.example.com;branch=z9hG4bKf");
        e.remove_first_route();
        let _ = e.decrement_max_forwards();
        let out = e.render();
        assert_eq!(out.len(), e.rendered_len());
        // The proxy's edits (RFC 3261 §16.6, RFC 3581): none of them overlap each other.
        let mut p = Edits::new(r);
        let _ = p.set_top_via_received("192.0.2.1", 5060);
        p.remove_routes(2);
        p.insert_routes(&[b"<sip:edge.example.net;lr>"]);
        p.set_request_uri(b"sip:alice@192.0.2.7:5062");
        p.insert_record_route(b"<sip:p.example.com;lr;ftag=x>");
        let out = p.render();
        assert_eq!(out.len(), p.rendered_len());
    }
    if let SipMessage::Response(r) = msg {
        // §16.7 step 3: the proxy strips its Via from responses.
        let mut e = Edits::for_response(r);
        e.remove_first_value(HeaderKind::Via);
        let out = e.render();
        assert_eq!(out.len(), e.rendered_len());
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(msg) = parse_datagram(Bytes::copy_from_slice(data), &limits) {
        exercise(&msg);
    }
    let _ = frame_stream(data, &limits);
    let mut buf = BytesMut::from(data);
    for _ in 0..4 {
        match parse_stream_message(&mut buf, &limits) {
            Ok(Some(msg)) => exercise(&msg),
            _ => break,
        }
    }
    let _ = Uri::parse(data);
    // RFC 5626 §4.4.2: STUN keep-alives share the SIP UDP port.
    let _ = cusax_sip_proto::stun::binding_response(data, std::net::SocketAddr::from(([127, 0, 0, 1], 5060)));
});
