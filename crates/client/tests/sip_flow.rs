//! RFC 7081 §2 ("keep both connections alive") and RFC 5626 §4.4–§4.5: the user agent keeps
//! its flow alive and recovers it. Against scripted peers: CRLF pings answered by pongs on TCP,
//! STUN Binding requests on UDP, and an unanswered keep-alive or a 503 to REGISTER leading to a
//! new flow and a new registration. Against a real `cusaxd`: the server is stopped and another
//! one started on the same port and data directory, and the same user agent registers again.
//! Every wait is bounded; progress is observed through events and received messages.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use common::{Events, UdpPeer, alice_account};
use cusax_client::sip::FlowConfig;
use cusax_client::{Event, Secret, TransportKind, UaConfig, UserAgent};
use cusax_sip_proto::message::{HeaderKind, ResponseBuilder};
use cusax_sip_proto::{
    Limits, Method, Request, SipMessage, StreamFrame, frame_stream, parse_datagram,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(5);

/// A registering user agent with fast keep-alive failure detection and quick retries.
fn config(server: SocketAddr, transport: TransportKind) -> UaConfig {
    let mut cfg = UaConfig::new(alice_account(server, transport));
    cfg.register = true;
    cfg.flow = FlowConfig {
        keepalive_timeout: Duration::from_millis(700),
        reconnect_min: Duration::from_millis(200),
        reconnect_max: Duration::from_secs(2),
        ..FlowConfig::default()
    };
    cfg
}

fn registered(e: &Event) -> bool {
    matches!(e, Event::Registered { .. })
}

fn ok_with_flow_timer(req: &Request, secs: u32) -> BytesMut {
    ResponseBuilder::new(req, 200, "OK")
        .to_tag(b"srv")
        .header("Flow-Timer", secs.to_string().as_bytes())
        .build()
}

// ----- TCP: CRLF keep-alives --------------------------------------------------------------

/// What a scripted stream server reads from the client.
#[derive(Debug)]
enum Frame {
    Ping,
    Request(Box<Request>),
}

struct StreamPeer {
    stream: TcpStream,
    buf: BytesMut,
}

impl StreamPeer {
    async fn accept(l: &TcpListener) -> Self {
        let (stream, _) = tokio::time::timeout(WAIT, l.accept())
            .await
            .expect("the client connects in time")
            .expect("accept");
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    async fn next(&mut self) -> Frame {
        loop {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.advance(4);
                return Frame::Ping;
            }
            if !self.buf.starts_with(b"\r") {
                match frame_stream(&self.buf, &Limits::default()).expect("valid framing") {
                    StreamFrame::Message { len } => {
                        let msg = self.buf.split_to(len).freeze();
                        match parse_datagram(msg, &Limits::default()).expect("valid SIP") {
                            SipMessage::Request(r) => return Frame::Request(Box::new(r)),
                            SipMessage::Response(_) => continue,
                        }
                    }
                    StreamFrame::Ping { consumed } | StreamFrame::Pong { consumed } => {
                        self.buf.advance(consumed);
                        continue;
                    }
                    StreamFrame::Incomplete => {}
                }
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("the client sends in time")
                .expect("read");
            assert!(n > 0, "the client closed the connection");
        }
    }

    /// The next request, answering pings on the way.
    async fn request(&mut self, method: Method) -> Request {
        loop {
            match self.next().await {
                Frame::Ping => self.send(b"\r\n").await,
                Frame::Request(r) if r.method() == method => return *r,
                Frame::Request(r) => panic!("expected {method:?}, got {:?}", r.method()),
            }
        }
    }

    async fn send(&mut self, b: &[u8]) {
        self.stream.write_all(b).await.expect("write");
    }

    /// Whether the client closes the connection (bounded wait; what it still sends is read).
    async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }
}

#[tokio::test]
async fn crlf_pings_are_sent_at_the_flow_timer_and_a_missing_pong_reopens_the_flow() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = listener.local_addr().expect("addr");
    let (ua, rx) = UserAgent::start(config(server, TransportKind::Tcp))
        .await
        .expect("start");
    let mut events = Events::new(rx);

    let mut first = StreamPeer::accept(&listener).await;
    let r1 = first.request(Method::Register).await;
    first.send(&ok_with_flow_timer(&r1, 1)).await;
    events.wait_for("registration", WAIT, registered).await;

    // RFC 5626 §4.4.1: a ping within 80–100 % of the Flow-Timer; the pong keeps the flow.
    let t0 = Instant::now();
    assert!(matches!(first.next().await, Frame::Ping));
    let interval = t0.elapsed();
    assert!(
        interval >= Duration::from_millis(700) && interval <= Duration::from_millis(1500),
        "first ping after {interval:?}"
    );
    first.send(b"\r\n").await;
    assert!(matches!(first.next().await, Frame::Ping), "pings go on");
    assert_eq!(
        events.count(|e| matches!(e, Event::TransportClosed { .. })),
        0,
        "an answered ping keeps the flow: {:#?}",
        events.seen
    );

    // This one goes unanswered: the flow is dead, a new connection registers again.
    let closed = events
        .wait_for("flow failure", WAIT, |e| {
            matches!(e, Event::TransportClosed { .. })
        })
        .await;
    assert_eq!(
        closed,
        Event::TransportClosed {
            reason: "keep-alive unanswered".into()
        }
    );
    let again = events
        .wait_for("reconnection", WAIT, |e| {
            matches!(e, Event::Reconnecting { .. })
        })
        .await;
    let Event::Reconnecting {
        attempt, in_secs, ..
    } = again
    else {
        unreachable!("matched above")
    };
    assert_eq!(attempt, 1);
    assert!(
        (0.1..=0.2).contains(&in_secs),
        "first retry after {in_secs} s"
    );

    let mut second = StreamPeer::accept(&listener).await;
    let r2 = second.request(Method::Register).await;
    assert_eq!(
        r2.call_id().ok(),
        r1.call_id().ok(),
        "the same registration"
    );
    assert!(r2.cseq().expect("cseq").number > r1.cseq().expect("cseq").number);
    assert_ne!(
        r2.first(HeaderKind::Contact).map(|h| h.value.to_vec()),
        r1.first(HeaderKind::Contact).map(|h| h.value.to_vec()),
        "the contact names the new connection"
    );
    second.send(&ok_with_flow_timer(&r2, 1)).await;
    events
        .wait_for("registration again", WAIT, registered)
        .await;
    assert!(
        first.closed().await,
        "the dead flow's connection is closed by the client"
    );

    let stopper = tokio::spawn(async move { ua.shutdown().await });
    let r3 = second.request(Method::Register).await;
    assert_eq!(r3.expires().expect("expires"), Some(0));
    second
        .send(&ResponseBuilder::new(&r3, 200, "OK").to_tag(b"srv").build())
        .await;
    tokio::time::timeout(WAIT, stopper)
        .await
        .expect("stops")
        .expect("join");
}

// ----- UDP: STUN keep-alives and retryable failures ---------------------------------------

/// What a scripted UDP server receives.
#[derive(Debug)]
enum Datagram {
    Stun(Vec<u8>),
    Request(Box<Request>),
}

/// The STUN and REGISTER side of the shared scripted UDP peer.
impl UdpPeer {
    async fn next(&mut self) -> Datagram {
        let data = self.recv("datagram").await;
        if cusax_sip_proto::stun::is_stun(&data) {
            return Datagram::Stun(data.to_vec());
        }
        match parse_datagram(data, &Limits::default()).expect("the client sends valid SIP") {
            SipMessage::Request(r) => Datagram::Request(Box::new(r)),
            SipMessage::Response(r) => panic!("unexpected response {}", r.code()),
        }
    }

    /// The next REGISTER, counting the STUN requests received meanwhile.
    async fn register(&mut self) -> (Request, usize) {
        let mut stun = 0;
        loop {
            match self.next().await {
                Datagram::Stun(_) => stun += 1,
                Datagram::Request(r) if r.method() == Method::Register => return (*r, stun),
                Datagram::Request(r) => panic!("unexpected {:?}", r.method()),
            }
        }
    }
}

#[tokio::test]
async fn stun_keepalives_on_udp_and_silence_leads_to_a_new_registration() {
    let mut peer = UdpPeer::new(WAIT).await;
    let (_ua, rx) = UserAgent::start(config(peer.addr(), TransportKind::Udp))
        .await
        .expect("start");
    let mut events = Events::new(rx);
    let (r1, _) = peer.register().await;
    let first_source = peer.client;
    peer.send(&ok_with_flow_timer(&r1, 1)).await;
    events.wait_for("registration", WAIT, registered).await;

    // RFC 5626 §4.4.2: a STUN Binding request, answered with the server's own encoder.
    let Datagram::Stun(req) = peer.next().await else {
        panic!("a STUN keep-alive is due first");
    };
    let client = peer.client.expect("client");
    let answer = cusax_sip_proto::stun::binding_response(&req, client).expect("a Binding request");
    peer.send(&answer).await;
    let Datagram::Stun(next) = peer.next().await else {
        panic!("the next keep-alive");
    };
    assert_ne!(
        next[8..20],
        req[8..20],
        "a new transaction for each keep-alive"
    );

    // No answer (nor to the retransmissions): a new flow, a new REGISTER.
    let (r2, retransmissions) = peer.register().await;
    assert!(retransmissions >= 1, "STUN requests are retransmitted");
    assert_ne!(peer.client, first_source, "the flow was reopened");
    assert_eq!(r2.call_id().ok(), r1.call_id().ok());
    events
        .wait_for("flow failure", WAIT, |e| {
            *e == Event::TransportClosed {
                reason: "keep-alive unanswered".into(),
            }
        })
        .await;
    peer.send(&ok_with_flow_timer(&r2, 1)).await;
    events
        .wait_for("registration again", WAIT, registered)
        .await;
}

#[tokio::test]
async fn a_503_to_register_is_retried_with_growing_delays() {
    let mut peer = UdpPeer::new(WAIT).await;
    let (_ua, rx) = UserAgent::start(config(peer.addr(), TransportKind::Udp))
        .await
        .expect("start");
    let mut events = Events::new(rx);
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        let (r, _) = peer.register().await;
        peer.send(
            &ResponseBuilder::new(&r, 503, "Service Unavailable")
                .to_tag(b"srv")
                .build(),
        )
        .await;
        let failed = events
            .wait_for("failure", WAIT, |e| {
                matches!(e, Event::RegistrationFailed { .. })
            })
            .await;
        assert!(matches!(
            failed,
            Event::RegistrationFailed { code: 503, .. }
        ));
        let Event::Reconnecting {
            attempt: n,
            in_secs,
            reason,
        } = events
            .wait_for("retry", WAIT, |e| matches!(e, Event::Reconnecting { .. }))
            .await
        else {
            unreachable!("matched above")
        };
        assert_eq!(n, attempt);
        assert_eq!(reason, "REGISTER failed: 503 Service Unavailable");
        delays.push(in_secs);
    }
    // 0.2 s doubling: each delay within half and all of 0.2, 0.4, 0.8 s.
    for (d, bound) in delays.iter().zip([0.2, 0.4, 0.8]) {
        assert!(*d >= bound / 2.0 && *d <= bound, "{delays:?}");
    }
    let (r, _) = peer.register().await;
    peer.send(&ok_with_flow_timer(&r, 30)).await;
    events.wait_for("registration", WAIT, registered).await;
    assert_eq!(
        events.count(|e| matches!(e, Event::TransportClosed { .. })),
        0,
        "a refused REGISTER is no transport failure"
    );
}

// ----- a real cusaxd restarting under the user agent --------------------------------------

const DOMAIN: &str = "example.org";

/// A `cusaxd` started on a fixed SIP port (testkit's `Cusaxd` always asks for port 0),
/// without the default TLS ports, stopped with SIGTERM.
struct FixedPortServer {
    child: Child,
    stderr: PathBuf,
}

impl FixedPortServer {
    fn start(data_dir: &Path, sip_port: u16) -> Self {
        let root = data_dir
            .parent()
            .expect("invariant: a data dir has a parent");
        let config = root.join("cusaxd-test.toml");
        // SIP over TLS on any free port: 5061 may be taken on the test machine.
        std::fs::write(&config, "[sip]\ntls_port = 0\n").expect("write config");
        let ready = root.join(format!("ready-{sip_port}"));
        let _ = std::fs::remove_file(&ready);
        let stderr = root.join(format!("cusaxd-{}.stderr", std::process::id()));
        let child = Command::new(cusax_testkit::bin("cusaxd"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--domain", DOMAIN, "--bind", "127.0.0.1"])
            .args(["--sip-port", &sip_port.to_string()])
            .args(["--xmpp-port", "0", "--http-port", "0"])
            .arg("--ready-file")
            .arg(&ready)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("cusaxd starts");
        let mut s = Self { child, stderr };
        let deadline = Instant::now() + cusax_testkit::START_TIMEOUT;
        while !ready.exists() {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("cusaxd exited early with {st}: {}", s.log());
            }
            assert!(Instant::now() < deadline, "cusaxd not ready: {}", s.log());
            std::thread::sleep(Duration::from_millis(20)); // polling the ready file
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM to the process we started, and wait for it to exit.
    fn stop(&mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "cusaxd did not stop");
            std::thread::sleep(Duration::from_millis(10)); // polling the exit status
        }
    }
}

impl Drop for FixedPortServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_user_agent_registers_again_after_cusaxd_restarts_on_the_same_port() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let port = cusax_testkit::free_sip_port();
    let mut first = FixedPortServer::start(&data, port);
    let csv = tmp.path().join("users.csv");
    std::fs::write(&csv, "alice@example.org,alice-pw\n").expect("csv");
    let out = cusax_testkit::cusaxctl(&data, &["user", "import", csv.to_str().expect("utf-8")], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cfg = config(server, TransportKind::Tcp);
    cfg.account.secret = Secret::new("alice", "alice-pw");
    cfg.flow = FlowConfig::default(); // 1 s doubling, as shipped
    let (ua, rx) = UserAgent::start(cfg).await.expect("start");
    let mut events = Events::new(rx);
    let Event::Registered { contact: c1, .. } =
        events.wait_for("registration", WAIT, registered).await
    else {
        unreachable!("matched above")
    };

    first.stop();
    events
        .wait_for("loss of the connection", WAIT, |e| {
            matches!(e, Event::TransportClosed { .. })
        })
        .await;
    events
        .wait_for("a reconnection attempt", WAIT, |e| {
            matches!(e, Event::Reconnecting { attempt: 1, .. })
        })
        .await;

    let second = FixedPortServer::start(&data, port);
    let Event::Registered { contact: c2, .. } = events
        .wait_for(
            "registration with the new server",
            Duration::from_secs(30),
            registered,
        )
        .await
    else {
        unreachable!("matched above")
    };
    assert_ne!(c1, c2, "a new connection, a new contact");
    assert!(
        second
            .log()
            .contains("authenticated protocol=\"sip\" account=alice@example.org"),
        "the new server authenticated alice: {}",
        second.log()
    );
    tokio::time::timeout(WAIT, ua.shutdown())
        .await
        .expect("stops");
    events
        .wait_for("removal of the binding at the new server", WAIT, |e| {
            matches!(e, Event::Unregistered { .. })
        })
        .await;
}
