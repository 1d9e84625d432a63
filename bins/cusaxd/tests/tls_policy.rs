//! RFC 7081 §7 (requirements SS-06/XS-06): one TLS policy for both protocols — every TLS
//! listener (SIP over TLS, XMPP direct TLS, HTTPS) presents the same certificate and accepts
//! the same lowest version; `tls.required` makes SIP refuse plain-transport authentication.

use cusax_testkit::Cusaxd;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const DOMAIN: &str = "tls.test";

fn connector(server: &Cusaxd, version: &'static rustls::SupportedProtocolVersion) -> TlsConnector {
    let pem = server.data_dir.join(format!("tls/{DOMAIN}.crt"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pem).expect("certificate file") {
        roots.add(cert.expect("PEM")).expect("trust anchor");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .expect("protocol version")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(cfg))
}

/// The DER of the certificate the listener at `addr` presents, or why the handshake failed.
async fn handshake(c: &TlsConnector, addr: SocketAddr) -> Result<Vec<u8>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(DOMAIN).expect("server name");
    let tls = tokio::time::timeout(Duration::from_secs(10), c.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or("no certificate")?;
    Ok(cert)
}

fn start(config: &str) -> (Cusaxd, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    std::fs::write(dir.join("cusaxd.toml"), config).expect("config");
    (Cusaxd::start_in(&dir, &["--domain", DOMAIN]), tmp)
}

#[tokio::test]
async fn every_tls_listener_shares_certificate_and_minimum_version() {
    let (srv, _tmp) = start("[tls]\nmin_version = \"1.3\"\n");
    let listeners = ["sip_tls", "xmpp_tls", "http"].map(|w| (w, srv.addr(w).expect(w)));
    let v13 = connector(&srv, &rustls::version::TLS13);
    let v12 = connector(&srv, &rustls::version::TLS12);
    let mut certs = Vec::new();
    for (what, addr) in listeners {
        certs.push(
            handshake(&v13, addr)
                .await
                .unwrap_or_else(|e| panic!("{what}: TLS 1.3 refused: {e}")),
        );
        assert!(
            handshake(&v12, addr).await.is_err(),
            "{what} accepted TLS 1.2 although tls.min_version is 1.3"
        );
    }
    assert!(
        certs.windows(2).all(|w| w[0] == w[1]),
        "one certificate for all"
    );

    let (srv, _tmp2) = start("");
    for (what, addr) in ["sip_tls", "xmpp_tls", "http"].map(|w| (w, srv.addr(w).expect(w))) {
        assert!(
            handshake(&connector(&srv, &rustls::version::TLS12), addr)
                .await
                .is_ok(),
            "{what}: TLS 1.2 is accepted by default"
        );
    }
}

#[test]
fn contradicting_tls_settings_are_refused_by_check_config() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (config, needle) in [
        ("[tls]\nmin_version = \"1.1\"\n", "min_version"),
        (
            "[tls]\nrequired = true\n[xmpp]\ndangerous_allow_plain = true\n",
            "contradict",
        ),
    ] {
        let path = tmp.path().join("c.toml");
        std::fs::write(&path, config).expect("config");
        let out = std::process::Command::new(cusax_testkit::bin("cusaxd"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("cusaxd runs");
        assert!(!out.status.success(), "{config}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{config}: {err}");
    }
}
