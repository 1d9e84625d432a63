//! RFC 6120/6121 and CUSAX XS-01/XS-03 end to end: a real `cusaxd` driven by slixmpp clients
//! (`tests/slixmpp/peer.py`) and by raw sockets for hostile XML.

use cusax_testkit::Cusaxd;
use cusax_testkit::slixmpp_python as python;
use cusax_testkit::workspace;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.test";

struct Env {
    server: Cusaxd,
}

impl Env {
    fn start(users: &[&str]) -> Self {
        let server = Cusaxd::start(DOMAIN);
        for u in users {
            let out = server.ctl(
                &["user", "add", &format!("{u}@{DOMAIN}"), "--password-stdin"],
                &format!("pw-{u}\n"),
            );
            assert!(out.status.success(), "user add: {out:?}");
        }
        Self { server }
    }

    fn peer_cmd(&self, scenario: &str, users: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(python());
        cmd.arg(workspace().join("tests/slixmpp/peer.py"))
            .arg(scenario)
            .arg("--addr")
            .arg(self.server.addr("xmpp").expect("xmpp listener").to_string())
            .arg("--ca")
            .arg(self.server.data_dir.join(format!("tls/{DOMAIN}.crt")));
        for (jid, pw) in users {
            cmd.args(["--user", jid, pw]);
        }
        cmd
    }

    /// Runs a scenario; asserts it succeeded and returns its output.
    fn peer(&self, scenario: &str, users: &[(&str, &str)]) -> String {
        let out = self
            .peer_cmd(scenario, users)
            .output()
            .expect("python runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && text.contains("OK"),
            "scenario {scenario} failed:\n{text}\n{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.server.log()
        );
        text
    }
}

fn jid(u: &str) -> String {
    format!("{u}@{DOMAIN}")
}

#[test]
fn scram_sha1_and_sha256_login_and_wrong_password() {
    let env = Env::start(&["alice"]);
    let out = env.peer(
        "login",
        &[(&jid("alice"), "pw-alice"), (&jid("alice"), "wrong")],
    );
    assert!(out.contains("login ok SCRAM-SHA-1") && out.contains("login ok SCRAM-SHA-256"));
    assert!(out.contains("wrong password refused"));
}

#[test]
fn subscription_presence_chat_and_unavailable_on_drop() {
    let env = Env::start(&["alice", "bob"]);
    let out = env.peer(
        "im",
        &[(&jid("alice"), "pw-alice"), (&jid("bob"), "pw-bob")],
    );
    assert!(
        out.contains("subscribed: to") || out.contains("subscribed: both"),
        "{out}"
    );
    assert!(out.contains("chat ok") && out.contains("unavailable on drop ok"));
}

#[test]
fn own_presence_is_reflected_to_the_sender_and_the_other_resource() {
    let env = Env::start(&["alice"]);
    let out = env.peer("own_presence", &[(&jid("alice"), "pw-alice")]);
    for fact in [
        "own initial presence ok",
        "other resource sees initial presence ok",
        "unavailable reflected ok",
    ] {
        assert!(out.contains(fact), "{fact}: {out}");
    }
}

#[test]
fn offline_message_arrives_with_delay_stamp() {
    let env = Env::start(&["alice", "carol"]);
    let out = env.peer(
        "offline",
        &[(&jid("alice"), "pw-alice"), (&jid("carol"), "pw-carol")],
    );
    assert!(out.contains("offline ok, delay stamp"), "{out}");
}

#[test]
fn vcard_carries_sip_aor_and_cannot_claim_anothers() {
    let env = Env::start(&["alice", "bob"]);
    let out = env.peer(
        "vcard",
        &[(&jid("alice"), "pw-alice"), (&jid("bob"), "pw-bob")],
    );
    assert!(out.contains(&format!("sip:{}", jid("bob"))), "{out}");
    assert!(out.contains("claim refused: not-acceptable"), "{out}");
    assert!(out.contains("own set kept pins"), "{out}");
}

#[test]
fn in_band_password_change_replaces_old_password() {
    let env = Env::start(&["dave"]);
    let out = env.peer(
        "passwd",
        &[(&jid("dave"), "pw-dave"), ("unused", "fresh-pw")],
    );
    assert!(out.contains("old password refused") && out.contains("new password works"));
}

/// Runs one sipp REGISTER scenario (`tests/sipp/`) over UDP for `user`/`password`, bounded;
/// true when sipp's expectations held (see `tests/sipp/README.md`).
fn sip_register(server: &Cusaxd, scenario: &str, user: &str, password: &str) -> bool {
    cusax_testkit::require_sipp();
    let dir = user_csv(user, password);
    let addr = server
        .addr("sip_udp")
        .expect("SIP UDP listener")
        .to_string();
    sipp_scenario(scenario, &addr, DOMAIN, dir.path(), "users.csv")
}

/// A scratch directory with `users.csv`, the sipp CSV of one account of `DOMAIN`.
fn user_csv(user: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("users.csv"),
        format!("SEQUENTIAL\n{user};{password};{DOMAIN}\n"),
    )
    .expect("csv");
    dir
}

/// Waits (bounded) for the server's change feed to report new credentials of `account`.
fn wait_for_credentials_change(server: &Cusaxd, account: &str) -> bool {
    wait_for_change(server, account, "credentials")
}

/// Waits (bounded) for the server's change feed to report a change `kind` of `account`.
fn wait_for_change(server: &Cusaxd, account: &str, kind: &str) -> bool {
    let kind = format!("kind=\"{kind}\"");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let seen = server
            .log()
            .lines()
            .any(|l| l.contains("account changed") && l.contains(account) && l.contains(&kind));
        if seen {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn in_band_password_change_applies_to_sip_digest_too() {
    let env = Env::start(&["erin"]);
    // The import's own change must have reached the registrar first: it empties the cache,
    // and arriving after the REGISTER below it would hide whether the credentials change does.
    assert!(
        wait_for_change(&env.server, &jid("erin"), "created"),
        "the import was not reported: {}",
        env.server.log()
    );
    // The old password works on SIP first, so the registrar has erin's HA1s cached.
    assert!(
        sip_register(&env.server, "register_digest.xml", "erin", "pw-erin"),
        "REGISTER with the initial password: {}",
        env.server.log()
    );
    // XEP-0077 over XMPP; the scenario proves the XMPP side (old refused, new works).
    let out = env.peer(
        "passwd",
        &[(&jid("erin"), "pw-erin"), ("unused", "erin-new-pw")],
    );
    assert!(out.contains("old password refused") && out.contains("new password works"));
    // The registrar learns of it from the store's change feed, like any other change.
    assert!(
        wait_for_credentials_change(&env.server, &jid("erin")),
        "no credentials change reported: {}",
        env.server.log()
    );
    // One change-feed hop remains between that log line and the registrar's cache: a few
    // bounded attempts, each a complete REGISTER exchange.
    let new_ok =
        (0..5).any(|_| sip_register(&env.server, "register_digest.xml", "erin", "erin-new-pw"));
    assert!(
        new_ok,
        "REGISTER with the new password: {}",
        env.server.log()
    );
    assert!(
        sip_register(
            &env.server,
            "register_wrong_password.xml",
            "erin",
            "pw-erin"
        ),
        "REGISTER with the old password must be refused: {}",
        env.server.log()
    );
    // And the registration scenario with it fails on that refusal, not for another reason.
    let dir = user_csv("erin", "pw-erin");
    let addr = env.server.addr("sip_udp").expect("sip").to_string();
    let _ = sipp_traced("register_digest.xml", &addr, dir.path(), "users.csv").assert_failed_with(
        "2 REGISTER",
        401,
        "the old password registered",
    );
}

#[test]
fn lock_ends_live_session_and_refuses_next_login() {
    let env = Env::start(&["alice"]);
    let mut child = env
        .peer_cmd("kicked", &[(&jid("alice"), "pw-alice")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    // The script bounds its own waits; this loop ends when it prints READY or exits.
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.trim() == "READY");
    assert!(ready, "alice did not log in: {}", env.server.log());
    let out = env.server.ctl(&["user", "lock", &jid("alice")], "");
    assert!(out.status.success(), "lock: {out:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert!(status.success(), "session not ended by the lock: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("not-authorized")),
        "{rest:?}"
    );
    env.peer("refused", &[(&jid("alice"), "pw-alice")]);
    // The same lock on the SIP side: the next REGISTER, with the right password, gets 403.
    cusax_testkit::require_sipp();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("alice.csv"),
        format!("SEQUENTIAL\nalice;pw-alice;{DOMAIN}\n"),
    )
    .expect("csv");
    let addr = env.server.addr("sip_udp").expect("sip").to_string();
    let refused = sipp_scenario(
        "register_locked.xml",
        &addr,
        DOMAIN,
        dir.path(),
        "alice.csv",
    );
    assert!(refused, "REGISTER of the locked account answered 403");
}

/// Sends `payload` on a fresh connection and returns what the server wrote until it closed.
fn raw_exchange(addr: std::net::SocketAddr, payload: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The server may close before reading everything (a 2 MB stanza): ignore write errors.
    let _ = s.write_all(payload);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn hostile_xml_gets_stream_errors_and_service_goes_on() {
    let env = Env::start(&["alice"]);
    let addr = env.server.addr("xmpp").expect("xmpp listener");
    let header = format!(
        "<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    );
    let laughs = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>\
        <!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]><lolz>&lol2;</lolz>";
    let big = format!(
        "{header}<message><body>{}</body></message>",
        "A".repeat(2 << 20)
    );
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "billion laughs",
            laughs.as_bytes().to_vec(),
            "restricted-xml",
        ),
        (
            "DOCTYPE",
            format!("<!DOCTYPE stream>{header}").into_bytes(),
            "restricted-xml",
        ),
        ("2 MB stanza", big.into_bytes(), "policy-violation"),
    ];
    for (what, payload, condition) in cases {
        let reply = raw_exchange(addr, &payload);
        assert!(
            reply.contains(&format!(
                "<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'"
            )) || reply.contains(&format!(
                "<{condition} xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\""
            )),
            "{what}: expected {condition}, got {reply}"
        );
    }
    env.peer(
        "login",
        &[(&jid("alice"), "pw-alice"), (&jid("alice"), "wrong")],
    );
}

/// Calls the admin API (or `/metrics`) with curl; returns status and body.
fn admin(env: &Env, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let extra: Vec<&str> = auth.iter().flat_map(|h| ["-H", h.as_str()]).collect();
    cusax_testkit::https(&env.server, DOMAIN, method, path, &extra)
}

/// RFC 7081 §3.2 operations: the admin API lists a live XMPP session and a SIP binding of the
/// same account, ends the session and removes the binding; `/metrics` counts both sides.
#[test]
fn admin_api_shows_and_ends_both_sides_and_metrics_count_them() {
    cusax_testkit::require_sipp();
    let env = Env::start(&["alice"]);
    let token = std::fs::read_to_string(env.server.data_dir.join("admin.token"))
        .expect("admin token written at start");
    let token = token.trim();
    let mode = std::fs::metadata(env.server.data_dir.join("admin.token"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .expect("metadata");
    assert_eq!(mode, 0o600, "the token is the operator's only");
    assert_eq!(admin(&env, "GET", "/admin/v1/sessions", None).0, 401);
    assert_eq!(
        admin(&env, "GET", "/admin/v1/sessions", Some("nope")).0,
        401
    );

    let (s0, before) = admin(&env, "GET", "/metrics", None);
    assert_eq!(s0, 200);
    assert!(!before.contains("method=\"REGISTER\""), "{before}");

    // alice on SIP (sipp registers her) …
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("alice.csv"),
        format!("SEQUENTIAL\nalice;pw-alice;{DOMAIN}\n"),
    )
    .expect("csv");
    let registered = Command::new("timeout")
        .arg("30")
        .arg("sipp")
        .arg(env.server.addr("sip_udp").expect("sip").to_string())
        .arg("-sf")
        .arg(cusax_testkit::sipp_scenarios().join("register_digest.xml"))
        .args([
            "-t",
            "u1",
            "-inf",
            "alice.csv",
            "-au",
            "[field0]",
            "-ap",
            "[field1]",
        ])
        .args(["-auth_uri", DOMAIN, "-m", "1", "-nd", "-nostdin"])
        .args(["-recv_timeout", "5000", "-timeout", "20s", "-timeout_error"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp runs")
        .success();
    assert!(registered, "alice registers over SIP");

    // … and on XMPP (a slixmpp client that waits to be kicked).
    let mut child = env
        .peer_cmd("kicked", &[(&jid("alice"), "pw-alice")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.trim() == "READY");
    assert!(ready, "alice did not log in: {}", env.server.log());

    let (s, body) = admin(
        &env,
        "GET",
        &format!("/admin/v1/users/{}", jid("alice")),
        Some(token),
    );
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(&format!("\"jid\":\"{}/", jid("alice"))),
        "session listed: {body}"
    );
    assert!(
        body.contains(&format!("\"aor\":\"sip:alice@{DOMAIN}\"")),
        "binding listed: {body}"
    );

    let (_, metrics) = admin(&env, "GET", "/metrics", None);
    assert!(metrics.contains("cusax_xmpp_sessions 1"), "{metrics}");
    assert!(metrics.contains("cusax_sip_bindings 1"), "{metrics}");
    assert!(
        metrics.contains("cusax_sip_requests_total{method=\"REGISTER\"} 2"),
        "{metrics}"
    );

    // End the XMPP session: the client sees its stream closed.
    let (s, body) = admin(
        &env,
        "DELETE",
        &format!("/admin/v1/sessions/{}", jid("alice")),
        Some(token),
    );
    assert_eq!((s, body.as_str()), (200, "{\"ended\":1}"));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        child.wait().expect("wait").success(),
        "session not ended: {rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.contains("policy-violation")),
        "{rest:?}"
    );

    // Remove the SIP binding.
    let (s, body) = admin(
        &env,
        "DELETE",
        &format!("/admin/v1/bindings/sip:alice@{DOMAIN}"),
        Some(token),
    );
    assert_eq!((s, body.as_str()), (200, "{\"removed\":1}"));
    let (_, body) = admin(&env, "GET", "/admin/v1/bindings", Some(token));
    assert_eq!(body, "[]");

    // A password set through the admin API holds on both protocols at once.
    let (s, body) = admin_put(
        &env,
        &format!("/admin/v1/users/{}/password", jid("alice")),
        token,
        r#"{"password":"n3w-pass"}"#,
    );
    assert_eq!(s, 204, "{body}");
    std::fs::write(
        dir.path().join("new.csv"),
        format!("SEQUENTIAL\nalice;n3w-pass;{DOMAIN}\n"),
    )
    .expect("csv");
    // The server learns of the change from the change log (polled): retry, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sipp_register(&env, dir.path(), "new.csv") {
        assert!(Instant::now() < deadline, "SIP never took the new password");
    }
    let addr = env.server.addr("sip_udp").expect("sip").to_string();
    let _ = sipp_traced("register_digest.xml", &addr, dir.path(), "alice.csv").assert_failed_with(
        "2 REGISTER",
        401,
        "SIP still takes the old password",
    );
    // New password in with both SCRAMs, old one refused.
    env.peer(
        "login",
        &[(&jid("alice"), "n3w-pass"), (&jid("alice"), "pw-alice")],
    );

    // A lock ends the SIP side too: the binding just made is gone.
    let out = env.server.ctl(&["user", "lock", &jid("alice")], "");
    assert!(out.status.success(), "lock: {out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = admin(&env, "GET", "/admin/v1/bindings", Some(token));
        if body == "[]" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "binding survived the lock: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn admin_put(env: &Env, path: &str, token: &str, json: &str) -> (u16, String) {
    let auth = format!("Authorization: Bearer {token}");
    let extra = [
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data",
        json,
    ];
    cusax_testkit::https(&env.server, DOMAIN, "PUT", path, &extra)
}

/// One REGISTER with digest by sipp from the CSV `csv` in `dir`; true on a 200.
fn sipp_register(env: &Env, dir: &Path, csv: &str) -> bool {
    let addr = env.server.addr("sip_udp").expect("sip").to_string();
    sipp_register_at(&addr, DOMAIN, dir, csv)
}

fn sipp_register_at(addr: &str, realm: &str, dir: &Path, csv: &str) -> bool {
    sipp_scenario("register_digest.xml", addr, realm, dir, csv)
}

/// One registration scenario of `tests/sipp`, one call over UDP, bounded.
fn sipp_command(scenario: &str, addr: &str, realm: &str, dir: &Path, csv: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg("30")
        .arg("sipp")
        .arg(addr)
        .arg("-sf")
        .arg(cusax_testkit::sipp_scenarios().join(scenario))
        .args([
            "-t",
            "u1",
            "-i",
            "127.0.0.1",
            "-inf",
            csv,
            "-au",
            "[field0]",
            "-ap",
            "[field1]",
        ])
        .args(["-auth_uri", realm, "-m", "1", "-nd", "-nostdin"])
        .args(["-recv_timeout", "3000", "-timeout", "20s", "-timeout_error"])
        .current_dir(dir);
    cmd
}

/// Runs one registration scenario of `tests/sipp` once; true when sipp says it passed.
fn sipp_scenario(scenario: &str, addr: &str, realm: &str, dir: &Path, csv: &str) -> bool {
    sipp_command(scenario, addr, realm, dir, csv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp runs")
        .success()
}

/// Runs a registration scenario expected to fail, with its message trace: the caller asserts
/// how the server answered (`SippRun::assert_failed_with`).
fn sipp_traced(scenario: &str, addr: &str, dir: &Path, csv: &str) -> cusax_testkit::SippRun {
    let trace = dir.join(format!("{}.msg", csv.trim_end_matches(".csv")));
    cusax_testkit::SippRun::traced(&mut sipp_command(scenario, addr, DOMAIN, dir, csv), &trace)
}

/// RFC 7081 §2: a client configured only from the provisioning JSON logs in to both
/// protocols — sipp registers with the SIP username, realm, registrar port and transport it
/// names, slixmpp logs in with the JID and port it names.
#[test]
fn a_client_configured_from_the_provisioning_json_logs_in_to_both() {
    cusax_testkit::require_sipp();
    let env = Env::start(&["alice"]);
    let login = format!("{}:pw-alice", jid("alice"));
    let (code, body) =
        cusax_testkit::https(&env.server, DOMAIN, "GET", "/provisioning", &["-u", &login]);
    assert_eq!(code, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let sip = &doc["sip"];
    let (user, realm) = (
        sip["username"].as_str().expect("username"),
        sip["realm"].as_str().expect("realm"),
    );
    let port = sip["port"].as_u64().expect("port");
    let transport = sip["transports"][0].as_str().expect("a transport");
    assert_eq!(transport, "udp");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("from-json.csv"),
        format!("SEQUENTIAL\n{user};pw-alice;{realm}\n"),
    )
    .expect("csv");
    let registered = sipp_register_at(
        &format!("127.0.0.1:{port}"),
        realm,
        dir.path(),
        "from-json.csv",
    );
    assert!(registered, "REGISTER with the provisioned SIP settings");

    let xmpp = &doc["xmpp"];
    let jid_from_json = xmpp["jid"].as_str().expect("jid");
    let xport = xmpp["port"].as_u64().expect("xmpp port");
    assert_eq!(xmpp["starttls_required"], true);
    let out = Command::new(python())
        .arg(workspace().join("tests/slixmpp/peer.py"))
        .args(["login", "--addr", &format!("127.0.0.1:{xport}"), "--ca"])
        .arg(env.server.data_dir.join(format!("tls/{DOMAIN}.crt")))
        .args([
            "--user",
            jid_from_json,
            "pw-alice",
            "--user",
            jid_from_json,
            "wrong",
        ])
        .output()
        .expect("python runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("OK"), "{text}");
}

#[test]
fn carbons_copy_sent_and_received_messages_to_the_other_resource_but_not_private_ones() {
    let env = Env::start(&["alice", "bob"]);
    let out = env.peer(
        "carbons",
        &[(&jid("alice"), "pw-alice"), (&jid("bob"), "pw-bob")],
    );
    for fact in [
        "server advertises carbons",
        "carbons enabled on both resources",
        "sent carbon ok",
        "received carbon ok",
        "private message not copied, the following one copied",
    ] {
        assert!(out.contains(fact), "{fact}: {out}");
    }
}

#[test]
fn csi_holds_presence_while_inactive_and_delivers_messages_at_once() {
    let env = Env::start(&["alice", "bob"]);
    let out = env.peer(
        "csi",
        &[(&jid("alice"), "pw-alice"), (&jid("bob"), "pw-bob")],
    );
    for fact in [
        "csi feature offered",
        "alice inactive",
        "message delivered at once",
        "held presence: only the latest sent, before the message",
        "held presence arrived after active, only the latest",
    ] {
        assert!(out.contains(fact), "{fact}: {out}");
    }
}
