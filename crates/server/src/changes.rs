//! RFC 7081 §3.2 (a lock or password change applies to both services): the store's account
//! change log as the source of [`Event::AccountChanged`] on the bus.
//!
//! `cusaxctl` writes the same database from another process, so the server follows the
//! `account_changes` table (every [`CHANGE_POLL`], or at once when poked by a change made
//! in this process) and publishes each entry; SIP and XMPP subscribe to the bus, not to the
//! table. Exactly one publisher per store, so every change is published once, in log order.

use cusax_bus::{AccountChangeKind, AccountChanged, Bus, Event};
use cusax_store::{Change, ChangeKind, ChangeLog};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often the account change log is polled for changes made by `cusaxctl`.
pub(crate) const CHANGE_POLL: Duration = Duration::from_millis(200);

/// Entries read per poll; a longer backlog is read on the following polls.
const BATCH: u32 = 1000;

/// Wakes the poller early after a change made in this process (the admin API), so that it
/// reaches the bus without waiting for the next tick.
#[derive(Debug, Clone, Default)]
pub(crate) struct Poke(Arc<Notify>);

impl Poke {
    /// Asks for a poll now (coalesced with one already pending).
    pub(crate) fn poke(&self) {
        self.0.notify_one();
    }
}

/// Follows the store's change log from `seq` and publishes every change on `bus`.
pub(crate) async fn publish_account_changes(
    store: Arc<dyn ChangeLog>,
    mut seq: i64,
    bus: Arc<dyn Bus>,
    poke: Poke,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(CHANGE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            () = poke.0.notified() => {}
        }
        match store.changes_since(seq, BATCH).await {
            Ok(batch) => {
                for c in batch {
                    seq = c.seq;
                    tracing::debug!(account = %c.account, kind = c.kind.as_str(), "account changed");
                    match to_event(&c) {
                        Some(e) => bus.publish(e),
                        None => tracing::warn!(
                            kind = c.kind.as_str(),
                            "account change not mapped to a bus event"
                        ),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "polling the account change log failed"),
        }
    }
}

/// The bus event of a change log entry.
fn to_event(c: &Change) -> Option<Event> {
    let kind = match c.kind {
        ChangeKind::Created => AccountChangeKind::Created,
        ChangeKind::Credentials => AccountChangeKind::Credentials,
        ChangeKind::Locked => AccountChangeKind::Locked,
        ChangeKind::Unlocked => AccountChangeKind::Unlocked,
        ChangeKind::Deleted => AccountChangeKind::Deleted,
        ChangeKind::Aliases => AccountChangeKind::Aliases,
        // A kind added to the store later needs its bus counterpart first.
        _ => return None,
    };
    Some(Event::AccountChanged(AccountChanged {
        seq: c.seq,
        account: c.account.clone(),
        kind,
    }))
}

/// The change log entry a bus event stands for (for consumers written against the store's
/// [`Change`], such as the SIP account cache).
pub(crate) fn to_change(c: &AccountChanged) -> Option<Change> {
    let kind = match c.kind {
        AccountChangeKind::Created => ChangeKind::Created,
        AccountChangeKind::Credentials => ChangeKind::Credentials,
        AccountChangeKind::Locked => ChangeKind::Locked,
        AccountChangeKind::Unlocked => ChangeKind::Unlocked,
        AccountChangeKind::Deleted => ChangeKind::Deleted,
        AccountChangeKind::Aliases => ChangeKind::Aliases,
        _ => return None,
    };
    Some(Change {
        seq: c.seq,
        account: c.account.clone(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cusax_account::{AccountId, Credentials, Domain, Password};
    use cusax_bus::{LocalBus, RecvError, Subscription};
    use cusax_store::memory::MemoryStore;
    use cusax_store::{AccountStore, DomainStore};

    /// A bounded wait for one event: a test that hangs is a failing test.
    const WAIT: Duration = Duration::from_secs(5);

    async fn next(sub: &mut Subscription) -> Result<Event, RecvError> {
        tokio::time::timeout(WAIT, sub.recv())
            .await
            .expect("an event within the bounded wait")
    }

    #[test]
    fn every_store_kind_maps_to_the_bus_and_back() {
        let account = AccountId::parse("a@example.org").expect("valid");
        for kind in [
            ChangeKind::Created,
            ChangeKind::Credentials,
            ChangeKind::Locked,
            ChangeKind::Unlocked,
            ChangeKind::Deleted,
            ChangeKind::Aliases,
        ] {
            let c = Change {
                seq: 9,
                account: account.clone(),
                kind,
            };
            let Some(Event::AccountChanged(e)) = to_event(&c) else {
                panic!("{kind:?} has no bus event");
            };
            assert_eq!(to_change(&e), Some(c));
        }
    }

    #[tokio::test]
    async fn changes_written_to_the_store_reach_subscribers_in_log_order() {
        let store = Arc::new(MemoryStore::new());
        let domain = Domain::parse("example.org").expect("valid");
        store.add_domain(&domain).await.expect("domain");
        let bus = Arc::new(LocalBus::default());
        let mut sub = bus.subscribe();
        let shutdown = CancellationToken::new();
        let poke = Poke::default();
        let start = store.last_change().await.expect("last");
        let task = tokio::spawn(publish_account_changes(
            store.clone(),
            start,
            bus.clone(),
            poke.clone(),
            shutdown.clone(),
        ));
        let id = AccountId::parse("erin@example.org").expect("valid");
        let creds = Credentials::derive(&id, &Password::new("pw"), &[], 64);
        store.create_account(&id, &creds).await.expect("create");
        store.set_locked(&id, true).await.expect("lock");
        poke.poke();
        let mut kinds = Vec::new();
        let mut seqs = Vec::new();
        for _ in 0..2 {
            match next(&mut sub).await.expect("event") {
                Event::AccountChanged(c) => {
                    assert_eq!(c.account, id);
                    kinds.push(c.kind);
                    seqs.push(c.seq);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            kinds,
            [AccountChangeKind::Created, AccountChangeKind::Locked]
        );
        assert!(
            seqs[0] < seqs[1] && seqs[0] > start,
            "{seqs:?} after {start}"
        );
        shutdown.cancel();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("poller stops on shutdown")
            .expect("poller did not panic");
    }
}
