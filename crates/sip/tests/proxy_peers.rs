//! RFC 3261 §16 end to end: a real `cusaxd` proxying calls between real sipp user agents on
//! loopback — authenticated calls, busy, CANCEL, forking, and the CUSAX policies of RFC 7081
//! (Call-Info `impp` stamping, privacy, SIP presence and IM refused).
//!
//! Needs `sipp` on PATH (Debian package `sip-tester`); without it these tests fail loudly.

mod common;

use common::*;
use cusax_testkit::Cusaxd;
use std::net::UdpSocket;
use std::time::Duration;

/// The Call-ID of the first request a sipp UAC traced in `message_file`.
fn call_id_sent(message_file: &std::path::Path) -> String {
    let text = std::fs::read_to_string(message_file).expect("the caller's message trace");
    cusax_testkit::sipp::parse_trace(&text)
        .into_iter()
        .find(|m| m.sent)
        .and_then(|m| m.header("Call-ID").map(str::to_owned))
        .unwrap_or_else(|| {
            panic!(
                "no request in {}:
{text}",
                message_file.display()
            )
        })
}

#[test]
fn calls_answered_busy_and_cancelled_over_udp_and_tcp() {
    let lab = Lab::new();
    for t in ["u1", "t1"] {
        let port = free_port();
        lab.unregister_callee(t);
        lab.register_callee(t, port);
        lab.pair("uac_call_auth.xml", "uas_answer.xml", t, port);
        lab.pair("uac_call_busy.xml", "uas_busy.xml", t, port);
        lab.pair("uac_cancel.xml", "uas_ring_cancel.xml", t, port);
    }
    // Both sides of each pair passed; the proxy's own books agree: the callee's 486 and 487
    // went back to the caller on both transports, and both answered calls were ended by
    // their BYE (none is left active).
    let metrics = lab.metrics();
    for (line, at_least) in [
        (
            "cusax_sip_responses_total{direction=\"sent\",code=\"486\"}",
            2,
        ),
        (
            "cusax_sip_responses_total{direction=\"sent\",code=\"487\"}",
            2,
        ),
        ("cusax_sip_requests_total{method=\"BYE\"}", 2),
    ] {
        assert!(
            metric(&metrics, line).is_some_and(|n| n >= at_least),
            "{line} >= {at_least}:\n{metrics}"
        );
    }
    assert_eq!(
        metric(&metrics, "cusax_sip_calls_active"),
        Some(0),
        "{metrics}"
    );
}

/// The value of the sample `name` (with its labels, as rendered) in a Prometheus text.
fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn call_info_is_the_callers_own_jid_and_privacy_is_honoured() {
    let lab = Lab::new();
    let port = free_port();
    lab.register_callee("u1", port);
    // A spoofed impp Call-Info is replaced by the caller's JID; the non-impp Call-Info and
    // the legacy xmpp: Contact reach the callee unchanged; P-Asserted-Identity is added.
    lab.pair(
        "uac_call_spoofed_info.xml",
        "uas_expect_impp.xml",
        "u1",
        port,
    );
    // Privacy: id → no impp Call-Info and no asserted identity at all.
    lab.pair("uac_call_private.xml", "uas_expect_private.xml", "u1", port);
}

/// README ("Identity"): from strangers, `impp` values naming our domains are removed. A
/// caller of another domain claims local JIDs (purpose=impp and purpose="impp") and a local
/// asserted identity; the callee sees the call with the stranger's own impp value and icon,
/// and none of the claims (`uas_expect_stranger_info.xml`).
#[test]
fn a_strangers_claims_on_our_jids_are_removed() {
    let lab = Lab::new();
    let port = free_port();
    lab.register_callee("u1", port);
    lab.pair(
        "uac_call_stranger_spoofed_info.xml",
        "uas_expect_stranger_info.xml",
        "u1",
        port,
    );
}

#[test]
fn sip_presence_and_im_are_refused() {
    let lab = Lab::new();
    for t in ["u1", "t1"] {
        assert!(
            lab.uac("uac_message.xml", t, &format!("message-{t}")),
            "{t}: MESSAGE → 405 with Allow\n{}",
            lab.errors(&format!("message-{t}"))
        );
        assert!(
            lab.uac("uac_subscribe_presence.xml", t, &format!("presence-{t}")),
            "{t}: SUBSCRIBE/PUBLISH presence → 489\n{}",
            lab.errors(&format!("presence-{t}"))
        );
    }
}

#[test]
fn forked_call_answered_by_one_device_cancels_the_other() {
    let lab = Lab::new();
    let (fast, slow) = (free_port(), free_port());
    lab.register_callee("u1", fast);
    lab.register_callee("u1", slow);
    // The device on `fast` rings and must see CANCEL; the one on `slow` answers a second later.
    let mut ringing = lab.uas("uas_ring_cancel.xml", "u1", fast, "fork-ring");
    wait_listening("u1", fast);
    lab.pair("uac_call_auth.xml", "uas_answer_delayed.xml", "u1", slow);
    assert!(
        wait_bounded(&mut ringing),
        "the other device got CANCEL, answered 487 and took the ACK\n{}",
        lab.errors("fork-ring")
    );
}

// long: one scenario on one pair of registered devices (register both, call B's public
// GRUU, A's public GRUU, A's temporary GRUU), each step relying on the state the one before
// left; split up, every part would have to register the devices again.
#[test]
fn calls_to_a_gruu_reach_exactly_that_device() {
    let lab = Lab::new();
    let (a, b) = (free_port(), free_port());
    let (ia, ib) = (
        "aaaaaaaa-0000-4000-8000-000000000001",
        "bbbbbbbb-0000-4000-8000-000000000002",
    );
    let log_a = lab.dir.path().join("register-a.log");
    let log_a_arg = log_a.to_str().expect("utf-8 path");
    // Each 200 must carry pub-gruu, temp-gruu, Require: outbound and Flow-Timer.
    lab.register_with(
        "register_gruu.xml",
        "u1",
        a,
        &[
            "-key",
            "instance",
            ia,
            "-trace_logs",
            "-log_file",
            log_a_arg,
        ],
    );
    lab.register_with("register_gruu.xml", "u1", b, &["-key", "instance", ib]);

    // The public GRUU of device B: B answers, and A — listening and tracing meanwhile —
    // does not get that call; A's own public GRUU then reaches A (so A's trace exists and
    // shows what A received).
    let trace_a = lab.dir.path().join("a.msg");
    let mut device_a = lab
        .sipp("uas_answer.xml", "u1")
        .args(["-p", &a.to_string(), "-trace_msg", "-message_file"])
        .arg(&trace_a)
        .spawn()
        .expect("sipp starts");
    wait_listening("u1", a);
    let gruu_b = format!("sip:user2@{DOMAIN};gr=urn:uuid:{ib}");
    let mut callee = lab.uas("uas_answer.xml", "u1", b, "pub-gruu");
    wait_listening("u1", b);
    let ok = lab.uac_with(
        "uac_call_gruu.xml",
        "u1",
        "pub-gruu",
        &["-key", "gruu", &gruu_b],
    );
    let answered = wait_bounded(&mut callee);
    assert!(
        ok && answered,
        "pub-gruu call: caller ok={ok}, callee ok={answered}\n{}",
        lab.errors("pub-gruu")
    );
    let gruu_a = format!("sip:user2@{DOMAIN};gr=urn:uuid:{ia}");
    let ok = lab.uac_with(
        "uac_call_gruu.xml",
        "u1",
        "pub-gruu-a",
        &["-key", "gruu", &gruu_a],
    );
    let answered = wait_bounded(&mut device_a);
    assert!(
        ok && answered,
        "call to A's GRUU: caller ok={ok}, A ok={answered}\n{}",
        lab.errors("pub-gruu-a")
    );
    let call_b = call_id_sent(&lab.dir.path().join("pub-gruu.uac.msg"));
    let call_a = call_id_sent(&lab.dir.path().join("pub-gruu-a.uac.msg"));
    let seen = std::fs::read_to_string(&trace_a).expect("device A's message trace");
    let got: Vec<String> = cusax_testkit::sipp::parse_trace(&seen)
        .into_iter()
        .filter(|m| m.received() && m.text.starts_with("INVITE "))
        .filter_map(|m| m.header("Call-ID").map(str::to_owned))
        .collect();
    assert_eq!(
        got,
        [call_a.as_str()],
        "A got exactly its own call:\n{seen}"
    );
    assert!(
        !seen.contains(&call_b),
        "device A got the call to B's GRUU:\n{seen}"
    );
    wait_released(a);

    // The temporary GRUU of device A, as the registrar handed it out, reaches A.
    let logged = std::fs::read_to_string(&log_a).expect("register log");
    let temp = logged
        .lines()
        .find_map(|l| l.split("temp-gruu: ").nth(1))
        .map(str::trim)
        .expect("temp-gruu logged");
    assert!(
        temp.starts_with("sip:tgruu.") && !temp.contains("user2"),
        "{temp}"
    );
    let mut callee = lab.uas("uas_answer.xml", "u1", a, "temp-gruu");
    wait_listening("u1", a);
    // Device B listens meanwhile and must not get that call.
    wait_released(b);
    let witness_b = witness(&lab, b);
    let ok = lab.uac_with(
        "uac_call_gruu.xml",
        "u1",
        "temp-gruu",
        &["-key", "gruu", temp],
    );
    let answered = wait_bounded(&mut callee);
    assert!(
        ok && answered,
        "temp-gruu call: caller ok={ok}, callee ok={answered}\n{}",
        lab.errors("temp-gruu")
    );
    let seen_b = probe_witness(&lab, witness_b, b);
    assert!(
        !seen_b.contains("INVITE"),
        "device B got the call to A's temporary GRUU:\n{seen_b}"
    );
}

#[test]
fn phones_behind_nat_are_reached_over_their_flows() {
    let lab = Lab::new();
    for t in ["u1", "t1"] {
        lab.unregister_callee(t);
        let port = free_port();
        // The callee's Contact is a private address; only its REGISTER's source is reachable.
        lab.register_with("register_natted.xml", t, port, &[]);
        // The caller's Contact is private too; the callee's BYE must find the caller's flow.
        lab.pair(
            "uac_call_natted_callee_hangs_up.xml",
            "uas_answer_then_bye.xml",
            t,
            port,
        );
    }
}

/// RFC 5626 §4.4: outbound keep-alives — a STUN Binding on UDP learns the client's reflexive
/// address, a CRLF CRLF ping on TCP gets a CRLF pong.
#[test]
fn outbound_keepalives_are_answered() {
    use std::io::{Read, Write};
    let srv = Cusaxd::start(DOMAIN);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    req.extend_from_slice(b"cusax-test12");
    sock.send_to(&req, srv.addr("sip_udp").expect("udp"))
        .expect("send");
    let mut buf = [0u8; 256];
    let (n, _) = sock.recv_from(&mut buf).expect("STUN answer");
    assert_eq!(&buf[0..2], &[0x01, 0x01], "binding success");
    assert_eq!(&buf[8..20], b"cusax-test12");
    let port = u16::from_be_bytes([buf[26], buf[27]]) ^ 0x2112;
    assert_eq!(n, 32);
    assert_eq!(port, sock.local_addr().expect("addr").port());

    let mut tcp = std::net::TcpStream::connect(srv.addr("sip_tcp").expect("tcp")).expect("tcp");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    tcp.write_all(b"\r\n\r\n").expect("ping");
    let mut pong = [0u8; 2];
    tcp.read_exact(&mut pong).expect("pong");
    assert_eq!(&pong, b"\r\n");
}
