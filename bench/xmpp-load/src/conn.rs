//! One client connection: TCP (optionally STARTTLS), SCRAM login and resource binding, timed.
//!
//! The SASL mechanism is chosen by the benchmark, not by preference order, so that all servers
//! are measured with the same one (`ClientNegotiation` always takes the strongest offered). The
//! pieces are those of `cusax-xmpp-proto`: its stream reader, features parser, SCRAM client and
//! stream header writer.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cusax_xmpp_proto::ns;
use cusax_xmpp_proto::sasl::{
    ClientChannelBinding, Mechanism, ScramClient, ScramClientError, ScramClientSecret,
};
use cusax_xmpp_proto::stream::Features;
use cusax_xmpp_proto::xml::{
    StreamHeaderOut, StreamReader, XmlEvent, XmlLimits, escape_attr, escape_text, stream_header,
};
use minidom::Element;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Namespace of XEP-0199 pings, answered while holding idle connections.
const NS_PING: &str = "urn:xmpp:ping";

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A SaltedPassword learnt from an earlier login of the same user.
#[derive(Clone, Debug)]
pub struct Salted {
    /// The salt the server sent.
    pub salt: Vec<u8>,
    /// The iteration count the server sent.
    pub iterations: u32,
    /// Hi(password, salt, iterations).
    pub salted_password: Vec<u8>,
}

/// Settings shared by every connection of a run.
#[derive(Clone, Debug)]
pub struct Target {
    /// Server address.
    pub addr: SocketAddr,
    /// XMPP domain (`to` of the stream header).
    pub domain: String,
    /// SCRAM mechanism to use.
    pub mechanism: Mechanism,
    /// STARTTLS before SASL (certificate not verified: loopback benchmark only).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Local addresses to connect from (round-robin), to spread the 4-tuple space.
    pub sources: Vec<IpAddr>,
    /// Limit for each protocol step.
    pub step_timeout: Duration,
}

/// Why a login failed, in classes the report counts.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// TCP connect failed or timed out.
    #[error("connect: {0}")]
    Connect(String),
    /// The server rejected the credentials (`<failure/>`).
    #[error("authentication refused: {0}")]
    Refused(String),
    /// The server does not offer what we need (mechanism, STARTTLS, bind, registration).
    #[error("not offered: {0}")]
    NotOffered(String),
    /// A step took longer than the step timeout.
    #[error("timeout waiting for {0}")]
    Timeout(&'static str),
    /// Anything else: I/O error, stream error, protocol violation.
    #[error("{0}")]
    Other(String),
}

impl LoginError {
    /// Short class name for counters.
    pub fn class(&self) -> &'static str {
        match self {
            LoginError::Connect(_) => "connect",
            LoginError::Refused(_) => "refused",
            LoginError::NotOffered(_) => "not_offered",
            LoginError::Timeout(_) => "timeout",
            LoginError::Other(_) => "other",
        }
    }
}

impl From<io::Error> for LoginError {
    fn from(e: io::Error) -> Self {
        LoginError::Other(format!("i/o: {e}"))
    }
}

/// An open XML stream: socket, incremental reader and read buffer.
pub struct Xmpp {
    io: Box<dyn Io>,
    reader: StreamReader,
    buf: Vec<u8>,
    step_timeout: Duration,
}

impl std::fmt::Debug for Xmpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xmpp").finish_non_exhaustive()
    }
}

/// What the reader produced next.
pub enum Next {
    /// A first-level element.
    Element(Element),
    /// The peer closed the stream or the connection.
    Closed,
}

impl Xmpp {
    /// Connects from the `n`-th source address.
    pub async fn connect(target: &Target, n: usize) -> Result<Xmpp, LoginError> {
        let sock = match target.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| LoginError::Connect(e.to_string()))?;
        if !target.sources.is_empty() {
            let ip = target.sources[n % target.sources.len()];
            sock.bind(SocketAddr::new(ip, 0))
                .map_err(|e| LoginError::Connect(format!("bind {ip}: {e}")))?;
        }
        let stream: TcpStream =
            tokio::time::timeout(target.step_timeout, sock.connect(target.addr))
                .await
                .map_err(|_| LoginError::Timeout("TCP connect"))?
                .map_err(|e| LoginError::Connect(e.to_string()))?;
        // Stanzas are small and latency is measured: no Nagle delay.
        stream.set_nodelay(true)?;
        Ok(Xmpp {
            io: Box::new(stream),
            reader: StreamReader::new(XmlLimits::default()),
            buf: vec![0; 4096],
            step_timeout: target.step_timeout,
        })
    }

    /// Writes bytes, bounded by the step timeout.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), LoginError> {
        tokio::time::timeout(self.step_timeout, self.io.write_all(data))
            .await
            .map_err(|_| LoginError::Timeout("write"))??;
        Ok(())
    }

    /// The next first-level element already buffered, without reading from the socket.
    pub fn buffered(&mut self) -> Option<Result<Next, LoginError>> {
        loop {
            return match self.reader.next_event()? {
                Ok(XmlEvent::StreamOpen(_)) => continue,
                Ok(XmlEvent::Stanza(el)) if el.is("error", ns::STREAM) => {
                    let cond = el.children().next().map(|c| c.name().to_owned());
                    Some(Err(LoginError::Other(format!(
                        "stream error {}",
                        cond.unwrap_or_default()
                    ))))
                }
                Ok(XmlEvent::Stanza(el)) => Some(Ok(Next::Element(el))),
                Ok(XmlEvent::StreamClose) => Some(Ok(Next::Closed)),
                Err(e) => Some(Err(LoginError::Other(format!("XML: {e}")))),
            };
        }
    }

    /// The next first-level element or the end of the stream; no timeout (cancel-safe).
    pub async fn next(&mut self) -> Result<Next, LoginError> {
        loop {
            if let Some(r) = self.buffered() {
                return r;
            }
            let n = self.io.read(&mut self.buf).await?;
            if n == 0 {
                return Ok(Next::Closed);
            }
            self.reader.feed(&self.buf[..n]);
        }
    }

    /// The next element, bounded by the step timeout; closing is an error.
    async fn expect(&mut self, what: &'static str) -> Result<Element, LoginError> {
        match tokio::time::timeout(self.step_timeout, self.next()).await {
            Err(_) => Err(LoginError::Timeout(what)),
            Ok(Ok(Next::Element(el))) => Ok(el),
            Ok(Ok(Next::Closed)) => Err(LoginError::Other(format!(
                "stream closed waiting for {what}"
            ))),
            Ok(Err(e)) => Err(e),
        }
    }

    /// Opens (or restarts) the stream and returns the features.
    async fn open(&mut self, domain: &str) -> Result<Features, LoginError> {
        self.reader.reset();
        let h = stream_header(&StreamHeaderOut {
            to: Some(domain),
            lang: Some("en"),
            content_ns: ns::JABBER_CLIENT,
            ..StreamHeaderOut::default()
        });
        self.send(&h).await?;
        let el = self.expect("stream features").await?;
        let f = Features::from_element(&el)
            .ok_or_else(|| LoginError::Other(format!("expected features, got <{}>", el.name())))?;
        Ok(f)
    }

    /// STARTTLS (RFC 6120 §5) and the stream restart that follows.
    async fn starttls(
        &mut self,
        target: &Target,
        cfg: Arc<rustls::ClientConfig>,
    ) -> Result<Features, LoginError> {
        self.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await?;
        let el = self.expect("STARTTLS proceed").await?;
        if !el.is("proceed", ns::TLS) {
            return Err(LoginError::Other("STARTTLS refused".into()));
        }
        let name = rustls_pki_types::ServerName::try_from(target.domain.clone())
            .map_err(|e| LoginError::Other(format!("TLS server name: {e}")))?;
        let plain: Box<dyn Io> = std::mem::replace(
            &mut self.io,
            Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink())),
        );
        let tls = tokio::time::timeout(
            self.step_timeout,
            tokio_rustls::TlsConnector::from(cfg).connect(name, plain),
        )
        .await
        .map_err(|_| LoginError::Timeout("TLS handshake"))??;
        self.io = Box::new(tls);
        self.open(&target.domain).await
    }

    /// Closes the stream and waits (bounded) for the server to close its side, so that the
    /// server, not the loader, holds TIME_WAIT and ephemeral ports are not exhausted.
    pub async fn close(mut self) {
        let _ = self.send(cusax_xmpp_proto::xml::STREAM_CLOSE).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match self.io.read(&mut self.buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        let _ = self.io.shutdown().await;
    }

    /// Answers an IQ the server sent to us (pings; anything else gets service-unavailable).
    pub fn answer_iq(el: &Element, out: &mut Vec<u8>) {
        let ty = el.attr("type").unwrap_or_default();
        if ty != "get" && ty != "set" {
            return;
        }
        let mut s = String::from("<iq type='");
        let ping = el.get_child("ping", NS_PING).is_some();
        s.push_str(if ping { "result" } else { "error" });
        s.push_str("' id='");
        escape_attr(el.attr("id").unwrap_or_default(), &mut s);
        s.push('\'');
        if let Some(from) = el.attr("from") {
            s.push_str(" to='");
            escape_attr(from, &mut s);
            s.push('\'');
        }
        if ping {
            s.push_str("/>");
        } else {
            s.push_str("><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        }
        out.extend_from_slice(s.as_bytes());
    }
}

/// A bound session.
#[derive(Debug)]
pub struct Session {
    /// The stream, ready for stanzas.
    pub xmpp: Xmpp,
    /// The full JID the server bound.
    pub jid: String,
    /// The SaltedPassword to cache for the next login of this user.
    pub salted: Option<Salted>,
}

/// Credentials of one account.
#[derive(Clone, Debug)]
pub struct Account {
    /// Localpart.
    pub user: String,
    /// Password.
    pub password: String,
}

/// Connect → (STARTTLS) → SCRAM → bind; `cached` skips PBKDF2 on the loader side.
pub async fn login(
    target: &Target,
    n: usize,
    acct: &Account,
    cached: Option<Salted>,
    resource: &str,
) -> Result<Session, LoginError> {
    let mut x = Xmpp::connect(target, n).await?;
    let mut f = x.open(&target.domain).await?;
    if let Some(cfg) = &target.tls {
        if f.starttls.is_none() {
            return Err(LoginError::NotOffered("STARTTLS".into()));
        }
        f = x.starttls(target, cfg.clone()).await?;
    }
    if target.tls.is_none() && f.starttls == Some(true) {
        return Err(LoginError::NotOffered(
            "login without TLS (the server requires STARTTLS: allow plain TCP on the server, \
             or pass --starttls)"
                .into(),
        ));
    }
    if !f.mechanisms.contains(&target.mechanism) {
        let offered: Vec<&str> = f.mechanisms.iter().map(|m| m.name()).collect();
        return Err(LoginError::NotOffered(format!(
            "{} (server offers {})",
            target.mechanism,
            offered.join(" ")
        )));
    }
    let secret = match &cached {
        Some(c) => ScramClientSecret::Salted {
            salt: c.salt.clone(),
            iterations: c.iterations,
            salted_password: c.salted_password.clone(),
        },
        None => ScramClientSecret::Password(acct.password.clone()),
    };
    let mut scram = ScramClient::new(
        target.mechanism,
        &acct.user,
        secret,
        ClientChannelBinding::Unsupported,
        None,
    )
    .map_err(|e| LoginError::Other(format!("SCRAM: {e}")))?;
    let first = B64.encode(scram.client_first());
    x.send(
        format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{}'>{first}</auth>",
            target.mechanism
        )
        .as_bytes(),
    )
    .await?;
    let mut verified = false;
    loop {
        let el = x.expect("SASL answer").await?;
        if !el.ns().eq(ns::SASL) {
            return Err(LoginError::Other(format!(
                "unexpected <{}> during SASL",
                el.name()
            )));
        }
        let data = B64
            .decode(el.text().trim())
            .map_err(|_| LoginError::Other("SASL payload is not base64".into()))?;
        match el.name() {
            "challenge" if scram.salted_password().is_none() => {
                let reply = scram.handle_server_first(&data).map_err(scram_err)?;
                x.send(
                    format!(
                        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
                        B64.encode(reply)
                    )
                    .as_bytes(),
                )
                .await?;
            }
            // Some servers send server-final as a challenge and success without data.
            "challenge" => {
                scram.handle_server_final(&data).map_err(scram_err)?;
                verified = true;
                x.send(b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
                    .await?;
            }
            "success" => {
                if !verified {
                    scram.handle_server_final(&data).map_err(scram_err)?;
                }
                break;
            }
            "failure" => {
                let cond = el
                    .children()
                    .next()
                    .map(|c| c.name().to_owned())
                    .unwrap_or_else(|| "failure".into());
                return Err(LoginError::Refused(format!("{} for {}", cond, acct.user)));
            }
            other => return Err(LoginError::Other(format!("unexpected SASL <{other}>"))),
        }
    }
    let salted = scram.salted_password().map(|(s, i, p)| Salted {
        salt: s.to_vec(),
        iterations: i,
        salted_password: p.to_vec(),
    });
    let f = x.open(&target.domain).await?;
    if !f.bind {
        return Err(LoginError::NotOffered("resource binding".into()));
    }
    let mut req = String::from(
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>",
    );
    escape_text(resource, &mut req);
    req.push_str("</resource></bind></iq>");
    x.send(req.as_bytes()).await?;
    let el = x.expect("bind result").await?;
    let jid = el
        .get_child("bind", ns::BIND)
        .and_then(|b| b.get_child("jid", ns::BIND))
        .map(Element::text);
    let jid = match (el.attr("type"), jid) {
        (Some("result"), Some(j)) => j.trim().to_owned(),
        _ => return Err(LoginError::Other("bind refused".into())),
    };
    // RFC 6121 legacy session: only when the server says it is not optional.
    if f.session == Some(false) {
        x.send(
            b"<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
        )
        .await?;
        let el = x.expect("session result").await?;
        if el.attr("type") != Some("result") {
            return Err(LoginError::Other("session refused".into()));
        }
    }
    Ok(Session {
        xmpp: x,
        jid,
        salted,
    })
}

fn scram_err(e: ScramClientError) -> LoginError {
    match e {
        ScramClientError::ServerError(s) => LoginError::Refused(format!("SCRAM e={s}")),
        e => LoginError::Other(format!("SCRAM: {e}")),
    }
}

/// Outcome of one XEP-0077 registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The account was created.
    Created,
    /// The account already existed (`conflict`).
    Existed,
}

/// XEP-0077 in-band registration of one account on a fresh stream.
pub async fn register(target: &Target, n: usize, acct: &Account) -> Result<Registered, LoginError> {
    let mut x = Xmpp::connect(target, n).await?;
    let _ = x.open(&target.domain).await?;
    let mut req =
        String::from("<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>");
    escape_text(&acct.user, &mut req);
    req.push_str("</username><password>");
    escape_text(&acct.password, &mut req);
    req.push_str("</password></query></iq>");
    x.send(req.as_bytes()).await?;
    let el = x.expect("registration result").await?;
    let res = match el.attr("type") {
        Some("result") => Ok(Registered::Created),
        Some("error") => {
            let cond = el
                .get_child("error", ns::JABBER_CLIENT)
                .and_then(|e| e.children().find(|c| c.ns() == ns::STANZAS))
                .map(|c| c.name().to_owned())
                .unwrap_or_default();
            if cond == "conflict" {
                Ok(Registered::Existed)
            } else {
                Err(LoginError::Refused(format!(
                    "registration of {}: {cond}",
                    acct.user
                )))
            }
        }
        _ => Err(LoginError::Other(format!(
            "unexpected answer <{}>",
            el.name()
        ))),
    };
    x.close().await;
    res
}

/// A rustls client configuration that accepts any certificate: loopback benchmarks only,
/// where the servers use throw-away self-signed certificates.
pub fn insecure_tls() -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Parses a mechanism name given on the command line (SCRAM only: PLAIN needs TLS and measures
/// something else).
pub fn parse_mechanism(s: &str) -> anyhow::Result<Mechanism> {
    match Mechanism::from_name(&s.to_ascii_uppercase()) {
        Some(m @ (Mechanism::ScramSha1 | Mechanism::ScramSha256)) => Ok(m),
        Some(m) => bail!("mechanism {m} is not supported by the loader"),
        None => Err(anyhow!("unknown mechanism {s}")),
    }
}
