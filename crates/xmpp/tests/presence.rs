//! RFC 6121 §4.2.2, §4.4.2, §4.5.2: a presence broadcast reaches every available resource of
//! the user, the one that sent it included, through the service's stanza handling (no sockets).

mod common;

use common::*;
use minidom::Element;

/// The presence stanzas among `stanzas`, as (from, to, type).
fn presences(stanzas: &[Element]) -> Vec<(String, String, Option<String>)> {
    stanzas
        .iter()
        .filter(|e| e.name() == "presence")
        .map(|e| {
            (
                e.attr("from").unwrap_or_default().to_owned(),
                e.attr("to").unwrap_or_default().to_owned(),
                e.attr("type").map(str::to_owned),
            )
        })
        .collect()
}

fn available(from: &str, to: &str) -> (String, String, Option<String>) {
    (from.to_owned(), to.to_owned(), None)
}

fn unavailable(from: &str, to: &str) -> (String, String, Option<String>) {
    (
        from.to_owned(),
        to.to_owned(),
        Some("unavailable".to_owned()),
    )
}

#[tokio::test]
async fn initial_presence_comes_back_to_its_sender_and_reaches_the_other_resources() {
    let w = world(&["alice"]).await;
    let (desk, desk_in) = w.online("alice", "desk", None).await;
    assert_eq!(
        presences(&drain(&desk_in).await),
        vec![available("alice@x.test/desk", "alice@x.test/desk")],
        "§4.2.2: the sender gets its own initial presence"
    );

    let (phone, phone_in) = w.bind("alice", "phone");
    w.available(&phone, None).await;
    let at_phone = presences(&drain(&phone_in).await);
    assert!(
        at_phone.contains(&available("alice@x.test/phone", "alice@x.test/phone")),
        "{at_phone:?}"
    );
    // The new resource also learns of the other one (the answer to the implicit probe).
    assert!(
        at_phone.contains(&available("alice@x.test/desk", "alice@x.test/phone")),
        "{at_phone:?}"
    );
    assert_eq!(
        presences(&drain(&desk_in).await),
        vec![available("alice@x.test/phone", "alice@x.test/desk")]
    );

    // §4.4.2: a later presence (a status change) is reflected too, and sent once only.
    w.send(
        &desk,
        "<presence xmlns='jabber:client'><show>away</show></presence>",
    )
    .await;
    assert_eq!(
        presences(&drain(&desk_in).await),
        vec![available("alice@x.test/desk", "alice@x.test/desk")]
    );
    assert_eq!(
        presences(&drain(&phone_in).await),
        vec![available("alice@x.test/desk", "alice@x.test/phone")]
    );

    // §4.5.2: unavailable presence goes to the sender and the other available resource.
    w.send(
        &phone,
        "<presence xmlns='jabber:client' type='unavailable'/>",
    )
    .await;
    assert_eq!(
        presences(&drain(&phone_in).await),
        vec![unavailable("alice@x.test/phone", "alice@x.test/phone")]
    );
    assert_eq!(
        presences(&drain(&desk_in).await),
        vec![unavailable("alice@x.test/phone", "alice@x.test/desk")]
    );
    // An unavailable resource no longer gets the others' broadcasts.
    w.send(&desk, "<presence xmlns='jabber:client'/>").await;
    assert!(presences(&drain(&phone_in).await).is_empty());
    assert_eq!(
        presences(&drain(&desk_in).await),
        vec![available("alice@x.test/desk", "alice@x.test/desk")]
    );
}

#[tokio::test]
async fn a_subscriber_gets_the_broadcast_once_alongside_the_senders_copy() {
    let w = world(&["alice", "bob"]).await;
    w.mutual("alice", "bob").await;
    let (_bob, bob_in) = w.online("bob", "pc", None).await;
    drain(&bob_in).await;
    let (alice, alice_in) = w.online("alice", "desk", None).await;
    let at_alice = presences(&drain(&alice_in).await);
    assert!(
        at_alice.contains(&available("alice@x.test/desk", "alice@x.test/desk")),
        "{at_alice:?}"
    );
    assert!(
        at_alice.contains(&available("bob@x.test/pc", "alice@x.test/desk")),
        "{at_alice:?}"
    );
    assert_eq!(
        presences(&drain(&bob_in).await),
        vec![available("alice@x.test/desk", "bob@x.test")]
    );
    w.send(
        &alice,
        "<presence xmlns='jabber:client' type='unavailable'/>",
    )
    .await;
    assert_eq!(
        presences(&drain(&alice_in).await),
        vec![unavailable("alice@x.test/desk", "alice@x.test/desk")]
    );
    assert_eq!(
        presences(&drain(&bob_in).await),
        vec![unavailable("alice@x.test/desk", "bob@x.test")]
    );
}
