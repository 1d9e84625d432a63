//! RFC 3261 §7: SIP messages as the original bytes plus a small header index, typed lazily.

mod access;
mod build;
mod edit;
mod header_name;
pub mod headers;
mod params;
mod parse;
pub(crate) mod text;
pub mod uri;
mod uri_cmp;
mod validate;

use bytes::Bytes;
use smallvec::SmallVec;

pub use build::{RequestBuilder, ResponseBuilder, build_ack, build_cancel};
pub use edit::{EditError, Edits};
pub use header_name::HeaderKind;
pub use headers::ValueIter;
pub use params::{Param, ParamIter, Params};
pub use parse::{
    DatagramOptions, Limits, StreamFrame, frame_stream, parse_datagram, parse_stream_message,
};
pub use text::{unescaped, unquote};
pub use uri::{Host, Scheme, Uri};

/// A byte range inside the message buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        // Messages are bounded by `Limits::max_message_bytes`, far below 4 GiB.
        let c = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            start: c(start),
            end: c(end),
        }
    }

    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(crate) fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.range()).unwrap_or_default()
    }
}

/// One indexed header line: its kind, name and (trimmed, possibly folded) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) kind: HeaderKind,
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// A request method (RFC 3261 §7.1 and extensions); methods are case-sensitive.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// PUBLISH (RFC 3903)
    Publish,
    /// MESSAGE (RFC 3428)
    Message,
    /// REFER (RFC 3515)
    Refer,
    /// Any other token; compare the method bytes of the request.
    Extension,
}

impl Method {
    /// Classifies a method token.
    pub fn from_bytes(s: &[u8]) -> Self {
        match s {
            b"INVITE" => Self::Invite,
            b"ACK" => Self::Ack,
            b"BYE" => Self::Bye,
            b"CANCEL" => Self::Cancel,
            b"REGISTER" => Self::Register,
            b"OPTIONS" => Self::Options,
            b"INFO" => Self::Info,
            b"UPDATE" => Self::Update,
            b"PRACK" => Self::Prack,
            b"SUBSCRIBE" => Self::Subscribe,
            b"NOTIFY" => Self::Notify,
            b"PUBLISH" => Self::Publish,
            b"MESSAGE" => Self::Message,
            b"REFER" => Self::Refer,
            _ => Self::Extension,
        }
    }

    /// The method name, or `""` for [`Method::Extension`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Register => "REGISTER",
            Self::Options => "OPTIONS",
            Self::Info => "INFO",
            Self::Update => "UPDATE",
            Self::Prack => "PRACK",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Publish => "PUBLISH",
            Self::Message => "MESSAGE",
            Self::Refer => "REFER",
            Self::Extension => "",
        }
    }
}

/// A header line as seen through the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// Position in the message's header index (stable handle for [`Edits`]).
    pub index: usize,
    /// The recognised kind.
    pub kind: HeaderKind,
    /// The name as written (may be a compact form).
    pub name: &'a [u8],
    /// The value, trimmed; may contain folds (CRLF followed by whitespace), which parsers treat as LWS.
    pub value: &'a [u8],
}

impl<'a> Header<'a> {
    /// Splits the value at top-level commas (not inside quotes or `<…>`).
    pub fn values(&self) -> ValueIter<'a> {
        ValueIter::new(self.value)
    }
}

/// The parts every message has: buffer, header index and body range.
#[derive(Debug, Clone)]
pub struct MessageHead {
    pub(crate) buf: Bytes,
    pub(crate) entries: SmallVec<[Entry; 16]>,
    pub(crate) body: Span,
}

/// A parsed SIP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) method_span: Span,
    pub(crate) uri: Span,
    pub(crate) head: MessageHead,
}

/// A parsed SIP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) code: u16,
    pub(crate) reason: Span,
    pub(crate) head: MessageHead,
}

/// Either kind of message.
#[derive(Debug, Clone)]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl SipMessage {
    /// The common parts.
    pub fn head(&self) -> &MessageHead {
        match self {
            Self::Request(r) => &r.head,
            Self::Response(r) => &r.head,
        }
    }

    /// Checks the core header fields, see [`Request::validate`] and [`Response::validate`].
    pub fn validate(&self) -> Result<(), crate::error::ParseError> {
        match self {
            Self::Request(r) => r.validate(),
            Self::Response(r) => r.validate(),
        }
    }
}

impl std::ops::Deref for Request {
    type Target = MessageHead;
    fn deref(&self) -> &MessageHead {
        &self.head
    }
}

impl std::ops::Deref for Response {
    type Target = MessageHead;
    fn deref(&self) -> &MessageHead {
        &self.head
    }
}

impl Request {
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method token as written (needed for [`Method::Extension`]).
    pub fn method_bytes(&self) -> &[u8] {
        self.method_span.of(&self.head.buf)
    }

    /// The Request-URI text.
    pub fn uri_bytes(&self) -> &[u8] {
        self.uri.of(&self.head.buf)
    }

    /// The Request-URI, parsed (`None` if malformed; [`Request::validate`] reports that).
    pub fn uri(&self) -> Option<Uri<'_>> {
        Uri::parse(self.uri_bytes())
    }
}

impl Response {
    /// The status code (100..=699).
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason phrase as written.
    pub fn reason(&self) -> &[u8] {
        self.reason.of(&self.head.buf)
    }
}

impl MessageHead {
    /// The whole message (start line, headers and body) as received.
    pub fn bytes(&self) -> &Bytes {
        &self.buf
    }

    /// Number of indexed header lines.
    pub fn header_count(&self) -> usize {
        self.entries.len()
    }

    /// The header line at `index`.
    pub fn header(&self, index: usize) -> Option<Header<'_>> {
        let e = self.entries.get(index)?;
        Some(Header {
            index,
            kind: e.kind,
            name: e.name.of(&self.buf),
            value: e.value.of(&self.buf),
        })
    }

    /// All header lines in order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        (0..self.entries.len()).filter_map(|i| self.header(i))
    }

    /// Header lines of one kind, in order.
    pub fn headers_of(&self, kind: HeaderKind) -> impl Iterator<Item = Header<'_>> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.kind == kind)
            .map(move |(index, e)| Header {
                index,
                kind,
                name: e.name.of(&self.buf),
                value: e.value.of(&self.buf),
            })
    }

    /// The first header line of one kind.
    pub fn first(&self, kind: HeaderKind) -> Option<Header<'_>> {
        self.headers_of(kind).next()
    }

    /// The first header line with this name (case-insensitive; also works for unknown names).
    pub fn header_named(&self, name: &str) -> Option<Header<'_>> {
        let kind = HeaderKind::from_name(name.as_bytes());
        if kind != HeaderKind::Other {
            return self.first(kind);
        }
        self.headers()
            .find(|h| h.kind == HeaderKind::Other && h.name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// All values of one kind across lines, split at top-level commas.
    pub fn values_of(&self, kind: HeaderKind) -> impl Iterator<Item = &[u8]> + '_ {
        self.headers_of(kind).flat_map(|h| h.values())
    }

    /// The message body.
    pub fn body(&self) -> &[u8] {
        self.body.of(&self.buf)
    }

    /// The message body as a shared slice of the buffer.
    pub fn body_bytes(&self) -> Bytes {
        self.buf.slice(self.body.range())
    }

    /// Offset where the body starts (the header section ends just before it).
    pub(crate) fn body_start(&self) -> usize {
        self.body.start as usize
    }
}
