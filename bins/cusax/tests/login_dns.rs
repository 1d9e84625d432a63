//! `cusax login --dns` end to end (RFC 3263 §4 for SIP, RFC 6120 §3.2.1 for XMPP, RFC 7081
//! §2): the zone `cusaxctl dns` prints for a running `cusaxd` is served by an independent
//! in-process name server (hickory-server), the real `cusax` binary asks it (`--dns-server`),
//! checks both logins against cusaxd and writes the servers it discovered to its config.

mod common;

use cusax_testkit::dns::{DnsThread, zone};
use cusax_testkit::{Cusaxd, cusaxctl};
use std::path::Path;

const DOMAIN: &str = "example.test";

fn port(srv: &Cusaxd, which: &str) -> u16 {
    srv.addr(which)
        .unwrap_or_else(|| panic!("{which} listening"))
        .port()
}

/// A cusaxd with every listener (TLS ones too) on a free port, and alice's account.
fn cusaxd(dir: &Path) -> Cusaxd {
    std::fs::create_dir_all(dir).expect("data dir");
    std::fs::write(
        dir.join("cusaxd.toml"),
        "[sip]\ntls_port = 0\n[xmpp]\ntls_port = 0\n",
    )
    .expect("config");
    let srv = Cusaxd::start_in(dir, &["--domain", DOMAIN]);
    srv.import_users(DOMAIN, &[("alice", "alice-pw-1")]);
    srv
}

/// The records `cusaxctl dns` prints for the running server. Its ports come from the data
/// directory's configuration, where the test's "any free port" (0) cannot be published: the
/// file is rewritten with the ports the server bound, as an operator's fixed ports would be.
fn published_zone(srv: &Cusaxd) -> String {
    let config = format!(
        "[sip]\nport = {}\ntls_port = {}\n[xmpp]\nport = {}\ntls_port = {}\n[http]\nport = {}\n",
        port(srv, "sip_udp"),
        port(srv, "sip_tls"),
        port(srv, "xmpp"),
        port(srv, "xmpp_tls"),
        port(srv, "http"),
    );
    std::fs::write(srv.data_dir.join("cusaxd.toml"), config).expect("config");
    let out = cusaxctl(
        &srv.data_dir,
        &["dns", DOMAIN, "--host", "localhost", "--ttl", "60"],
        "",
    );
    assert!(
        out.status.success(),
        "cusaxctl dns: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn login_dns_discovers_sip_and_xmpp_checks_both_and_saves_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = cusaxd(&tmp.path().join("data"));
    let records = published_zone(&srv);
    assert!(
        records.contains("NAPTR") && records.contains("_xmpp-client._tcp"),
        "{records}"
    );
    let dns = DnsThread::start(vec![zone(DOMAIN, &records)]);

    let cfg = tmp.path().join("alice.toml");
    let ca = srv.data_dir.join(format!("tls/{DOMAIN}.crt"));
    let out = common::run_once(
        tmp.path(),
        &[
            "--config",
            cfg.to_str().expect("utf-8"),
            "login",
            "--dns",
            "--dns-server",
            &dns.addr.to_string(),
            "--user",
            "alice@example.test",
            "--password-stdin",
            "--ca-file",
            ca.to_str().expect("utf-8"),
        ],
        "alice-pw-1\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cusax login --dns: {stdout}\n{}\n--- zone ---\n{records}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        srv.log()
    );
    let ev: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(ev["event"], "login", "{ev}");
    assert_eq!(
        (ev["sip"].as_str(), ev["xmpp"].as_str()),
        (Some("ok"), Some("ok")),
        "{ev}"
    );

    // NAPTR puts TLS first (RFC 3263 §4.1); the client speaks XMPP with STARTTLS only, so of
    // the two XMPP SRV records it takes _xmpp-client (XEP-0368's direct TLS is skipped).
    let sip = format!("localhost:{}", port(&srv, "sip_tls"));
    let xmpp = format!("localhost:{}", port(&srv, "xmpp"));
    assert_eq!(ev["sip_server"].as_str(), Some(sip.as_str()), "{ev}");
    assert_eq!(ev["sip_transport"], "tls", "{ev}");
    assert_eq!(ev["xmpp_server"].as_str(), Some(xmpp.as_str()), "{ev}");
    let text = std::fs::read_to_string(&cfg).expect("config written");
    let saved: toml::Table = toml::from_str(&text).expect("TOML config");
    let field = |key: &str| saved["account"].get(key).and_then(toml::Value::as_str);
    assert_eq!(
        (field("server"), field("transport"), field("xmpp_server")),
        (Some(sip.as_str()), Some("tls"), Some(xmpp.as_str())),
        "{text}"
    );
    assert_eq!(field("user"), Some("alice@example.test"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cfg)
        .expect("config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the config file holds the password");

    // Both logins reached cusaxd: an authentication of alice per protocol (the c2s SASL
    // success and the REGISTER the registrar accepted, each logged as "authenticated").
    let log = srv.log();
    for protocol in ["sip", "xmpp"] {
        assert!(
            log.lines().any(|l| l.contains(&format!(
                "authenticated protocol=\"{protocol}\" account=alice@example.test"
            ))),
            "no {protocol} login of alice in the server log:\n{log}"
        );
    }
}
