//! RFC 3261 §8 and §17: the user agent core — one tokio task owns the transport, the
//! transactions, the registration and the calls, and is driven by received messages,
//! commands from [`UserAgent`] handles and timers. Transactions are the sans-IO machines of
//! `cusax-sip-proto`; what they ask to transmit is collected and sent after each step.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip_proto::transaction::{
    ClientInvite, ClientNonInvite, Output, TimerConfig, TransactionKey,
};
use cusax_sip_proto::{Limits, Request, SipMessage, parse_datagram};
use tokio::sync::{mpsc, oneshot};

use super::auth::Secret;
use super::context::{CallOptions, UaError};
use super::state::{Call, ClientTx, Flow, FlowConfig, Purpose, Registration, ServerKind, ServerTx};
use super::transport::{Inbound, Incoming, TlsTarget, Transport, TransportKind};
use crate::event::Event;
use crate::media::audio::AudioError;
use crate::media::{AudioSource, Codec, MediaConfig, MediaStats};
use crate::tls::TrustConfig;

/// How long shutting down waits for BYE/CANCEL/un-REGISTER answers and recordings.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One SIP account: who we are and where the server is.
#[derive(Debug, Clone)]
pub struct Account {
    /// The user part of the address of record.
    pub user: String,
    /// The domain (realm) of the address of record.
    pub domain: String,
    /// An optional display name for From.
    pub display_name: Option<String>,
    /// Digest username and password.
    pub secret: Secret,
    /// The server (registrar and outbound proxy) every request goes to.
    pub server: SocketAddr,
    /// UDP, TCP or TLS.
    pub transport: TransportKind,
    /// The bare JID announced as `Call-Info: <xmpp:…>;purpose=impp` on calls (RFC 7081 §6);
    /// `None` for anonymous calls.
    pub impp: Option<String>,
}

impl Account {
    /// `sip:user@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }
}

/// How the user agent behaves.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// The account.
    pub account: Account,
    /// Register at start (and keep the binding refreshed); off for a one-shot call.
    pub register: bool,
    /// Requested registration lifetime in seconds.
    pub expires: u32,
    /// Answer incoming calls at once (180 then 200); otherwise they are refused with 486.
    pub auto_answer: bool,
    /// What answered calls send.
    pub answer_source: AudioSource,
    /// Where answered calls are recorded, one WAV file per call.
    pub record_dir: Option<PathBuf>,
    /// Codecs in preference order.
    pub codecs: Vec<Codec>,
    /// SIP timer base values.
    pub timers: TimerConfig,
    /// Which server certificates a TLS flow accepts (RFC 3261 §26.3.1).
    pub tls: TrustConfig,
    /// The name the server's certificate must carry (and the SNI); default: the account's
    /// domain, as RFC 5922 §4 has a `sip:` domain certificate name it.
    pub tls_server_name: Option<String>,
    /// Call anonymously by default (RFC 3323 `Privacy: id`, CUSAX CL-23); see
    /// [`CallOptions`] for one call.
    pub anonymous: bool,
    /// Also send the legacy `Contact: <xmpp:JID>` header on calls (CUSAX CL-24; off: the
    /// `Call-Info … purpose=impp` of RFC 7081 §6 is what peers read).
    pub legacy_xmpp_contact: bool,
    /// Keep-alives and reconnection (RFC 5626, RFC 7081 §2).
    pub flow: FlowConfig,
}

impl UaConfig {
    /// Defaults for an account: no registration, 300 s expiry, PCMU then PCMA, refusal of
    /// incoming calls, RFC 3261 timers.
    pub fn new(account: Account) -> Self {
        Self {
            account,
            register: false,
            expires: 300,
            auto_answer: false,
            answer_source: AudioSource::Silence,
            record_dir: None,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            timers: TimerConfig::default(),
            tls: TrustConfig::default(),
            tls_server_name: None,
            anonymous: false,
            legacy_xmpp_contact: false,
            flow: FlowConfig::default(),
        }
    }

    /// The TLS parameters of a TLS account (`None` for UDP and TCP).
    fn tls_target(&self) -> Result<Option<TlsTarget>, UaError> {
        if self.account.transport != TransportKind::Tls {
            return Ok(None);
        }
        let name = self
            .tls_server_name
            .clone()
            .unwrap_or_else(|| self.account.domain.clone());
        let server_name = rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|_| UaError::BadServerName(name))?;
        Ok(Some(TlsTarget {
            config: self.tls.client_config()?,
            name: server_name,
        }))
    }
}

#[derive(Debug)]
enum Command {
    Call {
        target: String,
        media: MediaConfig,
        options: CallOptions,
        reply: oneshot::Sender<Result<String, UaError>>,
    },
    Hangup {
        call_id: String,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A handle on a running user agent; cheap to clone.
#[derive(Debug, Clone)]
pub struct UserAgent {
    commands: mpsc::Sender<Command>,
    anonymous: bool,
}

impl UserAgent {
    /// Opens the transport and starts the user agent task (registering if configured).
    /// Events arrive on the returned receiver until the task ends.
    /// A TLS flow whose server certificate is not trusted fails here with
    /// [`UaError::Connect`], before anything is sent.
    pub async fn start(cfg: UaConfig) -> Result<(Self, mpsc::UnboundedReceiver<Event>), UaError> {
        let tls = cfg.tls_target()?;
        let (transport, incoming) =
            Transport::open(cfg.account.transport, cfg.account.server, tls.as_ref()).await?;
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let actor = Actor {
            reg: Registration::new(cfg.expires),
            flow: Flow::new(&cfg.flow),
            tls,
            cfg,
            transport,
            incoming,
            commands: cmd_rx,
            events: ev_tx,
            media_done_tx: done_tx,
            media_done: done_rx,
            clients: HashMap::new(),
            servers: HashMap::new(),
            calls: HashMap::new(),
            outbox: Vec::new(),
            shutdown: None,
            calls_answered: 0,
        };
        let anonymous = actor.cfg.anonymous;
        tokio::spawn(actor.run());
        Ok((
            Self {
                commands: cmd_tx,
                anonymous,
            },
            ev_rx,
        ))
    }

    /// Calls `target` (`sip:user@host`, or `user@host`); returns the Call-ID at once, the
    /// progress comes as events.
    pub async fn call(&self, target: &str, media: MediaConfig) -> Result<String, UaError> {
        self.call_with(target, media, None).await
    }

    /// As [`UserAgent::call`], with options for this call (`None`: the configured defaults).
    pub async fn call_with(
        &self,
        target: &str,
        media: MediaConfig,
        options: Option<CallOptions>,
    ) -> Result<String, UaError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Call {
                target: target.to_owned(),
                media,
                options: options.unwrap_or(CallOptions {
                    anonymous: self.anonymous,
                }),
                reply,
            })
            .await
            .map_err(|_| UaError::Stopped)?;
        rx.await.map_err(|_| UaError::Stopped)?
    }

    /// Ends a call: CANCEL before it is answered, BYE after.
    pub async fn hangup(&self, call_id: &str) {
        let _ = self
            .commands
            .send(Command::Hangup {
                call_id: call_id.to_owned(),
            })
            .await;
    }

    /// Hangs up every call, removes the registration, waits (bounded) for the answers and the
    /// recordings, and stops the task.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

#[derive(Debug)]
struct Shutdown {
    reply: Option<oneshot::Sender<()>>,
    deadline: Instant,
}

/// The user agent task's state.
#[derive(Debug)]
pub(crate) struct Actor {
    pub(crate) cfg: UaConfig,
    pub(crate) transport: Transport,
    pub(crate) incoming: mpsc::Receiver<Inbound>,
    /// The TLS parameters, kept for reconnecting.
    pub(crate) tls: Option<TlsTarget>,
    pub(crate) flow: Flow,
    commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    pub(crate) media_done_tx: mpsc::UnboundedSender<(String, Result<MediaStats, AudioError>)>,
    media_done: mpsc::UnboundedReceiver<(String, Result<MediaStats, AudioError>)>,
    pub(crate) clients: HashMap<TransactionKey, ClientTx>,
    pub(crate) servers: HashMap<TransactionKey, ServerTx>,
    pub(crate) calls: HashMap<String, Call>,
    pub(crate) reg: Registration,
    outbox: Vec<(SocketAddr, Bytes)>,
    shutdown: Option<Shutdown>,
    pub(crate) calls_answered: u32,
}

/// The current time on tokio's clock (so paused-time tests drive the timers).
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Actor {
    async fn run(mut self) {
        if self.cfg.register {
            self.send_register(now(), self.cfg.expires);
        }
        loop {
            self.pump(now());
            self.flush().await;
            if self.finished() {
                break;
            }
            let deadline = tokio::time::Instant::from_std(self.next_deadline());
            tokio::select! {
                m = self.incoming.recv(), if self.flow.is_up() => match m {
                    Some(m) => self.on_inbound(now(), m),
                    None => self.flow_failed(now(), "connection closed", true),
                },
                r = super::state::opened(&mut self.flow.link), if self.flow.is_connecting() => {
                    self.on_opened(now(), r);
                }
                c = self.commands.recv(), if self.shutdown.is_none() => match c {
                    Some(c) => self.on_command(now(), c),
                    None => self.begin_shutdown(now(), None),
                },
                Some((id, r)) = self.media_done.recv() => self.on_media_done(&id, r),
                _ = tokio::time::sleep_until(deadline) => self.on_timer(now()),
            }
        }
        for call in self.calls.values_mut() {
            call.stop_media();
        }
        if let Some(reply) = self.shutdown.and_then(|s| s.reply) {
            let _ = reply.send(());
        }
    }

    fn on_command(&mut self, now: Instant, c: Command) {
        match c {
            Command::Call {
                target,
                media,
                options,
                reply,
            } => {
                let r = self.start_call(now, &target, media, options);
                let _ = reply.send(r);
            }
            Command::Hangup { call_id } => self.hangup(now, &call_id),
            Command::Shutdown { reply } => self.begin_shutdown(now, Some(reply)),
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    fn begin_shutdown(&mut self, now: Instant, reply: Option<oneshot::Sender<()>>) {
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            self.hangup(now, &id);
        }
        if self.reg.is_bound() {
            self.send_register(now, 0);
        }
        self.shutdown = Some(Shutdown {
            reply,
            deadline: now + SHUTDOWN_GRACE,
        });
    }

    /// Shutting down and nothing left to wait for (or the grace period is over).
    fn finished(&self) -> bool {
        let Some(s) = &self.shutdown else {
            return false;
        };
        let pending_client = self.clients.values().any(|t| match t {
            ClientTx::Invite(t, _) => matches!(
                t.state(),
                cusax_sip_proto::transaction::ClientInviteState::Calling
                    | cusax_sip_proto::transaction::ClientInviteState::Proceeding
            ),
            ClientTx::NonInvite(t, _) => matches!(
                t.state(),
                cusax_sip_proto::transaction::ClientNonInviteState::Trying
                    | cusax_sip_proto::transaction::ClientNonInviteState::Proceeding
            ),
        });
        (!pending_client && self.calls.is_empty()) || now() >= s.deadline
    }

    fn next_deadline(&self) -> Instant {
        let far = now() + Duration::from_secs(3600);
        let tx = self
            .clients
            .values()
            .filter_map(|t| match t {
                ClientTx::Invite(t, _) => t.poll_timeout(),
                ClientTx::NonInvite(t, _) => t.poll_timeout(),
            })
            .chain(self.servers.values().filter_map(|t| match &t.kind {
                ServerKind::Invite(t, _) => t.poll_timeout(),
                ServerKind::NonInvite(t) => t.poll_timeout(),
            }));
        let calls = self.calls.values().filter_map(Call::next_timer);
        tx.chain(calls)
            .chain(self.reg.refresh_at)
            .chain(self.flow.next_timer())
            .chain(self.shutdown.as_ref().map(|s| s.deadline))
            .min()
            .unwrap_or(far)
            .min(far)
    }

    fn on_timer(&mut self, now: Instant) {
        if self.reg.refresh_at.is_some_and(|t| t <= now) && self.shutdown.is_none() {
            self.reg.refresh_at = None;
            self.send_register(now, self.cfg.expires);
        }
        self.call_timers(now);
        self.keepalive_timer(now);
        self.reconnect_timer(now);
    }

    /// Queues a message for sending.
    pub(crate) fn send(&mut self, to: SocketAddr, bytes: Bytes) {
        self.outbox.push((to, bytes));
    }

    async fn flush(&mut self) {
        let mut broken = None;
        for (to, bytes) in std::mem::take(&mut self.outbox) {
            if let Err(e) = self.transport.send(to, &bytes).await
                && self.flow.is_up()
            {
                tracing::warn!(%to, error = %e, "send failed");
                broken = Some(e);
            }
        }
        // A connection that cannot be written to is lost (UDP errors are transient).
        if let Some(e) = broken
            && self.transport.kind().reliable()
        {
            self.flow_failed(now(), &format!("send failed: {e}"), true);
        }
    }

    /// Starts a client transaction for a request we built; its first transmission is queued.
    pub(crate) fn start_client(
        &mut self,
        now: Instant,
        bytes: Bytes,
        purpose: Option<Purpose>,
        call: Option<&str>,
    ) -> Option<(TransactionKey, Request)> {
        let Ok(SipMessage::Request(req)) = parse_datagram(bytes, &Limits::default()) else {
            tracing::error!("built an unparsable request");
            return None;
        };
        let key = TransactionKey::client(&req)?;
        let reliable = self.transport.kind().reliable();
        let tx = match (purpose, call) {
            (Some(p), _) => ClientTx::NonInvite(
                ClientNonInvite::new(now, req.clone(), reliable, self.cfg.timers),
                p,
            ),
            (None, Some(id)) => ClientTx::Invite(
                ClientInvite::new(now, req.clone(), reliable, self.cfg.timers),
                id.to_owned(),
            ),
            (None, None) => return None,
        };
        self.clients.insert(key.clone(), tx);
        Some((key, req))
    }

    /// Drains every transaction's outputs until nothing new comes, acting on timeouts.
    fn pump(&mut self, now: Instant) {
        loop {
            let server = self.transport.server();
            let mut sends = Vec::new();
            let mut timeouts = Vec::new();
            let mut done = Vec::new();
            for (key, t) in &mut self.clients {
                let mut out = Vec::new();
                match t {
                    ClientTx::Invite(t, _) => {
                        t.handle_timeout(now);
                        while let Some(o) = t.poll_output() {
                            out.push(o);
                        }
                    }
                    ClientTx::NonInvite(t, _) => {
                        t.handle_timeout(now);
                        while let Some(o) = t.poll_output() {
                            out.push(o);
                        }
                    }
                }
                for o in out {
                    match o {
                        Output::Transmit(b) => sends.push((server, b)),
                        Output::Timeout => timeouts.push(match t {
                            ClientTx::Invite(_, id) => (None, Some(id.clone())),
                            ClientTx::NonInvite(_, p) => (Some(p.clone()), None),
                        }),
                        Output::Terminated => done.push(key.clone()),
                    }
                }
            }
            for k in done.drain(..) {
                self.clients.remove(&k);
            }
            let mut server_done = Vec::new();
            for (key, t) in &mut self.servers {
                let mut out = Vec::new();
                match &mut t.kind {
                    ServerKind::Invite(s, _) => {
                        s.handle_timeout(now);
                        while let Some(o) = s.poll_output() {
                            out.push(o);
                        }
                    }
                    ServerKind::NonInvite(s) => {
                        s.handle_timeout(now);
                        while let Some(o) = s.poll_output() {
                            out.push(o);
                        }
                    }
                }
                for o in out {
                    match o {
                        Output::Transmit(b) => sends.push((t.peer, b)),
                        Output::Timeout | Output::Terminated => server_done.push(key.clone()),
                    }
                }
            }
            for k in server_done {
                self.servers.remove(&k);
            }
            if sends.is_empty() && timeouts.is_empty() {
                return;
            }
            self.outbox.extend(sends);
            for t in timeouts {
                match t {
                    (Some(Purpose::Register), _) => self.on_register_timeout(now),
                    (Some(Purpose::Bye(_) | Purpose::Cancel(_)), _) => {}
                    (None, Some(id)) => self.on_invite_timeout(&id),
                    (None, None) => {}
                }
            }
        }
    }

    pub(crate) fn on_message(&mut self, now: Instant, m: Incoming) {
        match m.msg {
            SipMessage::Response(resp) => {
                let Some(key) = TransactionKey::for_response(&resp) else {
                    return;
                };
                let Some(tx) = self.clients.get_mut(&key) else {
                    // A 2xx retransmission after the INVITE transaction ended: ACK it again.
                    self.on_stray_response(&resp);
                    return;
                };
                use cusax_sip_proto::transaction::Disposition;
                match tx {
                    ClientTx::Invite(t, id) => {
                        if t.on_response(now, &resp) == Disposition::PassToTu {
                            let id = id.clone();
                            self.on_invite_response(now, &id, &resp);
                        }
                    }
                    ClientTx::NonInvite(t, p) => {
                        if t.on_response(now, resp.code()) == Disposition::PassToTu {
                            let p = p.clone();
                            match p {
                                Purpose::Register => self.on_register_response(now, &resp),
                                Purpose::Bye(_) | Purpose::Cancel(_) => {}
                            }
                        }
                    }
                }
            }
            SipMessage::Request(req) => {
                if req.validate().is_err() {
                    return; // RFC 3261 §8.2: a request this broken is not answered by a UA
                }
                self.on_request(now, req, m.from);
            }
        }
    }
}
