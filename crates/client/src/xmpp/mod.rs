//! RFC 6120 §4–§7 and RFC 6121 (client side): the XMPP half of the cusax client — one
//! STARTTLS + SCRAM c2s connection kept alive and reconnected (RFC 7081 §2, CL-07), with
//! roster, presence, chat and vCard lookups, and no Jingle RTP (calls go over SIP, CL-03/04).
//!
//! The stream negotiation and stanza framing are the sans-IO machines of `cusax-xmpp-proto`;
//! [`session`] drives them with tokio, and [`XmppClient`] is the handle applications use.

mod conn;
mod session;
pub mod stanzas;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use stanzas::{OwnPresence, RosterItem, Show, Tel, VCard};

use crate::tls::TrustConfig;

/// How the XMPP side connects.
#[derive(Debug, Clone)]
pub struct XmppConfig {
    /// The account's bare JID, `user@domain`.
    pub jid: String,
    /// The password (SCRAM; PLAIN only over TLS when the server offers nothing else).
    pub password: String,
    /// The server to connect to; `None` means the JID's domain on port 5222.
    pub server: Option<SocketAddr>,
    /// The name the server certificate must carry; `None` means the JID's domain.
    pub tls_name: Option<String>,
    /// Which certificates are trusted.
    pub trust: TrustConfig,
    /// The resource to ask for; `None` lets the server choose.
    pub resource: Option<String>,
    /// The presence sent once connected; `None` sends none until
    /// [`XmppClient::set_presence`] is called (RFC 7081 §2, CL-10: wait for SIP first).
    pub initial_presence: Option<OwnPresence>,
    /// Idle time after which the server is pinged (XEP-0199); a ping unanswered by the next
    /// interval marks the connection dead.
    pub keepalive: Duration,
    /// Reconnect after the connection is lost (CL-07); off for one-shot commands.
    pub reconnect: bool,
    /// How long a request (IQ) waits for its answer.
    pub request_timeout: Duration,
}

impl XmppConfig {
    /// Defaults: server from the JID, available presence at once, 60 s keep-alive, reconnect.
    pub fn new(jid: &str, password: &str) -> Self {
        Self {
            jid: jid.to_owned(),
            password: password.to_owned(),
            server: None,
            tls_name: None,
            trust: TrustConfig::default(),
            resource: None,
            initial_presence: Some(OwnPresence::default()),
            keepalive: Duration::from_secs(60),
            reconnect: true,
            request_timeout: Duration::from_secs(20),
        }
    }

    /// The JID's localpart and domain.
    pub fn parts(&self) -> Result<(&str, &str), XmppError> {
        stanzas::bare(&self.jid)
            .split_once('@')
            .filter(|(u, d)| !u.is_empty() && !d.is_empty())
            .ok_or_else(|| XmppError::Config(format!("{:?} is not a JID user@domain", self.jid)))
    }
}

/// Something that happened on the XMPP side; one flat JSON object each when serialised.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum XmppEvent {
    /// Logged in and bound.
    Connected {
        /// Our full JID.
        jid: String,
        /// The TLS version in use.
        tls: String,
        /// The SASL mechanism used.
        mechanism: String,
    },
    /// The connection is gone; `retry_in` says when the next attempt is made.
    Disconnected {
        /// Why.
        reason: String,
        /// Seconds until the next attempt, if one is made.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_in: Option<f64>,
    },
    /// The login was refused (bad password, locked account): no retry.
    LoginFailed {
        /// The server's reason.
        reason: String,
    },
    /// The roster as fetched after login (RFC 6121 §2.2).
    Roster {
        /// Every entry.
        items: Vec<RosterItem>,
    },
    /// The server changed one roster entry (RFC 6121 §2.1.6).
    RosterPush {
        /// The entry (subscription `remove` when deleted).
        item: RosterItem,
    },
    /// A contact's presence (RFC 6121 §4).
    Presence {
        /// The sender's full JID.
        from: String,
        /// Whether the resource is available.
        available: bool,
        /// `show` (`away`, `dnd`, …), if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        show: Option<String>,
        /// Status text, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<String>,
    },
    /// Subscription traffic: `subscribe` (a request to approve), `subscribed`, `unsubscribe`,
    /// `unsubscribed` (RFC 6121 §3).
    Subscription {
        /// The contact's bare JID.
        from: String,
        /// The presence type.
        kind: String,
    },
    /// A message with a body (RFC 6121 §5).
    Message {
        /// The sender's full JID.
        from: String,
        /// `chat`, `normal`, `groupchat` or `headline`.
        kind: String,
        /// The text.
        body: String,
        /// Whether it was stored while we were offline (XEP-0203 delay).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        delayed: bool,
    },
    /// A message we sent bounced (RFC 6120 §8.3).
    MessageError {
        /// The address that failed.
        from: String,
        /// The error condition.
        condition: String,
    },
}

/// Why an XMPP operation failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XmppError {
    /// The configuration cannot work.
    #[error("configuration: {0}")]
    Config(String),
    /// The TCP connection could not be made.
    #[error("connect to {0}")]
    Connect(String),
    /// TLS failed (certificate not trusted, handshake failed).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server refused our credentials.
    #[error("login refused: {0}")]
    Auth(String),
    /// The stream failed.
    #[error("stream: {0}")]
    Stream(String),
    /// Not connected at the moment.
    #[error("not connected to the XMPP server")]
    NotConnected,
    /// The request got no answer in time.
    #[error("no answer from the XMPP server in time")]
    Timeout,
    /// The request was answered with an error.
    #[error("{0}")]
    Stanza(String),
    /// The client task has stopped.
    #[error("the XMPP client has stopped")]
    Stopped,
}

#[derive(Debug)]
pub(crate) enum Command {
    /// A stanza to send as is.
    Send(minidom::Element),
    /// An IQ whose answer is awaited (`id` already set).
    Iq(
        minidom::Element,
        oneshot::Sender<Result<minidom::Element, XmppError>>,
    ),
    /// Our presence from now on (re-sent after reconnects).
    Presence(OwnPresence),
    /// Close the stream and stop.
    Shutdown(oneshot::Sender<()>),
}

/// A handle on a running XMPP client; cheap to clone.
#[derive(Debug, Clone)]
pub struct XmppClient {
    commands: mpsc::Sender<Command>,
    online: tokio::sync::watch::Receiver<bool>,
    timeout: Duration,
    bare: String,
}

/// A fresh stanza id (random, so ids never repeat across reconnects).
pub(crate) fn new_id() -> String {
    crate::sip::token(8)
}

impl XmppClient {
    /// Starts the client task: it connects, logs in and keeps the connection up.
    /// Events arrive on the returned receiver until the task ends.
    pub fn start(cfg: XmppConfig) -> Result<(Self, mpsc::UnboundedReceiver<XmppEvent>), XmppError> {
        cfg.parts()?;
        let tls = cfg
            .trust
            .client_config()
            .map_err(|e| XmppError::Tls(e.to_string()))?;
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (online_tx, online) = tokio::sync::watch::channel(false);
        let handle = Self {
            commands: cmd_tx,
            online,
            timeout: cfg.request_timeout,
            bare: stanzas::bare(&cfg.jid).to_owned(),
        };
        tokio::spawn(session::run(cfg, tls, online_tx, cmd_rx, ev_tx));
        Ok((handle, ev_rx))
    }

    /// Waits (at most `timeout`) until a stream is bound; `false` if it was not in time or
    /// the client stopped.
    pub async fn connected(&self, timeout: Duration) -> bool {
        let mut rx = self.online.clone();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|up| *up)).await,
            Ok(Ok(_))
        )
    }

    /// Our bare JID.
    pub fn jid(&self) -> &str {
        &self.bare
    }

    async fn command(&self, c: Command) -> Result<(), XmppError> {
        self.commands.send(c).await.map_err(|_| XmppError::Stopped)
    }

    /// Sends an IQ (its `id` is set here) and waits for the result element.
    pub async fn request(&self, mut iq: minidom::Element) -> Result<minidom::Element, XmppError> {
        let id = new_id();
        cusax_xmpp_proto::xml::set_attr(&mut iq, "id", id);
        let (tx, rx) = oneshot::channel();
        self.command(Command::Iq(iq, tx)).await?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(XmppError::NotConnected),
            Err(_) => Err(XmppError::Timeout),
        }
    }

    /// Sends a chat message; returns its id.
    pub async fn send_message(&self, to: &str, body: &str) -> Result<String, XmppError> {
        let id = new_id();
        self.command(Command::Send(stanzas::chat(to, &id, body)))
            .await?;
        Ok(id)
    }

    /// Sets our presence (and keeps it across reconnects).
    pub async fn set_presence(&self, p: OwnPresence) -> Result<(), XmppError> {
        self.command(Command::Presence(p)).await
    }

    /// Fetches the roster.
    pub async fn roster(&self) -> Result<Vec<RosterItem>, XmppError> {
        let r = self.request(stanzas::roster_get("")).await?;
        Ok(r.get_child("query", stanzas::ROSTER)
            .map(stanzas::roster_items)
            .unwrap_or_default())
    }

    /// Adds a contact to the roster and asks for their presence (RFC 6121 §2.1.5, §3.1.1).
    pub async fn add_contact(&self, jid: &str, name: Option<&str>) -> Result<(), XmppError> {
        self.request(stanzas::roster_set("", jid, name)).await?;
        self.command(Command::Send(stanzas::subscription(jid, "subscribe")))
            .await
    }

    /// Approves a contact's subscription request (RFC 6121 §3.1.4).
    pub async fn approve(&self, jid: &str) -> Result<(), XmppError> {
        self.command(Command::Send(stanzas::subscription(jid, "subscribed")))
            .await
    }

    /// Fetches a vCard (XEP-0054); `None` for our own.
    pub async fn vcard(&self, jid: Option<&str>) -> Result<VCard, XmppError> {
        let to = jid.map(stanzas::bare);
        let r = self.request(stanzas::vcard_get("", to)).await?;
        Ok(r.get_child("vCard", stanzas::VCARD)
            .map(stanzas::parse_vcard)
            .unwrap_or_default())
    }

    /// Publishes our vCard (XEP-0054 §3.3).
    pub async fn set_vcard(&self, card: &VCard) -> Result<(), XmppError> {
        self.request(stanzas::vcard_set("", card)).await.map(|_| ())
    }

    /// Says goodbye (unavailable presence, stream close) and stops the task.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.command(Command::Shutdown(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}
