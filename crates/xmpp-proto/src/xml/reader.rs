//! RFC 6120 §4 and §11: incremental, limited XML stream reader on top of `rxml`.
//!
//! The reader accepts arbitrary byte chunks, resolves namespaces itself (so it can see the
//! stream header's declarations and enforce limits before memory is spent) and yields the
//! stream header, each first-level element as a `minidom::Element`, and the stream end.

use std::collections::VecDeque;

use minidom::Element;
use rxml::{Namespace, NcName, Parse as _, RawEvent, RawParser, WithOptions as _};

use crate::ns;
use crate::stream::error::{StreamError, StreamErrorCondition as C};

/// Limits enforced on top of `rxml`'s restricted-XML rules; all bound per-connection memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlLimits {
    /// Maximum bytes of one first-level element (default 256 KiB); more is `policy-violation`.
    pub max_stanza_bytes: usize,
    /// Maximum element depth inside a stanza, the stanza itself being depth 1 (default 64).
    pub max_depth: usize,
    /// Maximum attributes plus namespace declarations on one element (default 64).
    pub max_attributes: usize,
    /// Maximum elements inside one stanza (default 16384).
    pub max_elements: usize,
    /// Maximum length of a name, attribute value or text chunk buffered by `rxml` (default 8192).
    pub max_token_length: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 64,
            max_attributes: 64,
            max_elements: 16384,
            max_token_length: 8192,
        }
    }
}

/// The attributes and namespace declarations of a received stream header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamHeader {
    /// The `to` attribute.
    pub to: Option<String>,
    /// The `from` attribute.
    pub from: Option<String>,
    /// The `id` attribute.
    pub id: Option<String>,
    /// The `version` attribute.
    pub version: Option<String>,
    /// The `xml:lang` attribute.
    pub lang: Option<String>,
    /// The default (content) namespace declared on the header, if any.
    pub default_ns: Option<String>,
    /// All namespace declarations on the header: `(prefix, uri)`, `None` for the default.
    pub namespaces: Vec<(Option<String>, String)>,
}

/// An event of the XML stream.
#[derive(Clone, Debug, PartialEq)]
pub enum XmlEvent {
    /// The stream header (`<stream:stream …>`) was read.
    StreamOpen(StreamHeader),
    /// A complete first-level element (stanza or nonza).
    Stanza(Element),
    /// The stream was closed with `</stream:stream>`.
    StreamClose,
}

/// A namespace declaration scope: one per open element.
#[derive(Debug, Default)]
struct Scope {
    decls: Vec<(Option<NcName>, String)>,
}

#[derive(Debug)]
struct Head {
    prefix: Option<NcName>,
    name: NcName,
    decls: Vec<(Option<NcName>, String)>,
    attrs: Vec<(Option<NcName>, NcName, String)>,
}

/// Incremental XML stream reader; feed bytes with [`feed`](Self::feed), then drain
/// [`next_event`](Self::next_event).
#[derive(Debug)]
pub struct StreamReader {
    limits: XmlLimits,
    raw: RawParser,
    scopes: Vec<Scope>,
    head: Option<Head>,
    stack: Vec<Element>,
    stanza_bytes: usize,
    stanza_elements: usize,
    idle_bytes: usize,
    closed: bool,
    failed: bool,
    queue: VecDeque<Result<XmlEvent, StreamError>>,
}

impl StreamReader {
    /// A reader for a new stream with the given limits.
    pub fn new(limits: XmlLimits) -> StreamReader {
        let opts = rxml::Options {
            max_token_length: limits.max_token_length,
            ..Default::default()
        };
        StreamReader {
            limits,
            raw: RawParser::with_options(opts),
            scopes: Vec::new(),
            head: None,
            stack: Vec::new(),
            stanza_bytes: 0,
            stanza_elements: 0,
            idle_bytes: 0,
            closed: false,
            failed: false,
            queue: VecDeque::new(),
        }
    }

    /// Forgets all parser state for a stream restart (after STARTTLS or SASL success).
    pub fn reset(&mut self) {
        *self = StreamReader::new(self.limits.clone());
    }

    /// Gives back the memory of traffic already parsed (event queue, element stack, `rxml`'s
    /// token buffers) while keeping the stream's state, so that an idle stream holds little;
    /// a partly received stanza keeps what it needs.
    pub fn release_buffers(&mut self) {
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        }
        if self.stack.is_empty() {
            self.stack = Vec::new();
        }
        self.scopes.shrink_to_fit();
        self.raw.release_temporaries();
    }

    /// Whether the stream ended (closed or failed); further input is ignored.
    pub fn is_finished(&self) -> bool {
        self.closed || self.failed
    }

    /// The next event, or a terminal error, in stream order.
    pub fn next_event(&mut self) -> Option<Result<XmlEvent, StreamError>> {
        self.queue.pop_front()
    }

    /// Feeds a chunk of bytes (any split, including inside UTF-8 sequences).
    pub fn feed(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // rxml may hold queued events after consuming the last byte: parse until it asks for more.
        while !self.is_finished() {
            let before = data.len();
            let result = self.raw.parse(&mut data, false);
            self.idle_bytes = self.idle_bytes.saturating_add(before - data.len());
            let outcome = match result {
                Ok(Some(ev)) => {
                    self.idle_bytes = 0;
                    self.on_raw(ev)
                }
                Ok(None) => Err(C::NotWellFormed.into()),
                Err(rxml::error::EndOrError::NeedMoreData) => {
                    if self.idle_bytes > self.limits.max_stanza_bytes {
                        self.fail(StreamError::with_text(C::PolicyViolation, "no progress"));
                    }
                    break;
                }
                Err(rxml::error::EndOrError::Error(e)) => Err(map_rxml_error(&e)),
            };
            if let Err(e) = outcome {
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, e: StreamError) {
        self.failed = true;
        self.stack.clear();
        self.scopes.clear();
        self.head = None;
        self.queue.push_back(Err(e));
    }

    fn on_raw(&mut self, ev: RawEvent) -> Result<(), StreamError> {
        self.stanza_bytes = self.stanza_bytes.saturating_add(ev.metrics().len());
        match ev {
            RawEvent::XmlDeclaration(..) => Ok(()),
            RawEvent::ElementHeadOpen(m, (prefix, name)) => {
                let ev_len = m.len();
                let new_depth = self.scopes.len() + 1;
                if new_depth == 2 {
                    self.stanza_bytes = ev_len;
                    self.stanza_elements = 0;
                }
                if new_depth > self.limits.max_depth.saturating_add(1) {
                    return Err(StreamError::with_text(C::PolicyViolation, "too deep"));
                }
                self.stanza_elements += 1;
                if self.stanza_elements > self.limits.max_elements {
                    return Err(StreamError::with_text(
                        C::PolicyViolation,
                        "too many elements",
                    ));
                }
                self.head = Some(Head {
                    prefix,
                    name,
                    decls: Vec::new(),
                    attrs: Vec::new(),
                });
                self.check_size()
            }
            RawEvent::Attribute(_, (prefix, name), value) => {
                let head = self.head.as_mut().ok_or(C::NotWellFormed)?;
                if head.decls.len() + head.attrs.len() >= self.limits.max_attributes {
                    return Err(StreamError::with_text(
                        C::PolicyViolation,
                        "too many attributes",
                    ));
                }
                match (prefix, name) {
                    (None, n) if n.as_str() == "xmlns" => add_decl(head, None, value)?,
                    (Some(p), n) if p.as_str() == "xmlns" => add_decl(head, Some(n), value)?,
                    (p, n) => {
                        if head.attrs.iter().any(|(ap, an, _)| *ap == p && *an == n) {
                            return Err(C::NotWellFormed.into());
                        }
                        head.attrs.push((p, n, value));
                    }
                }
                self.check_size()
            }
            RawEvent::ElementHeadClose(_) => {
                let head = self.head.take().ok_or(C::NotWellFormed)?;
                self.open_element(head)?;
                self.check_size()
            }
            RawEvent::Text(_, text) => {
                match self.stack.last_mut() {
                    Some(top) => top.append_text(text.as_str()),
                    None if self.scopes.len() == 1 => {
                        if !text.as_str().bytes().all(|b| b" \t\r\n".contains(&b)) {
                            return Err(StreamError::with_text(
                                C::BadFormat,
                                "text at stream level",
                            ));
                        }
                    }
                    None => return Err(C::NotWellFormed.into()),
                }
                self.check_size()
            }
            RawEvent::ElementFoot(_) => {
                self.check_size()?;
                self.scopes.pop().ok_or(C::NotWellFormed)?;
                match self.scopes.len() {
                    0 => {
                        self.closed = true;
                        self.queue.push_back(Ok(XmlEvent::StreamClose));
                    }
                    _ => {
                        let el = self.stack.pop().ok_or(C::NotWellFormed)?;
                        match self.stack.last_mut() {
                            Some(parent) => {
                                parent.append_child(el);
                            }
                            None => {
                                self.queue.push_back(Ok(XmlEvent::Stanza(el)));
                                self.stanza_bytes = 0;
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn check_size(&self) -> Result<(), StreamError> {
        if self.stanza_bytes > self.limits.max_stanza_bytes {
            Err(StreamError::with_text(
                C::PolicyViolation,
                "stanza too large",
            ))
        } else {
            Ok(())
        }
    }

    fn resolve(
        &self,
        prefix: Option<&NcName>,
        decls: &[(Option<NcName>, String)],
    ) -> Option<String> {
        if prefix.map(NcName::as_str) == Some("xml") {
            return Some(ns::XML.to_owned());
        }
        let own = decls.iter().rev().find(|(p, _)| p.as_ref() == prefix);
        let found = own.or_else(|| {
            self.scopes
                .iter()
                .rev()
                .find_map(|s| s.decls.iter().rev().find(|(p, _)| p.as_ref() == prefix))
        });
        match (found, prefix) {
            (Some((_, uri)), _) => Some(uri.clone()),
            (None, None) => Some(String::new()),
            (None, Some(_)) => None,
        }
    }

    fn open_element(&mut self, head: Head) -> Result<(), StreamError> {
        let element_ns = self
            .resolve(head.prefix.as_ref(), &head.decls)
            .ok_or(C::NotWellFormed)?;
        let mut attrs = rxml::AttrMap::new();
        for (prefix, name, value) in head.attrs {
            let attr_ns = match &prefix {
                None => Namespace::NONE,
                Some(p) => {
                    Namespace::from(self.resolve(Some(p), &head.decls).ok_or(C::NotWellFormed)?)
                }
            };
            if attrs.insert(attr_ns, name, value).is_some() {
                return Err(C::NotWellFormed.into());
            }
        }
        if self.scopes.is_empty() {
            return self.open_stream(head.name, element_ns, head.decls, attrs);
        }
        let mut el = Element::bare(head.name.as_str(), element_ns);
        *el.attrs_mut() = attrs;
        self.stack.push(el);
        self.scopes.push(Scope { decls: head.decls });
        Ok(())
    }

    fn open_stream(
        &mut self,
        name: NcName,
        stream_ns: String,
        decls: Vec<(Option<NcName>, String)>,
        attrs: rxml::AttrMap,
    ) -> Result<(), StreamError> {
        if stream_ns != ns::STREAM {
            return Err(C::InvalidNamespace.into());
        }
        if name.as_str() != "stream" {
            return Err(StreamError::with_text(C::BadFormat, "root is not <stream>"));
        }
        let get = |n: &str| attrs.get(&Namespace::NONE, n).cloned();
        let header = StreamHeader {
            to: get("to"),
            from: get("from"),
            id: get("id"),
            version: get("version"),
            lang: attrs.get(Namespace::xml(), "lang").cloned(),
            default_ns: decls
                .iter()
                .find(|(p, _)| p.is_none())
                .map(|(_, u)| u.clone()),
            namespaces: decls
                .iter()
                .map(|(p, u)| (p.as_ref().map(|p| p.as_str().to_owned()), u.clone()))
                .collect(),
        };
        self.scopes.push(Scope { decls });
        self.stanza_bytes = 0;
        self.queue.push_back(Ok(XmlEvent::StreamOpen(header)));
        Ok(())
    }
}

/// Records a namespace declaration after the checks of Namespaces in XML 1.0 §3.
fn add_decl(head: &mut Head, prefix: Option<NcName>, uri: String) -> Result<(), StreamError> {
    const XMLNS: &str = "http://www.w3.org/2000/xmlns/";
    let p = prefix.as_ref().map(NcName::as_str);
    let ok = match p {
        Some("xmlns") => false,
        Some("xml") => uri == ns::XML,
        Some(_) => !uri.is_empty() && uri != ns::XML && uri != XMLNS,
        None => uri != ns::XML && uri != XMLNS,
    };
    if !ok || head.decls.iter().any(|(q, _)| *q == prefix) {
        return Err(C::NotWellFormed.into());
    }
    head.decls.push((prefix, uri));
    Ok(())
}

/// Maps an `rxml` error to the stream error RFC 6120 §4.9.3 prescribes.
fn map_rxml_error(e: &rxml::Error) -> StreamError {
    use rxml::Error as E;
    match e {
        E::RestrictedXml("event too long" | "long name or reference") => {
            StreamError::with_text(C::PolicyViolation, "token too long")
        }
        E::RestrictedXml("only utf-8 encoding is allowed") => C::UnsupportedEncoding.into(),
        E::RestrictedXml(_) | E::UndeclaredEntity => C::RestrictedXml.into(),
        // `<!` other than CDATA or a comment: a DOCTYPE or other markup declaration (§11.1).
        E::InvalidSyntax("malformed cdata or comment section start") => C::RestrictedXml.into(),
        _ => C::NotWellFormed.into(),
    }
}
