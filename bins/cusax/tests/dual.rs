//! The dual-stack client end to end against a real `cusaxd` (RFC 7081): accounts set up by
//! `cusax login` from the provisioning URL; alice calls bob **by JID** (the SIP address comes
//! from bob's vCard); bob's `listen` attributes the call to alice through Call-Info confirmed
//! by her vCard (CL-21); audio flows both ways; bob, alice's contact, sees her "on the phone"
//! during the call and her previous presence after (CL-32). A caller claiming alice's JID in
//! Call-Info is not attributed to her (AC-23). Chat, roster and whois on the command line.
//!
//! Build the server first (`cargo build -p cusaxd`) so that it is current.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Client, assert_tone};
use cusax_client::tls::TrustConfig;
use cusax_client::xmpp::XmppConfig;
use cusax_client::{Account, MediaConfig, Secret, TransportKind, UaConfig, UserAgent};
use cusax_testkit::Cusaxd;
use serde_json::Value;

/// `localhost`: the provisioning document names the service host after the domain, and that
/// name must both resolve (to loopback) and match the server certificate.
const DOMAIN: &str = "localhost";
const USERS: [(&str, &str); 4] = [
    ("alice", "alice-secret-1"),
    ("bob", "bob-secret-1"),
    ("carol", "carol-secret-1"),
    ("mallory", "mallory-secret-1"),
];

fn cert(s: &Cusaxd) -> PathBuf {
    s.data_dir.join(format!("tls/{DOMAIN}.crt"))
}

/// Runs one `cusax` command to completion, with `stdin` as its input.
fn cusax(home: &Path, args: &[&str], stdin: &str) -> Output {
    common::run_once(home, args, stdin)
}

fn json_lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// `cusax login` from the provisioning URL; returns the config file.
fn login(s: &Cusaxd, dir: &Path, user: &str, password: &str) -> PathBuf {
    let cfg = dir.join(format!("{user}.toml"));
    let url = format!(
        "https://localhost:{}/provisioning",
        s.addr("http").expect("http").port()
    );
    let o = cusax(
        dir,
        &[
            "--config",
            cfg.to_str().expect("utf-8"),
            "login",
            "--provision",
            &url,
            "--user",
            &format!("{user}@{DOMAIN}"),
            "--password-stdin",
            "--ca-file",
            cert(s).to_str().expect("utf-8"),
        ],
        &format!("{password}\n"),
    );
    assert!(
        o.status.success(),
        "login {user}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        s.log()
    );
    let ev = &json_lines(&o)[0];
    assert_eq!(ev["event"], "login");
    assert_eq!(
        (ev["sip"].as_str(), ev["xmpp"].as_str()),
        (Some("ok"), Some("ok")),
        "{ev}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cfg)
        .expect("config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the config file holds the password");
    let text = std::fs::read_to_string(&cfg).expect("config");
    assert!(
        text.contains("provisioned_from = \"https://localhost:"),
        "{text}"
    );
    cfg
}

fn xmpp_cfg(s: &Cusaxd, user: &str, password: &str) -> XmppConfig {
    let mut c = XmppConfig::new(&format!("{user}@{DOMAIN}"), password);
    c.server = s.addr("xmpp");
    c.trust = TrustConfig {
        ca_file: Some(cert(s)),
        no_system_roots: true,
    };
    c
}

/// alice and bob see each other's presence (RFC 6121 §3), set up with the library.
async fn befriend(s: &Cusaxd, a: (&str, &str), b: (&str, &str)) {
    common::befriend(xmpp_cfg(s, a.0, a.1), xmpp_cfg(s, b.0, b.1)).await;
}

/// A server with the test users, alice and bob in each other's roster, and both logged in
/// with `cusax login`.
struct Friends {
    server: Cusaxd,
    tmp: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    alice_cfg: PathBuf,
    bob_cfg: PathBuf,
}

impl Friends {
    fn set_up() -> Self {
        let server = Cusaxd::start(DOMAIN);
        server.import_users(DOMAIN, &USERS);
        let tmp = tempfile::tempdir().expect("tmp");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(befriend(&server, USERS[0], USERS[1]));
        let alice_cfg = login(&server, tmp.path(), "alice", USERS[0].1);
        let bob_cfg = login(&server, tmp.path(), "bob", USERS[1].1);
        Self {
            server,
            tmp,
            rt,
            alice_cfg,
            bob_cfg,
        }
    }
}

/// `cusax chat JID` with piped stdin and stdout.
fn spawn_chat(home: &Path, cfg: &Path, jid: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_cusax"))
        .args(["--config", cfg_arg(cfg), "chat", jid])
        .env("XDG_CONFIG_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cusax chat starts")
}

fn cfg_arg(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn alice_calls_bob_by_jid_and_bob_knows_it_is_alice() {
    let Friends {
        server,
        tmp,
        rt,
        alice_cfg,
        bob_cfg,
    } = Friends::set_up();
    let dir = tmp.path();

    // Contacts and vCards on the command line.
    let o = cusax(dir, &["--config", cfg_arg(&alice_cfg), "roster"], "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let contacts = json_lines(&o);
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0]["jid"], "bob@localhost");
    assert_eq!(contacts[0]["sip"], "sip:bob@localhost");
    assert_eq!(contacts[0]["subscription"], "both");
    let o = cusax(
        dir,
        &[
            "--config",
            cfg_arg(&bob_cfg),
            "whois",
            "sip:alice@localhost",
        ],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        json_lines(&o)[0]["attribution"]["contact"],
        "alice@localhost"
    );
    let o = cusax(
        dir,
        &[
            "--config",
            cfg_arg(&bob_cfg),
            "whois",
            "sip:mallory@localhost",
        ],
        "",
    );
    // The lookup ran (its event is printed) and found no contact, so whois exits 1.
    let answer = json_lines(&o);
    assert_eq!(
        (o.status.code(), answer.len()),
        (Some(1), 1),
        "{answer:?} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        (answer[0]["event"].as_str(), answer[0]["uri"].as_str()),
        (Some("whois"), Some("sip:mallory@localhost"))
    );
    assert!(
        answer[0]["attribution"].is_object() && answer[0]["attribution"]["contact"].is_null(),
        "mallory is nobody's contact: {answer:?}"
    );

    let bob_rec = dir.join("bob-calls");
    let mut bob = Client::start(
        "bob",
        dir,
        &[
            "--config",
            cfg_arg(&bob_cfg),
            "listen",
            "--auto-answer",
            "--record-dir",
            bob_rec.to_str().expect("utf-8"),
            "--tone",
            "880",
        ],
    );
    let reg = bob.wait_for("registration", &server, |e| e["event"] == "registered");
    bob.wait_for("XMPP login", &server, |e| e["event"] == "connected");
    bob.wait_for("roster", &server, |e| e["event"] == "roster");
    // RFC 7081 §7 (CL-29): SIP over UDP beside XMPP over TLS is pointed out.
    let (_, warn) = bob.find_from(0, "security warning", &server, |e| {
        e["event"] == "security_mismatch"
    });
    assert_eq!(warn["sip"], "SIP over UDP");

    // Chat: a message from the command line reaches bob's listener.
    let o = cusax(
        dir,
        &[
            "--config",
            cfg_arg(&alice_cfg),
            "send",
            "bob@localhost",
            "ring ring",
        ],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = bob.wait_for("message", &server, |e| e["event"] == "message");
    assert_eq!(m["body"], "ring ring");
    assert!(
        m["from"]
            .as_str()
            .unwrap_or_default()
            .starts_with("alice@localhost/")
    );

    let alice_wav = dir.join("alice.wav");
    let mut alice = Client::start(
        "alice",
        dir,
        &[
            "--config",
            cfg_arg(&alice_cfg),
            "call",
            "bob@localhost",
            "--tone",
            "440",
            "--duration",
            "3",
            "--record",
            alice_wav.to_str().expect("utf-8"),
            "--on-the-phone",
        ],
    );
    let inc = bob.wait_for("incoming call", &server, |e| e["event"] == "incoming_call");
    let mark = bob.seen.len() - 1;
    assert_eq!(inc["from"], "sip:alice@localhost");
    // The attribution needs a vCard round trip: it may come before or after other events.
    let (_, who) = bob.find_from(mark, "caller", &server, |e| e["event"] == "caller");
    assert_eq!(who["call_id"], inc["call_id"]);
    assert_eq!(who["contact"], "alice@localhost", "{who}");
    assert_eq!(who["method"], "call_info_confirmed");
    assert!(who.get("unconfirmed_claim").is_none());

    let est = alice.wait_for("established", &server, |e| e["state"] == "established");
    assert_eq!(est["direction"], "outgoing");
    alice.wait_for("on-the-phone event", &server, |e| {
        e["event"] == "on_the_phone" && e["active"] == true
    });
    // bob, alice's contact, sees her on the phone...
    let from_alice = |e: &Value| {
        e["event"] == "presence"
            && e["from"]
                .as_str()
                .unwrap_or_default()
                .starts_with("alice@localhost/")
    };
    let (i, busy) = bob.find_from(mark, "alice on the phone", &server, |e| {
        from_alice(e) && e["show"] == "dnd"
    });
    assert_eq!(busy["status"], "On the phone");
    alice.wait_for("end", &server, |e| e["state"] == "ended");
    alice.find_from(0, "off the phone", &server, |e| {
        e["event"] == "on_the_phone" && e["active"] == false
    });
    // ...and available again after the call.
    bob.find_from(i + 1, "alice back", &server, |e| {
        from_alice(e) && e["available"] == true && e.get("show").is_none()
    });
    assert!(
        alice.wait_exit(),
        "alice's call succeeded\n{}",
        alice.report()
    );
    bob.find_from(mark, "end of bob's call", &server, |e| {
        e["state"] == "ended"
    });
    assert_tone(&alice_wav, 880.0, &[800.0, 440.0], 2.0);
    assert_tone(&bob_rec.join("call-1.wav"), 440.0, &[520.0, 880.0], 2.0);

    // AC-23: mallory calls bob's phone directly, claiming alice's JID in Call-Info.
    let contact = reg["contact"].as_str().unwrap_or_default();
    let bob_addr: std::net::SocketAddr = contact
        .trim_start_matches("<sip:bob@")
        .split([';', '>'])
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bob's contact {contact}"));
    rt.block_on(async {
        let account = Account {
            user: "mallory".into(),
            domain: DOMAIN.into(),
            display_name: None,
            secret: Secret::new("mallory", "x"),
            server: bob_addr,
            transport: TransportKind::Udp,
            impp: Some("alice@localhost".into()),
        };
        let (ua, mut rx) = UserAgent::start(UaConfig::new(account)).await.expect("ua");
        let id = ua
            .call(&format!("sip:bob@{bob_addr}"), MediaConfig::default())
            .await
            .expect("call");
        tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(e) = rx.recv().await {
                if let cusax_client::Event::CallState { state, .. } = e
                    && state == cusax_client::CallState::Established
                {
                    return;
                }
            }
        })
        .await
        .expect("bob answers mallory");
        ua.hangup(&id).await;
        ua.shutdown().await;
    });
    let spoof = bob.wait_for("mallory's call", &server, |e| {
        e["event"] == "caller" && e["from"] == "sip:mallory@localhost"
    });
    assert!(spoof.get("contact").is_none(), "not attributed: {spoof}");
    assert_eq!(spoof["unconfirmed_claim"], "alice@localhost");
}

#[test]
fn chat_add_and_approve_on_the_command_line() {
    let server = Cusaxd::start(DOMAIN);
    server.import_users(DOMAIN, &USERS);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let carol_cfg = login(&server, dir, "carol", USERS[2].1);
    let bob_cfg = login(&server, dir, "bob", USERS[1].1);
    let mut bob = Client::start(
        "bob",
        dir,
        &["--config", cfg_arg(&bob_cfg), "listen", "--approve-all"],
    );
    bob.wait_for("roster", &server, |e| e["event"] == "roster");
    let o = cusax(
        dir,
        &[
            "--config",
            cfg_arg(&carol_cfg),
            "add",
            "bob@localhost",
            "--name",
            "Bobby",
        ],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    bob.wait_for("subscription request", &server, |e| {
        e["event"] == "subscription" && e["from"] == "carol@localhost" && e["kind"] == "subscribe"
    });
    // Interactive chat: lines in, bob's answer out.
    let mut chat = spawn_chat(dir, &carol_cfg, "bob@localhost");
    let mut stdin = chat.stdin.take().expect("stdin");
    writeln!(stdin, "hello bob").expect("type");
    let m = bob.wait_for("chat line", &server, |e| e["event"] == "message");
    assert_eq!(m["body"], "hello bob");
    drop(stdin); // EOF ends the chat
    let out = chat.wait_with_output().expect("chat ends");
    assert!(out.status.success());
    let lines = json_lines(&out);
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "sent" && l["to"] == "bob@localhost")
    );
    let o = cusax(dir, &["--config", cfg_arg(&carol_cfg), "roster"], "");
    let contacts = json_lines(&o);
    assert_eq!(contacts[0]["jid"], "bob@localhost");
    assert_eq!(contacts[0]["name"], "Bobby");
    assert_eq!(
        contacts[0]["subscription"], "to",
        "bob approved: {contacts:?}"
    );
}

/// Interop: `cusax chat` with an independent XMPP client (slixmpp), which also checks over
/// disco#info that our client offers no Jingle RTP (CL-04).
#[test]
fn cusax_chats_with_slixmpp() {
    use std::io::{BufRead, BufReader};
    let server = Cusaxd::start(DOMAIN);
    server.import_users(DOMAIN, &USERS);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let alice_cfg = login(&server, dir, "alice", USERS[0].1);
    let mut py = Command::new(cusax_testkit::slixmpp_python())
        .arg(cusax_testkit::workspace().join("tests/slixmpp/peer.py"))
        .args(["echo", "--addr"])
        .arg(server.addr("xmpp").expect("xmpp").to_string())
        .arg("--ca")
        .arg(cert(&server))
        .args(["--user", "bob@localhost", USERS[1].1])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python runs");
    let (tx, py_lines) = std::sync::mpsc::channel();
    let out = py.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let expect_line = |what: &str| -> String {
        loop {
            match py_lines.recv_timeout(common::STEP) {
                Ok(l) if l.starts_with("FAIL") => panic!("slixmpp: {l}\n{}", server.log()),
                Ok(l) if l.contains(what) => return l,
                Ok(_) => {}
                Err(_) => panic!("slixmpp: no {what:?}\n{}", server.log()),
            }
        }
    };
    expect_line("READY");
    let mut chat = spawn_chat(dir, &alice_cfg, "bob@localhost");
    let mut stdin = chat.stdin.take().expect("stdin");
    let chat_out = chat.stdout.take().expect("stdout");
    let (ctx, chat_lines) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for l in BufReader::new(chat_out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&l)
                && ctx.send(v).is_err()
            {
                return;
            }
        }
    });
    let echo = |body: &str| loop {
        let v = chat_lines
            .recv_timeout(common::STEP)
            .unwrap_or_else(|_| panic!("no echo of {body:?}"));
        if v["event"] == "message" && v["body"] == format!("echo: {body}") {
            assert!(
                v["from"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("bob@localhost/")
            );
            return;
        }
    };
    writeln!(stdin, "hello from cusax").expect("type");
    echo("hello from cusax");
    expect_line("disco ok");
    writeln!(stdin, "bye").expect("type");
    echo("bye");
    expect_line("OK");
    drop(stdin);
    assert!(chat.wait().expect("chat ends").success());
    assert!(py.wait().expect("python ends").success());
}

/// Waits (bounded) for the first dual-stack event matching `pred`.
async fn until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<cusax_client::cusax::ClientEvent>,
    pred: fn(&cusax_client::cusax::ClientEvent) -> bool,
) {
    tokio::time::timeout(common::STEP, async {
        while let Some(e) = rx.recv().await {
            if pred(&e) {
                return;
            }
        }
        panic!("the event stream ended");
    })
    .await
    .expect("the event in time");
}

/// CL-10: with `presence_after_sip`, contacts see us online only once SIP is registered; a
/// refused registration keeps us invisible although XMPP is logged in.
#[test]
fn presence_waits_for_the_sip_registration() {
    use cusax_client::cusax::{ClientEvent, Cusax, ServiceConfig};
    use cusax_client::xmpp::{XmppClient, XmppEvent};
    let server = Cusaxd::start(DOMAIN);
    server.import_users(DOMAIN, &USERS);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        befriend(&server, USERS[0], USERS[1]).await;
        let (_alice, mut arx) =
            XmppClient::start(xmpp_cfg(&server, "alice", USERS[0].1)).expect("alice");
        common::wait_xmpp(&mut arx, |e| matches!(e, XmppEvent::Roster { .. })).await;
        let bob_cfg = |sip_password: &str| {
            let account = Account {
                user: "bob".into(),
                domain: DOMAIN.into(),
                display_name: None,
                secret: Secret::new("bob", sip_password),
                server: server.addr("sip_udp").expect("sip"),
                transport: TransportKind::Udp,
                impp: Some("bob@localhost".into()),
            };
            let mut sip = UaConfig::new(account);
            sip.register = true;
            ServiceConfig {
                sip,
                xmpp: xmpp_cfg(&server, "bob", USERS[1].1),
                service_domain: DOMAIN.into(),
                on_the_phone: false,
                presence_after_sip: true,
            }
        };
        // SIP refused (a wrong SIP password), XMPP logged in.
        let (bob, mut brx) = Cusax::start(bob_cfg("not-bobs")).await.expect("bob");
        // The two sides report independently, in either order.
        let (mut xmpp_up, mut sip_refused) = (false, false);
        tokio::time::timeout(common::STEP, async {
            while !(xmpp_up && sip_refused) {
                match brx.recv().await.expect("bob's events") {
                    ClientEvent::Xmpp(XmppEvent::Roster { .. }) => xmpp_up = true,
                    ClientEvent::Sip(cusax_client::Event::RegistrationFailed { .. }) => {
                        sip_refused = true;
                    }
                    _ => {}
                }
            }
        })
        .await
        .expect("XMPP login and SIP refusal");
        // A message sent after the refusal arrives after any presence bob sent before it.
        bob.xmpp().send_message("alice@localhost", "probe").await.expect("send");
        let before: Vec<XmppEvent> = tokio::time::timeout(common::STEP, async {
            let mut seen = Vec::new();
            while let Some(e) = arx.recv().await {
                if matches!(&e, XmppEvent::Message { body, .. } if body == "probe") {
                    return seen;
                }
                seen.push(e);
            }
            panic!("alice's events ended");
        })
        .await
        .expect("probe arrives");
        assert!(
            !before.iter().any(|e| matches!(e, XmppEvent::Presence { from, available: true, .. } if from.starts_with("bob@localhost/"))),
            "bob was shown online without SIP: {before:?}"
        );
        bob.shutdown().await;
        // SIP registered: now bob appears.
        let (bob, mut brx) = Cusax::start(bob_cfg(USERS[1].1)).await.expect("bob");
        until(&mut brx, |e| matches!(e, ClientEvent::Sip(cusax_client::Event::Registered { .. })))
            .await;
        common::wait_xmpp(&mut arx, |e| {
            matches!(e, XmppEvent::Presence { from, available: true, .. } if from.starts_with("bob@localhost/"))
        })
        .await;
        bob.shutdown().await;
    });
}

/// CL-23 end to end: `cusax call --anonymous` reaches bob without naming alice — no JID in
/// Call-Info (the proxy adds none either), an anonymous From, and no contact attributed.
#[test]
fn an_anonymous_call_names_nobody() {
    let Friends {
        server,
        tmp,
        rt: _,
        alice_cfg,
        bob_cfg,
    } = Friends::set_up();
    let dir = tmp.path();
    let mut bob = Client::start(
        "bob",
        dir,
        &["--config", cfg_arg(&bob_cfg), "listen", "--auto-answer"],
    );
    bob.wait_for("registration", &server, |e| e["event"] == "registered");
    let mut alice = Client::start(
        "alice",
        dir,
        &[
            "--config",
            cfg_arg(&alice_cfg),
            "call",
            "bob@localhost",
            "--anonymous",
            "--duration",
            "0.5",
        ],
    );
    let inc = bob.wait_for("incoming call", &server, |e| e["event"] == "incoming_call");
    let mark = bob.seen.len() - 1;
    assert_eq!(inc["from"], "sip:anonymous@anonymous.invalid", "{inc}");
    assert_eq!(inc["call_info"], serde_json::json!([]), "{inc}");
    let (_, who) = bob.find_from(mark, "caller", &server, |e| e["event"] == "caller");
    assert!(
        who.get("contact").is_none() && who.get("unconfirmed_claim").is_none(),
        "{who}"
    );
    alice.wait_for("established", &server, |e| e["state"] == "established");
    assert!(alice.wait_exit(), "{}", alice.report());
}
