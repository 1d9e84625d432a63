//! RFC 7081 §3.1: operator-assigned aliases of an account (extra SIP URIs and phone numbers).

use crate::{AddressError, Aor};
use std::fmt;

/// An extra address that routes to an account and that the server pins into its vCard.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alias {
    /// Another SIP address of record, e.g. `sip:sales@example.org`.
    Sip(Aor),
    /// A phone number: digits with an optional leading `+` (visual separators removed).
    Number(String),
}

impl Alias {
    /// Reads `sip:…`/`sips:…`, `tel:+49-30-123` or a bare number such as `+49 30 123`.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let t = text.trim();
        if let Some(rest) = crate::id::strip_prefix_ci(t, "tel:") {
            let num = rest.split(';').next().unwrap_or_default();
            return Self::number(num, text);
        }
        if t.contains(':') || t.contains('@') {
            return Aor::parse(t).map(Alias::Sip);
        }
        Self::number(t, text)
    }

    fn number(num: &str, original: &str) -> Result<Self, AddressError> {
        let mut out = String::with_capacity(num.len());
        for (i, c) in num.chars().enumerate() {
            match c {
                '+' if i == 0 => out.push('+'),
                '0'..='9' => out.push(c),
                '-' | '.' | ' ' | '(' | ')' => {}
                _ => return Err(AddressError::InvalidNumber(original.to_owned())),
            }
        }
        let digits = out.trim_start_matches('+').len();
        if digits == 0 || digits > 32 {
            return Err(AddressError::InvalidNumber(original.to_owned()));
        }
        Ok(Alias::Number(out))
    }

    /// The canonical text stored and compared: the AOR, or the number.
    pub fn as_str(&self) -> &str {
        match self {
            Alias::Sip(aor) => aor.as_str(),
            Alias::Number(n) => n,
        }
    }

    /// The SIP URI a vCard TEL carries for this alias (RFC 3261 §19.1.6 for numbers).
    pub fn sip_uri(&self, domain: &str) -> String {
        match self {
            Alias::Sip(aor) => aor.to_string(),
            Alias::Number(n) => format!("sip:{n}@{domain};user=phone"),
        }
    }
}

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_uris() {
        assert_eq!(
            Alias::parse("+49 (30) 123-45"),
            Ok(Alias::Number("+493012345".into()))
        );
        assert_eq!(
            Alias::parse("tel:+49-30-1;phone-context=x"),
            Ok(Alias::Number("+49301".into()))
        );
        assert_eq!(Alias::parse("100").map(|a| a.to_string()), Ok("100".into()));
        assert_eq!(
            Alias::parse("sip:Sales@Example.org").map(|a| a.to_string()),
            Ok("sip:Sales@example.org".into())
        );
        for bad in ["", "+", "12a", "1+2", "xmpp:a@b", "tþl:1", "siþ:a@b"] {
            assert!(Alias::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Alias::Number("+4930".into()).sip_uri("example.org"),
            "sip:+4930@example.org;user=phone"
        );
    }
}
