//! RFC 6120 §8 and §4.4: a bound c2s stream, the only state in which stanzas flow.

use std::collections::VecDeque;

use minidom::Element;

use super::bind;
use super::error::{StreamError, StreamErrorCondition as C};
use crate::ns;
use crate::xml::{StreamReader, WriteError, XmlEvent, write_element};

/// An event of a bound stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BoundEvent {
    /// A stanza (`message`, `presence`, `iq`) or nonza (e.g. stream management) to handle.
    Stanza(Element),
    /// The stream ended; `Some` with the stream error sent or received.
    Closed(Option<StreamError>),
}

/// A negotiated, bound stream: reads stanzas and writes stanzas, nothing else.
#[derive(Debug)]
pub struct BoundStream {
    reader: StreamReader,
    out: Vec<u8>,
    jid: jid::FullJid,
    events: VecDeque<BoundEvent>,
    closed: bool,
}

impl BoundStream {
    pub(crate) fn new(reader: StreamReader, out: Vec<u8>, jid: jid::FullJid) -> BoundStream {
        let mut s = BoundStream {
            reader,
            out,
            jid,
            events: VecDeque::new(),
            closed: false,
        };
        s.drain_reader();
        s
    }

    /// The full JID the stream is bound to.
    pub fn jid(&self) -> &jid::FullJid {
        &self.jid
    }

    /// Feeds bytes received from the peer.
    pub fn feed(&mut self, data: &[u8]) {
        if !self.closed {
            self.reader.feed(data);
            self.drain_reader();
        }
    }

    fn drain_reader(&mut self) {
        while !self.closed {
            let Some(ev) = self.reader.next_event() else {
                break;
            };
            match ev {
                Ok(XmlEvent::Stanza(el)) => self.on_element(el),
                Ok(XmlEvent::StreamClose) => self.close(None),
                Ok(XmlEvent::StreamOpen(_)) => self.fail(C::BadFormat.into()),
                Err(e) => self.fail(e),
            }
        }
    }

    fn on_element(&mut self, el: Element) {
        let el_ns = el.ns();
        if el.is("error", ns::STREAM) {
            let e = StreamError::from_element(&el);
            return self.close(e);
        }
        if bind::is_session_request(&el) {
            let id = el.attr("id").unwrap_or_default().to_owned();
            crate::xml::write_stream_child(&bind::iq_result(&id), &mut self.out);
            return;
        }
        match (el_ns.as_str(), el.name()) {
            (ns::JABBER_CLIENT, "message" | "presence" | "iq") => {
                self.events.push_back(BoundEvent::Stanza(el));
            }
            (ns::JABBER_CLIENT | ns::STREAM, _) => self.fail(C::UnsupportedStanzaType.into()),
            (_, "message" | "presence" | "iq") => self.fail(C::InvalidNamespace.into()),
            _ => self.events.push_back(BoundEvent::Stanza(el)),
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<BoundEvent> {
        self.events.pop_front()
    }

    /// Bytes to send (drains the buffer).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Queues a stanza for sending.
    pub fn send_stanza(&mut self, el: &Element) -> Result<(), WriteError> {
        write_element(el, ns::JABBER_CLIENT, &mut self.out)
    }

    /// Ends the stream with a stream error (e.g. `conflict`, `system-shutdown`).
    pub fn fail(&mut self, e: StreamError) {
        if self.closed {
            return;
        }
        self.out.extend_from_slice(&e.to_closing_bytes());
        self.closed = true;
        self.events.push_back(BoundEvent::Closed(Some(e)));
    }

    /// Closes the stream (answering a peer's close, or starting one).
    pub fn close(&mut self, received: Option<StreamError>) {
        if self.closed {
            return;
        }
        self.out.extend_from_slice(crate::xml::STREAM_CLOSE);
        self.closed = true;
        self.events.push_back(BoundEvent::Closed(received));
    }

    /// Gives back buffers of traffic already handled; call it before waiting for more, so that
    /// an idle stream keeps only its parser state (RFC 6120 §13.12: bounded resources).
    pub fn release_buffers(&mut self) {
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.out.is_empty() {
            self.out = Vec::new();
        }
        self.reader.release_buffers();
    }

    /// Whether the stream is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}
