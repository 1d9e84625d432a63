//! RFC 7081 §3.3–§3.5 (CL-19, CL-21, CL-30, CL-31): the ties between the two protocols —
//! dialing a vCard TEL, comparing SIP identities exactly (RFC 3261 §19.1.4, RFC 3966), and
//! attributing an incoming call to a roster contact only when that contact's vCard confirms it.

use cusax_account::Alias;
use cusax_sip_proto::message::headers::{CallInfo, NameAddr, ValueIter};
use cusax_sip_proto::message::{Scheme, Uri, unescaped};
use serde::Serialize;

use crate::xmpp::VCard;

/// A caller or callee identity, normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A SIP address: user part as is (case-sensitive, RFC 3261 §19.1.4), host lowercased.
    Sip {
        /// The user part, unescaped.
        user: String,
        /// The host, lowercase.
        host: String,
    },
    /// A telephone number: `+` and digits for global numbers, digits for local ones
    /// (RFC 3966 §5.1, visual separators removed).
    Number(String),
}

/// A telephone number with RFC 3966 visual separators removed (`[+]digits`), by the same rule
/// as the server's account aliases; `None` for anything else.
fn phone_number(s: &str) -> Option<String> {
    match Alias::parse(s) {
        Ok(Alias::Number(n)) => Some(n),
        _ => None,
    }
}

impl Identity {
    /// Parses a `sip:`/`sips:`/`tel:` URI, bare or as a name-addr (`"Bob" <sip:…>;tag=x`). A
    /// SIP URI whose user part is a telephone number (`user=phone`, or `+digits`) becomes a
    /// [`Identity::Number`] when its host is `service_domain`; numbers in other domains stay
    /// SIP addresses.
    pub fn parse(value: &str, service_domain: &str) -> Option<Identity> {
        let v = value.trim().as_bytes();
        let uri = if v.contains(&b'<') {
            NameAddr::parse(v)?.uri()
        } else {
            Uri::parse(v)?
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match uri.scheme() {
            Scheme::Tel => phone_number(&text(uri.user()?)).map(Identity::Number),
            Scheme::Sip | Scheme::Sips => {
                let user = String::from_utf8_lossy(&unescaped(uri.user()?).collect::<Vec<u8>>())
                    .into_owned();
                let host = text(uri.host()?.as_bytes())
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                if user.is_empty() || host.is_empty() {
                    return None;
                }
                let user_phone = uri
                    .user_param()
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"phone"));
                let local = host.eq_ignore_ascii_case(service_domain);
                let number = user.split(';').next().and_then(phone_number);
                match number {
                    Some(n) if local && (user_phone || n.starts_with('+')) => {
                        Some(Identity::Number(n))
                    }
                    _ => Some(Identity::Sip { user, host }),
                }
            }
            _ => None,
        }
    }

    /// Reads a vCard TEL NUMBER: a URI, or a number in digits (CL-31).
    pub fn from_tel(number: &str, service_domain: &str) -> Option<Identity> {
        let n = number.trim();
        if n.contains(':') {
            return Identity::parse(n, service_domain);
        }
        phone_number(n).map(Identity::Number)
    }
}

/// The SIP request URI to call for a vCard TEL NUMBER (RFC 7081 §3.3, CL-31): a `sip:`/`sips:`
/// value as is; a `tel:` value or digits as `sip:NUMBER@service_domain;user=phone`
/// (RFC 3261 §19.1.6). `None` when the value is neither.
pub fn dial_uri(number: &str, service_domain: &str) -> Option<String> {
    let n = number.trim();
    let lower = n.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        return Identity::parse(n, service_domain).map(|_| n.to_owned());
    }
    // `tel:` values and digits alike: the alias rule gives `sip:N@domain;user=phone`.
    match Alias::parse(n).ok()? {
        number @ Alias::Number(_) => Some(number.sip_uri(service_domain)),
        Alias::Sip(_) => None,
    }
}

/// The first TEL of a vCard that can be dialled, preferring `sip:` addresses (CL-12).
pub fn callable_tel(card: &VCard, service_domain: &str) -> Option<String> {
    let dialable = |t: &&crate::xmpp::Tel| dial_uri(&t.number, service_domain);
    card.tels
        .iter()
        .find(|t| t.number.trim().to_ascii_lowercase().starts_with("sip"))
        .and_then(|t| dialable(&t))
        .or_else(|| card.tels.iter().find_map(|t| dialable(&t)))
}

/// The JIDs a call's `Call-Info` values name with `purpose=impp` (RFC 7081 §3.5, RFC 6993).
pub fn impp_hints(call_info: &[String]) -> Vec<String> {
    call_info
        .iter()
        // One header may hold several comma-separated values.
        .flat_map(|header| ValueIter::new(header.as_bytes()))
        .filter_map(CallInfo::parse)
        .filter(CallInfo::is_impp)
        .filter_map(|c| c.xmpp_bare_jid())
        .filter(|jid| jid.contains('@'))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// How an incoming call was tied to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The Call-Info `impp` hint named the contact and their vCard lists the caller (CL-21).
    CallInfoConfirmed,
    /// No usable hint; the caller's identity equals a TEL of exactly one contact (CL-19).
    VcardTel,
}

/// The result of matching a caller against the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribution {
    /// The contact's bare JID, when confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// How it was confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// A JID the caller claimed (Call-Info) that could not be confirmed (CL-21, SEC-05).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unconfirmed_claim: Option<String>,
}

/// Whether `card` lists `caller` (exact comparison after normalisation, never substring).
pub fn vcard_lists(card: &VCard, caller: &Identity, service_domain: &str) -> bool {
    card.tels
        .iter()
        .filter_map(|t| Identity::from_tel(&t.number, service_domain))
        .any(|id| id == *caller)
}

/// Attributes a call from `from` (the From or P-Asserted-Identity URI) carrying `call_info`
/// to one of `contacts` (bare JID, vCard) — RFC 7081 §3.5: the `impp` hint is only a cue,
/// confirmed by the named contact's vCard; without a confirmed hint, the caller identity must
/// equal a TEL of exactly one contact.
pub fn attribute(
    from: &str,
    call_info: &[String],
    contacts: &[(String, VCard)],
    service_domain: &str,
) -> Attribution {
    let caller = Identity::parse(from, service_domain);
    let hints = impp_hints(call_info);
    let mut out = Attribution {
        contact: None,
        method: None,
        unconfirmed_claim: None,
    };
    let Some(caller) = caller else {
        out.unconfirmed_claim = hints.into_iter().next();
        return out;
    };
    for h in &hints {
        let confirmed = contacts.iter().find(|(jid, card)| {
            jid.eq_ignore_ascii_case(h) && vcard_lists(card, &caller, service_domain)
        });
        if let Some((jid, _)) = confirmed {
            out.contact = Some(jid.clone());
            out.method = Some(Method::CallInfoConfirmed);
            return out;
        }
    }
    out.unconfirmed_claim = hints.into_iter().next();
    let mut matches = contacts
        .iter()
        .filter(|(_, card)| vcard_lists(card, &caller, service_domain));
    if let (Some((jid, _)), None) = (matches.next(), matches.next()) {
        out.contact = Some(jid.clone());
        out.method = Some(Method::VcardTel);
        if out.unconfirmed_claim.as_deref() == Some(jid.as_str()) {
            out.unconfirmed_claim = None;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::Tel;

    const D: &str = "example.com";

    fn card(numbers: &[&str]) -> VCard {
        VCard {
            full_name: None,
            nickname: None,
            tels: numbers
                .iter()
                .map(|n| Tel {
                    number: (*n).to_owned(),
                    types: vec!["VOICE".into()],
                })
                .collect(),
        }
    }

    #[test]
    fn sip_uris_compare_per_rfc3261() {
        let a = Identity::parse("\"Bob\" <sip:bob@EXAMPLE.com:5060;transport=tcp>;tag=1", D);
        let b = Identity::parse("sip:bob@example.com", D);
        assert_eq!(a, b);
        assert_eq!(
            Identity::parse("sip:%62ob@example.com", D),
            Identity::parse("sip:bob@example.com", D)
        );
        // The user part is case-sensitive.
        assert_ne!(
            Identity::parse("sip:Bob@example.com", D),
            Identity::parse("sip:bob@example.com", D)
        );
        assert_eq!(Identity::parse("mailto:bob@example.com", D), None);
        assert_eq!(Identity::parse("sip:@example.com", D), None);
    }

    #[test]
    fn numbers_normalise_and_dial_per_cl31() {
        assert_eq!(
            Identity::parse("sip:+4930123456@example.com;user=phone", D),
            Some(Identity::Number("+4930123456".into()))
        );
        assert_eq!(
            Identity::from_tel("tel:+49-30-123456", D),
            Identity::from_tel("+49 (30) 123 456", D)
        );
        // A number at a foreign host stays a SIP address: it cannot be checked locally.
        assert!(matches!(
            Identity::parse("sip:+4930123456@evil.example;user=phone", D),
            Some(Identity::Sip { .. })
        ));
        assert_eq!(
            dial_uri("sip:bob@example.org", D).as_deref(),
            Some("sip:bob@example.org")
        );
        assert_eq!(
            dial_uri("tel:+49-30-1234", D).as_deref(),
            Some("sip:+49301234@example.com;user=phone")
        );
        assert_eq!(
            dial_uri(" 030 1234 ", D).as_deref(),
            Some("sip:0301234@example.com;user=phone")
        );
        assert_eq!(dial_uri("call me", D), None);
        let c = card(&["+49 30 1", "sip:bob@example.com"]);
        assert_eq!(callable_tel(&c, D).as_deref(), Some("sip:bob@example.com"));
        assert_eq!(callable_tel(&card(&[]), D), None);
    }

    #[test]
    fn impp_hints_are_read_from_call_info() {
        let h = impp_hints(&[
            "<http://x/photo.png>;purpose=icon, <xmpp:Alice@Example.com>;purpose=impp".into(),
            "<xmpp:carol@example.com/phone> ; purpose=\"impp\"".into(),
            "<xmpp:nobody>;purpose=impp".into(),
            "<xmpp:dave@example.com>;purpose=info".into(),
        ]);
        assert_eq!(h, vec!["alice@example.com", "carol@example.com"]);
    }

    fn roster() -> Vec<(String, VCard)> {
        vec![
            ("bob@example.com".into(), card(&["sip:bob@example.com"])),
            ("carol@example.com".into(), card(&["+49 30 123456"])),
            ("dave@example.com".into(), card(&["3456"])),
        ]
    }

    #[test]
    fn ac22_call_info_confirmed_by_vcard() {
        let a = attribute(
            "<sip:bob@example.com>;tag=9",
            &["<xmpp:bob@example.com>;purpose=impp".into()],
            &roster(),
            D,
        );
        assert_eq!(a.contact.as_deref(), Some("bob@example.com"));
        assert_eq!(a.method, Some(Method::CallInfoConfirmed));
        assert_eq!(a.unconfirmed_claim, None);
    }

    #[test]
    fn ac23_spoofed_call_info_is_not_attributed() {
        let a = attribute(
            "sip:mallory@example.com",
            &["<xmpp:bob@example.com>;purpose=impp".into()],
            &roster(),
            D,
        );
        assert_eq!(a.contact, None);
        assert_eq!(a.unconfirmed_claim.as_deref(), Some("bob@example.com"));
    }

    #[test]
    fn ac24_ac25_exact_number_match_never_substring() {
        let a = attribute("sip:+4930123456@example.com;user=phone", &[], &roster(), D);
        assert_eq!(a.contact.as_deref(), Some("carol@example.com"));
        assert_eq!(a.method, Some(Method::VcardTel));
        // dave's "3456" is a suffix of the caller's number: no match.
        let a = attribute("sip:+4930993456@example.com;user=phone", &[], &roster(), D);
        assert_eq!(a.contact, None);
        // Two contacts listing the same number: ambiguous, nobody.
        let mut r = roster();
        r.push(("eve@example.com".into(), card(&["tel:+4930123456"])));
        let a = attribute("sip:+4930123456@example.com;user=phone", &[], &r, D);
        assert_eq!(a.contact, None);
    }

    #[test]
    fn ac27_strangers_get_no_contact() {
        let a = attribute("sip:stranger@other.example", &[], &roster(), D);
        assert_eq!(
            a,
            Attribution {
                contact: None,
                method: None,
                unconfirmed_claim: None
            }
        );
    }
}
