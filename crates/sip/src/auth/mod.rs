//! RFC 3261 §22, RFC 7616, RFC 8760: digest authentication, in one place for both roles —
//! the registrar's `Authorization` (401, `WWW-Authenticate`) and the proxy's
//! `Proxy-Authorization` of local callers (407, `Proxy-Authenticate`, §22.3) — against the
//! stored HA1 of the account, with nonces bound to the client's address and nonce-counts
//! remembered against replays.
//!
//! Choices the RFC leaves open, made here:
//! - The realm is the served domain; the digest username is the account's user.
//! - A wrong password and an unknown user get the same fresh challenge, after the same
//!   digest work (no enumeration); a locked account gets 403, but only after a correct
//!   password.
//! - The digest `uri` must name the Request-URI's resource ([`digest_uri`]).
//! - A replayed nonce-count with a valid response is a retransmission for the registrar
//!   (answered without changing anything), a failure for the proxy.

mod digest_uri;

use crate::accounts::{Accounts, CachedAccount, Lookup};
use crate::context::Context;
use crate::types::{Outcome, Peer};
use cusax_account::{Aor, Domain};
use cusax_sip_proto::Request;
use cusax_sip_proto::digest::{
    self, Algorithm, DigestConfig, DigestError, NonceCounts, NonceKey, Verified,
};
use cusax_sip_proto::message::headers::Credentials;
use cusax_sip_proto::message::uri::Scheme;
use std::sync::{Arc, Mutex};

/// Which header pair a challenge and its answer use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `WWW-Authenticate` / `Authorization`, 401.
    Registrar,
    /// `Proxy-Authenticate` / `Proxy-Authorization`, 407.
    Proxy,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Registrar => "registrar",
            Role::Proxy => "proxy",
        }
    }

    fn malformed(self) -> &'static str {
        match self {
            Role::Registrar => "Malformed Authorization",
            Role::Proxy => "Malformed Proxy-Authorization",
        }
    }
}

/// A REGISTER whose credentials check out.
pub(crate) struct Registration {
    /// The authenticated account (not locked).
    pub(crate) account: Arc<CachedAccount>,
    /// False for a replayed nonce-count with a valid response: a retransmission, which must
    /// change nothing.
    pub(crate) fresh: bool,
}

/// Digest verification and challenges, and the nonce state behind them.
pub(crate) struct Auth {
    ctx: Arc<Context>,
    accounts: Arc<Accounts>,
    digest: DigestConfig,
    key: NonceKey,
    counts: Mutex<NonceCounts>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

fn auth_failed() {
    metrics::counter!("cusax_auth_failures_total", "protocol" => "sip").increment(1);
}

impl Auth {
    pub(crate) fn new(ctx: Arc<Context>, accounts: Arc<Accounts>, secret: [u8; 32]) -> Self {
        let cfg = &ctx.cfg;
        let digest = DigestConfig {
            algorithms: cfg.algorithms.clone(),
            nonce_ttl_secs: cfg.nonce_ttl_secs,
            allow_rfc2069: true,
        };
        Self {
            counts: Mutex::new(NonceCounts::new(cfg.nonce_slots)),
            key: NonceKey::new(secret),
            digest,
            accounts,
            ctx,
        }
    }

    /// §10.3 steps 1–3 for a REGISTER of `to_aor` in `realm`: credentials, digest `uri`, the
    /// account, the digest itself and the lock. `Err` is the answer to send.
    pub(crate) fn registration(
        &self,
        now: i64,
        req: &Request,
        peer: &Peer,
        realm: &Domain,
        to_aor: &Aor,
    ) -> Result<Registration, Outcome> {
        let role = Role::Registrar;
        let Some(creds) = req.digest_credentials(realm.as_str().as_bytes(), false) else {
            return Err(self.challenge(now, req, peer, realm, false, role));
        };
        // Before the account lookup, so that the answer does not depend on the user existing.
        // The AOR being registered identifies the registration itself (some phones put it
        // there); another user's AOR does not.
        let own_aor = || {
            creds
                .uri
                .and_then(|u| std::str::from_utf8(u).ok())
                .and_then(|u| Aor::parse(u).ok())
                .is_some_and(|a| &a == to_aor)
        };
        if !self.digest_uri_ok(req, &creds) && !own_aor() {
            return Err(self.refuse_digest_uri(req, peer, role.name()));
        }
        let acct = self.account(now, req, peer, &creds, realm, role)?;
        let fresh = self.check_digest(now, req, peer, &creds, realm, &acct, role)?;
        if acct.locked {
            tracing::info!(protocol = "sip", account = %acct.id, peer = %peer.addr, method = "REGISTER", reason = "locked", "authentication refused");
            return Err(self.ctx.simple(req, peer, 403, "Account Locked"));
        }
        Ok(Registration {
            account: acct,
            fresh,
        })
    }

    /// §22.3: a request whose From names a served domain must carry Proxy-Authorization for
    /// the account owning that From AOR. `Ok(None)` for callers from other domains.
    ///
    /// With `verify` false everything but the digest check runs (so that loads from the
    /// store happen before the nonce-count is consumed: a request handled again after a load
    /// must not look like a replay of itself).
    pub(crate) fn caller(
        &self,
        now: i64,
        req: &Request,
        peer: &Peer,
        verify: bool,
    ) -> Result<Option<Arc<CachedAccount>>, Outcome> {
        let role = Role::Proxy;
        let Ok(from) = req.from_addr() else {
            return Err(self.ctx.simple(req, peer, 400, "Malformed From"));
        };
        let uri = from.uri();
        if !matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) {
            return Ok(None);
        }
        let Some(realm) = uri
            .host()
            .and_then(|h| self.ctx.served(h.as_bytes()))
            .cloned()
        else {
            return Ok(None);
        };
        let Some(creds) = req.digest_credentials(realm.as_str().as_bytes(), true) else {
            return Err(self.challenge(now, req, peer, &realm, false, role));
        };
        if !self.digest_uri_ok(req, &creds) {
            return Err(self.refuse_digest_uri(req, peer, role.name()));
        }
        let acct = self.account(now, req, peer, &creds, &realm, role)?;
        if !verify {
            return Ok(Some(acct));
        }
        self.check_digest(now, req, peer, &creds, &realm, &acct, role)?;
        if acct.locked {
            tracing::info!(protocol = "sip", account = %acct.id, peer = %peer.addr, reason = "locked", "authentication refused");
            return Err(self.ctx.simple(req, peer, 403, "Account Locked"));
        }
        let from_text = std::str::from_utf8(uri.as_bytes()).unwrap_or_default();
        let owns = Aor::parse(from_text).is_ok_and(|a| acct.owns(&a));
        if !owns {
            tracing::info!(protocol = "sip", account = %acct.id, peer = %peer.addr, from = from_text, reason = "From not owned", "authentication refused");
            return Err(self
                .ctx
                .simple(req, peer, 403, "From Does Not Match Account"));
        }
        tracing::info!(protocol = "sip", account = %acct.id, peer = %peer.addr, method = %String::from_utf8_lossy(req.method_bytes()), call_id = %String::from_utf8_lossy(req.call_id().unwrap_or_default()), "authenticated");
        Ok(Some(acct))
    }

    /// The account the credentials' username names, from the cache. An unknown user costs
    /// the same digest work and gets the same challenge as a wrong password.
    fn account(
        &self,
        now: i64,
        req: &Request,
        peer: &Peer,
        creds: &Credentials<'_>,
        realm: &Domain,
        role: Role,
    ) -> Result<Arc<CachedAccount>, Outcome> {
        let Some(user_bytes) = creds.username() else {
            return Err(self.ctx.simple(req, peer, 400, role.malformed()));
        };
        let Ok(user) = std::str::from_utf8(&user_bytes) else {
            return Err(self.challenge(now, req, peer, realm, false, role));
        };
        match self.accounts.get(user, realm.as_str()) {
            Lookup::Hit(a) => Ok(a),
            Lookup::Miss => Err(Outcome::NeedAccount {
                user: user.to_owned(),
                realm: realm.clone(),
            }),
            Lookup::Unknown => {
                tracing::info!(protocol = "sip", account = %format_args!("{user}@{realm}"), peer = %peer.addr, method = %String::from_utf8_lossy(req.method_bytes()), reason = "unknown account", "authentication failed");
                auth_failed();
                // Same work and same answer as a wrong password: existence does not show.
                let _ = self.verify(now, req, peer, creds, realm, None);
                Err(self.challenge(now, req, peer, realm, false, role))
            }
        }
    }

    /// The digest response against the account's HA1: `Ok(true)` verified, `Ok(false)` a
    /// replay the registrar treats as a retransmission.
    #[allow(clippy::too_many_arguments)]
    fn check_digest(
        &self,
        now: i64,
        req: &Request,
        peer: &Peer,
        creds: &Credentials<'_>,
        realm: &Domain,
        acct: &CachedAccount,
        role: Role,
    ) -> Result<bool, Outcome> {
        let alg = match creds.algorithm {
            None => Some(Algorithm::Md5),
            Some(t) => Algorithm::from_token(t),
        };
        let ha1 = alg.and_then(|a| acct.ha1(a));
        match self.verify(now, req, peer, creds, realm, ha1) {
            Ok(Verified::Ok) => Ok(true),
            Ok(Verified::Stale) => Err(self.challenge(now, req, peer, realm, true, role)),
            Err(DigestError::Replay) if role == Role::Registrar => Ok(false),
            Err(DigestError::Malformed) => Err(self.ctx.simple(req, peer, 400, role.malformed())),
            Err(e) => {
                tracing::info!(protocol = "sip", account = %acct.id, peer = %peer.addr, method = %String::from_utf8_lossy(req.method_bytes()), reason = %e, "authentication failed");
                auth_failed();
                Err(self.challenge(now, req, peer, realm, false, role))
            }
        }
    }

    fn verify(
        &self,
        now: i64,
        req: &Request,
        peer: &Peer,
        creds: &Credentials<'_>,
        realm: &Domain,
        ha1: Option<&str>,
    ) -> Result<Verified, DigestError> {
        const DUMMY: &str = "0000000000000000000000000000000000000000000000000000000000000000";
        let (pb, n) = peer.nonce_binding();
        let ha1 = ha1.unwrap_or(DUMMY);
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        digest::verify(
            &self.digest,
            &self.key,
            &mut counts,
            creds,
            realm.as_str().as_bytes(),
            req.method_bytes(),
            ha1.as_bytes(),
            &pb[..n],
            u64::try_from(now).unwrap_or(0),
        )
    }

    /// A 401 (registrar) or 407 (proxy, §22.3) with one challenge per configured algorithm.
    fn challenge(
        &self,
        now: i64,
        req: &Request,
        peer: &Peer,
        realm: &Domain,
        stale: bool,
        role: Role,
    ) -> Outcome {
        let (pb, n) = peer.nonce_binding();
        let challenges = digest::challenges(
            &self.digest,
            &self.key,
            realm.as_str().as_bytes(),
            &pb[..n],
            u64::try_from(now).unwrap_or(0),
            stale,
        );
        let (code, reason, header) = match role {
            Role::Proxy => (407, "Proxy Authentication Required", "Proxy-Authenticate"),
            Role::Registrar => (401, "Unauthorized", "WWW-Authenticate"),
        };
        let mut r = self.ctx.response(req, peer, code, reason);
        for c in &challenges {
            r = r.header(header, c);
        }
        Outcome::Respond(r.build())
    }
}
