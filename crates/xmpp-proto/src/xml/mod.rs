//! RFC 6120 §4 and §11: the XML stream — incremental reader with limits, and serialization.

mod reader;
mod writer;

pub use reader::{StreamHeader, StreamReader, XmlEvent, XmlLimits};
pub use writer::{
    STREAM_CLOSE, StreamHeaderOut, WriteError, escape_attr, escape_text, stream_header,
    write_element, write_stream_child,
};
