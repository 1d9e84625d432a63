//! RFC 6120 §4–§7 (client side): STARTTLS, SCRAM/PLAIN, resource binding and session.

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use minidom::Element;

use super::TlsPolicy;
use super::bind;
use super::bound::BoundStream;
use super::error::StreamError;
use super::features::Features;
use crate::ns;
use crate::sasl::{
    ChannelBinding, ClientChannelBinding, Mechanism, SaslCondition, ScramClient, ScramClientError,
    ScramClientSecret, ScramHash, plain_client_message,
};
use crate::xml::{StreamHeaderOut, StreamReader, XmlEvent, XmlLimits, stream_header, text_el};

/// A SaltedPassword cached from an earlier login, to skip PBKDF2.
#[derive(Clone, Debug)]
pub struct CachedSaltedPassword {
    /// The hash it was derived with.
    pub hash: ScramHash,
    /// The salt and iteration count the server sent.
    pub salt: Vec<u8>,
    /// The iteration count.
    pub iterations: u32,
    /// The SaltedPassword.
    pub salted_password: Vec<u8>,
}

/// Client-side negotiation settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The server domain (`to` of the stream header).
    pub domain: String,
    /// The account's localpart.
    pub username: String,
    /// The password.
    pub password: String,
    /// A cached SaltedPassword to use when the server's salt matches.
    pub cached: Option<CachedSaltedPassword>,
    /// The resource to request; `None` lets the server pick.
    pub resource: Option<String>,
    /// Whether to use STARTTLS when offered and whether to insist on it.
    pub tls: TlsPolicy,
    /// Whether PLAIN may be used (only ever over TLS).
    pub allow_plain: bool,
    /// XML reader limits.
    pub limits: XmlLimits,
}

/// Why client negotiation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server sent or caused a stream error.
    #[error("stream error: {0}")]
    Stream(StreamError),
    /// TLS is required by our policy but the server does not offer it.
    #[error("server does not offer STARTTLS")]
    TlsUnavailable,
    /// No mechanism we accept is offered.
    #[error("no acceptable SASL mechanism")]
    NoMechanism,
    /// The server rejected authentication.
    #[error("authentication failed: {0}")]
    AuthFailed(SaslCondition),
    /// Our SCRAM client rejected the exchange (e.g. the server signature was wrong).
    #[error("SCRAM: {0}")]
    Scram(ScramClientError),
    /// The server refused the bind or session request, or answered unexpectedly.
    #[error("resource binding failed")]
    BindFailed,
    /// The server sent something out of protocol order.
    #[error("unexpected element from server")]
    Unexpected,
}

/// What the client negotiation asks of, or tells, the IO layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// STARTTLS was accepted: run the TLS handshake, then call
    /// [`ClientNegotiation::tls_established`].
    NeedTls,
    /// Authenticated; `cache` holds the SaltedPassword for the next login (SCRAM only).
    Authenticated {
        /// The mechanism used.
        mechanism: Mechanism,
        /// The SaltedPassword to cache.
        cache: Option<CachedSaltedPassword>,
    },
    /// Bound to this JID; call [`ClientNegotiation::into_bound`].
    Bound(jid::FullJid),
    /// Negotiation failed; the stream is closed.
    Failed(ClientError),
}

#[derive(Debug)]
enum Phase {
    AwaitFeatures,
    AwaitProceed,
    AwaitTls,
    Sasl {
        mechanism: Mechanism,
        scram: Option<Box<ScramClient>>,
        verified: bool,
    },
    AwaitBind,
    AwaitSession(jid::FullJid),
    Bound(jid::FullJid),
    Done,
}

/// Client-side negotiation of one c2s stream.
#[derive(Debug)]
pub struct ClientNegotiation {
    config: ClientConfig,
    reader: StreamReader,
    phase: Phase,
    out: Vec<u8>,
    events: VecDeque<ClientEvent>,
    tls: bool,
    channel_bindings: Vec<ChannelBinding>,
    authenticated: bool,
    session_required: bool,
    failed: bool,
}

impl ClientNegotiation {
    /// Starts negotiation on a plain TCP connection; the stream header is queued.
    pub fn new(config: ClientConfig) -> ClientNegotiation {
        ClientNegotiation::start(config, false, Vec::new())
    }

    /// Starts negotiation on a XEP-0368 direct-TLS connection.
    pub fn new_direct_tls(config: ClientConfig, channel_bindings: Vec<ChannelBinding>) -> Self {
        ClientNegotiation::start(config, true, channel_bindings)
    }

    fn start(config: ClientConfig, tls: bool, channel_bindings: Vec<ChannelBinding>) -> Self {
        let reader = StreamReader::new(config.limits.clone());
        let mut n = ClientNegotiation {
            config,
            reader,
            phase: Phase::AwaitFeatures,
            out: Vec::new(),
            events: VecDeque::new(),
            tls,
            channel_bindings,
            authenticated: false,
            session_required: false,
            failed: false,
        };
        n.send_header();
        n
    }

    /// Bytes to send (drains the buffer).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The TLS handshake finished; the stream restarts.
    pub fn tls_established(&mut self, channel_bindings: Vec<ChannelBinding>) {
        if matches!(self.phase, Phase::AwaitTls) {
            self.tls = true;
            self.channel_bindings = channel_bindings;
            self.restart();
        }
    }

    /// Hands over the bound stream; `Err(self)` if not bound yet.
    pub fn into_bound(self) -> Result<BoundStream, Box<ClientNegotiation>> {
        match self.phase {
            Phase::Bound(full) => Ok(BoundStream::new(self.reader, self.out, full)),
            _ => Err(Box::new(self)),
        }
    }

    /// Feeds bytes received from the server.
    pub fn feed(&mut self, data: &[u8]) {
        if matches!(self.phase, Phase::Done | Phase::AwaitTls | Phase::Bound(_)) {
            return;
        }
        self.reader.feed(data);
        while !matches!(self.phase, Phase::Done | Phase::AwaitTls | Phase::Bound(_)) {
            let Some(ev) = self.reader.next_event() else {
                break;
            };
            match ev {
                Ok(XmlEvent::StreamOpen(_)) => {}
                Ok(XmlEvent::Stanza(el)) => self.on_element(&el),
                Ok(XmlEvent::StreamClose) => self.fail(ClientError::Unexpected),
                Err(e) => {
                    self.out.extend_from_slice(&e.to_closing_bytes());
                    self.fail(ClientError::Stream(e));
                }
            }
        }
    }

    fn send_header(&mut self) {
        let h = stream_header(&StreamHeaderOut {
            to: Some(&self.config.domain),
            lang: Some("en"),
            content_ns: ns::JABBER_CLIENT,
            ..StreamHeaderOut::default()
        });
        self.out.extend_from_slice(&h);
    }

    fn restart(&mut self) {
        self.reader.reset();
        self.phase = Phase::AwaitFeatures;
        self.send_header();
    }

    fn send(&mut self, el: &Element) {
        crate::xml::write_stream_child(el, &mut self.out);
    }

    fn fail(&mut self, e: ClientError) {
        if !self.failed {
            self.failed = true;
            self.out.extend_from_slice(crate::xml::STREAM_CLOSE);
            self.phase = Phase::Done;
            self.events.push_back(ClientEvent::Failed(e));
        }
    }

    fn on_element(&mut self, el: &Element) {
        if el.is("error", ns::STREAM) {
            let e = StreamError::from_element(el)
                .unwrap_or_else(|| super::StreamErrorCondition::UndefinedCondition.into());
            return self.fail(ClientError::Stream(e));
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        let el_ns = el.ns();
        match (phase, el_ns.as_str(), el.name()) {
            (Phase::AwaitFeatures, ns::STREAM, "features") => match Features::from_element(el) {
                Some(f) => self.on_features(&f),
                None => self.fail(ClientError::Unexpected),
            },
            (Phase::AwaitProceed, ns::TLS, "proceed") => {
                self.phase = Phase::AwaitTls;
                self.events.push_back(ClientEvent::NeedTls);
            }
            (
                Phase::Sasl {
                    mechanism,
                    scram,
                    verified,
                },
                ns::SASL,
                name,
            ) => self.on_sasl(mechanism, scram, verified, name, el),
            (Phase::AwaitBind, ns::JABBER_CLIENT, "iq") => self.on_bind_result(el),
            (Phase::AwaitSession(full), ns::JABBER_CLIENT, "iq") => {
                if el.attr("type") == Some("result") {
                    self.bound(full);
                } else {
                    self.fail(ClientError::BindFailed);
                }
            }
            _ => self.fail(ClientError::Unexpected),
        }
    }

    fn on_features(&mut self, f: &Features) {
        if self.authenticated {
            if !f.bind {
                return self.fail(ClientError::BindFailed);
            }
            self.session_required = f.session == Some(false);
            self.send(&bind::request("bind", self.config.resource.as_deref()));
            self.phase = Phase::AwaitBind;
            return;
        }
        if !self.tls && f.starttls.is_some() && self.config.tls != TlsPolicy::Disabled {
            self.send(&Element::bare("starttls", ns::TLS));
            self.phase = Phase::AwaitProceed;
            return;
        }
        if !self.tls && self.config.tls == TlsPolicy::Required {
            return self.fail(ClientError::TlsUnavailable);
        }
        self.start_sasl(f);
    }

    fn start_sasl(&mut self, f: &Features) {
        let binding = self.pick_binding(f);
        let plain_ok = self.tls && self.config.allow_plain;
        let pick = [
            Mechanism::ScramSha256Plus,
            Mechanism::ScramSha256,
            Mechanism::ScramSha1Plus,
            Mechanism::ScramSha1,
            Mechanism::Plain,
        ]
        .into_iter()
        .find(|m| {
            f.mechanisms.contains(m)
                && (!m.is_plus() || binding.is_some())
                && (*m != Mechanism::Plain || plain_ok)
        });
        let Some(mechanism) = pick else {
            return self.fail(ClientError::NoMechanism);
        };
        let Some(hash) = mechanism.scram_hash() else {
            let msg = plain_client_message(None, &self.config.username, &self.config.password);
            self.send_auth(mechanism, &msg);
            self.phase = Phase::Sasl {
                mechanism,
                scram: None,
                verified: true,
            };
            return;
        };
        let cb = match (&binding, mechanism.is_plus()) {
            (Some(b), true) => ClientChannelBinding::Bind(b.clone()),
            (Some(_), false) => ClientChannelBinding::NotOfferedByServer,
            (None, _) if !self.channel_bindings.is_empty() => {
                ClientChannelBinding::NotOfferedByServer
            }
            (None, _) => ClientChannelBinding::Unsupported,
        };
        let secret = match &self.config.cached {
            Some(c) if c.hash == hash => ScramClientSecret::Salted {
                salt: c.salt.clone(),
                iterations: c.iterations,
                salted_password: c.salted_password.clone(),
            },
            _ => ScramClientSecret::Password(self.config.password.clone()),
        };
        match ScramClient::new(mechanism, &self.config.username, secret, cb, None) {
            Ok(mut scram) => {
                let first = scram.client_first();
                self.send_auth(mechanism, &first);
                self.phase = Phase::Sasl {
                    mechanism,
                    scram: Some(Box::new(scram)),
                    verified: false,
                };
            }
            Err(e) => self.fail(ClientError::Scram(e)),
        }
    }

    /// The channel binding to use: one the server lists (XEP-0440), else our first.
    fn pick_binding(&self, f: &Features) -> Option<ChannelBinding> {
        if !f.mechanisms.iter().any(|m| m.is_plus()) {
            return None;
        }
        if f.channel_bindings.is_empty() {
            return self.channel_bindings.first().cloned();
        }
        self.channel_bindings
            .iter()
            .find(|c| f.channel_bindings.contains(&c.kind))
            .cloned()
    }

    fn send_auth(&mut self, mechanism: Mechanism, data: &[u8]) {
        let text = if data.is_empty() {
            "=".to_owned()
        } else {
            B64.encode(data)
        };
        let mut auth = text_el("auth", ns::SASL, text);
        crate::xml::set_attr(&mut auth, "mechanism", mechanism.name());
        self.send(&auth);
    }

    fn on_sasl(
        &mut self,
        mechanism: Mechanism,
        mut scram: Option<Box<ScramClient>>,
        mut verified: bool,
        name: &str,
        el: &Element,
    ) {
        let data = match B64.decode(el.text().trim()) {
            Ok(d) => d,
            Err(_) => return self.fail(ClientError::Unexpected),
        };
        match name {
            "challenge" => {
                let reply = match scram.as_deref_mut() {
                    Some(s) if s.salted_password().is_none() => s.handle_server_first(&data),
                    // A server-final sent as a challenge: verify and answer empty.
                    Some(s) => s.handle_server_final(&data).map(|()| {
                        verified = true;
                        Vec::new()
                    }),
                    None => return self.fail(ClientError::Unexpected),
                };
                match reply {
                    Ok(r) => {
                        let text = if r.is_empty() {
                            String::new()
                        } else {
                            B64.encode(r)
                        };
                        self.send(&text_el("response", ns::SASL, text));
                        self.phase = Phase::Sasl {
                            mechanism,
                            scram,
                            verified,
                        };
                    }
                    Err(e) => self.fail(ClientError::Scram(e)),
                }
            }
            "success" => {
                if let Some(s) = scram.as_deref_mut()
                    && !verified
                    && let Err(e) = s.handle_server_final(&data)
                {
                    return self.fail(ClientError::Scram(e));
                }
                let cache = scram.as_deref().and_then(|s| {
                    let (salt, iterations, salted) = s.salted_password()?;
                    Some(CachedSaltedPassword {
                        hash: mechanism.scram_hash()?,
                        salt: salt.to_vec(),
                        iterations,
                        salted_password: salted.to_vec(),
                    })
                });
                self.authenticated = true;
                self.events
                    .push_back(ClientEvent::Authenticated { mechanism, cache });
                self.restart();
            }
            "failure" => {
                let cond = el
                    .children()
                    .find_map(|c| SaslCondition::from_name(c.name()))
                    .unwrap_or(SaslCondition::NotAuthorized);
                self.fail(ClientError::AuthFailed(cond));
            }
            _ => self.fail(ClientError::Unexpected),
        }
    }

    fn on_bind_result(&mut self, el: &Element) {
        let jid = el
            .get_child("bind", ns::BIND)
            .and_then(|b| b.get_child("jid", ns::BIND))
            .and_then(|j| j.text().parse::<jid::FullJid>().ok());
        match (el.attr("type"), jid) {
            (Some("result"), Some(full)) => self.bound_or_session(full),
            _ => self.fail(ClientError::BindFailed),
        }
    }

    fn bound_or_session(&mut self, full: jid::FullJid) {
        // The session feature was read before bind; ask only when it was not optional.
        if self.session_required {
            self.send(&bind::session_request("sess"));
            self.phase = Phase::AwaitSession(full);
        } else {
            self.bound(full);
        }
    }

    fn bound(&mut self, full: jid::FullJid) {
        self.phase = Phase::Bound(full.clone());
        self.events.push_back(ClientEvent::Bound(full));
    }
}
