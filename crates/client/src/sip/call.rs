//! RFC 3261 §13.2, §9.1, §15.1.1 with RFC 3264: calls and the caller's side — INVITE with
//! digest retry, CANCEL, ACK and BYE; ending calls from either side and running their media
//! once the offer/answer exchange is complete (the callee's side is in `callee.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use cusax_sip_proto::Response;
use cusax_sip_proto::message::{RequestBuilder, Scheme, Uri};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::auth::DigestState;
use super::context::{ALLOW, CallOptions, USER_AGENT, UaError, token};
use super::dialog::Dialog;
use super::state::{Call, Phase, Purpose};
use super::ua::Actor;
use crate::event::{CallDirection, CallState, Event};
use crate::media::audio::AudioError;
use crate::media::sdp::{self, LocalMedia, Negotiated};
use crate::media::{MediaConfig, MediaStats, rtp};

/// Binds an RTP socket synchronously (the handlers are not async).
fn bind_rtp(ip: std::net::IpAddr) -> std::io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

/// `sip:`/`sips:` URIs as given; `user@host` gets `sip:` in front.
fn normalise_target(t: &str) -> Result<String, UaError> {
    let t = t.trim();
    // RFC 3986 §3.1: a scheme is a letter then letters, digits, `+`, `-`, `.`, before `:`.
    let has_scheme = t.split_once(':').is_some_and(|(s, _)| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let full = if has_scheme {
        t.to_owned()
    } else {
        format!("sip:{t}")
    };
    match Uri::parse(full.as_bytes()) {
        Some(u) if matches!(u.scheme(), Scheme::Sip | Scheme::Sips) && u.host().is_some() => {
            Ok(full)
        }
        _ => Err(UaError::BadTarget(t.to_owned())),
    }
}

/// RFC 3323 §4.1.1.3: the From of an anonymous request.
const ANONYMOUS_FROM: &str = "\"Anonymous\" <sip:anonymous@anonymous.invalid>";

/// Everything an initial INVITE (or its authenticated retry) is made of.
#[derive(Debug)]
pub(super) struct InviteParts<'a> {
    pub(super) target: &'a str,
    pub(super) via: &'a str,
    pub(super) contact: &'a str,
    pub(super) call_id: &'a str,
    pub(super) cseq: u32,
    pub(super) from_tag: &'a str,
    pub(super) aor: &'a str,
    pub(super) display_name: Option<&'a str>,
    /// Our bare JID (RFC 7081 §6).
    pub(super) impp: Option<&'a str>,
    pub(super) anonymous: bool,
    pub(super) legacy_xmpp_contact: bool,
    /// Authorization or Proxy-Authorization, and its value.
    pub(super) auth: Option<(&'static str, &'a str)>,
    pub(super) sdp: &'a [u8],
}

/// Builds an INVITE. A normal call names the caller and announces its JID as
/// `Call-Info: <xmpp:JID>;purpose=impp` (RFC 7081 §6), plus `Contact: <xmpp:JID>` only when the
/// legacy form is asked for (CUSAX CL-24). An anonymous call (RFC 3323 §4.1.1.3, CUSAX CL-23)
/// has the anonymous From, `Privacy: id` and neither.
pub(super) fn build_invite(p: &InviteParts<'_>) -> Bytes {
    let from = if p.anonymous {
        ANONYMOUS_FROM.to_owned()
    } else {
        match p.display_name {
            Some(n) => format!("\"{}\" <{}>", n.replace('"', ""), p.aor),
            None => format!("<{}>", p.aor),
        }
    };
    let mut b = RequestBuilder::new("INVITE", p.target.as_bytes())
        .header("Via", p.via.as_bytes())
        .header("Max-Forwards", b"70")
        .header("From", format!("{from};tag={}", p.from_tag).as_bytes())
        .header("To", format!("<{}>", p.target).as_bytes())
        .header("Call-ID", p.call_id.as_bytes())
        .header("CSeq", format!("{} INVITE", p.cseq).as_bytes())
        .header("Contact", p.contact.as_bytes())
        .header("Allow", ALLOW.as_bytes())
        .header("User-Agent", USER_AGENT.as_bytes());
    match (p.anonymous, p.impp) {
        (true, _) => b = b.header("Privacy", b"id"),
        (false, Some(jid)) => {
            b = b.header("Call-Info", format!("<xmpp:{jid}>;purpose=impp").as_bytes());
            if p.legacy_xmpp_contact {
                b = b.header("Contact", format!("<xmpp:{jid}>").as_bytes());
            }
        }
        (false, None) => {}
    }
    if let Some((name, value)) = p.auth {
        b = b.header(name, value.as_bytes());
    }
    b.build_with_body(Some((b"application/sdp", p.sdp)))
        .freeze()
}

pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Actor {
    pub(super) fn new_call(
        &mut self,
        id: String,
        direction: CallDirection,
        media_cfg: MediaConfig,
        peer: SocketAddr,
    ) -> Result<Call, UaError> {
        let rtp = bind_rtp(self.transport.local().ip())?;
        let local = LocalMedia {
            rtp: rtp.local_addr()?,
            session_id: u64::from(rand::random::<u32>()),
            version: 1,
        };
        Ok(Call {
            id,
            direction,
            phase: Phase::Calling,
            media_cfg,
            rtp: Some(rtp),
            local,
            local_sdp: Vec::new(),
            media_stop: None,
            negotiated: None,
            final_event: None,
            dialog: None,
            target: String::new(),
            from_tag: token(6),
            cseq: 0,
            invite: None,
            anonymous: false,
            auth: None,
            auth_failures: 0,
            provisional: false,
            cancel_wanted: false,
            cancel_sent: false,
            cancel_deadline: None,
            ack: None,
            peer,
            ok: None,
            offer_in_ack: false,
        })
    }

    pub(super) fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    // ----- caller -------------------------------------------------------------------------

    pub(crate) fn start_call(
        &mut self,
        now: Instant,
        target: &str,
        media: MediaConfig,
        options: CallOptions,
    ) -> Result<String, UaError> {
        let target = normalise_target(target)?;
        if let crate::media::AudioSource::Wav(p) = &media.source {
            // Fail now rather than when the call is answered.
            crate::media::audio::read_wav(p)?;
        }
        let id = format!("{}@cusax", token(10));
        let server = self.transport.server();
        let mut call = self.new_call(id.clone(), CallDirection::Outgoing, media, server)?;
        call.target = target;
        call.anonymous = options.anonymous;
        call.local_sdp = sdp::offer(&call.local, &self.cfg.codecs);
        self.calls.insert(id.clone(), call);
        self.send_invite(now, &id);
        self.emit(Event::call(
            &id,
            CallDirection::Outgoing,
            CallState::Calling,
        ));
        Ok(id)
    }

    fn send_invite(&mut self, now: Instant, id: &str) {
        let acct = &self.cfg.account;
        let aor = acct.aor();
        let display_name = acct.display_name.clone();
        let impp = acct.impp.clone();
        let legacy_xmpp_contact = self.cfg.legacy_xmpp_contact;
        let via = self.via();
        let anonymous = self.calls.get(id).is_some_and(|c| c.anonymous);
        let contact = if anonymous {
            self.contact_for("anonymous")
        } else {
            self.contact()
        };
        let secret = acct.secret.clone();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.cseq += 1;
        let auth = call.auth.as_mut().map(|d| {
            let v = d.authorize(&secret, "INVITE", &call.target, &token(8));
            (d.header_name(), v)
        });
        let bytes = build_invite(&InviteParts {
            target: &call.target,
            via: &via,
            contact: &contact,
            call_id: id,
            cseq: call.cseq,
            from_tag: &call.from_tag,
            aor: &aor,
            display_name: display_name.as_deref(),
            impp: impp.as_deref(),
            anonymous: call.anonymous,
            legacy_xmpp_contact,
            auth: auth.as_ref().map(|(n, v)| (*n, v.as_str())),
            sdp: &call.local_sdp,
        });
        call.provisional = false;
        if let Some((_, req)) = self.start_client(now, bytes, None, Some(id))
            && let Some(call) = self.calls.get_mut(id)
        {
            call.invite = Some(req);
        }
    }

    pub(crate) fn on_invite_timeout(&mut self, id: &str) {
        self.finish(id, CallState::Failed, Some(408), "Request Timeout");
    }

    pub(crate) fn on_invite_response(&mut self, now: Instant, id: &str, resp: &Response) {
        let code = resp.code();
        let reason = text(resp.reason());
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        match code {
            100..=199 => {
                call.provisional = true;
                if call.cancel_wanted && !call.cancel_sent {
                    self.send_cancel(now, id);
                } else if code != 100 && call.phase == Phase::Calling {
                    call.phase = Phase::Ringing;
                    let e = call
                        .event(CallState::Ringing)
                        .with_reason(Some(code), &reason);
                    self.emit(e);
                }
            }
            200..=299 => self.on_invite_2xx(now, id, resp),
            401 | 407 => {
                call.auth_failures += 1;
                let stale = DigestState::is_stale(resp);
                match DigestState::from_response(resp) {
                    Some(d) if (call.auth_failures < 2 || stale) && !call.cancel_wanted => {
                        call.auth = Some(d);
                        self.send_invite(now, id);
                    }
                    _ => self.finish(id, CallState::Failed, Some(code), &reason),
                }
            }
            487 if call.cancel_wanted => self.finish(id, CallState::Ended, Some(487), "cancelled"),
            _ => self.finish(id, CallState::Failed, Some(code), &reason),
        }
    }

    pub(super) fn on_invite_2xx(&mut self, now: Instant, id: &str, resp: &Response) {
        let via = self.via();
        let server = self.transport.server();
        let codecs = self.cfg.codecs.clone();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if let Some(d) = &call.dialog {
            // A retransmission of the 2xx: the ACK was lost. (A 2xx of another fork, with
            // another To tag, is not taken: that would need a second dialog.)
            let same = resp
                .to_addr()
                .ok()
                .and_then(|t| t.tag())
                .is_some_and(|t| t == d.remote_tag.as_bytes());
            if same && let Some(ack) = call.ack.clone() {
                self.send(server, ack);
            }
            return;
        }
        let Some(invite) = call.invite.as_ref() else {
            return;
        };
        let Some(mut dialog) = Dialog::uac(invite, resp) else {
            tracing::warn!(call = id, "2xx without usable To tag or Contact");
            return;
        };
        // §13.2.2.4: the ACK has the INVITE's CSeq number and goes along the route set.
        let ack = dialog
            .request("ACK", &via, Some(call.cseq))
            .header("User-Agent", USER_AGENT.as_bytes())
            .build()
            .freeze();
        call.ack = Some(ack.clone());
        call.dialog = Some(dialog);
        let cancel_wanted = call.cancel_wanted;
        self.send(server, ack);
        if cancel_wanted {
            // Our hang-up lost the race against the answer: end the call with BYE.
            self.send_bye(now, id);
            self.finish(id, CallState::Ended, Some(200), "cancelled");
            return;
        }
        match sdp::read_answer(resp.body(), &codecs) {
            Ok(n) => {
                self.start_media(id, n);
                if let Some(call) = self.calls.get_mut(id) {
                    call.phase = Phase::Established;
                    let e = call.event(CallState::Established);
                    self.emit(e);
                }
            }
            Err(err) => {
                tracing::warn!(call = id, error = %err, "unusable SDP answer");
                self.send_bye(now, id);
                self.finish(id, CallState::Failed, Some(488), &err.to_string());
            }
        }
    }

    fn send_cancel(&mut self, now: Instant, id: &str) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(cancel) = call
            .invite
            .as_ref()
            .and_then(cusax_sip_proto::message::build_cancel)
        else {
            return;
        };
        // The INVITE's 487 ends the call; a 2xx racing the CANCEL is answered with BYE.
        call.cancel_wanted = true;
        call.cancel_sent = true;
        call.cancel_deadline = Some(now + self.cfg.timers.t1x64());
        self.start_client(
            now,
            cancel.freeze(),
            Some(Purpose::Cancel(id.to_owned())),
            None,
        );
    }

    pub(super) fn send_bye(&mut self, now: Instant, id: &str) {
        let via = self.via();
        let Some(dialog) = self.calls.get_mut(id).and_then(|c| c.dialog.as_mut()) else {
            return;
        };
        let bye = dialog
            .request("BYE", &via, None)
            .header("User-Agent", USER_AGENT.as_bytes())
            .build()
            .freeze();
        self.start_client(now, bye, Some(Purpose::Bye(id.to_owned())), None);
    }

    /// Ends a call from this side: CANCEL while unanswered, BYE once a dialog exists.
    pub(crate) fn hangup(&mut self, now: Instant, id: &str) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        match (call.direction, call.phase) {
            (_, Phase::Ending) => {}
            (CallDirection::Outgoing, Phase::Calling | Phase::Ringing) => {
                if call.provisional && !call.cancel_sent {
                    self.send_cancel(now, id);
                } else {
                    // §9.1: no CANCEL before a provisional response; it goes out with the first.
                    call.cancel_wanted = true;
                }
            }
            (CallDirection::Incoming, Phase::Calling | Phase::Ringing) => {
                self.reject_pending(now, id, 480, "Temporarily Unavailable");
                self.finish(id, CallState::Ended, None, "local hangup");
            }
            (_, Phase::Answered | Phase::Established) => {
                self.send_bye(now, id);
                self.finish(id, CallState::Ended, None, "local hangup");
            }
        }
    }

    /// Reports the final state, after the media task (if any) has closed the recording.
    pub(crate) fn finish(&mut self, id: &str, state: CallState, code: Option<u16>, reason: &str) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.phase == Phase::Ending {
            return;
        }
        call.phase = Phase::Ending;
        call.ok = None;
        let e = call.event(state).with_reason(code, reason);
        if call.media_stop.is_some() {
            call.final_event = Some(e);
            call.stop_media();
        } else {
            self.calls.remove(id);
            self.emit(e);
        }
    }

    pub(crate) fn on_media_done(&mut self, id: &str, r: Result<MediaStats, AudioError>) {
        let Some(mut call) = self.calls.remove(id) else {
            return;
        };
        let stats = r.unwrap_or_else(|e| {
            tracing::warn!(call = id, error = %e, "media failed");
            MediaStats::default()
        });
        let mut e = call.final_event.take().unwrap_or_else(|| {
            call.event(CallState::Ended)
                .with_reason(None, "media stopped")
        });
        if let Event::CallState { media, .. } = &mut e {
            *media = Some(stats);
        }
        if call.phase != Phase::Ending {
            // The media task ended on its own (recording error): the call goes on, and its
            // end is reported at once when it comes (no media task is left to wait for).
            call.media_stop = None;
            self.calls.insert(id.to_owned(), call);
            return;
        }
        self.emit(e);
    }

    pub(super) fn start_media(&mut self, id: &str, n: Negotiated) {
        let done = self.media_done_tx.clone();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(socket) = call.rtp.take() else {
            return;
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        call.media_stop = Some(stop_tx);
        call.negotiated = Some(n);
        let cfg = call.media_cfg.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let r = rtp::run(socket, n, cfg, stop_rx).await;
            let _ = done.send((id, r));
        });
    }

    /// A response no transaction wants: a retransmitted 2xx to an INVITE whose transaction
    /// has ended is ACKed again (§13.2.2.4).
    pub(crate) fn on_stray_response(&mut self, resp: &Response) {
        if !(200..300).contains(&resp.code()) {
            return;
        }
        let Ok(call_id) = resp.call_id() else {
            return;
        };
        let server = self.transport.server();
        if let Some(ack) = self.calls.get(&text(call_id)).and_then(|c| c.ack.clone()) {
            self.send(server, ack);
        }
    }
}

/// The file a callee records call number `n` to.
pub fn recording_path(dir: &std::path::Path, n: u32) -> PathBuf {
    dir.join(format!("call-{n}.wav"))
}

#[cfg(test)]
mod tests {
    use super::{InviteParts, build_invite, normalise_target};
    use cusax_sip_proto::{HeaderKind, Limits, Request, SipMessage, parse_datagram};

    fn parts(anonymous: bool, legacy: bool) -> InviteParts<'static> {
        InviteParts {
            target: "sip:bob@example.org",
            via: "SIP/2.0/TLS 127.0.0.1:5000;branch=z9hG4bKx;rport",
            contact: if anonymous {
                "<sip:anonymous@127.0.0.1:5000;transport=tls>"
            } else {
                "<sip:alice@127.0.0.1:5000;transport=tls>"
            },
            call_id: "c1@cusax",
            cseq: 1,
            from_tag: "t1",
            aor: "sip:alice@example.org",
            display_name: Some("Alice"),
            impp: Some("alice@example.org"),
            anonymous,
            legacy_xmpp_contact: legacy,
            auth: None,
            sdp: b"v=0\r\n",
        }
    }

    fn invite(p: &InviteParts<'_>) -> Request {
        match parse_datagram(build_invite(p), &Limits::default()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn values(r: &Request, k: HeaderKind) -> Vec<String> {
        r.values_of(k)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    #[test]
    fn a_normal_invite_announces_the_jid_in_call_info_only() {
        let r = invite(&parts(false, false));
        assert!(r.validate().is_ok());
        assert_eq!(
            values(&r, HeaderKind::From),
            ["\"Alice\" <sip:alice@example.org>;tag=t1"]
        );
        assert_eq!(
            values(&r, HeaderKind::CallInfo),
            ["<xmpp:alice@example.org>;purpose=impp"]
        );
        assert_eq!(
            values(&r, HeaderKind::Contact),
            ["<sip:alice@127.0.0.1:5000;transport=tls>"],
            "no legacy xmpp Contact by default (CL-24)"
        );
        assert!(r.header_named("Privacy").is_none());
    }

    #[test]
    fn the_legacy_xmpp_contact_is_added_only_on_request() {
        let r = invite(&parts(false, true));
        assert_eq!(
            values(&r, HeaderKind::Contact),
            [
                "<sip:alice@127.0.0.1:5000;transport=tls>",
                "<xmpp:alice@example.org>"
            ]
        );
        assert_eq!(values(&r, HeaderKind::CallInfo).len(), 1);
    }

    #[test]
    fn an_anonymous_invite_hides_the_caller() {
        for legacy in [false, true] {
            let r = invite(&parts(true, legacy));
            assert!(r.validate().is_ok());
            assert_eq!(
                values(&r, HeaderKind::From),
                ["\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=t1"]
            );
            let privacy = r.header_named("Privacy").expect("Privacy");
            assert_eq!(privacy.value, b"id");
            assert!(values(&r, HeaderKind::CallInfo).is_empty(), "no Call-Info");
            assert_eq!(
                values(&r, HeaderKind::Contact),
                ["<sip:anonymous@127.0.0.1:5000;transport=tls>"],
                "no xmpp Contact either"
            );
            let raw = String::from_utf8_lossy(r.bytes()).into_owned();
            assert!(
                !raw.contains("alice") && !raw.contains("Alice"),
                "nothing names the caller: {raw}"
            );
            assert!(r.header_named("P-Asserted-Identity").is_none());
        }
    }

    #[test]
    fn credentials_go_into_the_named_header() {
        let mut p = parts(false, false);
        p.auth = Some(("Proxy-Authorization", "Digest username=\"alice\""));
        let r = invite(&p);
        let h = r.header_named("Proxy-Authorization").expect("credentials");
        assert_eq!(h.value, b"Digest username=\"alice\"");
    }

    #[test]
    fn targets() {
        assert_eq!(
            normalise_target("sip:bob@example.org").expect("ok"),
            "sip:bob@example.org"
        );
        assert_eq!(
            normalise_target("bob@example.org").expect("ok"),
            "sip:bob@example.org"
        );
        assert_eq!(
            normalise_target(" sips:bob@h:5061 ").expect("ok"),
            "sips:bob@h:5061"
        );
        assert!(normalise_target("xmpp:bob@example.org").is_err());
        assert!(normalise_target("tel:+123").is_err());
        assert!(normalise_target("").is_err());
    }
}
