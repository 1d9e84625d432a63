//! RFC 3261 §17.1.2: the non-INVITE client transaction.

use std::time::{Duration, Instant};

use super::timer::{Deadline, earliest};
use super::{Disposition, Outbox, Output, TimerConfig};
use crate::message::Request;

/// States of the non-INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent, no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions (timer K).
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE client transaction (REGISTER, OPTIONS, BYE, MESSAGE, …).
#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    request: Request,
    reliable: bool,
    cfg: TimerConfig,
    interval_e: Duration,
    timer_e: Deadline,
    timer_f: Deadline,
    timer_k: Deadline,
    out: Outbox,
}

impl ClientNonInvite {
    /// Starts the transaction: the request is queued and timers E/F armed.
    pub fn new(now: Instant, request: Request, reliable: bool, cfg: TimerConfig) -> Self {
        let mut t = Self {
            state: ClientNonInviteState::Trying,
            reliable,
            cfg,
            interval_e: cfg.t1,
            timer_e: Deadline::default(),
            timer_f: Deadline::default(),
            timer_k: Deadline::default(),
            out: Outbox::default(),
            request,
        };
        t.out.push(Output::Transmit(t.request.bytes().clone()));
        if !reliable {
            t.timer_e.arm(now, cfg.t1);
        }
        t.timer_f.arm(now, cfg.t1x64());
        t
    }

    /// The current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        self.timer_e.stop();
        self.timer_f.stop();
        self.out.push(Output::Terminated);
    }

    /// Feeds the status code of a response matched to this transaction.
    pub fn on_response(&mut self, now: Instant, code: u16) -> Disposition {
        use ClientNonInviteState::*;
        match (self.state, code) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                Disposition::PassToTu
            }
            (Trying | Proceeding, _) => {
                self.state = Completed;
                self.timer_e.stop();
                self.timer_f.stop();
                let k = if self.reliable {
                    Duration::ZERO
                } else {
                    self.cfg.t4
                };
                self.timer_k.arm(now, k);
                Disposition::PassToTu
            }
            _ => Disposition::Absorb,
        }
    }

    /// The transport reported a failure.
    pub fn on_transport_error(&mut self) {
        if self.state != ClientNonInviteState::Terminated {
            self.out.push(Output::Timeout);
            self.terminate();
        }
    }

    /// Processes expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ClientNonInviteState::*;
        if self.timer_e.fire(now) && matches!(self.state, Trying | Proceeding) {
            self.out
                .push(Output::Transmit(self.request.bytes().clone()));
            self.interval_e = if self.state == Trying {
                (self.interval_e * 2).min(self.cfg.t2)
            } else {
                self.cfg.t2
            };
            self.timer_e.arm(now, self.interval_e);
        }
        if self.timer_f.fire(now) && matches!(self.state, Trying | Proceeding) {
            self.out.push(Output::Timeout);
            self.terminate();
        }
        if self.timer_k.fire(now) && self.state == Completed {
            self.terminate();
        }
    }

    /// The next deadline, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_e, self.timer_f, self.timer_k])
    }

    /// The next action to perform.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }
}
