//! XEP-0191 (Blocking Command) end to end: slixmpp clients with the `xep_0191` plugin against
//! a running `cusaxd` (`tests/slixmpp/peer.py blocking`). alice, online with two resources,
//! blocks bob: the push reaches both resources, the block list names bob, bob sees alice go
//! unavailable (§3.3), bob's message gets `service-unavailable`, and none of his stanzas — a
//! message to her bare or full JID, a presence broadcast, a directed presence — reaches her
//! before a later control message from carol, which does; alice's own message to bob gets
//! `not-acceptable` with `<blocked/>`. Unblocking is pushed too, bob gets alice's presence
//! again (§3.4) and his message and presence reach her.

use cusax_testkit::{Cusaxd, run_slixmpp_peer};

const DOMAIN: &str = "example.test";

#[test]
fn block_stops_messages_and_presence_and_unblock_restores_them() {
    let srv = Cusaxd::start(DOMAIN);
    srv.import_users(
        DOMAIN,
        &[
            ("alice", "pw-alice"),
            ("bob", "pw-bob"),
            ("carol", "pw-carol"),
        ],
    );
    let out = run_slixmpp_peer(
        &srv,
        DOMAIN,
        "blocking",
        &[
            ("alice@example.test", "pw-alice"),
            ("bob@example.test", "pw-bob"),
            ("carol@example.test", "pw-carol"),
        ],
    );
    for fact in [
        "presence both ways, block list empty",
        "block pushed to both resources",
        "block list: ['bob@example.test']",
        "bob saw alice unavailable",
        "bob's message refused: service-unavailable",
        "alice's message refused: not-acceptable with <blocked/>",
        "nothing from bob reached alice; carol's control message did",
        "unblock pushed to both resources",
        "bob got alice's presence again",
        "delivery restored: message and presence",
    ] {
        assert!(out.lines().any(|l| l == fact), "missing {fact:?} in\n{out}");
    }
}
