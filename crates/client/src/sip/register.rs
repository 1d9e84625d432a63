//! RFC 3261 §10.2: registration — REGISTER with digest authentication (§22), 423 handling,
//! refresh before the binding expires, and removal (expires 0) on shutdown.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip_proto::Response;
use cusax_sip_proto::message::RequestBuilder;
use cusax_sip_proto::message::headers::ContactValue;

use super::auth::DigestState;
use super::context::{ALLOW, USER_AGENT, token};
use super::state::Purpose;
use super::ua::Actor;
use crate::event::Event;

/// Whether a failed REGISTER is worth retrying on a new flow (RFC 5626 §4.5 / RFC 7081 §2):
/// no answer, or a server-side failure; refusals of the request itself (401, 403, 404…) are not.
pub(crate) fn retryable(code: u16) -> bool {
    matches!(code, 408 | 480 | 500..=599)
}

/// When to refresh a binding granted for `expires` seconds: a minute early for long
/// bindings, halfway for short ones.
pub(crate) fn refresh_after(expires: u32) -> Duration {
    let e = u64::from(expires);
    Duration::from_secs((e / 2).max(e.saturating_sub(60)).max(1))
}

impl Actor {
    /// Our Contact value.
    pub(crate) fn contact(&self) -> String {
        self.contact_for(&self.cfg.account.user)
    }

    /// A Contact value on our flow with this user part (`anonymous` for anonymous calls,
    /// RFC 3323 §4.1.1.3: the Contact should not name the caller either).
    pub(crate) fn contact_for(&self, user: &str) -> String {
        let local = self.transport.local();
        let tr = self.transport.kind().uri_param();
        format!("<sip:{user}@{local}{tr}>")
    }

    /// A fresh Via value for a new client transaction.
    pub(crate) fn via(&self) -> String {
        format!(
            "SIP/2.0/{} {};branch=z9hG4bK{};rport",
            self.transport.kind().via_token(),
            self.transport.local(),
            token(8)
        )
    }

    pub(crate) fn send_register(&mut self, now: Instant, expires: u32) {
        let acct = &self.cfg.account;
        let aor = acct.aor();
        let ruri = format!("sip:{}", acct.domain);
        self.reg.cseq += 1;
        self.reg.asking = expires;
        let mut b = RequestBuilder::new("REGISTER", ruri.as_bytes())
            .header("Via", self.via().as_bytes())
            .header("Max-Forwards", b"70")
            .header(
                "From",
                format!("<{aor}>;tag={}", self.reg.from_tag).as_bytes(),
            )
            .header("To", format!("<{aor}>").as_bytes())
            .header("Call-ID", self.reg.call_id.as_bytes())
            .header("CSeq", format!("{} REGISTER", self.reg.cseq).as_bytes())
            .header("Contact", self.contact().as_bytes())
            .header("Expires", expires.to_string().as_bytes())
            .header("Allow", ALLOW.as_bytes())
            .header("User-Agent", USER_AGENT.as_bytes());
        if let Some(d) = &mut self.reg.auth {
            let v = d.authorize(&self.cfg.account.secret, "REGISTER", &ruri, &token(8));
            b = b.header(d.header_name(), v.as_bytes());
        }
        let bytes: Bytes = b.build().freeze();
        self.start_client(now, bytes, Some(Purpose::Register), None);
    }

    fn registration_failed(&mut self, now: Instant, code: u16, reason: &str) {
        self.reg.bound = false;
        let _ = self.events.send(Event::RegistrationFailed {
            aor: self.cfg.account.aor(),
            code,
            reason: reason.to_owned(),
        });
        // Registering (not removing the binding) failed for a passing reason: a new flow and
        // a new REGISTER after the backoff.
        if retryable(code) && self.reg.asking != 0 && !self.is_shutting_down() {
            self.flow_failed(now, &format!("REGISTER failed: {code} {reason}"), false);
        }
    }

    pub(crate) fn on_register_timeout(&mut self, now: Instant) {
        self.registration_failed(now, 408, "Request Timeout");
    }

    pub(crate) fn on_register_response(&mut self, now: Instant, resp: &Response) {
        let code = resp.code();
        let reason = String::from_utf8_lossy(resp.reason()).into_owned();
        match code {
            100..=199 => {}
            200..=299 => {
                self.reg.auth_failures = 0;
                if self.reg.asking == 0 {
                    self.reg.bound = false;
                    self.flow.keepalive = None;
                    let _ = self.events.send(Event::Unregistered {
                        aor: self.cfg.account.aor(),
                    });
                    return;
                }
                let expires = self.granted_expiry(resp).unwrap_or(self.reg.asking);
                self.reg.bound = true;
                self.reg.refresh_at = Some(now + refresh_after(expires));
                self.flow.backoff.reset();
                self.start_keepalive(now, resp);
                let _ = self.events.send(Event::Registered {
                    aor: self.cfg.account.aor(),
                    contact: self.contact(),
                    expires,
                });
            }
            401 | 407 => {
                let stale = DigestState::is_stale(resp);
                self.reg.auth_failures += 1;
                match DigestState::from_response(resp) {
                    Some(d) if self.reg.auth_failures < 2 || stale => {
                        self.reg.auth = Some(d);
                        self.send_register(now, self.reg.asking);
                    }
                    _ => self.registration_failed(now, code, &reason),
                }
            }
            423 => match resp.min_expires() {
                Ok(Some(min)) if min > self.reg.asking => self.send_register(now, min),
                _ => self.registration_failed(now, code, &reason),
            },
            _ => self.registration_failed(now, code, &reason),
        }
    }

    /// The expiry the registrar granted our contact (§10.2.4): its `expires` parameter in the
    /// 200's Contact list, else the Expires header.
    fn granted_expiry(&self, resp: &Response) -> Option<u32> {
        let local = self.transport.local();
        let ours = resp
            .contacts()
            .filter_map(Result::ok)
            .find_map(|c| match c {
                ContactValue::Addr(a) => {
                    let u = a.uri();
                    let host_ok = u
                        .host()
                        .is_some_and(|h| h.as_bytes() == local.ip().to_string().as_bytes());
                    (host_ok && u.port() == Some(local.port())).then_some(a)
                }
                ContactValue::Star => None,
            });
        if let Some(Some(Ok(e))) = ours.map(|c| c.expires()) {
            return Some(e);
        }
        resp.expires().ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::refresh_after;
    use std::time::Duration;

    #[test]
    fn refresh_happens_before_expiry() {
        assert_eq!(refresh_after(3600), Duration::from_secs(3540));
        assert_eq!(refresh_after(300), Duration::from_secs(240));
        assert_eq!(refresh_after(60), Duration::from_secs(30));
        assert_eq!(refresh_after(1), Duration::from_secs(1));
    }
}
