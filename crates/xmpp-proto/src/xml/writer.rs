//! RFC 6120 §4.7 and §11: serialization of stream headers and first-level elements.

use std::fmt::Write as _;

use minidom::{Element, Node};

use crate::ns;

/// The closing tag of a stream.
pub const STREAM_CLOSE: &[u8] = b"</stream:stream>";

/// Why an element could not be serialized.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// An element name is not a valid XML NCName.
    #[error("invalid element name")]
    InvalidName,
    /// Text or an attribute value contains a character XML 1.0 cannot carry.
    #[error("character not allowed in XML")]
    InvalidChar,
}

/// The attributes of a stream header we send.
#[derive(Clone, Debug, Default)]
pub struct StreamHeaderOut<'a> {
    /// The `from` attribute (our domain when we are the server).
    pub from: Option<&'a str>,
    /// The `to` attribute.
    pub to: Option<&'a str>,
    /// The stream id (servers only).
    pub id: Option<&'a str>,
    /// The `xml:lang` attribute.
    pub lang: Option<&'a str>,
    /// The content namespace (`jabber:client` for c2s).
    pub content_ns: &'a str,
}

/// Serializes `<?xml version='1.0'?><stream:stream … version='1.0'>` with escaped attributes.
pub fn stream_header(h: &StreamHeaderOut<'_>) -> Vec<u8> {
    let mut s = String::from("<?xml version='1.0'?><stream:stream xmlns='");
    escape_attr(h.content_ns, &mut s);
    s.push_str("' xmlns:stream='");
    s.push_str(ns::STREAM);
    s.push('\'');
    for (name, value) in [
        ("from", h.from),
        ("to", h.to),
        ("id", h.id),
        ("xml:lang", h.lang),
    ] {
        if let Some(v) = value {
            let _ = write!(s, " {name}='");
            escape_attr(v, &mut s);
            s.push('\'');
        }
    }
    s.push_str(" version='1.0'>");
    s.into_bytes()
}

/// Serializes a first-level element inside a stream whose default namespace is `default_ns`
/// (and where the `stream` prefix is bound); `out` is untouched on error.
pub fn write_element(el: &Element, default_ns: &str, out: &mut Vec<u8>) -> Result<(), WriteError> {
    let mut s = String::new();
    write_el(el, default_ns, &mut s)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Serializes an element this crate built itself in the `jabber:client` context; such elements
/// always have valid names and text, so an error cannot occur and would only drop the element.
pub fn write_stream_child(el: &Element, out: &mut Vec<u8>) {
    let _ = write_element(el, ns::JABBER_CLIENT, out);
}

fn write_el(el: &Element, parent_default: &str, s: &mut String) -> Result<(), WriteError> {
    let name = el.name();
    if rxml::NcName::try_from(name).is_err() {
        return Err(WriteError::InvalidName);
    }
    let el_ns = el.ns();
    let in_stream_ns = el_ns == ns::STREAM;
    let prefix = if in_stream_ns { "stream:" } else { "" };
    s.push('<');
    s.push_str(prefix);
    s.push_str(name);
    let default = if in_stream_ns {
        parent_default
    } else {
        if el_ns != parent_default {
            s.push_str(" xmlns='");
            escape_attr_checked(&el_ns, s)?;
            s.push('\'');
        }
        &el_ns
    };
    let mut generated = 0usize;
    for ((attr_ns, attr_name), value) in el.attrs().iter() {
        s.push(' ');
        match attr_ns.as_namespace_name() {
            None => {}
            Some(uri) if uri == ns::XML => s.push_str("xml:"),
            Some(uri) => {
                let _ = write!(s, "xmlns:ns{generated}='");
                escape_attr_checked(uri, s)?;
                let _ = write!(s, "' ns{generated}:");
                generated += 1;
            }
        }
        s.push_str(attr_name.as_str());
        s.push_str("='");
        escape_attr_checked(value, s)?;
        s.push('\'');
    }
    if el.nodes().next().is_none() {
        s.push_str("/>");
        return Ok(());
    }
    s.push('>');
    for node in el.nodes() {
        match node {
            Node::Element(child) => write_el(child, default, s)?,
            Node::Text(t) => {
                check_chars(t)?;
                escape_text(t, s);
            }
        }
    }
    s.push_str("</");
    s.push_str(prefix);
    s.push_str(name);
    s.push('>');
    Ok(())
}

fn check_chars(t: &str) -> Result<(), WriteError> {
    let bad = |c: char| {
        (c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    };
    if t.chars().any(bad) {
        Err(WriteError::InvalidChar)
    } else {
        Ok(())
    }
}

fn escape_attr_checked(v: &str, s: &mut String) -> Result<(), WriteError> {
    check_chars(v)?;
    escape_attr(v, s);
    Ok(())
}

/// Appends character data escaped for element content (`&`, `<`, `>` and CR).
pub fn escape_text(t: &str, s: &mut String) {
    for c in t.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '\r' => s.push_str("&#xD;"),
            c => s.push(c),
        }
    }
}

/// Appends a value escaped for a single- or double-quoted attribute (whitespace kept exact).
pub fn escape_attr(t: &str, s: &mut String) {
    for c in t.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '\'' => s.push_str("&apos;"),
            '"' => s.push_str("&quot;"),
            '\t' => s.push_str("&#x9;"),
            '\n' => s.push_str("&#xA;"),
            '\r' => s.push_str("&#xD;"),
            c => s.push(c),
        }
    }
}
