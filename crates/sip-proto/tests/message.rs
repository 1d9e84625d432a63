//! RFC 3261 §7, §18.3: parser, framing, builder and edit-list behaviour.

use bytes::{Bytes, BytesMut};
use cusax_sip_proto::message::headers::{ContactValue, Rport};
use cusax_sip_proto::message::{
    Edits, HeaderKind, Host, Limits, ResponseBuilder, SipMessage, StreamFrame, frame_stream,
    parse_datagram, parse_stream_message,
};
use cusax_sip_proto::{Method, ParseError};

const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
t: \"Alice, A.\" <sip:alice@example.com>\r\n\
f: <sip:alice@example.com>;tag=1928301774\r\n\
i: a84b4c76e66710@pc33\r\n\
CSeq: 314159 REGISTER\r\n\
m: <sip:alice@192.0.2.10:5060>;expires=3600;+sip.instance=\"<urn:uuid:1>\";reg-id=1,\r\n <sip:alice@198.51.100.1>;q=0.5\r\n\
Contact: <sip:alice@203.0.113.9>\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"abc\", uri=\"sip:example.com\", response=\"0123\"\r\n\
l: 0\r\n\r\n";

fn req(b: &[u8]) -> cusax_sip_proto::Request {
    match parse_datagram(Bytes::copy_from_slice(b), &Limits::default()).expect("parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

#[test]
fn typed_access() {
    let r = req(REGISTER);
    r.validate().expect("valid");
    assert_eq!(r.method(), Method::Register);
    let via = r.top_via().expect("via");
    assert_eq!(via.branch(), Some(&b"z9hG4bK776asdhds"[..]));
    assert_eq!(via.rport(), Some(Rport::Requested));
    assert_eq!(via.host(), Host::Ipv4(b"192.0.2.10"));
    assert_eq!(
        r.to_addr().expect("to").display_name().as_deref(),
        Some(&b"Alice, A."[..])
    );
    assert_eq!(r.from_addr().expect("from").tag(), Some(&b"1928301774"[..]));
    assert_eq!(r.call_id().expect("cid"), b"a84b4c76e66710@pc33");
    assert_eq!(r.cseq().expect("cseq").number, 314159);
    assert_eq!(r.max_forwards(), Ok(Some(70)));
    let contacts: Vec<_> = r.contacts().collect::<Result<_, _>>().expect("contacts");
    assert_eq!(contacts.len(), 3);
    let ContactValue::Addr(c0) = contacts[0] else {
        panic!("star")
    };
    assert_eq!(c0.expires(), Some(Ok(3600)));
    assert_eq!(c0.instance(), Some(&b"urn:uuid:1"[..]));
    assert_eq!(r.routes().count(), 2);
    let cred = r.digest_credentials(b"example.com", false).expect("creds");
    assert_eq!(cred.nonce, Some(&b"abc"[..]));
    assert_eq!(r.content_length(), Some(0));
    assert!(r.can_respond());
}

#[test]
fn datagram_framing() {
    let lim = Limits::default();
    let no_cl = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\nbody";
    let SipMessage::Request(r) = parse_datagram(Bytes::from_static(no_cl), &lim).expect("ok")
    else {
        panic!()
    };
    assert_eq!(r.body(), b"body");
    let short = b"OPTIONS sip:a@b SIP/2.0\r\nl: 2\r\n\r\nbody";
    let SipMessage::Request(r) = parse_datagram(Bytes::from_static(short), &lim).expect("ok")
    else {
        panic!()
    };
    assert_eq!(r.body(), b"bo");
    assert_eq!(r.bytes().len(), short.len() - 2);
    let long = b"OPTIONS sip:a@b SIP/2.0\r\nl: 20\r\n\r\nbody";
    assert_eq!(
        parse_datagram(Bytes::from_static(long), &lim).err(),
        Some(ParseError::BodyTruncated)
    );
    for bad in [
        &b"OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n"[..],
        b"OPTIONS sip:a@b SIP/2.0\r\nl: five\r\n\r\n",
    ] {
        assert_eq!(
            parse_datagram(Bytes::copy_from_slice(bad), &lim).err(),
            Some(ParseError::BadContentLength)
        );
    }
    let nolf = b"OPTIONS sip:a@b SIP/2.0\r\nVia: x";
    assert_eq!(
        parse_datagram(Bytes::from_static(nolf), &lim).err(),
        Some(ParseError::Unterminated)
    );
    let noc = b"OPTIONS sip:a@b SIP/2.0\r\nVia x\r\n\r\n";
    assert_eq!(
        parse_datagram(Bytes::from_static(noc), &lim).err(),
        Some(ParseError::BadHeaderName)
    );
    let big = vec![b'a'; 70 * 1024];
    assert_eq!(
        parse_datagram(Bytes::from(big), &lim).err(),
        Some(ParseError::TooLarge)
    );
}

#[test]
fn many_headers_rejected_fast() {
    let mut m = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
    for i in 0..20_000 {
        m.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    m.extend_from_slice(b"\r\n");
    let lim = Limits {
        max_message_bytes: usize::MAX,
        ..Limits::default()
    };
    let t = std::time::Instant::now();
    assert_eq!(
        parse_datagram(Bytes::from(m), &lim).err(),
        Some(ParseError::TooManyHeaders)
    );
    assert!(t.elapsed().as_millis() < 50);
}

#[test]
fn folding_and_compact() {
    let m = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP\r\n host.example.com\r\n ;branch=z9hG4bKx\r\nSubject: a\r\n\tb\r\nl: 0\r\n\r\n";
    let r = req(m);
    let via = r.top_via().expect("folded via");
    assert_eq!(via.sent_by(), b"host.example.com");
    assert_eq!(via.branch(), Some(&b"z9hG4bKx"[..]));
    assert_eq!(r.first(HeaderKind::Subject).expect("s").value, b"a\r\n\tb");
}

#[test]
fn stream_framing() {
    let lim = Limits::default();
    let msg = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody";
    assert_eq!(
        frame_stream(b"\r\n\r\n", &lim),
        Ok(StreamFrame::Ping { consumed: 4 })
    );
    assert_eq!(frame_stream(b"\r\n", &lim), Ok(StreamFrame::Incomplete));
    assert_eq!(
        frame_stream(b"\r\nOPT", &lim),
        Ok(StreamFrame::Pong { consumed: 2 })
    );
    for cut in 0..msg.len() {
        assert_eq!(
            frame_stream(&msg[..cut], &lim),
            Ok(StreamFrame::Incomplete),
            "cut {cut}"
        );
    }
    let mut buf = BytesMut::new();
    buf.extend_from_slice(b"\r\n\r\n");
    buf.extend_from_slice(msg);
    buf.extend_from_slice(msg);
    buf.extend_from_slice(&msg[..10]);
    let first = parse_stream_message(&mut buf, &lim)
        .expect("ok")
        .expect("msg");
    assert_eq!(first.head().body(), b"body");
    assert!(parse_stream_message(&mut buf, &lim).expect("ok").is_some());
    assert!(parse_stream_message(&mut buf, &lim).expect("ok").is_none());
    assert_eq!(buf.len(), 10);
    let nocl = b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n";
    assert_eq!(
        frame_stream(nocl, &lim),
        Err(ParseError::MissingContentLength)
    );
}

#[test]
fn response_builder() {
    let r = req(REGISTER);
    let out = ResponseBuilder::new(&r, 200, "OK")
        .to_tag(b"srv1")
        .via_received("198.51.100.7", 40000)
        .header("Expires", b"3600")
        .build();
    let SipMessage::Response(resp) =
        parse_datagram(out.freeze(), &Limits::default()).expect("parses")
    else {
        panic!()
    };
    resp.validate().expect("valid response");
    assert_eq!(resp.code(), 200);
    let via = resp.top_via().expect("via");
    assert_eq!(via.rport(), Some(Rport::Port(40000)));
    assert_eq!(via.received(), Some(&b"198.51.100.7"[..]));
    assert_eq!(resp.to_addr().expect("to").tag(), Some(&b"srv1"[..]));
    assert_eq!(resp.cseq().expect("cseq").number, 314159);
    assert_eq!(resp.expires(), Ok(Some(3600)));
}

#[test]
fn edit_list() {
    let r = req(REGISTER);
    let mut e = Edits::new(&r);
    e.insert_via(b"SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1");
    e.insert_record_route(b"<sip:proxy.example.com;lr>");
    assert!(e.remove_first_route());
    e.set_request_uri(b"sip:alice@192.0.2.10");
    assert_eq!(e.decrement_max_forwards(), Ok(69));
    let out = e.render();
    let f = req(&out);
    f.validate().expect("forwarded is valid");
    assert_eq!(f.uri_bytes(), b"sip:alice@192.0.2.10");
    assert_eq!(f.top_via().expect("via").branch(), Some(&b"z9hG4bKp1"[..]));
    assert_eq!(f.vias().count(), 2);
    assert_eq!(f.max_forwards(), Ok(Some(69)));
    let routes: Vec<_> = f
        .routes()
        .map(|r| r.expect("route").uri().as_bytes().to_vec())
        .collect();
    assert_eq!(routes, vec![b"sip:p2.example.com;lr".to_vec()]);
    assert_eq!(f.record_routes().count(), 1);
    assert_eq!(f.header(0).expect("h0").kind, HeaderKind::Via);
    assert_eq!(e.rendered_len(), out.len());

    let mut e = Edits::new(&f);
    assert!(e.remove_first_route());
    let idx = f.first(HeaderKind::Authorization).expect("auth").index;
    e.remove_header(idx).expect("rm");
    e.append_header("X-Test", b"1");
    let g = req(&e.render());
    assert_eq!(g.routes().count(), 0);
    assert!(g.first(HeaderKind::Authorization).is_none());
    assert_eq!(g.header_named("x-test").expect("x").value, b"1");
    g.validate().expect("valid");
}

#[test]
fn max_forwards_zero() {
    let m =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nMax-Forwards: 0\r\n\r\n";
    let r = req(m);
    assert_eq!(
        Edits::new(&r).decrement_max_forwards(),
        Err(cusax_sip_proto::message::EditError::TooManyHops)
    );
}
