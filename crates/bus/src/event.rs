//! RFC 7081 §3.2 ("shared infrastructure"): the cluster events and their wire form.
//!
//! The wire form is JSON: `{"v":1,"type":"account_changed",…}`. `v` is the schema version
//! ([`VERSION`]); a receiver refuses a newer version instead of guessing, and a field added
//! later must be optional (`#[serde(default)]`) so that version 1 readers keep working.

use cusax_account::AccountId;
use serde::{Deserialize, Serialize};

/// The schema version this build writes and the newest it reads.
pub const VERSION: u32 = 1;

/// Something another part of the service (or another node) may need to react to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// An account was created, locked, deleted, … (from the store's change log).
    AccountChanged(AccountChanged),
    /// An XMPP session was bound (RFC 6120 §7).
    SessionUp(SessionChanged),
    /// An XMPP session ended.
    SessionDown(SessionChanged),
    /// The SIP bindings of an address of record changed (RFC 3261 §10).
    BindingChanged(BindingChanged),
    /// A SIP call was confirmed or ended (what XEP-0108 "on the phone" follows).
    CallState(CallState),
}

/// One entry of the store's account change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountChanged {
    /// The change log's sequence number (monotonic per store).
    pub seq: i64,
    /// The account concerned.
    #[serde(with = "account_id")]
    pub account: AccountId,
    /// What happened.
    pub kind: AccountChangeKind,
}

/// What happened to an account (the store's change kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccountChangeKind {
    /// Account created.
    Created,
    /// Password (credentials) changed.
    Credentials,
    /// Account locked.
    Locked,
    /// Account unlocked.
    Unlocked,
    /// Account deleted.
    Deleted,
    /// Aliases added or removed.
    Aliases,
}

/// An XMPP session of a local account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionChanged {
    /// The account.
    #[serde(with = "account_id")]
    pub account: AccountId,
    /// The bound resource.
    pub resource: String,
}

/// The bindings of one address of record after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingChanged {
    /// The address of record (`sip:alice@example.org`).
    pub aor: String,
    /// Contacts bound now (0: unregistered).
    pub contacts: u32,
}

/// A call's state as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallState {
    /// The dialog's Call-ID.
    pub call_id: String,
    /// The local accounts taking part.
    #[serde(with = "account_ids")]
    pub accounts: Vec<AccountId>,
    /// Confirmed or ended.
    pub phase: CallPhase,
}

/// The phases of a call that other services care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallPhase {
    /// A 2xx to the INVITE was forwarded.
    Confirmed,
    /// BYE, or the call timed out.
    Ended,
}

/// An event with its schema version: what goes over a network bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Schema version ([`VERSION`] when written by this build).
    pub v: u32,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// Why bytes are not an event this build understands.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Written by a newer build with a schema this one does not know.
    #[error("event schema version {0} is newer than {VERSION}")]
    Version(u32),
    /// Not JSON, or not an event.
    #[error("malformed event: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl Envelope {
    /// `event` at the current schema version.
    pub fn new(event: Event) -> Self {
        Self { v: VERSION, event }
    }

    /// The JSON wire form.
    pub fn encode(&self) -> Vec<u8> {
        // A derived Serialize of strings, integers and unit enums cannot fail.
        serde_json::to_vec(self)
            .expect("events serialise: plain data, no maps with non-string keys")
    }

    /// Reads the wire form; the version is checked before the event is interpreted.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u32,
        }
        let VersionOnly { v } = serde_json::from_slice(bytes)?;
        if v > VERSION {
            return Err(DecodeError::Version(v));
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// An [`AccountId`] as its `user@domain` text.
mod account_id {
    use cusax_account::AccountId;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(id: &AccountId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AccountId, D::Error> {
        let text = String::deserialize(d)?;
        AccountId::parse(&text).map_err(|e| D::Error::custom(format!("account {text:?}: {e}")))
    }
}

/// A list of [`AccountId`]s as their texts.
mod account_ids {
    use cusax_account::AccountId;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(ids: &[AccountId], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ids.iter().map(ToString::to_string))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AccountId>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| {
                AccountId::parse(t).map_err(|e| D::Error::custom(format!("account {t:?}: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> AccountId {
        AccountId::parse("alice@example.org").expect("valid test address")
    }

    fn samples() -> Vec<Event> {
        vec![
            Event::AccountChanged(AccountChanged {
                seq: 42,
                account: alice(),
                kind: AccountChangeKind::Locked,
            }),
            Event::SessionUp(SessionChanged {
                account: alice(),
                resource: "phone".into(),
            }),
            Event::SessionDown(SessionChanged {
                account: alice(),
                resource: "phone".into(),
            }),
            Event::BindingChanged(BindingChanged {
                aor: "sip:alice@example.org".into(),
                contacts: 2,
            }),
            Event::CallState(CallState {
                call_id: "c1@host".into(),
                accounts: vec![alice()],
                phase: CallPhase::Confirmed,
            }),
        ]
    }

    #[test]
    fn every_event_round_trips_with_its_version() {
        for e in samples() {
            let bytes = Envelope::new(e.clone()).encode();
            let json: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
            assert_eq!(json["v"], serde_json::json!(VERSION), "{json}");
            assert!(json["type"].is_string(), "{json}");
            let back = Envelope::decode(&bytes).expect("decodes");
            assert_eq!(back.v, VERSION);
            assert_eq!(back.event, e);
        }
    }

    #[test]
    fn wire_form_is_stable() {
        let e = Envelope::new(Event::AccountChanged(AccountChanged {
            seq: 7,
            account: alice(),
            kind: AccountChangeKind::Deleted,
        }));
        let json: serde_json::Value = serde_json::from_slice(&e.encode()).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({
                "v": 1, "type": "account_changed", "seq": 7,
                "account": "alice@example.org", "kind": "deleted"
            })
        );
    }

    #[test]
    fn a_newer_version_is_refused_before_reading_the_event() {
        let bytes = br#"{"v":2,"type":"something_new","x":1}"#;
        assert!(matches!(
            Envelope::decode(bytes),
            Err(DecodeError::Version(2))
        ));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"{}",
            b"[1,2]",
            br#"{"v":1}"#,
            br#"{"v":1,"type":"account_changed","seq":1,"account":"@@","kind":"locked"}"#,
            br#"{"v":1,"type":"account_changed","seq":1,"account":"a@b.example","kind":"nope"}"#,
        ] {
            assert!(
                matches!(Envelope::decode(bad), Err(DecodeError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
