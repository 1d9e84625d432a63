//! RFC 3261 §8.2 and §16: what the SIP element does with a request: REGISTER goes to the
//! registrar, everything else to the proxy (which answers OPTIONS to itself locally).
//!
//! [`SipCore`] is the thin composition of the components, each with its own state:
//! [`Registrar`] (REGISTER, the location service, GRUUs), [`Proxy`] (transactions,
//! forwarding, calls), [`Auth`] (digest challenges and verification for both) and
//! [`Accounts`] (the account and alias cache), over a shared read-only [`Context`].

use crate::accounts::{AccountSource, Accounts, Lookup};
use crate::auth::Auth;
use crate::calls::Calls;
use crate::config::RegistrarConfig;
use crate::context::Context;
use crate::location::Location;
use crate::proxy::Proxy;
use crate::registrar::Registrar;
use crate::types::{Outcome, Peer, Send, Transport};
use bytes::BytesMut;
use cusax_account::{AccountId, Domain};
use cusax_sip_proto::error::Invalid;
use cusax_sip_proto::{Method, Request, Response, SipMessage};
use cusax_store::{Change, ChangeKind, StoreError};
use std::sync::Arc;
use std::time::Instant;

/// The SIP service: registrar, location service and proxy, over the account store.
pub struct SipCore {
    ctx: Arc<Context>,
    accounts: Arc<Accounts>,
    registrar: Registrar,
    proxy: Proxy,
}

impl std::fmt::Debug for SipCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCore")
            .field("domains", &self.ctx.cfg.domains)
            .finish_non_exhaustive()
    }
}

impl SipCore {
    /// A core with a fresh random nonce secret.
    pub fn new(cfg: RegistrarConfig, store: Arc<dyn AccountSource>) -> Self {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let mut tag = [0u8; 8];
        rand::fill(&mut tag);
        Self::with_secret(cfg, store, secret, tag)
    }

    /// A core with a given nonce secret and To-tag seed (tests; clusters sharing nonces).
    pub fn with_secret(
        cfg: RegistrarConfig,
        store: Arc<dyn AccountSource>,
        secret: [u8; 32],
        tag_seed: [u8; 8],
    ) -> Self {
        let accounts = Arc::new(Accounts::new(cfg.cache_capacity, store));
        let ctx = Arc::new(Context::new(cfg, tag_seed));
        let auth = Arc::new(Auth::new(ctx.clone(), accounts.clone(), secret));
        Self {
            registrar: Registrar::new(ctx.clone(), auth.clone(), secret),
            proxy: Proxy::new(ctx.clone(), auth, accounts.clone(), secret),
            accounts,
            ctx,
        }
    }

    /// Publishes binding changes (the location service) and call states (the proxy) on
    /// `bus`, the server's cluster bus; without it, bindings are not announced and call
    /// states go to a bus of the core's own that [`crate::calls::Calls::subscribe`] reads.
    pub fn with_bus(mut self, bus: Arc<dyn cusax_bus::Bus>) -> Self {
        self.registrar.set_bus(bus.clone());
        self.proxy.set_bus(bus);
        self
    }

    /// Calls in progress and their events ("on the phone", XEP-0108 and requirement CL-32).
    pub fn calls(&self) -> &Calls {
        self.proxy.calls()
    }

    /// The in-memory location service (for loading at start, flushing and sweeping).
    pub fn location(&self) -> &Location {
        self.registrar.location()
    }

    /// Handles one request at `now` (Unix seconds). Never blocks and never touches the store.
    pub fn handle(&self, now: i64, req: &Request, peer: &Peer) -> Outcome {
        match req.method() {
            Method::Register
                if !self.ctx.cfg.proxy.tls_required || peer.transport == Transport::Tls =>
            {
                self.registrar.register(now, req, peer)
            }
            Method::Register => self.ctx.simple(req, peer, 403, "TLS Required"),
            _ => self.proxy.request(&self.registrar, now, req, peer),
        }
    }

    /// Handles one response from a downstream element (RFC 3261 §16.7).
    pub fn handle_response(&self, resp: &Response, peer: &Peer) -> Vec<Send> {
        self.proxy.handle_response(resp, peer)
    }

    /// The earliest transaction timer, for the server's timer task.
    pub fn next_timer(&self) -> Option<Instant> {
        self.proxy.next_timer()
    }

    /// Fires due transaction timers: retransmissions, timeouts, clean-up.
    pub fn tick(&self, now: Instant) -> Vec<Send> {
        self.proxy.tick(now)
    }

    /// A transport could not deliver to `dest` (connection refused, flow gone): every client
    /// transaction towards it fails now instead of at timer B/F (RFC 3261 §16.7 step 9).
    pub fn transport_failed(&self, dest: &crate::types::Dest) -> Vec<Send> {
        self.proxy.transport_failed(dest)
    }

    /// Transaction counts (server, client).
    pub fn transaction_counts(&self) -> (usize, usize) {
        self.proxy.transaction_counts()
    }

    /// Whether the server transaction table holds anything (tests).
    pub fn is_idle(&self) -> bool {
        self.proxy.is_idle()
    }

    /// Builds the answer to a request that failed validation, if it can be routed back
    /// (RFC 3261 §8.2.6, §21.4.1): the status and precise reason of the parse error.
    pub fn answer_invalid(&self, bad: &Invalid, peer: &Peer) -> Option<BytesMut> {
        if !bad.routable() {
            return None;
        }
        let SipMessage::Request(req) = &*bad.message else {
            return None;
        };
        if req.method() == Method::Ack {
            return None;
        }
        Some(
            self.ctx
                .response(
                    req,
                    peer,
                    bad.error.status_code(),
                    bad.error.reason_phrase(),
                )
                .build(),
        )
    }

    /// Loads an account into the cache after [`Outcome::NeedAccount`].
    pub async fn load_account(&self, user: &str, realm: &Domain) -> Result<(), StoreError> {
        self.accounts.load_account(user, realm).await
    }

    /// Resolves an alias into the cache after [`Outcome::NeedAlias`].
    pub async fn load_alias(
        &self,
        alias: &cusax_account::Alias,
        realm: &Domain,
    ) -> Result<(), StoreError> {
        self.accounts.load_alias(alias, realm).await
    }

    /// Reacts to an account change from the store's change feed: the next request reloads the
    /// account; a deleted account loses its bindings, and so does a locked one (RFC 7081
    /// §3.2: a lock applies to both protocols at once).
    pub fn on_change(&self, change: &Change) {
        let gone = matches!(change.kind, ChangeKind::Deleted | ChangeKind::Locked);
        if gone {
            // The cached account still knows its aliases: their bindings go too.
            let id = &change.account;
            let cached = match self.accounts.get(id.user(), id.domain().as_str()) {
                Lookup::Hit(acct) => Some(acct),
                Lookup::Miss | Lookup::Unknown => None,
            };
            self.registrar.remove_account(id, cached.as_deref());
        }
        self.accounts.invalidate(&change.account);
        self.accounts.clear_aliases();
    }

    /// The change feed lost events: forget every cached account.
    pub fn on_changes_lost(&self) {
        self.accounts.clear();
    }

    /// Forgets one cached account (tests, admin tools in the same process).
    pub fn invalidate(&self, id: &AccountId) {
        self.accounts.invalidate(id);
    }
}
