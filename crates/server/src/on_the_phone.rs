//! XEP-0108 §2.2 (user activity over PEP): the calls the SIP proxy sees become "on the phone"
//! on XMPP.
//!
//! The one place that sees both services: it follows the proxy's call states on the bus
//! ([`Event::CallState`]), counts the calls of each local account, and tells the XMPP service
//! when an account starts its first call and ends its last one ([`XmppService::set_in_call`]);
//! whether contacts see anything is the user's opt-in, which the XMPP side checks. Missed
//! events (a lagging subscriber) are repaired from the proxy's list of calls in progress.

use cusax_account::AccountId;
use cusax_bus::{CallPhase, Event, RecvError, Subscription};
use cusax_xmpp::XmppService;
use std::collections::{HashMap, HashSet};
use tokio_util::sync::CancellationToken;

/// The calls each account is in (Call-IDs), so that several calls show as one.
#[derive(Debug, Default)]
struct InCall {
    calls: HashMap<AccountId, HashSet<String>>,
}

impl InCall {
    /// A call was confirmed; true when it is the account's first.
    fn confirmed(&mut self, account: AccountId, call_id: String) -> bool {
        let set = self.calls.entry(account).or_default();
        set.insert(call_id) && set.len() == 1
    }

    /// A call ended; true when it was the account's last.
    fn ended(&mut self, account: &AccountId, call_id: &str) -> bool {
        let Some(set) = self.calls.get_mut(account) else {
            return false;
        };
        if !set.remove(call_id) || !set.is_empty() {
            return false;
        }
        self.calls.remove(account);
        true
    }

    /// Replaces the state with the proxy's calls in progress; returns the accounts whose
    /// state changed, with the new state (`true`: in a call).
    fn resync(&mut self, snapshot: Vec<(String, Vec<AccountId>)>) -> Vec<(AccountId, bool)> {
        let mut now: HashMap<AccountId, HashSet<String>> = HashMap::new();
        for (call_id, accounts) in snapshot {
            for a in accounts {
                now.entry(a).or_default().insert(call_id.clone());
            }
        }
        let mut changes: Vec<(AccountId, bool)> = self
            .calls
            .keys()
            .filter(|a| !now.contains_key(*a))
            .map(|a| (a.clone(), false))
            .collect();
        changes.extend(
            now.keys()
                .filter(|a| !self.calls.contains_key(*a))
                .map(|a| (a.clone(), true)),
        );
        self.calls = now;
        changes
    }
}

/// Follows `events` until `shutdown`; `snapshot` lists the calls in progress (Call-ID and
/// local accounts), read at start and after missed events.
pub(crate) async fn run(
    mut events: Subscription,
    snapshot: impl Fn() -> Vec<(String, Vec<AccountId>)> + Send,
    xmpp: XmppService,
    shutdown: CancellationToken,
) {
    let mut state = InCall::default();
    // Calls confirmed before `events` was subscribed; later duplicates change nothing.
    for (account, on) in state.resync(snapshot()) {
        xmpp.set_in_call(&account, on).await;
    }
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(Event::CallState(call)) if call.phase == CallPhase::Confirmed => {
                for account in call.accounts {
                    if state.confirmed(account.clone(), call.call_id.clone()) {
                        xmpp.set_in_call(&account, true).await;
                    }
                }
            }
            Ok(Event::CallState(call)) if call.phase == CallPhase::Ended => {
                for account in &call.accounts {
                    if state.ended(account, &call.call_id) {
                        xmpp.set_in_call(account, false).await;
                    }
                }
            }
            // Other events (and call phases added later) are not about being on the phone.
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "call events lagged; re-reading the calls in progress"
                );
                for (account, on) in state.resync(snapshot()) {
                    xmpp.set_in_call(&account, on).await;
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AccountId {
        AccountId::parse(s).expect("test address is valid")
    }

    #[test]
    fn several_calls_are_one_until_the_last_ends() {
        let mut s = InCall::default();
        let a = id("a@x.test");
        assert!(s.confirmed(a.clone(), "c1".into()), "first call");
        assert!(!s.confirmed(a.clone(), "c2".into()), "second call");
        assert!(!s.confirmed(a.clone(), "c2".into()), "a duplicate");
        assert!(!s.ended(&a, "c1"), "one call left");
        assert!(!s.ended(&a, "c1"), "a duplicate end");
        assert!(!s.ended(&a, "unknown"), "a call never seen");
        assert!(s.ended(&a, "c2"), "the last call");
        assert!(!s.ended(&a, "c2"));
        assert!(s.confirmed(a, "c3".into()), "a new first call");
    }

    #[test]
    fn resync_reports_only_changes() {
        let mut s = InCall::default();
        let (a, b, c) = (id("a@x.test"), id("b@x.test"), id("c@x.test"));
        s.confirmed(a.clone(), "c1".into());
        s.confirmed(b.clone(), "c2".into());
        let mut got = s.resync(vec![
            ("c2".into(), vec![b.clone(), c.clone()]),
            ("c3".into(), vec![b.clone()]),
        ]);
        got.sort_by_key(|x| x.0.to_string());
        assert_eq!(got, vec![(a, false), (c.clone(), true)]);
        assert!(!s.ended(&b, "c2"), "b is still in c3");
        assert!(s.ended(&b, "c3"));
        assert!(s.ended(&c, "c2"));
    }
}
