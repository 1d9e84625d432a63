//! RFC 3261 §7.1–§7.5 and §18.3: start line, header section scanning, limits and framing.

use bytes::{Bytes, BytesMut};
use memchr::{memchr, memmem};
use smallvec::SmallVec;

use super::text::{is_lws, is_token, is_token_str, parse_u64};
use super::{Entry, HeaderKind, MessageHead, Method, Request, Response, SipMessage, Span};
use crate::error::ParseError;

/// Parser limits, enforced before anything proportional to the input is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of one message (headers and body), in bytes.
    pub max_message_bytes: usize,
    /// Maximum number of header lines (folded continuation lines count with their header).
    pub max_headers: usize,
    /// Maximum length of one header field or the start line, folds included.
    pub max_header_line: usize,
    /// Maximum number of continuation lines in one header field.
    pub max_fold_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_headers: 128,
            max_header_line: 8 * 1024,
            max_fold_lines: 16,
        }
    }
}

/// How a datagram without a usable Content-Length is framed (RFC 3261 §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DatagramOptions {
    /// Parser limits.
    pub limits: Limits,
}

/// What the stream framer found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFrame {
    /// More bytes are needed.
    Incomplete,
    /// A double-CRLF keep-alive ping (RFC 5626 §3.5.1) of `consumed` bytes; answer with a CRLF.
    Ping {
        /// Bytes to discard.
        consumed: usize,
    },
    /// A single CRLF (a pong, or stray line ending between messages) of `consumed` bytes.
    Pong {
        /// Bytes to discard.
        consumed: usize,
    },
    /// A complete message occupies the first `len` bytes.
    Message {
        /// Total message length, headers and body.
        len: usize,
    },
}

/// Frames the start of a stream (TCP/TLS) buffer: Content-Length is mandatory.
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Result<StreamFrame, ParseError> {
    if buf.first() == Some(&b'\r') || buf.first() == Some(&b'\n') {
        return Ok(frame_keepalive(buf));
    }
    let window = &buf[..buf.len().min(limits.max_message_bytes)];
    let Some(end) = memmem::find(window, b"\r\n\r\n") else {
        return if buf.len() >= limits.max_message_bytes {
            Err(ParseError::TooLarge)
        } else {
            Ok(StreamFrame::Incomplete)
        };
    };
    let head = scan(&buf[..end + 4], limits, false)?;
    let cl = head
        .content_length
        .ok_or(ParseError::MissingContentLength)?;
    let len = head.body_start + cl;
    if len > limits.max_message_bytes {
        return Err(ParseError::TooLarge);
    }
    Ok(if buf.len() >= len {
        StreamFrame::Message { len }
    } else {
        StreamFrame::Incomplete
    })
}

fn frame_keepalive(buf: &[u8]) -> StreamFrame {
    match buf {
        [b'\r', b'\n', b'\r', b'\n', ..] => StreamFrame::Ping { consumed: 4 },
        [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => StreamFrame::Incomplete,
        [b'\r', b'\n', ..] => StreamFrame::Pong { consumed: 2 },
        // A lone CR or LF: skip one byte so the stream can resynchronise.
        _ => StreamFrame::Pong { consumed: 1 },
    }
}

/// Splits and parses one framed message off the front of a stream buffer.
///
/// Returns `Ok(None)` when more input is needed; keep-alives are reported as frames the caller
/// handles through [`frame_stream`], so this skips them and parses the next message.
pub fn parse_stream_message(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<SipMessage>, ParseError> {
    loop {
        match frame_stream(buf, limits)? {
            StreamFrame::Incomplete => return Ok(None),
            StreamFrame::Ping { consumed } | StreamFrame::Pong { consumed } => {
                let _ = buf.split_to(consumed);
            }
            StreamFrame::Message { len } => {
                let msg = buf.split_to(len).freeze();
                return parse_framed(msg, limits, true).map(Some);
            }
        }
    }
}

/// Parses one UDP datagram: without Content-Length the body is the rest of the datagram; a larger
/// Content-Length is an error; a smaller one truncates (RFC 3261 §18.3).
pub fn parse_datagram(buf: Bytes, limits: &Limits) -> Result<SipMessage, ParseError> {
    if buf.len() > limits.max_message_bytes {
        return Err(ParseError::TooLarge);
    }
    parse_framed(buf, limits, false)
}

fn parse_framed(buf: Bytes, limits: &Limits, stream: bool) -> Result<SipMessage, ParseError> {
    let mut head = scan(&buf, limits, !stream)?;
    let buf = if head.missing_blank {
        // Rare lenient path: materialise the empty line so offsets and edits stay uniform.
        let mut v = Vec::with_capacity(buf.len() + 2);
        v.extend_from_slice(&buf);
        v.extend_from_slice(b"\r\n");
        head.body_start += 2;
        Bytes::from(v)
    } else {
        buf
    };
    let avail = buf.len() - head.body_start;
    let body_len = match head.content_length {
        Some(cl) if cl > avail => return Err(ParseError::BodyTruncated),
        Some(cl) => cl,
        None if stream => return Err(ParseError::MissingContentLength),
        None => avail,
    };
    let end = head.body_start + body_len;
    let buf = buf.slice(..end);
    let mh = MessageHead {
        buf,
        entries: head.entries,
        body: Span::new(head.body_start, end),
    };
    Ok(match head.start {
        Start::Request {
            method,
            method_span,
            uri,
        } => SipMessage::Request(Request {
            method,
            method_span,
            uri,
            head: mh,
        }),
        Start::Response { code, reason } => SipMessage::Response(Response {
            code,
            reason,
            head: mh,
        }),
    })
}

enum Start {
    Request {
        method: Method,
        method_span: Span,
        uri: Span,
    },
    Response {
        code: u16,
        reason: Span,
    },
}

struct Head {
    start: Start,
    entries: SmallVec<[Entry; 16]>,
    body_start: usize,
    content_length: Option<usize>,
    missing_blank: bool,
}

fn line_end(buf: &[u8], from: usize, limit: usize) -> Result<usize, ParseError> {
    let window_end = buf.len().min(from.saturating_add(limit + 2));
    match memchr(b'\n', &buf[from..window_end]) {
        Some(i) => {
            let nl = from + i;
            if nl == 0 || buf[nl - 1] != b'\r' {
                return Err(ParseError::BareLineFeed);
            }
            Ok(nl)
        }
        None if window_end < buf.len() => Err(ParseError::HeaderTooLong),
        None => Err(ParseError::Unterminated),
    }
}

fn scan(buf: &[u8], limits: &Limits, lenient_end: bool) -> Result<Head, ParseError> {
    let nl = line_end(buf, 0, limits.max_header_line)?;
    let start = start_line(&buf[..nl - 1])?;
    let mut entries: SmallVec<[Entry; 16]> = SmallVec::new();
    let mut content_length = None;
    let mut pos = nl + 1;
    loop {
        match buf.get(pos..pos + 2) {
            Some(b"\r\n") => break,
            Some([b'\n', _]) => return Err(ParseError::BareLineFeed),
            None if buf.get(pos) == Some(&b'\n') => return Err(ParseError::BareLineFeed),
            // A datagram that ends right after a header line's CRLF: tolerate the missing
            // empty line (seen in the wild and in the RFC 4475 archive); the body is empty.
            None if lenient_end && pos == buf.len() => {
                return Ok(Head {
                    start,
                    entries,
                    body_start: pos,
                    content_length,
                    missing_blank: true,
                });
            }
            None => return Err(ParseError::Unterminated),
            Some(_) => {}
        }
        if entries.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders);
        }
        let line_start = pos;
        let mut folds = 0;
        let mut nl = line_end(buf, pos, limits.max_header_line)?;
        while matches!(buf.get(nl + 1), Some(b' ' | b'\t')) {
            folds += 1;
            if folds > limits.max_fold_lines {
                return Err(ParseError::TooManyFoldLines);
            }
            let remaining = (line_start + limits.max_header_line).saturating_sub(nl + 1);
            nl = line_end(buf, nl + 1, remaining)?;
        }
        let line_stop = nl - 1;
        let entry = header_line(buf, line_start, line_stop)?;
        if entry.kind == HeaderKind::ContentLength {
            if content_length.is_some() {
                return Err(ParseError::MultipleContentLength);
            }
            let v = entry.value.of(buf);
            let n = parse_u64(v, u64::from(u32::MAX)).ok_or(ParseError::BadContentLength)?;
            let n = usize::try_from(n).map_err(|_| ParseError::BadContentLength)?;
            if n > limits.max_message_bytes {
                return Err(ParseError::TooLarge);
            }
            content_length = Some(n);
        }
        entries.push(entry);
        pos = nl + 1;
    }
    Ok(Head {
        start,
        entries,
        body_start: pos + 2,
        content_length,
        missing_blank: false,
    })
}

fn header_line(buf: &[u8], start: usize, stop: usize) -> Result<Entry, ParseError> {
    let line = &buf[start..stop];
    let colon = memchr(b':', line).ok_or(ParseError::BadHeaderName)?;
    let mut name_end = colon;
    while name_end > 0 && matches!(line[name_end - 1], b' ' | b'\t') {
        name_end -= 1;
    }
    let name = &line[..name_end];
    if !is_token_str(name) {
        return Err(ParseError::BadHeaderName);
    }
    let mut vs = colon + 1;
    while vs < line.len() && is_lws(line[vs]) {
        vs += 1;
    }
    let mut ve = line.len();
    while ve > vs && is_lws(line[ve - 1]) {
        ve -= 1;
    }
    Ok(Entry {
        kind: HeaderKind::from_name(name),
        name: Span::new(start, start + name_end),
        value: Span::new(start + vs, start + ve),
    })
}

fn is_sip_version(v: &[u8]) -> bool {
    v.eq_ignore_ascii_case(b"SIP/2.0")
}

fn looks_like_version(v: &[u8]) -> bool {
    v.len() > 4
        && v[..4].eq_ignore_ascii_case(b"SIP/")
        && v[4..].iter().all(|&b| b.is_ascii_digit() || b == b'.')
}

fn start_line(line: &[u8]) -> Result<Start, ParseError> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return status_line(line);
    }
    let sp = memchr(b' ', line).ok_or(ParseError::BadStartLine)?;
    let method_s = &line[..sp];
    if !method_s.iter().all(|&b| is_token(b)) || method_s.is_empty() {
        return Err(ParseError::BadMethod);
    }
    let rest = &line[sp + 1..];
    let sp2 = memchr(b' ', rest).ok_or(ParseError::BadStartLine)?;
    let uri = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    if uri.is_empty() {
        return Err(ParseError::BadStartLine);
    }
    if !is_sip_version(version) {
        if version.contains(&b' ') {
            // `uri; lr SIP/2.0`: whitespace inside the Request-URI; `SIP/2.0 ` : trailing SP.
            let last = version.rsplit(|&b| b == b' ').next().unwrap_or_default();
            return Err(if is_sip_version(last) {
                ParseError::BadRequestUri
            } else {
                ParseError::BadStartLine
            });
        }
        return Err(if looks_like_version(version) {
            ParseError::BadVersion
        } else {
            ParseError::BadStartLine
        });
    }
    if uri[0] == b'<' || !uri_scheme_ok(uri) {
        return Err(ParseError::BadRequestUri);
    }
    let uri_start = sp + 1;
    Ok(Start::Request {
        method: Method::from_bytes(method_s),
        method_span: Span::new(0, sp),
        uri: Span::new(uri_start, uri_start + uri.len()),
    })
}

fn uri_scheme_ok(uri: &[u8]) -> bool {
    match memchr(b':', uri) {
        Some(c) if c > 0 => {
            uri[0].is_ascii_alphabetic()
                && uri[..c]
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && uri.iter().all(|&b| b > b' ' && b != 0x7f)
        }
        _ => false,
    }
}

fn status_line(line: &[u8]) -> Result<Start, ParseError> {
    let sp = memchr(b' ', line).ok_or(ParseError::BadStartLine)?;
    let version = &line[..sp];
    if !is_sip_version(version) {
        return Err(if looks_like_version(version) {
            ParseError::BadVersion
        } else {
            ParseError::BadStartLine
        });
    }
    let rest = &line[sp + 1..];
    let code_end = memchr(b' ', rest).unwrap_or(rest.len());
    if code_end != 3 {
        return Err(ParseError::BadStatusCode);
    }
    let code = parse_u64(&rest[..3], 699).ok_or(ParseError::BadStatusCode)?;
    if code < 100 {
        return Err(ParseError::BadStatusCode);
    }
    let reason_start = (sp + 1 + code_end + 1).min(line.len());
    let code = u16::try_from(code).map_err(|_| ParseError::BadStatusCode)?;
    Ok(Start::Response {
        code,
        reason: Span::new(reason_start, line.len()),
    })
}
