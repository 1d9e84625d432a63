//! Calls between two real SIP phones (baresip) through a real `cusaxd`, on loopback.
//!
//! Two baresip instances register to the server, one over UDP and one over TCP (or both over
//! TLS); one dials the other by address of record, the callee answers automatically, the
//! caller hangs up. The assertions are on the call states that baresip itself reports: its
//! `ctrl_tcp` module sends every user-agent event as a JSON object in a netstring over a TCP
//! control connection, and the harness below waits (bounded) for the events in order.
//!
//! Needs `baresip` on PATH (Debian package `baresip`); without it these tests fail loudly.
//! Build the binaries first (`cargo build -p cusaxd -p cusaxctl`) so that they are current.
//!
//! The same scenario runs against any other proxy with the ignored test `external_proxy`,
//! configured from the environment; `tests/baresip/run-against-kamailio.sh` runs it against
//! Kamailio, which proves the harness against an independent server.

use cusax_testkit::Cusaxd;
use harness::{Baresip, Event, Transport};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const DOMAIN: &str = "sip.test";
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
const HANGUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The UDP/TCP call tests are bounded by the per-step timeouts above; this only caps them.
const CALL_TEST_BUDGET: Duration = Duration::from_secs(120);
/// Counted from the start of the TLS call test: every phone start, command, wait and quit ends
/// by then (the server's own start is bounded by the testkit). A passing run takes about 1 s.
const TLS_TEST_BUDGET: Duration = Duration::from_secs(20);

/// The SIP server under test: where phones send their requests, the domain it serves, and its
/// log for failure messages.
struct Target<'a> {
    domain: &'a str,
    udp: SocketAddr,
    tcp: SocketAddr,
    /// SIP over TLS, when the server offers it.
    tls: Option<SocketAddr>,
    /// Extra lines for every phone's baresip config (such as `sip_cafile`).
    phone_config: String,
    /// Every phone start, command and wait ends by then.
    deadline: Instant,
    log: &'a dyn Fn() -> String,
}

impl Target<'_> {
    fn proxy(&self, t: Transport) -> SocketAddr {
        match t {
            Transport::Udp => self.udp,
            Transport::Tcp => self.tcp,
            Transport::Tls => self
                .tls
                .expect("this server has no SIP over TLS address configured"),
        }
    }

    /// A baresip account line: the AOR in this domain, digest password, every request sent to
    /// the server through `outbound` (so no DNS is needed), registration on.
    fn account(&self, user: &str, password: &str, t: Transport, answermode: &str) -> String {
        let tr = t.param();
        format!(
            "<sip:{user}@{domain};transport={tr}>;auth_pass={password};\
             outbound=\"sip:{proxy};transport={tr}\";regint=600;answermode={answermode}",
            domain = self.domain,
            proxy = self.proxy(t),
        )
    }
}

/// Everything needed to understand a failure: what went wrong, both phones' events and SIP
/// traces, and the server's log.
fn fail(what: &str, target: &Target, phones: &[Baresip]) -> ! {
    let mut msg = format!("{what}\n");
    for p in phones {
        msg.push_str(&p.report());
    }
    let log = (target.log)();
    let tail = harness::tail(&log, 12_000);
    msg.push_str(&format!("\n===== server log (last part) =====\n{tail}\n"));
    panic!("{msg}");
}

const CALLER: usize = 0;
const CALLEE: usize = 1;

/// Registers both phones, places a call from `caller` to `callee` by AOR, lets the callee
/// answer automatically, hangs up from the caller, and checks every state both report.
/// Returns both phones (quit, logs kept) for checks of what went over the wire.
fn call_scenario(
    target: &Target,
    caller: (&str, &str, Transport),
    callee: (&str, &str, Transport),
) -> [Baresip; 2] {
    let (caller_user, caller_pw, caller_tr) = caller;
    let (callee_user, callee_pw, callee_tr) = callee;
    let mut p = [
        Baresip::start(
            &format!("caller {caller_user} ({caller_tr:?})"),
            &target.phone_config,
            target.deadline,
        ),
        Baresip::start(
            &format!("callee {callee_user} ({callee_tr:?})"),
            &target.phone_config,
            target.deadline,
        ),
    ];
    let aors = [
        format!("sip:{caller_user}@{}", target.domain),
        format!("sip:{callee_user}@{}", target.domain),
    ];
    let (caller_aor, callee_aor) = (&aors[CALLER], &aors[CALLEE]);

    // Accounts are added over the control connection, so that no event is emitted before the
    // harness listens.
    let accounts = [
        target.account(caller_user, caller_pw, caller_tr, "manual"),
        target.account(callee_user, callee_pw, callee_tr, "auto"),
    ];
    for i in [CALLER, CALLEE] {
        if let Err(e) = p[i].command("uanew", &accounts[i]) {
            let name = p[i].name().to_owned();
            fail(&format!("{name}: uanew refused: {e}"), target, &p);
        }
    }
    for i in [CALLER, CALLEE] {
        let aor = &aors[i];
        let got = p[i].wait_for(
            "REGISTER_OK",
            REGISTER_TIMEOUT,
            |e| e.kind == "REGISTER_OK" && e.aor == *aor,
            |e| e.kind == "REGISTER_FAIL",
        );
        let ok = got.as_ref().is_ok_and(|e| e.param.starts_with("200"));
        if !ok {
            let why = match got {
                Ok(e) => format!("registered without a 200: {e:?}"),
                Err(e) => e,
            };
            let name = p[i].name().to_owned();
            fail(&format!("{name}: registration: {why}"), target, &p);
        }
    }

    if let Err(e) = p[CALLER].command("dial", callee_aor) {
        fail(&format!("caller: dial refused: {e}"), target, &p);
    }

    // Caller: the call is answered (200 to the INVITE, ACK sent). A close before that carries
    // the final response, e.g. "501 Not Implemented".
    let established = p[CALLER].wait_for(
        "outgoing CALL_ESTABLISHED",
        CALL_TIMEOUT,
        |e| e.kind == "CALL_ESTABLISHED" && e.direction == "outgoing",
        |e| e.kind == "CALL_CLOSED",
    );
    let out = match established {
        Ok(e) => e,
        Err(e) => fail(&format!("caller: call not established: {e}"), target, &p),
    };
    if !out.peer.starts_with(callee_aor.as_str()) || out.aor != *caller_aor {
        fail(
            &format!("caller: established with the wrong party: {out:?}"),
            target,
            &p,
        );
    }

    // Callee: an incoming call from the caller, then established. baresip 1.0 reports
    // CALL_INCOMING only when it waits for a manual answer; when it answers automatically the
    // first event of the call is the received SDP offer (CALL_REMOTE_SDP, direction
    // incoming). Either proves the INVITE arrived.
    let incoming = p[CALLEE].wait_for(
        "incoming call",
        CALL_TIMEOUT,
        |e| {
            e.direction == "incoming"
                && (e.kind == "CALL_INCOMING"
                    || (e.kind == "CALL_REMOTE_SDP" && e.param == "offer"))
        },
        |e| e.kind == "CALL_CLOSED",
    );
    let inc = match incoming {
        Ok(e) => e,
        Err(e) => fail(&format!("callee: no incoming call: {e}"), target, &p),
    };
    if !inc.peer.starts_with(caller_aor.as_str()) || inc.aor != *callee_aor || inc.id != out.id {
        fail(
            &format!(
                "callee: incoming call does not match the caller's (Call-ID {:?} from {caller_aor}): {inc:?}",
                out.id
            ),
            target,
            &p,
        );
    }
    let callee_est = p[CALLEE].wait_for(
        "incoming CALL_ESTABLISHED",
        CALL_TIMEOUT,
        |e| e.kind == "CALL_ESTABLISHED" && e.direction == "incoming" && e.id == out.id,
        |e| e.kind == "CALL_CLOSED",
    );
    if let Err(e) = callee_est {
        fail(&format!("callee: call not established: {e}"), target, &p);
    }

    // The caller hangs up; both sides report the call closed (the callee because the BYE
    // reached it through the proxy).
    if let Err(e) = p[CALLER].command("hangup", "") {
        fail(&format!("caller: hangup refused: {e}"), target, &p);
    }
    for i in [CALLER, CALLEE] {
        let closed = p[i].wait_for(
            "CALL_CLOSED",
            HANGUP_TIMEOUT,
            |e| e.kind == "CALL_CLOSED" && e.id == out.id,
            |_| false,
        );
        if let Err(e) = closed {
            let name = p[i].name().to_owned();
            fail(
                &format!("{name}: call not closed after hangup: {e}"),
                target,
                &p,
            );
        }
    }
    for phone in &mut p {
        phone.quit();
        // Shown with --nocapture: the states this phone reported, in order.
        eprintln!("{}: {}", phone.name(), phone.summary());
    }
    p
}

/// Sends OPTIONS to the server (UDP or TCP) and returns its status line.
fn options_status(server: SocketAddr, t: Transport) -> String {
    let branch = format!("z9hG4bK-health-{}", std::process::id());
    let req = |local: SocketAddr| {
        format!(
            "OPTIONS sip:{server} SIP/2.0\r\n\
             Via: SIP/2.0/{tr} {local};branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:health@{DOMAIN}>;tag=h1\r\n\
             To: <sip:{server}>\r\n\
             Call-ID: health-{branch}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
            tr = t.param().to_uppercase(),
        )
    };
    let text = match t {
        Transport::Udp => {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on loopback");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("set timeout");
            let local = s.local_addr().expect("bound socket has an address");
            s.send_to(req(local).as_bytes(), server)
                .expect("send OPTIONS");
            let mut buf = vec![0u8; 65_536];
            match s.recv_from(&mut buf) {
                Ok((n, _)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
                Err(e) => format!("no answer: {e}"),
            }
        }
        Transport::Tcp => {
            let mut s = match TcpStream::connect_timeout(&server, Duration::from_secs(5)) {
                Ok(s) => s,
                Err(e) => return format!("no connection: {e}"),
            };
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("set timeout");
            let local = s.local_addr().expect("connected socket has an address");
            s.write_all(req(local).as_bytes()).expect("send OPTIONS");
            let mut buf = vec![0u8; 65_536];
            match s.read(&mut buf) {
                Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
                Err(e) => format!("no answer: {e}"),
            }
        }
        Transport::Tls => panic!("the harness has no TLS client for OPTIONS"),
    };
    text.lines().next().unwrap_or_default().to_owned()
}

/// cusaxd's configuration for these tests. The default challenges with MD5 and SHA-256 in
/// two `WWW-Authenticate` headers (RFC 8760 §2.4); Debian's baresip 1.0 (libre 1.1) does not
/// skip the one it cannot answer but fails the registration with ENOSYS ("Function not
/// implemented"), so the server is set up as an operator of such phones would: MD5 only.
const CUSAXD_TOML: &str = "[sip]\ndigest_algorithms = [\"MD5\"]\n";

/// A cusaxd (in a temp dir kept by the returned guard) with `users` imported.
fn cusaxd_with_users(users: &[(&str, &str)]) -> (Cusaxd, tempfile::TempDir) {
    harness::require_baresip();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("cusaxd.toml"), CUSAXD_TOML).expect("write cusaxd.toml");
    let srv = Cusaxd::start_in(&data, &["--domain", DOMAIN]);
    srv.import_users(DOMAIN, users);
    (srv, tmp)
}

/// A call from alice (over `caller`) to bob (over `callee`) through a fresh cusaxd, with the
/// checks every such call gets; the phones (quit, logs kept), the server and its temp dir are
/// returned for transport-specific checks. Phones trust the server's certificate as their CA.
fn cusaxd_call(
    caller: Transport,
    callee: Transport,
    budget: Duration,
) -> ([Baresip; 2], Cusaxd, tempfile::TempDir) {
    let deadline = Instant::now() + budget;
    let (srv, tmp) = cusaxd_with_users(&[("alice", "pw-alice"), ("bob", "pw-bob")]);
    let cafile = server_cert(&srv);
    let log = || srv.log();
    let target = Target {
        domain: DOMAIN,
        udp: srv.addr("sip_udp").expect("ready file lists sip_udp"),
        tcp: srv.addr("sip_tcp").expect("ready file lists sip_tcp"),
        tls: srv.addr("sip_tls"),
        phone_config: format!("sip_cafile {}\n", cafile.display()),
        deadline,
        log: &log,
    };
    let phones = call_scenario(
        &target,
        ("alice", "pw-alice", caller),
        ("bob", "pw-bob", callee),
    );
    // RFC 7081 §3.3 glue: the INVITE as the callee's own SIP trace shows it received carries
    // the caller's XMPP address, stamped by the proxy.
    let callee_log = phones[CALLEE].log();
    let invites: Vec<String> = harness::sip_messages(&callee_log)
        .into_iter()
        .filter(|m| m.starts_with("INVITE "))
        .collect();
    let impp = format!("<xmpp:alice@{DOMAIN}>;purpose=impp");
    assert!(
        !invites.is_empty()
            && invites
                .iter()
                .all(|m| harness::has_header(m, "Call-Info", &impp)),
        "the callee received INVITEs without `Call-Info: {impp}`: {invites:#?}"
    );
    // The server is still serving on the plain transports used and did not panic.
    for t in [caller, callee] {
        if t == Transport::Tls {
            continue;
        }
        let status = options_status(target.proxy(t), t);
        assert!(
            status.starts_with("SIP/2.0 200"),
            "OPTIONS over {t:?} after the call: {status}\n{}",
            srv.log()
        );
    }
    let log = srv.log();
    assert!(!log.contains("panicked"), "cusaxd panicked:\n{log}");
    (phones, srv, tmp)
}

/// The certificate cusaxd generated for `DOMAIN` in its data directory.
fn server_cert(srv: &Cusaxd) -> std::path::PathBuf {
    let path = srv.data_dir.join("tls").join(format!("{DOMAIN}.crt"));
    assert!(
        path.is_file(),
        "cusaxd wrote no certificate at {}",
        path.display()
    );
    path
}

#[test]
fn tcp_caller_calls_udp_callee_through_cusaxd() {
    cusaxd_call(Transport::Tcp, Transport::Udp, CALL_TEST_BUDGET);
}

#[test]
fn udp_caller_calls_tcp_callee_through_cusaxd() {
    cusaxd_call(Transport::Udp, Transport::Tcp, CALL_TEST_BUDGET);
}

/// Both phones register over TLS (`transport=tls`, outbound proxy on cusaxd's `sip_tls`
/// address) and call each other. Besides the call states, every SIP message either phone
/// sent or received went over TLS with cusaxd's TLS listener, and the INVITE the callee
/// received carries only TLS Vias and a Record-Route to that listener with `transport=tls`.
///
/// Certificate verification: each phone gets the server's self-signed certificate as its CA
/// (`sip_cafile`), and the test checks that baresip loaded it. baresip 1.0 / libre 1.1 (Debian
/// 12) has no `sip_verify_server` option and does not verify the server certificate for SIP
/// over TLS at all (it also registers with no CA, or with an unrelated one), so this test
/// shows encryption and transport handling, not certificate checking by the phone.
#[test]
fn tls_call_through_cusaxd() {
    let (phones, srv, _tmp) = cusaxd_call(Transport::Tls, Transport::Tls, TLS_TEST_BUDGET);
    let tls = srv.addr("sip_tls").expect("ready file lists sip_tls");
    let cafile = server_cert(&srv);
    for phone in &phones {
        let log = phone.log();
        let loaded = format!("ua: adding SIP CA: {}", cafile.display());
        assert!(
            log.contains(&loaded),
            "{}: baresip did not load the server certificate as CA ({loaded:?})\n{}",
            phone.name(),
            phone.report()
        );
        // Every message in the trace, in either direction, went over TLS, and those from or to
        // the server used its TLS listener.
        let trace = harness::sip_trace(&log);
        let over_tls_with_server = |t: &&harness::Traced| {
            let mut words = t.link.split(' ');
            let (Some("TLS"), Some(from), Some("->"), Some(to), None) = (
                words.next(),
                words.next(),
                words.next(),
                words.next(),
                words.next(),
            ) else {
                return false;
            };
            from == tls.to_string() || to == tls.to_string()
        };
        let not_tls: Vec<&harness::Traced> =
            trace.iter().filter(|t| !over_tls_with_server(t)).collect();
        assert!(
            !trace.is_empty() && not_tls.is_empty(),
            "{}: SIP messages not exchanged with cusaxd's TLS listener {tls}: {not_tls:#?}\n{}",
            phone.name(),
            phone.report()
        );
    }
    // The INVITE the callee received came over TLS: every Via (the proxy's and the caller's)
    // names TLS.
    let invites: Vec<harness::Traced> = harness::sip_trace(&phones[CALLEE].log())
        .into_iter()
        .filter(|t| t.msg.starts_with("INVITE "))
        .collect();
    let via_tls = |m: &str| {
        let vias: Vec<&str> = harness::header_values(m, "Via")
            .into_iter()
            .chain(harness::header_values(m, "v"))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        !vias.is_empty() && vias.iter().all(|v| v.starts_with("SIP/2.0/TLS "))
    };
    assert!(
        !invites.is_empty() && invites.iter().all(|t| via_tls(&t.msg)),
        "the callee received INVITEs with a non-TLS Via: {invites:#?}"
    );
    // The proxy record-routed itself as its TLS listener, so in-dialog requests stay on TLS.
    let rr_tls = |m: &str| {
        harness::header_values(m, "Record-Route")
            .into_iter()
            .flat_map(|v| v.split(','))
            .any(|r| {
                let r = r.trim();
                r.starts_with(&format!("<sip:{tls};")) && r.contains(";transport=tls")
            })
    };
    assert!(
        invites.iter().all(|t| rr_tls(&t.msg)),
        "the callee received INVITEs without a Record-Route to <sip:{tls};transport=tls>: \
         {invites:#?}"
    );
    for phone in &phones {
        eprintln!("{}: all SIP over TLS with {tls}", phone.name());
    }
}

/// The same scenario against another server (both directions), configured by
/// `CUSAX_BARESIP_PROXY` (`IP:PORT`, UDP and TCP), `CUSAX_BARESIP_DOMAIN` and
/// `CUSAX_BARESIP_USERS` (`user:password,user:password`); optionally `CUSAX_BARESIP_LOG` (a
/// file shown on failure). See `tests/baresip/run-against-kamailio.sh`.
#[test]
#[ignore = "needs an external SIP proxy: run tests/baresip/run-against-kamailio.sh"]
fn external_proxy() {
    harness::require_baresip();
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let proxy: SocketAddr = env("CUSAX_BARESIP_PROXY")
        .parse()
        .expect("CUSAX_BARESIP_PROXY is IP:PORT");
    let domain = env("CUSAX_BARESIP_DOMAIN");
    let users_var = env("CUSAX_BARESIP_USERS");
    let users: Vec<(&str, &str)> = users_var
        .split(',')
        .filter_map(|u| u.split_once(':'))
        .collect();
    let [(u1, p1), (u2, p2)] = users[..] else {
        panic!("CUSAX_BARESIP_USERS needs exactly two user:password entries");
    };
    let log_file = std::env::var("CUSAX_BARESIP_LOG").ok();
    let log = || {
        log_file
            .as_ref()
            .map(|f| std::fs::read_to_string(f).unwrap_or_default())
            .unwrap_or_default()
    };
    let target = Target {
        domain: &domain,
        udp: proxy,
        tcp: proxy,
        tls: None,
        phone_config: String::new(),
        deadline: Instant::now() + 2 * CALL_TEST_BUDGET,
        log: &log,
    };
    call_scenario(&target, (u1, p1, Transport::Tcp), (u2, p2, Transport::Udp));
    call_scenario(&target, (u2, p2, Transport::Udp), (u1, p1, Transport::Tcp));
}

#[test]
fn harness_parses_baresip_messages() {
    let mut nets = harness::Netstrings::default();
    let first = br#"{"a":"b\""}"#;
    nets.push(format!("{}:", first.len()).as_bytes());
    nets.push(first);
    nets.push(b",3:[1],");
    nets.push(b"3");
    assert_eq!(nets.next_frame(), Ok(Some(first.to_vec())));
    assert_eq!(nets.next_frame(), Ok(Some(b"[1]".to_vec())));
    assert_eq!(nets.next_frame(), Ok(None));
    nets.push(b":abc;");
    assert!(nets.next_frame().is_err(), "a frame must end with a comma");

    let v = harness::Json::parse(
        r#"{"event":true,"type":"CALL_CLOSED","param":"x\u001B\n\u00e9","n":-1.5e2,"o":{"a":[null,false]}}"#,
    )
    .expect("valid JSON");
    assert_eq!(v.get("event"), Some(&harness::Json::Bool(true)));
    assert_eq!(v.str("param"), Some("x\u{1b}\n\u{e9}"));
    assert_eq!(v.get("n"), Some(&harness::Json::Num(-150.0)));
    let ev = Event::from_json(&v).expect("an event");
    assert_eq!(ev.kind, "CALL_CLOSED");
    for bad in ["{", "{\"a\" 1}", "[1,]", "\"\\x\"", "{} x", "tru"] {
        assert!(harness::Json::parse(bad).is_err(), "{bad:?} is not JSON");
    }
    assert_eq!(harness::strip_ansi("\u{1b}[32mOK \u{1b}[;m!"), "OK !");

    let trace = "baresip is ready.\n#\nUDP 127.0.0.1:1 -> 127.0.0.1:2\n\
                 INVITE sip:bob@x;transport=udp SIP/2.0\nVia: SIP/2.0/UDP a\n\
                 call-info : <xmpp:a@x>;purpose=impp\n\nv=0\n\n#\n\
                 SIP/2.0 200 OK\nCSeq: 1 INVITE\n";
    let msgs = harness::sip_messages(trace);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].starts_with("INVITE ") && msgs[1].starts_with("SIP/2.0 200"));
    assert!(harness::has_header(
        &msgs[0],
        "Call-Info",
        "<xmpp:a@x>;purpose=impp"
    ));
    assert!(!harness::has_header(
        &msgs[1],
        "Call-Info",
        "<xmpp:a@x>;purpose=impp"
    ));
    let traced = harness::sip_trace(trace);
    assert_eq!(traced[0].link, "UDP 127.0.0.1:1 -> 127.0.0.1:2");
    assert_eq!(traced[1].link, "", "no transport line before the 200");
    assert_eq!(
        harness::header_values(&traced[0].msg, "via"),
        ["SIP/2.0/UDP a"]
    );
}

/// Spawning baresip with a private configuration and talking to it over `ctrl_tcp`.
mod harness {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// How long baresip may take to open its control port.
    const START_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long a control command may take to be answered.
    const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
    /// baresip quits by itself after this many seconds, whatever happens to the test.
    const LIFETIME_SECS: &str = "120";

    pub fn require_baresip() {
        let found = Command::new("baresip")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "baresip is not on PATH: these tests need a real SIP phone. Install it with \
             `apt-get install -y baresip` (scripts/test does)"
        );
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Transport {
        Udp,
        Tcp,
        Tls,
    }

    impl Transport {
        pub fn param(self) -> &'static str {
            match self {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
                Transport::Tls => "tls",
            }
        }
    }

    /// One user-agent event as baresip's `ctrl_tcp` reports it. Fields baresip leaves out
    /// for an event class are empty.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Event {
        /// `type`: REGISTER_OK, CALL_INCOMING, CALL_ESTABLISHED, CALL_CLOSED, …
        pub kind: String,
        pub class: String,
        /// `accountaor`: the phone's own AOR.
        pub aor: String,
        /// `incoming` or `outgoing`.
        pub direction: String,
        /// `peeruri`: the other party.
        pub peer: String,
        /// The call's SIP Call-ID.
        pub id: String,
        /// Event detail: the status line for REGISTER_OK, the reason for CALL_CLOSED, …
        pub param: String,
    }

    impl Event {
        pub fn from_json(v: &Json) -> Option<Self> {
            if v.get("event") != Some(&Json::Bool(true)) {
                return None;
            }
            let f = |k: &str| v.str(k).unwrap_or_default().to_owned();
            Some(Self {
                kind: f("type"),
                class: f("class"),
                aor: f("accountaor"),
                direction: f("direction"),
                peer: f("peeruri"),
                id: f("id"),
                param: f("param"),
            })
        }
    }

    /// A running baresip with its own config directory and an open control connection.
    #[derive(Debug)]
    pub struct Baresip {
        name: String,
        child: Option<Child>,
        dir: tempfile::TempDir,
        ctrl: TcpStream,
        frames: Netstrings,
        /// Every event received so far, in order.
        events: Vec<Event>,
        /// Events before this index have been passed over by `wait_for`.
        cursor: usize,
        next_token: u64,
        /// Every command and wait ends by then, whatever its own timeout.
        deadline: Instant,
    }

    fn free_tcp_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port on loopback");
        l.local_addr().expect("bound socket has an address").port()
    }

    impl Baresip {
        /// Starts baresip with no account, no audio hardware (a sine generator as source, no
        /// player), SIP on an ephemeral loopback port, `ctrl_tcp` on a free port and the
        /// `extra_config` lines; then connects to the control port. Nothing this phone does
        /// (start, commands, waits, quit) lasts past `deadline`.
        pub fn start(name: &str, extra_config: &str, deadline: Instant) -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let ctrl_port = free_tcp_port();
            // ausine generates 48 kHz stereo only; baresip resamples it for the codec.
            let config = format!(
                "poll_method epoll\n\
                 sip_listen 127.0.0.1:0\n\
                 net_interface 127.0.0.1\n\
                 call_local_timeout 30\n\
                 call_max_calls 4\n\
                 audio_source ausine,440\n\
                 ausrc_srate 48000\n\
                 ausrc_channels 2\n\
                 statmode_default off\n\
                 module_path /usr/lib/baresip/modules\n\
                 module g711.so\n\
                 module ausine.so\n\
                 module_tmp account.so\n\
                 module_app menu.so\n\
                 module_app ctrl_tcp.so\n\
                 ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n\
                 {extra_config}"
            );
            std::fs::write(dir.path().join("config"), config).expect("write baresip config");
            std::fs::write(dir.path().join("accounts"), "").expect("write baresip accounts");
            let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log file");
            let child = Command::new("baresip")
                .arg("-f")
                .arg(dir.path())
                .args(["-v", "-s", "-t", LIFETIME_SECS])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .expect("baresip starts");
            let mut child = Some(child);
            let start_deadline = (Instant::now() + START_TIMEOUT).min(deadline);
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ctrl_port));
            let ctrl = loop {
                match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                    Ok(s) => break s,
                    Err(e) => {
                        let exited = child
                            .as_mut()
                            .and_then(|c| c.try_wait().ok().flatten())
                            .map(|st| format!("baresip exited with {st}"));
                        if exited.is_some() || Instant::now() >= start_deadline {
                            let why = exited.unwrap_or_else(|| {
                                format!("no control port in time ({START_TIMEOUT:?} at most): {e}")
                            });
                            let log = std::fs::read_to_string(dir.path().join("baresip.log"))
                                .unwrap_or_default();
                            if let Some(mut c) = child.take() {
                                let _ = c.kill();
                                let _ = c.wait();
                            }
                            panic!("{name}: {why}\n{}", strip_ansi(&log));
                        }
                        // Polling a port that is not open yet; bounded by `deadline`.
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            };
            let _ = ctrl.set_nodelay(true);
            Self {
                name: name.to_owned(),
                child,
                dir,
                ctrl,
                frames: Netstrings::default(),
                events: Vec::new(),
                cursor: 0,
                next_token: 1,
                deadline,
            }
        }

        /// `timeout` from now, but not past the phone's deadline.
        fn until(&self, timeout: Duration) -> Instant {
            (Instant::now() + timeout).min(self.deadline)
        }

        pub fn name(&self) -> &str {
            &self.name
        }

        /// Runs one command (as typed in baresip's long-command menu); Ok(data) when baresip
        /// reports success, Err(reason) otherwise. Events that arrive meanwhile are kept.
        pub fn command(&mut self, command: &str, params: &str) -> Result<String, String> {
            let token = format!("t{}", self.next_token);
            self.next_token += 1;
            let body = format!(
                "{{\"command\":{},\"params\":{},\"token\":{}}}",
                json_string(command),
                json_string(params),
                json_string(&token)
            );
            let frame = format!("{}:{body},", body.len());
            self.ctrl
                .write_all(frame.as_bytes())
                .map_err(|e| format!("control connection: {e}"))?;
            let deadline = self.until(COMMAND_TIMEOUT);
            loop {
                let msg = self.read_message(deadline)?;
                if msg.get("response") == Some(&Json::Bool(true))
                    && msg.str("token") == Some(token.as_str())
                {
                    let data = strip_ansi(msg.str("data").unwrap_or_default());
                    return if msg.get("ok") == Some(&Json::Bool(true)) {
                        Ok(data)
                    } else {
                        Err(format!("{command} {params}: {data}"))
                    };
                }
            }
        }

        /// Waits (bounded) for the first event after the previous match that satisfies
        /// `want`; an event that satisfies `abort` first ends the wait with an error.
        pub fn wait_for(
            &mut self,
            what: &str,
            timeout: Duration,
            want: impl Fn(&Event) -> bool,
            abort: impl Fn(&Event) -> bool,
        ) -> Result<Event, String> {
            let deadline = self.until(timeout);
            loop {
                while let Some(e) = self.events.get(self.cursor) {
                    self.cursor += 1;
                    if want(e) {
                        return Ok(e.clone());
                    }
                    if abort(e) {
                        return Err(format!("waiting for {what}, got {} {e:?}", e.kind));
                    }
                }
                if let Err(e) = self.read_message(deadline) {
                    return Err(format!("waiting for {what}: {e}"));
                }
            }
        }

        /// Reads the next control message (bounded); events are appended to `events`.
        fn read_message(&mut self, deadline: Instant) -> Result<Json, String> {
            loop {
                match self.frames.next_frame() {
                    Err(e) => return Err(format!("control connection: {e}")),
                    Ok(Some(frame)) => {
                        let text = String::from_utf8_lossy(&frame);
                        let msg = Json::parse(&text)
                            .map_err(|e| format!("control message {text:?}: {e}"))?;
                        if let Some(ev) = Event::from_json(&msg) {
                            self.events.push(ev);
                        }
                        return Ok(msg);
                    }
                    Ok(None) => {}
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err("timed out".into());
                }
                self.ctrl
                    .set_read_timeout(Some(deadline - now))
                    .map_err(|e| format!("control connection: {e}"))?;
                let mut buf = [0u8; 8192];
                match self.ctrl.read(&mut buf) {
                    Ok(0) => return Err("baresip closed the control connection".into()),
                    Ok(n) => self.frames.push(&buf[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        return Err("timed out".into());
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("control connection: {e}")),
                }
            }
        }

        fn log_path(&self) -> PathBuf {
            self.dir.path().join("baresip.log")
        }

        /// baresip's whole verbose log (SIP trace included), without terminal escapes.
        pub fn log(&self) -> String {
            strip_ansi(&std::fs::read_to_string(self.log_path()).unwrap_or_default())
        }

        /// The registration and call states reported so far, one line.
        pub fn summary(&self) -> String {
            let mut out = String::new();
            for e in self.events.iter().filter(|e| {
                e.class == "register"
                    || (e.class == "call" && e.kind != "CALL_RTCP")
                    || e.kind == "CALL_REMOTE_SDP"
            }) {
                if !out.is_empty() {
                    out.push_str(" -> ");
                }
                let _ = write!(out, "{}", e.kind);
                if !e.param.is_empty() {
                    let _ = write!(out, " ({})", e.param);
                }
            }
            out
        }

        /// The events seen and the end of baresip's verbose log (with its SIP trace).
        pub fn report(&self) -> String {
            let mut out = format!("\n===== {}: events =====\n", self.name);
            for e in &self.events {
                let _ = writeln!(
                    out,
                    "{} ({}) {} aor={} peer={} id={} param={:?}",
                    e.kind, e.class, e.direction, e.aor, e.peer, e.id, e.param
                );
            }
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            let _ = writeln!(
                out,
                "===== {}: baresip log with SIP trace (last part) =====\n{}",
                self.name,
                tail(&strip_ansi(&log), 16_000)
            );
            out
        }

        /// Asks baresip to quit (it unregisters) and waits for it to exit, bounded; kills it
        /// if it does not.
        pub fn quit(&mut self) {
            let _ = self.command("quit", "");
            let grace = self.until(Duration::from_secs(5));
            self.reap(grace.saturating_duration_since(Instant::now()));
        }

        fn reap(&mut self, grace: Duration) {
            let Some(mut child) = self.child.take() else {
                return;
            };
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                // Polling for the exit of our own child; bounded by `deadline`.
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    impl Drop for Baresip {
        fn drop(&mut self) {
            self.reap(Duration::ZERO);
        }
    }

    /// The last `max` bytes of `s`, starting at a line boundary where possible.
    pub fn tail(s: &str, max: usize) -> &str {
        if s.len() <= max {
            return s;
        }
        let mut start = s.len() - max;
        while !s.is_char_boundary(start) {
            start += 1;
        }
        let rest = &s[start..];
        match rest.find('\n') {
            Some(i) => &rest[i + 1..],
            None => rest,
        }
    }

    /// One SIP message from a baresip trace (`-s`) and the line baresip printed before it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Traced {
        /// `PROTO SRC -> DST` as baresip prints it (`TLS 127.0.0.1:1 -> 127.0.0.1:2`); empty
        /// when the message was not preceded by such a line.
        pub link: String,
        /// The start line and headers, one per line.
        pub msg: String,
    }

    /// The SIP messages in a baresip trace (`-s`): each from its start line (a request line
    /// ending in `SIP/2.0`, or a status line) up to the empty line after the headers, with the
    /// transport line before it.
    pub fn sip_trace(log: &str) -> Vec<Traced> {
        let mut out = Vec::new();
        let mut cur: Option<Traced> = None;
        let mut prev = "";
        for line in log.lines() {
            let line = line.trim_end_matches('\r');
            match cur.as_mut() {
                Some(_) if line.is_empty() => out.extend(cur.take()),
                Some(t) => {
                    t.msg.push('\n');
                    t.msg.push_str(line);
                }
                None if line.starts_with("SIP/2.0 ")
                    || (line.ends_with(" SIP/2.0") && line.contains(" sip:")) =>
                {
                    let is_link = prev.contains(" -> ")
                        && ["UDP ", "TCP ", "TLS ", "WS ", "WSS "]
                            .iter()
                            .any(|p| prev.starts_with(p));
                    cur = Some(Traced {
                        link: if is_link {
                            prev.to_owned()
                        } else {
                            String::new()
                        },
                        msg: line.to_owned(),
                    });
                }
                None => {}
            }
            prev = line;
        }
        out.extend(cur);
        out
    }

    /// The SIP messages in a baresip trace, without their transport lines.
    pub fn sip_messages(log: &str) -> Vec<String> {
        sip_trace(log).into_iter().map(|t| t.msg).collect()
    }

    /// The values of every header `name` in a message (as from `sip_messages`), trimmed.
    pub fn header_values<'m>(msg: &'m str, name: &str) -> Vec<&'m str> {
        msg.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// Whether a message (as from `sip_messages`) has a header `name` whose value is `value`.
    pub fn has_header(msg: &str, name: &str, value: &str) -> bool {
        header_values(msg, name).contains(&value)
    }

    /// Removes terminal escape sequences (`ESC [ … letter`) from baresip's output.
    pub fn strip_ansi(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' && chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn json_string(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// Splits a byte stream into netstrings (`LEN:BYTES,`).
    #[derive(Debug, Default)]
    pub struct Netstrings {
        buf: Vec<u8>,
    }

    impl Netstrings {
        /// The longest frame accepted; baresip's messages are a few hundred bytes.
        const MAX: usize = 1 << 20;

        pub fn push(&mut self, bytes: &[u8]) {
            self.buf.extend_from_slice(bytes);
        }

        /// The next complete frame, `None` when more bytes are needed.
        pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, String> {
            let Some(colon) = self.buf.iter().position(|&b| b == b':') else {
                if self.buf.len() > 10 || !self.buf.iter().all(u8::is_ascii_digit) {
                    return Err(format!("bad netstring length {:?}", self.prefix()));
                }
                return Ok(None);
            };
            let digits = &self.buf[..colon];
            if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(format!("bad netstring length {:?}", self.prefix()));
            }
            let len: usize = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .filter(|&n| n <= Self::MAX)
                .ok_or_else(|| format!("bad netstring length {:?}", self.prefix()))?;
            let end = colon + 1 + len;
            if self.buf.len() <= end {
                return Ok(None);
            }
            if self.buf[end] != b',' {
                return Err(format!("netstring not ended by ',': {:?}", self.prefix()));
            }
            let frame = self.buf[colon + 1..end].to_vec();
            self.buf.drain(..=end);
            Ok(Some(frame))
        }

        fn prefix(&self) -> String {
            String::from_utf8_lossy(&self.buf[..self.buf.len().min(40)]).into_owned()
        }
    }

    /// Just enough JSON for baresip's control messages.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Json>),
        Obj(BTreeMap<String, Json>),
    }

    impl Json {
        pub fn parse(text: &str) -> Result<Json, String> {
            let mut p = Parser {
                s: text.as_bytes(),
                i: 0,
            };
            let v = p.value(0)?;
            p.ws();
            if p.i != p.s.len() {
                return Err(format!("trailing data at byte {}", p.i));
            }
            Ok(v)
        }

        pub fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Obj(m) => m.get(key),
                _ => None,
            }
        }

        pub fn str(&self, key: &str) -> Option<&str> {
            match self.get(key) {
                Some(Json::Str(s)) => Some(s),
                _ => None,
            }
        }
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        const MAX_DEPTH: usize = 32;

        fn ws(&mut self) {
            while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
                self.i += 1;
            }
        }

        fn err<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("{what} at byte {}", self.i))
        }

        fn eat(&mut self, b: u8) -> bool {
            self.ws();
            if self.s.get(self.i) == Some(&b) {
                self.i += 1;
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> Result<Json, String> {
            if depth > Self::MAX_DEPTH {
                return self.err("nested too deeply");
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut m = BTreeMap::new();
                    if self.eat(b'}') {
                        return Ok(Json::Obj(m));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        if !self.eat(b':') {
                            return self.err("expected ':'");
                        }
                        let v = self.value(depth + 1)?;
                        m.insert(k, v);
                        if self.eat(b'}') {
                            return Ok(Json::Obj(m));
                        }
                        if !self.eat(b',') {
                            return self.err("expected ',' or '}'");
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut a = Vec::new();
                    if self.eat(b']') {
                        return Ok(Json::Arr(a));
                    }
                    loop {
                        a.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            return Ok(Json::Arr(a));
                        }
                        if !self.eat(b',') {
                            return self.err("expected ',' or ']'");
                        }
                    }
                }
                Some(b'"') => self.string().map(Json::Str),
                Some(b't') => self.literal("true", Json::Bool(true)),
                Some(b'f') => self.literal("false", Json::Bool(false)),
                Some(b'n') => self.literal("null", Json::Null),
                Some(b'-' | b'0'..=b'9') => {
                    let start = self.i;
                    while self
                        .s
                        .get(self.i)
                        .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
                    {
                        self.i += 1;
                    }
                    let text = std::str::from_utf8(&self.s[start..self.i])
                        .map_err(|e| format!("number: {e}"))?;
                    text.parse()
                        .map(Json::Num)
                        .map_err(|e| format!("number {text:?}: {e}"))
                }
                _ => self.err("expected a value"),
            }
        }

        fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
            if self.s[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                Ok(v)
            } else {
                self.err("bad literal")
            }
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let h = self
                .s
                .get(self.i..self.i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok());
            match h {
                Some(v) => {
                    self.i += 4;
                    Ok(v)
                }
                None => self.err("bad \\u escape"),
            }
        }

        fn string(&mut self) -> Result<String, String> {
            if self.s.get(self.i) != Some(&b'"') {
                return self.err("expected a string");
            }
            self.i += 1;
            let mut out: Vec<u8> = Vec::new();
            loop {
                let Some(&b) = self.s.get(self.i) else {
                    return self.err("unterminated string");
                };
                self.i += 1;
                match b {
                    b'"' => break,
                    b'\\' => {
                        let Some(&e) = self.s.get(self.i) else {
                            return self.err("unterminated escape");
                        };
                        self.i += 1;
                        let c = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hi = self.hex4()?;
                                let code = if (0xd800..0xdc00).contains(&hi)
                                    && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if (0xdc00..0xe000).contains(&lo) {
                                        0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                    } else {
                                        0xfffd
                                    }
                                } else {
                                    hi
                                };
                                char::from_u32(code).unwrap_or('\u{fffd}')
                            }
                            _ => return self.err("bad escape"),
                        };
                        let mut tmp = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                    }
                    b => out.push(b),
                }
            }
            String::from_utf8(out).map_err(|e| format!("string: {e}"))
        }
    }
}
