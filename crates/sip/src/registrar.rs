//! RFC 3261 §10.3: processing REGISTER requests, after digest authentication by
//! [`crate::auth`] against the stored HA1 of the account that owns the To AOR, and the
//! location service they update.
//!
//! Choices the RFC leaves open, made here:
//! - The realm is the served domain of the To AOR; the digest username is the account's user.
//! - A foreign AOR gets 403, but only after a correct password (like a locked account).
//! - A non-`sip`/`sips` Contact (e.g. the legacy `<xmpp:…>` of early CUSAX clients) is never
//!   bound: it is ignored and the 200 carries a `Warning: 399` saying so.
//! - A retransmission (same Call-ID and CSeq as the stored binding, or a replayed nonce-count
//!   with a valid response) changes nothing and is answered with the current bindings, which
//!   is what the original answer said; a *lower* CSeq with the same Call-ID fails with 500
//!   (§10.3 step 7, "the update MUST be aborted and the request fails").

use crate::accounts::CachedAccount;
use crate::auth::Auth;
use crate::context::Context;
use crate::date::write_http_date;
use crate::gruu::TempGruus;
use crate::location::Location;
use crate::types::{Outcome, Peer};
use cusax_account::{AccountId, Aor, Domain};
use cusax_sip_proto::Request;
use cusax_sip_proto::message::HeaderKind;
use cusax_sip_proto::message::headers::ContactValue;
use cusax_sip_proto::message::uri::{Scheme, Uri};
use cusax_store::Binding;
use std::fmt::Write as _;
use std::sync::Arc;

/// A contact of the request, ready to be bound.
struct NewContact {
    uri: String,
    expires: u32,
    q: Option<u16>,
    instance: Option<String>,
    reg_id: Option<u32>,
    /// NAT detected for this contact (see [`crate::nat`]).
    nat: bool,
}

/// The Contact header values of a REGISTER.
struct RequestContacts {
    /// A `*` was among them.
    star: bool,
    /// How many values there were (a `*` must be alone).
    count: usize,
    /// A non-SIP contact was left out.
    ignored: bool,
    /// The SIP contacts, ready to be bound.
    contacts: Vec<NewContact>,
}

/// Why a binding update was refused (nothing was changed).
enum Refused {
    OutOfOrder,
    TooMany,
}

fn text(b: &[u8]) -> Option<String> {
    std::str::from_utf8(b).ok().map(str::to_owned)
}

/// The registrar and the location service it keeps (with the temporary GRUUs it hands out).
#[derive(Debug)]
pub(crate) struct Registrar {
    ctx: Arc<Context>,
    auth: Arc<Auth>,
    location: Location,
    gruus: TempGruus,
}

impl Registrar {
    pub(crate) fn new(ctx: Arc<Context>, auth: Arc<Auth>, secret: [u8; 32]) -> Self {
        Self {
            ctx,
            auth,
            location: Location::new(),
            gruus: TempGruus::new(secret),
        }
    }

    /// The location service.
    pub(crate) fn location(&self) -> &Location {
        &self.location
    }

    /// Announces binding changes on `bus` from now on.
    pub(crate) fn set_bus(&mut self, bus: Arc<dyn cusax_bus::Bus>) {
        self.location.set_bus(bus);
    }

    /// The AOR and instance a temporary GRUU user part stands for (RFC 5627 §5.1).
    pub(crate) fn resolve_temp_gruu(&self, user: &str) -> Option<(Aor, String)> {
        self.gruus.resolve(user)
    }

    /// Removes every binding of an account that was deleted or locked: its own AOR and, when
    /// it is cached, those of its aliases.
    pub(crate) fn remove_account(&self, id: &AccountId, cached: Option<&CachedAccount>) {
        if let Some(acct) = cached {
            for aor in &acct.aors {
                self.location.remove_aor(aor);
            }
            for n in &acct.numbers {
                if let Ok(aor) = Aor::parse(&format!("sip:{n}@{}", id.domain())) {
                    self.location.remove_aor(&aor);
                }
            }
        }
        self.location.remove_aor(&id.aor());
    }

    /// RFC 3261 §10.3: one REGISTER.
    pub(crate) fn register(&self, now: i64, req: &Request, peer: &Peer) -> Outcome {
        let Ok(to) = req.to_addr() else {
            return self.ctx.simple(req, peer, 400, "Malformed To");
        };
        let to_aor = match to.uri().scheme() {
            Scheme::Sip | Scheme::Sips => std::str::from_utf8(to.uri().as_bytes())
                .ok()
                .and_then(|t| Aor::parse(t).ok()),
            _ => None,
        };
        let Some(to_aor) = to_aor else {
            return self
                .ctx
                .simple(req, peer, 404, "Not A SIP Address Of Record");
        };
        let Some(realm) = self
            .ctx
            .cfg
            .domains
            .iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(to_aor.host()))
        else {
            return self.ctx.simple(req, peer, 404, "Domain Not Served");
        };
        if let Some(tag) = req
            .option_tags(HeaderKind::Require)
            .find(|t| !t.eq_ignore_ascii_case(b"path"))
        {
            return Outcome::Respond(
                self.ctx
                    .response(req, peer, 420, "Bad Extension")
                    .header("Unsupported", tag)
                    .build(),
            );
        }
        let auth = match self.auth.registration(now, req, peer, realm, &to_aor) {
            Ok(a) => a,
            Err(o) => return o,
        };
        let (acct, fresh) = (auth.account, auth.fresh);
        // Every success is logged; refreshes of known bindings only at debug level, so that a
        // phone re-registering every few minutes does not fill the log.
        let refresh = self.location.read(&to_aor, |list| {
            req.contacts().all(|c| match c {
                Ok(ContactValue::Addr(c)) => std::str::from_utf8(c.uri().as_bytes())
                    .ok()
                    .is_some_and(|u| find(list, u).is_some()),
                _ => false,
            })
        });
        if refresh {
            tracing::debug!(protocol = "sip", account = %acct.id, peer = %peer.addr, method = "REGISTER", "authenticated (refresh)");
        } else {
            tracing::info!(protocol = "sip", account = %acct.id, peer = %peer.addr, method = "REGISTER", "authenticated");
        }
        if !acct.owns(&to_aor) {
            return self
                .ctx
                .simple(req, peer, 403, "Not Your Address Of Record");
        }
        self.bind(now, req, peer, &to_aor, realm, fresh)
    }

    /// §10.3 steps 5–8: validate the contacts, update the bindings atomically, answer 200.
    fn bind(
        &self,
        now: i64,
        req: &Request,
        peer: &Peer,
        aor: &Aor,
        realm: &Domain,
        fresh: bool,
    ) -> Outcome {
        let (Ok(call_id), Ok(cseq)) = (req.call_id(), req.cseq()) else {
            return self.ctx.simple(req, peer, 400, "Malformed Call-ID Or CSeq");
        };
        let Ok(header_expires) = req.expires() else {
            return self.ctx.simple(req, peer, 400, "Malformed Expires");
        };
        let RequestContacts {
            star,
            count,
            ignored,
            contacts,
        } = match self.request_contacts(req, peer, header_expires) {
            Ok(c) => c,
            Err(o) => return o,
        };
        if star && (count != 1 || header_expires != Some(0)) {
            return self.ctx.simple(req, peer, 400, "Invalid Wildcard Contact");
        }
        if fresh && (star || !contacts.is_empty()) {
            let update = Update {
                call_id,
                cseq: cseq.number,
                now,
                peer,
                req,
                aor,
            };
            let max = self.ctx.cfg.max_contacts;
            let result = self
                .location
                .update(aor, |list| update.apply(list, star, &contacts, max));
            match result {
                Ok(()) => {}
                Err(Refused::OutOfOrder) => {
                    return self.ctx.simple(req, peer, 500, "Out Of Order CSeq");
                }
                Err(Refused::TooMany) => {
                    return self.ctx.simple(req, peer, 403, "Too Many Contacts");
                }
            }
        }
        self.ok(now, req, peer, aor, realm, ignored)
    }

    /// §10.3 step 5: the Contact values of the request, with their expiry decided (the
    /// parameter, else the Expires header, else the default; bounded) and NAT detected.
    fn request_contacts(
        &self,
        req: &Request,
        peer: &Peer,
        header_expires: Option<u32>,
    ) -> Result<RequestContacts, Outcome> {
        let cfg = &self.ctx.cfg;
        let malformed = || self.ctx.simple(req, peer, 400, "Malformed Contact");
        let mut out = RequestContacts {
            star: false,
            count: 0,
            ignored: false,
            contacts: Vec::new(),
        };
        let via_nat = crate::nat::via_shows_nat(req, peer);
        for c in req.contacts() {
            out.count += 1;
            let c = match c {
                Err(_) => return Err(malformed()),
                Ok(ContactValue::Star) => {
                    out.star = true;
                    continue;
                }
                Ok(ContactValue::Addr(c)) => c,
            };
            let uri = c.uri();
            if !matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) {
                out.ignored = true;
                continue;
            }
            let expires = match c.expires() {
                Some(Ok(e)) => e,
                Some(Err(())) => return Err(malformed()),
                None => header_expires.unwrap_or(cfg.default_expires),
            };
            if expires != 0 && expires < cfg.min_expires {
                let mut v = String::new();
                let _ = write!(v, "{}", cfg.min_expires);
                return Err(Outcome::Respond(
                    self.ctx
                        .response(req, peer, 423, "Interval Too Brief")
                        .header("Min-Expires", v.as_bytes())
                        .build(),
                ));
            }
            let Some(uri_text) = text(uri.as_bytes()) else {
                return Err(malformed());
            };
            out.contacts.push(NewContact {
                uri: uri_text,
                expires: expires.min(cfg.max_expires),
                q: c.q().and_then(Result::ok),
                instance: c.instance().and_then(text),
                reg_id: c.reg_id().and_then(Result::ok),
                nat: via_nat || crate::nat::contact_shows_nat(&uri, peer),
            });
        }
        Ok(out)
    }

    /// 200 OK listing every current binding with its remaining time, plus Date (§10.3 step 8).
    fn ok(
        &self,
        now: i64,
        req: &Request,
        peer: &Peer,
        aor: &Aor,
        realm: &Domain,
        ignored: bool,
    ) -> Outcome {
        let mut contacts: Vec<String> = Vec::new();
        let gruu = req
            .option_tags(HeaderKind::Supported)
            .any(|t| t.eq_ignore_ascii_case(b"gruu"));
        let outbound = req
            .option_tags(HeaderKind::Supported)
            .any(|t| t.eq_ignore_ascii_case(b"outbound"));
        let mut flow = false;
        self.location.read(aor, |list| {
            for b in list.iter().filter(|b| b.expires_at > now) {
                let mut v = contact_value(b, now);
                if gruu && let Some(instance) = &b.instance {
                    // RFC 5627 §5.4: a public GRUU from the AOR and the instance, and a
                    // temporary one that does not reveal the AOR.
                    let temp = self.gruus.temp_for(aor, instance);
                    let _ = write!(
                        v,
                        ";pub-gruu=\"{};gr={}\";temp-gruu=\"sip:{temp}@{};gr\"",
                        aor.as_str(),
                        instance,
                        aor.host()
                    );
                }
                flow |= b.reg_id.is_some() && b.instance.is_some();
                contacts.push(v);
            }
        });
        let mut date = String::with_capacity(32);
        write_http_date(now, &mut date);
        let mut r = self.ctx.response(req, peer, 200, "OK");
        for c in &contacts {
            r = r.header("Contact", c.as_bytes());
        }
        if req.first(HeaderKind::Path).is_some() {
            for p in req.values_of(HeaderKind::Path) {
                r = r.header("Path", p);
            }
        }
        if ignored {
            let w = format!("399 {realm} \"Non-SIP Contact Not Bound\"");
            r = r.header("Warning", w.as_bytes());
        }
        if outbound && flow {
            // RFC 5626 §6: the registrar supports outbound; the client keeps its flow alive
            // (CRLF on TCP/TLS, answered by the transport) at least this often.
            r = r
                .header("Require", b"outbound")
                .header("Flow-Timer", FLOW_TIMER.as_bytes());
        }
        if gruu {
            r = r.header("Supported", b"gruu, outbound, path");
        }
        Outcome::Respond(r.header("Date", date.as_bytes()).build())
    }
}

/// Seconds between flow keep-alives the registrar asks outbound clients for (RFC 5626 §4.4.1).
const FLOW_TIMER: &str = "120";

fn contact_value(b: &Binding, now: i64) -> String {
    let mut v = String::with_capacity(b.contact.len() + 64);
    let _ = write!(v, "<{}>;expires={}", b.contact, b.expires_at - now);
    if let Some(q) = b.q {
        let _ = write!(v, ";q={}.{:03}", q / 1000, q % 1000);
    }
    if let Some(i) = &b.instance {
        let _ = write!(v, ";+sip.instance=\"<{i}>\"");
    }
    if let Some(r) = b.reg_id {
        let _ = write!(v, ";reg-id={r}");
    }
    v
}

/// The binding whose contact URI is equivalent to `uri` (RFC 3261 §19.1.4), if any.
fn find(list: &[Binding], uri: &str) -> Option<usize> {
    let new_uri = Uri::parse(uri.as_bytes())?;
    list.iter().position(|b| {
        b.contact == uri || Uri::parse(b.contact.as_bytes()).is_some_and(|u| u.equivalent(&new_uri))
    })
}

/// The request-wide values a binding update needs.
struct Update<'a> {
    call_id: &'a [u8],
    cseq: u32,
    now: i64,
    peer: &'a Peer,
    req: &'a Request,
    aor: &'a Aor,
}

impl Update<'_> {
    /// §10.3 steps 6–7. A first pass checks every contact, so the list is changed only when
    /// the whole request is acceptable; no copy of the bindings is made. Returns whether
    /// anything changed (for the write-behind dirty mark).
    fn apply(
        &self,
        list: &mut Vec<Binding>,
        star: bool,
        contacts: &[NewContact],
        max: usize,
    ) -> (Result<(), Refused>, bool) {
        let stale = |b: &Binding| b.call_id.as_bytes() == self.call_id && self.cseq < b.cseq;
        if star {
            if list.iter().any(stale) {
                return (Err(Refused::OutOfOrder), false);
            }
            // Equal CSeq with the same Call-ID is this request again: nothing is left anyway.
            let changed = !list.is_empty();
            list.clear();
            return (Ok(()), changed);
        }
        let mut added = 0usize;
        let mut removed = 0usize;
        for c in contacts {
            match find(list, &c.uri) {
                Some(i) if stale(&list[i]) => return (Err(Refused::OutOfOrder), false),
                Some(_) if c.expires == 0 => removed += 1,
                Some(_) => {}
                None if c.expires == 0 => {}
                None => added += 1,
            }
        }
        if added > 0 && list.len() + added - removed.min(list.len()) > max {
            return (Err(Refused::TooMany), false);
        }
        let mut changed = false;
        for c in contacts {
            match find(list, &c.uri) {
                Some(i) => {
                    let b = &mut list[i];
                    if b.call_id.as_bytes() == self.call_id && b.cseq == self.cseq {
                        continue; // a retransmission: already applied
                    }
                    changed = true;
                    if c.expires == 0 {
                        list.remove(i);
                    } else {
                        self.refresh(b, c);
                    }
                }
                None if c.expires == 0 => {}
                None => {
                    changed = true;
                    list.push(self.new_binding(c));
                }
            }
        }
        (Ok(()), changed)
    }

    fn refresh(&self, b: &mut Binding, c: &NewContact) {
        b.expires_at = self.now + i64::from(c.expires);
        b.q = c.q;
        if b.call_id.as_bytes() != self.call_id {
            b.call_id = String::from_utf8_lossy(self.call_id).into_owned();
        }
        b.cseq = self.cseq;
        b.instance.clone_from(&c.instance);
        b.reg_id = c.reg_id;
        b.nat = c.nat;
        b.source = Some(self.peer.addr);
        if b.transport != self.peer.transport.as_str() {
            b.transport = self.peer.transport.as_str().to_owned();
        }
        // Compare before copying: a refresh normally repeats both, and allocates nothing.
        let ua = self.req.first(HeaderKind::UserAgent).map(|h| h.value);
        if ua != b.user_agent.as_deref().map(str::as_bytes) {
            b.user_agent = ua.map(|v| String::from_utf8_lossy(v).replace(['\r', '\n'], " "));
        }
        let has_path = self.req.first(HeaderKind::Path).is_some();
        if has_path || !b.path.is_empty() {
            b.path = self.paths();
        }
    }

    fn paths(&self) -> Vec<String> {
        self.req
            .values_of(HeaderKind::Path)
            .map(|p| String::from_utf8_lossy(p).replace(['\r', '\n'], " "))
            .collect()
    }

    fn new_binding(&self, c: &NewContact) -> Binding {
        Binding {
            aor: self.aor.clone(),
            contact: c.uri.clone(),
            expires_at: self.now + i64::from(c.expires),
            q: c.q,
            call_id: String::from_utf8_lossy(self.call_id).into_owned(),
            cseq: self.cseq,
            instance: c.instance.clone(),
            reg_id: c.reg_id,
            path: self.paths(),
            source: Some(self.peer.addr),
            transport: self.peer.transport.as_str().to_owned(),
            nat: c.nat,
            user_agent: self
                .req
                .first(HeaderKind::UserAgent)
                .map(|h| String::from_utf8_lossy(h.value).replace(['\r', '\n'], " ")),
            registered_at: self.now,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
