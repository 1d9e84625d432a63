//! RFC 3261 §7: parse throughput on a digest REGISTER and a 1.2 KB INVITE (parse + top Via branch).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cusax_sip_proto::message::{Edits, Limits, SipMessage, parse_datagram};

const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK1733265829\r\n\
From: <sip:alice@example.com>;tag=1510428591\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: 1722145870@192.0.2.10\r\n\
CSeq: 21 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5060;line=a2b4c6>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"000000006763d2a8b1c4a2f0e5d4c3b2a1908f7e6d5c4b3a\", uri=\"sip:example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001\r\n\
Max-Forwards: 70\r\n\
User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\n\
Expires: 3600\r\n\
Supported: outbound, path, gruu\r\n\
Content-Length: 0\r\n\r\n";

fn invite() -> Vec<u8> {
    let sdp = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 9 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
    let head = format!(
        "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bK4b43c2ff8.1\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;received=192.0.2.10;rport=5060;branch=z9hG4bK74bf9\r\n\
Record-Route: <sip:proxy.example.com;lr>\r\n\
Max-Forwards: 69\r\n\
From: \"Alice Liddell\" <sip:alice@example.com>;tag=9fxced76sl\r\n\
To: \"Bob\" <sip:bob@example.com>\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n\
Proxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"000000006763d2a8b1c4a2f0e5d4c3b2a1908f7e6d5c4b3a\", uri=\"sip:bob@example.com\", response=\"9c2a5e3b6f1d8e7a4c0b2d1e3f5a7c9b\", algorithm=MD5, cnonce=\"1b3d5f7a\", qop=auth, nc=00000001\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, UPDATE\r\n\
Supported: replaces, outbound, gruu, timer\r\n\
User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    head.into_bytes()
}

fn parse_branch(b: &Bytes, limits: &Limits) -> usize {
    let msg = parse_datagram(b.clone(), limits).expect("bench message parses");
    msg.head()
        .top_via()
        .ok()
        .and_then(|v| v.branch())
        .map_or(0, <[u8]>::len)
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let register = Bytes::from_static(REGISTER);
    let inv = Bytes::from(invite());
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("register_{}B", register.len()), |b| {
        b.iter(|| parse_branch(black_box(&register), &limits))
    });
    g.bench_function(format!("invite_{}B", inv.len()), |b| {
        b.iter(|| parse_branch(black_box(&inv), &limits))
    });
    g.bench_function("register_validate", |b| {
        b.iter(|| {
            let m = parse_datagram(black_box(register.clone()), &limits).expect("parses");
            m.validate().expect("valid")
        })
    });
    let SipMessage::Request(req) = parse_datagram(inv.clone(), &limits).expect("parses") else {
        unreachable!()
    };
    g.bench_function("invite_proxy_edits", |b| {
        b.iter(|| {
            let mut e = Edits::new(black_box(&req));
            e.insert_via(b"SIP/2.0/UDP edge.example.com;branch=z9hG4bKe1");
            e.insert_record_route(b"<sip:edge.example.com;lr>");
            let _ = e.decrement_max_forwards();
            e.render().len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
