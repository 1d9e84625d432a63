//! RFC 6120 §4–§7 over tokio: TCP connect, STARTTLS with certificate verification (§13.7.2),
//! SASL and resource binding, driving the sans-IO `ClientNegotiation`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cusax_xmpp_proto::sasl::{ChannelBinding, ChannelBindingKind};
use cusax_xmpp_proto::stream::client::ClientConfig;
use cusax_xmpp_proto::stream::{
    BoundStream, ClientError, ClientEvent, ClientNegotiation, TlsPolicy,
};
use cusax_xmpp_proto::xml::XmlLimits;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{XmppConfig, XmppError};

/// How long connecting and logging in may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The byte stream under the XML stream: TCP until STARTTLS, TLS after.
#[derive(Debug)]
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A logged-in, bound connection.
#[derive(Debug)]
pub(crate) struct Connected {
    pub(crate) io: Io,
    pub(crate) stream: BoundStream,
    /// The TLS protocol version, e.g. `TLSv1_3`.
    pub(crate) tls: String,
    /// The SASL mechanism used.
    pub(crate) mechanism: String,
}

/// The channel bindings of a finished TLS handshake (RFC 9266 first, then RFC 5929 §4).
fn channel_bindings(tls: &TlsStream<TcpStream>) -> Vec<ChannelBinding> {
    let (_, conn) = tls.get_ref();
    let mut out = Vec::new();
    if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
        && let Ok(data) =
            conn.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
    {
        out.push(ChannelBinding {
            kind: ChannelBindingKind::TlsExporter,
            data,
        });
    }
    if let Some(cb) = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| ChannelBinding::tls_server_end_point(c))
    {
        out.push(cb);
    }
    out
}

fn client_error(e: ClientError) -> XmppError {
    match e {
        ClientError::AuthFailed(c) => XmppError::Auth(c.to_string()),
        ClientError::Scram(e) => XmppError::Auth(format!("server not verified: {e}")),
        other => XmppError::Stream(other.to_string()),
    }
}

/// Connects, secures, logs in and binds (bounded by [`LOGIN_TIMEOUT`]).
pub(crate) async fn connect(
    cfg: &XmppConfig,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Connected, XmppError> {
    match tokio::time::timeout(LOGIN_TIMEOUT, connect_inner(cfg, tls)).await {
        Ok(r) => r,
        Err(_) => Err(XmppError::Stream("login timed out".into())),
    }
}

async fn connect_inner(
    cfg: &XmppConfig,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Connected, XmppError> {
    let (user, domain) = cfg.parts()?;
    let tcp = match cfg.server {
        Some(addr) => TcpStream::connect(addr)
            .await
            .map_err(|e| XmppError::Connect(format!("{addr}: {e}")))?,
        None => TcpStream::connect((domain, 5222))
            .await
            .map_err(|e| XmppError::Connect(format!("{domain}:5222: {e}")))?,
    };
    let _ = tcp.set_nodelay(true);
    let tls_name = cfg.tls_name.clone().unwrap_or_else(|| domain.to_owned());
    let server_name = ServerName::try_from(tls_name.clone())
        .map_err(|_| XmppError::Config(format!("{tls_name:?} is not a valid server name")))?;
    let mut neg = ClientNegotiation::new(ClientConfig {
        domain: domain.to_owned(),
        username: user.to_owned(),
        password: cfg.password.clone(),
        cached: None,
        resource: cfg.resource.clone(),
        tls: TlsPolicy::Required,
        allow_plain: true,
        limits: XmlLimits::default(),
    });
    let mut io = Io::Plain(tcp);
    let mut tls_version = String::new();
    let mut mechanism = String::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let out = neg.take_output();
        if !out.is_empty() {
            io.write_all(&out)
                .await
                .map_err(|e| XmppError::Stream(e.to_string()))?;
        }
        let mut bound = false;
        while let Some(ev) = neg.poll_event() {
            match ev {
                ClientEvent::NeedTls => {
                    let Io::Plain(tcp) = io else {
                        return Err(XmppError::Stream("STARTTLS twice".into()));
                    };
                    let s = TlsConnector::from(tls.clone())
                        .connect(server_name.clone(), tcp)
                        .await
                        .map_err(|e| XmppError::Tls(format!("{tls_name}: {e}")))?;
                    tls_version = s
                        .get_ref()
                        .1
                        .protocol_version()
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default();
                    neg.tls_established(channel_bindings(&s));
                    io = Io::Tls(Box::new(s));
                }
                ClientEvent::Authenticated { mechanism: m, .. } => mechanism = m.to_string(),
                ClientEvent::Bound(_) => bound = true,
                ClientEvent::Failed(e) => {
                    let out = neg.take_output();
                    let _ = io.write_all(&out).await;
                    return Err(client_error(e));
                }
                _ => {}
            }
        }
        if bound {
            let stream = neg
                .into_bound()
                .map_err(|_| XmppError::Stream("bound event without a bound stream".into()))?;
            return Ok(Connected {
                io,
                stream,
                tls: tls_version,
                mechanism,
            });
        }
        // After STARTTLS the negotiation has queued the new stream header: send it first.
        let out = neg.take_output();
        if !out.is_empty() {
            io.write_all(&out)
                .await
                .map_err(|e| XmppError::Stream(e.to_string()))?;
        }
        let n = io
            .read(&mut buf)
            .await
            .map_err(|e| XmppError::Stream(e.to_string()))?;
        if n == 0 {
            return Err(XmppError::Stream("the server closed the connection".into()));
        }
        neg.feed(&buf[..n]);
    }
}
