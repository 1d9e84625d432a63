//! RFC 3261 §17.1.1 with RFC 6026 §8.4: the INVITE client transaction (Accepted state added).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Deadline, earliest};
use super::{Disposition, Outbox, Output, TimerConfig};
use crate::message::{Request, Response, build_ack};

/// States of the INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, no response yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 300–699 arrived and was ACKed; absorbing retransmissions (timer D).
    Completed,
    /// A 2xx arrived; further 2xx go to the TU until timer M (RFC 6026).
    Accepted,
    /// Done.
    Terminated,
}

/// An INVITE client transaction.
#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    request: Request,
    reliable: bool,
    cfg: TimerConfig,
    interval_a: Duration,
    timer_a: Deadline,
    timer_b: Deadline,
    timer_d: Deadline,
    timer_m: Deadline,
    ack: Option<Bytes>,
    out: Outbox,
}

impl ClientInvite {
    /// Starts the transaction: the INVITE is queued for transmission and timers A/B armed.
    pub fn new(now: Instant, request: Request, reliable: bool, cfg: TimerConfig) -> Self {
        let mut t = Self {
            state: ClientInviteState::Calling,
            reliable,
            cfg,
            interval_a: cfg.t1,
            timer_a: Deadline::default(),
            timer_b: Deadline::default(),
            timer_d: Deadline::default(),
            timer_m: Deadline::default(),
            ack: None,
            out: Outbox::default(),
            request,
        };
        t.out.push(Output::Transmit(t.request.bytes().clone()));
        if !reliable {
            t.timer_a.arm(now, cfg.t1);
        }
        t.timer_b.arm(now, cfg.t1x64());
        t
    }

    /// The current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The request this transaction sends (e.g. to build a CANCEL).
    pub fn request(&self) -> &Request {
        &self.request
    }

    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        self.out.push(Output::Terminated);
    }

    /// Feeds a response matched to this transaction.
    pub fn on_response(&mut self, now: Instant, resp: &Response) -> Disposition {
        use ClientInviteState::*;
        let code = resp.code();
        match (self.state, code) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.timer_a.stop();
                self.timer_b.stop();
                Disposition::PassToTu
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.timer_a.stop();
                self.timer_b.stop();
                self.timer_m.arm(now, self.cfg.t1x64());
                Disposition::PassToTu
            }
            (Calling | Proceeding, _) => {
                self.state = Completed;
                self.timer_a.stop();
                self.timer_b.stop();
                self.ack = build_ack(&self.request, resp).map(|b| b.freeze());
                if let Some(ack) = &self.ack {
                    self.out.push(Output::Transmit(ack.clone()));
                }
                self.timer_d.arm(now, self.cfg.timer_d(self.reliable));
                Disposition::PassToTu
            }
            (Completed, 300..) => {
                if let Some(ack) = &self.ack {
                    self.out.push(Output::Transmit(ack.clone()));
                }
                Disposition::Absorb
            }
            (Accepted, 200..=299) => Disposition::PassToTu,
            _ => Disposition::Absorb,
        }
    }

    /// The transport reported a failure: the TU is told through `Timeout`-like termination.
    pub fn on_transport_error(&mut self) {
        if self.state != ClientInviteState::Terminated {
            self.out.push(Output::Timeout);
            self.terminate();
        }
    }

    /// Processes expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_a.fire(now) && self.state == ClientInviteState::Calling {
            self.out
                .push(Output::Transmit(self.request.bytes().clone()));
            self.interval_a *= 2;
            self.timer_a.arm(now, self.interval_a);
        }
        if self.timer_b.fire(now) && self.state == ClientInviteState::Calling {
            self.timer_a.stop();
            self.out.push(Output::Timeout);
            self.terminate();
        }
        if (self.timer_d.fire(now) && self.state == ClientInviteState::Completed)
            || (self.timer_m.fire(now) && self.state == ClientInviteState::Accepted)
        {
            self.terminate();
        }
    }

    /// The next deadline, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_a, self.timer_b, self.timer_d, self.timer_m])
    }

    /// The next action to perform.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }
}
