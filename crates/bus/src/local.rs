//! RFC 7081 §3.2 ("shared infrastructure"), one process: the in-process bus on a tokio
//! broadcast channel.

use crate::{Bus, Event, Subscription};
use tokio::sync::broadcast;

/// Events held for the slowest subscriber before it starts losing them (the account change
/// feed's capacity before the bus existed).
pub const DEFAULT_CAPACITY: usize = 1024;

/// The bus of one process: every subscriber sees every event, in publish order.
#[derive(Debug, Clone)]
pub struct LocalBus {
    tx: broadcast::Sender<Event>,
}

impl LocalBus {
    /// A bus holding up to `capacity` events per lagging subscriber (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: Event) {
        // No subscriber is not an error: nobody needs to hear it.
        let _ = self.tx.send(event);
    }

    fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountChangeKind, AccountChanged, RecvError, TryRecvError};
    use cusax_account::AccountId;
    use std::time::Duration;

    /// A bounded wait for one event: a test that hangs is a failing test.
    const WAIT: Duration = Duration::from_secs(5);

    fn change(seq: i64) -> Event {
        Event::AccountChanged(AccountChanged {
            seq,
            account: AccountId::parse("bob@example.org").expect("valid test address"),
            kind: AccountChangeKind::Credentials,
        })
    }

    fn seq(e: &Event) -> i64 {
        match e {
            Event::AccountChanged(c) => c.seq,
            other => panic!("unexpected event {other:?}"),
        }
    }

    async fn next(sub: &mut Subscription) -> Result<Event, RecvError> {
        tokio::time::timeout(WAIT, sub.recv())
            .await
            .expect("an event within the bounded wait")
    }

    #[tokio::test]
    async fn every_subscriber_sees_every_event_in_publish_order() {
        let bus = LocalBus::new(64);
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        for i in 1..=50 {
            bus.publish(change(i));
        }
        for sub in [&mut a, &mut b] {
            for i in 1..=50 {
                assert_eq!(seq(&next(sub).await.expect("event")), i);
            }
        }
    }

    #[tokio::test]
    async fn a_subscriber_sees_only_what_is_published_after_it_subscribed() {
        let bus = LocalBus::default();
        bus.publish(change(1));
        let mut late = bus.subscribe();
        bus.publish(change(2));
        assert_eq!(seq(&next(&mut late).await.expect("event")), 2);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_learns_how_many_it_missed_then_continues() {
        let bus = LocalBus::new(4);
        let mut slow = bus.subscribe();
        let mut fast = bus.subscribe();
        for i in 1..=10 {
            bus.publish(change(i));
            assert_eq!(seq(&next(&mut fast).await.expect("event")), i);
        }
        // Capacity 4: events 1..=6 are gone for the slow one, 7..=10 are still held.
        assert_eq!(next(&mut slow).await, Err(RecvError::Lagged(6)));
        for i in 7..=10 {
            assert_eq!(seq(&next(&mut slow).await.expect("event")), i);
        }
        bus.publish(change(11));
        assert_eq!(seq(&next(&mut slow).await.expect("event")), 11);
    }

    #[test]
    fn try_recv_takes_what_is_waiting_and_says_when_nothing_is() {
        let bus = LocalBus::new(8);
        let mut sub = bus.subscribe();
        assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
        bus.publish(change(1));
        bus.publish(change(2));
        assert_eq!(seq(&sub.try_recv().expect("first")), 1);
        assert_eq!(seq(&sub.try_recv().expect("second")), 2);
        assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
        drop(bus);
        assert_eq!(sub.try_recv(), Err(TryRecvError::Closed));
    }

    #[tokio::test]
    async fn publishing_without_subscribers_is_fine_and_a_dropped_bus_closes() {
        let bus = LocalBus::new(8);
        bus.publish(change(1));
        let mut sub = bus.subscribe();
        drop(bus);
        assert_eq!(next(&mut sub).await, Err(RecvError::Closed));
    }
}
