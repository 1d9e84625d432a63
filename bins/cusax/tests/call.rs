//! End to end through a real `cusaxd` on loopback: bob runs `cusax listen --auto-answer`, alice
//! runs `cusax call sip:bob@example.org`; both print JSON events. Checked: bob is told who calls
//! (From and the proxy's CUSAX `impp` Call-Info, RFC 7081 §6), both sides go through their call
//! states, and each side's recording holds the other side's tone (Goertzel filter).
//!
//! Build the server first (`cargo build -p cusaxd -p cusaxctl`) so that it is current.

mod common;

use std::process::Command;

use common::{Client, assert_tone, password_file};
use cusax_testkit::Cusaxd;

const DOMAIN: &str = "example.org";

#[test]
fn alice_calls_bob_through_cusaxd_with_audio_both_ways() {
    call_scenario(false, false);
}

/// The same call with bob registered over TCP (the proxy reaches him on his connection) and
/// alice calling over UDP.
#[test]
fn udp_caller_reaches_tcp_callee_through_cusaxd() {
    call_scenario(false, true);
}

fn call_scenario(alice_tcp: bool, bob_tcp: bool) {
    let server = Cusaxd::start(DOMAIN);
    server.import_users(DOMAIN, &[("alice", "alice-secret"), ("bob", "bob-secret")]);
    let addr = |tcp: bool| {
        let which = if tcp { "sip_tcp" } else { "sip_udp" };
        server.addr(which).expect("SIP address").to_string()
    };
    let (alice_sip, bob_sip) = (addr(alice_tcp), addr(bob_tcp));
    let tcp_flag = |tcp: bool| if tcp { vec!["--tcp"] } else { vec![] };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let bob_pw = password_file(dir, "bob", "bob-secret");
    let alice_pw = password_file(dir, "alice", "alice-secret");
    let bob_dir = dir.join("bob-calls");
    let alice_wav = dir.join("alice.wav");

    let bob_args = [
        vec![
            "listen",
            "--server",
            &bob_sip,
            "--user",
            "bob@example.org",
            "--password-file",
            bob_pw.to_str().expect("utf-8"),
            "--auto-answer",
            "--record-dir",
            bob_dir.to_str().expect("utf-8"),
            "--tone",
            "880",
        ],
        tcp_flag(bob_tcp),
    ]
    .concat();
    let mut bob = Client::start("bob", dir, &bob_args);
    let reg = bob.wait_for("registration", &server, |e| e["event"] == "registered");
    assert_eq!(reg["aor"], "sip:bob@example.org");
    let contact = reg["contact"].as_str().unwrap_or_default();
    assert_eq!(contact.ends_with(";transport=tcp>"), bob_tcp, "{contact}");

    let alice_args = [
        vec![
            "call",
            "sip:bob@example.org",
            "--server",
            &alice_sip,
            "--user",
            "alice@example.org",
            "--password-file",
            alice_pw.to_str().expect("utf-8"),
            "--tone",
            "440",
            "--duration",
            "2",
            "--record",
            alice_wav.to_str().expect("utf-8"),
        ],
        tcp_flag(alice_tcp),
    ]
    .concat();
    let mut alice = Client::start("alice", dir, &alice_args);

    // Bob learns who calls: the From and the CUSAX Call-Info the proxy vouches for.
    let inc = bob.wait_for("incoming call", &server, |e| e["event"] == "incoming_call");
    assert_eq!(inc["from"], "sip:alice@example.org");
    assert_eq!(inc["to"], "sip:bob@example.org");
    assert_eq!(
        inc["call_info"],
        serde_json::json!(["<xmpp:alice@example.org>;purpose=impp"])
    );
    assert_eq!(inc["auto_answer"], true);

    let est = alice.wait_for("established call", &server, |e| e["state"] == "established");
    assert_eq!(est["direction"], "outgoing");
    assert_eq!(est["codec"], "PCMU");
    let ended = alice.wait_for("end of call", &server, |e| {
        e["state"] == "ended" || e["state"] == "failed"
    });
    assert_eq!(ended["reason"], "local hangup", "{}", alice.report());
    assert!(
        alice.wait_exit(),
        "alice exits with success\n{}",
        alice.report()
    );
    assert_eq!(
        alice.states(),
        ["calling", "ringing", "established", "ended"],
        "{}",
        alice.report()
    );
    let media = &ended["media"];
    assert!(
        media["packets_received"].as_u64().unwrap_or(0) >= 50,
        "{media}"
    );
    assert_eq!(media["recording"], alice_wav.to_str().expect("utf-8"));

    let bob_end = bob.wait_for("end of call", &server, |e| {
        e["state"] == "ended" || e["state"] == "failed"
    });
    assert_eq!(bob_end["reason"], "remote hangup", "{}", bob.report());
    assert_eq!(bob_end["call_id"], ended["call_id"]);
    assert_eq!(
        bob.states(),
        ["ringing", "answered", "established", "ended"],
        "{}",
        bob.report()
    );
    let bob_est = bob
        .seen
        .iter()
        .find(|e| e["state"] == "established")
        .expect("established");
    assert_eq!(bob_est["codec"], "PCMU");
    let bob_wav = bob_dir.join("call-1.wav");
    assert_eq!(
        bob_end["media"]["recording"],
        bob_wav.to_str().expect("utf-8")
    );

    // Bob stops like a service: SIGTERM, removal of the binding, exit 0.
    let st = Command::new("kill")
        .args(["-TERM", &bob.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(st.success());
    bob.wait_for("removal of the binding", &server, |e| {
        e["event"] == "unregistered"
    });
    assert!(bob.wait_exit(), "bob exits with success\n{}", bob.report());

    // Each side hears the other: alice's file holds bob's 880 Hz, bob's holds alice's 440 Hz.
    assert_tone(&alice_wav, 880.0, &[800.0, 440.0], 1.5);
    assert_tone(&bob_wav, 440.0, &[520.0, 880.0], 1.5);
}

#[test]
fn wrong_password_ends_listen_with_failure() {
    let server = Cusaxd::start(DOMAIN);
    server.import_users(DOMAIN, &[("bob", "bob-secret")]);
    let sip = server.addr("sip_udp").expect("sip_udp address").to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let pw = password_file(tmp.path(), "bob", "not-bobs");
    let args = [
        "listen",
        "--server",
        &sip,
        "--user",
        "bob@example.org",
        "--password-file",
        pw.to_str().expect("utf-8"),
    ];
    let mut bob = Client::start("bob", tmp.path(), &args);
    let f = bob.wait_for("refusal", &server, |e| e["event"] == "registration_failed");
    assert_eq!(f["code"], 401);
    assert!(
        !bob.wait_exit(),
        "listen fails when the registrar refuses it"
    );
}

#[test]
fn callee_without_auto_answer_refuses_with_486() {
    let server = Cusaxd::start(DOMAIN);
    server.import_users(DOMAIN, &[("alice", "a-secret"), ("bob", "b-secret")]);
    let sip = server.addr("sip_udp").expect("sip_udp address").to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, bob_pw) = (tmp.path(), password_file(tmp.path(), "bob", "b-secret"));
    let alice_pw = password_file(dir, "alice", "a-secret");
    let bob_args = [
        "listen",
        "--server",
        &sip,
        "--user",
        "bob@example.org",
        "--password-file",
        bob_pw.to_str().expect("utf-8"),
    ];
    let mut bob = Client::start("bob", dir, &bob_args);
    bob.wait_for("registration", &server, |e| e["event"] == "registered");
    let alice_args = [
        "call",
        "bob@example.org",
        "--server",
        &sip,
        "--user",
        "alice@example.org",
        "--password-file",
        alice_pw.to_str().expect("utf-8"),
    ];
    let mut alice = Client::start("alice", dir, &alice_args);
    let inc = bob.wait_for("incoming call", &server, |e| e["event"] == "incoming_call");
    assert_eq!(inc["auto_answer"], false);
    let f = alice.wait_for("failure", &server, |e| e["state"] == "failed");
    assert_eq!(
        (f["code"].as_u64(), f["reason"].as_str()),
        (Some(486), Some("Busy Here"))
    );
    assert!(
        !alice.wait_exit(),
        "a call never established exits with failure"
    );
    let b = bob.wait_for("refusal", &server, |e| e["state"] == "failed");
    assert_eq!(b["code"], 486);
}
