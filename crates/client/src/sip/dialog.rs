//! RFC 3261 §12: dialog state — identifiers, route set, remote target and CSeq — and the
//! in-dialog requests built from it (§12.2.1.1, loose and strict routing).

use cusax_sip_proto::message::RequestBuilder;
use cusax_sip_proto::{Request, Response};

/// One dialog, seen from this user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag (From of our requests).
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
    /// Our URI, in angle brackets.
    pub local_uri: String,
    /// The peer's URI, in angle brackets.
    pub remote_uri: String,
    /// The peer's Contact URI: the Request-URI of in-dialog requests.
    pub remote_target: String,
    /// Route values in the order requests carry them.
    pub route_set: Vec<String>,
    /// The last CSeq number we used.
    pub local_cseq: u32,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn contact_uri(msg: &cusax_sip_proto::message::MessageHead) -> Option<String> {
    use cusax_sip_proto::message::headers::ContactValue;
    match msg.contacts().next()? {
        Ok(ContactValue::Addr(a)) => Some(text(a.uri().as_bytes())),
        _ => None,
    }
}

fn record_routes(msg: &cusax_sip_proto::message::MessageHead) -> Vec<String> {
    msg.record_routes()
        .filter_map(Result::ok)
        .map(|r| text(r.as_bytes()))
        .collect()
}

impl Dialog {
    /// The caller's dialog from a 2xx to its INVITE (§12.1.2): route set is the reversed
    /// Record-Route of the response, remote target its Contact.
    pub fn uac(invite: &Request, resp: &Response) -> Option<Self> {
        let from = invite.from_addr().ok()?;
        let to = resp.to_addr().ok()?;
        let mut route_set = record_routes(resp);
        route_set.reverse();
        Some(Self {
            call_id: text(invite.call_id().ok()?),
            local_tag: text(from.tag()?),
            remote_tag: text(to.tag()?),
            local_uri: format!("<{}>", text(from.uri().as_bytes())),
            remote_uri: format!("<{}>", text(to.uri().as_bytes())),
            remote_target: contact_uri(resp)?,
            route_set,
            local_cseq: invite.cseq().ok()?.number,
        })
    }

    /// The callee's dialog from an INVITE and its chosen tag (§12.1.1): route set is the
    /// Record-Route of the request in order, remote target its Contact.
    pub fn uas(invite: &Request, local_tag: &str) -> Option<Self> {
        let from = invite.from_addr().ok()?;
        let to = invite.to_addr().ok()?;
        Some(Self {
            call_id: text(invite.call_id().ok()?),
            local_tag: local_tag.to_owned(),
            remote_tag: text(from.tag()?),
            local_uri: format!("<{}>", text(to.uri().as_bytes())),
            remote_uri: format!("<{}>", text(from.uri().as_bytes())),
            remote_target: contact_uri(invite)?,
            route_set: record_routes(invite),
            local_cseq: 0,
        })
    }

    /// Whether a request received belongs to this dialog (§12.2.2): Call-ID, its From tag is
    /// the remote tag and its To tag ours.
    pub fn matches(&self, req: &Request) -> bool {
        let (Ok(call_id), Ok(from), Ok(to)) = (req.call_id(), req.from_addr(), req.to_addr())
        else {
            return false;
        };
        call_id == self.call_id.as_bytes()
            && from.tag() == Some(self.remote_tag.as_bytes())
            && to.tag() == Some(self.local_tag.as_bytes())
    }

    /// Starts an in-dialog request with the next CSeq (the ACK for a 2xx reuses the INVITE's
    /// number: pass it as `cseq`). Via and Max-Forwards are the caller's to add first.
    pub fn request(&mut self, method: &str, via: &str, cseq: Option<u32>) -> RequestBuilder {
        let number = cseq.unwrap_or_else(|| {
            self.local_cseq = self.local_cseq.wrapping_add(1);
            self.local_cseq
        });
        // §12.2.1.1: with a strict router first, it becomes the Request-URI and the remote
        // target goes last in the Route set.
        let strict = self.route_set.first().is_some_and(|r| !is_loose(r));
        let (ruri, routes): (String, Vec<String>) = if strict {
            let mut routes: Vec<String> = self.route_set[1..].to_vec();
            routes.push(format!("<{}>", self.remote_target));
            (strip_brackets(&self.route_set[0]), routes)
        } else {
            (self.remote_target.clone(), self.route_set.clone())
        };
        let mut b = RequestBuilder::new(method, ruri.as_bytes())
            .header("Via", via.as_bytes())
            .header("Max-Forwards", b"70")
            .header(
                "From",
                format!("{};tag={}", self.local_uri, self.local_tag).as_bytes(),
            )
            .header(
                "To",
                format!("{};tag={}", self.remote_uri, self.remote_tag).as_bytes(),
            )
            .header("Call-ID", self.call_id.as_bytes())
            .header("CSeq", format!("{number} {method}").as_bytes());
        for r in routes {
            b = b.header("Route", r.as_bytes());
        }
        b
    }
}

fn strip_brackets(v: &str) -> String {
    let inner = v.split_once('<').map_or(v, |(_, r)| r);
    inner.split_once('>').map_or(inner, |(l, _)| l).to_owned()
}

fn is_loose(route: &str) -> bool {
    cusax_sip_proto::message::headers::NameAddr::parse(route.as_bytes())
        .is_some_and(|n| n.uri().is_loose_route())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use cusax_sip_proto::{Limits, SipMessage, parse_datagram};

    fn parse(s: &str) -> SipMessage {
        parse_datagram(Bytes::from(s.replace('\n', "\r\n")), &Limits::default()).expect("parses")
    }

    const INVITE: &str = "INVITE sip:bob@example.org SIP/2.0\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx\n\
        Record-Route: <sip:10.0.0.1;lr;ftag=a1>\n\
        Record-Route: <sip:10.0.0.2;lr>\n\
        From: \"Alice\" <sip:alice@example.org>;tag=a1\n\
        To: <sip:bob@example.org>\nCall-ID: c1\nCSeq: 7 INVITE\n\
        Contact: <sip:alice@127.0.0.1:5070>\nContent-Length: 0\n\n";

    const OK: &str = "SIP/2.0 200 OK\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx\n\
        Record-Route: <sip:10.0.0.1;lr;ftag=a1>\n\
        Record-Route: <sip:10.0.0.2;lr>\n\
        From: \"Alice\" <sip:alice@example.org>;tag=a1\n\
        To: <sip:bob@example.org>;tag=b2\nCall-ID: c1\nCSeq: 7 INVITE\n\
        Contact: <sip:bob@127.0.0.1:5080;transport=udp>\nContent-Length: 0\n\n";

    #[test]
    fn caller_and_callee_see_the_same_dialog_from_both_ends() {
        let SipMessage::Request(inv) = parse(INVITE) else {
            panic!("request")
        };
        let SipMessage::Response(ok) = parse(OK) else {
            panic!("response")
        };
        let mut uac = Dialog::uac(&inv, &ok).expect("uac dialog");
        assert_eq!(
            uac.route_set,
            ["<sip:10.0.0.2;lr>", "<sip:10.0.0.1;lr;ftag=a1>"]
        );
        assert_eq!(uac.remote_target, "sip:bob@127.0.0.1:5080;transport=udp");
        assert_eq!(
            (uac.local_tag.as_str(), uac.remote_tag.as_str()),
            ("a1", "b2")
        );
        let uas = Dialog::uas(&inv, "b2").expect("uas dialog");
        assert_eq!(
            uas.route_set,
            ["<sip:10.0.0.1;lr;ftag=a1>", "<sip:10.0.0.2;lr>"]
        );
        assert_eq!(uas.remote_target, "sip:alice@127.0.0.1:5070");

        let bye = uac
            .request("BYE", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKy", None)
            .build();
        let SipMessage::Request(bye) =
            parse_datagram(bye.freeze(), &Limits::default()).expect("bye")
        else {
            panic!("request")
        };
        assert_eq!(bye.uri_bytes(), b"sip:bob@127.0.0.1:5080;transport=udp");
        assert_eq!(bye.cseq().expect("cseq").number, 8);
        let routes: Vec<_> = bye
            .routes()
            .map(|r| r.expect("route").as_bytes().to_vec())
            .collect();
        assert_eq!(
            routes,
            [&b"<sip:10.0.0.2;lr>"[..], b"<sip:10.0.0.1;lr;ftag=a1>"]
        );
        // The callee's dialog accepts the caller's in-dialog request.
        assert!(uas.matches(&bye));
        assert!(!uac.matches(&bye), "tags are the other way round");
    }

    #[test]
    fn strict_router_becomes_the_request_uri() {
        let SipMessage::Request(inv) = parse(&INVITE.replace(";lr;ftag=a1", ";ftag=a1")) else {
            panic!("request")
        };
        let mut uas = Dialog::uas(&inv, "b2").expect("dialog");
        let bye = uas
            .request("BYE", "SIP/2.0/UDP x;branch=z9hG4bKz", None)
            .build();
        let text = String::from_utf8(bye.to_vec()).expect("utf8");
        assert!(
            text.starts_with("BYE sip:10.0.0.1;ftag=a1 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Route: <sip:10.0.0.2;lr>\r\nRoute: <sip:alice@127.0.0.1:5070>\r\n"),
            "{text}"
        );
        assert!(text.contains("CSeq: 1 BYE\r\n"), "{text}");
    }
}
