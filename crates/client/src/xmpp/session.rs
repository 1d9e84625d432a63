//! RFC 6120 §4.6 and RFC 6121 §2–§5 (client side): the XMPP task — one bound stream at a
//! time, answering the server's requests, reporting stanzas as events, keeping the link alive
//! (XEP-0199) and reconnecting with bounded backoff after it is lost (RFC 7081 §2, CL-07).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cusax_xmpp_proto::ns;
use cusax_xmpp_proto::stanza::{StanzaError, StanzaErrorCondition};
use cusax_xmpp_proto::stream::{BoundEvent, BoundStream};
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::conn::{self, Io};
use super::stanzas::{self, OwnPresence};
use super::{Command, XmppConfig, XmppError, XmppEvent};

/// First and largest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

type Pending = HashMap<String, oneshot::Sender<Result<Element, XmppError>>>;

/// What ended a session.
enum End {
    /// Shutdown was asked for.
    Shutdown(Option<oneshot::Sender<()>>),
    /// The connection was lost.
    Lost(String),
}

struct Task {
    cfg: XmppConfig,
    /// Whether a stream is bound (read by [`super::XmppClient::connected`]).
    online: tokio::sync::watch::Sender<bool>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<XmppEvent>,
    presence: Option<OwnPresence>,
}

/// The delay before attempt `n` (1-based): doubling from 1 s to 60 s, with ±20 % jitter.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_MIN
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(6))
        .min(BACKOFF_MAX);
    let jitter = 0.8 + 0.4 * rand::random::<f64>();
    base.mul_f64(jitter)
}

pub(crate) async fn run(
    cfg: XmppConfig,
    tls: Arc<rustls::ClientConfig>,
    online: tokio::sync::watch::Sender<bool>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<XmppEvent>,
) {
    let mut t = Task {
        online,
        presence: cfg.initial_presence.clone(),
        cfg,
        commands,
        events,
    };
    let mut attempt = 0u32;
    loop {
        // One connection attempt runs to its end: commands meanwhile are answered without
        // disturbing it (requests fail at once, presence is remembered, shutdown stops).
        let cfg = t.cfg.clone();
        let connect = conn::connect(&cfg, &tls);
        tokio::pin!(connect);
        let result = loop {
            tokio::select! {
                r = &mut connect => break r,
                c = t.commands.recv() => if let Some(reply) = t.offline_command(c) {
                    if let Some(r) = reply {
                        let _ = r.send(());
                    }
                    return;
                },
            }
        };
        let reason = match result {
            Ok(c) => {
                attempt = 0;
                t.online.send_replace(true);
                let _ = t.events.send(XmppEvent::Connected {
                    jid: c.stream.jid().to_string(),
                    tls: c.tls.clone(),
                    mechanism: c.mechanism.clone(),
                });
                let end = t.session(c.io, c.stream).await;
                t.online.send_replace(false);
                match end {
                    End::Shutdown(reply) => {
                        if let Some(r) = reply {
                            let _ = r.send(());
                        }
                        return;
                    }
                    End::Lost(why) => why,
                }
            }
            Err(XmppError::Auth(why)) => {
                let _ = t.events.send(XmppEvent::LoginFailed { reason: why });
                return;
            }
            Err(e) => e.to_string(),
        };
        attempt += 1;
        let wait = backoff(attempt);
        let _ = t.events.send(XmppEvent::Disconnected {
            reason,
            retry_in: t.cfg.reconnect.then_some(wait.as_secs_f64()),
        });
        if !t.cfg.reconnect {
            return;
        }
        let until = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                c = t.commands.recv() => if let Some(reply) = t.offline_command(c) {
                    if let Some(r) = reply { let _ = r.send(()); }
                    return;
                },
            }
        }
    }
}

impl Task {
    /// A command while not connected; `Some` when the task must stop.
    fn offline_command(&mut self, c: Option<Command>) -> Option<Option<oneshot::Sender<()>>> {
        match c {
            None => Some(None),
            Some(Command::Shutdown(r)) => Some(Some(r)),
            Some(Command::Iq(_, reply)) => {
                let _ = reply.send(Err(XmppError::NotConnected));
                None
            }
            Some(Command::Presence(p)) => {
                self.presence = Some(p);
                None
            }
            Some(Command::Send(_)) => None,
        }
    }

    fn emit(&self, e: XmppEvent) {
        let _ = self.events.send(e);
    }

    /// Runs one bound stream until it ends.
    async fn session(&mut self, mut io: Io, mut stream: BoundStream) -> End {
        let mut pending: Pending = HashMap::new();
        let roster_id = super::new_id();
        let mut buf = vec![0u8; 16 * 1024];
        let _ = stream.send_stanza(&stanzas::roster_get(&roster_id));
        if let Some(p) = &self.presence {
            let _ = stream.send_stanza(&stanzas::presence(p, 0));
        }
        // Anything that already arrived with the bind result.
        let mut end = self.drain(&mut stream, &mut pending, &roster_id);
        let mut ping: Option<String> = None;
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + self.cfg.keepalive,
            self.cfg.keepalive,
        );
        loop {
            let out = stream.take_output();
            if !out.is_empty()
                && let Err(e) = io.write_all(&out).await
            {
                end = end.or(Some(End::Lost(e.to_string())));
            }
            if let Some(e) = end {
                fail_pending(&mut pending);
                if let End::Shutdown(_) = e {
                    let _ = io.shutdown().await;
                }
                return e;
            }
            stream.release_buffers();
            tokio::select! {
                r = io.read(&mut buf) => match r {
                    Ok(0) => end = Some(End::Lost("the server closed the connection".into())),
                    Ok(n) => {
                        stream.feed(&buf[..n]);
                        ping = None; // any traffic proves the link
                        tick.reset();
                        end = self.drain(&mut stream, &mut pending, &roster_id);
                    }
                    Err(e) => end = Some(End::Lost(e.to_string())),
                },
                c = self.commands.recv() => match c {
                    None => {
                        stream.close(None);
                        end = Some(End::Shutdown(None));
                    }
                    Some(Command::Shutdown(r)) => {
                        let _ = stream.send_stanza(&stanzas::presence(&OwnPresence {
                            show: stanzas::Show::Offline,
                            status: None,
                        }, 0));
                        stream.close(None);
                        end = Some(End::Shutdown(Some(r)));
                    }
                    Some(Command::Send(el)) => { let _ = stream.send_stanza(&el); }
                    Some(Command::Iq(el, reply)) => {
                        let id = el.attr("id").unwrap_or_default().to_owned();
                        if stream.send_stanza(&el).is_ok() {
                            pending.insert(id, reply);
                        } else {
                            let _ = reply.send(Err(XmppError::Stream("stanza not writable".into())));
                        }
                    }
                    Some(Command::Presence(p)) => {
                        let _ = stream.send_stanza(&stanzas::presence(&p, 0));
                        self.presence = Some(p);
                    }
                },
                _ = tick.tick() => {
                    // Requests whose caller gave up waiting (timed out) are forgotten.
                    pending.retain(|_, reply| !reply.is_closed());
                    if ping.is_some() {
                        end = Some(End::Lost("no answer to keep-alive ping".into()));
                    } else {
                        let id = super::new_id();
                        let (_, domain) = self.cfg.parts().unwrap_or(("", ""));
                        let p = stanzas::iq("get", &id, Some(domain),
                            Some(Element::builder("ping", stanzas::PING).build()));
                        let _ = stream.send_stanza(&p);
                        ping = Some(id);
                    }
                }
            }
        }
    }

    /// Handles every event the stream has; `Some` when it ended.
    fn drain(
        &mut self,
        stream: &mut BoundStream,
        pending: &mut Pending,
        roster_id: &str,
    ) -> Option<End> {
        while let Some(ev) = stream.poll_event() {
            match ev {
                BoundEvent::Stanza(el) => self.on_stanza(stream, pending, roster_id, &el),
                BoundEvent::Closed(e) => {
                    return Some(End::Lost(match e {
                        Some(e) => format!("stream error: {e}"),
                        None => "the server closed the stream".into(),
                    }));
                }
                _ => {}
            }
        }
        None
    }

    fn on_stanza(
        &mut self,
        stream: &mut BoundStream,
        pending: &mut Pending,
        roster_id: &str,
        el: &Element,
    ) {
        if el.ns() != ns::JABBER_CLIENT {
            return;
        }
        match el.name() {
            "iq" => self.on_iq(stream, pending, roster_id, el),
            "message" => self.on_message(el),
            "presence" => self.on_presence(el),
            _ => {}
        }
    }

    fn on_iq(
        &mut self,
        stream: &mut BoundStream,
        pending: &mut Pending,
        roster_id: &str,
        el: &Element,
    ) {
        let id = el.attr("id").unwrap_or_default();
        match el.attr("type") {
            Some("result") | Some("error") => {
                let is_error = el.attr("type") == Some("error");
                if id == roster_id && !is_error {
                    let items = el
                        .get_child("query", stanzas::ROSTER)
                        .map(stanzas::roster_items)
                        .unwrap_or_default();
                    self.emit(XmppEvent::Roster { items });
                } else if let Some(reply) = pending.remove(id) {
                    let r = if is_error {
                        Err(XmppError::Stanza(
                            StanzaError::from_element(el)
                                .map(|e| e.condition.as_str().to_owned())
                                .unwrap_or_else(|| "undefined-condition".into()),
                        ))
                    } else {
                        Ok(el.clone())
                    };
                    let _ = reply.send(r);
                }
            }
            Some("get") | Some("set") => {
                let answer = self.answer_request(el);
                let _ = stream.send_stanza(&answer);
            }
            _ => {}
        }
    }

    /// The answer to a request from the server or another entity (RFC 6120 §8.2.3: every
    /// get/set is answered, unknown ones with `service-unavailable`).
    fn answer_request(&mut self, el: &Element) -> Element {
        let child = el.children().next();
        let kind = el.attr("type").unwrap_or_default();
        let from_server_or_self = el.attr("from").is_none_or(|f| {
            let b = stanzas::bare(f);
            b == stanzas::bare(&self.cfg.jid) || self.cfg.parts().is_ok_and(|(_, d)| d == b)
        });
        let Some(child) = child else {
            return StanzaError::new(StanzaErrorCondition::BadRequest).reply_to(el);
        };
        match (kind, child.ns().as_str(), child.name()) {
            ("get", stanzas::DISCO_INFO, "query") => stanzas::disco_info_result(el),
            ("get", stanzas::PING, "ping") => stanzas::result_to(el, None),
            ("get", stanzas::VERSION, "query") => stanzas::version_result(el),
            ("set", stanzas::ROSTER, "query") if from_server_or_self => {
                for item in stanzas::roster_items(child) {
                    self.emit(XmppEvent::RosterPush { item });
                }
                stanzas::result_to(el, None)
            }
            // RFC 7081 §2 (CL-03/CL-04): no A/V over XMPP on a CUSAX account.
            ("set", stanzas::JINGLE, "jingle") => {
                StanzaError::new(StanzaErrorCondition::FeatureNotImplemented).reply_to(el)
            }
            _ => StanzaError::new(StanzaErrorCondition::ServiceUnavailable).reply_to(el),
        }
    }

    fn on_message(&self, el: &Element) {
        let from = el.attr("from").unwrap_or_default().to_owned();
        let kind = el.attr("type").unwrap_or("normal").to_owned();
        if kind == "error" {
            let condition = StanzaError::from_element(el)
                .map(|e| e.condition.as_str().to_owned())
                .unwrap_or_else(|| "undefined-condition".into());
            self.emit(XmppEvent::MessageError { from, condition });
            return;
        }
        let Some(body) = el.get_child("body", ns::JABBER_CLIENT) else {
            return; // chat states, receipts: nothing to show
        };
        self.emit(XmppEvent::Message {
            from,
            kind,
            body: body.text(),
            delayed: el.get_child("delay", stanzas::DELAY).is_some(),
        });
    }

    fn on_presence(&self, el: &Element) {
        let from = el.attr("from").unwrap_or_default().to_owned();
        let text = |n: &str| {
            el.get_child(n, ns::JABBER_CLIENT)
                .map(Element::text)
                .filter(|t| !t.is_empty())
        };
        match el.attr("type") {
            None | Some("unavailable") => self.emit(XmppEvent::Presence {
                from,
                available: el.attr("type").is_none(),
                show: text("show"),
                status: text("status"),
            }),
            Some(k @ ("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed")) => {
                self.emit(XmppEvent::Subscription {
                    from: stanzas::bare(&from).to_owned(),
                    kind: k.to_owned(),
                })
            }
            _ => {}
        }
    }
}

fn fail_pending(pending: &mut Pending) {
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(XmppError::NotConnected));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute_with_jitter() {
        for (attempt, base) in [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (6, 32.0),
            (7, 60.0),
            (40, 60.0),
        ] {
            let d = backoff(attempt).as_secs_f64();
            assert!(
                d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
                "attempt {attempt}: {d}"
            );
        }
    }
}
