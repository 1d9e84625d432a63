//! RFC 3261 §20.7, §20.27, §20.28, §20.44 and RFC 7616 §3.3–§3.4: Digest challenge and
//! credentials parameters.

use std::borrow::Cow;

use crate::message::text::{find_unquoted, is_token, is_token_str, quoted_end, trim, unquote};

/// Iterates `name=value` auth-params separated by commas; values keep their quotes.
fn auth_params(s: &[u8]) -> impl Iterator<Item = Option<(&[u8], &[u8])>> + '_ {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        let end = find_unquoted(r, b',').unwrap_or(r.len());
        rest = r.get(end + 1..);
        let one = trim(&r[..end]);
        let eq = memchr::memchr(b'=', one);
        Some(eq.and_then(|e| {
            let (n, v) = (trim(&one[..e]), trim(&one[e + 1..]));
            let v_ok = if v.first() == Some(&b'"') {
                quoted_end(v) == Some(v.len())
            } else {
                !v.is_empty() && v.iter().all(|&b| is_token(b) || b == b'/' || b == b'=')
            };
            (is_token_str(n) && v_ok).then_some((n, v))
        }))
    })
}

fn strip_quotes(v: &[u8]) -> &[u8] {
    v.strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(v)
}

macro_rules! digest_fields {
    ($name:ident { $( $(#[$doc:meta])* $field:ident => $param:literal, )* }) => {
        impl<'a> $name<'a> {
            fn set(&mut self, n: &[u8], v: &'a [u8]) {
                $( if n.eq_ignore_ascii_case($param) { self.$field = Some(strip_quotes(v)); return; } )*
            }
        }
    };
}

/// Digest credentials from an `Authorization` or `Proxy-Authorization` value.
///
/// Values are the text inside the quotes (escapes not processed except by
/// [`Credentials::username`]); a non-Digest scheme parses with `is_digest() == false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Credentials<'a> {
    /// The auth-scheme token (`Digest`).
    pub scheme: &'a [u8],
    /// `username`.
    pub username_raw: Option<&'a [u8]>,
    /// `realm`.
    pub realm: Option<&'a [u8]>,
    /// `nonce`.
    pub nonce: Option<&'a [u8]>,
    /// `uri` (digest-uri).
    pub uri: Option<&'a [u8]>,
    /// `response` (hex).
    pub response: Option<&'a [u8]>,
    /// `algorithm` (absent means MD5).
    pub algorithm: Option<&'a [u8]>,
    /// `cnonce`.
    pub cnonce: Option<&'a [u8]>,
    /// `opaque`.
    pub opaque: Option<&'a [u8]>,
    /// `qop` (`auth`, `auth-int`).
    pub qop: Option<&'a [u8]>,
    /// `nc` (8 hex digits).
    pub nc: Option<&'a [u8]>,
    /// `userhash` (RFC 7616 §3.4.4).
    pub userhash: Option<&'a [u8]>,
}

digest_fields!(Credentials {
    username_raw => b"username",
    realm => b"realm",
    nonce => b"nonce",
    uri => b"uri",
    response => b"response",
    algorithm => b"algorithm",
    cnonce => b"cnonce",
    opaque => b"opaque",
    qop => b"qop",
    nc => b"nc",
    userhash => b"userhash",
});

impl<'a> Credentials<'a> {
    /// Parses a credentials value; `None` if the auth-param syntax is broken.
    pub fn parse(v: &'a [u8]) -> Option<Self> {
        let v = trim(v);
        let sp = v.iter().position(|&b| !is_token(b)).unwrap_or(v.len());
        let scheme = &v[..sp];
        if scheme.is_empty() {
            return None;
        }
        let mut c = Self {
            scheme,
            ..Self::default()
        };
        let rest = trim(&v[sp..]);
        if rest.is_empty() {
            return Some(c);
        }
        for p in auth_params(rest) {
            let (n, val) = p?;
            c.set(n, val);
        }
        Some(c)
    }

    /// True for the `Digest` scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case(b"Digest")
    }

    /// The username with quoted-pair escapes removed.
    pub fn username(&self) -> Option<Cow<'a, [u8]>> {
        // Re-quote so `unquote` processes escapes on the inner text.
        self.username_raw.map(|u| {
            if u.contains(&b'\\') {
                Cow::Owned(unquote_inner(u))
            } else {
                Cow::Borrowed(u)
            }
        })
    }
}

fn unquote_inner(u: &[u8]) -> Vec<u8> {
    let mut q = Vec::with_capacity(u.len() + 2);
    q.push(b'"');
    q.extend_from_slice(u);
    q.push(b'"');
    unquote(&q).into_owned()
}

/// A Digest challenge from `WWW-Authenticate` / `Proxy-Authenticate` (client side and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Challenge<'a> {
    /// The auth-scheme token.
    pub scheme: &'a [u8],
    /// `realm`.
    pub realm: Option<&'a [u8]>,
    /// `nonce`.
    pub nonce: Option<&'a [u8]>,
    /// `opaque`.
    pub opaque: Option<&'a [u8]>,
    /// `algorithm`.
    pub algorithm: Option<&'a [u8]>,
    /// `qop` options, e.g. `auth,auth-int`.
    pub qop: Option<&'a [u8]>,
    /// `stale`.
    pub stale: Option<&'a [u8]>,
}

digest_fields!(Challenge {
    realm => b"realm",
    nonce => b"nonce",
    opaque => b"opaque",
    algorithm => b"algorithm",
    qop => b"qop",
    stale => b"stale",
});

impl<'a> Challenge<'a> {
    /// Parses a challenge value.
    pub fn parse(v: &'a [u8]) -> Option<Self> {
        let v = trim(v);
        let sp = v.iter().position(|&b| !is_token(b)).unwrap_or(v.len());
        let mut c = Self {
            scheme: &v[..sp],
            ..Self::default()
        };
        for p in auth_params(trim(&v[sp..])) {
            let (n, val) = p?;
            c.set(n, val);
        }
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let c = Credentials::parse(b"Digest username=\"Mufasa\",realm=\"http-auth@example.org\", uri=\"/dir/index.html\",\r\n algorithm=MD5, nc=00000001, qop=auth, response=\"8ca5\"").expect("c");
        assert!(c.is_digest());
        assert_eq!(c.username().as_deref(), Some(&b"Mufasa"[..]));
        assert_eq!(c.realm, Some(&b"http-auth@example.org"[..]));
        assert_eq!(c.nc, Some(&b"00000001"[..]));
        assert_eq!(c.qop, Some(&b"auth"[..]));
        assert!(Credentials::parse(b"Digest username=\"x").is_none());
        let c = Credentials::parse(b"NoOneKnowsThisScheme opaque-data=here").expect("other scheme");
        assert!(!c.is_digest());
        let c = Credentials::parse(b"Digest username=\"a\\\"b\"").expect("esc");
        assert_eq!(c.username().as_deref(), Some(&b"a\"b"[..]));
    }
}
