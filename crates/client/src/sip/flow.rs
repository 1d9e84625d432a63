//! RFC 7081 §2 ("keep both connections alive") with RFC 5626 §4.4–§4.5: the life of the flow
//! to the server — keep-alives while registered, and when the connection closes, a keep-alive
//! goes unanswered or a REGISTER fails in a way worth retrying, reopening the flow and
//! registering again after a bounded, jittered exponential backoff instead of stopping.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip_proto::Response;
use tokio::sync::oneshot;

use super::keepalive::{self, Action, KeepAlive};
use super::state::{ClientTx, Link, Opened, Purpose};
use super::transport::{Inbound, Transport};
use super::ua::Actor;
use crate::event::Event;

fn jitter() -> f64 {
    rand::random::<f64>()
}

/// The registrar's `Flow-Timer` (RFC 5626 §6), in seconds; 0 or garbage is ignored.
fn flow_timer(resp: &Response) -> Option<Duration> {
    let h = resp.header_named("Flow-Timer")?;
    let secs: u64 = std::str::from_utf8(h.value).ok()?.trim().parse().ok()?;
    (secs > 0).then(|| Duration::from_secs(secs))
}

impl Actor {
    /// Handles what the flow's reader delivered.
    pub(crate) fn on_inbound(&mut self, now: Instant, m: Inbound) {
        match m {
            Inbound::Sip(m) => self.on_message(now, *m),
            Inbound::Pong => {
                if let Some(k) = &mut self.flow.keepalive {
                    k.on_pong();
                }
            }
            Inbound::StunSuccess(tid) => {
                if let Some(k) = &mut self.flow.keepalive {
                    k.on_stun_success(tid);
                }
            }
            Inbound::Ping => {
                // RFC 5626 §4.4.1: a ping is answered with a pong.
                let server = self.transport.server();
                self.send(server, Bytes::from_static(b"\r\n"));
            }
        }
    }

    /// Starts (or keeps) keep-alives once the registrar accepted our binding.
    pub(crate) fn start_keepalive(&mut self, now: Instant, resp: &Response) {
        if !self.cfg.flow.keepalive || self.flow.keepalive.is_some() {
            return;
        }
        let kind = self.transport.kind();
        let base = self
            .cfg
            .flow
            .keepalive_interval
            .or_else(|| flow_timer(resp))
            .unwrap_or_else(|| keepalive::default_interval(kind));
        self.flow.keepalive = Some(KeepAlive::new(
            kind,
            base,
            self.cfg.flow.keepalive_timeout,
            now,
            jitter(),
        ));
    }

    /// Sends a due keep-alive, or declares the flow dead when one went unanswered.
    pub(crate) fn keepalive_timer(&mut self, now: Instant) {
        let Some(k) = &mut self.flow.keepalive else {
            return;
        };
        let tid: [u8; 12] = rand::random();
        match k.on_timer(now, tid, jitter()) {
            Some(Action::Send(b)) => {
                let server = self.transport.server();
                self.send(server, Bytes::from(b));
            }
            Some(Action::Dead) => self.flow_failed(now, "keep-alive unanswered", true),
            None => {}
        }
    }

    /// The flow is lost (`closed`: the connection or the keep-alive failed; otherwise a
    /// REGISTER failed in a way worth retrying): report it and schedule a new attempt.
    pub(crate) fn flow_failed(&mut self, now: Instant, reason: &str, closed: bool) {
        if matches!(self.flow.link, Link::Down(_) | Link::Connecting(_)) {
            return; // already recovering
        }
        tracing::info!(reason, "SIP flow lost");
        self.transport.abandon();
        self.flow.keepalive = None;
        self.reg.bound = false;
        self.reg.refresh_at = None;
        // A REGISTER still pending on the old flow must not fail the new one later.
        self.clients
            .retain(|_, t| !matches!(t, ClientTx::NonInvite(_, Purpose::Register)));
        if closed {
            self.emit(Event::TransportClosed {
                reason: reason.to_owned(),
            });
        }
        if self.is_shutting_down() {
            self.flow.link = Link::Closed;
            return;
        }
        self.schedule_reconnect(now, reason);
    }

    fn schedule_reconnect(&mut self, now: Instant, reason: &str) {
        let delay = self.flow.backoff.next_delay(jitter());
        self.flow.link = Link::Down(now + delay);
        self.emit(Event::Reconnecting {
            attempt: self.flow.backoff.attempt(),
            in_secs: (delay.as_secs_f64() * 1000.0).round() / 1000.0,
            reason: reason.to_owned(),
        });
    }

    /// Time for the next attempt: open a new flow in the background.
    pub(crate) fn reconnect_timer(&mut self, now: Instant) {
        let Link::Down(at) = self.flow.link else {
            return;
        };
        if now < at {
            return;
        }
        if self.is_shutting_down() {
            self.flow.link = Link::Closed;
            return;
        }
        let (tx, rx) = oneshot::channel();
        let (kind, server) = (self.cfg.account.transport, self.cfg.account.server);
        let tls = self.tls.clone();
        tokio::spawn(async move {
            let r = Transport::open(kind, server, tls.as_ref()).await;
            let _ = tx.send(r);
        });
        self.flow.link = Link::Connecting(rx);
    }

    /// The attempt ended: on success the new flow replaces the old and we register again.
    pub(crate) fn on_opened(&mut self, now: Instant, r: Opened) {
        match r {
            Ok((transport, incoming)) => {
                tracing::info!(local = %transport.local(), "SIP flow reopened");
                self.transport = transport;
                self.incoming = incoming;
                self.flow.link = Link::Up;
                if self.is_shutting_down() {
                    return;
                }
                if self.cfg.register {
                    // A new server may have new nonces: start the digest exchange afresh.
                    self.reg.reset_auth();
                    self.send_register(now, self.cfg.expires);
                } else {
                    self.flow.backoff.reset();
                }
            }
            Err(_) if self.is_shutting_down() => self.flow.link = Link::Closed,
            Err(e) => self.schedule_reconnect(now, &e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::state::Backoff;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn delays_double_from_one_second_up_to_sixty() {
        let mut b = Backoff::new(secs(1.0), secs(60.0));
        let highs: Vec<Duration> = (0..9).map(|_| b.next_delay(1.0)).collect();
        assert_eq!(
            highs,
            [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0].map(secs)
        );
        assert_eq!(b.attempt(), 9);
        b.reset();
        assert_eq!(b.next_delay(0.0), secs(0.5), "jitter goes down to half");
        assert_eq!(b.next_delay(0.5), secs(1.5));
        assert_eq!(b.attempt(), 2);
        // Far past the bound nothing overflows.
        let mut b = Backoff::new(secs(1.0), secs(60.0));
        for _ in 0..100 {
            assert!(b.next_delay(1.0) <= secs(60.0));
        }
    }

    /// The schedule as a reconnecting user agent lives it, on tokio's paused clock: six
    /// failed attempts with the worst-case jitter take 1+2+4+8+16+32 s, with the best 31.5 s.
    #[tokio::test(start_paused = true)]
    async fn six_attempts_take_between_31_and_63_seconds() {
        for (jit, total) in [(1.0, 63.0), (0.0, 31.5)] {
            let t0 = tokio::time::Instant::now();
            let mut b = Backoff::new(secs(1.0), secs(60.0));
            for _ in 0..6 {
                tokio::time::sleep(b.next_delay(jit)).await;
            }
            assert_eq!(t0.elapsed(), secs(total));
        }
    }

    #[test]
    fn flow_timer_is_read_from_the_200() {
        use cusax_sip_proto::{Limits, SipMessage, parse_datagram};
        let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1\r\n\
                   From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\nCall-ID: c\r\n\
                   CSeq: 1 REGISTER\r\nFlow-Timer: 120\r\nContent-Length: 0\r\n\r\n";
        let Ok(SipMessage::Response(r)) =
            parse_datagram(Bytes::from(raw.to_owned()), &Limits::default())
        else {
            panic!("a response");
        };
        assert_eq!(flow_timer(&r), Some(secs(120.0)));
    }
}
