//! RFC 3261 §16 and §18: one received message through the core, and delivery of what the
//! proxy produced — UDP datagrams from the listening socket, stream messages over the
//! connection to the destination (the flow a client registered or called on, or a new
//! outgoing connection opened through the context's [`Connector`](super::context::Connector)).
//!
//! Imports only `context`; the transports (`udp`, `stream`) and `mod` import this.

use super::context::SipContext;
use bytes::{Bytes, BytesMut};
use cusax_sip::proxy::{Dest, NextHop, Send};
use cusax_sip::{Outcome, Peer, Transport};
use cusax_sip_proto::{SipMessage, parse_datagram};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What the slow path must load before a request can be handled again.
pub(crate) enum Need {
    /// An account by digest username.
    Account(String, cusax_account::Domain),
    /// An alias of some account.
    Alias(cusax_account::Alias, cusax_account::Domain),
}

/// What to do with one received message.
pub(crate) enum Next {
    /// Send these bytes back; on UDP to the address given (RFC 3261 §18.2.2).
    Send(BytesMut, SocketAddr),
    /// Hand these to [`SipContext::dispatch`].
    Dispatch(Vec<Send>),
    /// The request needs something loaded first (see [`SipCore::handle`]); a direct
    /// response goes to the address given.
    Load(Box<cusax_sip_proto::Request>, Need, SocketAddr),
    /// Nothing to send.
    Nothing,
}

impl SipContext {
    /// Parses, validates and handles one framed message from `peer` (never panics, never
    /// waits): a parse error that leaves a routable request is answered with its status and
    /// reason phrase; anything else unusable is dropped and counted.
    pub(crate) fn process(&self, bytes: Bytes, peer: &Peer) -> Next {
        let msg = match parse_datagram(bytes, &self.limits) {
            Ok(m) => m,
            Err(e) => {
                self.counters.unparsable.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer.addr, error = %e, "sip: dropped unparsable message");
                return Next::Nothing;
            }
        };
        let req = match msg.validated() {
            Ok(SipMessage::Request(r)) => r,
            Ok(SipMessage::Response(r)) => {
                metrics::counter!("cusax_sip_responses_total", "direction" => "received", "code" => class(r.code()))
                    .increment(1);
                return Next::Dispatch(self.core.handle_response(&r, peer));
            }
            Err(bad) => return self.invalid(&bad, peer),
        };
        let to = reply_addr(&req, peer);
        metrics::counter!("cusax_sip_requests_total", "method" => req.method().as_str())
            .increment(1);
        match self.core.handle(cusax_store::unix_now(), &req, peer) {
            Outcome::Respond(b) => {
                count_sent(&b);
                Next::Send(b, to)
            }
            Outcome::NeedAccount { user, realm } => {
                Next::Load(Box::new(req), Need::Account(user, realm), to)
            }
            Outcome::NeedAlias { alias, realm } => {
                Next::Load(Box::new(req), Need::Alias(alias, realm), to)
            }
            Outcome::Send(v) => Next::Dispatch(v),
            Outcome::Nothing => Next::Nothing,
        }
    }

    fn invalid(&self, bad: &cusax_sip_proto::Invalid, peer: &Peer) -> Next {
        match self.core.answer_invalid(bad, peer) {
            Some(b) => {
                self.counters
                    .answered_invalid
                    .fetch_add(1, Ordering::Relaxed);
                let call_id = bad.message.head().call_id().unwrap_or_default();
                tracing::debug!(
                    %peer.addr,
                    status = bad.error.status_code(),
                    reason = bad.error.reason_phrase(),
                    call_id = %String::from_utf8_lossy(call_id),
                    "sip: answered invalid request"
                );
                let to = match &*bad.message {
                    SipMessage::Request(r) => reply_addr(r, peer),
                    SipMessage::Response(_) => peer.addr,
                };
                Next::Send(b, to)
            }
            None => {
                self.counters
                    .dropped_invalid
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer.addr, error = %bad.error, "sip: dropped invalid message");
                Next::Nothing
            }
        }
    }

    /// The slow path after [`Next::Load`]: load what is missing from the store and handle
    /// again (a request may need a caller and a callee, so a few rounds).
    pub(crate) async fn load_and_handle(
        &self,
        req: &cusax_sip_proto::Request,
        mut need: Need,
        peer: &Peer,
    ) -> Outcome {
        for _ in 0..4 {
            let loaded = match &need {
                Need::Account(user, realm) => self.core.load_account(user, realm).await,
                Need::Alias(alias, realm) => self.core.load_alias(alias, realm).await,
            };
            if let Err(e) = loaded {
                tracing::warn!(error = %e, "sip: loading an account failed");
                return Outcome::Nothing;
            }
            match self.core.handle(cusax_store::unix_now(), req, peer) {
                Outcome::NeedAccount { user, realm } => need = Need::Account(user, realm),
                Outcome::NeedAlias { alias, realm } => need = Need::Alias(alias, realm),
                other => return other,
            }
        }
        // Invalidated again and again meanwhile; the client retransmits (UDP) or retries.
        Outcome::Nothing
    }

    /// Delivers what the proxy produced.
    pub(crate) fn dispatch(self: &Arc<Self>, sends: Vec<Send>) {
        for s in sends {
            self.send_one(s);
        }
    }

    fn undeliverable(self: &Arc<Self>, dest: &Dest, why: &str) {
        self.counters.undeliverable.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(?dest, why, "sip: message not delivered");
        let more = self.core.transport_failed(dest);
        if !more.is_empty() {
            let ctx = self.clone();
            tokio::spawn(async move { ctx.dispatch(more) });
        }
    }

    fn send_one(self: &Arc<Self>, s: Send) {
        count_sent(&s.bytes);
        if tracing::enabled!(tracing::Level::TRACE) {
            let line = s.bytes.split(|&b| b == b'\r').next().unwrap_or_default();
            tracing::trace!(dest = ?s.dest, first = %String::from_utf8_lossy(line), "sip: send");
        }
        let addr = match &s.dest.hop {
            NextHop::Addr(a) => *a,
            NextHop::Name(host, port) => {
                let (ctx, host, port) = (self.clone(), host.clone(), *port);
                tokio::spawn(async move {
                    let found = tokio::time::timeout(
                        Duration::from_secs(5),
                        tokio::net::lookup_host((host.as_str(), port)),
                    )
                    .await;
                    match found {
                        Ok(Ok(mut addrs)) => match addrs.next() {
                            Some(a) => ctx.send_one(Send {
                                dest: Dest {
                                    transport: s.dest.transport,
                                    hop: NextHop::Addr(a),
                                },
                                bytes: s.bytes,
                            }),
                            None => ctx.undeliverable(&s.dest, "no address"),
                        },
                        _ => ctx.undeliverable(&s.dest, "name lookup failed"),
                    }
                });
                return;
            }
        };
        match s.dest.transport {
            Transport::Udp => {
                let Some(sock) = self.udp.get() else {
                    return self.undeliverable(&s.dest, "no UDP socket");
                };
                match sock.try_send_to(&s.bytes, addr) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let sock = sock.clone();
                        tokio::spawn(async move {
                            let _ = sock.send_to(&s.bytes, addr).await;
                        });
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, %addr, "sip/udp: send failed");
                    }
                }
            }
            t @ (Transport::Tcp | Transport::Tls) => match self.conn(t, addr) {
                Some(tx) => {
                    if tx.try_send(s.bytes).is_err() {
                        self.undeliverable(&s.dest, "connection queue full or closed");
                    }
                }
                None => (self.connect)(self.clone(), t, addr, s.bytes),
            },
            _ => self.undeliverable(&s.dest, "transport not supported"),
        }
    }
}

/// The status class label of a response code (`2xx` …), a bounded set.
fn class(code: u16) -> &'static str {
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "6xx",
    }
}

/// Counts a response this element sends (generated or forwarded), by status code; codes
/// outside the common set are counted by class so that the label set stays bounded.
fn count_sent(bytes: &[u8]) {
    let Some(code) = bytes
        .strip_prefix(b"SIP/2.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<u16>().ok())
    else {
        return;
    };
    const COMMON: [(u16, &str); 18] = [
        (100, "100"),
        (180, "180"),
        (183, "183"),
        (200, "200"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (407, "407"),
        (408, "408"),
        (480, "480"),
        (482, "482"),
        (483, "483"),
        (486, "486"),
        (487, "487"),
        (489, "489"),
        (500, "500"),
        (603, "603"),
    ];
    let label = COMMON
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| class(code), |(_, l)| *l);
    metrics::counter!("cusax_sip_responses_total", "direction" => "sent", "code" => label)
        .increment(1);
}

/// Where a direct response goes (RFC 3261 §18.2.2, RFC 3581 §4).
fn reply_addr(req: &cusax_sip_proto::Request, peer: &Peer) -> SocketAddr {
    match Dest::reply_to(req, peer).hop {
        NextHop::Addr(a) => a,
        NextHop::Name(..) => peer.addr,
    }
}
