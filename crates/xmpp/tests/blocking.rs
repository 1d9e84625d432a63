//! XEP-0191 §3.3 and §3.4 through the service's stanza handling (no sockets): blocking a
//! JID that may see the user's presence sends it `unavailable` from each available resource,
//! unblocking sends the current presence again, and a blocked JID's IQ get/set to a full JID
//! is refused with `service-unavailable` while its results are dropped.

mod common;

use common::*;
use cusax_store::Subscription;
use cusax_xmpp::Inbox;
use cusax_xmpp::modules::Session;
use minidom::Element;

const NS: &str = "urn:xmpp:blocking";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// The presence stanzas among `stanzas`, as (from, to, type).
fn presences(stanzas: &[Element]) -> Vec<(String, String, Option<String>)> {
    let mut v: Vec<_> = stanzas
        .iter()
        .filter(|e| e.name() == "presence")
        .map(|e| {
            (
                e.attr("from").unwrap_or_default().to_owned(),
                e.attr("to").unwrap_or_default().to_owned(),
                e.attr("type").map(str::to_owned),
            )
        })
        .collect();
    v.sort();
    v
}

fn p(from: &str, to: &str, kind: Option<&str>) -> (String, String, Option<String>) {
    (from.to_owned(), to.to_owned(), kind.map(str::to_owned))
}

/// The condition of an error stanza (the element in the stanzas namespace).
fn condition(el: &Element) -> Option<String> {
    let err = el.get_child("error", "jabber:client")?;
    err.children()
        .find(|c| c.ns() == STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

/// Sends a block or unblock command for `jids` and checks the result; returns what else
/// reached the sender's inbox (pushes, presence).
async fn command(w: &World, s: &Session, inbox: &Inbox, kind: &str, jids: &[&str]) -> Vec<Element> {
    let items: String = jids.iter().map(|j| format!("<item jid='{j}'/>")).collect();
    w.send(
        s,
        &format!("<iq xmlns='jabber:client' type='set' id='cmd'><{kind} xmlns='{NS}'>{items}</{kind}></iq>"),
    )
    .await;
    let got = drain(inbox).await;
    let answer = got
        .iter()
        .find(|e| e.name() == "iq" && e.attr("id") == Some("cmd"))
        .expect("the command was answered");
    assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
    got
}

#[tokio::test]
async fn block_sends_unavailable_from_each_resource_and_unblock_the_current_presence() {
    let w = world(&["alice", "bob", "carol"]).await;
    w.mutual("alice", "bob").await;
    w.mutual("alice", "carol").await;
    let (_bob, bob_in) = w.online("bob", "pc", None).await;
    let (_carol, carol_in) = w.online("carol", "pc", None).await;
    let (desk, desk_in) = w.online("alice", "desk", None).await;
    let (_phone, phone_in) = w.online("alice", "phone", None).await;
    w.send(
        &desk,
        "<presence xmlns='jabber:client'><show>away</show></presence>",
    )
    .await;
    // Before the block bob sees both resources, like carol.
    for (inbox, to) in [(&bob_in, "bob@x.test"), (&carol_in, "carol@x.test")] {
        let got = presences(&drain(inbox).await);
        for from in ["alice@x.test/desk", "alice@x.test/phone"] {
            assert!(got.contains(&p(from, to, None)), "{got:?}");
        }
    }
    drain(&phone_in).await;

    let at_desk = command(&w, &desk, &desk_in, "block", &["bob@x.test"]).await;
    assert!(
        at_desk.iter().any(|e| e.attr("id") == Some("block-push")),
        "push at the sender: {at_desk:?}"
    );
    assert!(
        drain(&phone_in)
            .await
            .iter()
            .any(|e| e.attr("id") == Some("block-push"))
    );
    assert_eq!(
        presences(&drain(&bob_in).await),
        vec![
            p("alice@x.test/desk", "bob@x.test", Some("unavailable")),
            p("alice@x.test/phone", "bob@x.test", Some("unavailable")),
        ],
        "§3.3: unavailable from each available resource"
    );
    assert!(drain(&carol_in).await.is_empty(), "carol is not concerned");
    // Blocking again changes nothing: no second unavailable.
    command(&w, &desk, &desk_in, "block", &["bob@x.test"]).await;
    assert!(presences(&drain(&bob_in).await).is_empty());

    command(&w, &desk, &desk_in, "unblock", &["bob@x.test"]).await;
    let got: Vec<Element> = drain(&bob_in)
        .await
        .into_iter()
        .filter(|e| e.name() == "presence")
        .collect();
    assert_eq!(
        presences(&got),
        vec![
            p("alice@x.test/desk", "bob@x.test", None),
            p("alice@x.test/phone", "bob@x.test", None),
        ],
        "§3.4: the current presence again"
    );
    let desk_p = got
        .iter()
        .find(|e| e.attr("from") == Some("alice@x.test/desk"))
        .expect("desk presence");
    assert_eq!(
        desk_p
            .get_child("show", "jabber:client")
            .map(Element::text)
            .as_deref(),
        Some("away"),
        "the stored presence, not a bare available: {desk_p:?}"
    );
    assert!(drain(&carol_in).await.is_empty());
}

#[tokio::test]
async fn only_jids_allowed_to_see_presence_get_it_and_a_remaining_block_keeps_it() {
    let w = world(&["alice", "bob", "eve", "dave"]).await;
    w.mutual("alice", "bob").await;
    // alice sees eve, eve does not see alice; dave is not in alice's roster.
    w.roster("alice", "eve", Subscription::To).await;
    w.roster("eve", "alice", Subscription::From).await;
    let (_bob, bob_in) = w.online("bob", "pc", None).await;
    let (_eve, eve_in) = w.online("eve", "pc", None).await;
    let (_dave, dave_in) = w.online("dave", "pc", None).await;
    let (desk, desk_in) = w.online("alice", "desk", None).await;
    drain(&dave_in).await;
    // RFC 6121 §4.6: directed presence lets dave see alice too.
    w.send(&desk, "<presence xmlns='jabber:client' to='dave@x.test'/>")
        .await;
    assert_eq!(
        presences(&drain(&dave_in).await),
        vec![p("alice@x.test/desk", "dave@x.test", None)]
    );
    drain(&bob_in).await;
    drain(&eve_in).await;

    command(
        &w,
        &desk,
        &desk_in,
        "block",
        &["eve@x.test", "dave@x.test", "x.test"],
    )
    .await;
    // The run happened: bob (blocked through the domain) and dave got unavailable.
    assert_eq!(
        presences(&drain(&bob_in).await),
        vec![p("alice@x.test/desk", "bob@x.test", Some("unavailable"))]
    );
    assert_eq!(
        presences(&drain(&dave_in).await),
        vec![p("alice@x.test/desk", "dave@x.test", Some("unavailable"))]
    );
    assert!(
        presences(&drain(&eve_in).await).is_empty(),
        "eve had no subscription to alice's presence"
    );

    // bob stays blocked through the domain: unblocking his JID sends nothing.
    command(&w, &desk, &desk_in, "unblock", &["bob@x.test"]).await;
    assert!(presences(&drain(&bob_in).await).is_empty());
    // Unblocking all (an empty unblock) lifts the domain: bob sees alice again.
    command(&w, &desk, &desk_in, "unblock", &[]).await;
    assert_eq!(
        presences(&drain(&bob_in).await),
        vec![p("alice@x.test/desk", "bob@x.test", None)]
    );
    assert!(presences(&drain(&eve_in).await).is_empty());
}

#[tokio::test]
async fn blocking_one_resource_sends_unavailable_to_that_resource_only() {
    let w = world(&["alice", "bob"]).await;
    w.mutual("alice", "bob").await;
    let (_bpc, pc_in) = w.online("bob", "pc", None).await;
    let (_bphone, phone_in) = w.online("bob", "phone", None).await;
    let (desk, desk_in) = w.online("alice", "desk", None).await;
    drain(&pc_in).await;
    drain(&phone_in).await;
    command(&w, &desk, &desk_in, "block", &["bob@x.test/phone"]).await;
    assert_eq!(
        presences(&drain(&phone_in).await),
        vec![p(
            "alice@x.test/desk",
            "bob@x.test/phone",
            Some("unavailable")
        )]
    );
    assert!(presences(&drain(&pc_in).await).is_empty());
}

#[tokio::test]
async fn iq_and_message_to_a_full_jid_from_a_blocked_jid_are_refused() {
    let w = world(&["alice", "bob"]).await;
    w.mutual("alice", "bob").await;
    let (bob, bob_in) = w.online("bob", "pc", None).await;
    let (desk, desk_in) = w.online("alice", "desk", None).await;
    let ping = "<iq xmlns='jabber:client' type='get' id='p1' to='alice@x.test/desk'>\
                <ping xmlns='urn:xmpp:ping'/></iq>";
    // Before the block the IQ reaches alice's session.
    w.send(&bob, ping).await;
    assert!(
        drain(&desk_in)
            .await
            .iter()
            .any(|e| e.attr("id") == Some("p1"))
    );

    command(&w, &desk, &desk_in, "block", &["bob@x.test"]).await;
    drain(&bob_in).await;
    let answer = w.ask(&bob, &bob_in, ping).await;
    assert_eq!(answer.attr("type"), Some("error"), "{answer:?}");
    assert_eq!(condition(&answer).as_deref(), Some("service-unavailable"));
    w.send(
        &bob,
        "<iq xmlns='jabber:client' type='result' id='r1' to='alice@x.test/desk'/>",
    )
    .await;
    w.send(
        &bob,
        "<message xmlns='jabber:client' type='chat' id='m1' to='alice@x.test/desk'><body>hi</body></message>",
    )
    .await;
    let at_bob = drain(&bob_in).await;
    let refused = at_bob
        .iter()
        .find(|e| e.attr("id") == Some("m1"))
        .expect("the message was answered");
    assert_eq!(condition(refused).as_deref(), Some("service-unavailable"));
    assert!(
        !at_bob.iter().any(|e| e.attr("id") == Some("r1")),
        "an IQ result is dropped, not answered: {at_bob:?}"
    );
    assert!(
        drain(&desk_in).await.is_empty(),
        "nothing from bob reached alice"
    );

    command(&w, &desk, &desk_in, "unblock", &["bob@x.test"]).await;
    w.send(&bob, ping).await;
    assert!(
        drain(&desk_in)
            .await
            .iter()
            .any(|e| e.attr("id") == Some("p1"))
    );
}
