//! RFC 3261 §8.2.6, §9.1, §17.1.1.3, §18.2.1, RFC 3581 §4: building responses, requests,
//! CANCEL and non-2xx ACK.

use std::io::Write as _;

use bytes::{BufMut, BytesMut};

use super::headers::{Rport, Via};
use super::{HeaderKind, Request, Response};

fn put_header(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

fn put_body(out: &mut BytesMut, body: Option<(&[u8], &[u8])>) {
    match body {
        Some((ctype, b)) => {
            put_header(out, "Content-Type", ctype);
            put_len(out, b.len());
            out.put_slice(b);
        }
        None => put_len(out, 0),
    }
}

fn put_len(out: &mut BytesMut, n: usize) {
    let mut w = out.writer();
    // Writing into a BytesMut cannot fail.
    let _ = write!(w, "Content-Length: {n}\r\n\r\n");
}

/// Renders a Via value with `received` and a filled-in `rport` (RFC 3261 §18.2.1, RFC 3581 §4).
pub(crate) fn via_with_received(out: &mut BytesMut, via: &Via<'_>, ip: &str, port: u16) {
    out.put_slice(via.protocol());
    out.put_u8(b'/');
    out.put_slice(via.transport());
    out.put_u8(b' ');
    out.put_slice(via.sent_by());
    for p in via.params().iter() {
        if p.name.eq_ignore_ascii_case(b"received") {
            continue;
        }
        out.put_u8(b';');
        if p.name.eq_ignore_ascii_case(b"rport") && via.rport() == Some(Rport::Requested) {
            let _ = write!(out.writer(), "rport={port}");
            continue;
        }
        out.put_slice(p.name);
        if let Some(v) = p.value {
            out.put_u8(b'=');
            out.put_slice(v);
        }
    }
    let needs_received = via.host().as_bytes() != ip.as_bytes() || via.rport().is_some();
    if needs_received {
        out.put_slice(b";received=");
        out.put_slice(ip.as_bytes());
    }
}

/// Builds a response to a request: copies Via(s), From, To, Call-ID and CSeq (RFC 3261 §8.2.6).
#[derive(Debug)]
pub struct ResponseBuilder<'r> {
    req: &'r Request,
    code: u16,
    reason: &'r str,
    to_tag: Option<&'r [u8]>,
    received: Option<(&'r str, u16)>,
    extra: BytesMut,
    body: Option<(&'r [u8], &'r [u8])>,
}

impl<'r> ResponseBuilder<'r> {
    /// Starts a response with a status code and reason phrase.
    pub fn new(req: &'r Request, code: u16, reason: &'r str) -> Self {
        Self {
            req,
            code,
            reason,
            to_tag: None,
            received: None,
            extra: BytesMut::new(),
            body: None,
        }
    }

    /// Adds `;tag=` to To when the request's To has no tag (RFC 3261 §8.2.6.2).
    pub fn to_tag(mut self, tag: &'r [u8]) -> Self {
        self.to_tag = Some(tag);
        self
    }

    /// Records the packet's source in the top Via (`received`, and `rport` if requested).
    pub fn via_received(mut self, ip: &'r str, port: u16) -> Self {
        self.received = Some((ip, port));
        self
    }

    /// Appends an extra header field.
    pub fn header(mut self, name: &str, value: &[u8]) -> Self {
        put_header(&mut self.extra, name, value);
        self
    }

    /// Sets a body with its Content-Type.
    pub fn body(mut self, content_type: &'r [u8], body: &'r [u8]) -> Self {
        self.body = Some((content_type, body));
        self
    }

    /// Renders the response.
    pub fn build(self) -> BytesMut {
        let mut out =
            BytesMut::with_capacity(256 + self.req.bytes().len().min(1024) + self.extra.len());
        let _ = write!(
            (&mut out).writer(),
            "SIP/2.0 {} {}\r\n",
            self.code,
            self.reason
        );
        let mut first_via = true;
        for h in self.req.headers_of(HeaderKind::Via) {
            out.put_slice(b"Via: ");
            match (first_via, self.received, self.req.top_via()) {
                (true, Some((ip, port)), Ok(top)) => {
                    via_with_received(&mut out, &top, ip, port);
                    let rest = &h.value[top.as_bytes().len().min(h.value.len())..];
                    out.put_slice(rest);
                }
                _ => out.put_slice(h.value),
            }
            out.put_slice(b"\r\n");
            first_via = false;
        }
        for kind in [
            HeaderKind::From,
            HeaderKind::To,
            HeaderKind::CallId,
            HeaderKind::CSeq,
        ] {
            let Some(h) = self.req.first(kind) else {
                continue;
            };
            out.put_slice(kind.canonical_name().as_bytes());
            out.put_slice(b": ");
            out.put_slice(h.value);
            if kind == HeaderKind::To
                && let Some(tag) = self.to_tag
                && self.req.to_addr().is_ok_and(|t| t.tag().is_none())
            {
                out.put_slice(b";tag=");
                out.put_slice(tag);
            }
            out.put_slice(b"\r\n");
        }
        out.put_slice(&self.extra);
        put_body(&mut out, self.body);
        out
    }
}

/// Builds a request from a method, Request-URI and header fields; Content-Length is added.
#[derive(Debug)]
pub struct RequestBuilder {
    out: BytesMut,
}

impl RequestBuilder {
    /// Starts a request line.
    pub fn new(method: &str, uri: &[u8]) -> Self {
        let mut out = BytesMut::with_capacity(512);
        out.put_slice(method.as_bytes());
        out.put_u8(b' ');
        out.put_slice(uri);
        out.put_slice(b" SIP/2.0\r\n");
        Self { out }
    }

    /// Appends a header field.
    pub fn header(mut self, name: &str, value: &[u8]) -> Self {
        put_header(&mut self.out, name, value);
        self
    }

    /// Finishes without a body.
    pub fn build(self) -> BytesMut {
        self.build_with_body(None)
    }

    /// Finishes with an optional `(content type, body)`.
    pub fn build_with_body(mut self, body: Option<(&[u8], &[u8])>) -> BytesMut {
        put_body(&mut self.out, body);
        self.out
    }
}

fn copy_headers(mut b: RequestBuilder, req: &Request, kinds: &[HeaderKind]) -> RequestBuilder {
    for &kind in kinds {
        for h in req.headers_of(kind) {
            b = b.header(kind.canonical_name(), h.value);
        }
    }
    b
}

/// Builds the CANCEL for a client request (RFC 3261 §9.1): same Request-URI, top Via, From, To,
/// Call-ID, CSeq number and Route set.
pub fn build_cancel(req: &Request) -> Option<BytesMut> {
    let cseq = req.cseq().ok()?;
    let via = req.top_via().ok()?;
    let b = RequestBuilder::new("CANCEL", req.uri_bytes()).header("Via", via.as_bytes());
    let b = copy_headers(
        b,
        req,
        &[HeaderKind::From, HeaderKind::To, HeaderKind::CallId],
    );
    let b = b
        .header("CSeq", format!("{} CANCEL", cseq.number).as_bytes())
        .header("Max-Forwards", b"70");
    Some(copy_headers(b, req, &[HeaderKind::Route]).build())
}

/// Builds the ACK for a non-2xx final response (RFC 3261 §17.1.1.3): To comes from the
/// response, everything else from the INVITE.
pub fn build_ack(req: &Request, resp: &Response) -> Option<BytesMut> {
    let cseq = req.cseq().ok()?;
    let via = req.top_via().ok()?;
    let to = resp.first(HeaderKind::To)?;
    let b = RequestBuilder::new("ACK", req.uri_bytes()).header("Via", via.as_bytes());
    let b = copy_headers(b, req, &[HeaderKind::From]).header("To", to.value);
    let b = copy_headers(b, req, &[HeaderKind::CallId]);
    let b = b
        .header("CSeq", format!("{} ACK", cseq.number).as_bytes())
        .header("Max-Forwards", b"70");
    Some(copy_headers(b, req, &[HeaderKind::Route]).build())
}
