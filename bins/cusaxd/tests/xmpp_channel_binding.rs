//! RFC 5929 §4 and XEP-0440 end to end: SCRAM-SHA-256-PLUS with `tls-server-end-point`
//! against a real `cusaxd`, over STARTTLS (TLS 1.2 and 1.3) and XEP-0368 direct TLS.
//!
//! slixmpp cannot take part: Python's `ssl` offers only `tls-unique`. The client here is
//! tokio-rustls plus the sans-IO client negotiation of `cusax-xmpp-proto`; the binding data is
//! computed by this test from the certificate the server presented, independently of the
//! server's own code: the self-signed certificate `cusaxd` generates is ECDSA P-256 signed
//! with SHA-256, for which §4.1 names SHA-256.

use cusax_testkit::Cusaxd;
use cusax_xmpp_proto::sasl::{ChannelBinding, ChannelBindingKind, Mechanism, SaslCondition};
use cusax_xmpp_proto::stream::{
    ClientConfig, ClientError, ClientEvent, ClientNegotiation, Features, TlsPolicy,
};
use cusax_xmpp_proto::xml::{StreamReader, XmlEvent, XmlLimits};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use sha2::Digest as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const DOMAIN: &str = "example.test";
/// Bound on every read from the server.
const STEP: Duration = Duration::from_secs(10);

/// Which binding data the client claims.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// SHA-256 of the certificate the server presented.
    Right,
    /// SHA-256 of something else: what a client behind a TLS-terminating MITM would compute.
    WrongData,
}

/// What one login attempt saw.
struct Outcome {
    /// The first post-TLS features: mechanisms and XEP-0440 binding types offered.
    features: Option<Features>,
    /// `Ok(mechanism)` once bound, or the client's error.
    result: Result<Mechanism, ClientError>,
}

enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(data).await,
            Conn::Tls(s) => s.write_all(data).await,
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = match self {
            Conn::Tcp(s) => tokio::time::timeout(STEP, s.read(buf)).await,
            Conn::Tls(s) => tokio::time::timeout(STEP, s.read(buf)).await,
        };
        r.map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "server silent"))?
    }
}

fn tls_connector(
    server: &Cusaxd,
    version: &'static rustls::SupportedProtocolVersion,
) -> TlsConnector {
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

/// Handshakes and returns the stream and the end-point binding the client will claim.
async fn handshake(
    connector: &TlsConnector,
    tcp: TcpStream,
    claim: Claim,
) -> (Box<TlsStream<TcpStream>>, ChannelBinding) {
    let name = ServerName::try_from(DOMAIN).expect("server name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("the server presented a certificate")
        .to_vec();
    let data = match claim {
        Claim::Right => sha2::Sha256::digest(&cert).to_vec(),
        Claim::WrongData => sha2::Sha256::digest(b"another certificate").to_vec(),
    };
    let cb = ChannelBinding {
        kind: ChannelBindingKind::TlsServerEndPoint,
        data,
    };
    (Box::new(tls), cb)
}

/// Logs in as `user`/`password`, offering only the end-point binding to the client logic.
async fn login(
    addr: SocketAddr,
    connector: &TlsConnector,
    direct_tls: bool,
    password: &str,
    claim: Claim,
) -> Outcome {
    let config = ClientConfig {
        domain: DOMAIN.into(),
        username: "alice".into(),
        password: password.into(),
        cached: None,
        resource: Some("cb".into()),
        tls: TlsPolicy::Required,
        allow_plain: false,
        limits: XmlLimits::default(),
    };
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut conn, mut neg, mut tap) = if direct_tls {
        let (tls, cb) = handshake(connector, tcp, claim).await;
        let neg = ClientNegotiation::new_direct_tls(config, vec![cb]);
        (
            Conn::Tls(tls),
            neg,
            Some(StreamReader::new(XmlLimits::default())),
        )
    } else {
        (Conn::Tcp(tcp), ClientNegotiation::new(config), None)
    };
    let mut features = None;
    let mut mechanism = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let out = neg.take_output();
        if !out.is_empty() {
            conn.write(&out).await.expect("write");
        }
        while let Some(ev) = neg.poll_event() {
            match ev {
                ClientEvent::NeedTls => {
                    let Conn::Tcp(tcp) = conn else {
                        panic!("STARTTLS twice");
                    };
                    let (tls, cb) = handshake(connector, tcp, claim).await;
                    conn = Conn::Tls(tls);
                    tap = Some(StreamReader::new(XmlLimits::default()));
                    neg.tls_established(vec![cb]);
                }
                ClientEvent::Bound(_) => {
                    return Outcome {
                        features,
                        result: Ok(mechanism.expect("bound without authentication")),
                    };
                }
                ClientEvent::Failed(e) => {
                    return Outcome {
                        features,
                        result: Err(e),
                    };
                }
                ClientEvent::Authenticated { mechanism: m, .. } => mechanism = Some(m),
                _ => {}
            }
        }
        let out = neg.take_output();
        if !out.is_empty() {
            conn.write(&out).await.expect("write");
        }
        let n = conn.read(&mut buf).await.expect("read");
        assert!(n > 0, "server closed the connection during negotiation");
        if let (Some(t), None) = (tap.as_mut(), features.as_ref()) {
            t.feed(&buf[..n]);
            while let Some(ev) = t.next_event() {
                if let Ok(XmlEvent::Stanza(el)) = ev
                    && features.is_none()
                {
                    features = Features::from_element(&el);
                }
            }
        }
        neg.feed(&buf[..n]);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn start() -> Cusaxd {
    let server = Cusaxd::start(DOMAIN);
    let out = server.ctl(
        &[
            "user",
            "add",
            &format!("alice@{DOMAIN}"),
            "--password-stdin",
        ],
        "pw-alice\n",
    );
    assert!(out.status.success(), "user add: {out:?}");
    server
}

fn offered(f: &Features) -> (bool, Vec<ChannelBindingKind>) {
    (
        f.mechanisms.contains(&Mechanism::ScramSha256Plus)
            && f.mechanisms.contains(&Mechanism::ScramSha1Plus),
        f.channel_bindings.clone(),
    )
}

#[test]
fn scram_plus_with_tls_server_end_point_over_starttls_and_direct_tls() {
    let server = start();
    let starttls = server.addr("xmpp").expect("xmpp listener");
    let direct = server.addr("xmpp_tls").expect("direct TLS listener");
    let rt = runtime();
    rt.block_on(async {
        use ChannelBindingKind::{TlsExporter, TlsServerEndPoint};
        let tls12 = tls_connector(&server, &rustls::version::TLS12);
        let tls13 = tls_connector(&server, &rustls::version::TLS13);
        let cases = [
            (
                "STARTTLS, TLS 1.2",
                starttls,
                false,
                &tls12,
                vec![TlsServerEndPoint],
            ),
            (
                "STARTTLS, TLS 1.3",
                starttls,
                false,
                &tls13,
                vec![TlsExporter, TlsServerEndPoint],
            ),
            (
                "direct TLS, TLS 1.3",
                direct,
                true,
                &tls13,
                vec![TlsExporter, TlsServerEndPoint],
            ),
        ];
        for (name, addr, direct_tls, connector, kinds) in cases {
            let ok = login(addr, connector, direct_tls, "pw-alice", Claim::Right).await;
            let f = ok.features.expect("features after TLS");
            assert_eq!(
                offered(&f),
                (true, kinds),
                "{name}: -PLUS and XEP-0440 types"
            );
            assert_eq!(
                ok.result.as_ref().ok(),
                Some(&Mechanism::ScramSha256Plus),
                "{name}: {:?}\n{}",
                ok.result.as_ref().err(),
                server.log()
            );
        }
    });
}

#[test]
fn end_point_binding_of_another_certificate_or_wrong_password_is_refused() {
    let server = start();
    let starttls = server.addr("xmpp").expect("xmpp listener");
    let rt = runtime();
    rt.block_on(async {
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let connector = tls_connector(&server, version);
            let mitm = login(starttls, &connector, false, "pw-alice", Claim::WrongData).await;
            assert_eq!(
                mitm.result.err(),
                Some(ClientError::AuthFailed(SaslCondition::NotAuthorized)),
                "{version:?}: a binding to another certificate must fail"
            );
            let wrong = login(starttls, &connector, false, "not-hers", Claim::Right).await;
            assert_eq!(
                wrong.result.err(),
                Some(ClientError::AuthFailed(SaslCondition::NotAuthorized)),
                "{version:?}: wrong password with the right binding"
            );
        }
        // After those failures (2 per connection at most), the right binding still works.
        let connector = tls_connector(&server, &rustls::version::TLS13);
        let ok = login(starttls, &connector, false, "pw-alice", Claim::Right).await;
        assert_eq!(ok.result.ok(), Some(Mechanism::ScramSha256Plus));
    });
}
