//! RFC 3261 §17 / RFC 6026 state machines driven by a virtual clock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip_proto::message::{Limits, ResponseBuilder, SipMessage, parse_datagram};
use cusax_sip_proto::transaction::*;
use cusax_sip_proto::{Request, Response};

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKnashds8\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n";
const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKreg1\r\nTo: <sip:alice@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";

fn request(b: &[u8]) -> Request {
    match parse_datagram(Bytes::copy_from_slice(b), &Limits::default()).expect("parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

fn response(req: &Request, code: u16) -> Response {
    let b = ResponseBuilder::new(req, code, "X")
        .to_tag(b"srv")
        .build()
        .freeze();
    match parse_datagram(b, &Limits::default()).expect("parses") {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => unreachable!(),
    }
}

/// Runs the clock to `until`, firing timers; returns (time offset in ms, output) pairs.
macro_rules! drive {
    ($t:expr, $start:expr, $until:expr) => {{
        let mut seen = Vec::new();
        while let Some(o) = $t.poll_output() {
            seen.push((0u128, o));
        }
        while let Some(at) = $t.poll_timeout() {
            if at > $start + $until {
                break;
            }
            $t.handle_timeout(at);
            while let Some(o) = $t.poll_output() {
                seen.push(((at - $start).as_millis(), o));
            }
        }
        seen
    }};
}

fn transmits(seen: &[(u128, Output)]) -> Vec<u128> {
    seen.iter()
        .filter(|(_, o)| matches!(o, Output::Transmit(_)))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn client_non_invite_udp_retransmits_then_times_out() {
    let t0 = Instant::now();
    let mut t = ClientNonInvite::new(t0, request(REGISTER), false, TimerConfig::default());
    let seen = drive!(t, t0, Duration::from_secs(40));
    assert_eq!(
        transmits(&seen),
        vec![
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert!(
        seen.iter()
            .any(|(ms, o)| *ms == 32000 && *o == Output::Timeout)
    );
    assert_eq!(seen.last().map(|(_, o)| o), Some(&Output::Terminated));
    assert_eq!(t.state(), ClientNonInviteState::Terminated);
}

#[test]
fn client_non_invite_final_then_timer_k() {
    let t0 = Instant::now();
    let mut t = ClientNonInvite::new(t0, request(REGISTER), false, TimerConfig::default());
    let _ = t.poll_output();
    assert_eq!(
        t.on_response(t0 + Duration::from_millis(100), 100),
        Disposition::PassToTu
    );
    assert_eq!(
        t.on_response(t0 + Duration::from_millis(200), 200),
        Disposition::PassToTu
    );
    assert_eq!(
        t.on_response(t0 + Duration::from_millis(300), 200),
        Disposition::Absorb
    );
    assert_eq!(
        t.poll_timeout(),
        Some(t0 + Duration::from_millis(200) + Duration::from_secs(5))
    );
    let seen = drive!(t, t0, Duration::from_secs(10));
    assert_eq!(
        seen.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>(),
        vec![Output::Terminated]
    );
    // Reliable transport: no retransmissions at all.
    let mut r = ClientNonInvite::new(t0, request(REGISTER), true, TimerConfig::default());
    assert_eq!(transmits(&drive!(r, t0, Duration::from_secs(40))), vec![0]);
}

#[test]
fn client_invite_non2xx_acks_and_absorbs() {
    let t0 = Instant::now();
    let req = request(INVITE);
    let mut t = ClientInvite::new(t0, req.clone(), false, TimerConfig::default());
    let seen = drive!(t, t0, Duration::from_millis(1600));
    assert_eq!(transmits(&seen), vec![0, 500, 1500]);
    let busy = response(&req, 486);
    assert_eq!(
        t.on_response(t0 + Duration::from_secs(2), &busy),
        Disposition::PassToTu
    );
    let Some(Output::Transmit(ack)) = t.poll_output() else {
        panic!("ACK expected")
    };
    let SipMessage::Request(ack) = parse_datagram(ack, &Limits::default()).expect("ack parses")
    else {
        panic!()
    };
    ack.validate().expect("valid ACK");
    assert_eq!(ack.method_bytes(), b"ACK");
    assert_eq!(ack.to_addr().expect("to").tag(), Some(&b"srv"[..]));
    assert_eq!(
        ack.top_via().expect("via").branch(),
        Some(&b"z9hG4bKnashds8"[..])
    );
    assert_eq!(
        t.on_response(t0 + Duration::from_secs(3), &busy),
        Disposition::Absorb
    );
    assert!(matches!(t.poll_output(), Some(Output::Transmit(_))));
    let seen = drive!(t, t0, Duration::from_secs(40));
    assert_eq!(
        seen.last().map(|(ms, o)| (*ms, o.clone())),
        Some((34000, Output::Terminated))
    );
}

#[test]
fn client_invite_timer_b_and_accepted() {
    let t0 = Instant::now();
    let req = request(INVITE);
    let mut t = ClientInvite::new(t0, req.clone(), false, TimerConfig::default());
    let seen = drive!(t, t0, Duration::from_secs(40));
    assert_eq!(
        transmits(&seen),
        vec![0, 500, 1500, 3500, 7500, 15500, 31500]
    );
    assert!(
        seen.iter()
            .any(|(ms, o)| *ms == 32000 && *o == Output::Timeout)
    );

    let mut t = ClientInvite::new(t0, req.clone(), false, TimerConfig::default());
    let ok = response(&req, 200);
    assert_eq!(t.on_response(t0, &ok), Disposition::PassToTu);
    assert_eq!(t.state(), ClientInviteState::Accepted);
    assert_eq!(
        t.on_response(t0 + Duration::from_secs(1), &ok),
        Disposition::PassToTu
    );
    let seen = drive!(t, t0, Duration::from_secs(40));
    assert_eq!(
        seen.last().map(|(ms, o)| (*ms, o.clone())),
        Some((32000, Output::Terminated))
    );
}

#[test]
fn server_invite_trying_error_ack_confirmed() {
    let t0 = Instant::now();
    let req = request(INVITE);
    let mut t = ServerInvite::new(t0, req.clone(), false, TimerConfig::default());
    let seen = drive!(t, t0, Duration::from_millis(250));
    assert_eq!(transmits(&seen), vec![200]);
    let busy = ResponseBuilder::new(&req, 486, "Busy Here")
        .to_tag(b"x")
        .build()
        .freeze();
    let t1 = t0 + Duration::from_secs(1);
    t.send_response(t1, 486, busy);
    let seen = drive!(t, t1, Duration::from_millis(1600));
    assert_eq!(transmits(&seen), vec![0, 500, 1500]);
    t.on_invite_retransmission();
    assert!(matches!(t.poll_output(), Some(Output::Transmit(_))));
    assert_eq!(t.on_ack(t1 + Duration::from_secs(2)), Disposition::Absorb);
    assert_eq!(t.state(), ServerInviteState::Confirmed);
    let seen = drive!(t, t1, Duration::from_secs(10));
    assert_eq!(
        seen.last().map(|(ms, o)| (*ms, o.clone())),
        Some((7000, Output::Terminated))
    );
}

#[test]
fn server_invite_timer_h_and_accepted() {
    let t0 = Instant::now();
    let req = request(INVITE);
    let mut t = ServerInvite::new(t0, req.clone(), false, TimerConfig::default());
    t.send_response(t0, 500, Bytes::from_static(b"resp"));
    let seen = drive!(t, t0, Duration::from_secs(40));
    assert_eq!(
        transmits(&seen),
        vec![
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert!(
        seen.iter()
            .any(|(ms, o)| *ms == 32000 && *o == Output::Timeout)
    );

    let mut t = ServerInvite::new(t0, req, false, TimerConfig::default());
    t.send_response(t0, 200, Bytes::from_static(b"ok"));
    assert_eq!(t.state(), ServerInviteState::Accepted);
    t.on_invite_retransmission();
    t.send_response(
        t0 + Duration::from_millis(500),
        200,
        Bytes::from_static(b"ok"),
    );
    assert_eq!(t.on_ack(t0 + Duration::from_secs(1)), Disposition::PassToTu);
    let seen = drive!(t, t0, Duration::from_secs(40));
    assert_eq!(transmits(&seen), vec![0, 0]);
    assert_eq!(
        seen.last().map(|(ms, o)| (*ms, o.clone())),
        Some((32000, Output::Terminated))
    );
}

#[test]
fn server_non_invite_timer_j() {
    let t0 = Instant::now();
    let mut t = ServerNonInvite::new(false, TimerConfig::default());
    t.on_request_retransmission();
    assert_eq!(t.poll_output(), None);
    t.send_response(t0, 200, Bytes::from_static(b"ok"));
    t.on_request_retransmission();
    let seen = drive!(t, t0, Duration::from_secs(40));
    assert_eq!(transmits(&seen), vec![0, 0]);
    assert_eq!(
        seen.last().map(|(ms, o)| (*ms, o.clone())),
        Some((32000, Output::Terminated))
    );
    let mut r = ServerNonInvite::new(true, TimerConfig::default());
    r.send_response(t0, 200, Bytes::from_static(b"ok"));
    assert_eq!(
        drive!(r, t0, Duration::from_secs(1))
            .last()
            .map(|(_, o)| o.clone()),
        Some(Output::Terminated)
    );
}

#[test]
fn keys_match_ack_cancel_and_responses() {
    let inv = request(INVITE);
    let key = TransactionKey::server(&inv).expect("key");
    let ack = request(
        &INVITE
            .to_vec()
            .replace_all(b"INVITE sip", b"ACK sip")
            .replace_all(b"314159 INVITE", b"314159 ACK"),
    );
    assert_eq!(TransactionKey::server(&ack), Some(key.clone()));
    let cancel = request(
        &INVITE
            .to_vec()
            .replace_all(b"INVITE sip", b"CANCEL sip")
            .replace_all(b"314159 INVITE", b"314159 CANCEL"),
    );
    assert_ne!(TransactionKey::server(&cancel), Some(key.clone()));
    assert_eq!(TransactionKey::cancel_target(&cancel), Some(key));
    let resp = response(&inv, 180);
    assert_eq!(
        TransactionKey::for_response(&resp),
        TransactionKey::client(&inv)
    );
    // RFC 2543 fallback: ACK (with a To tag) still matches its INVITE.
    let old = INVITE
        .to_vec()
        .replace_all(b"branch=z9hG4bKnashds8", b"branch=oldstyle");
    let old_ack = old
        .replace_all(b"INVITE sip", b"ACK sip")
        .replace_all(b"314159 INVITE", b"314159 ACK")
        .replace_all(
            b"<sip:bob@example.com>\r\n",
            b"<sip:bob@example.com>;tag=zz\r\n",
        );
    let k = TransactionKey::server(&request(&old)).expect("2543 key");
    assert!(matches!(k, TransactionKey::Rfc2543 { .. }));
    assert_eq!(TransactionKey::server(&request(&old_ack)), Some(k));
}

trait ReplaceAll {
    fn replace_all(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceAll for Vec<u8> {
    fn replace_all(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        let mut i = 0;
        while i < self.len() {
            if self[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(self[i]);
                i += 1;
            }
        }
        out
    }
}
