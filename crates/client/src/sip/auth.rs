//! RFC 3261 §22.2–§22.4 and RFC 7616 §3.4: answering a Digest challenge, client side (MD5,
//! SHA-256 and SHA-512-256 of RFC 8760; `qop=auth` or the RFC 2069 form).

use cusax_sip_proto::Response;
use cusax_sip_proto::digest::{Algorithm, expected_response};
use cusax_sip_proto::message::HeaderKind;
use cusax_sip_proto::message::headers::Challenge;

/// A user's digest secret: the username and password of one account.
#[derive(Clone)]
pub struct Secret {
    /// The digest username (the account's user part with cusaxd).
    pub username: String,
    password: String,
}

impl Secret {
    /// Wraps a username and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One accepted challenge and its nonce count, reused for later requests to the same realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestState {
    /// True for a 407 (`Proxy-Authorization`), false for a 401 (`Authorization`).
    pub proxy: bool,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    /// Whether the challenge offered `qop=auth`.
    qop_auth: bool,
    nc: u32,
    /// Whether the algorithm token was present (echoed only then, for old servers).
    algorithm_named: bool,
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

impl DigestState {
    /// Takes the first challenge of a 401 or 407 that this client can answer (RFC 7616 §3.7:
    /// the server lists them in its order of preference). `None` for other responses or when
    /// no challenge is usable.
    pub fn from_response(resp: &Response) -> Option<Self> {
        let (kind, proxy) = match resp.code() {
            401 => (HeaderKind::WwwAuthenticate, false),
            407 => (HeaderKind::ProxyAuthenticate, true),
            _ => return None,
        };
        resp.headers_of(kind).find_map(|h| {
            let c = Challenge::parse(h.value)?;
            if !c.scheme.eq_ignore_ascii_case(b"Digest") {
                return None;
            }
            let algorithm = match c.algorithm {
                None => Algorithm::Md5,
                Some(t) => Algorithm::from_token(t)?,
            };
            let qop_auth = match c.qop {
                None => false,
                Some(q) => {
                    let auth = q.split(|&b| b == b',').any(|o| o.trim_ascii() == b"auth");
                    if !auth {
                        return None; // auth-int only: not supported
                    }
                    true
                }
            };
            Some(Self {
                proxy,
                realm: text(c.realm?),
                nonce: text(c.nonce?),
                opaque: c.opaque.map(text),
                algorithm,
                qop_auth,
                nc: 0,
                algorithm_named: c.algorithm.is_some(),
            })
        })
    }

    /// Whether a new challenge says our last credentials were right but the nonce had expired
    /// (RFC 7616 §3.3 `stale=true`), so a retry with the new nonce is worth it.
    pub fn is_stale(resp: &Response) -> bool {
        resp.headers_of(HeaderKind::WwwAuthenticate)
            .chain(resp.headers_of(HeaderKind::ProxyAuthenticate))
            .filter_map(|h| Challenge::parse(h.value))
            .any(|c| c.stale.is_some_and(|s| s.eq_ignore_ascii_case(b"true")))
    }

    /// The header name the credentials go in.
    pub fn header_name(&self) -> &'static str {
        if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        }
    }

    /// The realm of the challenge.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Builds the credentials for one request; each call uses the next nonce count.
    pub fn authorize(&mut self, secret: &Secret, method: &str, uri: &str, cnonce: &str) -> String {
        let ha1 = self.algorithm.ha1(
            secret.username.as_bytes(),
            self.realm.as_bytes(),
            secret.password.as_bytes(),
        );
        self.nc = self.nc.wrapping_add(1);
        let nc = format!("{:08x}", self.nc);
        let qop = self
            .qop_auth
            .then_some((nc.as_bytes(), cnonce.as_bytes(), &b"auth"[..]));
        let response = expected_response(
            self.algorithm,
            ha1.as_bytes(),
            method.as_bytes(),
            uri.as_bytes(),
            self.nonce.as_bytes(),
            qop,
        );
        let mut v = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{}\"",
            quote(&secret.username),
            quote(&self.realm),
            self.nonce,
            response.as_str()
        );
        if self.algorithm_named || self.algorithm != Algorithm::Md5 {
            v.push_str(", algorithm=");
            v.push_str(self.algorithm.name());
        }
        if self.qop_auth {
            v.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = &self.opaque {
            v.push_str(&format!(", opaque=\"{o}\""));
        }
        v
    }
}

/// Escapes `"` and `\` for a quoted-string (RFC 3261 §25.1).
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use cusax_sip_proto::digest::{
        DigestConfig, NonceCounts, NonceKey, Verified, challenges, verify,
    };
    use cusax_sip_proto::message::headers::Credentials;
    use cusax_sip_proto::{Limits, SipMessage, parse_datagram};

    fn response(code: u16, header: &str, challenges: &[&str]) -> Response {
        let mut s = format!(
            "SIP/2.0 {code} Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n"
        );
        for c in challenges {
            s.push_str(&format!("{header}: {c}\r\n"));
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        match parse_datagram(Bytes::from(s), &Limits::default()) {
            Ok(SipMessage::Response(r)) => r,
            other => panic!("not a response: {other:?}"),
        }
    }

    /// RFC 7616 §3.9.1 with the SIP method: the arithmetic is the one the server checks.
    #[test]
    fn rfc7616_example_through_the_client() {
        let r = response(
            401,
            "WWW-Authenticate",
            &[
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
               algorithm=MD5, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
               opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
            ],
        );
        let mut d = DigestState::from_response(&r).expect("usable");
        assert!(!d.proxy);
        let v = d.authorize(
            &Secret::new("Mufasa", "Circle of Life"),
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        let c = Credentials::parse(v.as_bytes()).expect("parses");
        assert_eq!(c.response, Some(&b"8ca523f5e9506fed4657c9700eebdbec"[..]));
        assert_eq!(c.nc, Some(&b"00000001"[..]));
        assert_eq!(c.algorithm, Some(&b"MD5"[..]));
        assert_eq!(
            c.opaque,
            Some(&b"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"[..])
        );
        let v2 = d.authorize(&Secret::new("Mufasa", "x"), "GET", "/", "n");
        assert!(v2.contains("nc=00000002"), "{v2}");
    }

    /// Against the server-side verifier of cusax-sip-proto, for each algorithm it offers.
    #[test]
    fn answers_the_servers_challenges_in_order() {
        let cfg = DigestConfig {
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            ..DigestConfig::default()
        };
        let key = NonceKey::new([3; 32]);
        let ch: Vec<String> = challenges(&cfg, &key, b"example.org", b"peer", 1000, false)
            .into_iter()
            .map(|c| String::from_utf8(c).expect("utf8"))
            .collect();
        let refs: Vec<&str> = ch.iter().map(String::as_str).collect();
        let r = response(407, "Proxy-Authenticate", &refs);
        let mut d = DigestState::from_response(&r).expect("usable");
        assert!(d.proxy);
        assert_eq!(d.header_name(), "Proxy-Authorization");
        assert_eq!(d.realm(), "example.org");
        let secret = Secret::new("alice", "s3cret");
        let v = d.authorize(&secret, "INVITE", "sip:bob@example.org", "abc");
        assert!(v.contains("algorithm=SHA-256"), "{v}");
        let creds = Credentials::parse(v.as_bytes()).expect("parses");
        let ha1 = Algorithm::Sha256.ha1(b"alice", b"example.org", b"s3cret");
        let mut counts = NonceCounts::new(8);
        let ok = verify(
            &cfg,
            &key,
            &mut counts,
            &creds,
            b"example.org",
            b"INVITE",
            ha1.as_bytes(),
            b"peer",
            1001,
        );
        assert_eq!(ok, Ok(Verified::Ok));
        let wrong = d.authorize(
            &Secret::new("alice", "nope"),
            "INVITE",
            "sip:bob@example.org",
            "x",
        );
        let creds = Credentials::parse(wrong.as_bytes()).expect("parses");
        assert!(
            verify(
                &cfg,
                &key,
                &mut counts,
                &creds,
                b"example.org",
                b"INVITE",
                ha1.as_bytes(),
                b"peer",
                1001,
            )
            .is_err()
        );
    }

    #[test]
    fn unusable_and_stale_challenges() {
        let basic = response(401, "WWW-Authenticate", &["Basic realm=\"x\""]);
        assert!(DigestState::from_response(&basic).is_none());
        let int_only = response(
            401,
            "WWW-Authenticate",
            &["Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\""],
        );
        assert!(DigestState::from_response(&int_only).is_none());
        let unknown_alg = response(
            401,
            "WWW-Authenticate",
            &[
                "Digest realm=\"x\", nonce=\"n\", algorithm=MD5-sess",
                "Digest realm=\"x\", nonce=\"m\"",
            ],
        );
        let mut d = DigestState::from_response(&unknown_alg).expect("second one");
        // RFC 2069 form: no qop, no algorithm echoed for a challenge without one.
        let v = d.authorize(&Secret::new("a\"b", "p"), "REGISTER", "sip:x", "c");
        assert!(!v.contains("qop") && !v.contains("algorithm"), "{v}");
        assert!(v.starts_with("Digest username=\"a\\\"b\""), "{v}");
        let stale = response(
            401,
            "WWW-Authenticate",
            &["Digest realm=\"x\", nonce=\"n\", stale=true"],
        );
        assert!(DigestState::is_stale(&stale));
        assert!(!DigestState::is_stale(&unknown_alg));
    }
}
