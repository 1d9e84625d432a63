//! RFC 3261 §17: the proxy's two kinds of transaction per side, behind one type each, so
//! that the proxy says what happens ("a timer fired", "send this response") once instead of
//! matching INVITE against non-INVITE at every call.

use bytes::Bytes;
use cusax_sip_proto::transaction::{
    ClientInvite, ClientInviteState, ClientNonInvite, Disposition, Output, ServerInvite,
    ServerNonInvite, TimerConfig,
};
use cusax_sip_proto::{Method, Request, Response};
use std::time::Instant;

/// The sans-IO driving methods both kinds of a side share (timers, output), for an enum with
/// the variants `Invite(x)` and `NonInvite(x)`.
macro_rules! drive_either {
    ($txn:ty) => {
        impl $txn {
            pub(super) fn handle_timeout(&mut self, now: Instant) {
                match self {
                    Self::Invite(x) => x.handle_timeout(now),
                    Self::NonInvite(x) => x.handle_timeout(now),
                }
            }

            pub(super) fn poll_output(&mut self) -> Option<Output> {
                match self {
                    Self::Invite(x) => x.poll_output(),
                    Self::NonInvite(x) => x.poll_output(),
                }
            }

            pub(super) fn poll_timeout(&self) -> Option<Instant> {
                match self {
                    Self::Invite(x) => x.poll_timeout(),
                    Self::NonInvite(x) => x.poll_timeout(),
                }
            }
        }
    };
}

drive_either!(ServerTxn);
drive_either!(ClientTxn);

/// The server transaction of a proxied request.
#[derive(Debug)]
pub(super) enum ServerTxn {
    Invite(Box<ServerInvite>),
    NonInvite(ServerNonInvite),
}

impl ServerTxn {
    /// The transaction for `req` as it arrived over a `reliable` transport or not.
    pub(super) fn new(t: Instant, req: &Request, reliable: bool, timers: TimerConfig) -> Self {
        if req.method() == Method::Invite {
            Self::Invite(Box::new(ServerInvite::new(
                t,
                req.clone(),
                reliable,
                timers,
            )))
        } else {
            Self::NonInvite(ServerNonInvite::new(reliable, timers))
        }
    }

    pub(super) fn is_invite(&self) -> bool {
        matches!(self, Self::Invite(_))
    }

    /// The same request again, or the ACK of a non-2xx final response (§17.2.1, §17.2.2).
    pub(super) fn on_request(&mut self, t: Instant, method: Method) {
        match (self, method) {
            (Self::Invite(x), Method::Ack) => {
                let _ = x.on_ack(t);
            }
            (Self::Invite(x), _) => x.on_invite_retransmission(),
            (Self::NonInvite(x), _) => x.on_request_retransmission(),
        }
    }

    pub(super) fn send_response(&mut self, t: Instant, code: u16, bytes: Bytes) {
        match self {
            Self::Invite(x) => x.send_response(t, code, bytes),
            Self::NonInvite(x) => x.send_response(t, code, bytes),
        }
    }

    /// Sends a response only an INVITE transaction takes (487 after CANCEL, 408 on timer C).
    pub(super) fn send_invite_response(&mut self, t: Instant, code: u16, bytes: Bytes) {
        if let Self::Invite(x) = self {
            x.send_response(t, code, bytes);
        }
    }
}

/// The client transaction of one branch (or of a CANCEL).
#[derive(Debug)]
pub(super) enum ClientTxn {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

impl ClientTxn {
    /// The transaction for the branch `request`, sent over a `reliable` transport or not.
    pub(super) fn new(t: Instant, request: Request, reliable: bool, timers: TimerConfig) -> Self {
        if request.method() == Method::Invite {
            Self::Invite(ClientInvite::new(t, request, reliable, timers))
        } else {
            Self::NonInvite(ClientNonInvite::new(t, request, reliable, timers))
        }
    }

    pub(super) fn on_response(&mut self, t: Instant, resp: &Response) -> Disposition {
        match self {
            Self::Invite(x) => x.on_response(t, resp),
            Self::NonInvite(x) => x.on_response(t, resp.code()),
        }
    }

    pub(super) fn on_transport_error(&mut self) {
        match self {
            Self::Invite(x) => x.on_transport_error(),
            Self::NonInvite(x) => x.on_transport_error(),
        }
    }

    /// An INVITE still without a final answer (Calling or Proceeding).
    pub(super) fn is_unanswered_invite(&self) -> bool {
        match self {
            Self::Invite(x) => matches!(
                x.state(),
                ClientInviteState::Calling | ClientInviteState::Proceeding
            ),
            Self::NonInvite(_) => false,
        }
    }
}
