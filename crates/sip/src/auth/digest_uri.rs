//! RFC 7616 §3.4.6 and RFC 2617 §3.2.2.5: the digest `uri` must identify the same resource as
//! the Request-URI, for REGISTER (`Authorization`) and proxied requests (`Proxy-Authorization`).
//!
//! Equivalent URIs (RFC 3261 §19.1.4) identify the same resource, and so does any URI that
//! names this server without a user part: a served domain, the advertised host or a listening
//! address, with or without one of our ports and with any parameters. That is what sipp and
//! several phones put there (`sip:127.0.0.1:5060` for a Request-URI `sip:example.org`): the
//! credentials are for this registrar or proxy either way (digest authentication is
//! hop-by-hop, RFC 3261 §22.3), and the nonce binding and nonce-count still prevent replays.
//! The registrar also accepts the AOR being registered (the To URI). A URI naming another
//! user or another host is refused with 400 and counted in
//! `cusax_sip_digest_uri_refused_total{role}`.

use super::Auth;
use crate::types::{Outcome, Peer};
use cusax_sip_proto::Request;
use cusax_sip_proto::message::headers::Credentials;
use cusax_sip_proto::message::uri::{Scheme, Uri};
use std::net::IpAddr;

impl Auth {
    /// Whether the credentials' `uri` identifies the resource of the Request-URI.
    pub(super) fn digest_uri_ok(&self, req: &Request, creds: &Credentials<'_>) -> bool {
        let Some(du) = creds.uri else { return false };
        if du == req.uri_bytes() {
            return true;
        }
        let Some(d) = Uri::parse(du) else {
            return false;
        };
        req.uri().is_some_and(|r| d.equivalent(&r)) || self.names_this_server(&d)
    }

    /// A `sip:`/`sips:` URI without user part whose host is ours and whose port, if any, is
    /// one of our listening ports.
    fn names_this_server(&self, uri: &Uri<'_>) -> bool {
        if !matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) || uri.user().is_some() {
            return false;
        }
        let Some(host) = uri.host() else {
            return false;
        };
        let h = host.as_bytes();
        let adv = &self.ctx.cfg.proxy.advertised;
        let ip = std::str::from_utf8(h)
            .ok()
            .and_then(|t| t.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical());
        let by_ip = ip.is_some_and(|ip| {
            adv.host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical()) == Some(ip)
                || adv.local_ips.iter().any(|l| l.to_canonical() == ip)
        });
        let ours =
            by_ip || h.eq_ignore_ascii_case(adv.host.as_bytes()) || self.ctx.served(h).is_some();
        ours && self.ctx.our_port(uri.port())
    }

    /// 400 for a digest `uri` that names another resource, logged and counted.
    pub(super) fn refuse_digest_uri(
        &self,
        req: &Request,
        peer: &Peer,
        role: &'static str,
    ) -> Outcome {
        tracing::info!(protocol = "sip", peer = %peer.addr, method = %String::from_utf8_lossy(req.method_bytes()), role, reason = "digest uri names another resource", "authentication refused");
        metrics::counter!("cusax_sip_digest_uri_refused_total", "role" => role).increment(1);
        self.ctx
            .simple(req, peer, 400, "Digest URI Does Not Match Request-URI")
    }
}
