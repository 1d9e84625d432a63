//! RFC 7081 §2–§3 and §7: the dual-stack client — one SIP user agent for calls and one XMPP
//! client for everything else, run side by side and tied together: calls to contacts go to the
//! SIP address in their vCard (§3.3), incoming callers are matched to contacts through
//! Call-Info and vCards (§3.5), presence says "on the phone" during calls (CL-32), XMPP presence
//! can wait for SIP registration (CL-10), and unequal protection of the two sides is reported
//! (§7, CL-29).

pub mod identity;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;

pub use identity::{Attribution, Identity, Method, attribute, callable_tel, dial_uri};

use crate::event::{CallState, Event};
use crate::media::MediaConfig;
use crate::sip::{TransportKind, UaConfig, UaError, UserAgent};
use crate::xmpp::{OwnPresence, Show, VCard, XmppClient, XmppConfig, XmppError, XmppEvent};

/// Both accounts and the CUSAX behaviour.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The SIP side.
    pub sip: UaConfig,
    /// The XMPP side.
    pub xmpp: XmppConfig,
    /// The domain numbers are dialled in (`sip:NUMBER@domain;user=phone`, CL-31).
    pub service_domain: String,
    /// Publish "on the phone" while a call is up (CL-32; off by default, SEC-10).
    pub on_the_phone: bool,
    /// Send the first XMPP presence only once SIP is registered (CL-10).
    pub presence_after_sip: bool,
}

/// Something the CUSAX layer concluded; one flat JSON object each when serialised.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CusaxEvent {
    /// Who an incoming call is from, as far as the roster and vCards confirm (CL-19/21).
    Caller {
        /// The Call-ID.
        call_id: String,
        /// The caller's SIP identity.
        from: String,
        /// The matching.
        #[serde(flatten)]
        attribution: Attribution,
        /// The contact's name (roster name or vCard FN), when attributed.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Our presence now says we are on the phone, or no longer (CL-32).
    OnThePhone {
        /// Whether a call is up.
        active: bool,
    },
    /// The two sides are not protected alike (RFC 7081 §7, CL-29).
    SecurityMismatch {
        /// How SIP is carried.
        sip: String,
        /// How XMPP is carried.
        xmpp: String,
        /// What to change.
        advice: String,
    },
}

/// An event of either side or of the CUSAX layer (serialised flat, as each one is).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ClientEvent {
    /// From the SIP user agent.
    Sip(Event),
    /// From the XMPP client.
    Xmpp(XmppEvent),
    /// From the CUSAX layer.
    Cusax(CusaxEvent),
}

/// Why a dual-stack operation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CusaxError {
    /// The SIP side failed.
    #[error("SIP: {0}")]
    Sip(#[from] UaError),
    /// The XMPP side failed.
    #[error("XMPP: {0}")]
    Xmpp(#[from] XmppError),
    /// The contact's vCard has no number or SIP address to call.
    #[error("{0} has no SIP address or number in their vCard")]
    NoTel(String),
}

/// What the roster and vCards say, shared with the event task.
#[derive(Debug, Default)]
struct Book {
    /// Roster entries: bare JID → name.
    roster: HashMap<String, Option<String>>,
    /// vCards fetched so far.
    vcards: HashMap<String, VCard>,
}

/// A running dual-stack client.
#[derive(Debug, Clone)]
pub struct Cusax {
    ua: UserAgent,
    xmpp: XmppClient,
    domain: String,
    book: Arc<Mutex<Book>>,
    presence: Arc<Mutex<PresenceState>>,
}

#[derive(Debug, Default)]
struct PresenceState {
    /// What the user set.
    chosen: OwnPresence,
    /// Calls up now.
    calls: usize,
    /// Whether presence may be sent yet (CL-10).
    released: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Cusax {
    /// Starts both sides; events of both and of the CUSAX layer arrive on the receiver.
    pub async fn start(
        mut cfg: ServiceConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<ClientEvent>), CusaxError> {
        let chosen = cfg.xmpp.initial_presence.clone().unwrap_or_default();
        let released = !(cfg.presence_after_sip && cfg.sip.register);
        if !released {
            cfg.xmpp.initial_presence = None;
        }
        let sip_transport = cfg.sip.account.transport;
        let (xmpp, xmpp_events) = XmppClient::start(cfg.xmpp.clone())?;
        let (ua, sip_events) = match UserAgent::start(cfg.sip.clone()).await {
            Ok(x) => x,
            Err(e) => {
                xmpp.shutdown().await;
                return Err(e.into());
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let me = Self {
            ua,
            xmpp,
            domain: cfg.service_domain.clone(),
            book: Arc::default(),
            presence: Arc::new(Mutex::new(PresenceState {
                chosen,
                calls: 0,
                released,
            })),
        };
        tokio::spawn(
            me.clone()
                .pump(sip_events, xmpp_events, tx, cfg.on_the_phone, sip_transport),
        );
        Ok((me, rx))
    }

    /// The SIP user agent.
    pub fn ua(&self) -> &UserAgent {
        &self.ua
    }

    /// The XMPP client.
    pub fn xmpp(&self) -> &XmppClient {
        &self.xmpp
    }

    /// Sets our presence; while a call is up and "on the phone" is on, it takes effect after
    /// the call.
    pub async fn set_presence(&self, p: OwnPresence) -> Result<(), CusaxError> {
        let send = {
            let mut s = lock(&self.presence);
            s.chosen = p.clone();
            s.released && s.calls == 0
        };
        if send {
            self.xmpp.set_presence(p).await?;
        }
        Ok(())
    }

    /// The SIP URI to call for `target`: a `sip:`/`sips:`/`tel:` URI or number as given
    /// (CL-13/31), or a JID whose vCard carries a SIP address or number (RFC 7081 §3.3, CL-12).
    pub async fn resolve(&self, target: &str) -> Result<String, CusaxError> {
        let t = target.trim();
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") || lower.starts_with("tel:") {
            return dial_uri(t, &self.domain).ok_or_else(|| CusaxError::NoTel(t.to_owned()));
        }
        if !t.contains('@')
            && let Some(u) = dial_uri(t, &self.domain)
        {
            return Ok(u);
        }
        let jid = crate::xmpp::stanzas::bare(t).to_ascii_lowercase();
        let card = self.xmpp.vcard(Some(&jid)).await?;
        let uri =
            callable_tel(&card, &self.domain).ok_or_else(|| CusaxError::NoTel(jid.clone()))?;
        lock(&self.book).vcards.insert(jid, card);
        Ok(uri)
    }

    /// Calls a contact (by JID, through their vCard) or a SIP URI/number, through the linked
    /// SIP account (CL-16/17); returns the Call-ID.
    pub async fn call(&self, target: &str, media: MediaConfig) -> Result<String, CusaxError> {
        self.call_with(target, media, None).await
    }

    /// As [`Cusax::call`], with per-call options (anonymous calls carry no `Call-Info`, CL-23).
    pub async fn call_with(
        &self,
        target: &str,
        media: MediaConfig,
        options: Option<crate::sip::CallOptions>,
    ) -> Result<String, CusaxError> {
        let uri = self.resolve(target).await?;
        Ok(self.ua.call_with(&uri, media, options).await?)
    }

    /// Which roster contact a SIP identity belongs to (vCard TELs, exact match; CL-19/30).
    pub async fn whois(&self, uri: &str) -> Result<Attribution, CusaxError> {
        self.load_book().await?;
        let contacts = self.contacts();
        Ok(attribute(uri, &[], &contacts, &self.domain))
    }

    /// Fetches the roster and every contact's vCard into the book.
    pub async fn load_book(&self) -> Result<(), CusaxError> {
        let roster = self.xmpp.roster().await?;
        let missing: Vec<String> = {
            let mut b = lock(&self.book);
            for item in &roster {
                b.roster
                    .insert(item.jid.to_ascii_lowercase(), item.name.clone());
            }
            roster
                .iter()
                .map(|i| i.jid.to_ascii_lowercase())
                .filter(|j| !b.vcards.contains_key(j))
                .collect()
        };
        for jid in missing {
            self.refresh_vcard(&jid).await;
        }
        Ok(())
    }

    async fn refresh_vcard(&self, jid: &str) {
        match self.xmpp.vcard(Some(jid)).await {
            Ok(card) => {
                lock(&self.book).vcards.insert(jid.to_owned(), card);
            }
            Err(e) => tracing::debug!(%jid, error = %e, "vCard not fetched"),
        }
    }

    /// Roster contacts with their vCards.
    fn contacts(&self) -> Vec<(String, VCard)> {
        let b = lock(&self.book);
        b.roster
            .keys()
            .filter_map(|j| b.vcards.get(j).map(|c| (j.clone(), c.clone())))
            .collect()
    }

    /// Hangs up, unregisters, goes offline and stops both sides.
    pub async fn shutdown(&self) {
        self.ua.shutdown().await;
        self.xmpp.shutdown().await;
    }

    /// Identifies an incoming caller: the hinted contacts' vCards are fetched afresh first.
    async fn identify(
        self,
        call_id: String,
        from: String,
        call_info: Vec<String>,
        tx: mpsc::UnboundedSender<ClientEvent>,
    ) {
        let known: Vec<String> = {
            let b = lock(&self.book);
            identity::impp_hints(&call_info)
                .into_iter()
                .filter(|h| b.roster.contains_key(h))
                .collect()
        };
        for h in known {
            self.refresh_vcard(&h).await;
        }
        let attribution = attribute(&from, &call_info, &self.contacts(), &self.domain);
        let name = attribution.contact.as_ref().and_then(|j| {
            let b = lock(&self.book);
            b.roster
                .get(j)
                .cloned()
                .flatten()
                .or_else(|| b.vcards.get(j).and_then(|c| c.full_name.clone()))
        });
        let _ = tx.send(ClientEvent::Cusax(CusaxEvent::Caller {
            call_id,
            from,
            attribution,
            name,
        }));
    }

    /// Forwards both sides' events and acts on them.
    async fn pump(
        self,
        mut sip: mpsc::UnboundedReceiver<Event>,
        mut xmpp: mpsc::UnboundedReceiver<XmppEvent>,
        tx: mpsc::UnboundedSender<ClientEvent>,
        on_the_phone: bool,
        sip_transport: TransportKind,
    ) {
        let mut up: std::collections::HashSet<String> = Default::default();
        let mut warned = false;
        let (mut sip_open, mut xmpp_open) = (true, true);
        while sip_open || xmpp_open {
            tokio::select! {
                e = sip.recv(), if sip_open => {
                    let Some(e) = e else { sip_open = false; continue };
                    // The event first, then what the CUSAX layer makes of it — except the end
                    // of a call, reported once the presence is restored, so that whoever stops
                    // the client on that event does not cut the restoration off.
                    let ends_call = matches!(
                        &e,
                        Event::CallState { state: CallState::Ended | CallState::Failed, .. }
                    );
                    if !ends_call {
                        let _ = tx.send(ClientEvent::Sip(e.clone()));
                    }
                    match &e {
                        Event::Registered { .. } => self.release_presence().await,
                        Event::IncomingCall { call_id, from, call_info, .. } => {
                            tokio::spawn(self.clone().identify(
                                call_id.clone(), from.clone(), call_info.clone(), tx.clone()));
                        }
                        Event::CallState { call_id, state, .. } => {
                            let changed = match state {
                                CallState::Established => up.insert(call_id.clone()),
                                CallState::Ended | CallState::Failed => up.remove(call_id),
                                _ => false,
                            };
                            if changed && on_the_phone {
                                self.on_the_phone(up.len(), &tx).await;
                            }
                        }
                        _ => {}
                    }
                    if ends_call {
                        let _ = tx.send(ClientEvent::Sip(e));
                    }
                }
                e = xmpp.recv(), if xmpp_open => {
                    let Some(e) = e else { xmpp_open = false; continue };
                    let _ = tx.send(ClientEvent::Xmpp(e.clone()));
                    match &e {
                        XmppEvent::Connected { tls, .. } if !warned => {
                            warned = true;
                            if let Some(m) = security_mismatch(sip_transport, tls) {
                                let _ = tx.send(ClientEvent::Cusax(m));
                            }
                        }
                        XmppEvent::Roster { .. } => {
                            let me = self.clone();
                            tokio::spawn(async move {
                                if let Err(e) = me.load_book().await {
                                    tracing::debug!(error = %e, "contacts not loaded");
                                }
                            });
                        }
                        XmppEvent::RosterPush { item } => {
                            let jid = item.jid.to_ascii_lowercase();
                            let mut b = lock(&self.book);
                            if item.subscription == "remove" {
                                b.roster.remove(&jid);
                                b.vcards.remove(&jid);
                            } else {
                                b.roster.insert(jid, item.name.clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// CL-10: the first registration lets presence out.
    async fn release_presence(&self) {
        let send = {
            let mut s = lock(&self.presence);
            let first = !s.released;
            s.released = true;
            first.then(|| s.chosen.clone())
        };
        if let Some(p) = send {
            let _ = self.xmpp.set_presence(p).await;
        }
    }

    /// CL-32: "on the phone" while calls are up, the chosen presence after.
    async fn on_the_phone(&self, calls: usize, tx: &mpsc::UnboundedSender<ClientEvent>) {
        let (p, active) = {
            let mut s = lock(&self.presence);
            let was = s.calls > 0;
            s.calls = calls;
            if was == (calls > 0) || !s.released {
                return;
            }
            if calls > 0 {
                (on_the_phone_presence(&s.chosen), true)
            } else {
                (s.chosen.clone(), false)
            }
        };
        if self.xmpp.set_presence(p).await.is_ok() {
            let _ = tx.send(ClientEvent::Cusax(CusaxEvent::OnThePhone { active }));
        }
    }
}

/// The presence shown during a call: busy, with the user's own status kept after a note.
pub fn on_the_phone_presence(chosen: &OwnPresence) -> OwnPresence {
    if chosen.show == Show::Offline {
        return chosen.clone();
    }
    OwnPresence {
        show: Show::Dnd,
        status: Some(match &chosen.status {
            Some(s) if !s.is_empty() => format!("On the phone ({s})"),
            _ => "On the phone".to_owned(),
        }),
    }
}

/// RFC 7081 §7 (CL-29): chat over TLS but calls in the clear (or the reverse) is a mismatch.
pub fn security_mismatch(sip: TransportKind, xmpp_tls: &str) -> Option<CusaxEvent> {
    let sip_tls = sip.via_token() == "TLS";
    let xmpp_secure = !xmpp_tls.is_empty();
    if sip_tls == xmpp_secure {
        return None;
    }
    let describe_sip = format!("SIP over {}", sip.via_token());
    let describe_xmpp = if xmpp_secure {
        format!("XMPP over {xmpp_tls}")
    } else {
        "XMPP without TLS".to_owned()
    };
    Some(CusaxEvent::SecurityMismatch {
        advice: if sip_tls {
            "XMPP is less protected than calls: use an XMPP server with TLS".into()
        } else {
            "calls are less protected than chat: switch SIP to TLS (transport = \"tls\")".into()
        },
        sip: describe_sip,
        xmpp: describe_xmpp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_phone_is_busy_and_keeps_the_status() {
        let p = on_the_phone_presence(&OwnPresence {
            show: Show::Away,
            status: Some("lunch".into()),
        });
        assert_eq!(p.show, Show::Dnd);
        assert_eq!(p.status.as_deref(), Some("On the phone (lunch)"));
        let off = OwnPresence {
            show: Show::Offline,
            status: None,
        };
        assert_eq!(on_the_phone_presence(&off), off);
    }

    #[test]
    fn plain_sip_beside_tls_xmpp_is_reported() {
        let m = security_mismatch(TransportKind::Udp, "TLSv1_3").expect("mismatch");
        let j = serde_json::to_string(&ClientEvent::Cusax(m)).expect("json");
        assert!(
            j.starts_with(r#"{"event":"security_mismatch","sip":"SIP over UDP""#),
            "{j}"
        );
        assert!(security_mismatch(TransportKind::Udp, "").is_none());
    }

    #[test]
    fn caller_events_are_flat_json() {
        let e = ClientEvent::Cusax(CusaxEvent::Caller {
            call_id: "c".into(),
            from: "sip:bob@x".into(),
            attribution: Attribution {
                contact: Some("bob@x".into()),
                method: Some(Method::CallInfoConfirmed),
                unconfirmed_claim: None,
            },
            name: None,
        });
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"event":"caller","call_id":"c","from":"sip:bob@x","contact":"bob@x","method":"call_info_confirmed"}"#
        );
    }
}
