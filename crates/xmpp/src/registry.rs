//! The module registry: what each feature module (`modules/<feature>.rs`) adds to the service.
//!
//! A module declares its service-discovery features and identities (XEP-0030), registers IQ
//! handlers by (request kind, payload namespace and element, destination class), and hooks
//! into events (session started/ended, presence changed, message sent/delivered/stored, an IQ
//! answer to the server). Hooks run in order of their priority, highest first; equal
//! priorities keep the order of registration. This is the shape of Prosody's
//! `module:hook(event, handler, priority)` / `module:add_feature(var)` and of ejabberd's
//! `gen_iq_handler` plus hooks with sequence numbers: the dispatcher knows no module by name,
//! so a feature is one new file and one line in [`crate::modules::default_modules`].
//!
//! A module that keeps state owns it: the module value itself is the state, and other code
//! reaches it through [`XmppService::module`] by its type (never through the service's
//! internals).

use crate::destination::{Component, Destination, S2sRouter};
use crate::modules::{IqReply, Session};
use crate::router::SessionHandle;
use crate::service::XmppService;
use async_trait::async_trait;
use cusax_account::AccountId;
use cusax_store::RosterItem;
use minidom::Element;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// The request kind of an IQ (RFC 6120 §8.2.3); results and errors are not dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IqKind {
    /// `type='get'`.
    Get,
    /// `type='set'`.
    Set,
}

impl IqKind {
    /// Both kinds, for handlers that tell them apart themselves.
    pub const BOTH: &'static [IqKind] = &[IqKind::Get, IqKind::Set];

    /// The kind of a `type` attribute value, `None` for results, errors and junk.
    pub fn from_attr(v: &str) -> Option<Self> {
        match v {
            "get" => Some(Self::Get),
            "set" => Some(Self::Set),
            _ => None,
        }
    }
}

/// The destinations an IQ handler serves (addresses the server answers for itself; full JIDs,
/// components and remote domains are routed, not handled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dests(u8);

impl Dests {
    /// The sender's own account (no `to`, or the sender's bare JID).
    pub const OWN_ACCOUNT: Dests = Dests(1);
    /// Another local account's bare JID.
    pub const LOCAL_ACCOUNT: Dests = Dests(2);
    /// A served domain itself.
    pub const SERVER: Dests = Dests(4);
    /// Any account, own or not.
    pub const ACCOUNTS: Dests = Dests(1 | 2);
    /// Everything the server answers for.
    pub const ANY: Dests = Dests(1 | 2 | 4);

    /// Both sets.
    pub const fn or(self, other: Dests) -> Dests {
        Dests(self.0 | other.0)
    }

    /// Whether `dest` is in the set.
    pub fn contains(self, dest: &Destination) -> bool {
        let bit = match dest {
            Destination::OwnAccount => 1,
            Destination::LocalBare(_) => 2,
            Destination::Server(_) => 4,
            _ => 0,
        };
        self.0 & bit != 0
    }
}

/// Who a disco#info feature or identity describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The server (a served domain).
    Server,
    /// Every local account (bare JID).
    Account,
}

/// A XEP-0030 identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `category`, e.g. `server`.
    pub category: &'static str,
    /// `type`, e.g. `im`.
    pub kind: &'static str,
    /// Optional `name`.
    pub name: Option<&'static str>,
}

/// What an IQ handler gets: the request, its payload and where it was addressed.
#[derive(Debug)]
pub struct IqRequest<'a> {
    /// The service.
    pub svc: &'a XmppService,
    /// The sending session.
    pub session: &'a Session,
    /// The whole IQ (`from` stamped).
    pub iq: &'a Element,
    /// Its one payload element.
    pub payload: &'a Element,
    /// `get` or `set`.
    pub kind: IqKind,
    /// Where it was addressed.
    pub dest: &'a Destination,
}

/// Answers IQ requests of one or more (kind, namespace) keys.
#[async_trait]
pub trait IqHandler: Send + Sync {
    /// The answer to `req`; the dispatcher turns it into the result or error stanza.
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply;
}

/// An event modules can hook into.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A resource was bound (before its first stanza is read).
    SessionStarted {
        /// The new session.
        session: &'a Session,
    },
    /// A session ended; `last` is its router state if it was still registered.
    SessionEnded {
        /// The ended session.
        session: &'a Session,
        /// What the router kept of it (presence, directed presence).
        last: Option<&'a SessionHandle>,
    },
    /// A session broadcast available presence (`initial`: its first one).
    PresenceChanged {
        /// The session.
        session: &'a Session,
        /// The presence as broadcast.
        presence: &'a Element,
        /// Whether it is the session's first available presence.
        initial: bool,
        /// The account's roster, as read for the broadcast.
        roster: &'a [RosterItem],
    },
    /// A message from `session` was queued for local sessions of `to`.
    MessageDelivered {
        /// The sender.
        session: &'a Session,
        /// The recipient account.
        to: &'a AccountId,
        /// The message.
        message: &'a Element,
        /// The router ids of the sessions of `to` it was queued for (RFC 6121 §8.5).
        recipients: &'a [u64],
    },
    /// A message from `session` is about to be routed (to a local account, a component or a
    /// remote domain); not fired for messages refused at the sender (blocked, malformed `to`,
    /// addressed to the server itself).
    MessageSent {
        /// The sender.
        session: &'a Session,
        /// The message as routed (`from` stamped).
        message: &'a Element,
        /// Where it was addressed.
        dest: &'a Destination,
    },
    /// A message for an account with no available resource was stored (XEP-0160).
    MessageStored {
        /// The sender.
        session: &'a Session,
        /// The account it is kept for.
        owner: &'a AccountId,
        /// The message as stored (with its delay stamp).
        message: &'a Element,
    },
    /// An IQ result or error addressed to the server (an answer to the server's question).
    IqAnswer {
        /// The answering session.
        session: &'a Session,
        /// The result or error.
        iq: &'a Element,
    },
}

/// The hook points, one per [`Event`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookPoint {
    /// [`Event::SessionStarted`].
    SessionStarted,
    /// [`Event::SessionEnded`].
    SessionEnded,
    /// [`Event::PresenceChanged`].
    PresenceChanged,
    /// [`Event::MessageDelivered`].
    MessageDelivered,
    /// [`Event::MessageSent`].
    MessageSent,
    /// [`Event::MessageStored`].
    MessageStored,
    /// [`Event::IqAnswer`].
    IqAnswer,
}

impl Event<'_> {
    /// The point this event is fired at.
    pub fn point(&self) -> HookPoint {
        match self {
            Event::SessionStarted { .. } => HookPoint::SessionStarted,
            Event::SessionEnded { .. } => HookPoint::SessionEnded,
            Event::PresenceChanged { .. } => HookPoint::PresenceChanged,
            Event::MessageDelivered { .. } => HookPoint::MessageDelivered,
            Event::MessageSent { .. } => HookPoint::MessageSent,
            Event::MessageStored { .. } => HookPoint::MessageStored,
            Event::IqAnswer { .. } => HookPoint::IqAnswer,
        }
    }
}

/// Reacts to events.
#[async_trait]
pub trait Hook: Send + Sync {
    /// Called for every event of the points the hook was registered for.
    async fn on(&self, svc: &XmppService, event: &Event<'_>);
}

/// A feature module: registers what it offers once, when the service is built.
pub trait Module: Send + Sync + 'static {
    /// A short name for logs (`ping`, `roster`).
    fn name(&self) -> &'static str;
    /// Adds the module's features, handlers and hooks.
    fn register(self: Arc<Self>, r: &mut Registry);
}

struct IqEntry {
    element: Option<&'static str>,
    dests: Dests,
    module: &'static str,
    handler: Arc<dyn IqHandler>,
}

struct HookEntry {
    priority: i32,
    module: &'static str,
    hook: Arc<dyn Hook>,
}

/// Everything the modules registered; built once per service and read-only afterwards.
#[derive(Default)]
pub struct Registry {
    current: &'static str,
    iq: HashMap<(IqKind, String), Vec<IqEntry>>,
    hooks: HashMap<HookPoint, Vec<HookEntry>>,
    features: Vec<(Scope, &'static str)>,
    identities: Vec<(Scope, Identity)>,
    states: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    components: Vec<Arc<dyn Component>>,
    s2s: Option<Arc<dyn S2sRouter>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("iq_keys", &self.iq.len())
            .field("features", &self.features)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry with `modules` registered in order.
    pub fn new(modules: impl IntoIterator<Item = Arc<dyn Module>>) -> Self {
        let mut r = Self::default();
        for m in modules {
            r.current = m.name();
            m.register(&mut r);
        }
        r.current = "";
        r
    }

    /// Announces a disco#info feature of the server or of every account.
    pub fn feature(&mut self, scope: Scope, var: &'static str) {
        if !self.features.contains(&(scope, var)) {
            self.features.push((scope, var));
        }
    }

    /// Announces a disco#info identity.
    pub fn identity(&mut self, scope: Scope, identity: Identity) {
        self.identities.push((scope, identity));
    }

    /// Handles IQs of `kinds` whose payload is in `ns` (named `element`, or any element when
    /// `None`) addressed to one of `dests`. Among handlers of the same key, the first one
    /// registered whose element and destinations match answers.
    pub fn iq(
        &mut self,
        kinds: &[IqKind],
        ns: &str,
        element: Option<&'static str>,
        dests: Dests,
        handler: Arc<dyn IqHandler>,
    ) {
        for kind in kinds {
            self.iq
                .entry((*kind, ns.to_owned()))
                .or_default()
                .push(IqEntry {
                    element,
                    dests,
                    module: self.current,
                    handler: handler.clone(),
                });
        }
    }

    /// Hooks `hook` into `points` with `priority` (higher runs first).
    pub fn hook(&mut self, points: &[HookPoint], priority: i32, hook: Arc<dyn Hook>) {
        for p in points {
            let list = self.hooks.entry(*p).or_default();
            // After every entry of the same or higher priority: stable by registration.
            let at = list
                .iter()
                .position(|e| e.priority < priority)
                .unwrap_or(list.len());
            list.insert(
                at,
                HookEntry {
                    priority,
                    module: self.current,
                    hook: hook.clone(),
                },
            );
        }
    }

    /// Makes a module's state reachable by its type ([`XmppService::module`]).
    pub fn provide<T: Any + Send + Sync>(&mut self, state: Arc<T>) {
        self.states.insert(TypeId::of::<T>(), state);
    }

    /// Hosts a component on its own sub-domain (e.g. `conference.DOMAIN`).
    pub fn component(&mut self, component: Arc<dyn Component>) {
        self.components.push(component);
    }

    /// Sets the router for remote domains (the last one registered wins).
    pub fn s2s(&mut self, router: Arc<dyn S2sRouter>) {
        self.s2s = Some(router);
    }

    /// The handler for an IQ request, if a module registered one.
    pub(crate) fn iq_handler(
        &self,
        kind: IqKind,
        payload: &Element,
        dest: &Destination,
    ) -> Option<&Arc<dyn IqHandler>> {
        let list = self.iq.get(&(kind, payload.ns()))?;
        list.iter()
            .find(|e| e.element.is_none_or(|n| n == payload.name()) && e.dests.contains(dest))
            .map(|e| {
                tracing::trace!(module = e.module, "IQ handler");
                &e.handler
            })
    }

    /// Runs the hooks of the event's point in order.
    pub(crate) async fn fire(&self, svc: &XmppService, event: &Event<'_>) {
        let Some(list) = self.hooks.get(&event.point()) else {
            return;
        };
        for e in list {
            tracing::trace!(module = e.module, point = ?event.point(), "hook");
            e.hook.on(svc, event).await;
        }
    }

    /// The disco#info features of `scope`, in registration order.
    pub fn features(&self, scope: Scope) -> impl Iterator<Item = &'static str> + '_ {
        self.features
            .iter()
            .filter(move |(s, _)| *s == scope)
            .map(|(_, f)| *f)
    }

    /// The disco#info identities of `scope`, in registration order.
    pub fn identities(&self, scope: Scope) -> impl Iterator<Item = &Identity> + '_ {
        self.identities
            .iter()
            .filter(move |(s, _)| *s == scope)
            .map(|(_, i)| i)
    }

    /// A module's state by type.
    pub(crate) fn state<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.states.get(&TypeId::of::<T>())?.downcast_ref::<T>()
    }

    /// The component hosted on `domain`, if any.
    pub(crate) fn component_for(&self, domain: &str) -> Option<&Arc<dyn Component>> {
        self.components.iter().find(|c| c.domain() == domain)
    }

    /// The router for remote domains.
    pub(crate) fn s2s_router(&self) -> Option<&Arc<dyn S2sRouter>> {
        self.s2s.as_ref()
    }
}
