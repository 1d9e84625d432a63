//! RFC 3261 §16.4–§16.5 and RFC 3263 §4: route information processing and target
//! determination — our own Route entries, in-dialog flows, the callee's bindings (with its
//! aliases, q-value groups and Path) and where each target's bytes go.

use super::Proxy;
use super::forward::{self, Plan};
use crate::accounts::{CachedAccount, Lookup};
use crate::config::NatTraversal;
use crate::registrar::Registrar;
use crate::types::{Dest, NextHop, Outcome, Peer, Send, Transport};
use bytes::Bytes;
use cusax_account::{Alias, Aor, Domain};
use cusax_sip_proto::message::Edits;
use cusax_sip_proto::message::uri::{Scheme, Uri};
use cusax_sip_proto::{Method, Request};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// One target of a request: the Request-URI to use, where to send, and Path routes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) ruri: String,
    pub(crate) dest: Dest,
    pub(crate) routes: Vec<String>,
}

/// Serial groups of parallel targets, and the local account they belong to.
pub(crate) type Targets = (VecDeque<Vec<Target>>, Option<cusax_account::AccountId>);

/// What route processing found.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    /// Leading Route values that name this proxy (removed when forwarding).
    pub(crate) ours: usize,
    /// Route values after ours.
    pub(crate) remaining: usize,
    /// The request has a To tag.
    pub(crate) to_tag: bool,
    /// `ftag`, `cxc`, `cxe` of our first Route entry.
    pub(crate) ftag: Option<Vec<u8>>,
    pub(crate) caller_flow: Option<Dest>,
    pub(crate) callee_flow: Option<Dest>,
}

impl Routing {
    /// A request inside a dialog this proxy record-routed: it has a To tag and our Route
    /// (RFC 3261 §12.2.1.1, §16.4). Only these follow the route set without authentication.
    pub(crate) fn in_dialog(&self) -> bool {
        self.to_tag && self.ours > 0
    }

    /// A To tag but none of our Route entries: the dialog was not record-routed by us, so the
    /// request is not ours to relay (we would be an open relay towards any host otherwise).
    pub(crate) fn foreign_dialog(&self) -> bool {
        self.to_tag && self.ours == 0
    }
}

fn is_phone_number(user: &str) -> bool {
    let digits = user.strip_prefix('+').unwrap_or(user);
    !digits.is_empty()
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'(' | b')'))
}

impl Proxy {
    /// §16.4: counts our Route entries at the top and reads their flow parameters.
    pub(crate) fn route_info(&self, req: &Request) -> Result<Routing, (u16, &'static str)> {
        let mut r = Routing {
            to_tag: req.to_addr().ok().and_then(|t| t.tag()).is_some(),
            ..Routing::default()
        };
        let mut leading = true;
        for route in req.routes() {
            let Ok(na) = route else {
                return Err((400, "Malformed Route"));
            };
            let uri = na.uri();
            if leading && self.ctx.is_us(&uri) {
                if r.ours == 0 {
                    r.ftag = uri.param("ftag").map(<[u8]>::to_vec);
                    r.caller_flow = uri.param("cxc").and_then(Dest::from_flow_token);
                    r.callee_flow = uri.param("cxe").and_then(Dest::from_flow_token);
                }
                r.ours += 1;
            } else {
                leading = false;
                r.remaining += 1;
            }
        }
        Ok(r)
    }

    /// Forwards a request inside a dialog this proxy record-routed along its route set
    /// (§16.4, §16.6 step 6–7).
    pub(crate) fn forward_in_dialog(
        &self,
        req: &Request,
        peer: &Peer,
        routing: &Routing,
        t: Instant,
    ) -> Outcome {
        let Some(dest) = self.in_dialog_dest(req, routing) else {
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
        let target = Target {
            ruri: String::new(),
            dest,
            routes: Vec::new(),
        };
        self.start_forwarding(req, peer, plan, VecDeque::from([vec![target]]), t)
    }

    fn in_dialog_dest(&self, req: &Request, routing: &Routing) -> Option<Dest> {
        if routing.remaining > 0 {
            let next = req.routes().nth(routing.ours)?.ok()?;
            return Dest::from_uri(&next.uri());
        }
        // Our Route was the last: the target is the Request-URI, reached over the flow of the
        // leg it points to (§16.6 step 6, with our Record-Route flow parameters).
        let from_tag = req
            .from_addr()
            .ok()
            .and_then(|f| f.tag().map(<[u8]>::to_vec));
        let towards_callee = match (&routing.ftag, &from_tag) {
            (Some(f), Some(t)) => f == t,
            _ => true,
        };
        let flow = if towards_callee {
            routing.callee_flow.clone()
        } else {
            routing.caller_flow.clone()
        };
        if let Some(f) = flow {
            return Some(f);
        }
        let uri = req.uri()?;
        if self.ctx.is_us(&uri) && uri.user().is_none() {
            return None;
        }
        Dest::from_uri(&uri)
    }

    /// ACK for a 2xx (and any ACK without a transaction) is forwarded statelessly (§16.11).
    pub(crate) fn forward_ack(&self, req: &Request, peer: &Peer) -> Outcome {
        // An ACK for a final response this element generated itself (To tag ours): absorbed.
        if req
            .to_addr()
            .ok()
            .and_then(|t| t.tag())
            .is_some_and(|tag| tag == self.ctx.to_tag)
        {
            return Outcome::Nothing;
        }
        let Ok(routing) = self.route_info(req) else {
            return Outcome::Nothing;
        };
        if !routing.in_dialog() {
            return Outcome::Nothing;
        }
        let Some(dest) = self.in_dialog_dest(req, &routing) else {
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
        let target = Target {
            ruri: String::new(),
            dest: dest.clone(),
            routes: Vec::new(),
        };
        match self.render_branch(req, peer, &plan, &target, &branch) {
            Some(bytes) => Outcome::Send(vec![Send { dest, bytes }]),
            None => Outcome::Nothing,
        }
    }

    /// §16.3–§16.5 for a request outside a dialog: local answers, the CUSAX refusals,
    /// authentication of local callers, target determination, forwarding.
    pub(crate) fn forward_initial(
        &self,
        reg: &Registrar,
        now: i64,
        req: &Request,
        peer: &Peer,
        routing: &Routing,
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
            Scheme::Sip | Scheme::Sips | Scheme::Tel => {
                self.local_targets(reg, now, req, peer, &ruri)
            }
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
                VecDeque::from([vec![Target {
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

    /// The account owning the Request-URI (own AOR, SIP alias or number alias) and its
    /// bindings as serial groups of parallel targets (§16.5, RFC 3261 §16.6 with q-values).
    /// `Ok(None)`: not a served domain.
    fn local_targets(
        &self,
        reg: &Registrar,
        now: i64,
        req: &Request,
        peer: &Peer,
        ruri: &Uri<'_>,
    ) -> Result<Option<Targets>, Outcome> {
        let Some((user, realm)) = self.callee_user(req, peer, ruri)? else {
            return Ok(None);
        };
        let unavailable = || self.ctx.simple(req, peer, 480, "Temporarily Unavailable");
        let policy = self.ctx.cfg.proxy.nat_traversal;
        let gr = ruri.gr().map(|g| String::from_utf8_lossy(g).into_owned());
        if gr.is_some()
            && let Some((aor, instance)) = reg.resolve_temp_gruu(&user)
        {
            // A temporary GRUU: exactly the device that registered the instance (RFC 5627 §5.1).
            let found = instance_targets(reg, now, &aor, &instance, policy);
            if found.is_empty() {
                return Err(unavailable());
            }
            return Ok(Some((VecDeque::from([found]), aor.account_id())));
        }
        let acct = self.callee_account(req, peer, &user, &realm)?;
        if acct.locked {
            return Err(unavailable());
        }
        let mut bindings = account_bindings(reg, &acct, now);
        if let Some(gr) = gr.filter(|g| !g.is_empty()) {
            // RFC 5627 §5.1: a GRUU reaches exactly the device of that instance.
            bindings.retain(|b| b.instance.as_deref().is_some_and(|i| gr_matches(i, &gr)));
        }
        if bindings.is_empty() {
            return Err(unavailable());
        }
        let groups = q_groups(bindings, policy);
        if groups.is_empty() {
            return Err(unavailable());
        }
        Ok(Some((groups, Some(acct.id.clone()))))
    }

    /// The user part and served domain the Request-URI names: `tel:+4930123` is the number
    /// alias in the first served domain. `Ok(None)`: not a served domain.
    fn callee_user(
        &self,
        req: &Request,
        peer: &Peer,
        ruri: &Uri<'_>,
    ) -> Result<Option<(String, Domain)>, Outcome> {
        if ruri.scheme() == Scheme::Tel {
            let text = std::str::from_utf8(ruri.as_bytes()).unwrap_or_default();
            let num = text
                .get(4..)
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
            return Ok(self.ctx.cfg.domains.first().map(|d| (num, d.clone())));
        }
        let Some(host) = ruri.host() else {
            return Ok(None);
        };
        let Some(realm) = self.ctx.served(host.as_bytes()) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(ruri.as_bytes()).unwrap_or_default();
        let Ok(aor) = Aor::parse(text) else {
            return Err(self.ctx.simple(req, peer, 404, "Not Found"));
        };
        let Some(user) = aor.user() else {
            return Err(self.ctx.simple(req, peer, 404, "Not Found"));
        };
        Ok(Some((user, realm.clone())))
    }

    /// Finds the account a user part names: the account itself, or an alias of one.
    fn callee_account(
        &self,
        req: &Request,
        peer: &Peer,
        user: &str,
        realm: &Domain,
    ) -> Result<Arc<CachedAccount>, Outcome> {
        match self.accounts.get(user, realm.as_str()) {
            Lookup::Hit(a) => return Ok(a),
            Lookup::Miss => {
                return Err(Outcome::NeedAccount {
                    user: user.to_owned(),
                    realm: realm.clone(),
                });
            }
            Lookup::Unknown => {}
        }
        let alias = if is_phone_number(user) {
            Alias::parse(user).ok()
        } else {
            Aor::parse(&format!("sip:{user}@{}", realm.as_str()))
                .ok()
                .map(Alias::Sip)
        };
        let Some(alias) = alias else {
            return Err(self.ctx.simple(req, peer, 404, "Not Found"));
        };
        match self.accounts.alias(alias.as_str(), realm.as_str()) {
            None => Err(Outcome::NeedAlias {
                alias,
                realm: realm.clone(),
            }),
            Some(None) => Err(self.ctx.simple(req, peer, 404, "Not Found")),
            Some(Some(owner)) => match self.accounts.get(&owner, realm.as_str()) {
                Lookup::Hit(a) => Ok(a),
                Lookup::Miss => Err(Outcome::NeedAccount {
                    user: owner,
                    realm: realm.clone(),
                }),
                Lookup::Unknown => Err(self.ctx.simple(req, peer, 404, "Not Found")),
            },
        }
    }
}

/// The unexpired bindings of `aor` registered by device `instance`, as parallel targets.
fn instance_targets(
    reg: &Registrar,
    now: i64,
    aor: &Aor,
    instance: &str,
    policy: NatTraversal,
) -> Vec<Target> {
    reg.location().read(aor, |list| {
        list.iter()
            .filter(|b| b.expires_at > now && b.instance.as_deref() == Some(instance))
            .filter_map(|b| binding_target(b, policy))
            .collect()
    })
}

/// The unexpired bindings of every AOR of `acct`: its own, its SIP aliases and its numbers.
fn account_bindings(reg: &Registrar, acct: &CachedAccount, now: i64) -> Vec<cusax_store::Binding> {
    let domain = acct.id.domain().as_str();
    let mut aors: Vec<Aor> = acct.aors.clone();
    for n in &acct.numbers {
        if let Ok(a) = Aor::parse(&format!("sip:{n}@{domain}")) {
            aors.push(a);
        }
    }
    let mut bindings = Vec::new();
    for aor in &aors {
        reg.location().read(aor, |list| {
            bindings.extend(list.iter().filter(|b| b.expires_at > now).cloned());
        });
    }
    bindings
}

/// Highest q first; equal q in parallel (RFC 3261 §16.6, "q-value" serial search). Bindings
/// that cannot be reached are left out.
fn q_groups(
    mut bindings: Vec<cusax_store::Binding>,
    policy: NatTraversal,
) -> VecDeque<Vec<Target>> {
    bindings.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(1000)));
    let mut groups: VecDeque<Vec<Target>> = VecDeque::new();
    let mut last_q = None;
    for b in bindings {
        let q = b.q.unwrap_or(1000);
        let Some(target) = binding_target(&b, policy) else {
            continue;
        };
        if last_q == Some(q)
            && let Some(g) = groups.back_mut()
        {
            g.push(target);
        } else {
            groups.push_back(vec![target]);
        }
        last_q = Some(q);
    }
    groups
}

/// Where a binding is reached: its Path; else, when `policy` says so for this binding (see
/// [`crate::nat::use_flow`]), the flow it registered over (the source address and transport
/// of the REGISTER, RFC 5626 §5.3 / RFC 3581); else its Contact (RFC 3261 §16.5).
fn binding_target(b: &cusax_store::Binding, policy: NatTraversal) -> Option<Target> {
    let contact = Uri::parse(b.contact.as_bytes())?;
    if let Some(first) = b.path.first() {
        let na = cusax_sip_proto::message::headers::NameAddr::parse(first.as_bytes())?;
        return Some(Target {
            ruri: b.contact.clone(),
            dest: Dest::from_uri(&na.uri())?,
            routes: b.path.clone(),
        });
    }
    let transport = Transport::from_name(b.transport.as_bytes()).unwrap_or(Transport::Udp);
    let dest = match b.source {
        Some(addr) if crate::nat::use_flow(b, policy) => Dest {
            transport,
            hop: NextHop::Addr(addr),
        },
        _ => Dest::from_uri(&contact)?,
    };
    Some(Target {
        ruri: b.contact.clone(),
        dest,
        routes: Vec::new(),
    })
}

/// Renders one forwarded copy; `None` when the request cannot be edited.
impl Proxy {
    pub(crate) fn render_branch(
        &self,
        req: &Request,
        peer: &Peer,
        plan: &Plan,
        target: &Target,
        branch: &str,
    ) -> Option<Bytes> {
        let mut e = Edits::new(req);
        let ip = super::peer_ip(&peer.addr);
        if peer.transport == Transport::Udp || req.top_via().is_ok_and(|v| v.rport().is_some()) {
            let _ = e.set_top_via_received(&ip, peer.addr.port());
        }
        if !target.ruri.is_empty() {
            e.set_request_uri(target.ruri.as_bytes());
        }
        e.remove_routes(plan.our_routes);
        if !target.routes.is_empty() {
            let routes: Vec<&[u8]> = target.routes.iter().map(String::as_bytes).collect();
            e.insert_routes(&routes);
        }
        e.decrement_max_forwards().ok()?;
        let adv = &self.ctx.cfg.proxy.advertised;
        let port_of = |t: Transport| match t {
            Transport::Tls => adv.tls_port.unwrap_or(5061),
            _ => adv.port,
        };
        let host = bracket(&adv.host);
        let out_t = target.dest.transport;
        let rr_values: Vec<String> = if plan.record_route {
            let mut params = String::new();
            if let Some(f) = &plan.ftag {
                params.push_str(";ftag=");
                params.push_str(&String::from_utf8_lossy(f));
            }
            if let Some(c) = &plan.caller_flow {
                params.push_str(";cxc=");
                params.push_str(c);
            }
            if let Some(c) = target.dest.flow_token() {
                params.push_str(";cxe=");
                params.push_str(&c);
            }
            let rr = |t: Transport| {
                format!(
                    "<sip:{host}:{};transport={};lr{params}>",
                    port_of(t),
                    t.as_str()
                )
            };
            // RFC 5658: record-route twice when the two legs use different transports.
            if out_t == peer.transport {
                vec![rr(out_t)]
            } else {
                vec![rr(out_t), rr(peer.transport)]
            }
        } else {
            Vec::new()
        };
        for v in &rr_values {
            e.insert_record_route(v.as_bytes());
        }
        let via = format!(
            "SIP/2.0/{} {host}:{};branch={branch}",
            out_t.via_name(),
            port_of(out_t)
        );
        e.insert_via(via.as_bytes());
        forward::apply_identity(&mut e, req, plan);
        Some(e.render().freeze())
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `gr` names the instance as `urn:uuid:…` (RFC 5627 §3.2); compare without quoting.
fn gr_matches(instance: &str, gr: &str) -> bool {
    instance.eq_ignore_ascii_case(gr)
}
