//! RFC 3261 §18.3 and §26.3.1, RFC 5626 §3.5.1: SIP over TCP and TLS — persistent
//! connections in both directions, stream framing by Content-Length, CRLF keep-alives, an
//! idle timeout, a size limit per message and a limit on open connections. Every open
//! connection is registered by remote address so that the proxy can send over the flow a
//! client registered or called on (RFC 5626 §5.3); responses go back on the connection the
//! request came in on.

use super::context::{CONN_QUEUE, ConnTx, SipContext};
use super::dispatch::Next;
use crate::config::SipSection;
use crate::services::StartError;
use bytes::{Buf, Bytes, BytesMut};
use cusax_sip::proxy::{Dest, NextHop};
use cusax_sip::{Outcome, Peer, Transport};
use cusax_sip_proto::{StreamFrame, frame_stream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How long an outgoing connection may take to establish (TCP plus TLS handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Client TLS settings for outgoing `sips:` connections: the system's trust anchors.
pub(super) fn client_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Spawns the accept loop of a bound listener (TLS when `tls` is given); returns its address.
pub(super) fn spawn(
    ctx: &Arc<SipContext>,
    cfg: &SipSection,
    std: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    tasks: &mut JoinSet<()>,
) -> Result<SocketAddr, StartError> {
    let addr = std
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let what = if tls.is_some() { "sip/tls" } else { "sip/tcp" };
    let err = |source| StartError::Listen { what, addr, source };
    let listener = TcpListener::from_std(std).map_err(err)?;
    let slots = Arc::new(Semaphore::new(cfg.tcp_max_connections.max(1)));
    tasks.spawn(accept_loop(ctx.clone(), listener, slots, tls));
    Ok(addr)
}

async fn accept_loop(
    ctx: Arc<SipContext>,
    listener: TcpListener,
    slots: Arc<Semaphore>,
    tls: Option<TlsAcceptor>,
) {
    loop {
        let (stream, from) = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "sip/tcp: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            ctx.counters
                .refused_connections
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%from, "sip/tcp: connection limit reached; closing");
            continue;
        };
        let ctx = ctx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => serve(ctx, stream, from, Transport::Tcp, None).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(s)) => serve(ctx, s, from, Transport::Tls, None).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%from, error = %e, "sip/tls: handshake failed")
                        }
                        Err(_) => tracing::debug!(%from, "sip/tls: handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Opens a connection to `addr` for the proxy and sends `first` once it is up. The queue is
/// registered at once, so that messages for the same destination wait for this connection
/// instead of opening another.
pub(super) fn connect(ctx: Arc<SipContext>, transport: Transport, addr: SocketAddr, first: Bytes) {
    let (tx, rx) = mpsc::channel(CONN_QUEUE);
    {
        let mut conns = ctx
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = conns.get(&(transport, addr)) {
            let _ = existing.try_send(first);
            return;
        }
        conns.insert((transport, addr), tx.clone());
    }
    let _ = tx.try_send(first);
    tokio::spawn(async move {
        let dest = Dest {
            transport,
            hop: NextHop::Addr(addr),
        };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => return fail(&ctx, transport, addr, &tx, &dest),
        };
        let _ = stream.set_nodelay(true);
        match transport {
            Transport::Tls => {
                let connector = TlsConnector::from(ctx.tls_client.clone());
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream)).await {
                    Ok(Ok(s)) => serve(ctx, s, addr, transport, Some((tx, rx))).await,
                    _ => fail(&ctx, transport, addr, &tx, &dest),
                }
            }
            _ => serve(ctx, stream, addr, transport, Some((tx, rx))).await,
        }
    });
}

fn fail(ctx: &Arc<SipContext>, transport: Transport, addr: SocketAddr, tx: &ConnTx, dest: &Dest) {
    unregister(ctx, transport, addr, tx);
    ctx.counters.undeliverable.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%addr, ?transport, "sip: outgoing connection failed");
    let more = ctx.core.transport_failed(dest);
    ctx.dispatch(more);
}

fn unregister(ctx: &SipContext, transport: Transport, addr: SocketAddr, tx: &ConnTx) {
    let mut conns = ctx
        .conns
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if conns
        .get(&(transport, addr))
        .is_some_and(|t| t.same_channel(tx))
    {
        conns.remove(&(transport, addr));
    }
}

/// Serves one connection (either direction) until EOF, an unrecoverable framing error, idle
/// timeout or shutdown; it is registered for the proxy's sends while it lives.
async fn serve<S>(
    ctx: Arc<SipContext>,
    mut stream: S,
    from: SocketAddr,
    transport: Transport,
    queue: Option<(ConnTx, mpsc::Receiver<Bytes>)>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (tx, mut rx) = match queue {
        Some(q) => q,
        None => {
            let (tx, rx) = mpsc::channel(CONN_QUEUE);
            ctx.conns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert((transport, from), tx.clone());
            (tx, rx)
        }
    };
    connection(&ctx, &mut stream, from, transport, &mut rx).await;
    unregister(&ctx, transport, from, &tx);
    let _ = stream.shutdown().await;
}

async fn connection<S>(
    ctx: &Arc<SipContext>,
    stream: &mut S,
    from: SocketAddr,
    transport: Transport,
    rx: &mut mpsc::Receiver<Bytes>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = Peer {
        addr: from,
        transport,
    };
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        loop {
            let frame = match frame_stream(&buf, &ctx.limits) {
                Ok(f) => f,
                Err(e) => {
                    // Without a trustworthy Content-Length the stream cannot be resynchronised.
                    ctx.counters.unparsable.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%from, error = %e, "sip/tcp: framing error; closing");
                    return;
                }
            };
            match frame {
                StreamFrame::Incomplete => break,
                StreamFrame::Ping { consumed } => {
                    buf.advance(consumed);
                    if stream.write_all(b"\r\n").await.is_err() {
                        return;
                    }
                }
                StreamFrame::Pong { consumed } => buf.advance(consumed),
                StreamFrame::Message { len } => {
                    let msg = buf.split_to(len).freeze();
                    let out = match ctx.process(msg, &peer) {
                        Next::Send(b, _) => Some(b),
                        Next::Dispatch(v) => {
                            ctx.dispatch(v);
                            None
                        }
                        Next::Load(req, need, _) => {
                            match ctx.load_and_handle(&req, need, &peer).await {
                                Outcome::Respond(b) => Some(b),
                                Outcome::Send(v) => {
                                    ctx.dispatch(v);
                                    None
                                }
                                _ => None,
                            }
                        }
                        Next::Nothing => None,
                    };
                    if let Some(b) = out
                        && stream.write_all(&b).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(4096);
        }
        let read = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            () = tokio::time::sleep(ctx.idle) => {
                tracing::debug!(%from, "sip/tcp: idle timeout");
                return;
            }
            m = rx.recv() => {
                match m {
                    Some(b) => if stream.write_all(&b).await.is_err() { return },
                    None => return,
                }
                continue;
            }
            r = stream.read_buf(&mut buf) => r,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
