//! RFC 3261 §13.3, §9.2, §15.1.2 with RFC 3264: the callee's side of a call — requests from
//! the network dispatched by method, 180/200 (or 486/488) through the INVITE server
//! transaction, 2xx retransmission until the ACK (§13.3.1.4), CANCEL and BYE.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use cusax_sip_proto::message::{HeaderKind, ResponseBuilder};
use cusax_sip_proto::transaction::{
    ServerInvite, ServerInviteState, ServerNonInvite, TransactionKey,
};
use cusax_sip_proto::{Method, Request};

use super::call::{recording_path, text};
use super::context::{ALLOW, USER_AGENT, token};
use super::dialog::Dialog;
use super::state::{Phase, Retransmit, ServerKind, ServerTx};
use super::ua::Actor;
use crate::event::{CallDirection, CallState, Event};
use crate::media::MediaConfig;
use crate::media::sdp::{self, Negotiated};

impl Actor {
    /// Requests from the network: retransmissions go to their transaction, the rest by method.
    pub(crate) fn on_request(&mut self, now: Instant, req: Request, from: SocketAddr) {
        if let Some(key) = TransactionKey::server(&req)
            && let Some(tx) = self.servers.get_mut(&key)
        {
            match (&mut tx.kind, req.method()) {
                (ServerKind::Invite(t, _), Method::Ack) => {
                    let _ = t.on_ack(now);
                }
                (ServerKind::Invite(t, _), _) => t.on_invite_retransmission(),
                (ServerKind::NonInvite(t), _) => t.on_request_retransmission(),
            }
            if req.method() != Method::Ack {
                return;
            }
        }
        match req.method() {
            Method::Invite => match req.to_addr().ok().and_then(|t| t.tag()) {
                None => self.on_new_invite(now, req, from),
                Some(_) => self.on_reinvite(now, req, from),
            },
            Method::Ack => self.on_ack(&req),
            Method::Bye => self.on_bye(now, &req, from),
            Method::Cancel => self.on_cancel(now, &req, from),
            Method::Options => self.respond(now, &req, from, 200, "OK", &[]),
            _ => self.respond(
                now,
                &req,
                from,
                405,
                "Method Not Allowed",
                &[("Allow", ALLOW)],
            ),
        }
    }

    /// Answers a non-INVITE request through a server transaction (absorbs retransmissions).
    fn respond(
        &mut self,
        now: Instant,
        req: &Request,
        peer: SocketAddr,
        code: u16,
        reason: &str,
        headers: &[(&str, &str)],
    ) {
        let tag = token(6);
        let mut b = ResponseBuilder::new(req, code, reason).to_tag(tag.as_bytes());
        for (n, v) in headers {
            b = b.header(n, v.as_bytes());
        }
        let bytes = b.header("Server", USER_AGENT.as_bytes()).build().freeze();
        let mut t = ServerNonInvite::new(self.transport.kind().reliable(), self.cfg.timers);
        t.send_response(now, code, bytes);
        if let Some(key) = TransactionKey::server(req) {
            self.servers.insert(
                key,
                ServerTx {
                    peer,
                    kind: ServerKind::NonInvite(t),
                },
            );
        }
    }

    /// Sends a response to the INVITE of call `id` through its server transaction.
    fn respond_invite(
        &mut self,
        now: Instant,
        id: &str,
        code: u16,
        reason: &str,
        with_sdp: bool,
    ) -> Option<Bytes> {
        let contact = self.contact();
        let call = self.calls.get(id)?;
        let tag = call.dialog.as_ref()?.local_tag.clone();
        let key = self.servers.iter().find_map(|(k, t)| match &t.kind {
            ServerKind::Invite(_, cid) if cid == id => Some(k.clone()),
            _ => None,
        })?;
        let tx = self.servers.get_mut(&key)?;
        let ServerKind::Invite(t, _) = &mut tx.kind else {
            return None;
        };
        let req = t.request().clone();
        let mut b = ResponseBuilder::new(&req, code, reason).to_tag(tag.as_bytes());
        if code < 300 {
            b = b.header("Contact", contact.as_bytes());
            // §12.1.1: the Record-Route of the request is copied into dialog-creating responses.
            for h in req.headers_of(HeaderKind::RecordRoute) {
                b = b.header("Record-Route", h.value);
            }
            b = b.header("Allow", ALLOW.as_bytes());
        }
        b = b.header("Server", USER_AGENT.as_bytes());
        if with_sdp {
            b = b.body(b"application/sdp", &call.local_sdp);
        }
        let bytes = b.build().freeze();
        t.send_response(now, code, bytes.clone());
        Some(bytes)
    }

    pub(super) fn reject_pending(&mut self, now: Instant, id: &str, code: u16, reason: &str) {
        let _ = self.respond_invite(now, id, code, reason, false);
    }

    fn on_new_invite(&mut self, now: Instant, req: Request, from: SocketAddr) {
        let Ok(call_id) = req.call_id().map(text) else {
            return;
        };
        let Some(key) = TransactionKey::server(&req) else {
            return;
        };
        if self.calls.contains_key(&call_id) {
            // Same Call-ID, new transaction, no To tag: another fork of a call we already have.
            self.respond(now, &req, from, 482, "Loop Detected", &[]);
            return;
        }
        let busy = !self.cfg.auto_answer
            || self.is_shutting_down()
            || self.calls.values().any(|c| c.phase != Phase::Ending);
        let record = match (&self.cfg.record_dir, busy) {
            (Some(d), false) => {
                self.calls_answered += 1;
                // The recorder writes into the directory; a missing one is made.
                if let Err(e) = std::fs::create_dir_all(d) {
                    tracing::warn!(dir = %d.display(), error = %e, "cannot create the record dir");
                }
                Some(recording_path(d, self.calls_answered))
            }
            _ => None,
        };
        let media = MediaConfig {
            source: self.cfg.answer_source.clone(),
            record,
        };
        let mut call = match self.new_call(call_id.clone(), CallDirection::Incoming, media, from) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot set up a call");
                self.respond(now, &req, from, 500, "Server Internal Error", &[]);
                return;
            }
        };
        let local_tag = token(6);
        let Some(dialog) = Dialog::uas(&req, &local_tag) else {
            self.respond(now, &req, from, 400, "Bad Request", &[]);
            return;
        };
        let from_addr = req.from_addr().ok();
        let e = Event::IncomingCall {
            call_id: call_id.clone(),
            from: from_addr
                .map(|f| text(f.uri().as_bytes()))
                .unwrap_or_default(),
            from_name: from_addr.and_then(|f| f.display_name()).map(|n| text(&n)),
            to: req
                .to_addr()
                .map(|t| text(t.uri().as_bytes()))
                .unwrap_or_default(),
            call_info: req.values_of(HeaderKind::CallInfo).map(text).collect(),
            auto_answer: !busy,
        };
        self.emit(e);
        // Offer in the INVITE, or (empty body) an offer of ours in the 200 and the answer in
        // the ACK (RFC 3264 §5, RFC 3261 §13.2.1).
        let negotiated = if req.body().is_empty() {
            call.local_sdp = sdp::offer(&call.local, &self.cfg.codecs);
            call.offer_in_ack = true;
            None
        } else {
            match sdp::answer(req.body(), &call.local, &self.cfg.codecs) {
                Ok((body, n)) => {
                    call.local_sdp = body;
                    Some(n)
                }
                Err(err) => {
                    tracing::info!(error = %err, "refusing an offer");
                    call.dialog = Some(dialog);
                    self.insert_invite_tx(now, key, req, from, &call_id);
                    self.calls.insert(call_id.clone(), call);
                    self.reject_pending(now, &call_id, 488, "Not Acceptable Here");
                    self.finish(&call_id, CallState::Failed, Some(488), &err.to_string());
                    return;
                }
            }
        };
        call.dialog = Some(dialog);
        self.insert_invite_tx(now, key, req, from, &call_id);
        self.calls.insert(call_id.clone(), call);
        if busy {
            self.reject_pending(now, &call_id, 486, "Busy Here");
            self.finish(&call_id, CallState::Failed, Some(486), "Busy Here");
            return;
        }
        let _ = self.respond_invite(now, &call_id, 180, "Ringing", false);
        if let Some(c) = self.calls.get_mut(&call_id) {
            c.phase = Phase::Ringing;
        }
        self.emit(Event::call(
            &call_id,
            CallDirection::Incoming,
            CallState::Ringing,
        ));
        self.answer(now, &call_id, negotiated);
    }

    fn insert_invite_tx(
        &mut self,
        now: Instant,
        key: TransactionKey,
        req: Request,
        peer: SocketAddr,
        id: &str,
    ) {
        let t = ServerInvite::new(now, req, self.transport.kind().reliable(), self.cfg.timers);
        self.servers.insert(
            key,
            ServerTx {
                peer,
                kind: ServerKind::Invite(Box::new(t), id.to_owned()),
            },
        );
    }

    /// Sends the 200 with our SDP and starts media when the answer is known.
    fn answer(&mut self, now: Instant, id: &str, negotiated: Option<Negotiated>) {
        let Some(ok) = self.respond_invite(now, id, 200, "OK", true) else {
            return;
        };
        let t1 = self.cfg.timers.t1;
        let give_up = now + self.cfg.timers.t1x64();
        if let Some(call) = self.calls.get_mut(id) {
            call.phase = Phase::Answered;
            call.ok = Some(Retransmit {
                bytes: ok,
                next: now + t1,
                interval: t1,
                give_up,
            });
        }
        self.emit(Event::call(
            id,
            CallDirection::Incoming,
            CallState::Answered,
        ));
        if let Some(n) = negotiated {
            self.start_media(id, n);
        }
    }

    /// Per-call timers: 2xx retransmissions (§13.3.1.4), T1 doubling up to T2, and no ACK after
    /// 64·T1 ends the call with a BYE; a CANCEL without final response after 64·T1 (§9.1).
    pub(crate) fn call_timers(&mut self, now: Instant) {
        let t2 = self.cfg.timers.t2;
        let mut resend = Vec::new();
        let mut give_up = Vec::new();
        let mut cancelled = Vec::new();
        for call in self.calls.values_mut() {
            if call.cancel_deadline.is_some_and(|d| d <= now) {
                call.cancel_deadline = None;
                cancelled.push(call.id.clone());
            }
            let Some(r) = &mut call.ok else { continue };
            if r.give_up <= now {
                give_up.push(call.id.clone());
            } else if r.next <= now {
                resend.push((call.peer, r.bytes.clone()));
                r.interval = (r.interval * 2).min(t2);
                r.next = now + r.interval;
            }
        }
        for (peer, b) in resend {
            self.send(peer, b);
        }
        for id in give_up {
            self.send_bye(now, &id);
            self.finish(&id, CallState::Failed, Some(408), "no ACK");
        }
        for id in cancelled {
            // The callee never answered the CANCELled INVITE (RFC 3261 §9.1).
            self.finish(&id, CallState::Ended, Some(408), "cancelled");
        }
    }

    fn call_for_dialog(&self, req: &Request) -> Option<String> {
        self.calls
            .values()
            .find(|c| c.dialog.as_ref().is_some_and(|d| d.matches(req)))
            .map(|c| c.id.clone())
    }

    fn on_ack(&mut self, req: &Request) {
        let Some(id) = self.call_for_dialog(req) else {
            return;
        };
        let codecs = self.cfg.codecs.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.phase != Phase::Answered {
            call.ok = None; // ACK of a re-INVITE's 2xx
            return;
        }
        call.ok = None;
        call.phase = Phase::Established;
        let mut negotiated = None;
        if call.offer_in_ack {
            match sdp::read_answer(req.body(), &codecs) {
                Ok(n) => negotiated = Some(n),
                Err(err) => tracing::warn!(call = id, error = %err, "unusable answer in ACK"),
            }
        }
        if let Some(n) = negotiated {
            self.start_media(&id, n);
        }
        if let Some(call) = self.calls.get(&id) {
            self.emit(call.event(CallState::Established));
        }
    }

    fn on_bye(&mut self, now: Instant, req: &Request, from: SocketAddr) {
        match self.call_for_dialog(req) {
            Some(id) => {
                self.respond(now, req, from, 200, "OK", &[]);
                self.finish(&id, CallState::Ended, None, "remote hangup");
            }
            None => self.respond(now, req, from, 481, "Call/Transaction Does Not Exist", &[]),
        }
    }

    fn on_cancel(&mut self, now: Instant, req: &Request, from: SocketAddr) {
        let target = TransactionKey::cancel_target(req).and_then(|k| {
            self.servers.get(&k).and_then(|t| match &t.kind {
                ServerKind::Invite(t, id) => Some((t.state(), id.clone())),
                ServerKind::NonInvite(_) => None,
            })
        });
        let Some((state, id)) = target else {
            self.respond(now, req, from, 481, "Call/Transaction Does Not Exist", &[]);
            return;
        };
        self.respond(now, req, from, 200, "OK", &[]);
        // §9.2: only a call not yet answered is cancelled; its INVITE gets 487.
        let unanswered = state == ServerInviteState::Proceeding
            && self
                .calls
                .get(&id)
                .is_some_and(|c| c.phase != Phase::Answered && c.phase != Phase::Established);
        if unanswered {
            self.reject_pending(now, &id, 487, "Request Terminated");
            self.finish(&id, CallState::Ended, Some(487), "cancelled");
        }
    }

    /// A re-INVITE in an established dialog: the session is kept as it is, and our current
    /// SDP is sent again (RFC 3264 §8: an unchanged description keeps its version).
    fn on_reinvite(&mut self, now: Instant, req: Request, from: SocketAddr) {
        let Some(id) = self.call_for_dialog(&req) else {
            self.respond(now, &req, from, 481, "Call/Transaction Does Not Exist", &[]);
            return;
        };
        let Some(key) = TransactionKey::server(&req) else {
            return;
        };
        let contact = self.contact();
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(tag) = call.dialog.as_ref().map(|d| d.local_tag.clone()) else {
            return;
        };
        let bytes = ResponseBuilder::new(&req, 200, "OK")
            .to_tag(tag.as_bytes())
            .header("Contact", contact.as_bytes())
            .header("Allow", ALLOW.as_bytes())
            .body(b"application/sdp", &call.local_sdp)
            .build()
            .freeze();
        let mut t = ServerInvite::new(now, req, self.transport.kind().reliable(), self.cfg.timers);
        t.send_response(now, 200, bytes.clone());
        self.servers.insert(
            key,
            ServerTx {
                peer: from,
                kind: ServerKind::Invite(Box::new(t), id.clone()),
            },
        );
        let (t1, give_up) = (self.cfg.timers.t1, now + self.cfg.timers.t1x64());
        if let Some(call) = self.calls.get_mut(&id) {
            call.ok = Some(Retransmit {
                bytes,
                next: now + t1,
                interval: t1,
                give_up,
            });
        }
    }
}
