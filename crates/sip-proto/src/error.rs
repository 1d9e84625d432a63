//! RFC 3261 §7, §8.2, §16.3, §21.4: message errors and the SIP responses they map to.

use crate::message::{HeaderKind, SipMessage};

/// Why a message was refused by the parser or by the core-header validation.
///
/// Every variant knows the status code and reason phrase to answer with (when the message was a
/// request and it can still be answered, see [`Invalid::routable`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The message (or the header section on a stream) exceeds `Limits::max_message_bytes`.
    #[error("message too large")]
    TooLarge,
    /// More header lines than `Limits::max_headers`.
    #[error("too many header fields")]
    TooManyHeaders,
    /// One header field (with its continuation lines) exceeds `Limits::max_header_line`.
    #[error("header field too long")]
    HeaderTooLong,
    /// One header field has more continuation lines than `Limits::max_fold_lines`.
    #[error("too many folded lines in a header field")]
    TooManyFoldLines,
    /// The input ends before the empty line that terminates the header section.
    #[error("header section not terminated")]
    Unterminated,
    /// A line is terminated by a bare LF or contains a bare CR.
    #[error("line not terminated by CRLF")]
    BareLineFeed,
    /// The first line is neither a Request-Line nor a Status-Line.
    #[error("malformed start line")]
    BadStartLine,
    /// The method is not a token.
    #[error("malformed method")]
    BadMethod,
    /// The Request-URI is malformed (embedded whitespace, angle brackets, bad host …).
    #[error("malformed Request-URI")]
    BadRequestUri,
    /// The Request-URI uses a scheme this element does not serve (not sip, sips or tel).
    #[error("unsupported URI scheme")]
    UnsupportedUriScheme,
    /// The SIP version is not `SIP/2.0`.
    #[error("SIP version not supported")]
    BadVersion,
    /// The status code is not three digits in 100..=699.
    #[error("malformed status code")]
    BadStatusCode,
    /// A header line has no colon or its name is not a token.
    #[error("malformed header field name")]
    BadHeaderName,
    /// A stream message has no Content-Length header (RFC 3261 §18.3).
    #[error("missing Content-Length on a stream transport")]
    MissingContentLength,
    /// Content-Length is not a non-negative decimal integer within limits.
    #[error("malformed Content-Length")]
    BadContentLength,
    /// More than one Content-Length value.
    #[error("multiple Content-Length values")]
    MultipleContentLength,
    /// Content-Length announces more bytes than the datagram carries.
    #[error("Content-Length larger than message")]
    BodyTruncated,
    /// A required header field (Via, From, To, Call-ID, CSeq) is absent.
    #[error("missing {0:?} header field")]
    MissingHeader(HeaderKind),
    /// A header that must appear once appears several times (From, To, Call-ID, CSeq, Max-Forwards).
    #[error("duplicate {0:?} header field")]
    DuplicateHeader(HeaderKind),
    /// A header field value does not match its grammar.
    #[error("malformed {0:?} header field")]
    BadHeader(HeaderKind),
    /// The CSeq method differs from the Request-Line method.
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
}

impl ParseError {
    /// The SIP status code a request failing this way should be answered with.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::TooLarge => 413,
            Self::BadVersion => 505,
            Self::UnsupportedUriScheme => 416,
            _ => 400,
        }
    }

    /// A precise reason phrase for the error response.
    pub fn reason_phrase(&self) -> &'static str {
        match self {
            Self::TooLarge => "Message Too Large",
            Self::TooManyHeaders => "Too Many Header Fields",
            Self::HeaderTooLong => "Header Field Too Long",
            Self::TooManyFoldLines => "Too Many Folded Lines",
            Self::Unterminated => "Header Section Not Terminated",
            Self::BareLineFeed => "Line Not Terminated By CRLF",
            Self::BadStartLine => "Malformed Start Line",
            Self::BadMethod => "Malformed Method",
            Self::BadRequestUri => "Malformed Request-URI",
            Self::UnsupportedUriScheme => "Unsupported URI Scheme",
            Self::BadVersion => "Version Not Supported",
            Self::BadStatusCode => "Malformed Status Code",
            Self::BadHeaderName => "Malformed Header Field Name",
            Self::MissingContentLength => "Missing Content-Length",
            Self::BadContentLength => "Malformed Content-Length",
            Self::MultipleContentLength => "Multiple Content-Length Values",
            Self::BodyTruncated => "Content-Length Larger Than Message",
            Self::MissingHeader(k) => k.missing_reason(),
            Self::DuplicateHeader(k) => k.duplicate_reason(),
            Self::BadHeader(k) => k.malformed_reason(),
            Self::CSeqMethodMismatch => "CSeq Method Mismatch",
        }
    }
}

/// A message that was framed and indexed but failed validation, kept so it can be answered.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// What was wrong.
    pub error: ParseError,
    /// The parsed message, for building the error response.
    pub message: Box<SipMessage>,
}

impl Invalid {
    /// True when the message is a request whose Via, From, To, Call-ID and CSeq all parse, so an
    /// error response can be built and routed back (RFC 3261 §8.2.6, §18.2.2).
    pub fn routable(&self) -> bool {
        match &*self.message {
            SipMessage::Request(r) => r.can_respond(),
            SipMessage::Response(_) => false,
        }
    }
}
