//! RFC 7081 §2 (online provisioning), RFC 3263 §4 and RFC 6120 §3.2.1 (DNS): account setup
//! against a real `cusaxd` over HTTPS, and DNS discovery against an in-process authoritative
//! server (hickory-server) serving the zone `cusaxctl dns` prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cusax_client::setup::{
    DnsConfig, ServiceAccount, SetupError, SetupSource, SipTarget, SipTransport, SipVia,
    XmppTarget, XmppTls, discover, discover_account, provision,
};
use cusax_client::tls::TrustConfig;
use cusax_testkit::dns::{serve as dns_server, zone};
use cusax_testkit::{Cusaxd, cusaxctl};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A cusaxd serving `localhost`, TLS listeners on free ports too, with alice's account.
fn cusaxd() -> (Cusaxd, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    std::fs::write(
        dir.join("cusaxd.toml"),
        "[sip]\ntls_port = 0\n[xmpp]\ntls_port = 0\n",
    )
    .expect("config");
    let srv = Cusaxd::start_in(&dir, &["--domain", "localhost"]);
    srv.import_users("localhost", &[("alice", "s3cret")]);
    (srv, tmp)
}

fn port(srv: &Cusaxd, which: &str) -> u16 {
    srv.addr(which)
        .unwrap_or_else(|| panic!("{which} listening"))
        .port()
}

fn trust_only(ca: PathBuf) -> TrustConfig {
    TrustConfig {
        ca_file: Some(ca),
        no_system_roots: true,
    }
}

#[test]
fn provisioning_from_cusaxd_over_https() {
    let (srv, tmp) = cusaxd();
    let url = format!("https://localhost:{}/provisioning", port(&srv, "http"));
    let trust = trust_only(srv.data_dir.join("tls/localhost.crt"));
    let rt = runtime();

    let a = rt
        .block_on(provision(&url, "alice@localhost", "s3cret", &trust))
        .expect("provisioned");
    assert_eq!(a.account, "alice@localhost");
    assert_eq!(a.password.as_deref(), Some("s3cret"));
    assert_eq!(a.source, SetupSource::Provisioning { url: url.clone() });
    let sip = a.sip.as_ref().expect("SIP account");
    assert_eq!(sip.aor, "sip:alice@localhost");
    assert_eq!(
        (sip.username.as_str(), sip.realm.as_str()),
        ("alice", "localhost")
    );
    assert_eq!(sip.server_host, "localhost");
    assert_eq!(sip.transport, SipTransport::Udp, "cusaxd lists udp first");
    assert_eq!(sip.port, port(&srv, "sip_udp"));
    assert_eq!(sip.port, port(&srv, "sip_tcp"));
    assert_eq!(sip.tls_port, Some(port(&srv, "sip_tls")));
    let xmpp = a.xmpp.as_ref().expect("XMPP account");
    assert_eq!(xmpp.jid, "alice@localhost");
    assert_eq!(xmpp.host, "localhost");
    assert_eq!(
        (xmpp.port, xmpp.tls),
        (port(&srv, "xmpp"), XmppTls::Starttls)
    );
    assert_eq!(xmpp.direct_tls_port, Some(port(&srv, "xmpp_tls")));
    assert_eq!(a.cusax.sip, "sip:alice@localhost");
    assert_eq!(a.cusax.xmpp, "alice@localhost");
    // With TLS picked, the provisioned TLS port is used.
    let tls = a.clone().with_sip_transport(SipTransport::Tls);
    assert_eq!(
        tls.sip.as_ref().map(|s| (s.transport, s.port)),
        Some((SipTransport::Tls, port(&srv, "sip_tls")))
    );
    // What the CLI stores reads back the same.
    let text = serde_json::to_string_pretty(&a).expect("serialize");
    let back: ServiceAccount = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, a);

    // A URL without a path gets /provisioning.
    let bare = format!("https://localhost:{}", port(&srv, "http"));
    let again = rt
        .block_on(provision(&bare, "alice@localhost", "s3cret", &trust))
        .expect("provisioned without a path");
    assert_eq!(again.sip, a.sip);

    let wrong = rt.block_on(provision(&url, "alice@localhost", "wrong", &trust));
    assert!(matches!(wrong, Err(SetupError::Unauthorized)), "{wrong:?}");
    let unknown = rt.block_on(provision(&url, "mallory@localhost", "s3cret", &trust));
    assert!(
        matches!(unknown, Err(SetupError::Unauthorized)),
        "{unknown:?}"
    );

    // Another self-signed certificate for the same name: the server's is not trusted.
    let other =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let other_pem = tmp.path().join("other.crt");
    std::fs::write(&other_pem, other.cert.pem()).expect("write cert");
    let untrusted = rt.block_on(provision(
        &url,
        "alice@localhost",
        "s3cret",
        &trust_only(other_pem),
    ));
    match untrusted {
        Err(SetupError::Tls { host, reason }) => {
            assert_eq!(host, "localhost");
            assert!(reason.to_lowercase().contains("certificate"), "{reason}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    // The trusted certificate, another name: cusaxd's names `localhost` only, not 127.0.0.1.
    let by_ip = format!("https://127.0.0.1:{}/provisioning", port(&srv, "http"));
    let r = rt.block_on(provision(&by_ip, "alice@localhost", "s3cret", &trust));
    assert!(
        matches!(r, Err(SetupError::Tls { ref reason, .. }) if reason.contains("not valid for name")),
        "{r:?}"
    );
    // Plain HTTP to the HTTPS port (loopback is allowed, but it speaks TLS): an HTTP error,
    // never a document.
    let plain = format!("http://127.0.0.1:{}/provisioning", port(&srv, "http"));
    let r = rt.block_on(provision(&plain, "alice@localhost", "s3cret", &trust));
    assert!(matches!(r, Err(SetupError::Http(_))), "{r:?}");
}

/// The zone lines `cusaxctl dns DOMAIN --host HOST` prints (default ports: SIP 5060, SIPS
/// 5061, XMPP 5222, XMPPS 5223, HTTPS 5280).
fn cusaxctl_zone(dir: &Path, domain: &str, host: &str) -> String {
    let out = cusaxctl(dir, &["domain", "add", domain], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cusaxctl(dir, &["dns", domain, "--host", host, "--ttl", "60"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn sip(host: &str, port: u16, transport: SipTransport) -> SipTarget {
    SipTarget {
        host: host.into(),
        port,
        transport,
    }
}

fn xmpp(host: &str, port: u16, tls: XmppTls) -> XmppTarget {
    XmppTarget {
        host: host.into(),
        port,
        tls,
    }
}

#[test]
fn dns_discovery_naptr_srv_and_fallback() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).expect("data dir");

    // 1. As cusaxctl recommends: NAPTR (TLS, TCP, UDP), SRV for each, XMPP SRV both ways.
    let full = cusaxctl_zone(&dir, "naptr.example", "cusax.naptr.example");
    assert!(full.contains("NAPTR"), "{full}");
    let full = format!("{full}cusax.naptr.example. 60 IN A 127.0.0.1\n");
    // 2. The same without NAPTR: SRV only.
    let srv_only: String = cusaxctl_zone(&dir, "srv.example", "cusax.srv.example")
        .lines()
        .filter(|l| !l.contains(" NAPTR "))
        .map(|l| format!("{l}\n"))
        .collect();
    // 3. NAPTR without the TLS service (SRV for it still published): NAPTR decides.
    let no_tls: String = cusaxctl_zone(&dir, "notls.example", "cusax.notls.example")
        .lines()
        .filter(|l| !l.contains("SIPS+D2T"))
        .map(|l| format!("{l}\n"))
        .collect();
    // 4. Nothing but the domain's address: the RFC defaults.
    let bare = "bare.example. 60 IN A 127.0.0.1\n";
    // 5. XMPP decidedly not offered ("." target), SIP falls back to the address.
    let dot = "dot.example. 60 IN A 127.0.0.1\n\
               _xmpp-client._tcp.dot.example. 60 IN SRV 0 0 0 .\n";
    // 6. Weighted SRV: three XMPP servers, priorities 10, 20, 20.
    let weighted = "_xmpp-client._tcp.multi.example. 60 IN SRV 20 50 5223 b.multi.example.\n\
                    _xmpp-client._tcp.multi.example. 60 IN SRV 10 0 5222 a.multi.example.\n\
                    _xmpp-client._tcp.multi.example. 60 IN SRV 20 50 5224 c.multi.example.\n";

    let rt = runtime();
    rt.block_on(async {
        let (addr, _server) = dns_server(vec![
            zone("naptr.example", &full),
            zone("srv.example", &srv_only),
            zone("notls.example", &no_tls),
            zone("bare.example", bare),
            zone("dot.example", dot),
            zone("multi.example", weighted),
        ])
        .await;
        let dns = DnsConfig {
            name_server: Some(addr),
            timeout: Some(Duration::from_secs(5)),
        };

        let h = "cusax.naptr.example";
        let d = discover("naptr.example", &dns).await.expect("naptr");
        assert_eq!(d.sip_via, Some(SipVia::Naptr));
        assert_eq!(
            d.sip,
            [
                sip(h, 5061, SipTransport::Tls),
                sip(h, 5060, SipTransport::Tcp),
                sip(h, 5060, SipTransport::Udp),
            ]
        );
        // XEP-0368: direct TLS has the better priority in cusaxctl's records.
        assert_eq!(
            d.xmpp,
            [
                xmpp(h, 5223, XmppTls::Direct),
                xmpp(h, 5222, XmppTls::Starttls)
            ]
        );
        let a = discover_account("alice@naptr.example", &dns)
            .await
            .expect("account");
        let s = a.sip.as_ref().expect("sip");
        assert_eq!(
            (s.server_host.as_str(), s.port, s.transport),
            (h, 5061, SipTransport::Tls)
        );
        assert_eq!(s.aor, "sip:alice@naptr.example");
        let x = a.xmpp.as_ref().expect("xmpp");
        assert_eq!((x.host.as_str(), x.port, x.tls), (h, 5223, XmppTls::Direct));
        assert_eq!(x.jid, "alice@naptr.example");
        assert_eq!(a.source, SetupSource::Dns);

        let h = "cusax.srv.example";
        let d = discover("srv.example", &dns).await.expect("srv");
        assert_eq!(d.sip_via, Some(SipVia::Srv));
        assert_eq!(
            d.sip,
            [
                sip(h, 5061, SipTransport::Tls),
                sip(h, 5060, SipTransport::Tcp),
                sip(h, 5060, SipTransport::Udp),
            ]
        );
        assert_eq!(d.xmpp.len(), 2);

        let h = "cusax.notls.example";
        let d = discover("notls.example", &dns).await.expect("notls");
        assert_eq!(d.sip_via, Some(SipVia::Naptr));
        assert_eq!(
            d.sip,
            [
                sip(h, 5060, SipTransport::Tcp),
                sip(h, 5060, SipTransport::Udp)
            ]
        );

        let d = discover("bare.example", &dns).await.expect("bare");
        assert_eq!(d.sip_via, Some(SipVia::Fallback));
        assert_eq!(d.sip, [sip("bare.example", 5060, SipTransport::Udp)]);
        assert_eq!(d.xmpp, [xmpp("bare.example", 5222, XmppTls::Starttls)]);
        let manual = ServiceAccount::manual("alice@bare.example", None).expect("manual");
        let found = d.account("alice@bare.example").expect("account");
        assert_eq!(
            (found.sip, found.xmpp),
            (manual.sip, manual.xmpp),
            "DNS defaults = manual defaults"
        );

        let d = discover("dot.example", &dns).await.expect("dot");
        assert!(d.xmpp.is_empty(), "\".\" means no XMPP, no fallback: {d:?}");
        assert_eq!(d.sip, [sip("dot.example", 5060, SipTransport::Udp)]);

        let d = discover("multi.example", &dns).await.expect("multi");
        assert_eq!(d.xmpp[0], xmpp("a.multi.example", 5222, XmppTls::Starttls));
        let mut rest: Vec<u16> = d.xmpp[1..].iter().map(|t| t.port).collect();
        rest.sort_unstable();
        assert_eq!(rest, [5223, 5224]);
        assert!(d.sip.is_empty(), "no SIP record and no address: {d:?}");

        let r = discover("nothing.bare.example", &dns).await;
        assert!(
            matches!(r, Err(SetupError::NoService(ref n)) if n == "nothing.bare.example"),
            "{r:?}"
        );
        let r = discover("not a domain", &dns).await;
        assert!(matches!(r, Err(SetupError::Host(_))), "{r:?}");
    });
}
