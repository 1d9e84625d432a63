//! RFC 3261 §12 and §16.7: the calls (INVITE dialogs) the proxy sees confirmed and ended, as
//! events for the rest of the service — "on the phone" presence (XEP-0108; requirement CL-32, not in RFC 7081 itself),
//! logs and metrics. Only dialog-level facts are kept: Call-ID, the local accounts in the
//! call, and when it was confirmed.
//!
//! Each change is published on the bus as one [`cusax_bus::CallState`] (the server's bus
//! after [`crate::SipCore::with_bus`], else a bus of this proxy's own); [`Calls::subscribe`]
//! reads them back as one [`CallEvent`] per local account.

use cusax_account::AccountId;
use cusax_bus::{Bus, CallPhase, CallState, Event, LocalBus, Subscription, TryRecvError};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A change in a local user's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A 2xx to an initial INVITE went through: `account` is in a call.
    Confirmed {
        /// The local user (caller or callee).
        account: AccountId,
        /// The dialog's Call-ID.
        call_id: String,
    },
    /// The call ended (BYE, or no BYE within the call-length limit).
    Ended {
        /// The local user.
        account: AccountId,
        /// The dialog's Call-ID.
        call_id: String,
    },
}

#[derive(Debug)]
struct Call {
    accounts: Vec<AccountId>,
    since: Instant,
}

/// Confirmed calls by Call-ID.
#[derive(Debug)]
pub struct Calls {
    map: Mutex<HashMap<String, Call>>,
    bus: Arc<dyn Bus>,
    /// A call without BYE (a phone lost power) counts as ended after this long.
    pub max_length: Duration,
}

impl Default for Calls {
    fn default() -> Self {
        Self::new()
    }
}

impl Calls {
    /// No calls; events go to a bus of their own, read by [`Calls::subscribe`]rs.
    pub fn new() -> Self {
        Self::with_bus(Arc::new(LocalBus::default()))
    }

    /// No calls; call states are published on `bus`.
    pub fn with_bus(bus: Arc<dyn Bus>) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            bus,
            max_length: Duration::from_secs(12 * 3600),
        }
    }

    /// Publishes from now on to `bus` instead.
    pub(crate) fn set_bus(&mut self, bus: Arc<dyn Bus>) {
        self.bus = bus;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Call>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Events from now on, one per local account of each call state on the bus.
    pub fn subscribe(&self) -> CallEvents {
        CallEvents {
            sub: self.bus.subscribe(),
            pending: VecDeque::new(),
        }
    }

    fn publish(&self, call_id: &str, accounts: Vec<AccountId>, phase: CallPhase) {
        self.bus.publish(Event::CallState(CallState {
            call_id: call_id.to_owned(),
            accounts,
            phase,
        }));
    }

    /// Calls in progress.
    pub fn active(&self) -> usize {
        self.lock().len()
    }

    /// The local accounts currently in a call, with their Call-IDs.
    pub fn snapshot(&self) -> Vec<(String, Vec<AccountId>)> {
        self.lock()
            .iter()
            .map(|(k, c)| (k.clone(), c.accounts.clone()))
            .collect()
    }

    /// A 2xx to the initial INVITE `call_id` between these local accounts.
    pub(crate) fn confirmed(&self, call_id: &str, accounts: Vec<AccountId>, now: Instant) {
        if accounts.is_empty() {
            return;
        }
        let fresh = {
            let mut map = self.lock();
            if map.contains_key(call_id) {
                false // a 2xx retransmission, or a second fork answering
            } else {
                map.insert(
                    call_id.to_owned(),
                    Call {
                        accounts: accounts.clone(),
                        since: now,
                    },
                );
                true
            }
        };
        if fresh {
            for account in &accounts {
                tracing::debug!(protocol = "sip", account = %account, call_id, "call confirmed");
            }
            self.publish(call_id, accounts, CallPhase::Confirmed);
        }
    }

    /// A BYE for `call_id` went through.
    pub(crate) fn ended(&self, call_id: &str) {
        let gone = self.lock().remove(call_id);
        if let Some(call) = gone {
            self.announce_end(call_id, call);
        }
    }

    fn announce_end(&self, call_id: &str, call: Call) {
        for account in &call.accounts {
            tracing::debug!(protocol = "sip", account = %account, call_id, "call ended");
        }
        self.publish(call_id, call.accounts, CallPhase::Ended);
    }

    /// Ends calls older than `max_length`; returns how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let old: Vec<(String, Call)> = {
            let mut map = self.lock();
            let keys: Vec<String> = map
                .iter()
                .filter(|(_, c)| now.duration_since(c.since) >= self.max_length)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| map.remove(&k).map(|c| (k, c)))
                .collect()
        };
        let n = old.len();
        for (k, c) in old {
            self.announce_end(&k, c);
        }
        n
    }
}

/// The call states of a bus subscription as [`CallEvent`]s, one per local account.
#[derive(Debug)]
pub struct CallEvents {
    sub: Subscription,
    pending: VecDeque<CallEvent>,
}

impl CallEvents {
    /// The next call event if one is waiting; other bus events are skipped.
    pub fn try_recv(&mut self) -> Result<CallEvent, TryRecvError> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(e);
            }
            if let Event::CallState(c) = self.sub.try_recv()? {
                self.pending.extend(per_account(c));
            }
        }
    }
}

/// One [`CallEvent`] per account of a call state (a phase added later yields none).
fn per_account(c: CallState) -> Vec<CallEvent> {
    let CallState {
        call_id,
        accounts,
        phase,
    } = c;
    accounts
        .into_iter()
        .filter_map(|account| {
            let call_id = call_id.clone();
            match phase {
                CallPhase::Confirmed => Some(CallEvent::Confirmed { account, call_id }),
                CallPhase::Ended => Some(CallEvent::Ended { account, call_id }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmed_once_ended_once_and_swept() {
        let calls = Calls::new();
        let mut rx = calls.subscribe();
        let alice = AccountId::parse("alice@example.org").expect("id");
        let bob = AccountId::parse("bob@example.org").expect("id");
        let t0 = Instant::now();
        calls.confirmed("c1", vec![alice.clone(), bob.clone()], t0);
        calls.confirmed("c1", vec![alice.clone()], t0);
        assert_eq!(calls.active(), 1);
        calls.ended("c1");
        calls.ended("c1");
        let mut got = Vec::new();
        while let Ok(e) = rx.try_recv() {
            got.push(e);
        }
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(matches!(&got[0], CallEvent::Confirmed { account, .. } if *account == alice));
        assert!(matches!(&got[3], CallEvent::Ended { account, .. } if *account == bob));
        calls.confirmed("c2", vec![alice.clone()], t0);
        assert_eq!(calls.sweep(t0 + Duration::from_secs(60)), 0);
        assert_eq!(calls.sweep(t0 + calls.max_length), 1);
        assert_eq!(calls.active(), 0);
    }
}
