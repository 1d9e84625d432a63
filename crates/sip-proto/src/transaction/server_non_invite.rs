//! RFC 3261 §17.2.2: the non-INVITE server transaction.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Deadline, earliest};
use super::{Outbox, Output, TimerConfig};

/// States of the non-INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; answering retransmissions (timer J).
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE server transaction (e.g. the registrar's REGISTER handling).
#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Bytes>,
    timer_j: Deadline,
    out: Outbox,
}

impl ServerNonInvite {
    /// Creates the transaction for a received request.
    pub fn new(reliable: bool, cfg: TimerConfig) -> Self {
        Self {
            state: ServerNonInviteState::Trying,
            reliable,
            cfg,
            last_response: None,
            timer_j: Deadline::default(),
            out: Outbox::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// The TU sends a response with this status code.
    pub fn send_response(&mut self, now: Instant, code: u16, bytes: Bytes) {
        use ServerNonInviteState::*;
        match (self.state, code) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.last_response = Some(bytes.clone());
                self.out.push(Output::Transmit(bytes));
            }
            (Trying | Proceeding, _) => {
                self.state = Completed;
                self.last_response = Some(bytes.clone());
                self.out.push(Output::Transmit(bytes));
                let j = if self.reliable {
                    Duration::ZERO
                } else {
                    self.cfg.t1x64()
                };
                self.timer_j.arm(now, j);
            }
            _ => {}
        }
    }

    /// A retransmission of the request arrived: resend the last response, if any.
    pub fn on_request_retransmission(&mut self) {
        if matches!(
            self.state,
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed
        ) && let Some(r) = &self.last_response
        {
            self.out.push(Output::Transmit(r.clone()));
        }
    }

    /// The transport failed to send a response.
    pub fn on_transport_error(&mut self) {
        if self.state != ServerNonInviteState::Terminated {
            self.state = ServerNonInviteState::Terminated;
            self.out.push(Output::Timeout);
            self.out.push(Output::Terminated);
        }
    }

    /// Processes expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_j.fire(now) && self.state == ServerNonInviteState::Completed {
            self.state = ServerNonInviteState::Terminated;
            self.out.push(Output::Terminated);
        }
    }

    /// The next deadline, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_j])
    }

    /// The next action to perform.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }
}
