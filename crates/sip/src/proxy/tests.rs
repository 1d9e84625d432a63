//! RFC 3261 §16 proxy decisions against the memory store: who must authenticate, where a
//! request goes, what the forwarded copy carries, and how responses are chosen.

use crate::config::NatTraversal;
use crate::proxy::{NextHop, Send};
use crate::registrar::tests::{C1, Harness, T0, harness, harness_with, header, request, response};
use crate::types::{Outcome, Peer, Transport};
use cusax_sip_proto::digest::{Algorithm, expected_response};
use cusax_sip_proto::message::headers::Challenge;
use cusax_sip_proto::{Limits, Request, Response, SipMessage, parse_datagram};

fn invite(from: &str, to_uri: &str, extra: &str, auth: &str) -> Request {
    request(&format!(
        "INVITE {to_uri} SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKinv{}x{}\n\
         Max-Forwards: 70\n\
         From: <sip:{from}>;tag=ft1\n\
         To: <{to_uri}>\n\
         Call-ID: call-1\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:caller@192.0.2.10:5062>\n\
         {extra}{auth}Content-Length: 0\n\n",
        auth.len(),
        to_uri.len()
    ))
}

/// `Proxy-Authorization` answering the MD5 challenge of a 407.
fn proxy_auth(r: &Response, user: &str, pw: &str, method: &str, uri: &str) -> String {
    let chal = header(r, "Proxy-Authenticate")
        .into_iter()
        .filter_map(|v| Challenge::parse(v.as_bytes()))
        .find(|c| c.algorithm == Some(&b"MD5"[..]))
        .expect("MD5 challenge");
    let realm = chal.realm.expect("realm");
    let nonce = chal.nonce.expect("nonce");
    let ha1 = Algorithm::Md5.ha1(user.as_bytes(), realm, pw.as_bytes());
    let resp = expected_response(
        Algorithm::Md5,
        ha1.as_bytes(),
        method.as_bytes(),
        uri.as_bytes(),
        nonce,
        Some((b"00000001", b"c0ffee", b"auth")),
    );
    format!(
        "Proxy-Authorization: Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", \
         uri=\"{uri}\", response=\"{}\", algorithm=MD5, qop=auth, nc=00000001, \
         cnonce=\"c0ffee\"\n",
        String::from_utf8_lossy(realm),
        String::from_utf8_lossy(nonce),
        resp.as_str(),
    )
}

/// alice (the callee of `call-1`) hangs up along the route set `rr`.
fn callee_bye(rr: &str) -> Request {
    request(&format!(
        "BYE sip:caller@192.0.2.10:5062 SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKbye1\n\
         Route: {rr}\n\
         Max-Forwards: 70\n\
         From: <sip:alice@example.org>;tag=callee\n\
         To: <sip:bob@example.org>;tag=ft1\n\
         Call-ID: call-1\nCSeq: 1 BYE\nContent-Length: 0\n\n"
    ))
}

fn sends(o: Outcome) -> Vec<Send> {
    match o {
        Outcome::Send(v) => v,
        other => panic!("expected sends, got {other:?}"),
    }
}

fn parsed(s: &Send) -> SipMessage {
    parse_datagram(s.bytes.clone(), &Limits::default()).expect("proxy output parses")
}

fn first_line(s: &Send) -> String {
    let b = &s.bytes;
    let end = b.iter().position(|&c| c == b'\r').unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl Harness {
    /// An INVITE from `user` (password `pw`) to `to_uri`, authenticated after the 407.
    async fn call(&self, user: &str, pw: &str, to_uri: &str, extra: &str) -> Outcome {
        self.call_with_digest_uri(user, pw, to_uri, extra, to_uri)
            .await
    }

    /// As [`Harness::call`], with digest `uri` = `digest_uri`.
    async fn call_with_digest_uri(
        &self,
        user: &str,
        pw: &str,
        to_uri: &str,
        extra: &str,
        digest_uri: &str,
    ) -> Outcome {
        let from = format!("{user}@example.org");
        let r = self.send(T0, &invite(&from, to_uri, extra, "")).await;
        assert_eq!(r.code(), 407, "local callers are challenged");
        let auth = proxy_auth(&r, user, pw, "INVITE", digest_uri);
        self.outcome(T0, &invite(&from, to_uri, extra, &auth)).await
    }

    async fn register_alice(&self, contact: &str) {
        let r = self
            .auth_register(
                T0,
                "alice",
                "alice",
                "secret",
                Algorithm::Md5,
                "reg-1",
                contact,
            )
            .await;
        assert_eq!(r.code(), 200);
    }
}

#[tokio::test]
async fn unknown_user_404_and_unregistered_user_480() {
    let h = harness().await;
    let o = h.call("bob", "hunter2", "sip:nobody@example.org", "").await;
    let Outcome::Respond(b) = o else {
        panic!("{o:?}")
    };
    assert_eq!(response(&b).code(), 404);
    let o = h.call("bob", "hunter2", "sip:alice@example.org", "").await;
    let Outcome::Respond(b) = o else {
        panic!("{o:?}")
    };
    assert_eq!(response(&b).code(), 480);
}

#[tokio::test]
async fn call_reaches_the_binding_with_cusax_identity_headers() {
    let h = harness().await;
    h.register_alice(C1).await;
    let spoof = "Call-Info: <xmpp:mallory@example.org>;purpose=impp\n\
                 P-Asserted-Identity: <sip:carol@example.org>\n";
    let out = sends(
        h.call("bob", "hunter2", "sip:alice@example.org", spoof)
            .await,
    );
    let fwd = out
        .iter()
        .find(|s| first_line(s).starts_with("INVITE"))
        .expect("forwarded INVITE");
    assert_eq!(first_line(fwd), "INVITE sip:alice@192.0.2.10:5062 SIP/2.0");
    assert_eq!(
        fwd.dest.hop,
        NextHop::Addr("192.0.2.10:5062".parse().expect("addr"))
    );
    let SipMessage::Request(r) = parsed(fwd) else {
        panic!("request")
    };
    let h2 = |n: &str| {
        r.headers()
            .filter(|h| h.name.eq_ignore_ascii_case(n.as_bytes()))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(h2("Call-Info"), vec!["<xmpp:bob@example.org>;purpose=impp"]);
    assert_eq!(h2("P-Asserted-Identity"), vec!["<sip:bob@example.org>"]);
    assert!(
        h2("Proxy-Authorization").is_empty(),
        "our credentials are consumed"
    );
    assert_eq!(h2("Max-Forwards"), vec!["69"]);
    let rr = h2("Record-Route");
    assert_eq!(rr.len(), 1);
    assert!(
        rr[0].contains(";lr") && rr[0].contains("ftag=ft1"),
        "{rr:?}"
    );
    assert_eq!(r.vias().count(), 2);
    // And a 100 Trying went back to the caller at once.
    assert!(out.iter().any(|s| first_line(s).starts_with("SIP/2.0 100")));
}

#[tokio::test]
async fn number_alias_routes_to_the_account() {
    let h = harness().await;
    h.register_alice(C1).await;
    let out = sends(
        h.call("bob", "hunter2", "sip:+4930123@example.org;user=phone", "")
            .await,
    );
    assert!(
        out.iter()
            .any(|s| first_line(s) == "INVITE sip:alice@192.0.2.10:5062 SIP/2.0"),
        "the number alias of alice reaches her binding"
    );
    let out = sends(h.call("bob", "hunter2", "sip:sales@example.org", "").await);
    assert!(
        out.iter()
            .any(|s| first_line(s) == "INVITE sip:alice@192.0.2.10:5062 SIP/2.0"),
        "so does her SIP alias"
    );
    let out = sends(h.call("bob", "hunter2", "tel:+49-30-123", "").await);
    assert!(
        out.iter()
            .any(|s| first_line(s) == "INVITE sip:alice@192.0.2.10:5062 SIP/2.0"),
        "and a tel: URI of the number"
    );
}

#[tokio::test]
async fn from_must_belong_to_the_authenticated_account() {
    let h = harness().await;
    h.register_alice(C1).await;
    // bob's credentials, alice's From.
    let to = "sip:alice@example.org";
    let r = h.send(T0, &invite("alice@example.org", to, "", "")).await;
    let auth = proxy_auth(&r, "bob", "hunter2", "INVITE", to);
    let r = h
        .send(T0, &invite("alice@example.org", to, "", &auth))
        .await;
    assert_eq!(
        (r.code(), r.reason()),
        (403, &b"From Does Not Match Account"[..])
    );
}

#[tokio::test]
async fn strangers_reach_local_users_but_cannot_relay() {
    let h = harness().await;
    h.register_alice(C1).await;
    // A stranger claims our users' XMPP addresses — unquoted, quoted, in another case, with
    // a resource — next to its own impp address, a non-impp value and an asserted identity.
    let spoofed = "Call-Info: <xmpp:alice@example.org>;purpose=impp\n\
                   Call-Info: <xmpp:bob@EXAMPLE.ORG/phone>;purpose=\"impp\", \
                   <xmpp:eve@other.example>;purpose=impp\n\
                   Call-Info: <http://other.example/eve.png>;purpose=icon\n\
                   P-Asserted-Identity: <sip:alice@example.org>\n";
    let o = h
        .outcome(
            T0,
            &invite("eve@other.example", "sip:alice@example.org", spoofed, ""),
        )
        .await;
    let out = sends(o);
    let fwd = out
        .iter()
        .find(|s| first_line(s) == "INVITE sip:alice@192.0.2.10:5062 SIP/2.0")
        .expect("forwarded to alice's device without authentication");
    let SipMessage::Request(r) = parsed(fwd) else {
        panic!("the forwarded copy is a request")
    };
    // README: from strangers, impp values naming our domains are removed; the rest passes.
    let kept: Vec<String> = r
        .values_of(cusax_sip_proto::HeaderKind::CallInfo)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(
        kept,
        [
            "<xmpp:eve@other.example>;purpose=impp",
            "<http://other.example/eve.png>;purpose=icon"
        ],
        "{}",
        String::from_utf8_lossy(r.bytes())
    );
    assert!(
        r.header_named("P-Asserted-Identity").is_none(),
        "a stranger's asserted identity is not passed on"
    );
    let r = h
        .send(
            T0,
            &invite("eve@other.example", "sip:bob@elsewhere.example", "", ""),
        )
        .await;
    assert_eq!(r.code(), 403);
}

#[tokio::test]
async fn simple_is_refused_and_max_forwards_and_loops_are_checked() {
    let h = harness().await;
    let msg = request(
        "MESSAGE sip:alice@example.org SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKm1\n\
         From: <sip:bob@example.org>;tag=a\nTo: <sip:alice@example.org>\n\
         Call-ID: m1\nCSeq: 1 MESSAGE\nContent-Length: 0\n\n",
    );
    let r = h.send(T0, &msg).await;
    assert_eq!(r.code(), 405);
    let allow = header(&r, "Allow").join(",");
    assert!(
        allow.contains("INVITE") && !allow.contains("MESSAGE"),
        "{allow}"
    );
    for (event, code) in [("presence", 489), ("presence.winfo", 489), ("dialog", 407)] {
        let sub = request(&format!(
            "SUBSCRIBE sip:alice@example.org SIP/2.0\n\
             Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKs{event}\n\
             From: <sip:bob@example.org>;tag=a\nTo: <sip:alice@example.org>\n\
             Call-ID: s1\nCSeq: 1 SUBSCRIBE\nEvent: {event}\nContent-Length: 0\n\n"
        ));
        assert_eq!(h.send(T0, &sub).await.code(), code, "{event}");
    }
    let r = h
        .send(
            T0,
            &invite("bob@example.org", "sip:alice@example.org", "", "").replace_max_forwards(),
        )
        .await;
    assert_eq!(r.code(), 483);
    let unsupported = invite(
        "bob@example.org",
        "sip:alice@example.org",
        "Proxy-Require: foo\n",
        "",
    );
    let r = h.send(T0, &unsupported).await;
    assert_eq!((r.code(), header(&r, "Unsupported")), (420, vec!["foo"]));
}

trait ZeroHops {
    fn replace_max_forwards(&self) -> Request;
}

impl ZeroHops for Request {
    fn replace_max_forwards(&self) -> Request {
        let text =
            String::from_utf8_lossy(self.bytes()).replace("Max-Forwards: 70", "Max-Forwards: 0");
        match parse_datagram(text.into_bytes().into(), &Limits::default()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_request_that_comes_back_unchanged_is_a_loop() {
    let h = harness().await;
    // alice's "device" is the proxy itself, under the same Request-URI: a loop.
    h.register_alice("Contact: <sip:alice@example.org>\nExpires: 3600\n")
        .await;
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let fwd = out
        .iter()
        .find(|s| first_line(s).starts_with("INVITE"))
        .expect("forwarded");
    let SipMessage::Request(again) = parsed(fwd) else {
        panic!()
    };
    let r = h.send(T0, &again).await;
    assert_eq!(r.code(), 482);
}

#[tokio::test]
async fn best_response_503_becomes_500_and_cancel_unknown_is_481() {
    let h = harness().await;
    h.register_alice(C1).await;
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let codes = answer(&h, &out, 503, "Service Unavailable", "192.0.2.10:5062");
    assert!(
        codes.iter().any(|l| l.starts_with("SIP/2.0 500")),
        "503 is not passed upstream: {codes:?}"
    );
    assert!(
        codes.iter().any(|l| l.starts_with("ACK")),
        "the 503 was ACKed: {codes:?}"
    );
    let cancel = request(
        "CANCEL sip:alice@example.org SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKnothere\n\
         From: <sip:bob@example.org>;tag=a\nTo: <sip:alice@example.org>\n\
         Call-ID: c9\nCSeq: 1 CANCEL\nContent-Length: 0\n\n",
    );
    assert_eq!(h.send(T0, &cancel).await.code(), 481);
}

#[tokio::test]
async fn q_values_make_serial_groups() {
    let h = harness().await;
    h.register_alice(
        "Contact: <sip:alice@192.0.2.20:5060>;q=1.0, <sip:alice@192.0.2.21:5060>;q=0.5\nExpires: 3600\n",
    )
    .await;
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let invites: Vec<String> = out
        .iter()
        .map(first_line)
        .filter(|l| l.starts_with("INVITE"))
        .collect();
    assert_eq!(invites, vec!["INVITE sip:alice@192.0.2.20:5060 SIP/2.0"]);
    let next = answer(&h, &out, 486, "Busy Here", "192.0.2.20:5060");
    assert!(
        next.contains(&"INVITE sip:alice@192.0.2.21:5060 SIP/2.0".to_owned()),
        "the q=0.5 device is tried after the q=1.0 one declined: {next:?}"
    );
    assert!(
        !next.iter().any(|l| l.starts_with("SIP/2.0 486")),
        "{next:?}"
    );
}

#[tokio::test]
async fn tls_required_refuses_plain_transports_for_local_users() {
    let mut h = harness_with(|c| c.proxy.tls_required = true).await;
    let r = h.send(T0, &h.register("alice", "t1", C1, "")).await;
    assert_eq!((r.code(), r.reason()), (403, &b"TLS Required"[..]));
    let r = h
        .send(
            T0,
            &invite("bob@example.org", "sip:alice@example.org", "", ""),
        )
        .await;
    assert_eq!(
        r.code(),
        407,
        "challenged first, so the refusal reveals nothing"
    );
    let auth = proxy_auth(&r, "bob", "hunter2", "INVITE", "sip:alice@example.org");
    let r = h
        .send(
            T0,
            &invite("bob@example.org", "sip:alice@example.org", "", &auth),
        )
        .await;
    assert_eq!((r.code(), r.reason()), (403, &b"TLS Required"[..]));
    // Over TLS the same requests proceed.
    h.peer.transport = Transport::Tls;
    let r = h.send(T0, &h.register("alice", "t2", C1, "")).await;
    assert_eq!(r.code(), 401);
}

/// Answers the forwarded INVITE as its callee (at `from`) would; returns the first lines
/// of what the proxy sends next.
fn answer(h: &Harness, out: &[Send], code: u16, reason: &str, from: &str) -> Vec<String> {
    let branch = forwarded_invite(out);
    let resp = cusax_sip_proto::message::ResponseBuilder::new(&branch, code, reason)
        .to_tag(b"callee")
        .build();
    let peer = Peer {
        addr: from.parse().expect("addr"),
        transport: Transport::Udp,
    };
    h.core
        .handle_response(&response(&resp), &peer)
        .iter()
        .map(first_line)
        .collect()
}

fn forwarded_invite(out: &[Send]) -> Request {
    let fwd = out
        .iter()
        .find(|s| first_line(s).starts_with("INVITE"))
        .expect("forwarded INVITE");
    match parsed(fwd) {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

fn values(r: &Request, name: &str) -> Vec<String> {
    r.headers()
        .filter(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .collect()
}

#[tokio::test]
async fn path_is_followed_and_transports_change_is_double_record_routed() {
    let mut h = harness().await;
    // alice registers over TCP through an edge proxy that added a Path (RFC 3327).
    h.peer.transport = Transport::Tcp;
    let path = "Path: <sip:edge.example.net:5070;lr>\nSupported: path\n";
    h.register_alice(&format!("{C1}{path}")).await;
    h.peer.transport = Transport::Udp;
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let fwd = out
        .iter()
        .find(|s| first_line(s).starts_with("INVITE"))
        .expect("forwarded");
    assert_eq!(fwd.dest.hop, NextHop::Name("edge.example.net".into(), 5070));
    let r = forwarded_invite(&out);
    assert_eq!(values(&r, "Route"), vec!["<sip:edge.example.net:5070;lr>"]);
    assert_eq!(first_line(fwd), "INVITE sip:alice@192.0.2.10:5062 SIP/2.0");

    // Without Path, but registered over TCP and called over UDP: two Record-Routes.
    let h = harness().await;
    let mut h = h;
    h.peer.transport = Transport::Tcp;
    h.register_alice(C1).await;
    h.peer.transport = Transport::Udp;
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let r = forwarded_invite(&out);
    let rr = values(&r, "Record-Route");
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(
        rr[0].contains("transport=tcp") && rr[1].contains("transport=udp"),
        "{rr:?}"
    );
}

#[tokio::test]
async fn call_info_policy_can_be_switched_off_per_domain() {
    let h = harness_with(|c| {
        c.proxy.domains.insert(
            "example.org".into(),
            crate::config::DomainPolicy {
                call_info: false,
                refuse_simple: false,
            },
        );
    })
    .await;
    h.register_alice(C1).await;
    let own = "Call-Info: <xmpp:bob@example.org>;purpose=impp\n";
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", own).await);
    let r = forwarded_invite(&out);
    assert_eq!(
        values(&r, "Call-Info"),
        vec!["<xmpp:bob@example.org>;purpose=impp"],
        "left as the phone sent it"
    );
    let msg = request(
        "MESSAGE sip:alice@example.org SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKm2\n\
         From: <sip:bob@example.org>;tag=a\nTo: <sip:alice@example.org>\n\
         Call-ID: m2\nCSeq: 1 MESSAGE\nContent-Length: 0\n\n",
    );
    assert_eq!(
        h.send(T0, &msg).await.code(),
        407,
        "MESSAGE is proxied like any request"
    );
}

#[tokio::test]
async fn a_confirmed_call_is_an_event_until_bye() {
    let h = harness().await;
    let mut events = h.core.calls().subscribe();
    h.register_alice(C1).await;
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let rr = values(&forwarded_invite(&out), "Record-Route").join(", ");
    let up = answer(&h, &out, 200, "OK", "192.0.2.10:5062");
    assert!(up.iter().any(|l| l.starts_with("SIP/2.0 200")), "{up:?}");
    assert_eq!(h.core.calls().active(), 1);
    let mut parties = Vec::new();
    while let Ok(crate::calls::CallEvent::Confirmed { account, .. }) = events.try_recv() {
        parties.push(account.to_string());
    }
    parties.sort();
    assert_eq!(parties, vec!["alice@example.org", "bob@example.org"]);
    // The callee hangs up along the route set.
    let bye = callee_bye(&rr);
    let out = sends(h.outcome(T0, &bye).await);
    assert!(
        out.iter()
            .any(|s| first_line(s).starts_with("BYE sip:caller@"))
    );
    assert_eq!(h.core.calls().active(), 0);
    assert!(matches!(
        events.try_recv(),
        Ok(crate::calls::CallEvent::Ended { .. })
    ));
}

#[tokio::test]
async fn call_states_are_published_on_the_bus() {
    use cusax_bus::{Bus, CallPhase, CallState, Event, LocalBus, Subscription};
    fn call_states(sub: &mut Subscription) -> Vec<CallState> {
        let mut out = Vec::new();
        while let Ok(e) = sub.try_recv() {
            if let Event::CallState(c) = e {
                out.push(c);
            }
        }
        out
    }
    let mut h = harness().await;
    let bus = std::sync::Arc::new(LocalBus::default());
    h.core = h.core.with_bus(bus.clone());
    let mut sub = bus.subscribe();
    h.register_alice(C1).await;
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let rr = values(&forwarded_invite(&out), "Record-Route").join(", ");
    assert_eq!(call_states(&mut sub), [], "nothing before the answer");
    let up = answer(&h, &out, 200, "OK", "192.0.2.10:5062");
    assert!(up.iter().any(|l| l.starts_with("SIP/2.0 200")), "{up:?}");
    let confirmed = call_states(&mut sub);
    assert_eq!(confirmed.len(), 1, "one event per call: {confirmed:?}");
    assert_eq!(
        (confirmed[0].call_id.as_str(), confirmed[0].phase),
        ("call-1", CallPhase::Confirmed)
    );
    let mut parties: Vec<String> = confirmed[0]
        .accounts
        .iter()
        .map(ToString::to_string)
        .collect();
    parties.sort();
    assert_eq!(parties, ["alice@example.org", "bob@example.org"]);
    let bye = callee_bye(&rr);
    let out = sends(h.outcome(T0, &bye).await);
    assert!(
        out.iter()
            .any(|s| first_line(s).starts_with("BYE sip:caller@"))
    );
    assert_eq!(
        call_states(&mut sub),
        [CallState {
            call_id: "call-1".into(),
            accounts: confirmed[0].accounts.clone(),
            phase: CallPhase::Ended,
        }]
    );
}

#[tokio::test]
async fn timer_c_ends_a_call_that_rings_forever_and_nothing_is_left() {
    let h = harness().await;
    h.register_alice(C1).await;
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let ringing = answer(&h, &out, 180, "Ringing", "192.0.2.10:5062");
    assert!(
        ringing.iter().any(|l| l.starts_with("SIP/2.0 180")),
        "{ringing:?}"
    );
    let t0 = std::time::Instant::now();
    assert!(
        h.core
            .tick(t0 + std::time::Duration::from_secs(60))
            .is_empty(),
        "a ringing phone is not a timeout yet"
    );
    let fired: Vec<String> = h
        .core
        .tick(t0 + std::time::Duration::from_secs(190))
        .iter()
        .map(first_line)
        .collect();
    assert!(
        fired.iter().any(|l| l.starts_with("SIP/2.0 408")),
        "{fired:?}"
    );
    assert!(
        fired.iter().any(|l| l.starts_with("CANCEL sip:alice@")),
        "{fired:?}"
    );
    // The phone ignores the CANCEL and the caller never ACKs: still, every transaction ends.
    for secs in [400, 800, 1600] {
        let _ = h.core.tick(t0 + std::time::Duration::from_secs(secs));
    }
    assert!(h.core.is_idle(), "{:?}", h.core.transaction_counts());
}

#[tokio::test]
async fn the_callees_487_is_acked_even_after_the_callers_ack_ended_the_request() {
    let mut h = harness().await;
    h.register_alice(C1).await;
    // The caller is on TCP: its ACK ends our server transaction at once (timer I is zero).
    h.peer.transport = Transport::Tcp;
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let trying = out
        .iter()
        .find(|s| first_line(s).starts_with("SIP/2.0 100"))
        .expect("100 Trying");
    let SipMessage::Response(trying) = parsed(trying) else {
        panic!("response")
    };
    let branch = String::from_utf8_lossy(
        trying
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .expect("branch"),
    )
    .into_owned();
    let ringing = answer(&h, &out, 180, "Ringing", "192.0.2.10:5062");
    assert!(ringing.iter().any(|l| l.starts_with("SIP/2.0 180")));
    let cancel = request(&format!(
        "CANCEL sip:alice@example.org SIP/2.0\n\
         Via: SIP/2.0/TCP 192.0.2.10:5062;branch={branch}\n\
         Max-Forwards: 70\n\
         From: <sip:bob@example.org>;tag=ft1\nTo: <sip:alice@example.org>\n\
         Call-ID: call-1\nCSeq: 1 CANCEL\nContent-Length: 0\n\n"
    ));
    let lines: Vec<String> = sends(h.outcome(T0, &cancel).await)
        .iter()
        .map(first_line)
        .collect();
    assert!(
        lines.iter().any(|l| l.starts_with("SIP/2.0 487")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("CANCEL sip:alice@")),
        "{lines:?}"
    );
    // The caller ACKs the 487 before the callee answers the CANCEL.
    let ack = request(&format!(
        "ACK sip:alice@example.org SIP/2.0\n\
         Via: SIP/2.0/TCP 192.0.2.10:5062;branch={branch}\n\
         Max-Forwards: 70\n\
         From: <sip:bob@example.org>;tag=ft1\nTo: <sip:alice@example.org>;tag=x\n\
         Call-ID: call-1\nCSeq: 1 ACK\nContent-Length: 0\n\n"
    ));
    let _ = h.outcome(T0, &ack).await;
    // Now the callee's 487 arrives: it must still be ACKed (the phone waits for it).
    let next = answer(&h, &out, 487, "Request Terminated", "192.0.2.10:5062");
    assert!(
        next.iter().any(|l| l.starts_with("ACK sip:alice@")),
        "{next:?}"
    );
    assert!(
        !next.iter().any(|l| l.starts_with("SIP/2.0 487")),
        "not sent twice: {next:?}"
    );
}

#[tokio::test]
async fn proxy_credentials_for_this_server_pass_for_another_user_are_refused() {
    let h = harness().await;
    h.register_alice(C1).await;
    // sipp's default digest uri for an INVITE: the proxy's own address.
    for uri in ["sip:127.0.0.1:5060", "sip:example.org"] {
        let out = sends(
            h.call_with_digest_uri("bob", "hunter2", "sip:alice@example.org", "", uri)
                .await,
        );
        assert!(
            out.iter().any(|s| first_line(s).starts_with("INVITE")),
            "{uri}: forwarded"
        );
    }
    for uri in ["sip:carol@example.org", "sip:alice@elsewhere.example"] {
        let o = h
            .call_with_digest_uri("bob", "hunter2", "sip:alice@example.org", "", uri)
            .await;
        let Outcome::Respond(b) = o else {
            panic!("{uri}: {o:?}")
        };
        let r = response(&b);
        assert_eq!(
            (r.code(), r.reason()),
            (400, &b"Digest URI Does Not Match Request-URI"[..]),
            "{uri}"
        );
    }
}

/// Where the INVITE to alice goes after she registered `contact` from `from` over
/// `transport`, under `policy` (bob calls from 192.0.2.10:5062).
async fn invite_hop(
    policy: NatTraversal,
    from: &str,
    transport: Transport,
    contact: &str,
) -> NextHop {
    let mut h = harness_with(|c| c.proxy.nat_traversal = policy).await;
    h.peer = Peer {
        addr: from.parse().expect("addr"),
        transport,
    };
    h.register_alice(&format!("Contact: {contact}\nExpires: 3600\n"))
        .await;
    h.peer = Peer {
        addr: "192.0.2.10:5062".parse().expect("addr"),
        transport: Transport::Udp,
    };
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let fwd = out
        .iter()
        .find(|s| first_line(s).starts_with("INVITE"))
        .expect("forwarded INVITE");
    fwd.dest.hop.clone()
}

fn hop(a: &str) -> NextHop {
    NextHop::Addr(a.parse().expect("addr"))
}

#[tokio::test]
async fn requests_go_to_the_contact_unless_the_flow_is_asked_for_or_nat_is_seen() {
    use NatTraversal::{Always, Auto, Never};
    let (reg, udp, tcp) = ("127.0.0.1:5070", Transport::Udp, Transport::Tcp);
    let other_port = "<sip:alice@127.0.0.1:5080>";
    assert_eq!(
        invite_hop(Auto, reg, udp, other_port).await,
        hop("127.0.0.1:5080")
    );
    assert_eq!(
        invite_hop(Always, reg, udp, other_port).await,
        hop(reg),
        "old"
    );
    assert_eq!(
        invite_hop(Never, reg, udp, other_port).await,
        hop("127.0.0.1:5080")
    );
    let natted = "<sip:alice@10.0.0.99:5999>";
    assert_eq!(invite_hop(Auto, reg, udp, natted).await, hop(reg), "NAT");
    assert_eq!(
        invite_hop(Never, reg, udp, natted).await,
        hop("10.0.0.99:5999")
    );
    let public = "<sip:alice@198.51.100.7:5060>";
    assert_eq!(
        invite_hop(Auto, "203.0.113.9:5060", udp, public).await,
        hop("198.51.100.7:5060"),
        "third-party registration"
    );
    let over_tcp = "<sip:alice@127.0.0.1:5080;transport=tcp>";
    assert_eq!(invite_hop(Auto, reg, tcp, over_tcp).await, hop(reg), "TCP");
    assert_eq!(
        invite_hop(Never, reg, tcp, over_tcp).await,
        hop("127.0.0.1:5080")
    );
    let outbound = "<sip:alice@127.0.0.1:5080>;reg-id=1;\
                    +sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\"";
    for p in [Auto, Always, Never] {
        assert_eq!(
            invite_hop(p, reg, udp, outbound).await,
            hop(reg),
            "outbound {p:?}"
        );
    }
}

#[tokio::test]
async fn in_dialog_requests_follow_the_contact_the_call_was_sent_to() {
    let mut h = harness().await;
    h.peer.addr = "127.0.0.1:5070".parse().expect("addr");
    h.register_alice("Contact: <sip:alice@127.0.0.1:5080>\nExpires: 3600\n")
        .await;
    h.peer.addr = "192.0.2.10:5062".parse().expect("addr");
    let out = sends(h.call("bob", "hunter2", "sip:alice@example.org", "").await);
    let rr = values(&forwarded_invite(&out), "Record-Route").join(", ");
    assert!(rr.contains(";cxe=u127.0.0.1:5080"), "{rr}");
    let up = answer(&h, &out, 200, "OK", "127.0.0.1:5080");
    assert!(up.iter().any(|l| l.starts_with("SIP/2.0 200")), "{up:?}");
    // The caller's ACK for the 2xx, along the route set, reaches the callee's Contact.
    let ack = request(&format!(
        "ACK sip:alice@127.0.0.1:5080 SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKack1\n\
         Route: {rr}\n\
         Max-Forwards: 70\n\
         From: <sip:bob@example.org>;tag=ft1\n\
         To: <sip:alice@example.org>;tag=callee\n\
         Call-ID: call-1\nCSeq: 1 ACK\nContent-Length: 0\n\n"
    ));
    let out = sends(h.core.handle(T0, &ack, &h.peer));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].dest.hop, hop("127.0.0.1:5080"));
    // The callee's BYE, sent from its Contact, reaches the caller's flow.
    let bye = request(&format!(
        "BYE sip:caller@192.0.2.10:5062 SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKbye2\n\
         Route: {rr}\n\
         Max-Forwards: 70\n\
         From: <sip:alice@example.org>;tag=callee\n\
         To: <sip:bob@example.org>;tag=ft1\n\
         Call-ID: call-1\nCSeq: 1 BYE\nContent-Length: 0\n\n"
    ));
    h.peer.addr = "127.0.0.1:5080".parse().expect("addr");
    let out = sends(h.outcome(T0, &bye).await);
    let fwd = out
        .iter()
        .find(|s| first_line(s).starts_with("BYE"))
        .expect("forwarded BYE");
    assert_eq!(fwd.dest.hop, hop("192.0.2.10:5062"));
}

/// A request from a stranger with a To tag and the given Route headers (`routes`, may be
/// empty) to `ruri`.
fn in_dialog_from_stranger(method: &str, ruri: &str, routes: &str, n: u32) -> Request {
    request(&format!(
        "{method} {ruri} SIP/2.0\n\
         Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKdlg{n}\n\
         Max-Forwards: 70\n\
         From: <sip:eve@other.example>;tag=e{n}\n\
         To: <{ruri}>;tag=victim{n}\n\
         Call-ID: foreign-dialog-{n}\n\
         CSeq: 2 {method}\n\
         {routes}Contact: <sip:eve@203.0.113.5:5060>\n\
         Content-Length: 0\n\n"
    ))
}

#[tokio::test]
async fn requests_of_dialogs_we_did_not_record_route_are_not_relayed() {
    let h = harness().await;
    // A To tag without our Route: not a dialog through us. Answered here, never forwarded.
    for (n, (method, ruri)) in [
        ("BYE", "sip:victim@198.51.100.7:5060"),
        ("INVITE", "sip:+15551234@gw.elsewhere.example"),
        ("INFO", "sip:victim@[2001:db8::10]"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = h
            .send(T0, &in_dialog_from_stranger(method, ruri, "", n as u32))
            .await;
        assert_eq!((r.code(), r.reason()), (404, &b"Not Here"[..]), "{method}");
    }
    // A Route beyond ours (or not naming us at all) does not make an initial request a
    // dialog's: a stranger still cannot relay through us.
    for (n, routes) in [
        "Route: <sip:example.org;lr>, <sip:gw.elsewhere.example;lr>\n",
        "Route: <sip:gw.elsewhere.example;lr>\n",
    ]
    .into_iter()
    .enumerate()
    {
        let r = h
            .send(
                T0,
                &invite(
                    "eve@other.example",
                    "sip:+15551234@gw.elsewhere.example",
                    routes,
                    "",
                ),
            )
            .await;
        assert_eq!(r.code(), 403, "pre-loaded route {n}");
    }
    // An ACK without our Route is absorbed.
    let o = h
        .outcome(
            T0,
            &in_dialog_from_stranger("ACK", "sip:victim@198.51.100.7", "", 9),
        )
        .await;
    assert!(matches!(o, Outcome::Nothing), "{o:?}");
}
