//! RFC 6120 §2.5 (the server's role): the XMPP service shared by all c2s sessions — store,
//! router, settings — and its reaction to account changes made while it runs.

use crate::config::XmppConfig;
use crate::registry::{Module, Registry};
use crate::router::Router;
use crate::throttle::AuthThrottle;
use cusax_account::AccountId;
use cusax_bus::{
    AccountChangeKind, AccountChanged, Bus, Event, LocalBus, RecvError, SessionChanged,
    Subscription,
};
use cusax_xmpp_proto::sasl::FakeSaltKey;
use cusax_xmpp_proto::stream::{StreamError, StreamErrorCondition};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything the XMPP service needs from the store (defined by the store, so that the
/// server's `Arc<dyn ServerStore>` converts to it).
pub use cusax_store::XmppStore;

/// The XMPP service: one per server process, shared by every connection.
#[derive(Clone)]
pub struct XmppService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: XmppConfig,
    pub(crate) store: Arc<dyn XmppStore>,
    pub(crate) router: Router,
    pub(crate) throttle: AuthThrottle,
    pub(crate) fake_salt: FakeSaltKey,
    pub(crate) shutdown: CancellationToken,
    /// Where sessions going up and down are announced.
    pub(crate) bus: Arc<dyn Bus>,
    /// What the feature modules registered (handlers, hooks, features, their state).
    pub(crate) registry: Registry,
}

impl std::fmt::Debug for XmppService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppService")
            .field("domains", &self.inner.config.domains)
            .finish_non_exhaustive()
    }
}

impl XmppService {
    /// A service over `store`; sessions end with `system-shutdown` when `shutdown` fires.
    /// Session events go to a bus of its own ([`XmppService::with_bus`] names the server's).
    pub fn new(config: XmppConfig, store: Arc<dyn XmppStore>, shutdown: CancellationToken) -> Self {
        Self::build(
            config,
            store,
            Arc::new(LocalBus::default()),
            shutdown,
            Vec::new(),
        )
    }

    /// [`XmppService::new`], announcing every bound session and its end on `bus`
    /// ([`Event::SessionUp`], [`Event::SessionDown`]).
    pub fn with_bus(
        config: XmppConfig,
        store: Arc<dyn XmppStore>,
        bus: Arc<dyn Bus>,
        shutdown: CancellationToken,
    ) -> Self {
        Self::build(config, store, bus, shutdown, Vec::new())
    }

    /// Like [`new`](Self::new), with `extra` modules registered after the
    /// [default ones](crate::modules::default_modules) (so their hooks of equal priority run
    /// later, and a handler of theirs for a key a default module handles never answers).
    pub fn with_modules(
        config: XmppConfig,
        store: Arc<dyn XmppStore>,
        shutdown: CancellationToken,
        extra: Vec<Arc<dyn Module>>,
    ) -> Self {
        Self::build(
            config,
            store,
            Arc::new(LocalBus::default()),
            shutdown,
            extra,
        )
    }

    fn build(
        config: XmppConfig,
        store: Arc<dyn XmppStore>,
        bus: Arc<dyn Bus>,
        shutdown: CancellationToken,
        extra: Vec<Arc<dyn Module>>,
    ) -> Self {
        let mut modules = crate::modules::default_modules();
        modules.extend(extra);
        Self {
            inner: Arc::new(Inner {
                config,
                store,
                router: Router::default(),
                throttle: AuthThrottle::default(),
                fake_salt: FakeSaltKey::random(),
                shutdown,
                bus,
                registry: Registry::new(modules),
            }),
        }
    }

    /// Announces that `account` bound (`up`) or ended the session of `resource`.
    pub(crate) fn announce_session(&self, account: &AccountId, resource: &str, up: bool) {
        let s = SessionChanged {
            account: account.clone(),
            resource: resource.to_owned(),
        };
        self.inner.bus.publish(if up {
            Event::SessionUp(s)
        } else {
            Event::SessionDown(s)
        });
    }

    /// The state a module made reachable with [`Registry::provide`], by its type.
    pub fn module<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.inner.registry.state::<T>()
    }

    /// What the modules registered.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The account store (what modules keep lives behind the store's traits).
    pub(crate) fn store(&self) -> &Arc<dyn XmppStore> {
        &self.inner.store
    }

    /// The service's settings.
    pub(crate) fn config(&self) -> &XmppConfig {
        &self.inner.config
    }

    /// The session registry.
    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    /// Whether `domain` is served here.
    pub fn serves(&self, domain: &str) -> bool {
        self.inner.config.domains.iter().any(|d| d == domain)
    }

    /// Follows account changes on the cluster bus: a locked or deleted account loses its
    /// sessions at once (`not-authorized`); password changes apply at the next login.
    pub async fn watch_accounts(self, mut events: Subscription) {
        loop {
            let event = tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                e = events.recv() => e,
            };
            match event {
                Ok(Event::AccountChanged(c)) if c.kind == AccountChangeKind::Aliases => {
                    // XEP-0152: contacts learn the new SIP addresses.
                    crate::modules::reach::republish(&self, &c.account).await;
                }
                Ok(Event::AccountChanged(c)) => self.on_change(&c),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "account change feed lagged");
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn on_change(&self, c: &AccountChanged) {
        let text = match c.kind {
            AccountChangeKind::Locked => "account locked",
            AccountChangeKind::Deleted => {
                crate::modules::pep::state(self).forget(&c.account.to_string());
                "account deleted"
            }
            _ => return,
        };
        let err = StreamError::with_text(StreamErrorCondition::NotAuthorized, text);
        let n = self.inner.router.kill_user(&c.account.to_string(), &err);
        if n > 0 {
            tracing::info!(account = %c.account, sessions = n, reason = text, "closing sessions");
        }
    }

    /// XEP-0108 "on the phone": `account` started its first SIP call (`true`) or ended its
    /// last one (`false`). Contacts of users who opted in see "on the phone" meanwhile (see
    /// [`modules::activity`](crate::modules::activity)); callers keep the call count.
    pub async fn set_in_call(&self, account: &AccountId, in_call: bool) {
        crate::modules::activity::set_in_call(self, account, in_call).await;
    }

    /// Whether a local account exists (for addressing decisions).
    pub(crate) async fn account_exists(&self, id: &AccountId) -> bool {
        matches!(self.inner.store.account(id).await, Ok(Some(_)))
    }
}
