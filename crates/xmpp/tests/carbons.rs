//! XEP-0280 through the service's stanza handling (no sockets): a resource enables carbons
//! for itself (§4) and disables them (§5); what one resource sends reaches the user's other
//! enabled resources as a `<sent/>` copy (§6.4), what the user receives reaches the enabled
//! resources that did not get the original as a `<received/>` copy (§6.3), from the bare JID
//! to the full JID; `<private/>` and `<no-copy/>` messages are not copied (§7), and the
//! `<private/>` element stays in the delivered message.

mod common;

use common::*;
use cusax_xmpp::Inbox;
use cusax_xmpp::modules::{self, Session, carbons::Carbons};
use minidom::Element;

const NS: &str = "urn:xmpp:carbons:2";
const FORWARD: &str = "urn:xmpp:forward:0";
const CLIENT: &str = "jabber:client";

async fn set(w: &World, s: &Session, inbox: &Inbox, what: &str) {
    let iq = format!("<iq xmlns='{CLIENT}' type='set' id='{what}1'><{what} xmlns='{NS}'/></iq>");
    let answer = w.ask(s, inbox, &iq).await;
    assert_eq!(answer.attr("type"), Some("result"), "{what}: {answer:?}");
}

/// The message inside a copy of `kind` (`sent`, `received`) for alice's `resource`, checking
/// the wrapper's addresses (from the bare JID, to the full JID).
fn copied<'a>(el: &'a Element, kind: &str, resource: &str) -> &'a Element {
    assert_eq!(el.name(), "message", "{el:?}");
    assert_eq!(el.attr("from"), Some(jid("alice").as_str()));
    let to = format!("{}/{resource}", jid("alice"));
    assert_eq!(el.attr("to"), Some(to.as_str()));
    el.get_child(kind, NS)
        .and_then(|k| k.get_child("forwarded", FORWARD))
        .and_then(|f| f.get_child("message", CLIENT))
        .unwrap_or_else(|| panic!("not a {kind} copy: {el:?}"))
}

fn body(el: &Element) -> String {
    el.get_child("body", CLIENT)
        .map(Element::text)
        .unwrap_or_default()
}

fn chat(to: &str, text: &str, extra: &str) -> String {
    format!("<message xmlns='{CLIENT}' to='{to}' type='chat'><body>{text}</body>{extra}</message>")
}

#[tokio::test]
async fn sent_and_received_copies_reach_the_other_enabled_resources() {
    let w = world(&["alice", "bob"]).await;
    let (a1, a1_in) = w.online("alice", "one", None).await;
    let (a2, a2_in) = w.online("alice", "two", None).await;
    let (_a3, a3_in) = w.online("alice", "plain", None).await;
    let (b, b_in) = w.online("bob", "b", None).await;
    set(&w, &a1, &a1_in, "enable").await;
    set(&w, &a2, &a2_in, "enable").await;
    set(&w, &a2, &a2_in, "enable").await; // §9: twice is no error
    for inbox in [&a1_in, &a2_in, &a3_in, &b_in] {
        drain(inbox).await;
    }

    w.send(&a1, &chat(&jid("bob"), "to bob", "")).await;
    let at_bob = drain(&b_in).await;
    assert_eq!(at_bob.iter().map(body).collect::<Vec<_>>(), ["to bob"]);
    let at_a2 = drain(&a2_in).await;
    assert_eq!(at_a2.len(), 1, "{at_a2:?}");
    let original = copied(&at_a2[0], "sent", "two");
    assert_eq!(
        original.attr("from"),
        Some(format!("{}/one", jid("alice")).as_str())
    );
    assert_eq!(original.attr("to"), Some(jid("bob").as_str()));
    assert_eq!(body(original), "to bob");
    assert_eq!(at_a2[0].attr("type"), Some("chat"));
    assert!(drain(&a1_in).await.is_empty(), "the sender gets no copy");
    assert!(drain(&a3_in).await.is_empty(), "carbons not enabled there");

    let a1_full = format!("{}/one", jid("alice"));
    w.send(&b, &chat(&a1_full, "to one", "")).await;
    assert_eq!(
        drain(&a1_in).await.iter().map(body).collect::<Vec<_>>(),
        ["to one"]
    );
    let at_a2 = drain(&a2_in).await;
    assert_eq!(at_a2.len(), 1, "{at_a2:?}");
    let original = copied(&at_a2[0], "received", "two");
    assert_eq!(original.attr("to"), Some(a1_full.as_str()));
    assert_eq!(body(original), "to one");
    assert!(drain(&a3_in).await.is_empty());
    assert!(drain(&b_in).await.is_empty(), "bob has no carbons enabled");
}

#[tokio::test]
async fn a_message_to_the_bare_jid_is_copied_only_to_resources_that_did_not_get_it() {
    let w = world(&["alice", "bob"]).await;
    let (a1, a1_in) = w.online("alice", "one", None).await;
    let (away, away_in) = w.bind("alice", "away");
    w.send(
        &away,
        &format!("<presence xmlns='{CLIENT}'><priority>-1</priority></presence>"),
    )
    .await;
    let (b, b_in) = w.online("bob", "b", None).await;
    set(&w, &a1, &a1_in, "enable").await;
    set(&w, &away, &away_in, "enable").await;
    for inbox in [&a1_in, &away_in, &b_in] {
        drain(inbox).await;
    }
    w.send(&b, &chat(&jid("alice"), "to alice", "")).await;
    assert_eq!(
        drain(&a1_in).await.iter().map(body).collect::<Vec<_>>(),
        ["to alice"]
    );
    let at_away = drain(&away_in).await;
    assert_eq!(at_away.len(), 1, "{at_away:?}");
    let original = copied(&at_away[0], "received", "away");
    assert_eq!(body(original), "to alice");
}

#[tokio::test]
async fn private_and_no_copy_messages_are_not_copied_and_disable_stops_copies() {
    let w = world(&["alice", "bob"]).await;
    let (a1, a1_in) = w.online("alice", "one", None).await;
    let (a2, a2_in) = w.online("alice", "two", None).await;
    let (b, b_in) = w.online("bob", "b", None).await;
    set(&w, &a2, &a2_in, "enable").await;
    for inbox in [&a1_in, &a2_in, &b_in] {
        drain(inbox).await;
    }
    let private = format!("<private xmlns='{NS}'/><no-copy xmlns='urn:xmpp:hints'/>");
    w.send(&a1, &chat(&jid("bob"), "secret", &private)).await;
    w.send(
        &a1,
        &chat(&jid("bob"), "hinted", "<no-copy xmlns='urn:xmpp:hints'/>"),
    )
    .await;
    w.send(
        &a1,
        &format!(
            "<message xmlns='{CLIENT}' to='{}' type='headline'><body>news</body></message>",
            jid("bob")
        ),
    )
    .await;
    let a1_full = format!("{}/one", jid("alice"));
    w.send(
        &b,
        &chat(
            &a1_full,
            "private reply",
            &format!("<private xmlns='{NS}'/>"),
        ),
    )
    .await;
    w.send(&a1, &chat(&jid("bob"), "public", "")).await;
    let at_bob = drain(&b_in).await;
    assert_eq!(
        at_bob.iter().map(body).collect::<Vec<_>>(),
        ["secret", "hinted", "news", "public"]
    );
    assert!(
        at_bob[0].has_child("private", NS),
        "§7: the element is not removed"
    );
    // The run went through: the last, public message is copied, nothing before it was.
    let at_a2 = drain(&a2_in).await;
    let copies: Vec<_> = at_a2
        .iter()
        .map(|e| body(copied(e, "sent", "two")))
        .collect();
    assert_eq!(copies, ["public"]);

    set(&w, &a2, &a2_in, "disable").await;
    set(&w, &a2, &a2_in, "disable").await;
    w.send(&a1, &chat(&jid("bob"), "after disable", "")).await;
    assert_eq!(
        drain(&b_in).await.iter().map(body).collect::<Vec<_>>(),
        ["after disable"]
    );
    assert!(drain(&a2_in).await.is_empty());
}

#[tokio::test]
async fn carbons_state_is_per_session_and_ends_with_it() {
    let w = world(&["alice"]).await;
    let (a1, a1_in) = w.online("alice", "one", None).await;
    let (a2, a2_in) = w.online("alice", "two", None).await;
    set(&w, &a1, &a1_in, "enable").await;
    let state = w.svc.module::<Carbons>().expect("carbons module");
    assert!(state.is_enabled(a1.id) && !state.is_enabled(a2.id));
    let other = format!("<iq xmlns='{CLIENT}' type='get' id='g'><enable xmlns='{NS}'/></iq>");
    let answer = w.ask(&a2, &a2_in, &other).await;
    assert_eq!(answer.attr("type"), Some("error"), "a get is not a request");
    assert!(!state.is_enabled(a2.id));
    modules::session_ended(&w.svc, &a1).await;
    assert!(!state.is_enabled(a1.id));
}
