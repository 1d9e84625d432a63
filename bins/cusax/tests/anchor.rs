//! `cusax` against the anchor stack — Prosody for XMPP and Kamailio for SIP, from Debian, with
//! the same accounts on both (RFC 7081 §2: a CUSAX client works with standard servers): login
//! checks both, chat reaches the contact, and alice calls bob by JID — the SIP address comes
//! from the vCard bob published on Prosody — with audio both ways; bob's client attributes the
//! call to alice from the Call-Info alice's client sent, confirmed by her vCard (CL-20, CL-21).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Client, assert_tone};
use cusax_client::tls::TrustConfig;
use cusax_client::xmpp::{Tel, VCard, XmppClient, XmppConfig, XmppEvent};
use cusax_testkit::anchor::AnchorStack;

const DOMAIN: &str = "anchor.test";
const USERS: &[(&str, &str)] = &[("alice", "alice-secret"), ("bob", "bob-secret")];

fn xmpp_cfg(stack: &AnchorStack, user: &str) -> XmppConfig {
    let mut c = XmppConfig::new(&stack.jid(user), stack.password(user).expect("a user"));
    c.server = Some(stack.xmpp_addr());
    c.trust = TrustConfig {
        ca_file: Some(stack.ca_cert().to_owned()),
        no_system_roots: true,
    };
    c
}

/// Publishes `user`'s vCard with their SIP address (on Prosody the user sets it).
async fn publish_vcard(stack: &AnchorStack, user: &str) {
    let (c, mut rx) = XmppClient::start(xmpp_cfg(stack, user)).expect("start");
    common::wait_xmpp(&mut rx, |e| matches!(e, XmppEvent::Roster { .. })).await;
    let card = VCard {
        full_name: Some(user.to_owned()),
        nickname: None,
        tels: vec![Tel {
            number: stack.aor(user),
            types: vec!["VOICE".into()],
        }],
    };
    c.set_vcard(&card).await.expect("vCard stored");
    assert_eq!(c.vcard(None).await.expect("read back").tels, card.tels);
    c.shutdown().await;
}

/// `cusax login` with manual settings; both logins are checked before the file is written.
fn login(stack: &AnchorStack, dir: &Path, user: &str) -> PathBuf {
    let cfg = dir.join(format!("{user}.toml"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cusax"))
        .arg("--config")
        .arg(&cfg)
        .args([
            "login",
            "--user",
            &stack.jid(user),
            "--password-stdin",
            "--server",
        ])
        .arg(stack.sip_addr().to_string())
        .arg("--xmpp-server")
        .arg(stack.xmpp_addr().to_string())
        .arg("--ca-file")
        .arg(stack.ca_cert())
        .env("XDG_CONFIG_HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cusax");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{}", stack.password(user).expect("user")).expect("password");
    }
    let o = child.wait_with_output().expect("login ends");
    assert!(
        o.status.success(),
        "login {user}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        stack.logs()
    );
    let ev: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON line");
    assert_eq!(
        (ev["sip"].as_str(), ev["xmpp"].as_str()),
        (Some("ok"), Some("ok"))
    );
    cfg
}

#[test]
fn login_chat_and_a_call_by_jid_on_prosody_and_kamailio() {
    let stack = AnchorStack::start(DOMAIN, USERS);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        common::befriend(xmpp_cfg(&stack, "alice"), xmpp_cfg(&stack, "bob")).await;
        publish_vcard(&stack, "alice").await;
        publish_vcard(&stack, "bob").await;
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let alice_cfg = login(&stack, dir, "alice");
    let bob_cfg = login(&stack, dir, "bob");
    let arg = |p: &Path| p.to_str().expect("utf-8").to_owned();

    let bob_rec = dir.join("bob-calls");
    let mut bob = Client::start(
        "bob",
        dir,
        &[
            "--config",
            &arg(&bob_cfg),
            "listen",
            "--auto-answer",
            "--record-dir",
            &arg(&bob_rec),
            "--tone",
            "880",
        ],
    );
    bob.wait_for("registration", &stack, |e| e["event"] == "registered");
    bob.wait_for("roster", &stack, |e| e["event"] == "roster");

    let o = Command::new(env!("CARGO_BIN_EXE_cusax"))
        .args([
            "--config",
            &arg(&alice_cfg),
            "send",
            &stack.jid("bob"),
            "over Prosody",
        ])
        .env("XDG_CONFIG_HOME", dir)
        .output()
        .expect("send");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = bob.wait_for("message", &stack, |e| e["event"] == "message");
    assert_eq!(m["body"], "over Prosody");

    let alice_wav = dir.join("alice.wav");
    let mut alice = Client::start(
        "alice",
        dir,
        &[
            "--config",
            &arg(&alice_cfg),
            "call",
            &stack.jid("bob"),
            "--tone",
            "440",
            "--duration",
            "2",
            "--record",
            &arg(&alice_wav),
        ],
    );
    // The call gets through (or says why not) before bob is asked about it. Kamailio may relay
    // bob's 200 before his 180 (two workers), so "ringing" can be skipped.
    let progress = alice.wait_for("ringing or answer", &stack, |e| {
        e["event"] == "call_state" && e["state"] != "calling"
    });
    assert!(
        progress["state"] == "ringing" || progress["state"] == "established",
        "{}",
        alice.report()
    );
    let inc = bob.wait_for("incoming call", &stack, |e| e["event"] == "incoming_call");
    let mark = bob.seen.len() - 1;
    assert_eq!(inc["from"], stack.aor("alice"));
    // Kamailio passes the Call-Info alice's client sent.
    assert_eq!(
        inc["call_info"],
        serde_json::json!([format!("<xmpp:{}>;purpose=impp", stack.jid("alice"))])
    );
    let (_, who) = bob.find_from(mark, "caller", &stack, |e| e["event"] == "caller");
    assert_eq!(who["contact"], stack.jid("alice"), "{who}");
    assert_eq!(who["method"], "call_info_confirmed");
    let (_, est) = alice.find_from(0, "established", &stack, |e| e["state"] == "established");
    assert_eq!(est["direction"], "outgoing");
    alice.wait_for("end", &stack, |e| e["state"] == "ended");
    assert!(
        alice.wait_exit(),
        "alice's call succeeded\n{}",
        alice.report()
    );
    bob.find_from(mark, "end of bob's call", &stack, |e| e["state"] == "ended");
    assert_tone(&alice_wav, 880.0, &[800.0, 440.0], 1.5);
    assert_tone(&bob_rec.join("call-1.wav"), 440.0, &[520.0, 880.0], 1.5);
}
