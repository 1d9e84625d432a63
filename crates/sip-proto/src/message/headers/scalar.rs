//! RFC 3261 §20.8, §20.16, §20.19, §20.22, §20.9 and RFC 6665 §8.2.1: Call-ID, CSeq,
//! Expires, Max-Forwards, Call-Info and Event values.

use crate::message::Method;
use crate::message::params::Params;
use crate::message::text::{is_lws, is_token, is_token_str, parse_u64, trim};
use crate::message::uri::Uri;

/// `CSeq: number METHOD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (< 2**31 per RFC 3261 §8.1.1.5; up to 2**32-1 accepted).
    pub number: u32,
    /// The method, classified.
    pub method: Method,
    /// The method token as written.
    pub method_bytes: &'a [u8],
}

impl<'a> CSeq<'a> {
    /// Parses a CSeq value.
    pub fn parse(v: &'a [u8]) -> Option<Self> {
        let v = trim(v);
        let sp = v.iter().position(|&b| is_lws(b))?;
        let number = u32::try_from(parse_u64(&v[..sp], u64::from(u32::MAX))?).ok()?;
        let m = trim(&v[sp..]);
        if !is_token_str(m) {
            return None;
        }
        Some(Self {
            number,
            method: Method::from_bytes(m),
            method_bytes: m,
        })
    }
}

/// Parses `Max-Forwards` (0..=255).
pub fn parse_max_forwards(v: &[u8]) -> Option<u8> {
    parse_u64(trim(v), 255).and_then(|n| u8::try_from(n).ok())
}

/// Parses delta-seconds (`Expires`, `Min-Expires`, `expires=`), at most 2**32-1.
pub fn parse_delta_seconds(v: &[u8]) -> Option<u32> {
    parse_u64(trim(v), u64::from(u32::MAX)).and_then(|n| u32::try_from(n).ok())
}

/// True when `v` is a valid Call-ID (`word ["@" word]`).
pub(crate) fn call_id_ok(v: &[u8]) -> bool {
    let word = |b: u8| is_token(b) || b"()<>:\\\"/[]?{}".contains(&b);
    let mut at = 0;
    !v.is_empty()
        && v.iter().all(|&b| {
            if b == b'@' {
                at += 1;
                true
            } else {
                word(b)
            }
        })
        && at <= 1
        && v.first() != Some(&b'@')
        && v.last() != Some(&b'@')
}

/// One Call-Info value: `<uri> *(;param)` with `purpose` (e.g. `impp` for CUSAX, RFC 7081 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallInfo<'a> {
    /// The information URI (any scheme, e.g. `xmpp:`).
    pub uri: Uri<'a>,
    /// The parameters.
    pub params: Params<'a>,
}

impl<'a> CallInfo<'a> {
    /// Parses one Call-Info value.
    pub fn parse(v: &'a [u8]) -> Option<Self> {
        let v = trim(v);
        let inner = v.strip_prefix(b"<")?;
        let gt = memchr::memchr(b'>', inner)?;
        let uri = Uri::parse(&inner[..gt])?;
        let after = trim(&inner[gt + 1..]);
        let params = if after.is_empty() {
            Params::default()
        } else {
            Params::parse(trim(after.strip_prefix(b";")?))?
        };
        Some(Self { uri, params })
    }

    /// The `purpose` parameter.
    pub fn purpose(&self) -> Option<&'a [u8]> {
        self.params.get("purpose")
    }

    /// Whether this is a CUSAX instant-messaging hint, `purpose=impp` (RFC 7081 §6, RFC 6993);
    /// a quoted `"impp"` counts too, since peers write it so.
    pub fn is_impp(&self) -> bool {
        self.purpose()
            .is_some_and(|p| crate::message::unquote(p).eq_ignore_ascii_case(b"impp"))
    }

    /// The bare JID of an `xmpp:` URI (`xmpp:[//]user@domain[/res][?query]`), as written.
    pub fn xmpp_bare_jid(&self) -> Option<&'a str> {
        let text = std::str::from_utf8(self.uri.as_bytes()).ok()?;
        let rest = text
            .get(..5)
            .filter(|s| s.eq_ignore_ascii_case("xmpp:"))
            .map(|_| &text[5..])?
            .trim_start_matches("//");
        rest.split(['/', '?', '#']).next().filter(|b| !b.is_empty())
    }
}

/// `Event: package[.template] *(;param)` (RFC 6665).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event package (and template) token.
    pub package: &'a [u8],
    /// The parameters (`id`, …).
    pub params: Params<'a>,
}

impl<'a> Event<'a> {
    /// Parses an Event value.
    pub fn parse(v: &'a [u8]) -> Option<Self> {
        let v = trim(v);
        let semi = memchr::memchr(b';', v).unwrap_or(v.len());
        let package = trim(&v[..semi]);
        if !is_token_str(package) {
            return None;
        }
        let params = if semi < v.len() {
            Params::parse(&v[semi + 1..])?
        } else {
            Params::default()
        };
        Some(Self { package, params })
    }

    /// The `id` parameter.
    pub fn id(&self) -> Option<&'a [u8]> {
        self.params.get("id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        let c = CSeq::parse(b"4711 INVITE").expect("cseq");
        assert_eq!((c.number, c.method), (4711, Method::Invite));
        assert!(CSeq::parse(b"36893488147419103232 REGISTER").is_none());
        assert!(CSeq::parse(b"1").is_none());
        assert_eq!(parse_max_forwards(b"0070"), Some(70));
        assert_eq!(parse_max_forwards(b"300"), None);
        assert_eq!(parse_delta_seconds(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_delta_seconds(b"4294967296"), None);
        assert!(call_id_ok(b"abc@192.0.2.1"));
        assert!(!call_id_ok(b"a b"));
        let ci = CallInfo::parse(b"<xmpp:alice@example.com>;purpose=impp").expect("ci");
        assert_eq!(ci.purpose(), Some(&b"impp"[..]));
        assert!(ci.is_impp());
        assert_eq!(ci.xmpp_bare_jid(), Some("alice@example.com"));
        let q = CallInfo::parse(b"<XMPP://bob@x/phone?message> ; purpose=\"IMPP\"").expect("ci");
        assert!(q.is_impp());
        assert_eq!(q.xmpp_bare_jid(), Some("bob@x"));
        let icon = CallInfo::parse(b"<http://x/a.png>;purpose=icon").expect("ci");
        assert!(!icon.is_impp());
        assert_eq!(icon.xmpp_bare_jid(), None);
        let e = Event::parse(b"presence;id=4").expect("ev");
        assert_eq!((e.package, e.id()), (&b"presence"[..], Some(&b"4"[..])));
    }
}
