#![allow(dead_code)]
//! What the client's integration tests share: a user agent with everything it reported and
//! bounded waits for its events, a call between two such user agents with audio both ways
//! (checked with the Goertzel tone filter), and a scripted SIP peer on a loopback UDP socket.
//! Each test file uses a part of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cusax_client::{
    Account, AudioSource, CallState, Event, MediaConfig, Secret, TransportKind, UaConfig, UserAgent,
};
use cusax_sip_proto::{Limits, Method, Request, SipMessage, parse_datagram};
use cusax_testkit::Cusaxd;
use cusax_testkit::anchor::AnchorStack;
use cusax_testkit::audio::assert_tone;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;

/// The bound of every wait for a user agent's event against a real server.
pub const STEP: Duration = Duration::from_secs(15);
/// How long a call lasts before it is hung up: enough audio for the tone check.
pub const TALK: Duration = Duration::from_secs(2);
pub const ALICE_TONE: f64 = 440.0;
pub const BOB_TONE: f64 = 880.0;

/// The servers a test runs against, whose logs a failed wait shows.
pub trait ShowLogs {
    /// The logs, as text for a panic message.
    fn show_logs(&self) -> String;
}

impl ShowLogs for Cusaxd {
    fn show_logs(&self) -> String {
        format!("cusaxd:\n{}", self.log())
    }
}

impl ShowLogs for AnchorStack {
    fn show_logs(&self) -> String {
        self.logs()
    }
}

/// Events seen so far, and a bounded wait for the next one matching.
pub struct Events {
    rx: UnboundedReceiver<Event>,
    pub seen: Vec<Event>,
}

impl Events {
    pub fn new(rx: UnboundedReceiver<Event>) -> Self {
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// The first event within `within` matching `pred`, keeping every event seen; `None` if
    /// none came in time or the user agent stopped.
    pub async fn next_matching(
        &mut self,
        within: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return Some(e);
                    }
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Waits (bounded by `within`) for the first event matching `pred`.
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        match self.next_matching(within, pred).await {
            Some(e) => e,
            None => panic!("no {what} within {within:?}; events: {:#?}", self.seen),
        }
    }

    /// The events seen so far that match.
    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.seen.iter().filter(|e| pred(e)).count()
    }
}

/// A user agent and everything it reported.
pub struct Ua {
    pub name: &'static str,
    pub ua: UserAgent,
    pub events: Events,
}

impl Ua {
    /// Starts `cfg` registering and auto-answering: calls it answers send `tone` and are
    /// recorded in `record_dir/name` (the user agent makes that directory if it is missing).
    pub async fn start(
        name: &'static str,
        mut cfg: UaConfig,
        tone: f64,
        record_dir: &Path,
    ) -> Self {
        cfg.register = true;
        cfg.auto_answer = true;
        cfg.answer_source = AudioSource::Tone(tone);
        cfg.record_dir = Some(record_dir.join(name));
        let (ua, events) = UserAgent::start(cfg).await.expect("user agent starts");
        Self {
            name,
            ua,
            events: Events::new(events),
        }
    }

    /// Every event this user agent reported so far.
    pub fn seen(&self) -> &[Event] {
        &self.events.seen
    }

    /// Waits (bounded by [`STEP`]) for the first event matching `pred`, keeping every event
    /// seen; on failure shows them and the logs of `server`.
    pub async fn wait_for(
        &mut self,
        what: &str,
        server: &dyn ShowLogs,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        match self.events.next_matching(STEP, pred).await {
            Some(e) => e,
            None => panic!(
                "{}: no {what} within {STEP:?}; events: {:#?}\n{}",
                self.name,
                self.events.seen,
                server.show_logs()
            ),
        }
    }

    /// Waits for the registration and returns the address of record and the contact.
    pub async fn registered(&mut self, server: &dyn ShowLogs) -> (String, String) {
        let reg = self
            .wait_for("registration", server, |e| {
                matches!(e, Event::Registered { .. })
            })
            .await;
        let Event::Registered { aor, contact, .. } = reg else {
            unreachable!("matched above")
        };
        (aor, contact)
    }

    /// The states this user agent's calls went through, in order.
    pub fn states(&self) -> Vec<CallState> {
        self.events.seen.iter().filter_map(call_state).collect()
    }

    /// Stops the user agent (bounded by [`STEP`]).
    pub async fn shutdown(&self) {
        tokio::time::timeout(STEP, self.ua.shutdown())
            .await
            .unwrap_or_else(|_| panic!("{} did not shut down", self.name));
    }
}

pub fn call_state(e: &Event) -> Option<CallState> {
    match e {
        Event::CallState { state, .. } => Some(*state),
        _ => None,
    }
}

pub fn is_state(e: &Event, want: CallState) -> bool {
    call_state(e) == Some(want)
}

/// The recording and packet counts of an ended call.
pub fn media(e: &Event) -> (Option<PathBuf>, u64, u64) {
    match e {
        Event::CallState { media: Some(m), .. } => {
            (m.recording.clone(), m.packets_sent, m.packets_received)
        }
        _ => (None, 0, 0),
    }
}

/// A call from alice to bob, both registered and started with [`Ua::start`] (bob answers
/// with [`BOB_TONE`]), through `server`.
pub struct AudioCall<'a> {
    /// Whose logs a failed wait shows.
    pub server: &'a dyn ShowLogs,
    /// What alice dials.
    pub bob_aor: String,
    /// The From bob sees.
    pub alice_aor: String,
    /// The JID alice announces in Call-Info (RFC 7081 §6).
    pub alice_jid: String,
    /// Where alice records the call.
    pub alice_wav: PathBuf,
    /// Whether bob sends the BYE (otherwise alice does).
    pub bob_hangs_up: bool,
    /// The RTP packets each side must have sent and received.
    pub min_packets: u64,
}

impl AudioCall<'_> {
    /// Alice calls bob with [`ALICE_TONE`]; bob sees the incoming call with the same Call-ID,
    /// alice's address of record and her JID in Call-Info; both see the call established; it
    /// lasts [`TALK`] and is hung up by one side; both see it ended (local and remote hangup),
    /// RTP went both ways, and each side's recording holds the other side's tone.
    pub async fn run(&self, alice: &mut Ua, bob: &mut Ua) {
        let server = self.server;
        let call_id = alice
            .ua
            .call(
                &self.bob_aor,
                MediaConfig {
                    source: AudioSource::Tone(ALICE_TONE),
                    record: Some(self.alice_wav.clone()),
                },
            )
            .await
            .expect("call placed");
        let incoming = bob
            .wait_for("incoming call", server, |e| {
                matches!(e, Event::IncomingCall { .. })
            })
            .await;
        let Event::IncomingCall {
            call_id: bob_call,
            from,
            call_info,
            ..
        } = incoming
        else {
            unreachable!("matched above")
        };
        assert_eq!(bob_call, call_id, "the proxy keeps the Call-ID");
        assert_eq!(from, self.alice_aor);
        assert_eq!(
            call_info,
            [format!("<xmpp:{}>;purpose=impp", self.alice_jid)],
            "Call-Info passes the proxy unchanged"
        );
        for ua in [&mut *alice, &mut *bob] {
            ua.wait_for("established call", server, |e| {
                is_state(e, CallState::Established)
            })
            .await;
        }

        // The call's duration: audio flows both ways meanwhile.
        tokio::time::sleep(TALK).await;
        let (hanger, other) = if self.bob_hangs_up {
            (&mut *bob, &mut *alice)
        } else {
            (&mut *alice, &mut *bob)
        };
        hanger.ua.hangup(&call_id).await;
        let ended_here = hanger
            .wait_for("ended call", server, |e| is_state(e, CallState::Ended))
            .await;
        let ended_there = other
            .wait_for("ended call", server, |e| is_state(e, CallState::Ended))
            .await;
        for (e, why) in [
            (&ended_here, "local hangup"),
            (&ended_there, "remote hangup"),
        ] {
            let Event::CallState { reason, .. } = e else {
                unreachable!("a call state")
            };
            assert_eq!(reason.as_deref(), Some(why), "{e:?}");
        }
        let (alice_ended, bob_ended) = if self.bob_hangs_up {
            (&ended_there, &ended_here)
        } else {
            (&ended_here, &ended_there)
        };
        let (alice_rec, a_sent, a_recv) = media(alice_ended);
        let (bob_rec, b_sent, b_recv) = media(bob_ended);
        let min = self.min_packets;
        assert!(
            a_sent >= min && a_recv >= min && b_sent >= min && b_recv >= min,
            "RTP both ways: alice {a_sent} sent / {a_recv} received, bob {b_sent} / {b_recv}"
        );
        assert_eq!(alice_rec.as_deref(), Some(self.alice_wav.as_path()));
        let bob_rec = bob_rec.expect("bob's answered call is recorded");
        let min = TALK.as_secs_f64() * 0.75;
        assert_tone(
            &self.alice_wav,
            BOB_TONE,
            &[BOB_TONE * 1.5, ALICE_TONE],
            min,
        );
        assert_tone(&bob_rec, ALICE_TONE, &[ALICE_TONE * 1.5, BOB_TONE], min);
    }
}

/// Alice's account at example.org (password `pw`, JID alice@example.org), served by `server`
/// (a scripted peer) over `transport`.
pub fn alice_account(server: SocketAddr, transport: TransportKind) -> Account {
    Account {
        user: "alice".into(),
        domain: "example.org".into(),
        display_name: None,
        secret: Secret::new("alice", "pw"),
        server,
        transport,
        impp: Some("alice@example.org".into()),
    }
}

/// A scripted SIP peer on a loopback UDP socket: it answers whoever sent to it last.
pub struct UdpPeer {
    pub sock: UdpSocket,
    pub client: Option<SocketAddr>,
    /// How long it waits for each datagram.
    pub wait: Duration,
}

impl UdpPeer {
    pub async fn new(wait: Duration) -> Self {
        Self {
            sock: UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
            client: None,
            wait,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    /// The next datagram (bounded by `wait`); its sender becomes the client.
    pub async fn recv(&mut self, what: &str) -> Bytes {
        let mut buf = vec![0u8; 65_536];
        let (n, from) = tokio::time::timeout(self.wait, self.sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {what} within {:?}", self.wait))
            .expect("recv");
        self.client = Some(from);
        Bytes::copy_from_slice(&buf[..n])
    }

    /// The next request of `method` from the client (responses and retransmissions of other
    /// methods are skipped).
    pub async fn request(&mut self, method: Method) -> Request {
        loop {
            let b = self.recv(&format!("{method:?}")).await;
            let msg = parse_datagram(b, &Limits::default()).expect("the client sends valid SIP");
            if let SipMessage::Request(r) = msg
                && r.method() == method
            {
                return r;
            }
        }
    }

    /// Sends to the client.
    pub async fn send(&self, bytes: impl AsRef<[u8]>) {
        let to = self.client.expect("a client has spoken");
        self.sock.send_to(bytes.as_ref(), to).await.expect("send");
    }
}
