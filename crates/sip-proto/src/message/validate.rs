//! RFC 3261 §8.1.1, §8.2.2, §16.3, §20: validation of the core header fields of a message.

use super::headers::{ContactValue, NameAddr};
use super::uri::Scheme;
use super::{HeaderKind, MessageHead, Request, Response, SipMessage};
use crate::error::{Invalid, ParseError};

type R = Result<(), ParseError>;

impl MessageHead {
    fn at_most_one(&self, kind: HeaderKind) -> R {
        if self.headers_of(kind).nth(1).is_some() {
            Err(ParseError::DuplicateHeader(kind))
        } else {
            Ok(())
        }
    }

    fn exactly_one(&self, kind: HeaderKind) -> R {
        self.first(kind).ok_or(ParseError::MissingHeader(kind))?;
        self.at_most_one(kind)
    }

    /// Checks Via, From, To, Call-ID, CSeq (and the optional Max-Forwards, Expires, Contact,
    /// Route, Record-Route) against their grammars; shared by requests and responses.
    fn validate_core(&self) -> R {
        if self.first(HeaderKind::Via).is_none() {
            return Err(ParseError::MissingHeader(HeaderKind::Via));
        }
        for v in self.vias() {
            v?;
        }
        for kind in [
            HeaderKind::From,
            HeaderKind::To,
            HeaderKind::CallId,
            HeaderKind::CSeq,
        ] {
            self.exactly_one(kind)?;
        }
        self.from_addr()?;
        self.to_addr()?;
        self.call_id()?;
        self.cseq()?;
        self.at_most_one(HeaderKind::MaxForwards)?;
        self.max_forwards()?;
        self.at_most_one(HeaderKind::Expires)?;
        self.expires()?;
        for c in self.contacts() {
            if let ContactValue::Addr(c) = c?
                && (matches!(c.expires(), Some(Err(()))) || matches!(c.q(), Some(Err(()))))
            {
                return Err(ParseError::BadHeader(HeaderKind::Contact));
            }
        }
        for kind in [HeaderKind::Route, HeaderKind::RecordRoute] {
            for v in self.values_of(kind) {
                NameAddr::parse(v)
                    .filter(NameAddr::is_bracketed)
                    .ok_or(ParseError::BadHeader(kind))?;
            }
        }
        Ok(())
    }
}

impl Request {
    /// Validates the Request-URI and the core header fields (RFC 3261 §8.2, §16.3).
    ///
    /// An unknown Request-URI scheme yields [`ParseError::UnsupportedUriScheme`] (416); a CSeq
    /// method differing from the request method yields [`ParseError::CSeqMethodMismatch`].
    pub fn validate(&self) -> R {
        let uri = self.uri().ok_or(ParseError::BadRequestUri)?;
        match uri.scheme() {
            Scheme::Other => return Err(ParseError::UnsupportedUriScheme),
            Scheme::Sip | Scheme::Sips if !uri.headers().is_empty() => {
                return Err(ParseError::BadRequestUri);
            }
            _ => {}
        }
        self.head.validate_core()?;
        let cseq = self.cseq()?;
        if cseq.method_bytes != self.method_bytes() {
            return Err(ParseError::CSeqMethodMismatch);
        }
        Ok(())
    }

    /// True when an error response can be built: the top Via, From, To, Call-ID and CSeq parse.
    pub fn can_respond(&self) -> bool {
        self.top_via().is_ok()
            && self.from_addr().is_ok()
            && self.to_addr().is_ok()
            && self.call_id().is_ok()
            && self.cseq().is_ok()
    }
}

impl Response {
    /// Validates the core header fields of a response (RFC 3261 §18.1.2 requires a usable Via).
    pub fn validate(&self) -> R {
        self.head.validate_core()
    }
}

impl SipMessage {
    /// Validates, returning the message or the error together with the message for answering.
    pub fn validated(self) -> Result<Self, Invalid> {
        match self.validate() {
            Ok(()) => Ok(self),
            Err(error) => Err(Invalid {
                error,
                message: Box::new(self),
            }),
        }
    }
}
