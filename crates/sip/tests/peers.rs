//! RFC 3261 §10 end to end: a real `cusaxd` and real peers (sipp, raw UDP sockets) on loopback.
//!
//! Needs `sipp` on PATH (Debian package `sip-tester`); without it these tests fail loudly.
//! Build the binaries first (`cargo build -p cusaxd -p cusaxctl`) so that they are current.

use cusax_sip_proto::{Limits, SipMessage};
use cusax_testkit::{Cusaxd, SippRun};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DOMAIN: &str = "sip.test";

use cusax_testkit::{free_sip_port as free_port, require_sipp, sipp_scenarios as sipp_dir};

struct Peer {
    dir: tempfile::TempDir,
    server: SocketAddr,
}

impl Peer {
    fn new(server: SocketAddr) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            server,
        }
    }

    /// Writes a sipp CSV of `user;password;domain` rows and returns its path.
    fn csv(&self, name: &str, rows: &[(&str, &str)]) -> PathBuf {
        let mut t = String::from("SEQUENTIAL\n");
        for (u, p) in rows {
            t.push_str(&format!("{u};{p};{DOMAIN}\n"));
        }
        let path = self.dir.path().join(name);
        std::fs::write(&path, t).expect("write csv");
        path
    }

    /// One sipp scenario as a bounded command line (`timeout 30`, `-recv_timeout 3 s`).
    fn command(
        &self,
        scenario: &str,
        transport: &str,
        csv: &Path,
        calls: usize,
        extra: &[&str],
    ) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg("30")
            .arg("sipp")
            .arg(self.server.to_string())
            .arg("-sf")
            .arg(sipp_dir().join(scenario))
            .args(["-t", transport, "-inf"])
            .arg(csv)
            .args(["-au", "[field0]", "-ap", "[field1]", "-auth_uri", DOMAIN])
            .args(["-m", &calls.to_string(), "-r", "50", "-nd", "-nostdin"])
            .args(["-recv_timeout", "3000", "-timeout", "20s", "-timeout_error"])
            .args(extra)
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs one sipp scenario to completion (bounded); true when every call succeeded.
    fn run(
        &self,
        scenario: &str,
        transport: &str,
        csv: &Path,
        calls: usize,
        extra: &[&str],
    ) -> bool {
        let out = self
            .command(scenario, transport, csv, calls, extra)
            .output()
            .expect("sipp runs");
        out.status.success()
    }

    /// Runs one call of a scenario with sipp's message trace on, for a check that expects
    /// the scenario to fail: the trace shows how the server answered.
    fn traced(&self, scenario: &str, transport: &str, csv: &Path, extra: &[&str]) -> SippRun {
        let trace = self.dir.path().join(format!(
            "{}-{transport}.msg",
            scenario.trim_end_matches(".xml")
        ));
        SippRun::traced(
            &mut self.command(scenario, transport, csv, 1, extra),
            &trace,
        )
    }
}

fn start_with_users(users: &[(&str, &str)]) -> Cusaxd {
    let srv = Cusaxd::start(DOMAIN);
    import(&srv, users);
    srv
}

fn import(srv: &Cusaxd, users: &[(&str, &str)]) {
    srv.import_users(DOMAIN, users);
}

#[test]
fn register_query_unregister_over_udp_and_tcp() {
    require_sipp();
    let srv = start_with_users(&[("alice", "pw-a"), ("bob", "pw-b"), ("carol", "pw-c")]);
    let peer = Peer::new(srv.addr("sip_udp").expect("sip_udp"));
    let users = peer.csv("users.csv", &[("alice", "pw-a"), ("bob", "pw-b")]);
    let carol = peer.csv("carol.csv", &[("carol", "pw-c")]);
    let wrong = peer.csv("wrong.csv", &[("carol", "pw-c")]);
    let unknown = peer.csv("unknown.csv", &[("nobody", "pw-x")]);
    for t in ["u1", "t1"] {
        let port = free_port().to_string();
        let p = ["-p", port.as_str()];
        assert!(
            peer.run("options.xml", t, &users, 1, &[]),
            "{t}: OPTIONS answered 200"
        );
        assert!(
            peer.run("unregister_all.xml", t, &users, 2, &[]),
            "{t}: Contact: *"
        );
        assert!(
            peer.run("register_digest.xml", t, &users, 2, &p),
            "{t}: REGISTER 200 lists binding + expires"
        );
        assert!(
            peer.run("register_query.xml", t, &users, 2, &[]),
            "{t}: query lists it"
        );
        assert!(
            peer.run("unregister.xml", t, &users, 2, &p),
            "{t}: expires=0 removes it"
        );
        // The query is answered 200 (so the exchange happened) and lists no binding: the
        // scenario, which wants one, fails on that 200.
        let query = peer.traced("register_query.xml", t, &users, &[]);
        let listed = query.assert_failed_with("2 REGISTER", 200, "query after unregister");
        assert_eq!(
            listed.header("Contact"),
            None,
            "{t}: nothing left to list:\n{}",
            listed.text
        );
        assert!(
            peer.run("register_digest.xml", t, &users, 2, &[]),
            "{t}: register again"
        );
        assert!(
            peer.run("unregister_all.xml", t, &users, 2, &[]),
            "{t}: Contact: * clears"
        );
        assert!(
            peer.run(
                "register_wrong_password.xml",
                t,
                &wrong,
                1,
                &["-ap", "wrong-[field1]"]
            ),
            "{t}: wrong password refused"
        );
        // The wrong-password scenario tells the two apart: with the right password the
        // authenticated REGISTER gets its 200, and the scenario fails on it.
        let _ = peer
            .traced("register_wrong_password.xml", t, &carol, &[])
            .assert_failed_with("2 REGISTER", 200, "the right password is not refused");
        // An unknown user gets the same fresh 401 as a wrong password (no enumeration): same
        // reason, same header fields, same challenge but for its nonce and opaque.
        let wrong_run = peer.traced("register_digest.xml", t, &wrong, &["-ap", "wrong-[field1]"]);
        let wrong_401 = wrong_run.assert_failed_with("2 REGISTER", 401, "wrong password");
        let unknown_run = peer.traced("register_digest.xml", t, &unknown, &[]);
        let unknown_401 = unknown_run.assert_failed_with("2 REGISTER", 401, "unknown user");
        assert_eq!(
            answer_shape(&unknown_401),
            answer_shape(&wrong_401),
            "{t}: an unknown user is told apart from a wrong password:\n{}\n---\n{}",
            unknown_401.text,
            wrong_401.text
        );
    }
}

/// What a 401 tells a caller, without what differs on every challenge: the start line, the
/// header field names in order, and each challenge's parameters but `nonce` and `opaque`.
fn answer_shape(r: &cusax_testkit::sipp::Traced) -> (String, Vec<String>, Vec<Vec<String>>) {
    let head = r.text.lines().skip(1).take_while(|l| !l.trim().is_empty());
    let names = head
        .clone()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, _)| n.trim().to_ascii_lowercase())
        })
        .collect();
    let challenges = head
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|(_, v)| {
            let mut params: Vec<String> = v
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| {
                    let name = p.split('=').next().unwrap_or_default().trim();
                    let name = name.rsplit(' ').next().unwrap_or_default();
                    !name.eq_ignore_ascii_case("nonce") && !name.eq_ignore_ascii_case("opaque")
                })
                .collect();
            params.sort();
            params
        })
        .collect();
    (r.start_line().to_owned(), names, challenges)
}

#[test]
fn lock_refuses_the_next_register() {
    require_sipp();
    let srv = start_with_users(&[("dave", "pw-d")]);
    let peer = Peer::new(srv.addr("sip_udp").expect("sip_udp"));
    let dave = peer.csv("dave.csv", &[("dave", "pw-d")]);
    assert!(peer.run("register_digest.xml", "u1", &dave, 1, &[]));
    let out = srv.ctl(&["user", "lock", &format!("dave@{DOMAIN}")], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server learns of the lock from the change log (polled every 200 ms): retry until
    // the effect shows, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !peer.run("register_locked.xml", "u1", &dave, 1, &[]) {
        assert!(
            Instant::now() < deadline,
            "REGISTER still accepted 10 s after the lock"
        );
    }
    let _ = peer
        .traced("register_digest.xml", "u1", &dave, &[])
        .assert_failed_with("2 REGISTER", 403, "locked: no 200");
}

#[test]
fn bindings_survive_a_restart() {
    require_sipp();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut srv = Cusaxd::start_in(&dir, &["--domain", DOMAIN]);
    import(&srv, &[("erin", "pw-e")]);
    let peer = Peer::new(srv.addr("sip_udp").expect("sip_udp"));
    let erin = peer.csv("erin.csv", &[("erin", "pw-e")]);
    assert!(peer.run("register_digest.xml", "u1", &erin, 1, &[]));
    let (st, _) = srv.stop();
    assert!(st.success(), "clean stop: {st}");
    assert!(
        srv.log().contains("sip: location flushed at shutdown"),
        "{}",
        srv.log()
    );
    let srv = Cusaxd::start_in(&dir, &["--domain", DOMAIN]);
    let peer = Peer::new(srv.addr("sip_udp").expect("sip_udp"));
    let erin = peer.csv("erin.csv", &[("erin", "pw-e")]);
    assert!(
        peer.run("register_query.xml", "u1", &erin, 1, &[]),
        "the binding made before the restart is listed: {}",
        srv.log()
    );
}

/// How cusaxd answers one torture message on a TCP connection of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// These final responses, in order (a `100 Trying` may come first).
    Answer(&'static [u16]),
    /// Nothing: a response or an ACK, which are never answered.
    Silent,
    /// Nothing: a request whose Via, From, To or CSeq does not parse, so no response can be
    /// built from it (RFC 3261 §8.2.6.2 copies them). RFC 4475 asks for a 400 (a SHOULD):
    /// cusaxd drops these, counted in `cusax_sip_dropped_invalid_total`.
    Dropped,
    /// These final responses, then the connection is closed: what follows cannot be framed.
    AnswerThenClosed(&'static [u16]),
    /// The connection is closed unanswered: the stream cannot be framed (RFC 3261 §18.3).
    Closed,
    /// Content-Length announces more than is sent; the server waits for it until the
    /// client closes its side, then closes too, unanswered.
    Waits,
}
use Wire::*;

/// What cusaxd, serving `example.com` (the torture messages' own domain) beside `sip.test`,
/// answers to each torture message, and why (RFC 4475 section).
/// Requests of a served domain's user are challenged (407), REGISTERs 401; unknown users of
/// a served domain get 404, other domains are not relayed for strangers (403).
const WIRE: &[(&str, Wire, &str)] = &[
    (
        "rfc4475/wsinv",
        Answer(&[404]),
        "3.1.1.1 valid, but a To tag without our Route: not relayed",
    ),
    (
        "rfc4475/intmeth",
        Answer(&[407]),
        "3.1.1.2 extension method from example.com: challenged",
    ),
    (
        "rfc4475/esc01",
        Answer(&[403]),
        "3.1.1.3 stranger to another domain: not relayed",
    ),
    (
        "rfc4475/escnull",
        Answer(&[401]),
        "3.1.1.4 REGISTER: challenged",
    ),
    (
        "rfc4475/esc02",
        Answer(&[407]),
        "3.1.1.5 from example.com: challenged",
    ),
    (
        "rfc4475/lwsdisp",
        Answer(&[407]),
        "3.1.1.6 from example.com: challenged",
    ),
    (
        "rfc4475/longreq",
        Answer(&[404]),
        "3.1.1.7 unknown user of example.com",
    ),
    (
        "rfc4475/dblreq",
        AnswerThenClosed(&[401, 404]),
        "3.1.1.8 REGISTER, then the INVITE the tail holds, then the tail breaks the stream",
    ),
    ("rfc4475/semiuri", Answer(&[404]), "3.1.1.9 unknown user"),
    (
        "rfc4475/transports",
        Answer(&[407]),
        "3.1.1.10 from example.com: challenged",
    ),
    (
        "rfc4475/mpart01",
        Answer(&[405]),
        "3.1.1.11 MESSAGE: SIP IM is refused (RFC 7081)",
    ),
    ("rfc4475/unreason", Silent, "3.1.1.12 a response"),
    ("rfc4475/noreason", Silent, "3.1.1.13 a response"),
    (
        "rfc4475/badinv01",
        Dropped,
        "3.1.2.1 Via with extraneous separators",
    ),
    ("rfc4475/clerr", Waits, "3.1.2.2 Content-Length 9999"),
    ("rfc4475/ncl", Closed, "3.1.2.3 negative Content-Length"),
    ("rfc4475/scalar02", Dropped, "3.1.2.4 overlarge CSeq number"),
    (
        "rfc4475/scalarlg",
        Silent,
        "3.1.2.5 a response (overlarge values): dropped",
    ),
    (
        "rfc4475/quotbal",
        Dropped,
        "3.1.2.6 unterminated quote in To",
    ),
    (
        "rfc4475/ltgtruri",
        Closed,
        "3.1.2.7 <> around the Request-URI: no start line",
    ),
    ("rfc4475/lwsruri", Closed, "3.1.2.8 LWS in the Request-URI"),
    (
        "rfc4475/lwsstart",
        Closed,
        "3.1.2.9 several SP in the request line",
    ),
    (
        "rfc4475/trws",
        Closed,
        "3.1.2.10 SP at the end of the request line",
    ),
    (
        "rfc4475/escruri",
        Answer(&[400]),
        "3.1.2.11 escaped headers in a SIP Request-URI",
    ),
    (
        "rfc4475/baddate",
        Answer(&[404]),
        "3.1.2.12 Date is not used: unknown user",
    ),
    (
        "rfc4475/regbadct",
        Answer(&[400]),
        "3.1.2.13 Contact with unenclosed URI headers",
    ),
    (
        "rfc4475/badaspec",
        Dropped,
        "3.1.2.14 spaces within the addr-spec of To",
    ),
    (
        "rfc4475/baddn",
        Closed,
        "3.1.2.15 no empty line: the marker's start line becomes a bad header",
    ),
    (
        "rfc4475/badvers",
        Closed,
        "3.1.2.16 SIP/7.0: not a SIP/2.0 stream",
    ),
    (
        "rfc4475/mismatch01",
        Answer(&[400]),
        "3.1.2.17 CSeq method mismatch",
    ),
    (
        "rfc4475/mismatch02",
        Answer(&[400]),
        "3.1.2.18 CSeq method mismatch (501 allowed)",
    ),
    ("rfc4475/bigcode", Closed, "3.1.2.19 status code 4294967301"),
    (
        "rfc4475/badbranch",
        Answer(&[404]),
        "3.2.1 branch = magic cookie only: unknown user",
    ),
    ("rfc4475/insuf", Dropped, "3.3.1 no Call-ID, From or To"),
    (
        "rfc4475/unkscm",
        Answer(&[416]),
        "3.3.2 unknown Request-URI scheme",
    ),
    (
        "rfc4475/novelsc",
        Answer(&[416]),
        "3.3.3 a scheme we do not serve",
    ),
    (
        "rfc4475/unksm2",
        Answer(&[404]),
        "3.3.4 REGISTER of a non-SIP To: not an AOR (RFC 3261 §10.3)",
    ),
    (
        "rfc4475/bext01",
        Answer(&[420]),
        "3.3.5 Require: an unsupported extension",
    ),
    (
        "rfc4475/invut",
        Answer(&[404]),
        "3.3.6 unknown Content-Type passes a proxy: unknown user",
    ),
    (
        "rfc4475/regaut01",
        Answer(&[401]),
        "3.3.7 unknown Authorization scheme: challenged",
    ),
    (
        "rfc4475/multi01",
        Answer(&[400]),
        "3.3.8 several values in single-value fields",
    ),
    (
        "rfc4475/mcl01",
        Closed,
        "3.3.9 several Content-Length values: no framing",
    ),
    ("rfc4475/bcast", Silent, "3.3.10 a response"),
    ("rfc4475/zeromf", Answer(&[483]), "3.3.11 Max-Forwards 0"),
    (
        "rfc4475/cparam01",
        Answer(&[401]),
        "3.3.12 REGISTER: challenged",
    ),
    (
        "rfc4475/cparam02",
        Answer(&[401]),
        "3.3.13 REGISTER: challenged",
    ),
    (
        "rfc4475/regescrt",
        Answer(&[401]),
        "3.3.14 REGISTER: challenged",
    ),
    ("rfc4475/sdp01", Answer(&[404]), "3.3.15 unknown user"),
    (
        "rfc4475/inv2543",
        Closed,
        "3.4.1 no Content-Length on a stream",
    ),
    ("rfc4475/test", Closed, "a header line without a colon"),
    (
        "rfc5118/ipv6-good",
        Answer(&[401]),
        "4.1 REGISTER: challenged",
    ),
    (
        "rfc5118/ipv6-bad",
        Answer(&[400]),
        "4.2 IPv6 reference without brackets",
    ),
    (
        "rfc5118/port-ambiguous",
        Answer(&[401]),
        "4.3 REGISTER: challenged",
    ),
    (
        "rfc5118/port-unambiguous",
        Answer(&[401]),
        "4.4 REGISTER: challenged",
    ),
    (
        "rfc5118/via-received-param-with-delim",
        Answer(&[404]),
        "4.5 BYE with a To tag, no Route of ours",
    ),
    (
        "rfc5118/via-received-param-no-delim",
        Answer(&[407]),
        "4.5 from example.com: challenged",
    ),
    (
        "rfc5118/ipv6-in-sdp",
        Answer(&[407]),
        "4.6 from example.com: challenged",
    ),
    (
        "rfc5118/mult-ip-in-header",
        Answer(&[404]),
        "4.7 BYE with a To tag, no Route of ours",
    ),
    (
        "rfc5118/mult-ip-in-sdp",
        Answer(&[407]),
        "4.8 from example.com: challenged",
    ),
    (
        "rfc5118/ipv4-mapped-ipv6",
        Answer(&[404]),
        "4.9 unknown user",
    ),
    (
        "rfc5118/ipv6-bug-abnf-3-colons",
        Answer(&[407]),
        "4.10 from example.com: challenged",
    ),
    (
        "rfc5118/ipv6-correct-abnf-2-colons",
        Answer(&[407]),
        "4.10 from example.com: challenged",
    ),
];

/// What came back on one connection.
#[derive(Debug, Default)]
struct Heard {
    /// Final statuses answering the torture message, in order.
    finals: Vec<u16>,
    /// Whether the marker OPTIONS sent after it was answered 200 (the server read past it).
    marker: bool,
    /// Whether the server closed the connection.
    closed: bool,
    /// Provisional responses to the torture message (a `100 Trying`).
    others: usize,
}

/// Sends one torture message on a fresh TCP connection, then a marker OPTIONS (answered by
/// the server itself); collects responses until the marker's and `finals` final ones have
/// come, the server closes, or 10 s pass.
fn torture_over_tcp(server: SocketAddr, msg: &[u8], wire: Wire, n: usize) -> Heard {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(server).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let local = tcp.local_addr().expect("local address");
    let marker_id = format!("marker-{n}");
    let marker = format!(
        "OPTIONS sip:{server} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKmarker{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@other.example>;tag=m{n}\r\nTo: <sip:{server}>\r\n\
         Call-ID: {marker_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(msg).expect("send the torture message");
    if wire == Waits {
        tcp.shutdown(std::net::Shutdown::Write).expect("half-close");
    } else {
        tcp.write_all(marker.as_bytes()).expect("send the marker");
    }
    let want = match wire {
        Answer(codes) | AnswerThenClosed(codes) => codes.len(),
        _ => 0,
    };
    let mut heard = Heard::default();
    let mut buf = bytes::BytesMut::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline && !(heard.marker && heard.finals.len() >= want) {
        match tcp.read(&mut chunk) {
            Ok(0) => {
                heard.closed = true;
                break;
            }
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                heard.closed = true;
                break;
            }
        }
        while let Some(m) = cusax_sip_proto::parse_stream_message(&mut buf, &Limits::default())
            .expect("cusaxd's responses frame")
        {
            let SipMessage::Response(r) = m else {
                panic!("cusaxd sent a request on a torture connection: {m:?}")
            };
            if r.call_id().ok() == Some(marker_id.as_bytes()) {
                assert_eq!(r.code(), 200, "the marker OPTIONS");
                heard.marker = true;
            } else if r.code() >= 200 {
                heard.finals.push(r.code());
            } else {
                heard.others += 1;
            }
        }
    }
    heard
}

/// Every RFC 4475 / RFC 5118 torture message over UDP (the server must survive each), then
/// each on its own TCP connection, where the answers come back whatever the Via says: the
/// status codes on the wire must be those of [`WIRE`]. Then a normal registration.
#[test]
fn torture_messages_then_register() {
    require_sipp();
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = Cusaxd::start_in(
        &tmp.path().join("data"),
        &["--domain", DOMAIN, "--domain", "example.com"],
    );
    import(&srv, &[("frank", "pw-f")]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip-proto/tests/torture");
    let mut corpus = Vec::new();
    for sub in ["rfc4475", "rfc5118"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(sub))
            .expect("torture corpus")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sip"))
            .collect();
        files.sort();
        for f in files {
            let stem = f.file_stem().and_then(|s| s.to_str()).expect("utf-8 name");
            corpus.push((format!("{sub}/{stem}"), std::fs::read(&f).expect("read")));
        }
    }
    assert!(corpus.len() >= 50, "corpus found ({} files)", corpus.len());

    // Over UDP the answers go to the port each message's Via names (RFC 3261 §18.2.2),
    // which is not ours; the server must merely go on serving.
    let udp = srv.addr("sip_udp").expect("sip_udp");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for (_, bytes) in &corpus {
        sock.send_to(bytes, udp).expect("send");
    }

    let tcp = srv.addr("sip_tcp").expect("sip_tcp");
    let mut failures = Vec::new();
    for (n, (name, bytes)) in corpus.iter().enumerate() {
        let Some(&(_, wire, why)) = WIRE.iter().find(|(f, ..)| f == name) else {
            let heard = torture_over_tcp(tcp, bytes, Answer(&[]), n);
            failures.push(format!("{name}: not in WIRE; heard {heard:?}"));
            continue;
        };
        let heard = torture_over_tcp(tcp, bytes, wire, n);
        let ok = match wire {
            Answer(codes) => heard.marker && heard.finals == codes,
            Silent | Dropped => heard.marker && heard.finals.is_empty() && heard.others == 0,
            AnswerThenClosed(codes) => heard.closed && !heard.marker && heard.finals == codes,
            Closed | Waits => heard.closed && !heard.marker && heard.finals.is_empty(),
        };
        if !ok {
            failures.push(format!(
                "{name} ({why}): expected {wire:?}, heard {heard:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n--- server log ---\n{}",
        failures.join("\n"),
        srv.log()
    );
    let peer = Peer::new(udp);
    let frank = peer.csv("frank.csv", &[("frank", "pw-f")]);
    assert!(
        peer.run("register_digest.xml", "u1", &frank, 1, &[]),
        "still serving"
    );
}
