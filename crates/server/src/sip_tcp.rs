//! RFC 3261 §18.3 and RFC 5626 §3.5.1: SIP over TCP — persistent connections, stream framing
//! by Content-Length, CRLF keep-alives, an idle timeout, a size limit per message and a limit
//! on open connections. Responses go back on the connection the request came in on.

use crate::config::SipSection;
use crate::server::StartError;
use crate::sip_listener::{Next, SipContext};
use bytes::{Buf, BytesMut};
use cusax_sip::{Peer, Transport};
use cusax_sip_proto::{StreamFrame, frame_stream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Binds the TCP listener on `addr`.
pub(crate) fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, StartError> {
    let err = |source| StartError::Listen {
        what: "sip/tcp",
        addr,
        source,
    };
    let std = std::net::TcpListener::bind(addr).map_err(err)?;
    std.set_nonblocking(true).map_err(err)?;
    Ok(std)
}

/// Spawns the accept loop of a bound listener; returns its address.
pub(crate) fn spawn(
    ctx: &Arc<SipContext>,
    cfg: &SipSection,
    std: std::net::TcpListener,
    tasks: &mut JoinSet<()>,
) -> Result<SocketAddr, StartError> {
    let addr = std
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let err = |source| StartError::Listen {
        what: "sip/tcp",
        addr,
        source,
    };
    let listener = TcpListener::from_std(std).map_err(err)?;
    let slots = Arc::new(Semaphore::new(cfg.tcp_max_connections.max(1)));
    let idle = Duration::from_secs(cfg.tcp_idle_secs.max(1));
    tasks.spawn(accept_loop(ctx.clone(), listener, slots, idle));
    Ok(addr)
}

async fn accept_loop(
    ctx: Arc<SipContext>,
    listener: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
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
        tokio::spawn(async move {
            connection(&ctx, stream, from, idle).await;
            drop(permit);
        });
    }
}

/// Serves one connection until EOF, an unrecoverable framing error, idle timeout or shutdown.
async fn connection(ctx: &SipContext, mut stream: TcpStream, from: SocketAddr, idle: Duration) {
    let _ = stream.set_nodelay(true);
    let peer = Peer {
        addr: from,
        transport: Transport::Tcp,
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
                        Next::Load(req, user, realm, _) => {
                            ctx.load_and_handle(&req, &user, &realm, &peer).await
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
            () = tokio::time::sleep(idle) => {
                tracing::debug!(%from, "sip/tcp: idle timeout");
                return;
            }
            r = stream.read_buf(&mut buf) => r,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
