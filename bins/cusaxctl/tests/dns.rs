//! `cusaxctl dns`: the RFC 3263 / RFC 6120 §3.2.1 / XEP-0368 zone lines for a served domain,
//! with ports from the data directory's `cusaxd.toml`, checked as master-file syntax (and by
//! BIND's `named-checkzone`).

use cusax_testkit::cusaxctl;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(o.stdout.is_empty(), "no records on failure");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

/// A data directory serving `example.org`, with `config` as its `cusaxd.toml`.
fn data_dir(config: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("cusaxd.toml"), config).expect("write config");
    ok(&cusaxctl(&dir, &["domain", "add", "example.org"], ""));
    (tmp, dir)
}

fn dns(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["dns"];
    all.extend_from_slice(args);
    cusaxctl(dir, &all, "")
}

/// One resource record line: owner, TTL, type and data (class checked to be IN).
#[derive(Debug, PartialEq, Eq)]
struct Rr {
    owner: String,
    ttl: u32,
    rtype: String,
    rdata: Vec<String>,
}

/// Reads the printed zone text; comments and blank lines are skipped, anything else must be a
/// full record line (RFC 1035 §5.1: owner, TTL, class, type, RDATA, here always all present).
fn records(zone: &str) -> Vec<Rr> {
    let mut out = Vec::new();
    for line in zone.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with(';') {
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        assert!(f.len() >= 5, "owner TTL IN TYPE RDATA: {line}");
        assert!(f[0].ends_with('.'), "absolute owner name: {line}");
        assert_eq!(f[2], "IN", "{line}");
        let rr = Rr {
            owner: f[0].to_owned(),
            ttl: f[1].parse().unwrap_or_else(|_| panic!("TTL: {line}")),
            rtype: f[3].to_owned(),
            rdata: f[4..].iter().map(|s| (*s).to_owned()).collect(),
        };
        let port_like = |s: &str| s.parse::<u16>().is_ok();
        match rr.rtype.as_str() {
            // RFC 2782: priority weight port target
            "SRV" => {
                assert_eq!(rr.rdata.len(), 4, "{line}");
                assert!(rr.rdata[..3].iter().all(|n| port_like(n)), "{line}");
                assert!(rr.rdata[3].ends_with('.'), "{line}");
            }
            // RFC 3403 §4.1: order preference flags services regexp replacement
            "NAPTR" => {
                assert_eq!(rr.rdata.len(), 6, "{line}");
                assert!(rr.rdata[..2].iter().all(|n| port_like(n)), "{line}");
                assert!(
                    rr.rdata[2..5]
                        .iter()
                        .all(|s| s.len() >= 2 && s.starts_with('"') && s.ends_with('"')),
                    "{line}"
                );
                assert!(rr.rdata[5].ends_with('.'), "{line}");
            }
            "TXT" => assert!(
                rr.rdata
                    .iter()
                    .all(|s| s.starts_with('"') && s.ends_with('"')),
                "{line}"
            ),
            other => panic!("unexpected type {other}: {line}"),
        }
        out.push(rr);
    }
    out
}

fn rr(owner: &str, ttl: u32, rtype: &str, rdata: &str) -> Rr {
    Rr {
        owner: owner.to_owned(),
        ttl,
        rtype: rtype.to_owned(),
        rdata: rdata.split(' ').map(str::to_owned).collect(),
    }
}

const DEFAULT_ZONE: &str = r#"; cusax: records for example.org served by cusax.example.org (cusaxctl dns); cusax.example.org needs A/AAAA records.
; SIP (RFC 3263): NAPTR picks the transport (TLS, then TCP, then UDP), SRV host and port.
example.org.                    3600 IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.example.org.
example.org.                    3600 IN NAPTR 20 10 "s" "SIP+D2T" "" _sip._tcp.example.org.
example.org.                    3600 IN NAPTR 30 10 "s" "SIP+D2U" "" _sip._udp.example.org.
_sips._tcp.example.org.         3600 IN SRV 10 0 5061 cusax.example.org.
_sip._tcp.example.org.          3600 IN SRV 10 0 5060 cusax.example.org.
_sip._udp.example.org.          3600 IN SRV 10 0 5060 cusax.example.org.
; XMPP clients (RFC 6120 §3.2.1, XEP-0368): direct TLS first, STARTTLS next.
_xmpps-client._tcp.example.org. 3600 IN SRV 5 0 5223 cusax.example.org.
_xmpp-client._tcp.example.org.  3600 IN SRV 10 0 5222 cusax.example.org.
; XMPP federation is not served yet: the "." target tells other servers not to try.
_xmpp-server._tcp.example.org.  3600 IN SRV 0 0 0 .
; Provisioning (RFC 7081 §2): https://cusax.example.org:5280/provisioning
_cusax-prov._tcp.example.org.   3600 IN SRV 10 0 5280 cusax.example.org.
_cusax-prov._tcp.example.org.   3600 IN TXT "path=/provisioning"
"#;

/// The configuration `cusaxd` writes into a fresh data directory gives the registered ports.
#[test]
fn dns_default_config_prints_every_record() {
    let (_tmp, dir) = data_dir(&cusax_server::config::commented_default("example.org"));
    let out = ok(&dns(&dir, &["example.org", "--host", "cusax.example.org"]));
    assert_eq!(out, DEFAULT_ZONE);

    // Without --host the records point at the domain itself; a trailing dot and upper case
    // in the arguments name the same domain.
    let out = ok(&dns(&dir, &["Example.ORG."]));
    let rrs = records(&out);
    assert_eq!(rrs.len(), 11);
    for r in rrs.iter().filter(|r| r.rtype == "SRV" && r.rdata[3] != ".") {
        assert_eq!(r.rdata[3], "example.org.", "{r:?}");
    }
    assert!(
        out.contains("https://example.org:5280/provisioning"),
        "{out}"
    );
}

#[test]
fn dns_ports_and_ttl_follow_the_configuration() {
    let (_tmp, dir) = data_dir(
        "[sip]\nport = 5070\ntls_port = 5071\n\
         [xmpp]\nport = 15222\ntls_port = 15223\n\
         [http]\nport = 8443\n",
    );
    let out = ok(&dns(
        &dir,
        &["example.org", "--host", "voip.example.net", "--ttl", "300"],
    ));
    let t = "voip.example.net.";
    let expected = vec![
        rr(
            "example.org.",
            300,
            "NAPTR",
            r#"10 10 "s" "SIPS+D2T" "" _sips._tcp.example.org."#,
        ),
        rr(
            "example.org.",
            300,
            "NAPTR",
            r#"20 10 "s" "SIP+D2T" "" _sip._tcp.example.org."#,
        ),
        rr(
            "example.org.",
            300,
            "NAPTR",
            r#"30 10 "s" "SIP+D2U" "" _sip._udp.example.org."#,
        ),
        rr(
            "_sips._tcp.example.org.",
            300,
            "SRV",
            &format!("10 0 5071 {t}"),
        ),
        rr(
            "_sip._tcp.example.org.",
            300,
            "SRV",
            &format!("10 0 5070 {t}"),
        ),
        rr(
            "_sip._udp.example.org.",
            300,
            "SRV",
            &format!("10 0 5070 {t}"),
        ),
        rr(
            "_xmpps-client._tcp.example.org.",
            300,
            "SRV",
            &format!("5 0 15223 {t}"),
        ),
        rr(
            "_xmpp-client._tcp.example.org.",
            300,
            "SRV",
            &format!("10 0 15222 {t}"),
        ),
        rr("_xmpp-server._tcp.example.org.", 300, "SRV", "0 0 0 ."),
        rr(
            "_cusax-prov._tcp.example.org.",
            300,
            "SRV",
            &format!("10 0 8443 {t}"),
        ),
        rr(
            "_cusax-prov._tcp.example.org.",
            300,
            "TXT",
            r#""path=/provisioning""#,
        ),
    ];
    assert_eq!(records(&out), expected);
    assert!(
        out.contains("https://voip.example.net:8443/provisioning"),
        "{out}"
    );
}

/// BIND reads the printed lines as a zone (with the SOA, NS and address records an operator's
/// zone has anyway) and finds every record, SRV targets with addresses included.
#[test]
fn dns_output_loads_in_named_checkzone() {
    let found = Command::new("named-checkzone").arg("-v").output().is_ok();
    assert!(
        found,
        "named-checkzone is not on PATH: install it with `apt-get install -y bind9-utils` \
         (scripts/test does)"
    );
    let (tmp, dir) = data_dir("");
    let printed = ok(&dns(&dir, &["example.org", "--host", "cusax.example.org"]));
    let zone = format!(
        "$TTL 3600\n\
         @ IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 3600\n\
         @ IN NS ns.example.org.\n\
         ns IN A 192.0.2.1\n\
         cusax IN A 192.0.2.2\n\
         {printed}"
    );
    let file = tmp.path().join("example.org.zone");
    std::fs::write(&file, zone).expect("write zone");
    let out = Command::new("named-checkzone")
        .args(["-k", "fail", "-i", "full", "-D", "-o", "-", "example.org"])
        .arg(&file)
        .output()
        .expect("named-checkzone runs");
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "named-checkzone refused the zone:\n{dump}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The canonical dump has one line per record: ours plus the 4 of the header.
    let loaded = dump.lines().filter(|l| l.contains(" IN ")).count();
    assert_eq!(loaded, records(&printed).len() + 4, "{dump}");
}

#[test]
fn dns_refuses_what_cannot_be_published() {
    let (_tmp, dir) = data_dir("");
    fails(&dns(&dir, &["example.com"]), "unknown domain example.com");
    fails(&dns(&dir, &["not a domain"]), "invalid domain");
    fails(
        &dns(&dir, &["example.org", "--host", "bad_host"]),
        "invalid host name",
    );

    // Port 0 ("any free port") is fine for tests of the server, not for DNS.
    let (_tmp, dir) = data_dir("[xmpp]\ntls_port = 0\n");
    fails(&dns(&dir, &["example.org"]), "xmpp.tls_port is 0");
}
