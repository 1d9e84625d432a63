//! RFC 5626 §4.4.1, §3.5.1 and §4.4.2 (with RFC 5389 §6–§7): flow keep-alives, sans-IO — a
//! CRLFCRLF ping answered by a CRLF pong on TCP/TLS, a STUN Binding request answered by a
//! Binding success response on UDP. A keep-alive left unanswered marks the flow dead.
//!
//! The interval is the registrar's `Flow-Timer` when it sent one, else the RFC 5626 §4.4.1
//! recommendation (120 s for connection-oriented transports, 25 s for UDP), and each interval is
//! drawn between 80 % and 100 % of it so that clients behind one NAT do not synchronise.

use std::time::{Duration, Instant};

use super::stun::stun_binding_request;
use super::transport::TransportKind;

/// RFC 5389 §7.2.1: the first retransmission timeout of a STUN request over UDP.
const STUN_RTO: Duration = Duration::from_millis(500);

/// The keep-alive base interval when the registrar sent no `Flow-Timer` (RFC 5626 §4.4.1).
pub(crate) fn default_interval(kind: TransportKind) -> Duration {
    match kind {
        TransportKind::Udp => Duration::from_secs(25),
        TransportKind::Tcp | TransportKind::Tls => Duration::from_secs(120),
    }
}

/// What the keep-alive wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send these bytes on the flow.
    Send(Vec<u8>),
    /// No answer came in time: the flow is dead.
    Dead,
}

#[derive(Debug, Clone)]
struct Pending {
    /// The STUN transaction id (UDP), or `None` for a CRLF ping.
    tid: Option<[u8; 12]>,
    request: Vec<u8>,
    retransmit_at: Option<Instant>,
    rto: Duration,
    deadline: Instant,
}

/// The keep-alive state of one flow.
#[derive(Debug, Clone)]
pub(crate) struct KeepAlive {
    kind: TransportKind,
    base: Duration,
    answer_timeout: Duration,
    next_ping: Instant,
    pending: Option<Pending>,
}

impl KeepAlive {
    /// Starts keep-alives on a fresh flow: the first goes out one (jittered) interval from now.
    /// `jitter` is a number in [0, 1) choosing where in the 80–100 % window the interval falls.
    pub(crate) fn new(
        kind: TransportKind,
        base: Duration,
        answer_timeout: Duration,
        now: Instant,
        jitter: f64,
    ) -> Self {
        Self {
            kind,
            base,
            answer_timeout,
            next_ping: now + jittered(base, jitter),
            pending: None,
        }
    }

    /// When [`KeepAlive::on_timer`] should run next.
    pub(crate) fn next_timer(&self) -> Instant {
        match &self.pending {
            Some(p) => p.retransmit_at.map_or(p.deadline, |r| r.min(p.deadline)),
            None => self.next_ping,
        }
    }

    /// Sends a ping when one is due, retransmits a STUN request, or declares the flow dead.
    /// `tid` is a fresh random STUN transaction id (used on UDP only), `jitter` as in `new`.
    pub(crate) fn on_timer(&mut self, now: Instant, tid: [u8; 12], jitter: f64) -> Option<Action> {
        if let Some(p) = &mut self.pending {
            if now >= p.deadline {
                self.pending = None;
                return Some(Action::Dead);
            }
            if let Some(at) = p.retransmit_at
                && now >= at
            {
                // RFC 5389 §7.2.1: retransmit with a doubling timeout.
                p.rto *= 2;
                p.retransmit_at = Some(now + p.rto).filter(|t| *t < p.deadline);
                return Some(Action::Send(p.request.clone()));
            }
            return None;
        }
        if now < self.next_ping {
            return None;
        }
        let (tid, request, retransmit_at) = match self.kind {
            TransportKind::Udp => (Some(tid), stun_binding_request(tid), Some(now + STUN_RTO)),
            TransportKind::Tcp | TransportKind::Tls => (None, b"\r\n\r\n".to_vec(), None),
        };
        self.pending = Some(Pending {
            tid,
            request: request.clone(),
            retransmit_at,
            rto: STUN_RTO,
            deadline: now + self.answer_timeout,
        });
        self.next_ping = now + jittered(self.base, jitter);
        Some(Action::Send(request))
    }

    /// A CRLF pong (stream flows) arrived.
    pub(crate) fn on_pong(&mut self) {
        if self.pending.as_ref().is_some_and(|p| p.tid.is_none()) {
            self.pending = None;
        }
    }

    /// A STUN Binding success response arrived; only the one for our request counts.
    pub(crate) fn on_stun_success(&mut self, tid: [u8; 12]) {
        if self.pending.as_ref().is_some_and(|p| p.tid == Some(tid)) {
            self.pending = None;
        }
    }

    /// Whether a keep-alive is waiting for its answer.
    #[cfg(test)]
    fn waiting(&self) -> bool {
        self.pending.is_some()
    }
}

/// An interval between 80 % and 100 % of `base` (RFC 5626 §4.4.1), `jitter` in [0, 1).
pub(crate) fn jittered(base: Duration, jitter: f64) -> Duration {
    base.mul_f64(0.8 + 0.2 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::stun::stun_success;

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn intervals_stay_in_the_80_to_100_percent_window() {
        let base = Duration::from_secs(120);
        assert_eq!(jittered(base, 0.0), Duration::from_secs(96));
        assert_eq!(jittered(base, 1.0), base);
        assert!(jittered(base, 0.5) > Duration::from_secs(96) && jittered(base, 0.5) < base);
        assert_eq!(
            default_interval(TransportKind::Udp),
            Duration::from_secs(25)
        );
        assert_eq!(
            default_interval(TransportKind::Tls),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn stream_ping_answered_by_pong_keeps_the_flow() {
        let t0 = Instant::now();
        let base = Duration::from_secs(100);
        let mut k = KeepAlive::new(TransportKind::Tcp, base, T, t0, 0.0);
        assert_eq!(k.next_timer(), t0 + Duration::from_secs(80));
        assert_eq!(k.on_timer(t0 + Duration::from_secs(79), [0; 12], 0.0), None);
        let t1 = t0 + Duration::from_secs(80);
        assert_eq!(
            k.on_timer(t1, [0; 12], 1.0),
            Some(Action::Send(b"\r\n\r\n".to_vec()))
        );
        assert_eq!(k.next_timer(), t1 + T, "waits for the pong");
        k.on_stun_success([0; 12]);
        assert!(k.waiting(), "a STUN answer is no pong");
        k.on_pong();
        assert!(!k.waiting());
        assert_eq!(k.next_timer(), t1 + base);
    }

    #[test]
    fn a_missing_pong_marks_the_flow_dead() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(TransportKind::Tls, Duration::from_secs(1), T, t0, 1.0);
        let t1 = t0 + Duration::from_secs(1);
        assert!(matches!(
            k.on_timer(t1, [0; 12], 0.0),
            Some(Action::Send(_))
        ));
        assert_eq!(k.on_timer(t1 + T, [0; 12], 0.0), Some(Action::Dead));
    }

    #[test]
    fn stun_requests_are_retransmitted_and_matched_by_transaction_id() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(TransportKind::Udp, Duration::from_secs(25), T, t0, 1.0);
        let t1 = t0 + Duration::from_secs(25);
        let tid = [7u8; 12];
        let Some(Action::Send(req)) = k.on_timer(t1, tid, 0.0) else {
            panic!("a STUN request is due");
        };
        assert!(cusax_sip_proto::stun::is_stun(&req));
        // The server's own encoder answers it; the answer carries our transaction id.
        let resp = cusax_sip_proto::stun::binding_response(&req, ([127, 0, 0, 1], 5).into())
            .expect("a binding request");
        assert_eq!(stun_success(&resp), Some(tid));
        assert_eq!(stun_success(&req), None, "a request is no success response");
        assert_eq!(stun_success(b"SIP/2.0 200 OK\r\n\r\n"), None);
        // Retransmissions at 0.5 s, then 1 s later, …
        assert_eq!(k.next_timer(), t1 + STUN_RTO);
        assert_eq!(
            k.on_timer(t1 + STUN_RTO, tid, 0.0),
            Some(Action::Send(req.clone()))
        );
        assert_eq!(k.next_timer(), t1 + STUN_RTO * 3);
        k.on_stun_success([8; 12]);
        assert!(k.waiting(), "another transaction's answer does not count");
        k.on_stun_success(tid);
        assert!(!k.waiting());
    }
}
