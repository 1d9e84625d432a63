//! RFC 3261 §10 end to end: a real `cusaxd` and real peers (sipp, raw UDP sockets) on loopback.
//!
//! Needs `sipp` on PATH (Debian package `sip-tester`); without it these tests fail loudly.
//! Build the binaries first (`cargo build -p cusaxd -p cusaxctl`) so that they are current.

use cusax_sip_proto::{Limits, SipMessage, parse_datagram};
use cusax_testkit::Cusaxd;
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

    /// Runs one sipp scenario to completion (bounded); true when every call succeeded.
    fn run(
        &self,
        scenario: &str,
        transport: &str,
        csv: &Path,
        calls: usize,
        extra: &[&str],
    ) -> bool {
        let out = Command::new("timeout")
            .arg("30")
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
            .current_dir(self.dir.path())
            .output()
            .expect("sipp runs");
        out.status.success()
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
        assert!(
            !peer.run("register_query.xml", t, &users, 1, &[]),
            "{t}: nothing left to list"
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
        assert!(
            !peer.run("register_wrong_password.xml", t, &carol, 1, &[]),
            "{t}: the right password is not refused"
        );
        assert!(
            !peer.run("register_digest.xml", t, &unknown, 1, &[]),
            "{t}: unknown user"
        );
    }
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
    assert!(
        !peer.run("register_digest.xml", "u1", &dave, 1, &[]),
        "locked: no 200"
    );
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

/// Every RFC 4475 / RFC 5118 torture message over UDP, then a normal registration. Requests
/// that fail validation but can be answered must have been answered (the server logs each).
#[test]
fn torture_messages_then_register() {
    require_sipp();
    let srv = start_with_users(&[("frank", "pw-f")]);
    let server = srv.addr("sip_udp").expect("sip_udp");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip-proto/tests/torture");
    let mut expect_answered = Vec::new();
    let mut sent = 0;
    for sub in ["rfc4475", "rfc5118"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(sub))
            .expect("torture corpus")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sip"))
            .collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).expect("read");
            if let Ok(m) = parse_datagram(bytes.clone().into(), &Limits::default())
                && let Err(bad) = m.validated()
                && bad.routable()
                && let SipMessage::Request(r) = &*bad.message
                && r.method() != cusax_sip_proto::Method::Ack
                && let Ok(cid) = r.call_id()
            {
                expect_answered.push(String::from_utf8_lossy(cid).into_owned());
            }
            sock.send_to(&bytes, server).expect("send");
            sent += 1;
        }
    }
    assert!(sent >= 50, "corpus found ({sent} files)");
    assert!(!expect_answered.is_empty());
    for cid in &expect_answered {
        assert!(
            srv.wait_for_log(&format!("call_id={cid}"), Duration::from_secs(5)),
            "no error response for the invalid request with Call-ID {cid}"
        );
    }
    let peer = Peer::new(server);
    let frank = peer.csv("frank.csv", &[("frank", "pw-f")]);
    assert!(
        peer.run("register_digest.xml", "u1", &frank, 1, &[]),
        "still serving"
    );
    assert!(srv.log().contains("answered invalid request"));
}
