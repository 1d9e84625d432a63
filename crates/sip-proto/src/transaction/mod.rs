//! RFC 3261 §17, RFC 6026: the four transaction state machines, sans-IO.
//!
//! Each machine is driven by inputs (`on_response`, `on_request`, `send_response`,
//! `handle_timeout`, all taking `now`) and yields [`Output`]s through `poll_output()`; the
//! caller sleeps until `poll_timeout()`. No machine owns a socket or reads the clock.

mod client_invite;
mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;
mod timer;

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::TransactionKey;
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};
pub use timer::TimerConfig;

use bytes::Bytes;

/// Something the transaction asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to the transaction's peer (request, retransmission, ACK or response).
    Transmit(Bytes),
    /// A timeout timer (B, F or H) fired: tell the TU (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1).
    Timeout,
    /// The transaction is over; remove it from the table.
    Terminated,
}

/// Whether a message handed to a transaction goes up to the TU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Pass the message to the transaction user.
    PassToTu,
    /// The transaction absorbed it (retransmission).
    Absorb,
}

/// The output queue shared by the machines.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: std::collections::VecDeque<Output>,
}

impl Outbox {
    pub(crate) fn push(&mut self, o: Output) {
        self.queue.push_back(o);
    }

    pub(crate) fn pop(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }
}
