//! RFC 3261 §25.1 `generic-param` and `uri-parameter`: `;name[=value]` lists, zero-copy.

use super::text::{find_unquoted, is_token_str, quoted_end, trim};

/// One parameter; `value` is `None` for a flag and keeps quotes if the value was quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter name as written.
    pub name: &'a [u8],
    /// The value as written (quoted strings keep their quotes), or `None` for a flag.
    pub value: Option<&'a [u8]>,
}

/// A `;`-separated parameter list (the text after the first `;`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a [u8],
}

impl<'a> Params<'a> {
    /// Wraps a list that was already validated (or comes from a validated URI).
    pub(crate) fn new_unchecked(raw: &'a [u8]) -> Self {
        Self { raw }
    }

    /// Validates a header-parameter list: each element is `token [= token / host / quoted-string]`.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        Self::parse_each(raw, |_| Some(()))
    }

    /// Validates like [`Params::parse`], calling `each` on every parameter in the same pass
    /// (`each` returning `None` rejects the list).
    pub(crate) fn parse_each(
        raw: &'a [u8],
        mut each: impl FnMut(Param<'a>) -> Option<()>,
    ) -> Option<Self> {
        let p = Self { raw };
        let mut rest = raw;
        loop {
            let end = find_unquoted(rest, b';').unwrap_or(rest.len());
            let one = trim(&rest[..end]);
            let (n, v) = split_param(one);
            if !is_token_str(n) {
                return None;
            }
            if let Some(v) = v {
                let ok = if v.first() == Some(&b'"') {
                    quoted_end(v) == Some(v.len())
                } else {
                    !v.is_empty()
                        && v.iter()
                            .all(|&b| super::text::is_token(b) || b"[]:".contains(&b))
                };
                if !ok {
                    return None;
                }
            }
            each(Param { name: n, value: v })?;
            if end == rest.len() {
                return Some(p);
            }
            rest = &rest[end + 1..];
        }
    }

    /// The raw text of the list.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Iterates the parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            rest: (!self.raw.is_empty()).then_some(self.raw),
        }
    }

    /// The value of the first parameter named `name` (case-insensitive); `Some(b"")` for a flag.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|p| p.value.unwrap_or_default())
    }

    /// True when a parameter named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.iter()
            .any(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
    }
}

fn split_param(one: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b'=', one) {
        Some(e) if !one[..e].contains(&b'"') => (trim(&one[..e]), Some(trim(&one[e + 1..]))),
        _ => (one, None),
    }
}

/// Iterator over [`Params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        let rest = self.rest?;
        let end = find_unquoted(rest, b';').unwrap_or(rest.len());
        self.rest = rest.get(end + 1..);
        let (name, value) = split_param(trim(&rest[..end]));
        Some(Param { name, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let p = Params::parse(b"tag=12 ; lr ; x = \"a;b\" ;received=[2001:db8::1]").expect("valid");
        let v: Vec<_> = p.iter().collect();
        assert_eq!(v.len(), 4);
        assert_eq!(p.get("TAG"), Some(&b"12"[..]));
        assert_eq!(p.get("lr"), Some(&b""[..]));
        assert_eq!(p.get("x"), Some(&b"\"a;b\""[..]));
        assert!(Params::parse(b"a;;b").is_none());
        assert!(Params::parse(b"a=\"x").is_none());
        assert!(Params::parse(b"").is_none());
    }
}
