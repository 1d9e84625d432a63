//! RFC 3261 §19.1 and §25.1, RFC 3966: SIP, SIPS and tel URIs, parsed zero-copy.

use super::params::Params;
use super::text::{escapes_valid, parse_u64};

/// The URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966).
    Tel,
    /// Any other syntactically valid scheme; the rest is kept opaque.
    Other,
}

/// A host as written in a URI or a Via sent-by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name.
    Domain(&'a [u8]),
    /// A dotted-quad IPv4 address.
    Ipv4(&'a [u8]),
    /// An IPv6 address, without the surrounding brackets.
    Ipv6(&'a [u8]),
}

impl<'a> Host<'a> {
    /// The host text as written (IPv6 without brackets).
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Self::Domain(s) | Self::Ipv4(s) | Self::Ipv6(s) => s,
        }
    }

    /// Parses a `host` production; `[..]` references become [`Host::Ipv6`].
    pub fn parse(s: &'a [u8]) -> Option<Self> {
        if let Some(inner) = s.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) {
            return is_ipv6(inner).then_some(Self::Ipv6(inner));
        }
        if s.is_empty()
            || !s
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        if is_ipv4(s) {
            return Some(Self::Ipv4(s));
        }
        // RFC 3261 hostname: labels of alphanum and '-', not starting or ending with '-'.
        let ok = s
            .strip_suffix(b".")
            .unwrap_or(s)
            .split(|&b| b == b'.')
            .all(|l| !l.is_empty() && l[0] != b'-' && l[l.len() - 1] != b'-');
        ok.then_some(Self::Domain(s))
    }
}

/// True for a dotted-quad IPv4 address.
pub(crate) fn is_ipv4(s: &[u8]) -> bool {
    let mut n = 0;
    for part in s.split(|&b| b == b'.') {
        n += 1;
        if part.is_empty() || part.len() > 3 || parse_u64(part, 255).is_none() {
            return false;
        }
    }
    n == 4
}

/// Loose IPv6 check: hex groups and colons, optional trailing IPv4 (tolerates RFC 5118 §4.10).
pub(crate) fn is_ipv6(s: &[u8]) -> bool {
    if s.len() < 2 || s.len() > 64 || !s.contains(&b':') {
        return false;
    }
    let (hex, v4) = match s.iter().rposition(|&b| b == b':') {
        Some(p) if s[p + 1..].contains(&b'.') => (&s[..=p], Some(&s[p + 1..])),
        _ => (s, None),
    };
    if let Some(v4) = v4
        && !is_ipv4(v4)
    {
        return false;
    }
    hex.split(|&b| b == b':')
        .all(|g| g.len() <= 4 && g.iter().all(u8::is_ascii_hexdigit))
}

/// A parsed URI borrowing from the message buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    raw: &'a [u8],
    scheme: Scheme,
    user: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    host: Option<Host<'a>>,
    port: Option<u16>,
    params: &'a [u8],
    headers: &'a [u8],
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()%".contains(&b)
}

impl<'a> Uri<'a> {
    /// Parses an absolute URI; sip/sips/tel are parsed fully, other schemes only checked.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        let colon = memchr::memchr(b':', raw)?;
        let scheme_s = &raw[..colon];
        if scheme_s.is_empty()
            || !scheme_s[0].is_ascii_alphabetic()
            || !scheme_s
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let rest = &raw[colon + 1..];
        let scheme = if scheme_s.eq_ignore_ascii_case(b"sip") {
            Scheme::Sip
        } else if scheme_s.eq_ignore_ascii_case(b"sips") {
            Scheme::Sips
        } else if scheme_s.eq_ignore_ascii_case(b"tel") {
            Scheme::Tel
        } else {
            let ok = !rest.is_empty()
                && rest
                    .iter()
                    .all(|&b| b > b' ' && b < 0x7f && b != b'<' && b != b'>' && b != b'"');
            return ok.then_some(Self {
                raw,
                scheme: Scheme::Other,
                user: None,
                password: None,
                host: None,
                port: None,
                params: &[],
                headers: &[],
            });
        };
        if scheme == Scheme::Tel {
            return Self::parse_tel(raw, rest);
        }
        Self::parse_sip(raw, scheme, rest)
    }

    fn parse_tel(raw: &'a [u8], rest: &'a [u8]) -> Option<Self> {
        let semi = memchr::memchr(b';', rest).unwrap_or(rest.len());
        let number = &rest[..semi];
        let ok = !number.is_empty()
            && number
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b"+-.()*#".contains(&b));
        let params = rest.get(semi + 1..).unwrap_or_default();
        if !ok || (semi < rest.len() && !uri_params_valid(params)) {
            return None;
        }
        Some(Self {
            raw,
            scheme: Scheme::Tel,
            user: Some(number),
            password: None,
            host: None,
            port: None,
            params,
            headers: &[],
        })
    }

    fn parse_sip(raw: &'a [u8], scheme: Scheme, rest: &'a [u8]) -> Option<Self> {
        let (userinfo, hostpart) = match memchr::memchr(b'@', rest) {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (mut user, mut password) = (None, None);
        if let Some(ui) = userinfo {
            let (u, p) = match memchr::memchr(b':', ui) {
                Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                None => (ui, None),
            };
            let user_ok = !u.is_empty()
                && u.iter()
                    .all(|&b| is_unreserved(b) || b"&=+$,;?/".contains(&b))
                && escapes_valid(u);
            let pw_ok = p.is_none_or(|p| {
                p.iter().all(|&b| is_unreserved(b) || b"&=+$,".contains(&b)) && escapes_valid(p)
            });
            if !user_ok || !pw_ok {
                return None;
            }
            user = Some(u);
            password = p;
        }
        let end_hp = hostpart
            .iter()
            .position(|&b| b == b';' || b == b'?')
            .unwrap_or(hostpart.len());
        let hp = &hostpart[..end_hp];
        let (host, port) = split_hostport(hp)?;
        let tail = &hostpart[end_hp..];
        let (params, headers) = match memchr::memchr(b'?', tail) {
            Some(q) => (&tail[..q], &tail[q + 1..]),
            None => (tail, &tail[tail.len()..]),
        };
        let params = params.strip_prefix(b";").unwrap_or(params);
        if (!params.is_empty() || tail.first() == Some(&b';')) && !uri_params_valid(params) {
            return None;
        }
        if tail.contains(&b'?') && !uri_headers_valid(headers) {
            return None;
        }
        Some(Self {
            raw,
            scheme,
            user,
            password,
            host: Some(host),
            port,
            params,
            headers,
        })
    }

    /// The URI exactly as written.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The user part (still %-escaped); for tel URIs, the number.
    pub fn user(&self) -> Option<&'a [u8]> {
        self.user
    }

    /// The password part of the userinfo, if any (deprecated by RFC 3261 but parsed).
    pub fn password(&self) -> Option<&'a [u8]> {
        self.password
    }

    /// The host, for sip and sips URIs.
    pub fn host(&self) -> Option<Host<'a>> {
        self.host
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The `;name=value` URI parameters.
    pub fn params(&self) -> Params<'a> {
        Params::new_unchecked(self.params)
    }

    /// The value of one URI parameter (`Some(b"")` for a flag such as `lr`).
    pub fn param(&self, name: &str) -> Option<&'a [u8]> {
        self.params().get(name)
    }

    /// The raw `?h=v&…` headers part, without the `?`.
    pub fn headers(&self) -> &'a [u8] {
        self.headers
    }

    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&'a [u8]> {
        self.param("transport")
    }

    /// True when the `lr` parameter is present (loose routing, RFC 3261 §19.1.1).
    pub fn is_loose_route(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.param("maddr")
    }

    /// The `gr` parameter (GRUU, RFC 5627).
    pub fn gr(&self) -> Option<&'a [u8]> {
        self.param("gr")
    }

    /// The `user` parameter (`phone`, `ip`, …).
    pub fn user_param(&self) -> Option<&'a [u8]> {
        self.param("user")
    }

    /// RFC 3261 §19.1.4 equivalence.
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        super::uri_cmp::equivalent(self, other)
    }
}

/// Splits `host[:port]`; IPv6 references keep their brackets out of [`Host`].
pub(crate) fn split_hostport(hp: &[u8]) -> Option<(Host<'_>, Option<u16>)> {
    let (h, p) = if hp.first() == Some(&b'[') {
        let close = memchr::memchr(b']', hp)?;
        match hp.get(close + 1) {
            None => (hp, None),
            Some(b':') => (&hp[..=close], Some(&hp[close + 2..])),
            Some(_) => return None,
        }
    } else {
        match memchr::memchr(b':', hp) {
            Some(c) => (&hp[..c], Some(&hp[c + 1..])),
            None => (hp, None),
        }
    };
    let host = Host::parse(h)?;
    let port = match p {
        Some(p) => Some(u16::try_from(parse_u64(p, 65535)?).ok()?),
        None => None,
    };
    Some((host, port))
}

fn is_paramchar(b: u8) -> bool {
    is_unreserved(b) || b"[]/:&+$".contains(&b)
}

fn uri_params_valid(s: &[u8]) -> bool {
    s.split(|&b| b == b';').all(|p| {
        let (n, v) = match memchr::memchr(b'=', p) {
            Some(e) => (&p[..e], Some(&p[e + 1..])),
            None => (p, None),
        };
        !n.is_empty()
            && n.iter().all(|&b| is_paramchar(b))
            && v.is_none_or(|v| !v.is_empty() && v.iter().all(|&b| is_paramchar(b)))
            && escapes_valid(p)
    })
}

fn uri_headers_valid(s: &[u8]) -> bool {
    let hchar = |b: u8| is_unreserved(b) || b"[]/?:+$".contains(&b);
    !s.is_empty()
        && s.split(|&b| b == b'&')
            .all(|h| match memchr::memchr(b'=', h) {
                Some(e) => e > 0 && h.iter().all(|&b| hchar(b) || b == b'=') && escapes_valid(h),
                None => false,
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse(b"sips:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?subject=x%20y")
            .expect("valid");
        assert_eq!(u.scheme(), Scheme::Sips);
        assert_eq!(u.user(), Some(&b"alice"[..]));
        assert_eq!(u.password(), Some(&b"pw"[..]));
        assert_eq!(u.host(), Some(Host::Ipv6(b"2001:db8::1")));
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.transport(), Some(&b"tcp"[..]));
        assert!(u.is_loose_route());
        assert_eq!(u.headers(), b"subject=x%20y");
    }

    #[test]
    fn tel_and_other() {
        let t = Uri::parse(b"tel:+1-201-555-0123;phone-context=example.com").expect("tel");
        assert_eq!(t.scheme(), Scheme::Tel);
        assert_eq!(t.user(), Some(&b"+1-201-555-0123"[..]));
        assert_eq!(
            Uri::parse(b"soap.beep://192.0.2.103:3002").map(|u| u.scheme()),
            Some(Scheme::Other)
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            &b"sip:2001:db8::10"[..],
            b"sip:user@",
            b"sip:a@b;",
            b"sip:a b@c",
            b"sip:a@[::1",
            b"sip:u@h:99999",
            b"sip:%zz@h",
            b"<sip:a@b>",
        ] {
            assert!(
                Uri::parse(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(Uri::parse(b"sip:user@[2001:db8:::192.0.2.1]").is_some());
        assert!(Uri::parse(b"sip:user;par=u%40example.net@example.com").is_some());
    }
}
