//! Issue 7, the anchor stack: the client against real peers — Kamailio (SIP registrar and
//! record-routing proxy with digest) and Prosody (XMPP with STARTTLS and SCRAM-SHA-1), both
//! from Debian, started per test by `cusax_testkit::anchor::AnchorStack` with the same
//! accounts. Every wait is bounded.
//!
//! * SIP: two cusax user agents register to Kamailio, one calls the other through it, the
//!   call is established, each side's recording holds the other side's tone (Goertzel filter),
//!   and either side's BYE ends the call on both.
//! * XMPP: slixmpp logs in to Prosody over STARTTLS with SCRAM-SHA-1 and two accounts
//!   exchange messages (the stack's XMPP side as later client tests will use it).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{ALICE_TONE, AudioCall, BOB_TONE, STEP, Ua, call_state, is_state};
use cusax_client::{Account, CallState, Event, MediaConfig, Secret, TransportKind, UaConfig};
use cusax_sip_proto::digest::{Algorithm, expected_response};
use cusax_sip_proto::message::{HeaderKind, ResponseBuilder};
use cusax_sip_proto::{Limits, Method, Request, SipMessage, parse_datagram};
use cusax_testkit::anchor::AnchorStack;
use cusax_testkit::slixmpp_python;

const DOMAIN: &str = "anchor.test";
const USERS: &[(&str, &str)] = &[("alice", "alice-secret"), ("bob", "bob-secret")];

/// Starts a registering, auto-answering user agent for the anchor account `name` that sends
/// `tone` on calls it answers and records them in `record_dir/name`.
async fn anchor_ua(
    stack: &AnchorStack,
    name: &'static str,
    transport: TransportKind,
    tone: f64,
    record_dir: &Path,
) -> Ua {
    let password = stack.password(name).expect("an anchor account");
    let cfg = UaConfig::new(Account {
        user: name.into(),
        domain: stack.domain.clone(),
        display_name: None,
        secret: Secret::new(name, password),
        server: stack.sip_addr(),
        transport,
        impp: Some(stack.jid(name)),
    });
    // The user agent records into an existing directory (the CLI creates it).
    std::fs::create_dir_all(record_dir.join(name)).expect("record dir");
    Ua::start(name, cfg, tone, record_dir).await
}

/// Sends one request over UDP and returns the status line of the answer.
fn status_line(to: SocketAddr, request: &str) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let local = sock.local_addr().expect("addr");
    let request = request.replace("LOCAL", &local.to_string());
    sock.send_to(request.as_bytes(), to).expect("send");
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("an answer within 5 s");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Kamailio challenges a REGISTER (401) and an INVITE (407) that carry no credentials.
fn assert_challenges(stack: &AnchorStack) {
    let d = &stack.domain;
    let register = format!(
        "REGISTER sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK-r1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{d}>;tag=r1\r\nTo: <sip:alice@{d}>\r\n\
         Call-ID: anchor-r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@LOCAL>\r\n\
         Expires: 60\r\nContent-Length: 0\r\n\r\n"
    );
    let invite = format!(
        "INVITE sip:bob@{d} SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK-i1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{d}>;tag=i1\r\nTo: <sip:bob@{d}>\r\n\
         Call-ID: anchor-i1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@LOCAL>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let r = status_line(stack.sip_addr(), &register);
    assert!(r.starts_with("SIP/2.0 401"), "REGISTER answered {r:?}");
    let i = status_line(stack.sip_addr(), &invite);
    assert!(i.starts_with("SIP/2.0 407"), "INVITE answered {i:?}");
}

/// Alice calls bob through Kamailio; `bob_hangs_up` chooses who sends the BYE.
async fn call_through_kamailio(alice_tr: TransportKind, bob_tr: TransportKind, bob_hangs_up: bool) {
    let t0 = Instant::now();
    let stack = AnchorStack::start(DOMAIN, USERS);
    let started = t0.elapsed();
    assert_challenges(&stack);
    let tmp = tempfile::tempdir().expect("tmp");
    let mut bob = anchor_ua(&stack, "bob", bob_tr, BOB_TONE, tmp.path()).await;
    let mut alice = anchor_ua(&stack, "alice", alice_tr, ALICE_TONE, tmp.path()).await;
    for ua in [&mut bob, &mut alice] {
        let (aor, _) = ua.registered(&stack).await;
        assert_eq!(aor, stack.aor(ua.name));
    }

    AudioCall {
        server: &stack,
        bob_aor: stack.aor("bob"),
        alice_aor: stack.aor("alice"),
        alice_jid: stack.jid("alice"),
        alice_wav: tmp.path().join("alice.wav"),
        bob_hangs_up,
        min_packets: 1,
    }
    .run(&mut alice, &mut bob)
    .await;

    // Kamailio's two workers may relay bob's 200 before his 180: then the 180 comes too late
    // to count and "ringing" is skipped.
    let states = alice.states();
    let without_ringing: Vec<CallState> = states
        .iter()
        .copied()
        .filter(|s| *s != CallState::Ringing)
        .collect();
    assert_eq!(
        without_ringing,
        [CallState::Calling, CallState::Established, CallState::Ended],
        "{states:?}"
    );
    assert!(states.len() <= 4 && (states.len() == 3 || states[1] == CallState::Ringing));

    for ua in [&alice, &bob] {
        ua.shutdown().await;
    }
    let t_stop = Instant::now();
    drop(stack);
    eprintln!(
        "anchor stack: started in {started:?}, test body {:?}, stopped in {:?}",
        t_stop.duration_since(t0) - started,
        t_stop.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_call_through_kamailio_with_audio_both_ways() {
    call_through_kamailio(TransportKind::Udp, TransportKind::Udp, false).await;
}

/// The callee on TCP (Kamailio reaches it over its registration connection), the caller on
/// UDP, and the callee ends the call: the BYE goes the other way through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_tcp_callee_hangs_up_a_call_through_kamailio() {
    call_through_kamailio(TransportKind::Udp, TransportKind::Tcp, true).await;
}

/// A scripted SIP callee on a UDP socket: registers to Kamailio with digest, then plays the
/// callee's side of a call message by message.
struct ScriptedCallee {
    sock: tokio::net::UdpSocket,
}

impl ScriptedCallee {
    async fn register(stack: &AnchorStack, name: &str) -> Self {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let me = sock.local_addr().expect("addr");
        let d = &stack.domain;
        let register = |cseq: u32, auth: &str| {
            format!(
                "REGISTER sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-reg{cseq};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{name}@{d}>;tag=reg\r\nTo: <sip:{name}@{d}>\r\n\
                 Call-ID: reg-{name}@{me}\r\nCSeq: {cseq} REGISTER\r\n\
                 Contact: <sip:{name}@{me}>\r\nExpires: 300\r\n{auth}Content-Length: 0\r\n\r\n"
            )
        };
        let callee = Self { sock };
        callee.send(stack.sip_addr(), register(1, "")).await;
        let challenge = callee.response(stack).await;
        assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
        let nonce = challenge
            .split("nonce=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no nonce in {challenge}"));
        let password = stack.password(name).expect("an anchor account");
        let md5 = Algorithm::Md5;
        let ha1 = md5.ha1(name.as_bytes(), d.as_bytes(), password.as_bytes());
        let uri = format!("sip:{d}");
        let response = expected_response(
            md5,
            ha1.as_bytes(),
            b"REGISTER",
            uri.as_bytes(),
            nonce.as_bytes(),
            Some((b"00000001", b"c0ffee", b"auth")),
        );
        let auth = format!(
            "Authorization: Digest username=\"{name}\", realm=\"{d}\", nonce=\"{nonce}\", \
             uri=\"{uri}\", response=\"{}\", algorithm=MD5, qop=auth, nc=00000001, \
             cnonce=\"c0ffee\"\r\n",
            response.as_str()
        );
        callee.send(stack.sip_addr(), register(2, &auth)).await;
        let ok = callee.response(stack).await;
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
        callee
    }

    async fn send(&self, to: SocketAddr, bytes: impl AsRef<[u8]>) {
        self.sock.send_to(bytes.as_ref(), to).await.expect("send");
    }

    async fn datagram(&self, what: &str, stack: &AnchorStack) -> (Bytes, SocketAddr) {
        let mut buf = vec![0u8; 65_536];
        let (n, from) = tokio::time::timeout(STEP, self.sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("callee: no {what} within {STEP:?}\n{}", stack.logs()))
            .expect("recv");
        (Bytes::copy_from_slice(&buf[..n]), from)
    }

    /// The next response, as text.
    async fn response(&self, stack: &AnchorStack) -> String {
        loop {
            let (b, _) = self.datagram("response", stack).await;
            if b.starts_with(b"SIP/2.0 ") {
                return String::from_utf8_lossy(&b).into_owned();
            }
        }
    }

    /// The next request of `method` (retransmissions of others are skipped) and its sender.
    async fn request(&self, method: Method, stack: &AnchorStack) -> (Request, SocketAddr) {
        loop {
            let (b, from) = self.datagram(&format!("{method:?}"), stack).await;
            if let Ok(SipMessage::Request(r)) = parse_datagram(b, &Limits::default())
                && r.method() == method
            {
                return (r, from);
            }
        }
    }
}

/// A cusax caller cancels a ringing call through Kamailio: the callee (a scripted UDP peer
/// registered with digest, an account added while the stack runs) rings and never answers;
/// the proxy relays the CANCEL, the callee ends the INVITE with 487, and the caller reports
/// the call ended as cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_caller_cancels_a_ringing_call_through_kamailio() {
    let mut stack = AnchorStack::start(DOMAIN, USERS);
    stack.add_user("carol", "carol-secret");
    let carol = ScriptedCallee::register(&stack, "carol").await;
    let tmp = tempfile::tempdir().expect("tmp");
    let mut alice = anchor_ua(&stack, "alice", TransportKind::Udp, ALICE_TONE, tmp.path()).await;
    alice.registered(&stack).await;
    let id = alice
        .ua
        .call(&stack.aor("carol"), MediaConfig::default())
        .await
        .expect("call placed");
    let (invite, proxy) = carol.request(Method::Invite, &stack).await;
    assert_eq!(invite.call_id().expect("call-id"), id.as_bytes());
    assert!(
        invite.first(HeaderKind::RecordRoute).is_some(),
        "Kamailio record-routes the INVITE"
    );
    carol
        .send(
            proxy,
            ResponseBuilder::new(&invite, 180, "Ringing")
                .to_tag(b"carol-tag")
                .build(),
        )
        .await;
    alice
        .wait_for("ringing", &stack, |e| is_state(e, CallState::Ringing))
        .await;
    alice.ua.hangup(&id).await;
    let (cancel, from) = carol.request(Method::Cancel, &stack).await;
    assert_eq!(cancel.call_id().expect("call-id"), id.as_bytes());
    carol
        .send(from, ResponseBuilder::new(&cancel, 200, "OK").build())
        .await;
    carol
        .send(
            proxy,
            ResponseBuilder::new(&invite, 487, "Request Terminated")
                .to_tag(b"carol-tag")
                .build(),
        )
        .await;
    let (ack, _) = carol.request(Method::Ack, &stack).await;
    assert_eq!(ack.call_id().expect("call-id"), id.as_bytes());
    let ended = alice
        .wait_for("ended call", &stack, |e| {
            matches!(call_state(e), Some(CallState::Ended | CallState::Failed))
        })
        .await;
    let Event::CallState {
        state,
        code,
        reason,
        ..
    } = &ended
    else {
        unreachable!("a call state")
    };
    assert_eq!(
        (*state, *code, reason.as_deref()),
        (CallState::Ended, Some(487), Some("cancelled")),
        "{ended:?}"
    );
    alice.shutdown().await;
}

/// slixmpp (an independent XMPP client) against Prosody: every account logs in with STARTTLS
/// trusting the stack's certificate and SCRAM-SHA-1 (and a roster fetch); one message each way, vcard-temp set and get, XEP-0199
/// ping and XEP-0030 disco of the server.
const SLIXMPP_PEERS: &str = r#"
import asyncio, ssl, sys
import slixmpp

TIMEOUT = 15
addr, ca = sys.argv[1], sys.argv[2]
users = list(zip(sys.argv[3::2], sys.argv[4::2]))

def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)

class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid, pw):
        super().__init__(jid, pw, sasl_mech="SCRAM-SHA-1")
        self.ca_certs = ca
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        for p in ("xep_0030", "xep_0054", "xep_0199"):
            self.register_plugin(p)
        self.started = asyncio.Event()
        self.failed = asyncio.Event()
        self.tls = None
        self.messages = asyncio.Queue()
        self.add_event_handler("tls_success", self._tls)
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("failed_all_auth", lambda _e: self.failed.set())
        self.add_event_handler("message", lambda m: self.messages.put_nowait(m))

    def _tls(self, _e):
        obj = self.transport.get_extra_info("ssl_object")
        self.tls = obj.version() if obj else "?"

    async def _start(self, _e):
        await self.get_roster()
        self.send_presence()
        self.started.set()

    async def login(self):
        host, port = addr.rsplit(":", 1)
        self.connect(host, int(port))
        done, _ = await asyncio.wait(
            [asyncio.create_task(self.started.wait()), asyncio.create_task(self.failed.wait())],
            timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if not self.started.is_set():
            fail(f"{self.boundjid.bare}: no login in {TIMEOUT}s (auth failed: {self.failed.is_set()})")
        mech = self.plugin["feature_mechanisms"].mech.name
        if self.tls is None:
            fail(f"{self.boundjid.bare}: logged in without STARTTLS")
        if mech != "SCRAM-SHA-1":
            fail(f"{self.boundjid.bare}: mechanism {mech}")
        print(f"login ok {self.boundjid.full} STARTTLS {self.tls} {mech}", flush=True)

async def expect(queue, body):
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                m = await queue.get()
                if m["body"] == body:
                    return m
    except TimeoutError:
        fail(f"no message {body!r} in {TIMEOUT}s")

async def main():
    peers = [Peer(*u) for u in users]
    for p in peers:
        await p.login()
    a, b = peers[0], peers[1]
    a.send_message(mto=b.boundjid.full, mbody="hello bob", mtype="chat")
    m = await expect(b.messages, "hello bob")
    if m["from"].bare != a.boundjid.bare:
        fail(f"message from {m['from']}")
    b.send_message(mto=a.boundjid.bare, mbody="hi alice", mtype="chat")
    await expect(a.messages, "hi alice")
    print("chat ok", flush=True)
    v = a.plugin["xep_0054"].make_vcard()
    v["FN"] = "Alice Anchor"
    await a.plugin["xep_0054"].publish_vcard(v, timeout=TIMEOUT)
    iq = await b.plugin["xep_0054"].get_vcard(jid=a.boundjid.bare, cached=False, timeout=TIMEOUT)
    if iq["vcard_temp"]["FN"] != "Alice Anchor":
        fail(f"vCard FN {iq['vcard_temp']['FN']!r}")
    print("vcard ok", flush=True)
    await a.plugin["xep_0199"].ping(jid=a.boundjid.domain, timeout=TIMEOUT)
    info = await a.plugin["xep_0030"].get_info(jid=a.boundjid.domain, timeout=TIMEOUT)
    features = info["disco_info"]["features"]
    for f in ("vcard-temp", "urn:xmpp:ping"):
        if f not in features:
            fail(f"server disco lacks {f}: {sorted(features)}")
    print("ping and disco ok", flush=True)
    for p in peers:
        p.disconnect()
    print("OK", flush=True)

asyncio.run(main())
"#;

#[test]
fn slixmpp_starttls_scram_sha1_chat_on_prosody() {
    let t0 = Instant::now();
    let mut stack = AnchorStack::start(DOMAIN, USERS);
    let started = t0.elapsed();
    stack.add_user("carol", "carol-secret"); // an account made while Prosody runs
    // Before STARTTLS Prosody offers TLS as required, and no SASL mechanism.
    let f = &stack.prosody.pre_tls_features;
    assert!(
        f.contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"),
        "{f}"
    );
    assert!(!f.contains("mechanisms"), "SASL offered before TLS: {f}");

    let mut cmd = Command::new(slixmpp_python());
    cmd.arg("-c")
        .arg(SLIXMPP_PEERS)
        .arg(stack.xmpp_addr().to_string())
        .arg(stack.ca_cert());
    for u in &stack.users {
        cmd.arg(stack.jid(&u.name)).arg(&u.password);
    }
    let out = cmd.output().expect("python runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.lines().any(|l| l == "OK"),
        "slixmpp peers failed:\n{text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        stack.logs()
    );
    assert!(text.contains("STARTTLS TLSv1."), "{text}");
    eprintln!(
        "anchor stack: started in {started:?}, slixmpp in {:?}\n{text}",
        t0.elapsed() - started
    );
}
