//! XEP-0115 §6.2 and XEP-0163 §4.2 (notification filtering): which PEP nodes each available
//! resource wants, learnt from the `NODE+notify` features of its entity capabilities.
//!
//! When an available presence carries `<c node='…' ver='…'/>` with a `ver` this session has
//! not announced before, the server asks the resource itself for the disco#info of
//! `node#ver` and keeps the `+notify` features of the answer for that session only. The
//! verification string is not checked, so nothing is cached across sessions: every resource
//! is asked once per capability change (at most one question in flight per session).
//!
//! The rule without capabilities (documented in the README): a resource whose presence
//! carries no caps, whose answer was an error, or whose answer has not come yet, gets every
//! notification — XEP-0163 leaves such resources to the service's discretion, and sending
//! beats silently dropping events for simple clients. The last published items that an
//! initial presence asks for wait for the answer, so that they are filtered.

use super::Session;
use crate::service::XmppService;
use crate::stanza;
use cusax_xmpp_proto::ext::caps::EntityCaps;
use cusax_xmpp_proto::ext::disco::{DiscoInfo, DiscoQuery};
use cusax_xmpp_proto::ns;
use minidom::Element;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use cusax_xmpp_proto::ext::caps::NS;
/// Prefix of the ids of the server's disco#info questions.
const ID_PREFIX: &str = "cusax-caps-";

/// What is known of one session's interests.
#[derive(Debug)]
enum Interest {
    /// No capabilities announced (or the question failed): every notification.
    Unfiltered,
    /// Asked `iq_id` about `ver`; `deferred`: the last items of an initial presence wait.
    Asking {
        ver: String,
        iq_id: String,
        deferred: bool,
    },
    /// The `+notify` nodes of the announced `ver`.
    Known { ver: String, nodes: HashSet<String> },
}

/// Interests of the sessions that sent available presence, by router session id.
#[derive(Debug, Default)]
pub(crate) struct Caps {
    sessions: Mutex<HashMap<u64, Interest>>,
    next_id: AtomicU64,
}

impl Caps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Interest>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether session `id` wants notifications of `node` (see the module rule).
    pub(crate) fn wants(&self, id: u64, node: &str) -> bool {
        match self.lock().get(&id) {
            Some(Interest::Known { nodes, .. }) => nodes.contains(node),
            _ => true,
        }
    }

    /// Forgets a session that ended.
    pub(crate) fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }
}

/// The `+notify` nodes listed in a disco#info answer.
fn notify_nodes(query: &Element) -> HashSet<String> {
    let Ok(info) = DiscoInfo::try_from(query) else {
        return HashSet::new();
    };
    info.features
        .iter()
        .filter_map(|f| f.strip_suffix("+notify").map(str::to_owned))
        .collect()
}

/// What an available presence means for the session's interests.
pub(crate) enum Announce {
    /// Interests are known (or unfiltered): initial presence may get its last items now.
    Ready,
    /// A question went out (or is out); the answer brings the last items if `deferred`.
    Waiting,
}

/// Records the caps of an available presence; asks the resource when they are new.
/// `initial`: the first available presence of the session, which wants the last items.
pub(crate) fn on_presence(
    svc: &XmppService,
    session: &Session,
    presence: &Element,
    initial: bool,
) -> Announce {
    // Caps without node or ver are as none.
    let caps = presence
        .get_child("c", NS)
        .and_then(|c| EntityCaps::try_from(c).ok());
    let caps_state = &super::pep::state(svc).caps;
    let mut map = caps_state.lock();
    let Some(caps) = caps else {
        map.insert(session.id, Interest::Unfiltered);
        return Announce::Ready;
    };
    match map.get_mut(&session.id) {
        Some(Interest::Known { ver: v, .. }) if *v == caps.ver => return Announce::Ready,
        Some(Interest::Asking {
            ver: v, deferred, ..
        }) if *v == caps.ver => {
            *deferred |= initial;
            return Announce::Waiting;
        }
        _ => {}
    }
    let n = caps_state.next_id.fetch_add(1, Ordering::Relaxed);
    let iq_id = format!("{ID_PREFIX}{n}");
    map.insert(
        session.id,
        Interest::Asking {
            ver: caps.ver.clone(),
            iq_id: iq_id.clone(),
            deferred: initial,
        },
    );
    drop(map);
    let domain = session.account.domain().as_str();
    let mut iq = stanza::stanza(
        "iq",
        &[
            ("type", "get"),
            ("id", &iq_id),
            ("from", domain),
            ("to", session.full.as_str()),
        ],
    );
    iq.append_child(Element::from(&DiscoQuery {
        info: true,
        node: Some(caps.disco_node()),
    }));
    svc.reply(session, iq);
    Announce::Waiting
}

/// An IQ result or error addressed to the server: the answer to a caps question, if it is
/// one. Returns whether the answering session now wants its deferred last items.
pub(crate) fn on_answer(svc: &XmppService, session: &Session, iq: &Element) -> bool {
    let Some(id) = iq.attr("id").filter(|i| i.starts_with(ID_PREFIX)) else {
        return false;
    };
    let mut map = super::pep::state(svc).caps.lock();
    let Some(Interest::Asking {
        ver,
        iq_id,
        deferred,
    }) = map.get(&session.id)
    else {
        return false;
    };
    if iq_id != id {
        return false; // an answer to an older question
    }
    let deferred = *deferred;
    let query = iq
        .get_child("query", super::disco::NS_INFO)
        .filter(|_| iq.attr("type") == Some("result"));
    let next = match query {
        Some(q) => Interest::Known {
            ver: ver.clone(),
            nodes: notify_nodes(q),
        },
        None => Interest::Unfiltered,
    };
    if let Interest::Known { nodes, .. } = &next {
        tracing::debug!(jid = %session.full, ?nodes, "PEP notifications filtered by caps");
    } else {
        tracing::debug!(jid = %session.full, "no caps answer: PEP notifications unfiltered");
    }
    map.insert(session.id, next);
    deferred
}

/// Whether a stanza is a caps question of ours (for tests and logs).
pub fn is_caps_query(el: &Element) -> bool {
    el.name() == "iq"
        && el.ns() == ns::JABBER_CLIENT
        && el.attr("id").is_some_and(|i| i.starts_with(ID_PREFIX))
}
