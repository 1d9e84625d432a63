//! RFC 6120 §10 and RFC 6121 §8.5: the registry of bound sessions and delivery to them.
//!
//! Sessions are keyed by bare JID and resource. A new session with a resource already bound
//! replaces the old one, which is closed with the `conflict` stream error (RFC 6120 §7.7.2.2).

use cusax_xmpp_proto::stream::{StreamError, StreamErrorCondition};
use minidom::Element;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// What a session's [`Inbox`] hands to the session task.
#[derive(Debug)]
pub enum Delivery {
    /// A stanza routed to the session.
    Stanza(Element),
    /// The session must end with this stream error (it wins over queued stanzas).
    Kill(StreamError),
}

/// A bound session's inbox: routed stanzas and the request to end, under one lock.
///
/// Idle sessions are the common case, so an empty inbox owns no heap memory: the queue is
/// released whenever it drains, and waiting is a `Notify`, not a channel with preallocated
/// slots.
#[derive(Debug, Default)]
pub struct Inbox {
    state: Mutex<InboxState>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct InboxState {
    stanzas: VecDeque<Element>,
    limit: usize,
    kill: Option<StreamError>,
    closed: bool,
}

impl Inbox {
    fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(InboxState {
                limit: limit.max(1),
                ..InboxState::default()
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a stanza; a full inbox means the client does not read, so it is killed.
    fn push(&self, el: Element) {
        let mut st = self.lock();
        if st.closed || st.kill.is_some() {
            return;
        }
        if st.stanzas.len() >= st.limit {
            st.kill = Some(StreamError::with_text(
                StreamErrorCondition::ResourceConstraint,
                "too many stanzas queued",
            ));
            st.stanzas = VecDeque::new();
        } else {
            st.stanzas.push_back(el);
        }
        drop(st);
        self.notify.notify_one();
    }

    /// Asks the session to end with `reason` (the first reason wins).
    pub fn kill(&self, reason: StreamError) {
        let mut st = self.lock();
        if st.kill.is_none() && !st.closed {
            st.kill = Some(reason);
            st.stanzas = VecDeque::new();
        }
        drop(st);
        self.notify.notify_one();
    }

    /// The next delivery; cancel-safe (nothing is taken unless it resolves).
    pub async fn next(&self) -> Delivery {
        loop {
            {
                let mut st = self.lock();
                if let Some(reason) = &st.kill {
                    return Delivery::Kill(reason.clone());
                }
                if let Some(el) = st.stanzas.pop_front() {
                    if st.stanzas.is_empty() {
                        st.stanzas = VecDeque::new();
                    }
                    return Delivery::Stanza(el);
                }
            }
            self.notify.notified().await;
        }
    }

    /// The session ended: later stanzas are dropped instead of queued.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.stanzas = VecDeque::new();
    }
}

/// What the router keeps of one bound session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Unique per process, so a replaced session does not unregister its successor.
    pub id: u64,
    /// The resource part.
    pub resource: String,
    inbox: Arc<Inbox>,
    /// The last available presence broadcast by the session (`None`: not available).
    pub presence: Option<Arc<Element>>,
    /// The presence priority (RFC 6121 §4.7.2.3).
    pub priority: i8,
    /// JIDs that got directed presence from this session (RFC 6121 §4.6).
    pub directed: HashSet<String>,
}

impl SessionHandle {
    /// Queues a stanza; a full queue means the client does not read, so it is disconnected.
    pub fn send(&self, el: Element) {
        self.inbox.push(el);
    }

    /// Ends the session with a stream error.
    pub fn kill(&self, reason: StreamError) {
        self.inbox.kill(reason);
    }
}

/// Sessions by bare JID, plus cached block lists of users with sessions.
#[derive(Debug, Default)]
pub struct Router {
    sessions: Mutex<HashMap<String, Vec<SessionHandle>>>,
    blocked: Mutex<HashMap<String, Arc<HashSet<String>>>>,
    next_id: AtomicU64,
}

impl Router {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<SessionHandle>>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a session whose inbox holds at most `queue` stanzas; an existing session
    /// with the same resource is closed with `conflict`. Returns the id and the inbox.
    pub fn register(&self, bare: &str, resource: &str, queue: usize) -> (u64, Arc<Inbox>) {
        let inbox = Arc::new(Inbox::new(queue));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let handle = SessionHandle {
            id,
            resource: resource.to_owned(),
            inbox: inbox.clone(),
            presence: None,
            priority: 0,
            directed: HashSet::new(),
        };
        let mut map = self.lock();
        // Most users have one session: no spare capacity per entry.
        let list = map
            .entry(bare.to_owned())
            .or_insert_with(|| Vec::with_capacity(1));
        if let Some(pos) = list.iter().position(|s| s.resource == resource) {
            let old = list.remove(pos);
            old.kill(StreamError::with_text(
                StreamErrorCondition::Conflict,
                "replaced by a new session",
            ));
        }
        list.push(handle);
        (id, inbox)
    }

    /// Queues a stanza for one session, if it is still registered (without cloning handles).
    pub fn send_to(&self, bare: &str, id: u64, el: Element) -> bool {
        let map = self.lock();
        match map.get(bare).and_then(|l| l.iter().find(|s| s.id == id)) {
            Some(s) => {
                s.send(el);
                true
            }
            None => false,
        }
    }

    /// Removes a session (if it is still the registered one); returns its last state.
    pub fn unregister(&self, bare: &str, id: u64) -> Option<SessionHandle> {
        let mut map = self.lock();
        let list = map.get_mut(bare)?;
        let pos = list.iter().position(|s| s.id == id)?;
        let h = list.remove(pos);
        if list.is_empty() {
            map.remove(bare);
            self.blocked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(bare);
        }
        Some(h)
    }

    /// Every bound session as (bare JID, resource, available), for operators.
    pub fn list(&self) -> Vec<(String, String, bool)> {
        self.lock()
            .iter()
            .flat_map(|(bare, v)| {
                v.iter()
                    .map(move |s| (bare.clone(), s.resource.clone(), s.presence.is_some()))
            })
            .collect()
    }

    /// Number of bound sessions.
    pub fn count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// All sessions of a user.
    pub fn sessions(&self, bare: &str) -> Vec<SessionHandle> {
        self.lock().get(bare).cloned().unwrap_or_default()
    }

    /// One session by resource.
    pub fn session(&self, bare: &str, resource: &str) -> Option<SessionHandle> {
        self.lock()
            .get(bare)?
            .iter()
            .find(|s| s.resource == resource)
            .cloned()
    }

    /// Changes a session's state under the lock; returns the closure's result if it exists.
    pub fn update<T>(
        &self,
        bare: &str,
        id: u64,
        f: impl FnOnce(&mut SessionHandle) -> T,
    ) -> Option<T> {
        self.lock()
            .get_mut(bare)?
            .iter_mut()
            .find(|s| s.id == id)
            .map(f)
    }

    /// Closes every session of a user (lock, delete) with `reason`.
    pub fn kill_user(&self, bare: &str, reason: &StreamError) -> usize {
        let list = self.sessions(bare);
        for s in &list {
            s.kill(reason.clone());
        }
        list.len()
    }

    /// Closes every session (shutdown).
    pub fn kill_all(&self, reason: &StreamError) {
        for list in self.lock().values() {
            for s in list {
                s.kill(reason.clone());
            }
        }
    }

    /// The cached block list of a user with sessions, if loaded.
    pub fn blocklist(&self, bare: &str) -> Option<Arc<HashSet<String>>> {
        self.blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(bare)
            .cloned()
    }

    /// Replaces the cached block list of a user.
    pub fn set_blocklist(&self, bare: &str, list: HashSet<String>) {
        self.blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(bare.to_owned(), Arc::new(list));
    }

    /// XEP-0191 §3.3: whether `user` blocks stanzas from (or to) `other` (full, bare or domain).
    pub fn is_blocked(&self, user: &str, other: &str) -> bool {
        let Some(list) = self.blocklist(user) else {
            return false;
        };
        if list.is_empty() {
            return false;
        }
        let bare = other.split('/').next().unwrap_or(other);
        let domain = bare.rsplit('@').next().unwrap_or(bare);
        list.contains(other) || list.contains(bare) || list.contains(domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> Element {
        crate::stanza::stanza("message", &[("id", id)])
    }

    fn capacity(inbox: &Inbox) -> usize {
        inbox.lock().stanzas.capacity()
    }

    #[tokio::test]
    async fn stanzas_in_order_and_an_empty_inbox_holds_no_buffer() {
        let router = Router::default();
        let (id, inbox) = router.register("a@x", "r", 8);
        assert_eq!(capacity(&inbox), 0);
        assert!(router.send_to("a@x", id, msg("1")));
        router
            .session("a@x", "r")
            .expect("registered")
            .send(msg("2"));
        assert!(capacity(&inbox) > 0);
        for want in ["1", "2"] {
            match inbox.next().await {
                Delivery::Stanza(el) => assert_eq!(el.attr("id"), Some(want)),
                Delivery::Kill(e) => panic!("killed: {e:?}"),
            }
        }
        assert_eq!(capacity(&inbox), 0, "drained inbox keeps no queue");
        assert!(!router.send_to("a@x", id + 1, msg("3")), "unknown session");
    }

    #[tokio::test]
    async fn a_kill_wins_over_queued_stanzas_and_a_full_inbox_kills() {
        let router = Router::default();
        let (_, inbox) = router.register("a@x", "r", 2);
        let handle = router.session("a@x", "r").expect("registered");
        handle.send(msg("1"));
        handle.kill(StreamError::from(StreamErrorCondition::PolicyViolation));
        handle.kill(StreamError::from(StreamErrorCondition::Conflict));
        for _ in 0..2 {
            match inbox.next().await {
                Delivery::Kill(e) => {
                    assert_eq!(e.condition, StreamErrorCondition::PolicyViolation);
                }
                Delivery::Stanza(_) => panic!("stanza delivered after a kill"),
            }
        }

        let (_, slow) = router.register("b@x", "r", 2);
        let handle = router.session("b@x", "r").expect("registered");
        for i in 0..3 {
            handle.send(msg(&i.to_string()));
        }
        match slow.next().await {
            Delivery::Kill(e) => assert_eq!(e.condition, StreamErrorCondition::ResourceConstraint),
            Delivery::Stanza(_) => panic!("a full inbox must end the session"),
        }
        assert_eq!(
            capacity(&slow),
            0,
            "queued stanzas are dropped with the session"
        );
    }

    #[tokio::test]
    async fn a_waiting_session_wakes_for_a_stanza() {
        let router = Arc::new(Router::default());
        let (id, inbox) = router.register("a@x", "r", 8);
        let sender = router.clone();
        let task = tokio::spawn(async move { inbox.next().await });
        tokio::task::yield_now().await;
        assert!(sender.send_to("a@x", id, msg("late")));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("woken in time")
            .expect("task");
        assert!(matches!(got, Delivery::Stanza(el) if el.attr("id") == Some("late")));
    }

    #[test]
    fn replaced_resource_is_killed_with_conflict_and_closed_inbox_drops() {
        let router = Router::default();
        let (_, first) = router.register("a@x", "r", 8);
        let (_, second) = router.register("a@x", "r", 8);
        assert_eq!(
            first.lock().kill.as_ref().map(|e| e.condition.clone()),
            Some(StreamErrorCondition::Conflict)
        );
        assert!(second.lock().kill.is_none());
        second.close();
        router
            .session("a@x", "r")
            .expect("registered")
            .send(msg("x"));
        assert_eq!(capacity(&second), 0);
    }
}
