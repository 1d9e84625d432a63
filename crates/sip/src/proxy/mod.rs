//! RFC 3261 §16: the transaction-stateful proxy — request validation, route processing,
//! target determination, forking, response context and CANCEL — with the CUSAX call policies
//! of RFC 7081 §3.3 and §3.5 (Call-Info `impp` stamping, SIP presence/IM refused).
//!
//! The proxy is sans-IO like the layers below it: requests and responses go in with the peer
//! they came from, and what comes out is a list of [`Send`]s (bytes plus a [`Dest`]) for the
//! server's transports; [`crate::SipCore::tick`] drives the transaction timers. All transaction
//! state sits behind one mutex, taken once per message.
//!
//! Choices the RFC leaves open, made here:
//! - Requests whose From names a served domain must authenticate (407, Proxy-Authorization
//!   against the same stored HA1 as REGISTER), and the From AOR must belong to the account.
//!   Requests from other domains are accepted only for local users (no open relay, 403).
//! - In-dialog requests (a To tag) and requests with a Route beyond this proxy are routed
//!   without authentication, as Record-Route set them up.
//! - The Record-Route URI carries the From tag of the dialog-creating request (`ftag`) and the
//!   flows of both legs (`cxc` caller side, `cxe` callee side), so in-dialog requests reach a
//!   client behind NAT or on a TCP connection without a reverse lookup of its Contact.
//! - CANCEL is answered 200 and the original INVITE 487 at once; branches are cancelled
//!   downstream (a branch without a provisional answer is cancelled when one arrives).

mod forward;
mod route;
mod state;
mod table;
mod target;
#[cfg(test)]
mod tests;
mod txn;

use crate::accounts::Accounts;
use crate::auth::Auth;
use crate::calls::Calls;
use crate::context::Context;
use crate::registrar::Registrar;
use crate::types::{Outcome, Peer, Transport};
use bytes::Bytes;
use cusax_sip_proto::message::uri::{Scheme, Uri};
use cusax_sip_proto::message::{HeaderKind, Limits, build_cancel};
use cusax_sip_proto::transaction::{Disposition, Output, TransactionKey};
use cusax_sip_proto::{Method, Request, Response, SipMessage, parse_datagram};
use forward::{BRANCH_PREFIX, Plan};
use state::{
    Branch, BranchState, ClientEntry, Forwarding, MAX_SERVER_TRANSACTIONS, ServerEntry, TIMER_C,
    TimerRef,
};
use std::cmp::Reverse;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use txn::{ClientTxn, ServerTxn};

pub use state::ProxyState;

pub use crate::types::{Dest, NextHop, Send};

/// Limits for re-parsing our own forwarded messages: they may be a little larger than what
/// was received, never larger than this.
fn own_limits() -> Limits {
    Limits {
        max_message_bytes: 1 << 20,
        ..Limits::default()
    }
}

fn parse_own(bytes: Bytes) -> Option<Request> {
    match parse_datagram(bytes, &own_limits()).ok()? {
        SipMessage::Request(r) => Some(r),
        SipMessage::Response(_) => None,
    }
}

/// Lower is better (RFC 3261 §16.7 step 6): 6xx, then 3xx, 4xx, 5xx; 408 from a silent
/// branch loses against any real answer of its class.
fn rank(code: u16) -> (u8, u8) {
    let class = match code / 100 {
        6 => 0,
        2 => 0,
        3 => 1,
        4 => 2,
        _ => 3,
    };
    (class, u8::from(code == 408 || code == 503))
}

/// The transaction-stateful proxy: its transactions and the calls it saw confirmed.
#[derive(Debug)]
pub(crate) struct Proxy {
    ctx: Arc<Context>,
    auth: Arc<Auth>,
    accounts: Arc<Accounts>,
    state: Mutex<ProxyState>,
    calls: Calls,
}

impl Proxy {
    pub(crate) fn new(
        ctx: Arc<Context>,
        auth: Arc<Auth>,
        accounts: Arc<Accounts>,
        secret: [u8; 32],
    ) -> Self {
        Self {
            ctx,
            auth,
            accounts,
            state: Mutex::new(ProxyState::new(secret)),
            calls: Calls::new(),
        }
    }

    /// Calls in progress and their events.
    pub(crate) fn calls(&self) -> &Calls {
        &self.calls
    }

    /// Publishes call states on `bus` from now on.
    pub(crate) fn set_bus(&mut self, bus: Arc<dyn cusax_bus::Bus>) {
        self.calls.set_bus(bus);
    }

    fn lock_proxy(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        // Every critical section leaves the tables consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The earliest transaction timer, for the server's timer task.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.lock_proxy().timers.peek().map(|t| t.0.at)
    }

    /// Transaction counts (server, client).
    pub(crate) fn transaction_counts(&self) -> (usize, usize) {
        self.lock_proxy().transactions()
    }

    /// Fires due transaction timers: retransmissions, timeouts, clean-up.
    pub(crate) fn tick(&self, now: Instant) -> Vec<Send> {
        let mut out = Vec::new();
        let mut st = self.lock_proxy();
        while st.timers.peek().is_some_and(|t| t.0.at <= now) {
            let Some(Reverse(t)) = st.timers.pop() else {
                break;
            };
            match t.what {
                TimerRef::Server(key) => {
                    if let Some(e) = st.servers.get_mut(&key) {
                        e.txn.handle_timeout(now);
                        self.drain_server(&mut st, &key, now, &mut out);
                    }
                }
                TimerRef::Client(key) => {
                    if let Some(e) = st.clients.get_mut(&key) {
                        e.txn.handle_timeout(now);
                        self.drain_client(&mut st, &key, now, &mut out);
                    }
                }
                TimerRef::TimerC(key) => self.timer_c(&mut st, &key, now, &mut out),
                TimerRef::Reap(key) => {
                    let stuck = st
                        .clients
                        .get(&key)
                        .is_some_and(|c| c.txn.is_unanswered_invite());
                    if stuck {
                        st.clients.remove(&key);
                    }
                }
            }
        }
        out
    }

    /// Sends what a server transaction queued; removes it when terminated.
    fn drain_server(
        &self,
        st: &mut ProxyState,
        key: &TransactionKey,
        now: Instant,
        out: &mut Vec<Send>,
    ) {
        let Some(e) = st.servers.get_mut(key) else {
            return;
        };
        let mut terminated = false;
        loop {
            let o = e.txn.poll_output();
            match o {
                Some(Output::Transmit(b)) => out.push(Send {
                    dest: e.reply.clone(),
                    bytes: b,
                }),
                Some(Output::Timeout) => {
                    tracing::debug!("sip/proxy: no ACK for a final response");
                }
                Some(Output::Terminated) => terminated = true,
                None => break,
            }
        }
        let next = e.txn.poll_timeout();
        if terminated {
            if let Some(gone) = st.servers.remove(key) {
                // A branch still waiting for its final answer (usually the 487 to our CANCEL,
                // which must still be ACKed) has no timer of its own in Proceeding: it gets
                // 64·T1 more, then it is dropped (a phone that ignored the CANCEL).
                let reap = now + self.ctx.cfg.proxy.timers.t1x64();
                for b in gone.fwd.branches {
                    if st.clients.contains_key(&b.key) {
                        st.arm(Some(reap), TimerRef::Reap(b.key));
                    }
                }
            }
        } else if next.is_some_and(|t| t <= now) {
            // Zero-length timers (reliable transports) fire at once.
            e.txn.handle_timeout(now);
            self.drain_server(st, key, now, out);
        } else {
            st.arm(next, TimerRef::Server(key.clone()));
        }
    }

    /// Sends what a client transaction queued; a timeout becomes a 408 for its branch.
    fn drain_client(
        &self,
        st: &mut ProxyState,
        key: &TransactionKey,
        now: Instant,
        out: &mut Vec<Send>,
    ) {
        let Some(e) = st.clients.get_mut(key) else {
            return;
        };
        let mut terminated = false;
        let mut timed_out = false;
        loop {
            let o = e.txn.poll_output();
            match o {
                Some(Output::Transmit(b)) => out.push(Send {
                    dest: e.dest.clone(),
                    bytes: b,
                }),
                Some(Output::Timeout) => timed_out = !e.is_cancel,
                Some(Output::Terminated) => terminated = true,
                None => break,
            }
        }
        let server = e.server.clone();
        let next = e.txn.poll_timeout();
        if terminated {
            st.clients.remove(key);
        } else if next.is_some_and(|t| t <= now) {
            e.txn.handle_timeout(now);
            self.drain_client(st, key, now, out);
        } else {
            st.arm(next, TimerRef::Client(key.clone()));
        }
        if timed_out {
            self.branch_final(st, &server, key, 408, None, now, out);
        }
    }

    /// A transport could not deliver to `dest` (connection refused, flow gone): every client
    /// transaction towards it fails now instead of at timer B/F (RFC 3261 §16.7 step 9).
    pub(crate) fn transport_failed(&self, dest: &Dest) -> Vec<Send> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut st = self.lock_proxy();
        let keys: Vec<TransactionKey> = st
            .clients
            .iter()
            .filter(|(_, e)| &e.dest == dest)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(e) = st.clients.get_mut(&k) {
                e.txn.on_transport_error();
            }
            self.drain_client(&mut st, &k, now, &mut out);
        }
        out
    }

    /// The request pipeline of §16.3–§16.6 for everything but REGISTER.
    pub(crate) fn request(&self, reg: &Registrar, now: i64, req: &Request, peer: &Peer) -> Outcome {
        let t = Instant::now();
        // Retransmissions and the ACK of a non-2xx final response belong to a transaction.
        if let Some(key) = TransactionKey::server(req) {
            let mut st = self.lock_proxy();
            if let Some(e) = st.servers.get_mut(&key) {
                e.txn.on_request(t, req.method());
                let mut out = Vec::new();
                self.drain_server(&mut st, &key, t, &mut out);
                return Outcome::Send(out);
            }
        }
        match req.method() {
            Method::Ack => return self.forward_ack(req, peer),
            Method::Cancel => return self.cancel(req, peer, t),
            _ => {}
        }
        if let Some(tag) = req.option_tags(HeaderKind::ProxyRequire).next() {
            return Outcome::Respond(
                self.ctx
                    .response(req, peer, 420, "Bad Extension")
                    .header("Unsupported", tag)
                    .build(),
            );
        }
        let routing = match route::route_info(&self.ctx, req) {
            Ok(r) => r,
            Err(o) => return self.ctx.simple(req, peer, o.0, o.1),
        };
        if routing.in_dialog() {
            return self.forward_in_dialog(req, peer, &routing, t);
        }
        if routing.foreign_dialog() {
            // As Kamailio's default route: an in-dialog request without our Route is answered
            // here, never relayed; an initial request with a pre-loaded Route goes through the
            // initial checks (authentication, relaying policy) like any other.
            return if self.ctx.is_local_ruri(req) {
                self.ctx
                    .simple(req, peer, 481, "Call/Transaction Does Not Exist")
            } else {
                self.ctx.simple(req, peer, 404, "Not Here")
            };
        }
        self.forward_initial(reg, now, req, peer, &routing, t)
    }

    /// Creates the server transaction and the branches for `targets`, and sends.
    #[allow(clippy::too_many_arguments)]
    fn start_forwarding(
        &self,
        req: &Request,
        peer: &Peer,
        plan: forward::Plan,
        mut groups: VecDeque<Vec<target::Target>>,
        t: Instant,
    ) -> Outcome {
        let Some(key) = TransactionKey::server(req) else {
            return self.ctx.simple(req, peer, 400, "Malformed Via");
        };
        let reliable = peer.transport.is_reliable();
        let timers = self.ctx.cfg.proxy.timers;
        let invite = req.method() == Method::Invite;
        let mut txn = ServerTxn::new(t, req, reliable, timers);
        if invite {
            // §16.2: a stateful proxy answers an INVITE with 100 Trying at once.
            let trying = self
                .ctx
                .response(req, peer, 100, "Trying")
                .build_without_tag()
                .freeze();
            txn.send_response(t, 100, trying);
        }
        let first = groups.pop_front().unwrap_or_default();
        let entry = ServerEntry {
            txn,
            request: req.clone(),
            peer: *peer,
            reply: Dest::reply_to(req, peer),
            fwd: Forwarding {
                plan,
                branches: Vec::new(),
                groups,
                best: None,
                finished: false,
            },
        };
        let mut out = Vec::new();
        let mut st = self.lock_proxy();
        if st.servers.len() >= MAX_SERVER_TRANSACTIONS {
            drop(st);
            tracing::warn!("sip/proxy: transaction table full; answering 503");
            return self.ctx.local_response(
                req,
                peer,
                503,
                "Service Unavailable",
                &[("Retry-After", b"5")],
            );
        }
        st.servers.insert(key.clone(), entry);
        if invite {
            st.arm(Some(t + TIMER_C), TimerRef::TimerC(key.clone()));
        }
        self.start_branches(&mut st, &key, first, t, &mut out);
        self.drain_server(&mut st, &key, t, &mut out);
        Outcome::Send(out)
    }

    /// Starts one client transaction per target (one serial group, in parallel).
    fn start_branches(
        &self,
        st: &mut ProxyState,
        key: &TransactionKey,
        targets: Vec<target::Target>,
        t: Instant,
        out: &mut Vec<Send>,
    ) {
        let timers = self.ctx.cfg.proxy.timers;
        for target in targets {
            let Some(e) = st.servers.get(key) else { return };
            let loop_hash = e.fwd.plan.loop_hash;
            let branch = st.next_branch(loop_hash);
            let Some(e) = st.servers.get(key) else { return };
            let rendered = forward::render_branch(
                &self.ctx,
                &e.request,
                &e.peer,
                &e.fwd.plan,
                &target,
                &branch,
            );
            let Some(request) = rendered.and_then(parse_own) else {
                tracing::warn!("sip/proxy: could not build a branch; skipped");
                continue;
            };
            let Some(ckey) = TransactionKey::client(&request) else {
                continue;
            };
            let reliable = target.dest.transport.is_reliable();
            let txn = ClientTxn::new(t, request.clone(), reliable, timers);
            st.clients.insert(
                ckey.clone(),
                ClientEntry {
                    txn,
                    server: key.clone(),
                    dest: target.dest.clone(),
                    is_cancel: false,
                },
            );
            if let Some(e) = st.servers.get_mut(key) {
                e.fwd.branches.push(Branch {
                    key: ckey.clone(),
                    dest: target.dest,
                    state: BranchState::Trying,
                    cancel_pending: false,
                    request,
                });
            }
            self.drain_client(st, &ckey, t, out);
        }
    }

    /// §16.7: a response from downstream.
    pub(crate) fn handle_response(&self, resp: &Response, _peer: &Peer) -> Vec<Send> {
        let t = Instant::now();
        let mut out = Vec::new();
        let Some(ckey) = TransactionKey::for_response(resp) else {
            return out;
        };
        let mut st = self.lock_proxy();
        let Some(e) = st.clients.get_mut(&ckey) else {
            drop(st);
            // No transaction (e.g. a 2xx retransmission after timer M): forward statelessly
            // when the top Via is ours (§16.7 step 2 / §16.11).
            if let Some(s) = self.forward_response_stateless(resp) {
                out.push(s);
            }
            return out;
        };
        let disposition = e.txn.on_response(t, resp);
        let is_cancel = e.is_cancel;
        let server = e.server.clone();
        self.drain_client(&mut st, &ckey, t, &mut out);
        if disposition == Disposition::Absorb || is_cancel {
            return out;
        }
        let code = resp.code();
        match code {
            100 => {}
            101..=199 => self.branch_provisional(&mut st, &server, &ckey, resp, t, &mut out),
            _ => {
                let stripped = forward::strip_top_via(resp);
                self.branch_final(&mut st, &server, &ckey, code, stripped, t, &mut out);
            }
        }
        out
    }

    fn branch_provisional(
        &self,
        st: &mut ProxyState,
        server: &TransactionKey,
        ckey: &TransactionKey,
        resp: &Response,
        t: Instant,
        out: &mut Vec<Send>,
    ) {
        let Some(e) = st.servers.get_mut(server) else {
            return;
        };
        let mut cancel = None;
        if let Some(b) = e.fwd.branches.iter_mut().find(|b| &b.key == ckey) {
            if b.state == BranchState::Trying {
                b.state = BranchState::Proceeding;
            }
            if b.cancel_pending {
                b.cancel_pending = false;
                cancel = Some((b.request.clone(), b.dest.clone()));
            }
        }
        if !e.fwd.finished
            && let Some(bytes) = forward::strip_top_via(resp)
        {
            e.txn.send_response(t, resp.code(), bytes);
        }
        if let Some((req, dest)) = cancel {
            self.send_cancel(st, server, &req, dest, t, out);
        }
        self.drain_server(st, server, t, out);
    }

    /// A branch ended with `code` (`bytes` is the response without our Via, or `None` for a
    /// synthesised one). Forwards 2xx at once, cancels the rest on 2xx/6xx, starts the next
    /// serial group, and sends the best response when every branch is done.
    #[allow(clippy::too_many_arguments)]
    fn branch_final(
        &self,
        st: &mut ProxyState,
        server: &TransactionKey,
        ckey: &TransactionKey,
        code: u16,
        bytes: Option<Bytes>,
        t: Instant,
        out: &mut Vec<Send>,
    ) {
        let Some(e) = st.servers.get_mut(server) else {
            // The server transaction is gone; a late 2xx still goes upstream (§16.7 step 5
            // is about the response context, 2xx are always forwarded).
            return;
        };
        if !e.fwd.mark_done(ckey, code) {
            return;
        }
        let to_cancel = if (200..300).contains(&code) {
            self.branch_succeeded(e, code, bytes, t)
        } else if !e.fwd.finished {
            self.branch_failed(e, code, bytes)
        } else {
            Vec::new()
        };
        // Empty when a next group starts: a 2xx or 6xx, the only causes of cancels, also
        // ended the serial search.
        if let Some(next) = self.next_group_or_answer(e, t) {
            self.start_branches(st, server, next, t, out);
        }
        for (req, dest) in to_cancel {
            self.send_cancel(st, server, &req, dest, t, out);
        }
        self.drain_server(st, server, t, out);
    }

    /// §16.7 step 5: a 2xx goes upstream at once and ends the search; for an INVITE the
    /// other branches are cancelled and the call is confirmed. Returns the branches to cancel.
    fn branch_succeeded(
        &self,
        e: &mut ServerEntry,
        code: u16,
        bytes: Option<Bytes>,
        t: Instant,
    ) -> Vec<(Request, Dest)> {
        if let Some(bytes) = bytes {
            e.txn.send_response(t, code, bytes);
        }
        e.fwd.finished = true;
        e.fwd.groups.clear();
        if !e.txn.is_invite() {
            return Vec::new();
        }
        if !e.fwd.plan.parties.is_empty()
            && let Ok(call_id) = e.request.call_id()
        {
            self.calls.confirmed(
                &String::from_utf8_lossy(call_id),
                e.fwd.plan.parties.clone(),
                t,
            );
        }
        e.fwd.pending_branches()
    }

    /// §16.7 step 6: a failure is kept when it is the best so far; a 6xx ends the search
    /// (and cancels the other branches of an INVITE). Returns the branches to cancel.
    fn branch_failed(
        &self,
        e: &mut ServerEntry,
        code: u16,
        bytes: Option<Bytes>,
    ) -> Vec<(Request, Dest)> {
        let better = e
            .fwd
            .best
            .as_ref()
            .is_none_or(|(c, _)| rank(code) < rank(*c));
        if better {
            let b = bytes.unwrap_or_else(|| {
                let reason = if code == 408 {
                    "Request Timeout"
                } else {
                    "Server Internal Error"
                };
                self.ctx
                    .response(&e.request, &e.peer, code, reason)
                    .build()
                    .freeze()
            });
            e.fwd.best = Some((code, b));
        }
        if code < 600 {
            return Vec::new();
        }
        e.fwd.groups.clear();
        if e.txn.is_invite() {
            e.fwd.pending_branches()
        } else {
            Vec::new()
        }
    }

    /// When every branch of the current group is done and nothing went upstream yet: the
    /// next serial group to start, or else the best final response is sent (§16.7 step 6).
    fn next_group_or_answer(&self, e: &mut ServerEntry, t: Instant) -> Option<Vec<target::Target>> {
        if e.fwd.finished || !e.fwd.all_done() {
            return None;
        }
        if let Some(next) = e.fwd.groups.pop_front() {
            return Some(next);
        }
        e.fwd.finished = true;
        let (code, bytes) = match e.fwd.best.take() {
            // §16.7 step 6: a 503 is not passed on (it would mean *this* proxy is busy).
            Some((503, _)) => (
                500,
                self.ctx
                    .response(&e.request, &e.peer, 500, "Server Internal Error")
                    .build()
                    .freeze(),
            ),
            Some(x) => x,
            None => (
                408,
                self.ctx
                    .response(&e.request, &e.peer, 408, "Request Timeout")
                    .build()
                    .freeze(),
            ),
        };
        e.txn.send_response(t, code, bytes);
        None
    }

    fn send_cancel(
        &self,
        st: &mut ProxyState,
        server: &TransactionKey,
        invite: &Request,
        dest: Dest,
        t: Instant,
        out: &mut Vec<Send>,
    ) {
        let Some(req) = build_cancel(invite).map(|b| b.freeze()).and_then(parse_own) else {
            return;
        };
        let Some(ckey) = TransactionKey::client(&req) else {
            return;
        };
        let reliable = dest.transport.is_reliable();
        // A CANCEL is a non-INVITE transaction of its own (§9.1).
        let txn = ClientTxn::new(t, req, reliable, self.ctx.cfg.proxy.timers);
        st.clients.insert(
            ckey.clone(),
            ClientEntry {
                txn,
                server: server.clone(),
                dest,
                is_cancel: true,
            },
        );
        self.drain_client(st, &ckey, t, out);
    }

    /// Timer C fired: the INVITE had no final answer for minutes (a phone ringing forever):
    /// cancel what still rings and answer 408 (RFC 3261 §16.8).
    fn timer_c(&self, st: &mut ProxyState, key: &TransactionKey, t: Instant, out: &mut Vec<Send>) {
        let Some(e) = st.servers.get_mut(key) else {
            return;
        };
        if e.fwd.finished {
            return;
        }
        e.fwd.finished = true;
        e.fwd.groups.clear();
        let to_cancel = e.fwd.pending_branches();
        let timeout = self
            .ctx
            .response(&e.request, &e.peer, 408, "Request Timeout")
            .build()
            .freeze();
        e.txn.send_invite_response(t, 408, timeout);
        for (r, dest) in to_cancel {
            self.send_cancel(st, key, &r, dest, t, out);
        }
        self.drain_server(st, key, t, out);
    }

    /// §16.10: CANCEL for a proxied INVITE.
    fn cancel(&self, req: &Request, peer: &Peer, t: Instant) -> Outcome {
        let Some(key) = TransactionKey::cancel_target(req) else {
            return self.ctx.simple(req, peer, 400, "Malformed CANCEL");
        };
        let mut st = self.lock_proxy();
        let Some(e) = st.servers.get_mut(&key) else {
            drop(st);
            return self
                .ctx
                .simple(req, peer, 481, "Call/Transaction Does Not Exist");
        };
        let ok = self.ctx.response(req, peer, 200, "OK").build().freeze();
        let mut out = vec![Send {
            dest: Dest::reply_to(req, peer),
            bytes: ok,
        }];
        let mut to_cancel = Vec::new();
        if !e.fwd.finished {
            e.fwd.finished = true;
            e.fwd.groups.clear();
            to_cancel = e.fwd.pending_branches();
            let terminated = self
                .ctx
                .response(&e.request, &e.peer, 487, "Request Terminated")
                .build()
                .freeze();
            e.txn.send_invite_response(t, 487, terminated);
        }
        for (r, dest) in to_cancel {
            self.send_cancel(&mut st, &key, &r, dest, t, &mut out);
        }
        self.drain_server(&mut st, &key, t, &mut out);
        Outcome::Send(out)
    }

    /// Where to send a response that has no transaction: the next Via, if ours is on top.
    fn forward_response_stateless(&self, resp: &Response) -> Option<Send> {
        let top = resp.top_via().ok()?;
        if !top
            .branch()
            .is_some_and(|b| b.starts_with(BRANCH_PREFIX.as_bytes()))
        {
            return None;
        }
        let next = resp.vias().nth(1)?.ok()?;
        let dest = Dest::from_via(&next)?;
        let bytes = forward::strip_top_via(resp)?;
        Some(Send { dest, bytes })
    }

    /// Forwards a request inside a dialog this proxy record-routed along its route set
    /// (§16.4, §16.6 step 6–7).
    fn forward_in_dialog(
        &self,
        req: &Request,
        peer: &Peer,
        routing: &route::Routing,
        t: Instant,
    ) -> Outcome {
        let Some(dest) = route::in_dialog_dest(&self.ctx, req, routing) else {
            if routing.to_tag && self.ctx.is_local_ruri(req) {
                return self
                    .ctx
                    .simple(req, peer, 481, "Call/Transaction Does Not Exist");
            }
            return self.ctx.simple(req, peer, 404, "No Route To Target");
        };
        if let Err(o) = forward::check_max_forwards(req) {
            return self.ctx.simple(req, peer, o.0, o.1);
        }
        if req.method() == Method::Bye
            && let Ok(call_id) = req.call_id()
        {
            self.calls.ended(&String::from_utf8_lossy(call_id));
        }
        let plan = Plan::in_dialog(req, peer, routing);
        let target = target::Target {
            ruri: String::new(),
            dest,
            routes: Vec::new(),
        };
        self.start_forwarding(req, peer, plan, VecDeque::from([vec![target]]), t)
    }

    /// ACK for a 2xx (and any ACK without a transaction) is forwarded statelessly (§16.11).
    fn forward_ack(&self, req: &Request, peer: &Peer) -> Outcome {
        // An ACK for a final response this element generated itself (To tag ours): absorbed.
        if req
            .to_addr()
            .ok()
            .and_then(|t| t.tag())
            .is_some_and(|tag| tag == self.ctx.to_tag)
        {
            return Outcome::Nothing;
        }
        let Ok(routing) = route::route_info(&self.ctx, req) else {
            return Outcome::Nothing;
        };
        if !routing.in_dialog() {
            return Outcome::Nothing;
        }
        let Some(dest) = route::in_dialog_dest(&self.ctx, req, &routing) else {
            return Outcome::Nothing;
        };
        if forward::check_max_forwards(req).is_err() {
            return Outcome::Nothing;
        }
        let branch = {
            let mut st = self.lock_proxy();
            st.next_branch(0)
        };
        let plan = Plan::in_dialog(req, peer, &routing);
        let target = target::Target {
            ruri: String::new(),
            dest: dest.clone(),
            routes: Vec::new(),
        };
        match forward::render_branch(&self.ctx, req, peer, &plan, &target, &branch) {
            Some(bytes) => Outcome::Send(vec![Send { dest, bytes }]),
            None => Outcome::Nothing,
        }
    }

    /// §16.3–§16.5 for a request outside a dialog: local answers, the CUSAX refusals,
    /// authentication of local callers, target determination, forwarding.
    fn forward_initial(
        &self,
        reg: &Registrar,
        now: i64,
        req: &Request,
        peer: &Peer,
        routing: &route::Routing,
        t: Instant,
    ) -> Outcome {
        let Some(ruri) = req.uri() else {
            return self.ctx.simple(req, peer, 416, "Unsupported URI Scheme");
        };
        let local = self.ctx.is_local_ruri(req);
        if let Some(refused) = self.refuse_simple(req, peer, &ruri) {
            return refused;
        }
        if local {
            return self.answer_locally(req, peer);
        }
        if let Err(o) = forward::check_max_forwards(req) {
            return self.ctx.simple(req, peer, o.0, o.1);
        }
        if forward::is_loop(req, &self.ctx.cfg.proxy.advertised) {
            return self.ctx.simple(req, peer, 482, "Loop Detected");
        }
        // Whatever needs loading from the store (caller, callee, alias) is looked up first;
        // the digest check, which consumes the nonce-count, runs once everything is cached.
        if let Err(o) = self.auth.caller(now, req, peer, false) {
            return o;
        }
        let targets = match ruri.scheme() {
            Scheme::Sip | Scheme::Sips | Scheme::Tel => target::Finder {
                ctx: &self.ctx,
                accounts: &self.accounts,
                reg,
            }
            .local_targets(now, req, peer, &ruri),
            Scheme::Other => return self.ctx.simple(req, peer, 416, "Unsupported URI Scheme"),
        };
        if let Err(o @ (Outcome::NeedAccount { .. } | Outcome::NeedAlias { .. })) = targets {
            return o;
        }
        // The caller: local users authenticate, everybody else stays anonymous to us.
        let caller = match self.auth.caller(now, req, peer, true) {
            Ok(c) => c,
            Err(o) => return o,
        };
        if caller.is_some() && self.ctx.cfg.proxy.tls_required && peer.transport != Transport::Tls {
            return self.ctx.simple(req, peer, 403, "TLS Required");
        }
        let mut callee = None;
        let groups = match targets {
            Ok(Some((g, who))) => {
                callee = who;
                g
            }
            Ok(None) => {
                // Not one of our domains: only our own users may call out.
                if caller.is_none() {
                    return self.ctx.simple(req, peer, 403, "Relaying Denied");
                }
                let Some(dest) = Dest::from_uri(&ruri) else {
                    return self.ctx.simple(req, peer, 416, "Unsupported URI Scheme");
                };
                VecDeque::from([vec![target::Target {
                    ruri: String::new(),
                    dest,
                    routes: Vec::new(),
                }]])
            }
            Err(o) => return o,
        };
        let mut plan = Plan::initial(&self.ctx, req, peer, routing, caller.as_deref());
        plan.parties
            .extend(callee.filter(|c| !plan.parties.contains(c)));
        self.start_forwarding(req, peer, plan, groups, t)
    }

    /// A request for this element itself (no user part): OPTIONS is answered, other methods
    /// are not allowed here (RFC 3261 §11, §8.2.1).
    fn answer_locally(&self, req: &Request, peer: &Peer) -> Outcome {
        match req.method() {
            Method::Options => self.ctx.local_response(
                req,
                peer,
                200,
                "OK",
                &[
                    ("Allow", crate::types::ALLOW),
                    ("Accept", b"application/sdp"),
                    ("Supported", crate::types::SUPPORTED),
                ],
            ),
            Method::Extension => self.ctx.simple(req, peer, 501, "Not Implemented"),
            _ => self.ctx.local_response(
                req,
                peer,
                405,
                "Method Not Allowed",
                &[("Allow", crate::types::ALLOW)],
            ),
        }
    }

    /// SIP presence and IM are refused when the domain's policy says so (RFC 7081 §3.3,
    /// SS-09): MESSAGE → 405 with Allow, SUBSCRIBE/PUBLISH for presence → 489.
    fn refuse_simple(&self, req: &Request, peer: &Peer, ruri: &Uri<'_>) -> Option<Outcome> {
        let domain = ruri
            .host()
            .and_then(|h| self.ctx.served(h.as_bytes()))
            .or_else(|| {
                let from = req.from_addr().ok()?;
                let host = from.uri().host()?;
                self.ctx.served(host.as_bytes())
            });
        let policy = match domain {
            Some(d) => self.ctx.cfg.proxy.policy(d.as_str()),
            None => self.ctx.cfg.proxy.default_policy,
        };
        if !policy.refuse_simple {
            return None;
        }
        let is = |m: &[u8]| req.method_bytes() == m;
        if is(b"MESSAGE") {
            return Some(self.ctx.local_response(
                req,
                peer,
                405,
                "Method Not Allowed",
                &[("Allow", crate::types::ALLOW)],
            ));
        }
        if is(b"SUBSCRIBE") || is(b"PUBLISH") {
            let presence = match req.event() {
                Ok(Some(e)) => {
                    e.package.eq_ignore_ascii_case(b"presence")
                        || e.package.eq_ignore_ascii_case(b"presence.winfo")
                }
                _ => false,
            };
            if presence {
                return Some(self.ctx.local_response(req, peer, 489, "Bad Event", &[]));
            }
        }
        None
    }

    /// Whether the server transaction table holds anything (tests).
    pub(crate) fn is_idle(&self) -> bool {
        let st = self.lock_proxy();
        st.servers.is_empty() && st.clients.is_empty()
    }
}
