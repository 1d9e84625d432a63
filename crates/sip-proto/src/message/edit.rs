//! RFC 3261 §16.6: forwarding a request as an edit list over the original bytes.
//!
//! A proxy changes a handful of things (Via, Record-Route, Route, Request-URI, Max-Forwards);
//! everything else is copied verbatim in one pass, so untouched headers are never re-rendered.

use bytes::{BufMut, BytesMut};

use super::headers::parse_max_forwards;
use super::text::{is_lws, trim};
use super::{HeaderKind, Request, Span};

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
}

#[derive(Debug, Clone, Copy)]
struct Op {
    at: u32,
    del_end: u32,
    ins: Span,
    prio: u8,
    seq: u32,
}

/// Pending edits against one request; [`Edits::render`] produces the forwarded bytes.
#[derive(Debug)]
pub struct Edits<'m> {
    msg: &'m Request,
    ops: Vec<Op>,
    arena: Vec<u8>,
}

impl<'m> Edits<'m> {
    /// Starts an empty edit list.
    pub fn new(msg: &'m Request) -> Self {
        Self {
            msg,
            ops: Vec::with_capacity(6),
            arena: Vec::with_capacity(256),
        }
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
        let Some(h) = self.msg.first(HeaderKind::Route) else {
            return false;
        };
        let e = self.msg.entries[h.index];
        let mut values = h.values();
        let first = values.next().unwrap_or_default();
        if values.next().is_some() {
            // Drop the first value, its comma and the whitespace after it.
            let base = e.value.start as usize;
            let mut cut = base + first.len();
            let buf = self.msg.bytes();
            while cut < e.value.end as usize && (buf[cut] == b',' || is_lws(buf[cut])) {
                cut += 1;
            }
            self.push(base, cut, &[], 2);
        } else {
            let end = self.line_end(h.index);
            self.push(e.name.start as usize, end, &[], 2);
        }
        true
    }

    /// Replaces the Request-URI (§16.6 step 2 / §16.4 strict-route handling).
    pub fn set_request_uri(&mut self, uri: &[u8]) -> &mut Self {
        let r = self.msg.uri.range();
        self.push(r.start, r.end, &[uri], 2);
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
