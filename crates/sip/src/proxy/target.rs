//! RFC 3261 §16.4–§16.5 and RFC 3263 §4: route information processing and target
//! determination — our own Route entries, in-dialog flows, the callee's bindings (with its
//! aliases, q-value groups and Path) and where each target's bytes go.

use crate::accounts::{Accounts, CachedAccount, Lookup};
use crate::config::NatTraversal;
use crate::context::Context;
use crate::registrar::Registrar;
use crate::types::{Dest, NextHop, Outcome, Peer, Transport};
use cusax_account::{Alias, Aor, Domain};
use cusax_sip_proto::Request;
use cusax_sip_proto::message::uri::{Scheme, Uri};
use std::collections::VecDeque;
use std::sync::Arc;

/// One target of a request: the Request-URI to use, where to send, and Path routes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) ruri: String,
    pub(crate) dest: Dest,
    pub(crate) routes: Vec<String>,
}

/// Serial groups of parallel targets, and the local account they belong to.
pub(crate) type Targets = (VecDeque<Vec<Target>>, Option<cusax_account::AccountId>);

fn is_phone_number(user: &str) -> bool {
    let digits = user.strip_prefix('+').unwrap_or(user);
    !digits.is_empty()
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'(' | b')'))
}

/// What target determination reads: the configuration, the account cache and the location
/// service.
pub(super) struct Finder<'a> {
    pub(super) ctx: &'a Context,
    pub(super) accounts: &'a Accounts,
    pub(super) reg: &'a Registrar,
}

impl Finder<'_> {
    /// The account owning the Request-URI (own AOR, SIP alias or number alias) and its
    /// bindings as serial groups of parallel targets (§16.5, RFC 3261 §16.6 with q-values).
    /// `Ok(None)`: not a served domain.
    pub(super) fn local_targets(
        &self,
        now: i64,
        req: &Request,
        peer: &Peer,
        ruri: &Uri<'_>,
    ) -> Result<Option<Targets>, Outcome> {
        let Some((user, realm)) = self.callee_user(req, peer, ruri)? else {
            return Ok(None);
        };
        let unavailable = || self.ctx.simple(req, peer, 480, "Temporarily Unavailable");
        let policy = self.ctx.cfg.proxy.nat_traversal;
        let gr = ruri.gr().map(|g| String::from_utf8_lossy(g).into_owned());
        if gr.is_some()
            && let Some((aor, instance)) = self.reg.resolve_temp_gruu(&user)
        {
            // A temporary GRUU: exactly the device that registered the instance (RFC 5627 §5.1).
            let found = instance_targets(self.reg, now, &aor, &instance, policy);
            if found.is_empty() {
                return Err(unavailable());
            }
            return Ok(Some((VecDeque::from([found]), aor.account_id())));
        }
        let acct = self.callee_account(req, peer, &user, &realm)?;
        if acct.locked {
            return Err(unavailable());
        }
        let mut bindings = account_bindings(self.reg, &acct, now);
        if let Some(gr) = gr.filter(|g| !g.is_empty()) {
            // RFC 5627 §5.1: a GRUU reaches exactly the device of that instance.
            bindings.retain(|b| b.instance.as_deref().is_some_and(|i| gr_matches(i, &gr)));
        }
        if bindings.is_empty() {
            return Err(unavailable());
        }
        let groups = q_groups(bindings, policy);
        if groups.is_empty() {
            return Err(unavailable());
        }
        Ok(Some((groups, Some(acct.id.clone()))))
    }

    /// The user part and served domain the Request-URI names: `tel:+4930123` is the number
    /// alias in the first served domain. `Ok(None)`: not a served domain.
    fn callee_user(
        &self,
        req: &Request,
        peer: &Peer,
        ruri: &Uri<'_>,
    ) -> Result<Option<(String, Domain)>, Outcome> {
        if ruri.scheme() == Scheme::Tel {
            let text = std::str::from_utf8(ruri.as_bytes()).unwrap_or_default();
            let num = text
                .get(4..)
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
            return Ok(self.ctx.cfg.domains.first().map(|d| (num, d.clone())));
        }
        let Some(host) = ruri.host() else {
            return Ok(None);
        };
        let Some(realm) = self.ctx.served(host.as_bytes()) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(ruri.as_bytes()).unwrap_or_default();
        let Ok(aor) = Aor::parse(text) else {
            return Err(self.ctx.simple(req, peer, 404, "Not Found"));
        };
        let Some(user) = aor.user() else {
            return Err(self.ctx.simple(req, peer, 404, "Not Found"));
        };
        Ok(Some((user, realm.clone())))
    }

    /// Finds the account a user part names: the account itself, or an alias of one.
    fn callee_account(
        &self,
        req: &Request,
        peer: &Peer,
        user: &str,
        realm: &Domain,
    ) -> Result<Arc<CachedAccount>, Outcome> {
        match self.accounts.get(user, realm.as_str()) {
            Lookup::Hit(a) => return Ok(a),
            Lookup::Miss => {
                return Err(Outcome::NeedAccount {
                    user: user.to_owned(),
                    realm: realm.clone(),
                });
            }
            Lookup::Unknown => {}
        }
        let alias = if is_phone_number(user) {
            Alias::parse(user).ok()
        } else {
            Aor::parse(&format!("sip:{user}@{}", realm.as_str()))
                .ok()
                .map(Alias::Sip)
        };
        let Some(alias) = alias else {
            return Err(self.ctx.simple(req, peer, 404, "Not Found"));
        };
        match self.accounts.alias(alias.as_str(), realm.as_str()) {
            None => Err(Outcome::NeedAlias {
                alias,
                realm: realm.clone(),
            }),
            Some(None) => Err(self.ctx.simple(req, peer, 404, "Not Found")),
            Some(Some(owner)) => match self.accounts.get(&owner, realm.as_str()) {
                Lookup::Hit(a) => Ok(a),
                Lookup::Miss => Err(Outcome::NeedAccount {
                    user: owner,
                    realm: realm.clone(),
                }),
                Lookup::Unknown => Err(self.ctx.simple(req, peer, 404, "Not Found")),
            },
        }
    }
}

/// The unexpired bindings of `aor` registered by device `instance`, as parallel targets.
fn instance_targets(
    reg: &Registrar,
    now: i64,
    aor: &Aor,
    instance: &str,
    policy: NatTraversal,
) -> Vec<Target> {
    reg.location().read(aor, |list| {
        list.iter()
            .filter(|b| b.expires_at > now && b.instance.as_deref() == Some(instance))
            .filter_map(|b| binding_target(b, policy))
            .collect()
    })
}

/// The unexpired bindings of every AOR of `acct`: its own, its SIP aliases and its numbers.
fn account_bindings(reg: &Registrar, acct: &CachedAccount, now: i64) -> Vec<cusax_store::Binding> {
    let domain = acct.id.domain().as_str();
    let mut aors: Vec<Aor> = acct.aors.clone();
    for n in &acct.numbers {
        if let Ok(a) = Aor::parse(&format!("sip:{n}@{domain}")) {
            aors.push(a);
        }
    }
    let mut bindings = Vec::new();
    for aor in &aors {
        reg.location().read(aor, |list| {
            bindings.extend(list.iter().filter(|b| b.expires_at > now).cloned());
        });
    }
    bindings
}

/// Highest q first; equal q in parallel (RFC 3261 §16.6, "q-value" serial search). Bindings
/// that cannot be reached are left out.
fn q_groups(
    mut bindings: Vec<cusax_store::Binding>,
    policy: NatTraversal,
) -> VecDeque<Vec<Target>> {
    bindings.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(1000)));
    let mut groups: VecDeque<Vec<Target>> = VecDeque::new();
    let mut last_q = None;
    for b in bindings {
        let q = b.q.unwrap_or(1000);
        let Some(target) = binding_target(&b, policy) else {
            continue;
        };
        if last_q == Some(q)
            && let Some(g) = groups.back_mut()
        {
            g.push(target);
        } else {
            groups.push_back(vec![target]);
        }
        last_q = Some(q);
    }
    groups
}

/// Where a binding is reached: its Path; else, when `policy` says so for this binding (see
/// [`crate::nat::use_flow`]), the flow it registered over (the source address and transport
/// of the REGISTER, RFC 5626 §5.3 / RFC 3581); else its Contact (RFC 3261 §16.5).
fn binding_target(b: &cusax_store::Binding, policy: NatTraversal) -> Option<Target> {
    let contact = Uri::parse(b.contact.as_bytes())?;
    if let Some(first) = b.path.first() {
        let na = cusax_sip_proto::message::headers::NameAddr::parse(first.as_bytes())?;
        return Some(Target {
            ruri: b.contact.clone(),
            dest: Dest::from_uri(&na.uri())?,
            routes: b.path.clone(),
        });
    }
    let transport = Transport::from_name(b.transport.as_bytes()).unwrap_or(Transport::Udp);
    let dest = match b.source {
        Some(addr) if crate::nat::use_flow(b, policy) => Dest {
            transport,
            hop: NextHop::Addr(addr),
        },
        _ => Dest::from_uri(&contact)?,
    };
    Some(Target {
        ruri: b.contact.clone(),
        dest,
        routes: Vec::new(),
    })
}

/// `gr` names the instance as `urn:uuid:…` (RFC 5627 §3.2); compare without quoting.
fn gr_matches(instance: &str, gr: &str) -> bool {
    instance.eq_ignore_ascii_case(gr)
}
