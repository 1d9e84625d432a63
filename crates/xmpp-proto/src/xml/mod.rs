//! RFC 6120 §4 and §11: the XML stream — incremental reader with limits, and serialization.

mod reader;
mod writer;

pub use reader::{StreamHeader, StreamReader, XmlEvent, XmlLimits};
pub use writer::{
    STREAM_CLOSE, StreamHeaderOut, WriteError, escape_attr, escape_text, stream_header,
    write_element, write_stream_child,
};

/// Sets an unqualified attribute; `name` is a constant NCName of this crate, so the conversion
/// cannot fail (a failure would only skip the attribute).
pub fn set_attr(el: &mut minidom::Element, name: &str, value: impl Into<String>) {
    if let Ok(n) = rxml::NcName::try_from(name) {
        el.set_attr(rxml::Namespace::NONE, n, value.into());
    }
}

/// An element with the given name, namespace and text content.
pub(crate) fn text_el(name: &str, ns: &str, text: impl Into<String>) -> minidom::Element {
    let mut el = minidom::Element::bare(name, ns);
    el.append_text(text.into());
    el
}
