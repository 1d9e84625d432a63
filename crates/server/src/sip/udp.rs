//! RFC 3261 §18.1.1/§18.2 and RFC 3581: SIP over UDP — sized receive buffers, optional
//! SO_REUSEPORT fan-out (the sockets are bound by [`Listeners`](crate::Listeners)), responses
//! sent where §18.2.2 and `rport` say.

use super::context::SipContext;
use super::dispatch::Next;
use crate::services::StartError;
use bytes::Bytes;
use cusax_sip::{Outcome, Peer, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

/// Spawns one receive loop per bound socket; returns the bound address.
pub(super) fn spawn(
    ctx: &Arc<SipContext>,
    socks: Vec<std::net::UdpSocket>,
    tasks: &mut JoinSet<()>,
) -> Result<SocketAddr, StartError> {
    let mut bound = None;
    for s in socks {
        let addr = s
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let s = UdpSocket::from_std(s).map_err(|source| StartError::Listen {
            what: "sip/udp",
            addr,
            source,
        })?;
        bound = bound.or(Some(addr));
        let s = Arc::new(s);
        let _ = ctx.udp.set(s.clone());
        tasks.spawn(receive_loop(ctx.clone(), s));
    }
    Ok(bound.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))))
}

async fn receive_loop(ctx: Arc<SipContext>, sock: Arc<UdpSocket>) {
    // One buffer per socket, large enough for any datagram; each message gets its own copy,
    // sized to the datagram, so that memory is proportional to messages in flight.
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "sip/udp: receive error");
                    continue;
                }
            },
        };
        if n == 0 || buf[..n].iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            continue; // keep-alive (RFC 5626 §3.5.1 CRLF, or NAT keep-alive bytes)
        }
        if cusax_sip_proto::stun::is_stun(&buf[..n]) {
            // RFC 5626 §4.4.2: the STUN keep-alive of an outbound flow.
            if let Some(r) = cusax_sip_proto::stun::binding_response(&buf[..n], from) {
                let _ = sock.try_send_to(&r, from);
            }
            continue;
        }
        let peer = Peer {
            addr: from,
            transport: Transport::Udp,
        };
        match ctx.process(Bytes::copy_from_slice(&buf[..n]), &peer) {
            Next::Send(resp, to) => send(&sock, &resp, &peer, &to).await,
            Next::Dispatch(v) => ctx.dispatch(v),
            Next::Load(req, need, to) => {
                let Ok(permit) = ctx.loads.clone().try_acquire_owned() else {
                    ctx.counters.dropped_busy.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let (ctx, sock) = (ctx.clone(), sock.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match ctx.load_and_handle(&req, need, &peer).await {
                        Outcome::Respond(resp) => send(&sock, &resp, &peer, &to).await,
                        Outcome::Send(v) => ctx.dispatch(v),
                        _ => {}
                    }
                });
            }
            Next::Nothing => {}
        }
    }
}

async fn send(sock: &UdpSocket, resp: &[u8], peer: &Peer, to: &SocketAddr) {
    if let Err(e) = sock.send_to(resp, to).await {
        tracing::debug!(error = %e, from = %peer.addr, %to, "sip/udp: send failed");
    }
}
