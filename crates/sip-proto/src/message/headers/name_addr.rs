//! RFC 3261 §20.10, §20.20, §20.39, §25.1: name-addr / addr-spec values (From, To, Contact,
//! Route, Record-Route, Path) with header parameters.

use std::borrow::Cow;

use crate::message::params::Params;
use crate::message::text::{is_lws, is_token, quoted_end, trim, unquote};
use crate::message::uri::{Scheme, Uri};

/// `[display-name] <uri> *(;param)` or `addr-spec *(;param)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    raw: &'a [u8],
    display: Option<&'a [u8]>,
    uri: Uri<'a>,
    bracketed: bool,
    params: Params<'a>,
}

fn display_ok(d: &[u8]) -> bool {
    if d.first() == Some(&b'"') {
        return quoted_end(d) == Some(d.len());
    }
    // *(token LWS): tokens separated by whitespace; UTF-8 is tolerated for interop.
    d.iter().all(|&b| is_token(b) || is_lws(b) || b >= 0x80)
}

impl<'a> NameAddr<'a> {
    /// Parses one value; `<…>` is required when the URI has parameters, headers or commas.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        let raw = trim(raw);
        let mut i = 0;
        if raw.first() == Some(&b'"') {
            i = quoted_end(raw)?;
        }
        let lt = i + memchr::memchr(b'<', &raw[i..]).unwrap_or(raw.len() - i);
        if lt < raw.len() {
            let display = trim(&raw[..lt]);
            if !display_ok(display) || (i > 0 && display.len() != i) {
                return None;
            }
            let gt = lt + memchr::memchr(b'>', &raw[lt..])?;
            let uri = Uri::parse(&raw[lt + 1..gt])?;
            let after = trim(&raw[gt + 1..]);
            let params = parse_tail(after)?;
            let display = (!display.is_empty()).then_some(display);
            return Some(Self {
                raw,
                display,
                uri,
                bracketed: true,
                params,
            });
        }
        if i > 0 {
            return None; // a quoted display name needs <uri>
        }
        let semi = memchr::memchr(b';', raw).unwrap_or(raw.len());
        let uri_s = trim(&raw[..semi]);
        if uri_s
            .iter()
            .any(|&b| b == b'?' || b == b',' || b == b'>' || is_lws(b))
        {
            return None;
        }
        let uri = Uri::parse(uri_s)?;
        let params = parse_tail(&raw[semi..])?;
        Some(Self {
            raw,
            display: None,
            uri,
            bracketed: false,
            params,
        })
    }

    /// The value exactly as written.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The display name as written (quotes kept), if any.
    pub fn display_raw(&self) -> Option<&'a [u8]> {
        self.display
    }

    /// The display name with quotes and escapes removed.
    pub fn display_name(&self) -> Option<Cow<'a, [u8]>> {
        self.display.map(unquote)
    }

    /// The URI.
    pub fn uri(&self) -> Uri<'a> {
        self.uri
    }

    /// True when the URI was written inside `<…>`.
    pub fn is_bracketed(&self) -> bool {
        self.bracketed
    }

    /// The header parameters after the URI.
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// One header parameter (`Some(b"")` for a flag).
    pub fn param(&self, name: &str) -> Option<&'a [u8]> {
        self.params.get(name)
    }

    /// The `tag` parameter (From/To, RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.param("tag")
    }

    /// True when the URI scheme is sip or sips.
    pub fn is_sip(&self) -> bool {
        matches!(self.uri.scheme(), Scheme::Sip | Scheme::Sips)
    }
}

fn parse_tail(after: &[u8]) -> Option<Params<'_>> {
    if after.is_empty() {
        return Some(Params::default());
    }
    let rest = trim(after.strip_prefix(b";")?);
    Params::parse(rest)
}

/// One Contact value: `*` or an address with `expires`, `q`, `+sip.instance`, `reg-id` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactValue<'a> {
    /// `Contact: *` (remove all bindings, RFC 3261 §10.2.2).
    Star,
    /// A contact address.
    Addr(Contact<'a>),
}

impl<'a> ContactValue<'a> {
    /// Parses one Contact value.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        if trim(raw) == b"*" {
            return Some(Self::Star);
        }
        Contact::parse(raw).map(Self::Addr)
    }
}

/// A contact address with typed access to the registration parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact<'a> {
    /// The address and its parameters.
    pub addr: NameAddr<'a>,
}

impl<'a> Contact<'a> {
    /// Parses a contact address (not `*`).
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        NameAddr::parse(raw).map(|addr| Self { addr })
    }

    /// The contact URI.
    pub fn uri(&self) -> Uri<'a> {
        self.addr.uri()
    }

    /// The `expires` parameter: `None` if absent, `Some(Err(()))` if not a valid delta-seconds.
    pub fn expires(&self) -> Option<Result<u32, ()>> {
        self.addr
            .param("expires")
            .map(|v| super::parse_delta_seconds(v).ok_or(()))
    }

    /// The `q` parameter in thousandths (`q=0.5` → 500); `Some(Err(()))` if malformed.
    pub fn q(&self) -> Option<Result<u16, ()>> {
        self.addr.param("q").map(|v| parse_qvalue(v).ok_or(()))
    }

    /// The `+sip.instance` parameter without quotes and angle brackets (RFC 5626 §4.1).
    pub fn instance(&self) -> Option<&'a [u8]> {
        let v = self.addr.param("+sip.instance")?;
        let v = v
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(v);
        Some(
            v.strip_prefix(b"<")
                .and_then(|v| v.strip_suffix(b">"))
                .unwrap_or(v),
        )
    }

    /// The `reg-id` parameter (RFC 5626); `Some(Err(()))` if not a number.
    pub fn reg_id(&self) -> Option<Result<u32, ()>> {
        self.addr
            .param("reg-id")
            .map(|v| super::parse_delta_seconds(v).ok_or(()))
    }
}

fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match memchr::memchr(b'.', v) {
        Some(d) => (&v[..d], &v[d + 1..]),
        None => (v, &v[v.len()..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let n =
            NameAddr::parse(b"\"Bell, \\\"A\\\"\" <sip:a.g.bell@example.com>;tag=43").expect("n");
        assert_eq!(n.tag(), Some(&b"43"[..]));
        assert_eq!(n.display_name().as_deref(), Some(&b"Bell, \"A\""[..]));
        let n = NameAddr::parse(b"sip:user@example.com;tag=81x2").expect("addr-spec");
        assert_eq!(n.tag(), Some(&b"81x2"[..]));
        assert_eq!(n.uri().param("tag"), None);
        let n = NameAddr::parse(b"Alice<sip:a@b>").expect("no LWS");
        assert_eq!(n.display_raw(), Some(&b"Alice"[..]));
        for bad in [
            &b"\"Mr. J. User <sip:j.user@example.com>"[..],
            b"Bell, Alexander <sip:a@b>",
            b"\"W\" < sip:t@x >",
            b"sip:user@example.com?Route=x",
            b"sip:a@b;;",
        ] {
            assert!(
                NameAddr::parse(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn contact_params() {
        let c = Contact::parse(b"<sip:u@192.0.2.1:5070;transport=tcp>;expires=600;q=0.7;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1").expect("c");
        assert_eq!(c.expires(), Some(Ok(600)));
        assert_eq!(c.q(), Some(Ok(700)));
        assert_eq!(
            c.instance(),
            Some(&b"urn:uuid:00000000-0000-1000-8000-000A95A0E128"[..])
        );
        assert_eq!(c.reg_id(), Some(Ok(1)));
        assert_eq!(ContactValue::parse(b" * "), Some(ContactValue::Star));
        assert_eq!(parse_qvalue(b"1.000"), Some(1000));
        assert_eq!(parse_qvalue(b"1.5"), None);
    }
}
