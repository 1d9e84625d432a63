//! RFC 7081 §3.2 (one service for the operator), issue 6 item 4: `cusaxctl sessions`,
//! `bindings` and `user status` against a real `cusaxd` over its admin API — a phone (sipp)
//! and an XMPP client (slixmpp) as the live state, the certificate of the data directory as
//! the only trust anchor, and one-line errors for a wrong token, an unknown account, a
//! foreign certificate and a stopped server.

use cusax_testkit::slixmpp_python as python;
use cusax_testkit::{Cusaxd, cusaxctl, free_sip_port, require_sipp, sipp_scenarios};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.org";

fn url(server: &Cusaxd) -> String {
    let http = server.addr("http").expect("https listening");
    format!("https://{http}")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `cusaxctl --data-dir DIR args… --url URL`; asserts success and returns stdout.
fn live_ok(server: &Cusaxd, args: &[&str]) -> String {
    let u = url(server);
    let mut all = args.to_vec();
    all.extend(["--url", u.as_str()]);
    let o = server.ctl(&all, "");
    assert!(
        o.status.success(),
        "{args:?} failed: {}\n--- server log ---\n{}",
        stderr(&o),
        server.log()
    );
    stdout(&o)
}

/// Asserts a failure with exactly one line on stderr, and returns it.
fn one_line_error(o: &Output, what: &str) -> String {
    assert!(!o.status.success(), "{what}: succeeded: {}", stdout(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{what}: not one line: {err:?}");
    assert!(stdout(o).is_empty(), "{what}: printed {:?}", stdout(o));
    err
}

/// alice registers once over UDP from 127.0.0.1:`port` with digest (sipp,
/// `tests/sipp/register_digest.xml`, Expires 3600, User-Agent cusax-sipp).
fn sipp_register(server: &Cusaxd, dir: &Path, port: u16) {
    std::fs::write(
        dir.join("alice.csv"),
        format!("SEQUENTIAL\nalice;pw-alice;{DOMAIN}\n"),
    )
    .expect("csv");
    let ok = Command::new("timeout")
        .arg("30")
        .arg("sipp")
        .arg(server.addr("sip_udp").expect("sip").to_string())
        .arg("-sf")
        .arg(sipp_scenarios().join("register_digest.xml"))
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "u1", "-inf", "alice.csv", "-au", "[field0]"])
        .args(["-ap", "[field1]", "-auth_uri", DOMAIN])
        .args(["-m", "1", "-nd", "-nostdin"])
        .args(["-recv_timeout", "5000", "-timeout", "20s", "-timeout_error"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp runs")
        .success();
    assert!(ok, "alice registers over SIP: {}", server.log());
}

/// A table's data rows (everything after the header line).
fn rows(table: &str) -> Vec<&str> {
    table.lines().skip(1).collect()
}

/// Bindings are listed, shown per user, removed, and gone; the session table of an idle server
/// is empty; the store's side (lock, unknown account) is part of `user status`.
#[test]
fn bindings_and_user_status_follow_a_registration_and_its_removal() {
    require_sipp();
    let server = Cusaxd::start(DOMAIN);
    server.import_users(DOMAIN, &[("alice", "pw-alice"), ("bob", "pw-bob")]);

    let sessions = live_ok(&server, &["sessions", "list"]);
    assert_eq!(sessions, "JID  AVAILABLE\n", "an empty table");
    assert_eq!(live_ok(&server, &["sessions", "list", "--json"]), "[]\n");
    let bindings = live_ok(&server, &["bindings", "list"]);
    assert!(bindings.starts_with("AOR  CONTACT  EXPIRES IN  TRANSPORT  SOURCE  USER AGENT"));
    assert!(rows(&bindings).is_empty(), "{bindings}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_sip_port();
    sipp_register(&server, tmp.path(), port);

    let contact = format!("sip:alice@127.0.0.1:{port}");
    let source = format!("127.0.0.1:{port}");
    let aor = format!("sip:alice@{DOMAIN}");
    for filter in [None, Some(aor.as_str()), Some("alice@example.org")] {
        let mut args = vec!["bindings", "list"];
        args.extend(filter);
        let out = live_ok(&server, &args);
        let lines = rows(&out);
        assert_eq!(lines.len(), 1, "one binding ({filter:?}): {out}");
        let line = lines[0];
        assert!(line.starts_with(&format!("{aor}  {contact}")), "{line}");
        for want in ["udp", source.as_str(), "cusax-sipp"] {
            assert!(line.to_lowercase().contains(want), "{want} in {line}");
        }
        assert!(
            line.contains("59m") || line.contains("1h00m00s"),
            "expires in about an hour: {line}"
        );
    }
    let bob = live_ok(&server, &["bindings", "list", "bob@example.org"]);
    assert!(rows(&bob).is_empty(), "bob has no binding: {bob}");

    // The JSON is the API's: an array of objects with the binding's fields.
    let json = live_ok(&server, &["bindings", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v[0]["aor"], aor.as_str(), "{json}");
    assert_eq!(v[0]["user_agent"], "cusax-sipp", "{json}");
    assert_eq!(v[0]["source"], source.as_str(), "{json}");

    let status = live_ok(&server, &["user", "status", "alice@example.org"]);
    for want in [
        "account:  alice@example.org\n",
        "locked:   no\n",
        "xmpp:     no session\n",
        "sip:      1 binding\n",
        "calls:    none\n",
    ] {
        assert!(status.contains(want), "{want:?} in:\n{status}");
    }
    assert!(
        status.contains(&format!("\n  {contact}")),
        "binding row: {status}"
    );
    let json = live_ok(&server, &["user", "status", "alice@example.org", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["account"], "alice@example.org");
    assert_eq!(v["sip"][0]["aor"], aor.as_str(), "{json}");
    assert_eq!(v["xmpp"], serde_json::json!([]), "{json}");

    // A contact that is not registered removes nothing; the AOR's removal removes it.
    let none = live_ok(
        &server,
        &[
            "bindings",
            "remove",
            &aor,
            "--contact",
            "sip:alice@192.0.2.1",
        ],
    );
    assert_eq!(none, format!("removed 0 bindings of {aor}\n"));
    let removed = live_ok(&server, &["bindings", "remove", "alice@example.org"]);
    assert_eq!(removed, format!("removed 1 binding of {aor}\n"));
    let after = live_ok(&server, &["bindings", "list"]);
    assert!(rows(&after).is_empty(), "empty after removal: {after}");
    assert_eq!(live_ok(&server, &["bindings", "list", "--json"]), "[]\n");
    let status = live_ok(&server, &["user", "status", "alice@example.org"]);
    assert!(status.contains("sip:      no binding\n"), "{status}");

    // The store's side: a lock shows, an unknown account is an error before any request.
    assert!(
        server
            .ctl(&["user", "lock", "alice@example.org"], "")
            .status
            .success()
    );
    let status = live_ok(&server, &["user", "status", "alice@example.org"]);
    assert!(status.contains("locked:   yes"), "{status}");
    let u = url(&server);
    let unknown = server.ctl(&["user", "status", "carol@example.org", "--url", &u], "");
    let err = one_line_error(&unknown, "unknown account");
    assert!(err.contains("carol@example.org"), "{err}");
    let bad = server.ctl(&["bindings", "list", "not an address", "--url", &u], "");
    one_line_error(&bad, "invalid AOR");
}

/// A live slixmpp session is listed (all, and by its bare JID), kicked, and gone.
#[test]
fn sessions_list_and_kick_end_a_live_xmpp_session() {
    let server = Cusaxd::start(DOMAIN);
    server.import_users(DOMAIN, &[("alice", "pw-alice")]);
    let mut child = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/slixmpp/peer.py"))
        .arg("kicked")
        .arg("--addr")
        .arg(server.addr("xmpp").expect("xmpp listener").to_string())
        .arg("--ca")
        .arg(server.data_dir.join(format!("tls/{DOMAIN}.crt")))
        .args(["--user", "alice@example.org", "pw-alice"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let out = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(out).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.trim() == "READY");
    assert!(ready, "alice did not log in: {}", server.log());

    let all = live_ok(&server, &["sessions", "list"]);
    let listed = rows(&all);
    assert_eq!(listed.len(), 1, "{all}");
    assert!(listed[0].starts_with("alice@example.org/"), "{all}");
    let full = listed[0].split_whitespace().next().expect("JID column");
    assert_eq!(
        live_ok(&server, &["sessions", "list", "Alice@Example.org"]),
        all
    );
    assert_eq!(live_ok(&server, &["sessions", "list", full]), all);
    let other = live_ok(&server, &["sessions", "list", "bob@example.org"]);
    assert!(rows(&other).is_empty(), "{other}");
    let json = live_ok(
        &server,
        &["sessions", "list", "alice@example.org", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v[0]["jid"], full, "{json}");
    let status = live_ok(&server, &["user", "status", "alice@example.org"]);
    assert!(status.contains("xmpp:     1 session\n"), "{status}");
    assert!(status.contains(&format!("\n  {full}")), "{status}");

    // Another resource ends nothing; the bare JID ends alice's session.
    let none = live_ok(
        &server,
        &["sessions", "kick", "alice@example.org/elsewhere"],
    );
    assert_eq!(none, "ended 0 sessions of alice@example.org/elsewhere\n");
    let ended = live_ok(&server, &["sessions", "kick", "alice@example.org"]);
    assert_eq!(ended, "ended 1 session of alice@example.org\n");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        child.wait().expect("wait").success(),
        "client not closed: {rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.contains("policy-violation")),
        "{rest:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = live_ok(&server, &["sessions", "list"]);
        if rows(&now).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "session still listed: {now}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Replaces `port = …` of the `[http]` section of the data directory's `cusaxd.toml`.
fn set_http_port(dir: &Path, port: u16) {
    let path = dir.join("cusaxd.toml");
    let text = std::fs::read_to_string(&path).expect("cusaxd.toml");
    let at = text.find("[http]").expect("[http] section");
    let (head, tail) = text.split_at(at);
    let start = tail.find("\nport = ").expect("http.port") + 1;
    let end = start + tail[start..].find('\n').expect("line end");
    let new = format!("{head}{}port = {port}{}", &tail[..start], &tail[end..]);
    std::fs::write(&path, new).expect("write cusaxd.toml");
}

/// The address comes from cusaxd.toml when --url is absent; a wrong token is a 401, a missing
/// one and a foreign certificate are refused before any data moves, and a stopped server
/// "does not answer" — each one line on stderr with a non-zero exit.
#[test]
fn address_from_config_and_one_line_errors() {
    let mut server = Cusaxd::start(DOMAIN);
    let port = server.addr("http").expect("https listening").port();
    let dir = server.data_dir.clone();

    // No --url: server.bind 0.0.0.0 in the file means loopback, http.port the port.
    set_http_port(&dir, port);
    let o = server.ctl(&["sessions", "list"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "JID  AVAILABLE\n");

    let token_path = dir.join("admin.token");
    let token = std::fs::read_to_string(&token_path).expect("token");
    std::fs::write(&token_path, format!("{}\n", "0".repeat(64))).expect("wrong token");
    let err = one_line_error(&server.ctl(&["bindings", "list"], ""), "wrong token");
    assert!(err.contains("401") && err.contains("admin.token"), "{err}");
    std::fs::remove_file(&token_path).expect("remove token");
    let err = one_line_error(&server.ctl(&["sessions", "list"], ""), "no token");
    assert!(err.contains("no admin token"), "{err}");
    std::fs::write(&token_path, &token).expect("restore token");
    assert!(server.ctl(&["sessions", "list"], "").status.success());

    // Another server's data directory (its token and certificate) against this server: the
    // TLS handshake fails, the token is never sent.
    let other = Cusaxd::start(DOMAIN);
    let u = format!("https://127.0.0.1:{port}");
    let o = cusaxctl(&other.data_dir, &["sessions", "list", "--url", &u], "");
    let err = one_line_error(&o, "foreign certificate");
    assert!(err.contains("TLS"), "{err}");

    let (st, _) = server.stop();
    assert!(st.success(), "cusaxd stopped cleanly");
    let want = format!("cusaxctl: cusaxd does not answer on {u}; is it running?\n");
    for args in [
        &["sessions", "list"][..],
        &["bindings", "list", "--url", &u],
        &["sessions", "kick", "alice@example.org"],
        &["bindings", "remove", "sip:alice@example.org"],
    ] {
        let o = cusaxctl(&dir, args, "");
        one_line_error(&o, "stopped server");
        assert_eq!(stderr(&o), want, "{args:?}");
    }
}
