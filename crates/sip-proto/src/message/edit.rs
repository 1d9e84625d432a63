//! RFC 3261 §16.6: forwarding a request as an edit list over the original bytes.
//!
//! A proxy changes a handful of things (Via, Record-Route, Route, Request-URI, Max-Forwards);
//! everything else is copied verbatim in one pass, so untouched headers are never re-rendered.

use bytes::{BufMut, BytesMut};

use super::headers::parse_max_forwards;
use super::text::{is_lws, trim};
use super::{HeaderKind, MessageHead, Request, Response, Span};

/// Why an edit could not be applied.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// Max-Forwards is zero: answer 483 Too Many Hops instead of forwarding (§16.3 step 3).
    #[error("Max-Forwards is zero")]
    TooManyHops,
    /// Max-Forwards is present but not a number 0..=255.
    #[error("malformed Max-Forwards")]
    BadMaxForwards,
    /// The header index does not exist.
    #[error("no header at that index")]
    NoSuchHeader,
    /// The edit needs a header the message does not have (or one that does not parse).
    #[error("no such header value")]
    NoSuchValue,
}

#[derive(Debug, Clone, Copy)]
struct Op {
    at: u32,
    del_end: u32,
    ins: Span,
    prio: u8,
    seq: u32,
}

/// Pending edits against one message; [`Edits::render`] produces the forwarded bytes.
#[derive(Debug)]
pub struct Edits<'m> {
    msg: &'m MessageHead,
    uri: Option<Span>,
    ops: Vec<Op>,
    arena: Vec<u8>,
}

impl<'m> Edits<'m> {
    /// Starts an empty edit list for a request.
    pub fn new(req: &'m Request) -> Self {
        Self {
            msg: &req.head,
            uri: Some(req.uri),
            ops: Vec::with_capacity(8),
            arena: Vec::with_capacity(256),
        }
    }

    /// Starts an empty edit list for a response (§16.7 step 3: the proxy removes its Via).
    pub fn for_response(resp: &'m Response) -> Self {
        Self {
            msg: &resp.head,
            uri: None,
            ops: Vec::with_capacity(2),
            arena: Vec::new(),
        }
    }

    /// Byte range of the first value of the first header line of `kind`, and whether the
    /// line holds more values after it.
    fn first_value_range(&self, kind: HeaderKind) -> Option<(usize, std::ops::Range<usize>, bool)> {
        let h = self.msg.first(kind)?;
        let e = self.msg.entries[h.index];
        let mut values = h.values();
        let first = values.next()?;
        let buf = self.msg.bytes();
        // `first` borrows the message buffer, so its offset is a pointer difference.
        let start = (first.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
        let end = start + first.len();
        if end > e.value.end as usize {
            return None;
        }
        Some((h.index, start..end, values.next().is_some()))
    }

    /// Removes the first value of the first header line of `kind` (the whole line when it
    /// holds only that value); false when there is none. Used for the top Via of a response.
    pub fn remove_first_value(&mut self, kind: HeaderKind) -> bool {
        let Some((index, r, more)) = self.first_value_range(kind) else {
            return false;
        };
        if more {
            let e = self.msg.entries[index];
            let buf = self.msg.bytes();
            let mut cut = r.end;
            while cut < e.value.end as usize && (buf[cut] == b',' || is_lws(buf[cut])) {
                cut += 1;
            }
            self.push(r.start, cut, &[], 2);
        } else {
            let e = self.msg.entries[index];
            let end = self.line_end(index);
            self.push(e.name.start as usize, end, &[], 2);
        }
        true
    }

    /// Replaces the first value of the first header line of `kind` with `value`.
    pub fn replace_first_value(&mut self, kind: HeaderKind, value: &[u8]) -> Result<(), EditError> {
        let (_, r, _) = self.first_value_range(kind).ok_or(EditError::NoSuchValue)?;
        self.push(r.start, r.end, &[value], 2);
        Ok(())
    }

    /// Adds `received` and fills `rport` in the top Via (RFC 3261 §18.2.1, RFC 3581 §4), so
    /// that the next hop and the client learn the address the request really came from.
    pub fn set_top_via_received(&mut self, ip: &str, port: u16) -> Result<(), EditError> {
        let via = self.msg.top_via().map_err(|_| EditError::NoSuchValue)?;
        let mut out = BytesMut::with_capacity(via.as_bytes().len() + 40);
        super::build::via_with_received(&mut out, &via, ip, port);
        let (_, r, _) = self
            .first_value_range(HeaderKind::Via)
            .ok_or(EditError::NoSuchValue)?;
        self.push(r.start, r.end, &[&out], 2);
        Ok(())
    }

    fn first_header_pos(&self) -> usize {
        self.msg
            .entries
            .first()
            .map_or(self.msg.body_start() - 2, |e| e.name.start as usize)
    }

    fn line_end(&self, index: usize) -> usize {
        self.msg
            .entries
            .get(index + 1)
            .map_or(self.msg.body_start() - 2, |e| e.name.start as usize)
    }

    fn push(&mut self, at: usize, del_end: usize, parts: &[&[u8]], prio: u8) {
        let start = self.arena.len();
        for p in parts {
            self.arena.extend_from_slice(p);
        }
        let seq = u32::try_from(self.ops.len()).unwrap_or(u32::MAX);
        self.ops.push(Op {
            at: Span::new(at, at).start,
            del_end: Span::new(del_end, del_end).start,
            ins: Span::new(start, self.arena.len()),
            prio,
            seq,
        });
    }

    /// Inserts `Via: value` above all other header fields (§16.6 step 8).
    pub fn insert_via(&mut self, value: &[u8]) -> &mut Self {
        let at = self.first_header_pos();
        self.push(at, at, &[b"Via: ", value, b"\r\n"], 0);
        self
    }

    /// Inserts `Record-Route: value` at the top of the header section (§16.6 step 4).
    pub fn insert_record_route(&mut self, value: &[u8]) -> &mut Self {
        let at = self.first_header_pos();
        self.push(at, at, &[b"Record-Route: ", value, b"\r\n"], 1);
        self
    }

    /// Removes the first Route value (§16.4); returns false when there is no Route.
    pub fn remove_first_route(&mut self) -> bool {
        self.remove_first_value(HeaderKind::Route)
    }

    /// Removes the first `n` Route values, which may span several header lines (a proxy that
    /// record-routed twice finds itself twice at the top of the route set).
    pub fn remove_routes(&mut self, n: usize) -> usize {
        let mut removed = 0;
        let lines: Vec<(usize, usize)> = self
            .msg
            .headers_of(HeaderKind::Route)
            .map(|h| (h.index, h.values().count()))
            .collect();
        for (index, count) in lines {
            if removed == n {
                break;
            }
            let e = self.msg.entries[index];
            if count <= n - removed {
                let end = self.line_end(index);
                self.push(e.name.start as usize, end, &[], 2);
                removed += count;
                continue;
            }
            // Part of this line: cut the first values, their commas and following space.
            let Some(h) = self.msg.header(index) else {
                break;
            };
            let buf = self.msg.bytes();
            let mut cut = e.value.start as usize;
            for v in h.values().take(n - removed) {
                let Some(start) = (v.as_ptr() as usize).checked_sub(buf.as_ptr() as usize) else {
                    break;
                };
                cut = start + v.len();
            }
            while cut < e.value.end as usize && (buf[cut] == b',' || is_lws(buf[cut])) {
                cut += 1;
            }
            self.push(e.value.start as usize, cut, &[], 2);
            removed = n;
        }
        removed
    }

    /// Inserts `Route: value` lines above all Route lines, in the order given (§16.6 step 7
    /// for Path, RFC 3327 §5.3).
    pub fn insert_routes(&mut self, values: &[&[u8]]) -> &mut Self {
        let at = self
            .msg
            .first(HeaderKind::Route)
            .map_or(self.msg.body_start() - 2, |h| {
                self.msg.entries[h.index].name.start as usize
            });
        for v in values {
            self.push(at, at, &[b"Route: ", v, b"\r\n"], 3);
        }
        self
    }

    /// Replaces the Request-URI (§16.6 step 2 / §16.4 strict-route handling); does nothing
    /// on a response.
    pub fn set_request_uri(&mut self, uri: &[u8]) -> &mut Self {
        if let Some(span) = self.uri {
            let r = span.range();
            self.push(r.start, r.end, &[uri], 2);
        }
        self
    }

    /// Decrements Max-Forwards, or inserts `Max-Forwards: 70` when absent (§16.6 step 3).
    pub fn decrement_max_forwards(&mut self) -> Result<u8, EditError> {
        match self.msg.first(HeaderKind::MaxForwards) {
            Some(h) => {
                let n = parse_max_forwards(h.value).ok_or(EditError::BadMaxForwards)?;
                let n = n.checked_sub(1).ok_or(EditError::TooManyHops)?;
                let v = self.msg.entries[h.index].value.range();
                let (digits, len) = itoa3(n);
                self.push(v.start, v.end, &[&digits[..len]], 2);
                Ok(n)
            }
            None => {
                self.append_header("Max-Forwards", b"70");
                Ok(70)
            }
        }
    }

    /// Removes the whole header line at `index` (including continuation lines).
    pub fn remove_header(&mut self, index: usize) -> Result<&mut Self, EditError> {
        let e = *self.msg.entries.get(index).ok_or(EditError::NoSuchHeader)?;
        let end = self.line_end(index);
        self.push(e.name.start as usize, end, &[], 2);
        Ok(self)
    }

    /// Replaces the value of the header line at `index`, keeping its name.
    pub fn replace_header_value(
        &mut self,
        index: usize,
        value: &[u8],
    ) -> Result<&mut Self, EditError> {
        let e = *self.msg.entries.get(index).ok_or(EditError::NoSuchHeader)?;
        let r = e.value.range();
        self.push(r.start, r.end, &[trim(value)], 2);
        Ok(self)
    }

    /// Appends `name: value` after the last header field.
    pub fn append_header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let at = self.msg.body_start() - 2;
        self.push(at, at, &[name.as_bytes(), b": ", value, b"\r\n"], 3);
        self
    }

    /// Size of the rendered message, for pre-allocation.
    pub fn rendered_len(&self) -> usize {
        let mut n = self.msg.bytes().len() + self.arena.len();
        for op in &self.ops {
            n = n.saturating_sub((op.del_end - op.at) as usize);
        }
        n
    }

    /// Renders the edited message into `out` in one pass. Overlapping deletions are clamped.
    pub fn render_into(&self, out: &mut BytesMut) {
        let mut ops = self.ops.clone();
        ops.sort_by_key(|o| (o.at, o.prio, o.seq));
        let src = self.msg.bytes();
        out.reserve(self.rendered_len());
        let mut cursor = 0usize;
        for op in &ops {
            let at = (op.at as usize).max(cursor);
            out.put_slice(&src[cursor..at]);
            out.put_slice(op.ins.of(&self.arena));
            cursor = at.max(op.del_end as usize);
        }
        out.put_slice(&src[cursor..]);
    }

    /// Renders the edited message.
    pub fn render(&self) -> BytesMut {
        let mut out = BytesMut::new();
        self.render_into(&mut out);
        out
    }
}

/// Formats `n` in decimal without allocating; returns the digits and their count.
fn itoa3(n: u8) -> ([u8; 3], usize) {
    let mut buf = [0u8; 3];
    let s = [n / 100, n / 10 % 10, n % 10];
    let skip = if n >= 100 {
        0
    } else if n >= 10 {
        1
    } else {
        2
    };
    for (d, v) in buf.iter_mut().zip(&s[skip..]) {
        *d = b'0' + v;
    }
    (buf, 3 - skip)
}
