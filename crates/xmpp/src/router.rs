//! RFC 6120 §10 and RFC 6121 §8.5: the registry of bound sessions and delivery to them.
//!
//! Sessions are keyed by bare JID and resource. A new session with a resource already bound
//! replaces the old one, which is closed with the `conflict` stream error (RFC 6120 §7.7.2.2).

use cusax_xmpp_proto::stream::StreamError;
use minidom::Element;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a session is told to end: a stream error and a cancellation token.
#[derive(Debug, Default)]
pub struct KillSwitch {
    token: CancellationToken,
    reason: Mutex<Option<StreamError>>,
}

impl KillSwitch {
    /// Asks the session to end with `reason` (the first reason wins).
    pub fn kill(&self, reason: StreamError) {
        let mut r = self
            .reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if r.is_none() {
            *r = Some(reason);
        }
        self.token.cancel();
    }

    /// Resolves once the session was asked to end.
    pub async fn killed(&self) -> Option<StreamError> {
        self.token.cancelled().await;
        self.reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// What the router keeps of one bound session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Unique per process, so a replaced session does not unregister its successor.
    pub id: u64,
    /// The resource part.
    pub resource: String,
    tx: mpsc::Sender<Element>,
    kill: Arc<KillSwitch>,
    /// The last available presence broadcast by the session (`None`: not available).
    pub presence: Option<Element>,
    /// The presence priority (RFC 6121 §4.7.2.3).
    pub priority: i8,
    /// JIDs that got directed presence from this session (RFC 6121 §4.6).
    pub directed: HashSet<String>,
}

impl SessionHandle {
    /// Queues a stanza; a full queue means the client does not read, so it is disconnected.
    pub fn send(&self, el: Element) {
        if self.tx.try_send(el).is_err() {
            self.kill.kill(StreamError::with_text(
                cusax_xmpp_proto::stream::StreamErrorCondition::ResourceConstraint,
                "too many stanzas queued",
            ));
        }
    }

    /// Ends the session with a stream error.
    pub fn kill(&self, reason: StreamError) {
        self.kill.kill(reason);
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

    /// Registers a session; an existing session with the same resource is closed with
    /// `conflict`. Returns the handle, the stanza queue and the kill switch.
    pub fn register(
        &self,
        bare: &str,
        resource: &str,
        queue: usize,
    ) -> (u64, mpsc::Receiver<Element>, Arc<KillSwitch>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let kill = Arc::new(KillSwitch::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let handle = SessionHandle {
            id,
            resource: resource.to_owned(),
            tx,
            kill: kill.clone(),
            presence: None,
            priority: 0,
            directed: HashSet::new(),
        };
        let mut map = self.lock();
        let list = map.entry(bare.to_owned()).or_default();
        if let Some(pos) = list.iter().position(|s| s.resource == resource) {
            let old = list.remove(pos);
            old.kill(StreamError::with_text(
                cusax_xmpp_proto::stream::StreamErrorCondition::Conflict,
                "replaced by a new session",
            ));
        }
        list.push(handle);
        (id, rx, kill)
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
