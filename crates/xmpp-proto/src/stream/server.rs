//! RFC 6120 §4–§7 and XEP-0368: server-side c2s stream negotiation as a sans-IO state machine.
//!
//! Feed received bytes with [`ServerNegotiation::feed`], then drain [`take_output`] and
//! [`poll_event`]. Each phase is its own type inside [`Phase`]; stanzas are only surfaced
//! once bound, and [`ServerNegotiation::into_bound`] hands over a [`BoundStream`].
//!
//! [`take_output`]: ServerNegotiation::take_output
//! [`poll_event`]: ServerNegotiation::poll_event

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use minidom::Element;

use super::bound::BoundStream;
use super::error::{StreamError, StreamErrorCondition as C};
use super::features::Features;
use super::{TlsPolicy, bind};
use crate::ns;
use crate::sasl::{
    ChannelBinding, Mechanism, PlainAuth, SaslCondition, SaslServer, SaslServerConfig,
    ScramCredentials, ServerStep,
};
use crate::stanza::StanzaErrorCondition;
use crate::xml::{StreamHeader, StreamHeaderOut, StreamReader, XmlEvent, XmlLimits, stream_header};

/// Server-side negotiation settings, shared by all connections of a listener.
#[derive(Clone)]
pub struct ServerConfig {
    /// Whether STARTTLS is offered and whether it is required.
    pub tls: TlsPolicy,
    /// Mechanisms to offer, in order; PLAIN is offered only under TLS, -PLUS only with
    /// channel-binding data.
    pub mechanisms: Vec<Mechanism>,
    /// SASL settings (fake-salt key for unknown users).
    pub sasl: SaslServerConfig,
    /// Failed SASL attempts allowed before the stream is closed with `policy-violation`.
    pub max_auth_attempts: u8,
    /// Whether to advertise the legacy session feature (always as `<optional/>`).
    pub advertise_session: bool,
    /// Whether to advertise XEP-0352 Client State Indication after authentication (the
    /// bound stream passes `<active/>` and `<inactive/>` on as nonzas).
    pub advertise_csi: bool,
    /// XML reader limits.
    pub limits: XmlLimits,
    /// Decides whether a `to` domain is served here.
    pub is_served: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("tls", &self.tls)
            .field("mechanisms", &self.mechanisms)
            .field("max_auth_attempts", &self.max_auth_attempts)
            .finish_non_exhaustive()
    }
}

/// What the negotiation asks of, or tells, the IO and server layers.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// `<proceed/>` is in the output: flush it, run the TLS handshake, then call
    /// [`ServerNegotiation::tls_established`].
    NeedTls,
    /// SCRAM: look up the verifier for `username` and call
    /// [`ServerNegotiation::provide_credentials`] (or [`ServerNegotiation::reject_auth`]).
    NeedCredentials {
        /// The SASLprep'd username (the localpart of the account).
        username: String,
        /// The mechanism in use (its hash selects which verifier).
        mechanism: Mechanism,
    },
    /// PLAIN: verify the password and call [`ServerNegotiation::plain_result`].
    VerifyPlain(PlainAuth),
    /// A SASL exchange failed (wrong credentials, bad mechanism, abort…), so the server can
    /// slow down repeated failures per account and per address.
    AuthFailed {
        /// The username of the failed attempt, when the exchange got that far.
        username: Option<String>,
        /// The condition sent to the client.
        condition: SaslCondition,
    },
    /// SASL succeeded for this username.
    Authenticated {
        /// The authenticated username.
        username: String,
    },
    /// Resource binding: decide on `resource` (check conflicts) and call
    /// [`ServerNegotiation::complete_bind`].
    BindRequest {
        /// The resourceprep'd resource the client chose, or one we generated.
        resource: String,
        /// Whether the client chose it (else it was generated).
        client_chosen: bool,
    },
    /// The stream is bound to this full JID; call [`ServerNegotiation::into_bound`].
    Bound(jid::FullJid),
    /// The stream ended; `Some` if it ended with a stream error (sent or received).
    Closed(Option<StreamError>),
}

/// The phase of the negotiation; each phase is a distinct type.
#[derive(Debug)]
enum Phase {
    AwaitHeader,
    Features(Features),
    AwaitTls,
    Sasl(SaslExchange),
    Bind(BindPhase),
    Bound,
    Closed,
}

/// A running SASL exchange and what it waits for.
#[derive(Debug)]
struct SaslExchange {
    mechanism: Mechanism,
    server: SaslServer,
    waiting_for_caller: bool,
}

/// Waiting for the client's bind request, or for the caller's decision on it.
#[derive(Debug, Default)]
struct BindPhase {
    pending: Option<(String, String)>,
}

/// Server-side negotiation of one c2s stream.
#[derive(Debug)]
pub struct ServerNegotiation {
    config: ServerConfig,
    reader: StreamReader,
    phase: Phase,
    out: Vec<u8>,
    events: VecDeque<ServerEvent>,
    tls: bool,
    channel_bindings: Vec<ChannelBinding>,
    domain: Option<jid::DomainPart>,
    username: Option<jid::NodePart>,
    header_sent: bool,
    bound: Option<jid::FullJid>,
    auth_failures: u8,
    stream_id: String,
}

impl ServerNegotiation {
    /// A negotiation for a new plain-TCP connection (STARTTLS per config).
    pub fn new(config: ServerConfig) -> ServerNegotiation {
        let reader = StreamReader::new(config.limits.clone());
        ServerNegotiation {
            config,
            reader,
            phase: Phase::AwaitHeader,
            out: Vec::new(),
            events: VecDeque::new(),
            tls: false,
            channel_bindings: Vec::new(),
            domain: None,
            username: None,
            header_sent: false,
            bound: None,
            auth_failures: 0,
            stream_id: String::new(),
        }
    }

    /// A negotiation for a XEP-0368 direct-TLS connection, whose handshake is already done.
    pub fn new_direct_tls(
        config: ServerConfig,
        channel_bindings: Vec<ChannelBinding>,
    ) -> ServerNegotiation {
        let mut n = ServerNegotiation::new(config);
        n.tls = true;
        n.channel_bindings = channel_bindings;
        n
    }

    /// Bytes to send to the client (drains the buffer).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The next event for the IO/server layer.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Whether the stream is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The served domain the client addressed in its stream header, once known.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_ref().map(|d| d.as_str())
    }

    /// Whether the stream is protected by TLS (STARTTLS done, or direct TLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Feeds bytes received from the client.
    pub fn feed(&mut self, data: &[u8]) {
        if matches!(self.phase, Phase::Closed | Phase::AwaitTls) {
            return;
        }
        self.reader.feed(data);
        while !matches!(self.phase, Phase::Closed | Phase::AwaitTls | Phase::Bound) {
            let Some(ev) = self.reader.next_event() else {
                break;
            };
            match ev {
                Ok(XmlEvent::StreamOpen(h)) => self.on_header(&h),
                Ok(XmlEvent::Stanza(el)) => self.on_element(el),
                Ok(XmlEvent::StreamClose) => self.close(None),
                Err(e) => self.fail(e),
            }
        }
    }

    /// The TLS handshake finished; `channel_bindings` are this connection's binding data.
    pub fn tls_established(&mut self, channel_bindings: Vec<ChannelBinding>) {
        if matches!(self.phase, Phase::AwaitTls) {
            self.tls = true;
            self.channel_bindings = channel_bindings;
            self.restart();
        }
    }

    /// Answers [`ServerEvent::NeedCredentials`]; `None` means the user is unknown.
    pub fn provide_credentials(&mut self, credentials: Option<ScramCredentials>) {
        let step = match &mut self.phase {
            Phase::Sasl(x) if x.waiting_for_caller => {
                x.waiting_for_caller = false;
                x.server.credentials(credentials)
            }
            _ => return,
        };
        self.on_sasl_step(step);
    }

    /// Answers [`ServerEvent::VerifyPlain`] with whether the password is right.
    pub fn plain_result(&mut self, ok: bool) {
        let step = match &mut self.phase {
            Phase::Sasl(x) if x.waiting_for_caller => {
                x.waiting_for_caller = false;
                x.server.plain_verified(ok)
            }
            _ => return,
        };
        self.on_sasl_step(step);
    }

    /// Fails a pending SASL exchange with a condition (e.g. `account-disabled`).
    pub fn reject_auth(&mut self, condition: SaslCondition) {
        if matches!(&self.phase, Phase::Sasl(x) if x.waiting_for_caller) {
            self.sasl_failure(condition);
        }
    }

    /// Answers [`ServerEvent::BindRequest`] with the final resource, or an error such as
    /// `conflict` (the client may then retry).
    pub fn complete_bind(&mut self, result: Result<String, StanzaErrorCondition>) {
        let Phase::Bind(b) = &mut self.phase else {
            return;
        };
        let Some((iq_id, _)) = b.pending.take() else {
            return;
        };
        let (Some(user), Some(domain)) = (self.username.clone(), self.domain.clone()) else {
            return self.fail(C::InternalServerError.into());
        };
        match result.and_then(|r| bind::full_jid(user, domain, &r)) {
            Ok(full) => {
                self.send(&bind::result(&iq_id, &full));
                self.phase = Phase::Bound;
                self.bound = Some(full.clone());
                self.events.push_back(ServerEvent::Bound(full));
            }
            Err(cond) => self.send(&bind::error(&iq_id, cond)),
        }
    }

    /// Hands the bound stream to the session layer; `Err(self)` if not bound yet.
    pub fn into_bound(mut self) -> Result<BoundStream, Box<ServerNegotiation>> {
        if !matches!(self.phase, Phase::Bound) {
            return Err(Box::new(self));
        }
        let Some(full) = self.bound.take() else {
            return Err(Box::new(self));
        };
        Ok(BoundStream::new(self.reader, self.out, full))
    }

    fn restart(&mut self) {
        self.reader.reset();
        self.header_sent = false;
        self.phase = Phase::AwaitHeader;
    }

    fn send(&mut self, el: &Element) {
        crate::xml::write_stream_child(el, &mut self.out);
    }

    fn send_header(&mut self, to: Option<&str>) {
        let mut raw = [0u8; 12];
        rand::fill(&mut raw);
        self.stream_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let domain = self.domain.as_ref().map(|d| d.as_str().to_owned());
        let header = stream_header(&StreamHeaderOut {
            from: domain.as_deref(),
            to,
            id: Some(&self.stream_id),
            lang: Some("en"),
            content_ns: ns::JABBER_CLIENT,
        });
        self.out.extend_from_slice(&header);
        self.header_sent = true;
    }

    fn fail(&mut self, e: StreamError) {
        if !self.header_sent {
            self.send_header(None);
        }
        self.out.extend_from_slice(&e.to_closing_bytes());
        self.phase = Phase::Closed;
        self.events.push_back(ServerEvent::Closed(Some(e)));
    }

    fn close(&mut self, received: Option<StreamError>) {
        self.out.extend_from_slice(crate::xml::STREAM_CLOSE);
        self.phase = Phase::Closed;
        self.events.push_back(ServerEvent::Closed(received));
    }

    fn on_header(&mut self, h: &StreamHeader) {
        if !matches!(self.phase, Phase::AwaitHeader) {
            return self.fail(C::BadFormat.into());
        }
        let domain =
            h.to.as_deref()
                .and_then(|to| to.parse::<jid::DomainPart>().ok());
        let served = domain
            .as_ref()
            .is_some_and(|d| (self.config.is_served)(d.as_str()));
        // After a restart the domain must not change (RFC 6120 §4.3.3).
        let same = match (&self.domain, &domain) {
            (Some(old), Some(new)) => old == new,
            _ => true,
        };
        if served && same {
            self.domain = domain;
        }
        self.send_header(h.from.as_deref());
        if !served || !same {
            return self.fail(C::HostUnknown.into());
        }
        if h.default_ns.as_deref() != Some(ns::JABBER_CLIENT) {
            return self.fail(C::InvalidNamespace.into());
        }
        let major = h.version.as_deref().and_then(|v| v.split('.').next());
        if major != Some("1") {
            return self.fail(C::UnsupportedVersion.into());
        }
        let features = self.features();
        self.send(&features.to_element());
        self.phase = if self.username.is_some() {
            Phase::Bind(BindPhase::default())
        } else {
            Phase::Features(features)
        };
    }

    fn features(&self) -> Features {
        if self.username.is_some() {
            return Features {
                bind: true,
                session: self.config.advertise_session.then_some(true),
                csi: self.config.advertise_csi,
                ..Features::default()
            };
        }
        let tls_required = self.config.tls == TlsPolicy::Required;
        let starttls =
            (!self.tls && self.config.tls != TlsPolicy::Disabled).then_some(tls_required);
        if !self.tls && tls_required {
            return Features {
                starttls,
                ..Features::default()
            };
        }
        let have_cb = !self.channel_bindings.is_empty();
        let mechanisms = self
            .config
            .mechanisms
            .iter()
            .copied()
            .filter(|m| (*m != Mechanism::Plain || self.tls) && (!m.is_plus() || have_cb))
            .collect::<Vec<_>>();
        let channel_bindings = if mechanisms.iter().any(|m| m.is_plus()) {
            self.channel_bindings.iter().map(|c| c.kind).collect()
        } else {
            Vec::new()
        };
        Features {
            starttls,
            mechanisms,
            channel_bindings,
            ..Features::default()
        }
    }

    fn on_element(&mut self, el: Element) {
        let el_ns = el.ns();
        if el.is("error", ns::STREAM) {
            let e = StreamError::from_element(&el);
            return self.close(e);
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
        match (phase, el_ns.as_str(), el.name()) {
            (Phase::Features(f), ns::TLS, "starttls") if f.starttls.is_some() => {
                self.send(&Element::bare("proceed", ns::TLS));
                self.phase = Phase::AwaitTls;
                self.events.push_back(ServerEvent::NeedTls);
            }
            (Phase::Features(_), ns::TLS, "starttls") => {
                self.send(&Element::bare("failure", ns::TLS));
                self.close(None);
            }
            (Phase::Features(f), ns::SASL, "auth") => {
                self.phase = Phase::Features(f.clone());
                self.on_auth(&f, &el);
            }
            (Phase::Sasl(x), ns::SASL, "response") if !x.waiting_for_caller => {
                self.phase = Phase::Sasl(x);
                self.on_response(&el);
            }
            (Phase::Sasl(_), ns::SASL, "abort") => {
                self.phase = Phase::Features(self.features());
                self.sasl_failure(SaslCondition::Aborted);
            }
            (Phase::Bind(b), ns::JABBER_CLIENT, "iq") if b.pending.is_none() => {
                self.phase = Phase::Bind(b);
                self.on_bind_iq(&el);
            }
            (_, ns::JABBER_CLIENT, _) => self.fail(C::NotAuthorized.into()),
            _ => self.fail(C::UnsupportedStanzaType.into()),
        }
    }

    fn on_auth(&mut self, features: &Features, el: &Element) {
        let mechanism = el.attr("mechanism").and_then(Mechanism::from_name);
        let mechanism = match mechanism {
            Some(Mechanism::Plain) if !self.tls => {
                return self.sasl_failure(SaslCondition::EncryptionRequired);
            }
            Some(m) if features.mechanisms.contains(&m) => m,
            _ if features.starttls == Some(true) => {
                return self.sasl_failure(SaslCondition::EncryptionRequired);
            }
            _ => return self.sasl_failure(SaslCondition::InvalidMechanism),
        };
        let data = match decode_payload(el) {
            Ok(d) => d,
            Err(c) => return self.sasl_failure(c),
        };
        let plus_advertised = features.mechanisms.iter().any(|m| m.is_plus());
        let server = match SaslServer::start(
            &self.config.sasl,
            mechanism,
            &self.channel_bindings,
            plus_advertised,
        ) {
            Ok(s) => s,
            Err(c) => return self.sasl_failure(c),
        };
        self.phase = Phase::Sasl(SaslExchange {
            mechanism,
            server,
            waiting_for_caller: false,
        });
        let step = match &mut self.phase {
            Phase::Sasl(x) => x.server.step(&data),
            _ => return,
        };
        self.on_sasl_step(step);
    }

    fn on_response(&mut self, el: &Element) {
        let data = match decode_payload(el) {
            Ok(d) => d,
            Err(c) => return self.sasl_failure(c),
        };
        let step = match &mut self.phase {
            Phase::Sasl(x) => x.server.step(&data),
            _ => return,
        };
        self.on_sasl_step(step);
    }

    fn on_sasl_step(&mut self, step: Result<ServerStep, SaslCondition>) {
        let Phase::Sasl(x) = &mut self.phase else {
            return;
        };
        match step {
            Ok(ServerStep::NeedCredentials { username, authzid }) => {
                x.waiting_for_caller = true;
                let mechanism = x.mechanism;
                if let Err(c) = self.accept_identity(&username, authzid.as_deref()) {
                    return self.sasl_failure(c);
                }
                self.events.push_back(ServerEvent::NeedCredentials {
                    username,
                    mechanism,
                });
            }
            Ok(ServerStep::VerifyPlain(auth)) => {
                x.waiting_for_caller = true;
                if let Err(c) = self.accept_identity(&auth.authcid, auth.authzid.as_deref()) {
                    return self.sasl_failure(c);
                }
                self.events.push_back(ServerEvent::VerifyPlain(auth));
            }
            Ok(ServerStep::Challenge(data)) => {
                let c = crate::xml::text_el("challenge", ns::SASL, B64.encode(data));
                self.send(&c);
            }
            Ok(ServerStep::Success {
                username,
                additional_data,
                ..
            }) => {
                let text = additional_data.map(|d| B64.encode(d)).unwrap_or_default();
                self.send(&crate::xml::text_el("success", ns::SASL, text));
                self.events
                    .push_back(ServerEvent::Authenticated { username });
                self.restart();
            }
            Err(c) => self.sasl_failure(c),
        }
    }

    /// Checks that the username is a valid localpart and the authzid, if any, is that account.
    fn accept_identity(
        &mut self,
        username: &str,
        authzid: Option<&str>,
    ) -> Result<(), SaslCondition> {
        let node = username
            .parse::<jid::NodePart>()
            .map_err(|_| SaslCondition::NotAuthorized)?;
        if let Some(authzid) = authzid {
            let bare = jid::BareJid::new(authzid).map_err(|_| SaslCondition::InvalidAuthzid)?;
            let own = self.domain.as_ref().map(|d| d.as_str());
            if bare.node().map(|n| n.as_str()) != Some(node.as_str())
                || Some(bare.domain().as_str()) != own
            {
                return Err(SaslCondition::InvalidAuthzid);
            }
        }
        self.username = Some(node);
        Ok(())
    }

    fn sasl_failure(&mut self, condition: SaslCondition) {
        let username = self.username.take().map(|n| n.as_str().to_owned());
        self.events.push_back(ServerEvent::AuthFailed {
            username,
            condition,
        });
        let mut f = Element::bare("failure", ns::SASL);
        f.append_child(Element::bare(condition.as_str(), ns::SASL));
        self.send(&f);
        if !matches!(self.phase, Phase::Features(_)) {
            self.phase = Phase::Features(self.features());
        }
        if condition != SaslCondition::Aborted {
            self.auth_failures = self.auth_failures.saturating_add(1);
        }
        if self.auth_failures >= self.config.max_auth_attempts {
            self.fail(StreamError::with_text(
                C::PolicyViolation,
                "too many failed authentications",
            ));
        }
    }

    fn on_bind_iq(&mut self, el: &Element) {
        match bind::parse_request(el) {
            Ok((id, requested)) => {
                let client_chosen = requested.is_some();
                let resource = requested.unwrap_or_else(bind::generate_resource);
                if let Phase::Bind(b) = &mut self.phase {
                    b.pending = Some((id, resource.clone()));
                }
                self.events.push_back(ServerEvent::BindRequest {
                    resource,
                    client_chosen,
                });
            }
            Err(Some((id, cond))) => self.send(&bind::error(&id, cond)),
            Err(None) => self.fail(C::NotAuthorized.into()),
        }
    }
}

/// Decodes the base64 text of `<auth/>` or `<response/>` (`=` is an empty response).
fn decode_payload(el: &Element) -> Result<Vec<u8>, SaslCondition> {
    let text = el.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    B64.decode(text)
        .map_err(|_| SaslCondition::IncorrectEncoding)
}
