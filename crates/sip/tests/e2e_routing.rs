//! RFC 7616/8760 (SHA-256 digest), RFC 3261 §16.6 (serial forking by q-value) and RFC 3327
//! (Path) end to end: a real `cusaxd` on loopback and independent peers — sipp scenarios from
//! `tests/sipp/`, and `tests/sip/sha256_peer.py` where sipp and baresip cannot (SHA-256).
//!
//! Needs `sipp` (Debian `sip-tester`) and `python3` on PATH; without them these tests fail.

use cusax_testkit::sipp::{Sipp, Traced, passed};
use cusax_testkit::{Cusaxd, free_sip_port, workspace};
use std::net::UdpSocket;
use std::process::Command;

const DOMAIN: &str = "bench.local";
const CALLER: (&str, &str, &str) = ("user1", "pw-1", DOMAIN);
const CALLEE: (&str, &str, &str) = ("user2", "pw-2", DOMAIN);

/// A server with user1 and user2, and sipp with a scratch directory.
struct Lab {
    srv: Cusaxd,
    sipp: Sipp,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(srv: Cusaxd) -> Self {
        srv.import_users(DOMAIN, &[(CALLER.0, CALLER.1), (CALLEE.0, CALLEE.1)]);
        let dir = tempfile::tempdir().expect("tempdir");
        let sipp = Sipp::new(dir.path(), srv.addr("sip_udp").expect("sip udp"));
        Self {
            srv,
            sipp,
            _dir: dir,
        }
    }

    /// user1 calls user2 with `uac_call_auth.xml` (407, then authenticated INVITE, 200, BYE).
    fn call(&self, tag: &str) -> bool {
        self.sipp.client(
            "uac_call_auth.xml",
            tag,
            CALLER,
            free_sip_port(),
            &["-s", CALLEE.0, "-d", "200"],
        )
    }

    fn fail_report(&self, tags: &[&str]) -> String {
        let runs: String = tags.iter().map(|t| self.sipp.report(t)).collect();
        format!("{runs}\n--- server log:\n{}", self.srv.log())
    }
}

/// The first message of `trace` whose start line starts with `prefix`, sent or received.
fn first<'a>(trace: &'a [Traced], sent: bool, prefix: &str) -> &'a Traced {
    trace
        .iter()
        .find(|m| m.sent == sent && m.start_line().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} (sent={sent}) in trace: {trace:#?}"))
}

/// Runs the SHA-256 peer; asserts it exited 0 having printed OK, returns its output.
fn sha256_peer(lab: &Lab, args: &[&str]) -> String {
    let server = lab.srv.addr("sip_udp").expect("sip udp").to_string();
    let out = Command::new("timeout")
        .args(["60", "python3"])
        .arg(workspace().join("tests/sip/sha256_peer.py"))
        .args(args)
        .args(["--server", &server, "--domain", DOMAIN])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.ends_with("OK\n"),
        "sha256_peer {args:?}: {}\n{text}{}\n--- server log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        lab.srv.log()
    );
    text
}

#[test]
fn sha256_digest_registers_and_authenticates_a_proxied_invite() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    // RFC 8760 §2.4: SHA-256 offered first, MD5 after it for older phones.
    std::fs::write(
        data.join("cusaxd.toml"),
        "[sip]\ndigest_algorithms = [\"SHA-256\", \"MD5\"]\n",
    )
    .expect("config");
    let lab = Lab::start(Cusaxd::start_in(&data, &["--domain", DOMAIN]));
    let port = free_sip_port();
    let (user, pw, _) = CALLEE;
    let reg = sha256_peer(
        &lab,
        &[
            "register",
            "--port",
            &port.to_string(),
            "--user",
            user,
            "--password",
            pw,
        ],
    );
    assert!(
        reg.contains("REGISTER challenge: 401 offers SHA-256, MD5\n"),
        "{reg}"
    );
    assert!(
        reg.contains("wrong SHA-256 response refused: 401\n")
            || reg.contains("wrong SHA-256 response refused: 403\n"),
        "{reg}"
    );
    assert!(reg.contains("registered with SHA-256: 200"), "{reg}");

    // The callee's device (sipp) answers on the port the SHA-256 REGISTER came from.
    let mut callee = lab.sipp.uas("uas_answer.xml", "sha-callee", port);
    let (user, pw, _) = CALLER;
    let call = sha256_peer(
        &lab,
        &[
            "call",
            "--user",
            user,
            "--password",
            pw,
            "--callee",
            CALLEE.0,
        ],
    );
    assert!(
        call.contains("INVITE challenge: 407 offers SHA-256, MD5\n"),
        "{call}"
    );
    assert!(
        ["401", "403", "407"]
            .iter()
            .any(|c| call.contains(&format!("wrong SHA-256 INVITE refused: {c}\n"))),
        "{call}"
    );
    assert!(
        call.contains("call answered with SHA-256 credentials: 200\nbye: 200\n"),
        "{call}"
    );
    assert!(
        passed(&mut callee),
        "callee: INVITE, 200, ACK, BYE\n{}",
        lab.fail_report(&["sha-callee"])
    );
    let callee_trace = lab.sipp.trace("sha-callee");
    let invite = first(&callee_trace, false, "INVITE ");
    assert!(invite.text.contains("cusax-sha256-peer"), "{}", invite.text);
}

/// RFC 3261 §16.6 with q-values (what `proxy/target.rs` implements): the bindings of the
/// highest q are tried first; only when all of them failed does the next q get the INVITE.
#[test]
fn serial_forking_tries_the_higher_q_first_then_the_next() {
    let lab = Lab::start(Cusaxd::start(DOMAIN));
    let (high, low) = (free_sip_port(), free_sip_port());
    for (port, q) in [(high, "1.0"), (low, "0.5")] {
        assert!(
            lab.sipp.register(
                "register_q.xml",
                &format!("register-q{q}"),
                CALLEE,
                port,
                &["-key", "q", q]
            ),
            "callee registers with q={q}\n{}",
            lab.fail_report(&[&format!("register-q{q}")])
        );
    }
    let mut busy = lab.sipp.uas("uas_ring_then_busy.xml", "q-high", high);
    let mut answer = lab.sipp.uas("uas_answer.xml", "q-low", low);
    let caller = lab.call("q-caller");
    let (busy_ok, answer_ok) = (passed(&mut busy), passed(&mut answer));
    assert!(
        caller && busy_ok && answer_ok,
        "caller={caller} q1.0 rang+486={busy_ok} q0.5 answered={answer_ok}\n{}",
        lab.fail_report(&["q-caller", "q-high", "q-low"])
    );
    let high_trace = lab.sipp.trace("q-high");
    let low_trace = lab.sipp.trace("q-low");
    let high_invite = first(&high_trace, false, "INVITE ");
    let busy_sent = first(&high_trace, true, "SIP/2.0 486");
    let low_invite = first(&low_trace, false, "INVITE ");
    // Serial, not parallel: the q=0.5 device hears of the call only after the q=1.0 device
    // rang for half a second and refused it.
    assert!(
        high_invite.at < busy_sent.at && busy_sent.at < low_invite.at,
        "order: q1.0 INVITE {} → q1.0 486 {} → q0.5 INVITE {}",
        high_invite.at,
        busy_sent.at,
        low_invite.at
    );
    assert!(
        !high_trace
            .iter()
            .any(|m| m.start_line().starts_with("CANCEL")),
        "the refused branch was cancelled, as in a parallel fork"
    );
}

/// RFC 3327 §5.3/§5.4: a REGISTER relayed by an edge proxy that adds Path; the 200 echoes it,
/// and a call to the AOR goes to the edge with the Path as Route, not to the Contact.
#[test]
fn path_of_a_register_through_an_edge_routes_later_calls_via_the_edge() {
    let lab = Lab::start(Cusaxd::start(DOMAIN));
    let edge = free_sip_port();
    // The phone behind the edge: its Contact address, which the proxy must not send to.
    let phone = UdpSocket::bind("127.0.0.1:0").expect("phone socket");
    phone.set_nonblocking(true).expect("nonblocking");
    let contact = phone.local_addr().expect("phone addr");
    let path = format!("<sip:127.0.0.1:{edge};lr>");
    // sipp sends the REGISTER from a third port: neither the Path nor the Contact address.
    let ok = lab.sipp.register(
        "register_via_edge.xml",
        "edge-register",
        CALLEE,
        free_sip_port(),
        &[
            "-key",
            "edge",
            &format!("127.0.0.1:{edge}"),
            "-key",
            "contact",
            &contact.to_string(),
        ],
    );
    assert!(
        ok,
        "REGISTER through the edge\n{}",
        lab.fail_report(&["edge-register"])
    );
    let reg = lab.sipp.trace("edge-register");
    let ok200 = first(&reg, false, "SIP/2.0 200");
    assert!(
        ok200.text.contains(&format!("Path: {path}")),
        "200 echoes the Path: {}",
        ok200.text
    );

    let mut edge_uas = lab.sipp.uas("uas_answer.xml", "edge", edge);
    let caller = lab.call("edge-caller");
    let edge_ok = passed(&mut edge_uas);
    assert!(
        caller && edge_ok,
        "caller={caller} edge answered={edge_ok}\n{}",
        lab.fail_report(&["edge-caller", "edge"])
    );
    let edge_trace = lab.sipp.trace("edge");
    let invite = first(&edge_trace, false, "INVITE ");
    assert!(
        invite
            .start_line()
            .starts_with(&format!("INVITE sip:{}@{contact}", CALLEE.0)),
        "Request-URI is the Contact: {}",
        invite.text
    );
    assert!(
        invite.text.contains(&format!("\nRoute: {path}")),
        "Route is the Path: {}",
        invite.text
    );
    // The call demonstrably completed through the edge; the Contact address heard nothing.
    let mut buf = [0u8; 2048];
    match phone.recv_from(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!(
            "the proxy sent to the Contact instead of the Path: {other:?} {}",
            String::from_utf8_lossy(&buf)
        ),
    }
}
