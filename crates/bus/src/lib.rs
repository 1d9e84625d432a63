//! RFC 7081 §3.2 ("shared infrastructure"): the cluster event bus — what one part of a
//! `cusaxd` (or, later, one node of a cluster) tells the others.
//!
//! A [`Bus`] publishes [`Event`]s to every [`Subscription`]. Events are plain data and
//! serialise (serde) inside a versioned [`Envelope`], so that a network implementation (NATS
//! with the cluster issue) carries the same values the in-process [`LocalBus`] hands over.
//!
//! Delivery is at most once and in publish order per publisher; a subscriber that falls
//! more than the bus's capacity behind is told how many events it missed
//! ([`RecvError::Lagged`]) and must resynchronise from the source of truth (the store, the
//! location service), as the account change consumers do by dropping their caches.

mod event;
mod local;

pub use event::{
    AccountChangeKind, AccountChanged, BindingChanged, CallPhase, CallState, DecodeError, Envelope,
    Event, SessionChanged, VERSION,
};
pub use local::{DEFAULT_CAPACITY, LocalBus};

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscriber fell behind and this many events were dropped for it; the next
    /// `recv` returns the oldest event still held.
    #[error("subscriber lagged behind by {0} events")]
    Lagged(u64),
    /// The bus is gone; no event will come.
    #[error("bus closed")]
    Closed,
}

/// Why [`Subscription::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is waiting now.
    #[error("no event waiting")]
    Empty,
    /// As [`RecvError::Lagged`].
    #[error("subscriber lagged behind by {0} events")]
    Lagged(u64),
    /// As [`RecvError::Closed`].
    #[error("bus closed")]
    Closed,
}

/// Publish/subscribe of cluster events.
///
/// `publish` never waits: a bus buffers or drops, so that a slow consumer cannot stall the
/// SIP or XMPP task that reports a change.
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Sends `event` to every current subscriber (none is fine).
    fn publish(&self, event: Event);
    /// A new subscription that receives every event published from now on.
    fn subscribe(&self) -> Subscription;
}

/// One subscriber's stream of events.
#[derive(Debug)]
pub struct Subscription {
    rx: tokio::sync::broadcast::Receiver<Event>,
}

impl Subscription {
    /// The next event, in publish order.
    pub async fn recv(&mut self) -> Result<Event, RecvError> {
        use tokio::sync::broadcast::error::RecvError as B;
        self.rx.recv().await.map_err(|e| match e {
            B::Lagged(n) => RecvError::Lagged(n),
            B::Closed => RecvError::Closed,
        })
    }

    /// The next event if one is waiting, without waiting (for synchronous consumers and
    /// tests that check what a step published).
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        use tokio::sync::broadcast::error::TryRecvError as B;
        self.rx.try_recv().map_err(|e| match e {
            B::Empty => TryRecvError::Empty,
            B::Lagged(n) => TryRecvError::Lagged(n),
            B::Closed => TryRecvError::Closed,
        })
    }
}
