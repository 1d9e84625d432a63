//! RFC 3261 §17.2.1 with RFC 6026 §8.5–§8.7: the INVITE server transaction (Accepted state).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Deadline, earliest};
use super::{Disposition, Outbox, Output, TimerConfig};
use crate::message::{Request, ResponseBuilder};

/// States of the INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// INVITE received; provisional responses may be sent.
    Proceeding,
    /// A 300–699 was sent; retransmitting it until ACK (timers G, H).
    Completed,
    /// The ACK arrived; absorbing ACK retransmissions (timer I).
    Confirmed,
    /// A 2xx was sent; the TU retransmits it, ACKs go to the TU (timer L, RFC 6026).
    Accepted,
    /// Done.
    Terminated,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    request: Request,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Bytes>,
    interval_g: Duration,
    timer_trying: Deadline,
    timer_g: Deadline,
    timer_h: Deadline,
    timer_i: Deadline,
    timer_l: Deadline,
    out: Outbox,
}

impl ServerInvite {
    /// Creates the transaction for a received INVITE. If the TU sends nothing within 200 ms,
    /// a `100 Trying` is generated (§17.2.1).
    pub fn new(now: Instant, request: Request, reliable: bool, cfg: TimerConfig) -> Self {
        let mut t = Self {
            state: ServerInviteState::Proceeding,
            request,
            reliable,
            cfg,
            last_response: None,
            interval_g: cfg.t1,
            timer_trying: Deadline::default(),
            timer_g: Deadline::default(),
            timer_h: Deadline::default(),
            timer_i: Deadline::default(),
            timer_l: Deadline::default(),
            out: Outbox::default(),
        };
        t.timer_trying.arm(now, Duration::from_millis(200));
        t
    }

    /// The current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// The INVITE that created the transaction.
    pub fn request(&self) -> &Request {
        &self.request
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.out.push(Output::Terminated);
    }

    /// The TU sends a response with this status code (the bytes are transmitted as given).
    pub fn send_response(&mut self, now: Instant, code: u16, bytes: Bytes) {
        use ServerInviteState::*;
        self.timer_trying.stop();
        match (self.state, code) {
            (Proceeding, 100..=199) => {
                self.last_response = Some(bytes.clone());
                self.out.push(Output::Transmit(bytes));
            }
            (Proceeding, 200..=299) => {
                self.state = Accepted;
                self.out.push(Output::Transmit(bytes));
                self.timer_l.arm(now, self.cfg.t1x64());
            }
            (Proceeding, _) => {
                self.state = Completed;
                self.last_response = Some(bytes.clone());
                self.out.push(Output::Transmit(bytes));
                if !self.reliable {
                    self.timer_g.arm(now, self.cfg.t1);
                }
                self.timer_h.arm(now, self.cfg.t1x64());
            }
            // RFC 6026 §8.7: 2xx retransmissions from the TU in Accepted are sent.
            (Accepted, 200..=299) => self.out.push(Output::Transmit(bytes)),
            _ => {}
        }
    }

    /// A retransmission of the INVITE arrived.
    pub fn on_invite_retransmission(&mut self) {
        if matches!(
            self.state,
            ServerInviteState::Proceeding | ServerInviteState::Completed
        ) && let Some(r) = &self.last_response
        {
            self.out.push(Output::Transmit(r.clone()));
        }
    }

    /// An ACK matched this transaction; in Accepted it goes to the TU (RFC 6026 §8.7).
    pub fn on_ack(&mut self, now: Instant) -> Disposition {
        match self.state {
            ServerInviteState::Completed => {
                self.state = ServerInviteState::Confirmed;
                self.timer_g.stop();
                self.timer_h.stop();
                let i = if self.reliable {
                    Duration::ZERO
                } else {
                    self.cfg.t4
                };
                self.timer_i.arm(now, i);
                Disposition::Absorb
            }
            ServerInviteState::Accepted => Disposition::PassToTu,
            _ => Disposition::Absorb,
        }
    }

    /// The transport failed to send a response.
    pub fn on_transport_error(&mut self) {
        if self.state != ServerInviteState::Terminated {
            self.out.push(Output::Timeout);
            self.terminate();
        }
    }

    /// Processes expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ServerInviteState::*;
        if self.timer_trying.fire(now) && self.state == Proceeding && self.last_response.is_none() {
            let trying = ResponseBuilder::new(&self.request, 100, "Trying")
                .build()
                .freeze();
            self.last_response = Some(trying.clone());
            self.out.push(Output::Transmit(trying));
        }
        if self.timer_g.fire(now) && self.state == Completed {
            if let Some(r) = &self.last_response {
                self.out.push(Output::Transmit(r.clone()));
            }
            self.interval_g = (self.interval_g * 2).min(self.cfg.t2);
            self.timer_g.arm(now, self.interval_g);
        }
        if self.timer_h.fire(now) && self.state == Completed {
            self.timer_g.stop();
            self.out.push(Output::Timeout);
            self.terminate();
        }
        if (self.timer_i.fire(now) && self.state == Confirmed)
            || (self.timer_l.fire(now) && self.state == Accepted)
        {
            self.terminate();
        }
    }

    /// The next deadline, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[
            self.timer_trying,
            self.timer_g,
            self.timer_h,
            self.timer_i,
            self.timer_l,
        ])
    }

    /// The next action to perform.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }
}
