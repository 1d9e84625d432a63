//! RFC 3261 §16.3 (Max-Forwards, loops), §16.6 (copying and editing the request), §22.3
//! (proxy authentication), RFC 3325/3323 (asserted identity, privacy) and RFC 7081 §3.5 /
//! §6 (the `impp` Call-Info that ties a call to the caller's XMPP address).

use super::route::Routing;
use super::target::Target;
use crate::accounts::CachedAccount;
use crate::context::Context;
use crate::types::{Dest, NextHop, Peer, Transport};
use bytes::Bytes;
use cusax_sip_proto::Request;
use cusax_sip_proto::Response;
use cusax_sip_proto::message::headers::{CallInfo, parse_max_forwards};
use cusax_sip_proto::message::{Edits, HeaderKind, Method};

/// Branch parameter prefix of this proxy: the RFC 3261 magic cookie plus `cx`.
pub(crate) const BRANCH_PREFIX: &str = "z9hG4bKcx";

/// What the proxy asserts about the caller in forwarded requests.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// In-dialog requests: identity headers pass unchanged.
    Untouched,
    /// An authenticated local caller.
    Local {
        /// `sip:user@domain` asserted in P-Asserted-Identity.
        aor: String,
        /// The caller's bare JID, stamped as `impp` Call-Info on INVITEs.
        jid: String,
        /// The caller's domain policy says to stamp Call-Info.
        stamp: bool,
        /// `Privacy: id` (or user/header): no PAI, no `impp` Call-Info (RFC 3323, AC-21).
        private: bool,
        /// Our digest realm, whose Proxy-Authorization is consumed here (§22.3).
        realm: String,
    },
    /// A caller we did not authenticate (another domain): identity claims about our users
    /// are removed.
    Foreign {
        /// The served domains.
        served: Vec<String>,
    },
}

/// Everything about forwarding one request that does not depend on the target.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) record_route: bool,
    pub(crate) our_routes: usize,
    pub(crate) ftag: Option<Vec<u8>>,
    pub(crate) caller_flow: Option<String>,
    pub(crate) loop_hash: u32,
    pub(crate) identity: Identity,
    pub(crate) invite: bool,
    /// Local accounts in an initial INVITE (caller when authenticated, callee when local),
    /// for the call events.
    pub(crate) parties: Vec<cusax_account::AccountId>,
}

impl Plan {
    pub(crate) fn in_dialog(req: &Request, _peer: &Peer, routing: &Routing) -> Self {
        Self {
            record_route: false,
            our_routes: routing.ours,
            ftag: None,
            caller_flow: None,
            loop_hash: 0,
            identity: Identity::Untouched,
            invite: req.method() == Method::Invite,
            parties: Vec::new(),
        }
    }

    pub(crate) fn initial(
        ctx: &Context,
        req: &Request,
        peer: &Peer,
        routing: &Routing,
        caller: Option<&CachedAccount>,
    ) -> Self {
        let dialog_creating = matches!(req.method(), Method::Invite | Method::Subscribe)
            || req.method_bytes() == b"REFER";
        let identity = match caller {
            Some(acct) => {
                let domain = acct.id.domain().as_str();
                Identity::Local {
                    aor: acct.id.aor().as_str().to_owned(),
                    jid: acct.id.bare_jid().to_string(),
                    stamp: ctx.cfg.proxy.policy(domain).call_info,
                    private: is_private(req),
                    realm: domain.to_owned(),
                }
            }
            None => Identity::Foreign {
                served: ctx
                    .cfg
                    .domains
                    .iter()
                    .map(|d| d.as_str().to_owned())
                    .collect(),
            },
        };
        Self {
            record_route: dialog_creating,
            our_routes: routing.ours,
            ftag: req
                .from_addr()
                .ok()
                .and_then(|f| f.tag().map(<[u8]>::to_vec))
                .filter(|t| {
                    t.iter()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(b))
                }),
            caller_flow: Dest {
                transport: peer.transport,
                hop: NextHop::Addr(peer.addr),
            }
            .flow_token(),
            loop_hash: loop_hash(req),
            identity,
            invite: req.method() == Method::Invite,
            parties: caller.map(|a| vec![a.id.clone()]).unwrap_or_default(),
        }
    }
}

/// `Privacy: id`, `user` or `header` asks that the caller's identity be withheld.
fn is_private(req: &Request) -> bool {
    req.headers()
        .filter(|h| h.name.eq_ignore_ascii_case(b"Privacy"))
        .flat_map(|h| h.value.split(|&b| b == b';' || b == b','))
        .any(|v| {
            let v = v.trim_ascii();
            v.eq_ignore_ascii_case(b"id")
                || v.eq_ignore_ascii_case(b"user")
                || v.eq_ignore_ascii_case(b"header")
        })
}

/// §16.3 step 3: 483 when Max-Forwards is zero, 400 when it is not a number.
pub(crate) fn check_max_forwards(req: &Request) -> Result<(), (u16, &'static str)> {
    match req.first(HeaderKind::MaxForwards) {
        None => Ok(()),
        Some(h) => match parse_max_forwards(h.value) {
            Some(0) => Err((483, "Too Many Hops")),
            Some(_) => Ok(()),
            None => Err((400, "Malformed Max-Forwards")),
        },
    }
}

/// §16.6 step 8 / §16.3 step 4: a hash of what identifies the request at this hop; our
/// branch carries it, so a request that returns with an identical hash is a loop, not a
/// spiral.
pub(crate) fn loop_hash(req: &Request) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h = (h ^ u32::from(x)).wrapping_mul(0x0100_0193);
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0193);
    };
    eat(req.uri_bytes());
    eat(req
        .from_addr()
        .ok()
        .and_then(|f| f.tag())
        .unwrap_or_default());
    eat(req.call_id().unwrap_or_default());
    if let Ok(c) = req.cseq() {
        eat(&c.number.to_le_bytes());
    }
    for v in req.values_of(HeaderKind::ProxyRequire) {
        eat(v);
    }
    h
}

/// A Via of ours whose branch carries this request's loop hash.
pub(crate) fn is_loop(req: &Request, adv: &crate::config::Advertised) -> bool {
    let want = format!("{}{:08x}.", BRANCH_PREFIX, loop_hash(req));
    req.vias().filter_map(Result::ok).any(|v| {
        v.host()
            .as_bytes()
            .eq_ignore_ascii_case(adv.host.as_bytes())
            && v.branch().is_some_and(|b| b.starts_with(want.as_bytes()))
    })
}

/// The response without our Via on top (§16.7 step 3).
pub(crate) fn strip_top_via(resp: &Response) -> Option<Bytes> {
    let mut e = Edits::for_response(resp);
    if !e.remove_first_value(HeaderKind::Via) {
        return None;
    }
    Some(e.render().freeze())
}

fn is_impp(v: &[u8]) -> bool {
    CallInfo::parse(v).is_some_and(|c| c.is_impp())
}

/// The domain of an `xmpp:` Call-Info URI (`xmpp:user@domain/res?query`).
fn xmpp_domain(v: &[u8]) -> Option<String> {
    let bare = CallInfo::parse(v)?.xmpp_bare_jid()?;
    Some(
        bare.rsplit_once('@')
            .map_or(bare, |(_, d)| d)
            .to_ascii_lowercase(),
    )
}

/// Removes the Call-Info values for which `drop` says so (whole lines when nothing is left).
fn filter_call_info(e: &mut Edits<'_>, req: &Request, drop: impl Fn(&[u8]) -> bool) {
    for h in req.headers_of(HeaderKind::CallInfo) {
        let values: Vec<&[u8]> = h.values().collect();
        let kept: Vec<&[u8]> = values.iter().copied().filter(|v| !drop(v)).collect();
        if kept.len() == values.len() {
            continue;
        }
        if kept.is_empty() {
            let _ = e.remove_header(h.index);
        } else {
            let joined = kept.join(&b", "[..]);
            let _ = e.replace_header_value(h.index, &joined);
        }
    }
}

fn remove_named(e: &mut Edits<'_>, req: &Request, names: &[&str]) {
    for h in req.headers() {
        if names
            .iter()
            .any(|n| h.name.eq_ignore_ascii_case(n.as_bytes()))
        {
            let _ = e.remove_header(h.index);
        }
    }
}

/// Identity edits of an initial request: RFC 3325 assertion, RFC 3323 privacy and the CUSAX
/// `impp` Call-Info (requirements SS-02, SS-03, SS-04; AC-20, AC-21, AC-26).
pub(crate) fn apply_identity(e: &mut Edits<'_>, req: &Request, plan: &Plan) {
    match &plan.identity {
        Identity::Untouched => {}
        Identity::Local {
            aor,
            jid,
            stamp,
            private,
            realm,
        } => {
            // User agents are outside the trust domain: their identity claims are dropped.
            remove_named(e, req, &["P-Asserted-Identity", "P-Preferred-Identity"]);
            // Our own credentials are consumed here (§22.3).
            for h in req.headers_of(HeaderKind::ProxyAuthorization) {
                let ours = cusax_sip_proto::message::headers::Credentials::parse(h.value)
                    .and_then(|c| c.realm.map(|r| r.eq_ignore_ascii_case(realm.as_bytes())))
                    .unwrap_or(false);
                if ours {
                    let _ = e.remove_header(h.index);
                }
            }
            if *stamp {
                filter_call_info(e, req, is_impp);
                if plan.invite && !private {
                    let v = format!("<xmpp:{jid}>;purpose=impp");
                    e.append_header("Call-Info", v.as_bytes());
                }
            }
            if !private {
                let v = format!("<{aor}>");
                e.append_header("P-Asserted-Identity", v.as_bytes());
            }
        }
        Identity::Foreign { served } => {
            remove_named(e, req, &["P-Asserted-Identity", "P-Preferred-Identity"]);
            filter_call_info(e, req, |v| {
                is_impp(v) && xmpp_domain(v).is_some_and(|d| served.contains(&d))
            });
        }
    }
}

/// Renders one forwarded copy (§16.6 steps 1–8); `None` when the request cannot be edited.
pub(super) fn render_branch(
    ctx: &Context,
    req: &Request,
    peer: &Peer,
    plan: &Plan,
    target: &Target,
    branch: &str,
) -> Option<Bytes> {
    let mut e = Edits::new(req);
    let ip = peer_ip(&peer.addr);
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
    let adv = &ctx.cfg.proxy.advertised;
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
    apply_identity(&mut e, req, plan);
    Some(e.render().freeze())
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// A peer's address as text, without allocation for the common cases.
fn peer_ip(addr: &std::net::SocketAddr) -> String {
    addr.ip().to_string()
}
