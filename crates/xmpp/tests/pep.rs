//! XEP-0163 notification rules, XEP-0108 "on the phone" and XEP-0152 reachability, through the
//! service's stanza handling with sessions registered in its router (no sockets).
//!
//! Every handler finishes its sends before it returns, so what a session has not received
//! once the call returned it never gets: inboxes are drained without waiting.

mod common;

use common::*;
use cusax_store::{BlockStore, Subscription};
use cusax_xmpp::modules::{self, caps};
use cusax_xmpp::{Delivery, Inbox};
use minidom::Element;
use std::time::Duration;

const ACTIVITY: &str = "http://jabber.org/protocol/activity";
const REACH: &str = "urn:xmpp:reach:0";
const MOOD: &str = "http://jabber.org/protocol/mood";
const EVENT: &str = "http://jabber.org/protocol/pubsub#event";

/// One PEP notification as (from, to, node, payload).
#[derive(Debug, Clone, PartialEq)]
struct Event {
    from: String,
    to: String,
    node: String,
    payload: Option<Element>,
}

/// The PEP notifications among `stanzas`, checking their envelope (XEP-0163 §4.3.1).
fn events(stanzas: &[Element]) -> Vec<Event> {
    stanzas
        .iter()
        .filter_map(|m| {
            let ev = m.get_child("event", EVENT)?;
            assert_eq!(m.name(), "message");
            assert_eq!(m.attr("type"), Some("headline"));
            let items = ev.get_child("items", EVENT).expect("items");
            let item = items.get_child("item", EVENT).expect("one item");
            assert!(item.attr("id").is_some(), "items carry an id");
            Some(Event {
                from: m.attr("from").unwrap_or_default().to_owned(),
                to: m.attr("to").unwrap_or_default().to_owned(),
                node: items.attr("node").unwrap_or_default().to_owned(),
                payload: item.children().next().cloned(),
            })
        })
        .collect()
}

/// The notifications of one node among a session's queued stanzas.
async fn node_events(inbox: &Inbox, node: &str) -> Vec<Event> {
    events(&drain(inbox).await)
        .into_iter()
        .filter(|e| e.node == node)
        .collect()
}

fn is_on_the_phone(e: &Event) -> bool {
    e.payload.as_ref().is_some_and(|p| {
        p.is("activity", ACTIVITY)
            && p.get_child("talking", ACTIVITY)
                .is_some_and(|t| t.get_child("on_the_phone", ACTIVITY).is_some())
    })
}

fn is_stopped(e: &Event) -> bool {
    e.payload
        .as_ref()
        .is_some_and(|p| p.is("activity", ACTIVITY) && p.children().next().is_none())
}

fn reach_uris(e: &Event) -> Vec<String> {
    e.payload
        .iter()
        .flat_map(|p| p.children())
        .filter_map(|a| a.attr("uri").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn on_the_phone_is_off_by_default_and_reaches_owner_and_subscribers_once_opted_in() {
    let w = world(&["alice", "bob", "carol", "dave"]).await;
    w.mutual("alice", "bob").await;
    // carol sees alice's presence only one way round: alice sees carol's, not the reverse.
    w.roster("alice", "carol", Subscription::To).await;
    w.roster("carol", "alice", Subscription::From).await;
    let (alice, alice_in) = w.online("alice", "desk", None).await;
    let (_bob, bob_in) = w.online("bob", "phone", None).await;
    let (_bob2, bob2_in) = w.online("bob", "laptop", None).await;
    let (_carol, carol_in) = w.online("carol", "pc", None).await;
    let (_dave, dave_in) = w.online("dave", "pc", None).await;
    for i in [&alice_in, &bob_in, &bob2_in, &carol_in, &dave_in] {
        drain(i).await;
    }

    // Not opted in (the default): a call publishes nothing.
    w.call("alice", true).await;
    for i in [&alice_in, &bob_in, &carol_in] {
        assert!(node_events(i, ACTIVITY).await.is_empty());
    }
    w.call("alice", false).await;
    assert!(node_events(&bob_in, ACTIVITY).await.is_empty());

    w.opt_in(&alice, &alice_in, true).await;
    w.call("alice", true).await;
    for (inbox, to) in [
        (&alice_in, "alice@x.test/desk"),
        (&bob_in, "bob@x.test/phone"),
        (&bob2_in, "bob@x.test/laptop"),
    ] {
        let got = node_events(inbox, ACTIVITY).await;
        assert_eq!(got.len(), 1, "{to}: {got:?}");
        assert!(is_on_the_phone(&got[0]), "{got:?}");
        assert_eq!(
            (got[0].from.as_str(), got[0].to.as_str()),
            ("alice@x.test", to)
        );
    }
    assert!(
        node_events(&carol_in, ACTIVITY).await.is_empty(),
        "no subscription from alice"
    );
    assert!(
        node_events(&dave_in, ACTIVITY).await.is_empty(),
        "not a contact"
    );

    // The caller keeps the call count: a repeated "in call" changes nothing.
    w.call("alice", true).await;
    assert!(node_events(&bob_in, ACTIVITY).await.is_empty());

    w.call("alice", false).await;
    let got = node_events(&bob_in, ACTIVITY).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(is_stopped(&got[0]), "XEP-0108 §2.2 stop command: {got:?}");
}

#[tokio::test]
async fn opting_out_during_a_call_withdraws_at_once_and_opting_in_shows_it() {
    let w = world(&["alice", "bob"]).await;
    w.mutual("alice", "bob").await;
    let (alice, alice_in) = w.online("alice", "desk", None).await;
    let (_bob, bob_in) = w.online("bob", "phone", None).await;
    w.call("alice", true).await;
    drain(&bob_in).await;
    w.opt_in(&alice, &alice_in, true).await;
    let got = node_events(&bob_in, ACTIVITY).await;
    assert!(got.len() == 1 && is_on_the_phone(&got[0]), "{got:?}");
    w.opt_in(&alice, &alice_in, false).await;
    let got = node_events(&bob_in, ACTIVITY).await;
    assert!(got.len() == 1 && is_stopped(&got[0]), "{got:?}");
    w.call("alice", false).await;
    assert!(
        node_events(&bob_in, ACTIVITY).await.is_empty(),
        "nothing left to withdraw"
    );
}

#[tokio::test]
async fn blocking_either_way_stops_notifications() {
    let w = world(&["alice", "bob", "carol"]).await;
    w.mutual("alice", "bob").await;
    w.mutual("alice", "carol").await;
    // alice is offline (a desk phone only) and blocks bob; carol blocks alice.
    w.store
        .block(&id("alice"), &[jid("bob")])
        .await
        .expect("block");
    w.store
        .block(&id("carol"), &[jid("alice")])
        .await
        .expect("block");
    let (alice, alice_in) = w.bind("alice", "setup");
    w.opt_in(&alice, &alice_in, true).await;
    let (bob, bob_in) = w.bind("bob", "phone");
    modules::blocking::load(&w.svc, &bob).await;
    w.available(&bob, None).await;
    let (carol, carol_in) = w.bind("carol", "pc");
    modules::blocking::load(&w.svc, &carol).await;
    w.available(&carol, None).await;
    let got = node_events(&bob_in, REACH).await;
    assert!(
        got.iter().any(|e| e.from == jid("bob")) && !got.iter().any(|e| e.from == jid("alice")),
        "own reach, but no last items from an account that blocks bob: {got:?}"
    );
    assert!(
        !node_events(&carol_in, REACH)
            .await
            .iter()
            .any(|e| e.from == jid("alice")),
        "no last items from an account carol blocks"
    );
    w.call("alice", true).await;
    assert!(node_events(&bob_in, ACTIVITY).await.is_empty());
    assert!(node_events(&carol_in, ACTIVITY).await.is_empty());
}

#[tokio::test]
async fn caps_filter_notifications_and_last_items_wait_for_the_answer() {
    let w = world(&["alice", "bob", "carol"]).await;
    w.mutual("alice", "bob").await;
    w.mutual("alice", "carol").await;
    let (alice, alice_in) = w.online("alice", "desk", None).await;
    w.opt_in(&alice, &alice_in, true).await;

    // bob's client announces caps: the server asks it, and sends nothing else yet.
    let (bob, bob_in) = w.online("bob", "phone", Some("v1")).await;
    let queued = drain(&bob_in).await;
    let question = queued
        .iter()
        .find(|e| caps::is_caps_query(e))
        .expect("disco#info question to bob");
    assert_eq!(question.attr("to"), Some("bob@x.test/phone"));
    assert_eq!(question.attr("type"), Some("get"));
    let q = question
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("disco#info query");
    assert_eq!(q.attr("node"), Some("urn:test#v1"));
    assert!(events(&queued).is_empty(), "last items wait for the answer");

    // The answer: interested in reachability only.
    let qid = question.attr("id").expect("id");
    w.send(
        &bob,
        &format!(
            "<iq xmlns='jabber:client' type='result' id='{qid}' to='{DOMAIN}'>             <query xmlns='http://jabber.org/protocol/disco#info' node='urn:test#v1'>             <identity category='client' type='pc'/>             <feature var='http://jabber.org/protocol/disco#info'/>             <feature var='{REACH}+notify'/></query></iq>"
        ),
    )
    .await;
    let got = events(&drain(&bob_in).await);
    let from: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e.from.as_str(), e.node.as_str()))
        .collect();
    assert_eq!(
        from,
        vec![("bob@x.test", REACH), ("alice@x.test", REACH)],
        "own and subscribed accounts' reach, nothing else"
    );
    assert_eq!(reach_uris(&got[1]), vec!["sip:alice@x.test"]);

    // The same caps again (a presence update): no question, no repeated items — only the
    // presence itself, reflected to its sender (RFC 6121 §4.4.2).
    w.available(&bob, Some("v1")).await;
    let queued = drain(&bob_in).await;
    let names: Vec<(&str, Option<&str>)> =
        queued.iter().map(|e| (e.name(), e.attr("from"))).collect();
    assert_eq!(names, vec![("presence", Some("bob@x.test/phone"))]);

    // carol's client has no caps: it gets everything (the documented rule).
    let (_carol, carol_in) = w.online("carol", "pc", None).await;
    let got = node_events(&carol_in, REACH).await;
    assert_eq!(got.len(), 2, "{got:?}");
    w.call("alice", true).await;
    assert!(
        node_events(&bob_in, ACTIVITY).await.is_empty(),
        "bob does not want activity"
    );
    assert_eq!(node_events(&carol_in, ACTIVITY).await.len(), 1);

    // A failed question means no filtering either.
    w.available(&bob, Some("v2")).await;
    let queued = drain(&bob_in).await;
    let question = queued
        .iter()
        .find(|e| caps::is_caps_query(e))
        .expect("asked again");
    let qid = question.attr("id").expect("id");
    w.send(
        &bob,
        &format!(
            "<iq xmlns='jabber:client' type='error' id='{qid}' to='{DOMAIN}'>             <error type='cancel'><service-unavailable              xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ),
    )
    .await;
    w.call("alice", false).await;
    assert_eq!(node_events(&bob_in, ACTIVITY).await.len(), 1);
}

#[tokio::test]
async fn last_items_on_initial_presence_and_for_a_new_subscriber() {
    let w = world(&["alice", "bob", "carol"]).await;
    w.mutual("alice", "bob").await;
    let (alice, alice_in) = w.online("alice", "desk", None).await;
    w.opt_in(&alice, &alice_in, true).await;
    w.call("alice", true).await;

    // bob comes online during alice's call: her current activity and reach, and his own.
    let (bob, bob_in) = w.online("bob", "phone", None).await;
    let got = events(&drain(&bob_in).await);
    assert!(
        got.iter()
            .any(|e| e.from == jid("alice") && is_on_the_phone(e)),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|e| e.from == jid("alice") && e.node == REACH)
    );
    assert!(got.iter().any(|e| e.from == jid("bob") && e.node == REACH));
    // A later presence of the same session is not initial.
    w.available(&bob, None).await;
    assert!(events(&drain(&bob_in).await).is_empty());

    // carol subscribes to alice; alice approves: carol gets alice's items at once.
    let (carol, carol_in) = w.online("carol", "pc", None).await;
    drain(&carol_in).await;
    w.send(
        &carol,
        "<presence xmlns='jabber:client' type='subscribe' to='alice@x.test'/>",
    )
    .await;
    w.send(
        &alice,
        "<presence xmlns='jabber:client' type='subscribed' to='carol@x.test'/>",
    )
    .await;
    let got = events(&drain(&carol_in).await);
    assert!(
        got.iter()
            .any(|e| e.from == jid("alice") && is_on_the_phone(e)),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|e| e.from == jid("alice") && e.node == REACH),
        "{got:?}"
    );
}

// long: one story (publish, retrieve with and without a subscription, a call
// hiding the item, the item back afterwards) whose steps depend on the state before them.
#[tokio::test]
async fn clients_publish_presence_access_items_and_get_them_back_after_a_call() {
    let w = world(&["alice", "bob", "carol"]).await;
    w.mutual("alice", "bob").await;
    let (alice, alice_in) = w.online("alice", "desk", None).await;
    let (bob, bob_in) = w.online("bob", "phone", None).await;
    let (carol, carol_in) = w.online("carol", "pc", None).await;
    drain(&bob_in).await;

    let publish = |node: &str, payload: &str, options: &str| {
        format!(
            "<iq xmlns='jabber:client' type='set' id='pub'>             <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'>             <item id='i1'>{payload}</item></publish>{options}</pubsub></iq>"
        )
    };
    let relaxing = format!("<activity xmlns='{ACTIVITY}'><relaxing/></activity>");
    let answer = w
        .ask(&alice, &alice_in, &publish(ACTIVITY, &relaxing, ""))
        .await;
    assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
    let got = node_events(&bob_in, ACTIVITY).await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .payload
            .as_ref()
            .is_some_and(|p| p.get_child("relaxing", ACTIVITY).is_some())
    );

    // Retrieval: bob (subscribed) gets the item, carol is not authorised.
    let get = |node: &str| {
        format!(
            "<iq xmlns='jabber:client' type='get' id='get' to='alice@x.test'>             <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='{node}'/></pubsub></iq>"
        )
    };
    let answer = w.ask(&bob, &bob_in, &get(ACTIVITY)).await;
    assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
    assert!(String::from(&answer).contains("relaxing"), "{answer:?}");
    let answer = w.ask(&bob, &bob_in, &get(REACH)).await;
    assert!(
        String::from(&answer).contains("sip:alice@x.test"),
        "{answer:?}"
    );
    let answer = w.ask(&carol, &carol_in, &get(REACH)).await;
    let text = String::from(&answer);
    assert!(
        text.contains("not-authorized") && text.contains("presence-subscription-required"),
        "{text}"
    );
    let answer = w.ask(&bob, &bob_in, &get(MOOD)).await;
    assert!(
        String::from(&answer).contains("item-not-found"),
        "{answer:?}"
    );

    // During a call the server's item shows; afterwards alice's own comes back.
    w.opt_in(&alice, &alice_in, true).await;
    w.call("alice", true).await;
    let got = node_events(&bob_in, ACTIVITY).await;
    assert!(got.len() == 1 && is_on_the_phone(&got[0]), "{got:?}");
    let answer = w
        .ask(&alice, &alice_in, &publish(ACTIVITY, &relaxing, ""))
        .await;
    assert_eq!(answer.attr("type"), Some("result"));
    assert!(
        node_events(&bob_in, ACTIVITY).await.is_empty(),
        "the call still shows"
    );
    w.call("alice", false).await;
    let got = node_events(&bob_in, ACTIVITY).await;
    assert!(
        got.len() == 1
            && got[0]
                .payload
                .as_ref()
                .is_some_and(|p| p.get_child("relaxing", ACTIVITY).is_some()),
        "{got:?}"
    );

    // Refusals: the server's node, nodes without auto-create, other access models, and
    // publishing for someone else.
    let reach = format!("<reach xmlns='{REACH}'><addr uri='sip:x@y'/></reach>");
    let answer = w.ask(&alice, &alice_in, &publish(REACH, &reach, "")).await;
    assert!(String::from(&answer).contains("forbidden"), "{answer:?}");
    let bookmarks = "<storage xmlns='storage:bookmarks'/>";
    let answer = w
        .ask(
            &alice,
            &alice_in,
            &publish("storage:bookmarks", bookmarks, ""),
        )
        .await;
    assert!(
        String::from(&answer).contains("feature-not-implemented"),
        "{answer:?}"
    );
    let whitelist = "<publish-options><x xmlns='jabber:x:data' type='submit'>        <field var='FORM_TYPE' type='hidden'>        <value>http://jabber.org/protocol/pubsub#publish-options</value></field>        <field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options>";
    let answer = w
        .ask(&alice, &alice_in, &publish(ACTIVITY, &relaxing, whitelist))
        .await;
    assert!(
        String::from(&answer).contains("precondition-not-met"),
        "{answer:?}"
    );
    let mismatched = publish(MOOD, &relaxing, "");
    let answer = w.ask(&alice, &alice_in, &mismatched).await;
    assert!(
        String::from(&answer).contains("invalid-payload"),
        "{answer:?}"
    );
    let for_alice =
        publish(ACTIVITY, &relaxing, "").replace("id='pub'", "id='pub' to='alice@x.test'");
    let answer = w.ask(&bob, &bob_in, &for_alice).await;
    assert!(String::from(&answer).contains("forbidden"), "{answer:?}");
}

#[tokio::test]
async fn account_disco_info_announces_pep_and_private_storage_is_the_owners() {
    let w = world(&["alice", "bob"]).await;
    let (alice, alice_in) = w.online("alice", "desk", None).await;
    let info = w
        .ask(
            &alice,
            &alice_in,
            "<iq xmlns='jabber:client' type='get' id='d' to='alice@x.test'>             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    let q = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("query");
    assert!(q.children().any(|c| c.name() == "identity"
        && c.attr("category") == Some("pubsub")
        && c.attr("type") == Some("pep")));
    assert!(
        q.children()
            .any(|c| c.attr("var") == Some("http://jabber.org/protocol/pubsub#publish"))
    );

    // XEP-0049: nothing stored echoes the asked element; reserved and foreign are refused.
    let get = "<iq xmlns='jabber:client' type='get' id='p'><query xmlns='jabber:iq:private'>               <prefs xmlns='urn:test:prefs'/></query></iq>";
    let answer = w.ask(&alice, &alice_in, get).await;
    assert!(
        String::from(&answer).contains("urn:test:prefs"),
        "{answer:?}"
    );
    let set = "<iq xmlns='jabber:client' type='set' id='p'><query xmlns='jabber:iq:private'>               <prefs xmlns='urn:test:prefs'><colour>green</colour></prefs></query></iq>";
    assert_eq!(
        w.ask(&alice, &alice_in, set).await.attr("type"),
        Some("result")
    );
    let answer = w.ask(&alice, &alice_in, get).await;
    assert!(String::from(&answer).contains("green"), "{answer:?}");
    let reserved = "<iq xmlns='jabber:client' type='set' id='p'><query xmlns='jabber:iq:private'>                    <query xmlns='jabber:iq:roster'/></query></iq>";
    assert!(String::from(&w.ask(&alice, &alice_in, reserved).await).contains("not-acceptable"));
    let foreign = get.replace("id='p'", "id='p' to='bob@x.test'");
    assert!(String::from(&w.ask(&alice, &alice_in, &foreign).await).contains("forbidden"));
}

#[tokio::test]
async fn alias_changes_republish_reachability() {
    let w = world(&["alice", "bob"]).await;
    w.mutual("alice", "bob").await;
    let (_bob, bob_in) = w.online("bob", "phone", None).await;
    drain(&bob_in).await;
    use cusax_bus::Bus;
    let bus = cusax_bus::LocalBus::new(8);
    let watcher = tokio::spawn(w.svc.clone().watch_accounts(bus.subscribe()));
    use cusax_store::AliasStore;
    w.store
        .add_alias(
            &id("alice"),
            &cusax_account::Alias::parse("+49 30 1234").expect("valid"),
        )
        .await
        .expect("alias");
    bus.publish(cusax_bus::Event::AccountChanged(
        cusax_bus::AccountChanged {
            seq: 1,
            account: id("alice"),
            kind: cusax_bus::AccountChangeKind::Aliases,
        },
    ));
    let got = tokio::time::timeout(Duration::from_secs(5), bob_in.next())
        .await
        .expect("notified in time");
    let Delivery::Stanza(el) = got else {
        panic!("killed")
    };
    let got = events(&[el]);
    assert_eq!(
        reach_uris(&got[0]),
        vec!["sip:alice@x.test", "sip:+49301234@x.test;user=phone"]
    );
    drop(bus);
    watcher.await.expect("watcher ends with the feed");
}
