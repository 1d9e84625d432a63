//! RFC 3261 §16.4: route information processing — our own Route entries at the top, the
//! flow parameters our Record-Route left in them, and where an in-dialog request goes.

use crate::context::Context;
use crate::types::Dest;
use cusax_sip_proto::Request;

/// What route processing found.
#[derive(Debug, Default)]
pub(super) struct Routing {
    /// Leading Route values that name this proxy (removed when forwarding).
    pub(super) ours: usize,
    /// Route values after ours.
    pub(super) remaining: usize,
    /// The request has a To tag.
    pub(super) to_tag: bool,
    /// `ftag`, `cxc`, `cxe` of our first Route entry.
    pub(super) ftag: Option<Vec<u8>>,
    pub(super) caller_flow: Option<Dest>,
    pub(super) callee_flow: Option<Dest>,
}

impl Routing {
    /// A request inside a dialog this proxy record-routed: it has a To tag and our Route
    /// (RFC 3261 §12.2.1.1, §16.4). Only these follow the route set without authentication.
    pub(super) fn in_dialog(&self) -> bool {
        self.to_tag && self.ours > 0
    }

    /// A To tag but none of our Route entries: the dialog was not record-routed by us, so the
    /// request is not ours to relay (we would be an open relay towards any host otherwise).
    pub(super) fn foreign_dialog(&self) -> bool {
        self.to_tag && self.ours == 0
    }
}

/// §16.4: counts our Route entries at the top and reads their flow parameters.
pub(super) fn route_info(ctx: &Context, req: &Request) -> Result<Routing, (u16, &'static str)> {
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
        if leading && ctx.is_us(&uri) {
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

/// Where an in-dialog request goes: the next Route, or the Request-URI over the flow of
/// the leg it points to.
pub(super) fn in_dialog_dest(ctx: &Context, req: &Request, routing: &Routing) -> Option<Dest> {
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
    if ctx.is_us(&uri) && uri.user().is_none() {
        return None;
    }
    Dest::from_uri(&uri)
}
