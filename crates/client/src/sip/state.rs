//! RFC 3261 §17, §10.2, §12 and RFC 5626 §4.4–§4.5: what the user agent task holds per
//! concern — its transactions, its calls, its registration and its flow to the server.
//!
//! Types only: `ua.rs` owns a value of each, and the files that act on them (`call.rs`,
//! `callee.rs`, `register.rs`, `flow.rs`) import them from here, so that imports between the
//! files of the user agent go one way (`ua.rs` never imports the files that extend it).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip_proto::Request;
use cusax_sip_proto::transaction::{ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use super::auth::DigestState;
use super::context::token;
use super::dialog::Dialog;
use super::keepalive::KeepAlive;
use super::transport::{Inbound, OpenError, Transport};
use crate::event::{CallDirection, CallState, Event};
use crate::media::MediaConfig;
use crate::media::sdp::{LocalMedia, Negotiated};

/// What a client transaction is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purpose {
    Register,
    Bye(String),
    Cancel(String),
}

#[derive(Debug)]
pub(crate) enum ClientTx {
    Invite(ClientInvite, String),
    NonInvite(ClientNonInvite, Purpose),
}

#[derive(Debug)]
pub(crate) struct ServerTx {
    pub(crate) peer: SocketAddr,
    pub(crate) kind: ServerKind,
}

#[derive(Debug)]
pub(crate) enum ServerKind {
    Invite(Box<ServerInvite>, String),
    NonInvite(ServerNonInvite),
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Calling,
    Ringing,
    Answered,
    Established,
    /// Over; waiting only for the media task to finish the recording.
    Ending,
}

/// The 2xx a callee retransmits until the ACK comes (§13.3.1.4).
#[derive(Debug)]
pub(super) struct Retransmit {
    pub(super) bytes: Bytes,
    pub(super) next: Instant,
    pub(super) interval: Duration,
    pub(super) give_up: Instant,
}

/// One call, either direction.
#[derive(Debug)]
pub(crate) struct Call {
    pub(super) id: String,
    pub(super) direction: CallDirection,
    pub(super) phase: Phase,
    pub(super) media_cfg: MediaConfig,
    pub(super) rtp: Option<UdpSocket>,
    pub(super) local: LocalMedia,
    pub(super) local_sdp: Vec<u8>,
    pub(super) media_stop: Option<watch::Sender<bool>>,
    /// The outcome of offer/answer, once known.
    pub(super) negotiated: Option<Negotiated>,
    /// The final event, sent when the media task has finished.
    pub(super) final_event: Option<Event>,
    pub(super) dialog: Option<Dialog>,
    // Caller side.
    pub(super) target: String,
    pub(super) from_tag: String,
    pub(super) cseq: u32,
    pub(super) invite: Option<Request>,
    /// Calling anonymously (RFC 3323): From, Privacy and Call-Info follow.
    pub(super) anonymous: bool,
    pub(super) auth: Option<DigestState>,
    pub(super) auth_failures: u8,
    pub(super) provisional: bool,
    /// Hang up as soon as possible: CANCEL on the first provisional, BYE on a 2xx.
    pub(super) cancel_wanted: bool,
    pub(super) cancel_sent: bool,
    /// §9.1: without a final response 64·T1 after the CANCEL, the call is given up.
    pub(super) cancel_deadline: Option<Instant>,
    pub(super) ack: Option<Bytes>,
    // Callee side.
    pub(super) peer: SocketAddr,
    pub(super) ok: Option<Retransmit>,
    pub(super) offer_in_ack: bool,
}

impl Call {
    /// The next callee-side 2xx retransmission.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        let ok = self.ok.as_ref().map(|r| r.next.min(r.give_up));
        ok.into_iter().chain(self.cancel_deadline).min()
    }

    /// Stops the media task, if one runs.
    pub(crate) fn stop_media(&mut self) {
        if let Some(s) = self.media_stop.take() {
            let _ = s.send(true);
        }
    }

    pub(super) fn event(&self, state: CallState) -> Event {
        let mut e = Event::call(&self.id, self.direction, state);
        if state == CallState::Established
            && let (
                Some(n),
                Event::CallState {
                    codec, remote_rtp, ..
                },
            ) = (self.negotiated, &mut e)
        {
            *codec = Some(n.codec);
            *remote_rtp = Some(n.remote.to_string());
        }
        e
    }
}

/// Registration state kept across refreshes (one Call-ID, increasing CSeq, §10.2.4).
#[derive(Debug)]
pub(crate) struct Registration {
    pub(super) call_id: String,
    pub(super) from_tag: String,
    pub(super) cseq: u32,
    pub(super) auth: Option<DigestState>,
    pub(super) auth_failures: u8,
    /// The expiry asked for in the pending request (0 = removal).
    pub(super) asking: u32,
    pub(crate) bound: bool,
    /// When to refresh the binding.
    pub(crate) refresh_at: Option<Instant>,
}

impl Registration {
    pub(crate) fn new(_expires: u32) -> Self {
        Self {
            call_id: format!("{}@cusax", token(10)),
            from_tag: token(6),
            cseq: 0,
            auth: None,
            auth_failures: 0,
            asking: 0,
            bound: false,
            refresh_at: None,
        }
    }

    /// Whether the registrar holds our binding.
    pub(crate) fn is_bound(&self) -> bool {
        self.bound
    }

    /// Forgets the digest state (a reopened flow may reach a restarted server).
    pub(crate) fn reset_auth(&mut self) {
        self.auth = None;
        self.auth_failures = 0;
    }
}

/// Keep-alive and reconnection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowConfig {
    /// Send keep-alives while registered (RFC 5626 §4.4).
    pub keepalive: bool,
    /// The keep-alive interval; `None` takes the registrar's `Flow-Timer`, else the RFC 5626
    /// §4.4.1 recommendation (120 s on TCP/TLS, 25 s on UDP). Each interval is drawn between
    /// 80 % and 100 % of it.
    pub keepalive_interval: Option<Duration>,
    /// How long a ping waits for its pong (RFC 5626 §4.4.1: 10 s) before the flow is dead.
    pub keepalive_timeout: Duration,
    /// The first reconnection delay; it doubles per failure (RFC 5626 §4.5)…
    pub reconnect_min: Duration,
    /// …up to this bound. Each delay is drawn between 50 % and 100 % of the bound reached.
    pub reconnect_max: Duration,
}

impl Default for FlowConfig {
    /// Keep-alives on, interval from the registrar, 10 s pong timeout, reconnection after 1 s
    /// doubling up to 60 s.
    fn default() -> Self {
        Self {
            keepalive: true,
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
        }
    }
}

/// Consecutive failures and the delay before the next attempt.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// Counts one more failure and returns the wait before the next attempt: between half and
    /// all of `min(max, min · 2^(failures − 1))`, `jitter` in [0, 1) choosing where.
    pub(crate) fn next_delay(&mut self, jitter: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(31);
        let bound = self.min.saturating_mul(1 << doublings).min(self.max);
        bound.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The number of the attempt the last delay leads to (1 for the first retry).
    pub(crate) fn attempt(&self) -> u32 {
        self.failures
    }

    /// A working flow: the next failure starts from `min` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

pub(crate) type Opened = Result<(Transport, mpsc::Receiver<Inbound>), OpenError>;

/// Where the flow is.
#[derive(Debug, Default)]
pub(crate) enum Link {
    /// Open; messages flow.
    #[default]
    Up,
    /// Lost; the next attempt starts at this time.
    Down(Instant),
    /// An attempt is under way.
    Connecting(oneshot::Receiver<Opened>),
    /// Lost while shutting down: nothing more is tried.
    Closed,
}

/// The flow state the user agent keeps next to its transport.
#[derive(Debug)]
pub(crate) struct Flow {
    pub(crate) link: Link,
    pub(crate) backoff: Backoff,
    pub(crate) keepalive: Option<KeepAlive>,
}

impl Flow {
    pub(crate) fn new(cfg: &FlowConfig) -> Self {
        Self {
            link: Link::Up,
            backoff: Backoff::new(cfg.reconnect_min, cfg.reconnect_max),
            keepalive: None,
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        matches!(self.link, Link::Up)
    }

    pub(crate) fn is_connecting(&self) -> bool {
        matches!(self.link, Link::Connecting(_))
    }

    /// The next keep-alive or reconnection time.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        match &self.link {
            Link::Up => self.keepalive.as_ref().map(KeepAlive::next_timer),
            Link::Down(at) => Some(*at),
            Link::Connecting(_) | Link::Closed => None,
        }
    }
}

/// Resolves when the pending connection attempt ends (never when there is none).
pub(crate) async fn opened(link: &mut Link) -> Opened {
    match link {
        Link::Connecting(rx) => rx.await.unwrap_or_else(|_| {
            Err(OpenError::Io(std::io::Error::other(
                "the connection attempt was abandoned",
            )))
        }),
        _ => std::future::pending().await,
    }
}
