//! RFC 3261 §20: typed accessors on a parsed message; each parses its header on demand.

use super::headers::{
    CSeq, CallInfo, ContactValue, Credentials, Event, NameAddr, Via, parse_delta_seconds,
    parse_max_forwards,
};
use super::{HeaderKind, MessageHead};
use crate::error::ParseError;

type R<T> = Result<T, ParseError>;

fn bad(kind: HeaderKind) -> ParseError {
    ParseError::BadHeader(kind)
}

impl MessageHead {
    fn single(&self, kind: HeaderKind) -> R<&[u8]> {
        self.first(kind)
            .map(|h| h.value)
            .ok_or(ParseError::MissingHeader(kind))
    }

    fn optional_single(&self, kind: HeaderKind) -> Option<&[u8]> {
        self.first(kind).map(|h| h.value)
    }

    /// All Via values, top first, across lines.
    pub fn vias(&self) -> impl Iterator<Item = R<Via<'_>>> + '_ {
        self.values_of(HeaderKind::Via)
            .map(|v| Via::parse(v).ok_or(bad(HeaderKind::Via)))
    }

    /// The topmost Via value; this is the hot path, so only the first value is parsed.
    pub fn top_via(&self) -> R<Via<'_>> {
        let h = self
            .first(HeaderKind::Via)
            .ok_or(ParseError::MissingHeader(HeaderKind::Via))?;
        let first = h.values().next().unwrap_or_default();
        Via::parse(first).ok_or(bad(HeaderKind::Via))
    }

    /// The From value.
    pub fn from_addr(&self) -> R<NameAddr<'_>> {
        NameAddr::parse(self.single(HeaderKind::From)?).ok_or(bad(HeaderKind::From))
    }

    /// The To value.
    pub fn to_addr(&self) -> R<NameAddr<'_>> {
        NameAddr::parse(self.single(HeaderKind::To)?).ok_or(bad(HeaderKind::To))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> R<&[u8]> {
        let v = self.single(HeaderKind::CallId)?;
        if super::headers::scalar_call_id_ok(v) {
            Ok(v)
        } else {
            Err(bad(HeaderKind::CallId))
        }
    }

    /// The CSeq value.
    pub fn cseq(&self) -> R<CSeq<'_>> {
        CSeq::parse(self.single(HeaderKind::CSeq)?).ok_or(bad(HeaderKind::CSeq))
    }

    /// Max-Forwards, `Ok(None)` when absent.
    pub fn max_forwards(&self) -> R<Option<u8>> {
        self.optional_single(HeaderKind::MaxForwards)
            .map(|v| parse_max_forwards(v).ok_or(bad(HeaderKind::MaxForwards)))
            .transpose()
    }

    /// The Expires header in seconds, `Ok(None)` when absent.
    pub fn expires(&self) -> R<Option<u32>> {
        self.optional_single(HeaderKind::Expires)
            .map(|v| parse_delta_seconds(v).ok_or(bad(HeaderKind::Expires)))
            .transpose()
    }

    /// The Min-Expires header in seconds, `Ok(None)` when absent.
    pub fn min_expires(&self) -> R<Option<u32>> {
        self.optional_single(HeaderKind::MinExpires)
            .map(|v| parse_delta_seconds(v).ok_or(bad(HeaderKind::MinExpires)))
            .transpose()
    }

    /// The Content-Length as framed (validated by the parser), `None` when absent.
    pub fn content_length(&self) -> Option<usize> {
        self.optional_single(HeaderKind::ContentLength)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
    }

    /// All Contact values (`*` or addresses), across lines.
    pub fn contacts(&self) -> impl Iterator<Item = R<ContactValue<'_>>> + '_ {
        self.values_of(HeaderKind::Contact)
            .map(|v| ContactValue::parse(v).ok_or(bad(HeaderKind::Contact)))
    }

    fn addrs(&self, kind: HeaderKind) -> impl Iterator<Item = R<NameAddr<'_>>> + '_ {
        self.values_of(kind)
            .map(move |v| NameAddr::parse(v).ok_or(bad(kind)))
    }

    /// All Route values in order.
    pub fn routes(&self) -> impl Iterator<Item = R<NameAddr<'_>>> + '_ {
        self.addrs(HeaderKind::Route)
    }

    /// All Record-Route values in order.
    pub fn record_routes(&self) -> impl Iterator<Item = R<NameAddr<'_>>> + '_ {
        self.addrs(HeaderKind::RecordRoute)
    }

    /// All Path values in order (RFC 3327).
    pub fn paths(&self) -> impl Iterator<Item = R<NameAddr<'_>>> + '_ {
        self.addrs(HeaderKind::Path)
    }

    /// All Call-Info values.
    pub fn call_infos(&self) -> impl Iterator<Item = R<CallInfo<'_>>> + '_ {
        self.values_of(HeaderKind::CallInfo)
            .map(|v| CallInfo::parse(v).ok_or(bad(HeaderKind::CallInfo)))
    }

    /// The Event value, `Ok(None)` when absent.
    pub fn event(&self) -> R<Option<Event<'_>>> {
        self.optional_single(HeaderKind::Event)
            .map(|v| Event::parse(v).ok_or(bad(HeaderKind::Event)))
            .transpose()
    }

    /// Option tags of one list header (Require, Proxy-Require, Supported, Unsupported), non-empty ones.
    pub fn option_tags(&self, kind: HeaderKind) -> impl Iterator<Item = &[u8]> + '_ {
        self.values_of(kind).filter(|t| !t.is_empty())
    }

    /// All `Authorization` credentials.
    pub fn authorizations(&self) -> impl Iterator<Item = R<Credentials<'_>>> + '_ {
        self.headers_of(HeaderKind::Authorization)
            .map(|h| Credentials::parse(h.value).ok_or(bad(HeaderKind::Authorization)))
    }

    /// All `Proxy-Authorization` credentials.
    pub fn proxy_authorizations(&self) -> impl Iterator<Item = R<Credentials<'_>>> + '_ {
        self.headers_of(HeaderKind::ProxyAuthorization)
            .map(|h| Credentials::parse(h.value).ok_or(bad(HeaderKind::ProxyAuthorization)))
    }

    /// The Digest credentials for `realm` in (Proxy-)Authorization, if any parse.
    pub fn digest_credentials(&self, realm: &[u8], proxy: bool) -> Option<Credentials<'_>> {
        let kind = if proxy {
            HeaderKind::ProxyAuthorization
        } else {
            HeaderKind::Authorization
        };
        self.headers_of(kind)
            .filter_map(|h| Credentials::parse(h.value))
            .find(|c| c.is_digest() && c.realm == Some(realm))
    }
}
