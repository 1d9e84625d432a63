//! RFC 3261 §25.1: basic character classes, LWS and quoted-string helpers.

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
}

static TOKEN: [bool; 256] = token_table();

/// True for RFC 3261 `token` characters.
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// True when `s` is a non-empty token.
pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

/// True for linear white space bytes; CR and LF only occur in values as part of a fold.
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Strips LWS (including folds) from both ends.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_lws(b)).map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}

/// Given `s` starting with `"`, returns the index just past the closing quote.
pub(crate) fn quoted_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Removes surrounding quotes and backslash escapes from a quoted-string, or returns the input.
pub fn unquote(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"' {
        let inner = &s[1..s.len() - 1];
        if !inner.contains(&b'\\') {
            return std::borrow::Cow::Borrowed(inner);
        }
        let mut out = Vec::with_capacity(inner.len());
        let mut it = inner.iter();
        while let Some(&b) = it.next() {
            if b == b'\\' {
                if let Some(&n) = it.next() {
                    out.push(n);
                }
            } else {
                out.push(b);
            }
        }
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Finds the first `sep` outside quoted strings and `<…>`; used to split lists and parameters.
pub(crate) fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
    let mut i = 0;
    let mut angle = false;
    while i < s.len() {
        let b = s[i];
        if b == b'"' {
            i += quoted_end(&s[i..]).unwrap_or(s.len() - i);
            continue;
        }
        if b == b'<' {
            angle = true;
        } else if b == b'>' {
            angle = false;
        } else if b == sep && !angle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Parses a decimal number of at most `max` value; no sign, no whitespace.
pub(crate) fn parse_u64(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (v <= max).then_some(v)
}

/// Decodes one hex digit.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Iterates the bytes of `s` with `%HH` escapes decoded (invalid escapes pass through verbatim).
pub fn unescaped(s: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *s.get(i)?;
        if b == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex_val),
                s.get(i + 2).copied().and_then(hex_val),
            )
        {
            i += 3;
            return Some(h << 4 | l);
        }
        i += 1;
        Some(b)
    })
}

/// Checks that every `%` in `s` starts a valid `%HH` escape.
pub(crate) fn escapes_valid(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'%', &s[i..]) {
        let at = i + p;
        if s.get(at + 1).copied().and_then(hex_val).is_none()
            || s.get(at + 2).copied().and_then(hex_val).is_none()
        {
            return false;
        }
        i = at + 3;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(trim(b" \r\n\tab c \r\n "), b"ab c");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(find_unquoted(b"\"a,b\" <x,y>, z", b','), Some(11));
        assert_eq!(&*unquote(b"\"a\\\"b\""), b"a\"b");
        assert_eq!(parse_u64(b"0070", 255), Some(70));
        assert_eq!(parse_u64(b"36893488147419103232", u64::MAX), None);
        assert_eq!(unescaped(b"a%41%zz").collect::<Vec<_>>(), b"aA%zz");
        assert!(!escapes_valid(b"a%4"));
    }
}
