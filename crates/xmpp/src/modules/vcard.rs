//! XEP-0054: vcard-temp, with the SIP addresses pinned by the server (RFC 7081 §3.1,
//! CUSAX XS-01/XS-03).
//!
//! Every vCard served carries, whatever the user stored, one `<TEL>` per SIP address that
//! routes to the account: the account's own AOR (`<VOICE/><VIDEO/>`, `sip:user@domain`) and
//! one per operator-assigned alias (`<VOICE/>`; SIP aliases as their URI, numbers as
//! `sip:+4930…@domain;user=phone`, RFC 3261 §19.1.6). The rest of the vCard is the user's.
//!
//! Publishing: the pinned entries are stripped before storing (they are regenerated on
//! every read, so they survive every set). A TEL naming a SIP address on a served domain
//! that is not the user's, or a number assigned to another account, makes the whole set
//! fail with `not-acceptable` (rather than being silently dropped), so the client learns
//! that its vCard was not taken. Stored TELs that later come to name another account are
//! left out when the vCard is served. Only the owner can set a vCard (`forbidden`
//! otherwise). Reads are open to authenticated local users only (there is no server-to-
//! server link), which is the SEC-08 policy.

use super::{Destination, IqReply};
use crate::registry::{Dests, IqHandler, IqKind, IqRequest, Module, Registry, Scope};
use crate::service::XmppService;
use async_trait::async_trait;
use cusax_account::{AccountId, Alias, Aor};
use cusax_xmpp_proto::ext::vcard::{Tel, VCard as VCardPayload};
use cusax_xmpp_proto::stanza::StanzaErrorCondition as E;
use minidom::Element;
use std::str::FromStr;
use std::sync::Arc;

pub use cusax_xmpp_proto::ext::vcard::NS;
/// Largest stored vCard, in bytes of XML.
const MAX_VCARD: usize = 64 * 1024;

/// The vcard-temp module.
#[derive(Debug)]
pub struct VCard;

impl Module for VCard {
    fn name(&self) -> &'static str {
        "vcard"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, NS);
        r.iq(IqKind::BOTH, NS, None, Dests::ANY, self);
    }
}

#[async_trait]
impl IqHandler for VCard {
    /// vCard get (own or another local account) and set (own only).
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        handle(req).await
    }
}

async fn handle(req: &IqRequest<'_>) -> IqReply {
    let (svc, session, iq, payload, target) = (req.svc, req.session, req.iq, req.payload, req.dest);
    let Ok(vcard) = VCardPayload::try_from(payload) else {
        return IqReply::Error(E::BadRequest);
    };
    let owner = match target {
        Destination::OwnAccount => session.account.clone(),
        Destination::LocalBare(id) if svc.account_exists(id).await => id.clone(),
        Destination::LocalBare(_) => return IqReply::Error(E::ServiceUnavailable),
        _ => return IqReply::Error(E::ItemNotFound),
    };
    if iq.attr("type") == Some("set") {
        if owner != session.account {
            return IqReply::Error(E::Forbidden);
        }
        return set(svc, &owner, &vcard).await;
    }
    match get(svc, &owner).await {
        Some(v) => IqReply::Result(Some(v)),
        None => IqReply::Error(E::InternalServerError),
    }
}

/// The SIP URIs pinned into an account's vCard: its AOR first, then its aliases.
async fn pinned(svc: &XmppService, owner: &AccountId) -> Option<Vec<(String, bool)>> {
    let aliases = svc.store().aliases(owner).await.ok()?;
    let domain = owner.domain().as_str();
    let mut out = vec![(owner.aor().to_string(), true)];
    out.extend(aliases.iter().map(|a| (a.sip_uri(domain), false)));
    Some(out)
}

fn pinned_tel(uri: &str, video: bool) -> Element {
    Element::from(&Tel {
        voice: true,
        video,
        number: uri.to_owned(),
    })
}

/// What a TEL's NUMBER means for the owner.
enum Claim {
    /// Not a SIP address or number we know: the user's own business.
    Free,
    /// One of the owner's own pinned addresses (stripped, regenerated on read).
    Own,
    /// Another account's address, or an address on a served domain that is not the owner's.
    Foreign,
}

async fn classify(svc: &XmppService, owner: &AccountId, number: &str) -> Claim {
    let Ok(alias) = Alias::parse(number) else {
        return Claim::Free;
    };
    let store = &svc.store();
    let as_number = match &alias {
        Alias::Number(_) => Some(alias.clone()),
        Alias::Sip(aor) => sip_number(svc, aor),
    };
    if let Alias::Sip(aor) = &alias
        && aor.account_id().as_ref() == Some(owner)
    {
        return Claim::Own;
    }
    for a in [Some(alias.clone()), as_number].into_iter().flatten() {
        match store.resolve_alias(&a).await {
            Ok(Some(o)) if &o == owner => return Claim::Own,
            Ok(Some(_)) => return Claim::Foreign,
            Ok(None) => {}
            Err(_) => return Claim::Foreign,
        }
    }
    match &alias {
        Alias::Sip(aor) if svc.serves(aor.host()) => Claim::Foreign,
        _ => Claim::Free,
    }
}

/// `sip:+4930…@served;user=phone` names the number `+4930…`.
fn sip_number(svc: &XmppService, aor: &Aor) -> Option<Alias> {
    if !svc.serves(aor.host()) {
        return None;
    }
    let user = aor.user()?;
    match Alias::parse(&user) {
        Ok(n @ Alias::Number(_)) => Some(n),
        _ => None,
    }
}

/// The number of a field that is a TEL with a NUMBER.
fn tel_number(field: &Element) -> Option<String> {
    Tel::try_from(field).ok().map(|t| t.number)
}

/// The vCard of `owner` as served: stored fields plus the pinned TELs.
async fn get(svc: &XmppService, owner: &AccountId) -> Option<Element> {
    let stored = svc.store().vcard(owner).await.ok()?;
    let stored = stored
        .and_then(|x| Element::from_str(&x).ok())
        .and_then(|v| VCardPayload::try_from(&v).ok());
    let mut out = VCardPayload::default();
    if let Some(v) = stored {
        for c in v.fields {
            if let Some(n) = tel_number(&c)
                && !matches!(classify(svc, owner, &n).await, Claim::Free)
            {
                continue;
            }
            out.fields.push(c);
        }
    }
    for (uri, video) in pinned(svc, owner).await? {
        out.fields.push(pinned_tel(&uri, video));
    }
    Some(Element::from(&out))
}

async fn set(svc: &XmppService, owner: &AccountId, vcard: &VCardPayload) -> IqReply {
    let mut keep = VCardPayload::default();
    for c in &vcard.fields {
        if let Some(n) = tel_number(c) {
            match classify(svc, owner, &n).await {
                Claim::Own => continue,
                Claim::Foreign => return IqReply::Error(E::NotAcceptable),
                Claim::Free => {}
            }
        }
        keep.fields.push(c.clone());
    }
    let mut xml = Vec::new();
    if cusax_xmpp_proto::xml::write_element(&Element::from(&keep), "", &mut xml).is_err() {
        return IqReply::Error(E::BadRequest);
    }
    if xml.len() > MAX_VCARD {
        return IqReply::Error(E::NotAcceptable);
    }
    match svc
        .store()
        .set_vcard(owner, &String::from_utf8_lossy(&xml))
        .await
    {
        Ok(()) => IqReply::Result(None),
        Err(_) => IqReply::Error(E::InternalServerError),
    }
}
