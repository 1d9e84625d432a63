//! RFC 3261 §19.1.4: URI comparison.

use super::text::unescaped;
use super::uri::{Scheme, Uri};

fn eq_escaped(a: &[u8], b: &[u8]) -> bool {
    unescaped(a).eq(unescaped(b))
}

fn eq_escaped_ci(a: &[u8], b: &[u8]) -> bool {
    unescaped(a)
        .map(|c| c.to_ascii_lowercase())
        .eq(unescaped(b).map(|c| c.to_ascii_lowercase()))
}

fn opt_eq(a: Option<&[u8]>, b: Option<&[u8]>, f: fn(&[u8], &[u8]) -> bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => f(a, b),
        _ => false,
    }
}

const MUST_MATCH: [&[u8]; 5] = [b"user", b"ttl", b"method", b"maddr", b"transport"];

fn params_match(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    let one_way = |x: &Uri<'_>, y: &Uri<'_>| {
        x.params().iter().all(|p| {
            let other = y.params().iter().find(|q| eq_escaped_ci(p.name, q.name));
            match other {
                Some(q) => opt_eq(p.value, q.value, eq_escaped_ci),
                None => !MUST_MATCH.iter().any(|m| eq_escaped_ci(p.name, m)),
            }
        })
    };
    one_way(a, b) && one_way(b, a)
}

fn headers_match(a: &[u8], b: &[u8]) -> bool {
    let split = |s: &[u8]| -> Vec<(Vec<u8>, Vec<u8>)> {
        if s.is_empty() {
            return Vec::new();
        }
        s.split(|&c| c == b'&')
            .map(|h| {
                let e = memchr::memchr(b'=', h).unwrap_or(h.len());
                let name = unescaped(&h[..e]).map(|c| c.to_ascii_lowercase()).collect();
                let value = unescaped(h.get(e + 1..).unwrap_or_default()).collect();
                (name, value)
            })
            .collect()
    };
    let (mut x, mut y) = (split(a), split(b));
    x.sort();
    y.sort();
    x == y
}

/// True when `a` and `b` are equivalent per RFC 3261 §19.1.4.
pub(crate) fn equivalent(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    if a.scheme() != b.scheme() {
        return false;
    }
    match a.scheme() {
        Scheme::Other => a.as_bytes() == b.as_bytes(),
        Scheme::Tel => opt_eq(a.user(), b.user(), eq_escaped_ci) && params_match(a, b),
        Scheme::Sip | Scheme::Sips => {
            opt_eq(a.user(), b.user(), eq_escaped)
                && opt_eq(a.password(), b.password(), eq_escaped)
                && opt_eq(
                    a.host().map(|h| h.as_bytes()),
                    b.host().map(|h| h.as_bytes()),
                    eq_escaped_ci,
                )
                && a.port() == b.port()
                && params_match(a, b)
                && (a.headers().is_empty() && b.headers().is_empty()
                    || headers_match(a.headers(), b.headers()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::uri::Uri;

    fn eq(a: &str, b: &str) -> bool {
        let (a, b) = (
            Uri::parse(a.as_bytes()).expect("a"),
            Uri::parse(b.as_bytes()).expect("b"),
        );
        a.equivalent(&b)
    }

    #[test]
    fn rfc3261_examples_equal() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:carol@chicago.com;newparam=5",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
    }

    #[test]
    fn rfc3261_examples_unequal() {
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
        assert!(!eq("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
    }
}
