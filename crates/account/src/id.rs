//! RFC 7081 §3.1 and RFC 3261 §19.1: domains, account ids, SIP AORs and the AOR ↔ JID rule.
//!
//! An account `alice@example.org` is reachable as the XMPP bare JID `alice@example.org` and as
//! the SIP address of record `sip:alice@example.org`. User parts are nodeprepped (RFC 7622 §3.3),
//! so `Alice@Example.org` and `alice@example.org` are the same account on both protocols.

use crate::AddressError;
use std::fmt;

/// Longest user part we accept, in bytes (RFC 7622 §3.3.1 allows 1023; SIP phones choke earlier).
const MAX_USER: usize = 256;
/// Longest domain we accept, in bytes (RFC 1035 §2.3.4).
const MAX_DOMAIN: usize = 253;

/// A served DNS domain, lower-cased ASCII (`example.org`, `localhost`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Validates and lower-cases a host name: labels of letters, digits and hyphens, 1–63 bytes each.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let lower = text.trim_end_matches('.').to_ascii_lowercase();
        let bad = || AddressError::InvalidDomain(text.to_owned());
        if lower.is_empty() || lower.len() > MAX_DOMAIN {
            return Err(bad());
        }
        for label in lower.split('.') {
            let ok_chars = label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if label.is_empty()
                || label.len() > 63
                || !ok_chars
                || label.starts_with('-')
                || label.ends_with('-')
            {
                return Err(bad());
            }
        }
        // The JID domain rules (IDNA: no `--` in positions 3–4 except `xn--`) must agree, or
        // the domain could not be an XMPP domain.
        match jid::BareJid::new(&lower) {
            Ok(j) if j.as_str() == lower => Ok(Self(lower)),
            _ => Err(bad()),
        }
    }

    /// The domain as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account: a nodeprepped user part and a served domain, written `user@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId {
    user: String,
    domain: Domain,
}

impl AccountId {
    /// Builds an account id from its two parts, normalising the user part with nodeprep.
    pub fn new(user: &str, domain: Domain) -> Result<Self, AddressError> {
        let bad = || AddressError::InvalidUser(user.to_owned());
        if user.is_empty() || user.len() > MAX_USER {
            return Err(bad());
        }
        let prepped = stringprep::nodeprep(user).map_err(|_| bad())?;
        if prepped.is_empty() || prepped.len() > MAX_USER || prepped.chars().any(char::is_control) {
            return Err(bad());
        }
        // Stringprep is not idempotent for some exotic combining sequences; an identity must be.
        if stringprep::nodeprep(&prepped).map_err(|_| bad())? != prepped {
            return Err(bad());
        }
        Ok(Self {
            user: prepped.into_owned(),
            domain,
        })
    }

    /// Parses `user@domain` (also accepts a `sip:`/`sips:`/`xmpp:` prefix).
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let t = text.trim();
        let t = strip_scheme(t).unwrap_or(t);
        let (user, domain) = t
            .rsplit_once('@')
            .ok_or_else(|| AddressError::MissingAt(text.to_owned()))?;
        Self::new(user, Domain::parse(domain)?)
    }

    /// The normalised user part (the SIP digest username and the JID localpart).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The account's domain (the SIP digest realm by default and the JID domainpart).
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The account's own SIP address of record, `sip:user@domain`.
    pub fn aor(&self) -> Aor {
        Aor::from_parts(&self.user, &self.domain)
    }

    /// The account's XMPP bare JID, `user@domain`.
    pub fn bare_jid(&self) -> jid::BareJid {
        jid::BareJid::new(&self.to_string())
            .expect("invariant: a nodeprepped user and an ASCII host name form a valid bare JID")
    }

    /// The account named by a bare JID, if its domain is a plain host name.
    pub fn from_jid(jid: &jid::BareJid) -> Result<Self, AddressError> {
        let node = jid
            .node()
            .ok_or_else(|| AddressError::MissingAt(jid.to_string()))?;
        Self::new(node.as_str(), Domain::parse(jid.domain().as_str())?)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.domain)
    }
}

impl std::str::FromStr for AccountId {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn strip_scheme(t: &str) -> Option<&str> {
    ["sip:", "sips:", "xmpp:"]
        .iter()
        .find_map(|p| strip_prefix_ci(t, p))
}

/// `t` without an ASCII-case-insensitive prefix `p` (never slices inside a UTF-8 character).
pub(crate) fn strip_prefix_ci<'a>(t: &'a str, p: &str) -> Option<&'a str> {
    t.get(..p.len())
        .filter(|head| head.eq_ignore_ascii_case(p))
        .and_then(|_| t.get(p.len()..))
}

/// A SIP address of record in canonical form: `sip:user@host[:port]`, user part %-escaped only
/// where RFC 3261 §25.1 requires, host lower-cased, URI parameters and headers dropped.
/// An `Aor` names a user, never a device: it is not a contact URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor(String);

impl Aor {
    fn from_parts(user: &str, host: &Domain) -> Self {
        let mut s = String::with_capacity(4 + user.len() + 1 + host.as_str().len());
        s.push_str("sip:");
        escape_user(user, &mut s);
        s.push('@');
        s.push_str(host.as_str());
        Self(s)
    }

    /// Reads a `sip:` or `sips:` URI (optionally in `<>`), keeping user, host and port only.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let bad = || AddressError::InvalidSipUri(text.to_owned());
        let t = text.trim();
        let t = t
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .unwrap_or(t);
        let rest = strip_prefix_ci(t, "sip:")
            .or_else(|| strip_prefix_ci(t, "sips:"))
            .ok_or_else(bad)?;
        let rest = rest.split(['?']).next().unwrap_or_default();
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u.split(':').next().unwrap_or_default()), h),
            None => (None, rest),
        };
        let hostport = hostport.split(';').next().unwrap_or_default();
        let user = user.map(|u| u.split(';').next().unwrap_or_default());
        let (host, port) = split_host_port(hostport).ok_or_else(bad)?;
        let host = Domain::parse(host).map_err(|_| bad())?;
        let user = match user {
            Some(u) => Some(unescape(u).ok_or_else(bad)?),
            None => None,
        };
        let mut s = String::from("sip:");
        if let Some(u) = &user {
            if u.is_empty() {
                return Err(bad());
            }
            escape_user(u, &mut s);
            s.push('@');
        }
        s.push_str(host.as_str());
        if let Some(p) = port {
            s.push(':');
            s.push_str(&p.to_string());
        }
        Ok(Self(s))
    }

    /// The canonical URI text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The unescaped user part, if the URI has one.
    pub fn user(&self) -> Option<String> {
        let rest = &self.0[4..];
        rest.rsplit_once('@').and_then(|(u, _)| unescape(u))
    }

    /// The host part (without port).
    pub fn host(&self) -> &str {
        let rest = &self.0[4..];
        let hp = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        hp.split(':').next().unwrap_or(hp)
    }

    /// The AOR ↔ JID rule: `sip:user@domain` is the account `user@domain` when the user part is
    /// a valid account user and there is no explicit port. Aliases are resolved by the store.
    pub fn account_id(&self) -> Option<AccountId> {
        let rest = &self.0[4..];
        let (_, hp) = rest.rsplit_once('@')?;
        if hp.contains(':') {
            return None;
        }
        let user = self.user()?;
        let id = AccountId::new(&user, Domain::parse(hp).ok()?).ok()?;
        (id.user() == user).then_some(id)
    }
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn split_host_port(hp: &str) -> Option<(&str, Option<u16>)> {
    match hp.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((hp, None)),
    }
}

/// RFC 3261 §25.1 `user` = 1*( unreserved / escaped / user-unreserved ).
fn is_user_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b)
}

fn escape_user(user: &str, out: &mut String) {
    for &b in user.as_bytes() {
        if is_user_char(b) && b != b';' && b != b'?' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_rules() {
        assert_eq!(
            Domain::parse("Example.ORG.").map(|d| d.0),
            Ok("example.org".into())
        );
        assert!(Domain::parse("localhost").is_ok());
        for bad in [
            "",
            "a..b",
            "-a.b",
            "a-.b",
            "a b",
            "a@b",
            "xample.or--1al",
            &"x".repeat(64),
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn account_normalises_case_and_scheme() {
        let a = AccountId::parse("Alice@Example.org").expect("valid");
        assert_eq!(a.to_string(), "alice@example.org");
        assert_eq!(AccountId::parse("sip:alice@example.org"), Ok(a.clone()));
        assert_eq!(a.aor().as_str(), "sip:alice@example.org");
        assert_eq!(a.bare_jid().as_str(), "alice@example.org");
        assert_eq!(AccountId::from_jid(&a.bare_jid()), Ok(a));
    }

    #[test]
    fn account_rejects_bad_input() {
        for bad in [
            "alice",
            "@example.org",
            "al ice@example.org",
            "a<b@example.org",
            "a@",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aor_canonical_form() {
        let a = Aor::parse("<sips:Alice@EXAMPLE.org;transport=tcp?subject=x>").expect("valid");
        assert_eq!(a.as_str(), "sip:Alice@example.org");
        assert_eq!(a.account_id(), None, "SIP user parts are case-sensitive");
        let b = Aor::parse("sip:alice@example.org").expect("valid");
        assert_eq!(b.account_id(), AccountId::parse("alice@example.org").ok());
        assert_eq!(Aor::parse("sip:%61lice@example.org"), Ok(b));
        assert_eq!(
            Aor::parse("sip:+4930123@example.org:5070").map(|a| a.0),
            Ok("sip:+4930123@example.org:5070".into())
        );
        assert!(Aor::parse("xmpp:alice@example.org").is_err());
        assert!(Aor::parse("sip:alice@bad host").is_err());
        assert!(Aor::parse("sip:%zz@example.org").is_err());
        assert!(
            Aor::parse("sipjþns:a@b").is_err(),
            "no slicing inside a UTF-8 character"
        );
        assert!(AccountId::parse("siþ:a@example.org").is_err());
    }

    #[test]
    fn aor_escapes_what_sip_needs() {
        let id =
            AccountId::new("jürgen", Domain::parse("example.org").expect("valid")).expect("valid");
        assert_eq!(id.aor().as_str(), "sip:j%C3%BCrgen@example.org");
        assert_eq!(id.aor().user().as_deref(), Some("jürgen"));
        assert_eq!(id.aor().account_id(), Some(id));
    }
}
