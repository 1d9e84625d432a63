//! README "Logs": every authentication, on SIP, XMPP and HTTPS provisioning, is a log line
//! with `protocol`, `account` (`user@domain`) and `peer`, so that `grep account=alice@DOMAIN`
//! follows one user across the three services. Driven by independent peers (sipp, slixmpp,
//! curl) against a real `cusaxd`; the log is read only after each exchange demonstrably passed.

use cusax_testkit::sipp::Sipp;
use cusax_testkit::{Cusaxd, free_sip_port, https, slixmpp_python, workspace};
use std::process::Command;
use std::time::Duration;

const DOMAIN: &str = "example.test";

/// The lines of the server log that carry `account=ACCOUNT` as a whole field.
fn lines_of(log: &str, account: &str) -> Vec<String> {
    let field = format!("account={account}");
    log.lines()
        .filter(|l| l.split_whitespace().any(|w| w == field))
        .map(str::to_owned)
        .collect()
}

/// Waits (bounded) until the log holds a line with all of `parts`; returns that line.
fn await_line(srv: &Cusaxd, parts: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = srv.log();
        if let Some(l) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return l.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with {parts:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_accounts_sip_xmpp_and_https_logins_share_the_account_field() {
    let srv = Cusaxd::start(DOMAIN);
    srv.import_users(DOMAIN, &[("alice", "pw-alice"), ("bob", "pw-bob")]);
    let alice = format!("alice@{DOMAIN}");

    // SIP: alice and bob register (sipp passes only on the 200 listing their binding).
    let dir = tempfile::tempdir().expect("tempdir");
    let sipp = Sipp::new(dir.path(), srv.addr("sip_udp").expect("sip udp"));
    for (user, pw) in [("alice", "pw-alice"), ("bob", "pw-bob")] {
        let tag = format!("register-{user}");
        assert!(
            sipp.register(
                "register_digest.xml",
                &tag,
                (user, pw, DOMAIN),
                free_sip_port(),
                &[]
            ),
            "{user} registers\n{}\n{}",
            sipp.report(&tag),
            srv.log()
        );
    }

    // XMPP: alice logs in with SCRAM (slixmpp's `login` scenario also tries a wrong password).
    let out = Command::new(slixmpp_python())
        .arg(workspace().join("tests/slixmpp/peer.py"))
        .arg("login")
        .arg("--addr")
        .arg(srv.addr("xmpp").expect("xmpp").to_string())
        .arg("--ca")
        .arg(srv.data_dir.join(format!("tls/{DOMAIN}.crt")))
        .args(["--user", &alice, "pw-alice", "--user", &alice, "wrong"])
        .output()
        .expect("python runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("login ok SCRAM-SHA-256"),
        "slixmpp login: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // HTTPS: alice fetches her provisioning document with curl.
    let (code, body) = https(
        &srv,
        DOMAIN,
        "GET",
        "/provisioning",
        &["-u", &format!("{alice}:pw-alice")],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&format!("sip:{alice}")), "{body}");

    let field = format!("account={alice}");
    let sip = await_line(
        &srv,
        &["protocol=\"sip\"", &field, "REGISTER", "authenticated"],
    );
    let xmpp = await_line(&srv, &["protocol=\"xmpp\"", &field, " authenticated"]);
    let web = await_line(&srv, &["protocol=\"https\"", &field, "succeeded"]);
    // `grep account=alice@…` finds all three and nothing of bob's.
    let grep = lines_of(&srv.log(), &alice);
    for line in [&sip, &xmpp, &web] {
        assert!(grep.contains(line), "{line} not found by the field");
    }
    assert!(
        grep.iter().all(|l| !l.contains("bob")),
        "bob in alice's lines: {grep:#?}"
    );
    let bob = lines_of(&srv.log(), &format!("bob@{DOMAIN}"));
    assert!(
        bob.iter().any(|l| l.contains("REGISTER")) && bob.iter().all(|l| !l.contains("alice")),
        "bob's REGISTER under his own account field: {bob:#?}"
    );
}
