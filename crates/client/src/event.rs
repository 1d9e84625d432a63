//! RFC 3261 §10 and §13–§15 as seen by a user: the typed events of the user agent (one JSON
//! object each when serialised, as `cusax listen` prints them).

use serde::Serialize;

use crate::media::{Codec, MediaStats};

/// Who started a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// We called.
    Outgoing,
    /// We were called.
    Incoming,
}

/// The states a call reports, in order; a call ends in `ended` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// INVITE sent.
    Calling,
    /// The callee is alerted (180/183), or we are alerting (incoming call).
    Ringing,
    /// We answered (200 sent), waiting for the ACK.
    Answered,
    /// The dialog is confirmed and media flows.
    Established,
    /// Hung up by either side, or cancelled; `reason` says which.
    Ended,
    /// Never established: refused, timed out, or no common codec; `code` says why.
    Failed,
}

/// Something that happened in the user agent.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The registrar accepted our binding (RFC 3261 §10.2.4).
    Registered {
        /// Our address of record.
        aor: String,
        /// The registered contact.
        contact: String,
        /// Seconds the binding lasts; it is refreshed before then.
        expires: u32,
    },
    /// The registrar refused us, or did not answer.
    RegistrationFailed {
        /// Our address of record.
        aor: String,
        /// The final status (408 for no answer).
        code: u16,
        /// The reason phrase.
        reason: String,
    },
    /// Our binding was removed (REGISTER with expires 0).
    Unregistered {
        /// Our address of record.
        aor: String,
    },
    /// An INVITE for a new call arrived.
    IncomingCall {
        /// The Call-ID.
        call_id: String,
        /// The caller's URI (From).
        from: String,
        /// The caller's display name, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        from_name: Option<String>,
        /// The called URI (To).
        to: String,
        /// Every Call-Info value as received (CUSAX: `<xmpp:JID>;purpose=impp`, RFC 7081 §6).
        call_info: Vec<String>,
        /// Whether the call is answered automatically.
        auto_answer: bool,
    },
    /// A call changed state.
    CallState {
        /// The Call-ID.
        call_id: String,
        /// Who called.
        direction: CallDirection,
        /// The new state.
        state: CallState,
        /// The SIP status behind the change, if one.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
        /// Why (reason phrase, or `local hangup`, `remote hangup`, `cancelled`).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The negotiated codec (established calls).
        #[serde(skip_serializing_if = "Option::is_none")]
        codec: Option<Codec>,
        /// The peer's RTP address (established calls).
        #[serde(skip_serializing_if = "Option::is_none")]
        remote_rtp: Option<String>,
        /// What the media stream did (ended calls that had media).
        #[serde(skip_serializing_if = "Option::is_none")]
        media: Option<MediaStats>,
    },
    /// The flow to the server was lost: the TCP/TLS connection closed or failed, or a
    /// keep-alive went unanswered (RFC 5626 §4.4.1). The binding is gone with it; a
    /// `reconnecting` event follows (unless the user agent is shutting down).
    TransportClosed {
        /// What happened.
        reason: String,
    },
    /// The user agent will reopen its flow and register again after a backoff (RFC 7081 §2,
    /// RFC 5626 §4.5); `registered` follows once it succeeds.
    Reconnecting {
        /// The attempt, counted from 1 since the last success.
        attempt: u32,
        /// Seconds until the attempt.
        in_secs: f64,
        /// Why: the loss, or what made the previous attempt fail.
        reason: String,
    },
}

impl Event {
    /// A call-state event without details.
    pub fn call(call_id: &str, direction: CallDirection, state: CallState) -> Self {
        Self::CallState {
            call_id: call_id.to_owned(),
            direction,
            state,
            code: None,
            reason: None,
            codec: None,
            remote_rtp: None,
            media: None,
        }
    }

    /// Adds a status code and reason to a call-state event.
    pub fn with_reason(mut self, c: Option<u16>, r: &str) -> Self {
        if let Self::CallState { code, reason, .. } = &mut self {
            *code = c;
            *reason = Some(r.to_owned());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_as_flat_json_objects() {
        let e = Event::call("c1", CallDirection::Outgoing, CallState::Failed)
            .with_reason(Some(486), "Busy Here");
        let j = serde_json::to_string(&e).expect("json");
        assert_eq!(
            j,
            r#"{"event":"call_state","call_id":"c1","direction":"outgoing","state":"failed","code":486,"reason":"Busy Here"}"#
        );
        let r = Event::Registered {
            aor: "sip:a@x".into(),
            contact: "<sip:a@127.0.0.1:5>".into(),
            expires: 300,
        };
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"event":"registered","aor":"sip:a@x","contact":"<sip:a@127.0.0.1:5>","expires":300}"#
        );
        let r = Event::Reconnecting {
            attempt: 2,
            in_secs: 1.5,
            reason: "connection closed".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"event":"reconnecting","attempt":2,"in_secs":1.5,"reason":"connection closed"}"#
        );
        let c = Event::TransportClosed {
            reason: "keep-alive unanswered".into(),
        };
        assert_eq!(
            serde_json::to_string(&c).expect("json"),
            r#"{"event":"transport_closed","reason":"keep-alive unanswered"}"#
        );
    }
}
