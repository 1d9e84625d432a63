//! XEP-0108 and XEP-0152 over PEP end to end, "on the phone": a SIP call through `cusaxd` (sipp phones) shows as
//! XEP-0108 user activity to the caller's XMPP contact (a slixmpp client with PEP and caps,
//! `tests/slixmpp/peer.py on_the_phone`), and the contact learns the caller's SIP address
//! from her XEP-0152 reachability node.
//!
//! alice opted in (XEP-0049, from her own XMPP client) and shares presence with bob; alice's
//! phone calls bob's phone; bob's XMPP client must see `talking/on_the_phone` while the call
//! is up and the empty activity after the BYE, and never an activity of his own (he did not
//! opt in). The caller's sipp holds the call until the test sends it an INFO, so "while the
//! call is up" is by construction; the INFO goes only once the proxy has seen the caller's
//! ACK for the 200 (its metrics), so sipp is waiting for it.
//!
//! Needs `sipp` (Debian `sip-tester`), slixmpp (`.venv`) and curl; fails loudly without them.

use cusax_testkit::slixmpp_python as python;
use cusax_testkit::workspace;
use cusax_testkit::{Cusaxd, free_sip_port, https, require_sipp, sipp_scenarios};
use std::io::{BufRead, BufReader, Lines};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.test";
/// The caller's Call-ID (`-cid_str`, call number 1), which the hang-up INFO names.
const CALL_ID: &str = "otp-1@cusax.test";

/// A sipp run over UDP against the server, bounded by `timeout`, from `dir`.
fn sipp(server: &Cusaxd, dir: &Path, scenario: &str) -> Command {
    let mut c = Command::new("timeout");
    c.arg("90")
        .arg("sipp")
        .arg(
            server
                .addr("sip_udp")
                .expect("SIP UDP listener")
                .to_string(),
        )
        .arg("-sf")
        .arg(sipp_scenarios().join(scenario))
        .args(["-t", "u1", "-i", "127.0.0.1", "-m", "1", "-nostdin", "-nd"])
        .args(["-timeout", "80s", "-timeout_error"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Waits (bounded) until something holds UDP `port` (a sipp UAS listening).
fn wait_udp_taken(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// How many requests of `method` the SIP side has received, from `/metrics`.
fn sip_requests(server: &Cusaxd, method: &str) -> u64 {
    let (status, body) = https(server, DOMAIN, "GET", "/metrics", &[]);
    assert_eq!(status, 200, "{body}");
    let prefix = format!("cusax_sip_requests_total{{method=\"{method}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Reads the peer's lines (it bounds its own waits) until one equals `want`; returns
/// whether it came, keeping what was read for the failure message.
fn read_until(
    lines: &mut Lines<BufReader<ChildStdout>>,
    want: &str,
    seen: &mut Vec<String>,
) -> bool {
    for line in lines.by_ref().map_while(Result::ok) {
        let done = line.trim() == want;
        seen.push(line);
        if done {
            return true;
        }
    }
    false
}

/// Kills a child left running by a failed assertion (the child bounds itself anyway).
struct Reap(Vec<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_call_shows_the_caller_on_the_phone_to_her_contact_until_bye() {
    require_sipp();
    let server = Cusaxd::start(DOMAIN);
    server.import_users(DOMAIN, &[("alice", "pw-alice"), ("bob", "pw-bob")]);
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, user) in [("caller.csv", "alice"), ("callee.csv", "bob")] {
        std::fs::write(
            dir.path().join(file),
            format!("SEQUENTIAL\n{user};pw-{user};{DOMAIN}\n"),
        )
        .expect("csv");
    }
    let fail = |what: &str, extra: &str| -> String {
        let mut s = format!("{what}\n{extra}\n--- server log ---\n{}", server.log());
        for f in ["uac.err", "uas.err"] {
            if let Ok(t) = std::fs::read_to_string(dir.path().join(f)) {
                s.push_str(&format!("\n--- {f}:\n{t}"));
            }
        }
        s
    };

    // bob's phone registers from the port its answering UAS then listens on.
    let bob_port = free_sip_port();
    let registered = sipp(&server, dir.path(), "register_digest.xml")
        .args(["-inf", "callee.csv", "-au", "[field0]", "-ap", "[field1]"])
        .args(["-auth_uri", DOMAIN, "-p", &bob_port.to_string()])
        .args(["-recv_timeout", "5000"])
        .status()
        .expect("sipp runs")
        .success();
    assert!(registered, "{}", fail("bob's phone did not register", ""));
    let mut reap = Reap(Vec::new());
    let uas = sipp(&server, dir.path(), "uas_answer.xml")
        .args([
            "-p",
            &bob_port.to_string(),
            "-trace_err",
            "-error_file",
            "uas.err",
        ])
        .spawn()
        .expect("sipp UAS starts");
    reap.0.push(uas);
    assert!(wait_udp_taken(bob_port), "bob's phone never listened");

    // alice's and bob's XMPP clients: opt-in, mutual subscription, reachability.
    let mut peer = Command::new(python())
        .arg(workspace().join("tests/slixmpp/peer.py"))
        .arg("on_the_phone")
        .arg("--addr")
        .arg(server.addr("xmpp").expect("xmpp listener").to_string())
        .arg("--ca")
        .arg(server.data_dir.join(format!("tls/{DOMAIN}.crt")))
        .args(["--user", &format!("alice@{DOMAIN}"), "pw-alice"])
        .args(["--user", &format!("bob@{DOMAIN}"), "pw-bob"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut lines = BufReader::new(peer.stdout.take().expect("piped")).lines();
    reap.0.push(peer);
    let mut seen = Vec::new();
    assert!(
        read_until(&mut lines, "READY", &mut seen),
        "{}",
        fail("the XMPP side did not get ready", &seen.join("\n"))
    );
    let reach = format!("sip:alice@{DOMAIN}");
    assert!(
        seen.iter()
            .any(|l| l.starts_with("reach notified") && l.contains(&reach)),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("reach fetched") && l.contains(&reach)),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.ends_with("subscription to alice: both")),
        "{seen:?}"
    );

    // alice calls bob; the call stays up until the INFO below.
    let acks_before = sip_requests(&server, "ACK");
    let alice_port = free_sip_port();
    let uac = sipp(&server, dir.path(), "uac_call_hangup_on_info.xml")
        .args([
            "-s",
            "bob",
            "-inf",
            "caller.csv",
            "-au",
            "[field0]",
            "-ap",
            "[field1]",
        ])
        .args([
            "-p",
            &alice_port.to_string(),
            "-cid_str",
            "otp-%u@cusax.test",
        ])
        .args([
            "-recv_timeout",
            "70000",
            "-trace_err",
            "-error_file",
            "uac.err",
        ])
        .spawn()
        .expect("sipp UAC starts");
    reap.0.push(uac);
    assert!(
        read_until(&mut lines, "ON_THE_PHONE", &mut seen),
        "{}",
        fail("bob never saw alice on the phone", &seen.join("\n"))
    );

    // The ACK for the 407 and the one for the 200: alice's phone now waits for the INFO.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sip_requests(&server, "ACK") < acks_before + 2 {
        assert!(
            Instant::now() < deadline,
            "{}",
            fail("alice's phone never acknowledged the 200", "")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let hang_up = format!(
        "INFO sip:alice@127.0.0.1:{alice_port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-otp-hangup\r\n\
         From: <sip:harness@cusax.test>;tag=harness\r\n\
         To: <sip:alice@{DOMAIN}>\r\n\
         Call-ID: {CALL_ID}\r\n\
         CSeq: 1 INFO\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.send_to(hang_up.as_bytes(), ("127.0.0.1", alice_port))
        .expect("send the hang-up INFO");

    assert!(
        read_until(&mut lines, "STOPPED", &mut seen),
        "{}",
        fail("bob never saw alice's activity withdrawn", &seen.join("\n"))
    );
    assert!(read_until(&mut lines, "OK", &mut seen), "{seen:?}");
    let mut children = std::mem::take(&mut reap.0);
    let status: Vec<bool> = children
        .iter_mut()
        .map(|c| c.wait().is_ok_and(|s| s.success()))
        .collect();
    assert_eq!(
        status,
        vec![true, true, true],
        "{}",
        fail("UAS, peer, UAC exit status", &seen.join("\n"))
    );
    let (_, metrics) = cusax_testkit::https(&server, DOMAIN, "GET", "/metrics", &[]);
    assert!(
        metrics.contains("cusax_sip_requests_total{method=\"BYE\"}")
            && metrics.contains("cusax_sip_calls_active 0"),
        "{}",
        fail(
            "the proxy saw no BYE, or the call is still counted",
            &metrics
        )
    );
}
