//! The user agent against a scripted SIP peer on loopback UDP: each test plays the server's
//! side of an RFC 3261 exchange message by message and checks what the client sends and
//! reports. Every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{UdpPeer as Peer, alice_account, call_state as state};
use cusax_client::{Account, CallState, Event, MediaConfig, TransportKind, UaConfig, UserAgent};
use cusax_sip_proto::digest::{
    Algorithm, DigestConfig, NonceCounts, NonceKey, Verified, challenges, verify,
};
use cusax_sip_proto::message::{HeaderKind, ResponseBuilder};
use cusax_sip_proto::{Limits, Method, Request, SipMessage, parse_datagram};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(5);

fn account(server: SocketAddr) -> Account {
    alice_account(server, TransportKind::Udp)
}

async fn next_event(events: &mut UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("the user agent runs")
}

fn digest() -> (DigestConfig, NonceKey) {
    let cfg = DigestConfig {
        algorithms: vec![Algorithm::Md5],
        ..DigestConfig::default()
    };
    (cfg, NonceKey::new([1; 32]))
}

fn challenge(req: &Request, code: u16, header: &str, stale: bool) -> bytes::BytesMut {
    let (cfg, key) = digest();
    let ch = challenges(&cfg, &key, b"example.org", b"", 1_000, stale).remove(0);
    ResponseBuilder::new(req, code, "Unauthorized")
        .to_tag(b"srv")
        .header(header, &ch)
        .build()
}

fn check_credentials(req: &Request, proxy: bool, method: &[u8]) {
    let (cfg, key) = digest();
    let creds = req
        .digest_credentials(b"example.org", proxy)
        .expect("credentials for the realm");
    let ha1 = Algorithm::Md5.ha1(b"alice", b"example.org", b"pw");
    let mut counts = NonceCounts::new(4);
    let r = verify(
        &cfg,
        &key,
        &mut counts,
        &creds,
        b"example.org",
        method,
        ha1.as_bytes(),
        b"",
        1_001,
    );
    assert_eq!(r, Ok(Verified::Ok));
}

#[tokio::test]
async fn registers_with_digest_and_refreshes_before_expiry() {
    let mut peer = Peer::new(WAIT).await;
    let mut cfg = UaConfig::new(account(peer.addr()));
    cfg.register = true;
    cfg.expires = 2;
    let (ua, mut events) = UserAgent::start(cfg).await.expect("start");

    let r1 = peer.request(Method::Register).await;
    assert_eq!(r1.uri_bytes(), b"sip:example.org");
    assert!(r1.first(HeaderKind::Authorization).is_none());
    peer.send(challenge(&r1, 401, "WWW-Authenticate", false))
        .await;

    let r2 = peer.request(Method::Register).await;
    check_credentials(&r2, false, b"REGISTER");
    assert_eq!(
        r2.call_id().ok(),
        r1.call_id().ok(),
        "one Call-ID per registration"
    );
    assert_eq!(
        r2.cseq().expect("cseq").number,
        r1.cseq().expect("cseq").number + 1
    );
    let contact = r2
        .first(HeaderKind::Contact)
        .expect("contact")
        .value
        .to_vec();
    let granted = format!("{};expires=2", String::from_utf8_lossy(&contact));
    peer.send(
        ResponseBuilder::new(&r2, 200, "OK")
            .to_tag(b"srv")
            .header("Contact", granted.as_bytes())
            .build(),
    )
    .await;
    match next_event(&mut events).await {
        Event::Registered { aor, expires, .. } => {
            assert_eq!((aor.as_str(), expires), ("sip:alice@example.org", 2));
        }
        other => panic!("expected registered, got {other:?}"),
    }

    // Refresh after half the lifetime, with credentials for the cached nonce (nc 2).
    let r3 = peer.request(Method::Register).await;
    let creds = r3.digest_credentials(b"example.org", false).expect("creds");
    assert_eq!(creds.nc, Some(&b"00000002"[..]));
    // The nonce has gone stale at the server: the client retries with the new one.
    peer.send(challenge(&r3, 401, "WWW-Authenticate", true))
        .await;
    let r4 = peer.request(Method::Register).await;
    check_credentials(&r4, false, b"REGISTER");
    peer.send(ResponseBuilder::new(&r4, 200, "OK").to_tag(b"srv").build())
        .await;
    assert!(matches!(
        next_event(&mut events).await,
        Event::Registered { .. }
    ));

    // Shutdown removes the binding.
    let stopper = tokio::spawn(async move { ua.shutdown().await });
    let r5 = peer.request(Method::Register).await;
    assert_eq!(r5.expires().expect("expires"), Some(0));
    peer.send(ResponseBuilder::new(&r5, 200, "OK").to_tag(b"srv").build())
        .await;
    assert!(matches!(
        next_event(&mut events).await,
        Event::Unregistered { .. }
    ));
    tokio::time::timeout(WAIT, stopper)
        .await
        .expect("stops")
        .expect("join");
}

#[tokio::test]
async fn wrong_password_is_reported_once() {
    let mut peer = Peer::new(WAIT).await;
    let mut cfg = UaConfig::new(account(peer.addr()));
    cfg.register = true;
    let (_ua, mut events) = UserAgent::start(cfg).await.expect("start");
    let r1 = peer.request(Method::Register).await;
    peer.send(challenge(&r1, 401, "WWW-Authenticate", false))
        .await;
    let r2 = peer.request(Method::Register).await;
    peer.send(challenge(&r2, 401, "WWW-Authenticate", false))
        .await;
    match next_event(&mut events).await {
        Event::RegistrationFailed { code, .. } => assert_eq!(code, 401),
        other => panic!("expected failure, got {other:?}"),
    }
}

const ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                      m=audio 9 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

#[tokio::test]
async fn caller_authenticates_follows_record_route_and_hangs_up_with_bye() {
    let mut peer = Peer::new(WAIT).await;
    let (ua, mut events) = UserAgent::start(UaConfig::new(account(peer.addr())))
        .await
        .expect("start");
    let id = ua
        .call("bob@example.org", MediaConfig::default())
        .await
        .expect("call");
    assert_eq!(
        state(&next_event(&mut events).await),
        Some(CallState::Calling)
    );

    let i1 = peer.request(Method::Invite).await;
    assert_eq!(i1.uri_bytes(), b"sip:bob@example.org");
    assert_eq!(i1.call_id().expect("call-id"), id.as_bytes());
    let ci: Vec<&[u8]> = i1.values_of(HeaderKind::CallInfo).collect();
    assert_eq!(ci, [&b"<xmpp:alice@example.org>;purpose=impp"[..]]);
    assert!(i1.body().starts_with(b"v=0"));
    peer.send(challenge(&i1, 407, "Proxy-Authenticate", false))
        .await;
    // The transaction ACKs the 407 with the INVITE's branch (RFC 3261 §17.1.1.3).
    let ack = peer.request(Method::Ack).await;
    assert_eq!(
        ack.top_via().expect("via").branch(),
        i1.top_via().expect("via").branch()
    );

    let i2 = peer.request(Method::Invite).await;
    check_credentials(&i2, true, b"INVITE");
    assert_eq!(i2.cseq().expect("cseq").number, 2);
    let rr = "<sip:127.0.0.1:1;lr;ftag=x>";
    let ringing = ResponseBuilder::new(&i2, 180, "Ringing")
        .to_tag(b"bobtag")
        .build();
    peer.send(ringing).await;
    assert_eq!(
        state(&next_event(&mut events).await),
        Some(CallState::Ringing)
    );
    let ok = ResponseBuilder::new(&i2, 200, "OK")
        .to_tag(b"bobtag")
        .header("Record-Route", rr.as_bytes())
        .header("Contact", b"<sip:bob@127.0.0.1:7>")
        .body(b"application/sdp", ANSWER.as_bytes())
        .build();
    peer.send(&ok).await;
    match next_event(&mut events).await {
        Event::CallState {
            state,
            codec,
            remote_rtp,
            ..
        } => {
            assert_eq!(state, CallState::Established);
            assert_eq!(codec, Some(cusax_client::Codec::Pcma));
            assert_eq!(remote_rtp.as_deref(), Some("127.0.0.1:9"));
        }
        other => panic!("expected established, got {other:?}"),
    }
    let ack = peer.request(Method::Ack).await;
    assert_eq!(ack.uri_bytes(), b"sip:bob@127.0.0.1:7");
    assert_eq!(ack.cseq().expect("cseq").number, 2);
    let routes: Vec<&[u8]> = ack.values_of(HeaderKind::Route).collect();
    assert_eq!(routes, [rr.as_bytes()]);
    // A retransmitted 200 (our ACK was lost) is ACKed again.
    peer.send(&ok).await;
    let again = peer.request(Method::Ack).await;
    assert_eq!(again.bytes(), ack.bytes());

    ua.hangup(&id).await;
    let bye = peer.request(Method::Bye).await;
    assert_eq!(bye.uri_bytes(), b"sip:bob@127.0.0.1:7");
    assert_eq!(bye.cseq().expect("cseq").number, 3);
    assert_eq!(bye.to_addr().expect("to").tag(), Some(&b"bobtag"[..]));
    peer.send(ResponseBuilder::new(&bye, 200, "OK").build())
        .await;
    match next_event(&mut events).await {
        Event::CallState {
            state,
            reason,
            media,
            ..
        } => {
            assert_eq!(state, CallState::Ended);
            assert_eq!(reason.as_deref(), Some("local hangup"));
            assert!(media.is_some());
        }
        other => panic!("expected ended, got {other:?}"),
    }
    tokio::time::timeout(WAIT, ua.shutdown())
        .await
        .expect("stops");
}

#[tokio::test]
async fn caller_cancels_an_unanswered_call() {
    let mut peer = Peer::new(WAIT).await;
    let (ua, mut events) = UserAgent::start(UaConfig::new(account(peer.addr())))
        .await
        .expect("start");
    let id = ua
        .call("sip:bob@example.org", MediaConfig::default())
        .await
        .expect("call");
    assert_eq!(
        state(&next_event(&mut events).await),
        Some(CallState::Calling)
    );
    let inv = peer.request(Method::Invite).await;
    // Hang up before any provisional: the CANCEL waits for one (RFC 3261 §9.1).
    ua.hangup(&id).await;
    peer.send(
        ResponseBuilder::new(&inv, 180, "Ringing")
            .to_tag(b"t")
            .build(),
    )
    .await;
    let cancel = peer.request(Method::Cancel).await;
    assert_eq!(cancel.uri_bytes(), inv.uri_bytes());
    assert_eq!(
        cancel.top_via().expect("via").branch(),
        inv.top_via().expect("via").branch()
    );
    assert_eq!(
        cancel.cseq().expect("cseq").number,
        inv.cseq().expect("cseq").number
    );
    peer.send(ResponseBuilder::new(&cancel, 200, "OK").build())
        .await;
    peer.send(
        ResponseBuilder::new(&inv, 487, "Request Terminated")
            .to_tag(b"t")
            .build(),
    )
    .await;
    let ack = peer.request(Method::Ack).await;
    assert_eq!(ack.to_addr().expect("to").tag(), Some(&b"t"[..]));
    // The call ends as cancelled (a "ringing" may come first if the 180 overtook the hang-up).
    let mut e = next_event(&mut events).await;
    if state(&e) == Some(CallState::Ringing) {
        e = next_event(&mut events).await;
    }
    match e {
        Event::CallState {
            state,
            code,
            reason,
            ..
        } => {
            assert_eq!(state, CallState::Ended);
            assert_eq!(code, Some(487));
            assert_eq!(reason.as_deref(), Some("cancelled"));
        }
        other => panic!("expected ended, got {other:?}"),
    }
}

#[tokio::test]
async fn busy_callee_is_a_failed_call() {
    let mut peer = Peer::new(WAIT).await;
    let (ua, mut events) = UserAgent::start(UaConfig::new(account(peer.addr())))
        .await
        .expect("start");
    ua.call("sip:bob@example.org", MediaConfig::default())
        .await
        .expect("call");
    next_event(&mut events).await;
    let inv = peer.request(Method::Invite).await;
    peer.send(
        ResponseBuilder::new(&inv, 486, "Busy Here")
            .to_tag(b"t")
            .build(),
    )
    .await;
    match next_event(&mut events).await {
        Event::CallState { state, code, .. } => {
            assert_eq!((state, code), (CallState::Failed, Some(486)));
        }
        other => panic!("expected failed, got {other:?}"),
    }
}

#[tokio::test]
async fn cancel_without_final_response_gives_up_after_64_t1() {
    let mut peer = Peer::new(WAIT).await;
    let mut cfg = UaConfig::new(account(peer.addr()));
    // T1 = 10 ms: the RFC 3261 §9.1 limit of 64·T1 is 640 ms.
    cfg.timers.t1 = Duration::from_millis(10);
    let (ua, mut events) = UserAgent::start(cfg).await.expect("start");
    let id = ua
        .call("sip:bob@example.org", MediaConfig::default())
        .await
        .expect("call");
    assert_eq!(
        state(&next_event(&mut events).await),
        Some(CallState::Calling)
    );
    let inv = peer.request(Method::Invite).await;
    peer.send(
        ResponseBuilder::new(&inv, 180, "Ringing")
            .to_tag(b"t")
            .build(),
    )
    .await;
    assert_eq!(
        state(&next_event(&mut events).await),
        Some(CallState::Ringing)
    );
    ua.hangup(&id).await;
    let cancel = peer.request(Method::Cancel).await;
    peer.send(ResponseBuilder::new(&cancel, 200, "OK").build())
        .await;
    // No 487 ever comes for the INVITE.
    match next_event(&mut events).await {
        Event::CallState {
            state,
            code,
            reason,
            ..
        } => {
            assert_eq!(state, CallState::Ended);
            assert_eq!(code, Some(408));
            assert_eq!(reason.as_deref(), Some("cancelled"));
        }
        other => panic!("expected ended, got {other:?}"),
    }
}

/// A response of the peer (the client's answer to an INVITE it received).
async fn response(peer: &Peer) -> cusax_sip_proto::Response {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, _) = tokio::time::timeout(WAIT, peer.sock.recv_from(&mut buf))
            .await
            .expect("a response in time")
            .expect("recv");
        if let Ok(SipMessage::Response(r)) =
            parse_datagram(Bytes::copy_from_slice(&buf[..n]), &Limits::default())
        {
            return r;
        }
    }
}

#[tokio::test]
async fn callee_answers_retransmits_200_until_ack_and_ends_on_bye() {
    let mut peer = Peer::new(WAIT).await;
    let mut cfg = UaConfig::new(account(peer.addr()));
    cfg.register = true;
    cfg.auto_answer = true;
    cfg.timers.t1 = Duration::from_millis(20);
    let (_ua, mut events) = UserAgent::start(cfg).await.expect("start");
    let reg = peer.request(Method::Register).await;
    peer.send(ResponseBuilder::new(&reg, 200, "OK").to_tag(b"r").build())
        .await;
    assert!(matches!(
        next_event(&mut events).await,
        Event::Registered { .. }
    ));

    let me = peer.addr();
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio 9 RTP/AVP 8 0\r\n";
    let invite = format!(
        "INVITE sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKin1\r\n\
         Record-Route: <sip:{me};lr>\r\nMax-Forwards: 70\r\n\
         From: \"Bob\" <sip:bob@example.org>;tag=b1\r\nTo: <sip:alice@example.org>\r\n\
         Call-ID: in-1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{me}>\r\n\
         Call-Info: <xmpp:bob@example.org>;purpose=impp\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    );
    peer.send(&invite).await;
    match next_event(&mut events).await {
        Event::IncomingCall {
            from,
            from_name,
            call_info,
            auto_answer,
            ..
        } => {
            assert_eq!(from, "sip:bob@example.org");
            assert_eq!(from_name.as_deref(), Some("Bob"));
            assert_eq!(call_info, ["<xmpp:bob@example.org>;purpose=impp"]);
            assert!(auto_answer);
        }
        other => panic!("expected incoming call, got {other:?}"),
    }
    let ringing = response(&peer).await;
    assert_eq!(ringing.code(), 180);
    let tag = ringing
        .to_addr()
        .expect("to")
        .tag()
        .expect("To tag")
        .to_vec();
    let ok = response(&peer).await;
    assert_eq!(ok.code(), 200);
    assert_eq!(
        ok.to_addr().expect("to").tag(),
        Some(tag.as_slice()),
        "one dialog"
    );
    let rr: Vec<&[u8]> = ok.values_of(HeaderKind::RecordRoute).collect();
    assert_eq!(
        rr,
        [format!("<sip:{me};lr>").as_bytes()],
        "Record-Route copied"
    );
    assert!(ok.first(HeaderKind::Contact).is_some());
    // The answer takes the offerer's first codec.
    assert!(String::from_utf8_lossy(ok.body()).contains("m=audio "));
    assert!(String::from_utf8_lossy(ok.body()).contains(" RTP/AVP 8\r\n"));
    // Without an ACK the 200 comes again (RFC 3261 §13.3.1.4).
    let again = response(&peer).await;
    assert_eq!(again.code(), 200);
    assert_eq!(again.bytes(), ok.bytes());

    let tag = String::from_utf8_lossy(&tag).into_owned();
    let in_dialog = |method: &str, cseq: u32, branch: &str| {
        format!(
            "{method} sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:bob@example.org>;tag=b1\r\n\
             To: <sip:alice@example.org>;tag={tag}\r\nCall-ID: in-1\r\n\
             CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    peer.send(in_dialog("ACK", 1, "z9hG4bKack")).await;
    let mut e = next_event(&mut events).await;
    while state(&e) != Some(CallState::Established) {
        assert!(
            matches!(state(&e), Some(CallState::Ringing | CallState::Answered)),
            "{e:?}"
        );
        e = next_event(&mut events).await;
    }
    peer.send(in_dialog("BYE", 2, "z9hG4bKbye")).await;
    let mut bye_ok = response(&peer).await;
    while bye_ok.cseq().expect("cseq").method_bytes != b"BYE" {
        bye_ok = response(&peer).await; // a last 200 to the INVITE may still be in flight
    }
    assert_eq!(bye_ok.code(), 200);
    match next_event(&mut events).await {
        Event::CallState { state, reason, .. } => {
            assert_eq!(state, CallState::Ended);
            assert_eq!(reason.as_deref(), Some("remote hangup"));
        }
        other => panic!("expected ended, got {other:?}"),
    }
}
