//! The client's XMPP side against a real `cusaxd` on loopback: STARTTLS with the server's
//! certificate trusted from its data directory, SCRAM, roster and subscriptions, presence,
//! chat, vCard (the server-controlled SIP address, RFC 7081 §3.1), disco#info without Jingle
//! RTP (CL-04), and reconnection after the connection is cut (CL-07). Every wait is bounded.

use std::net::SocketAddr;
use std::time::Duration;

use cusax_client::tls::TrustConfig;
use cusax_client::xmpp::{OwnPresence, Show, XmppClient, XmppConfig, XmppError, XmppEvent};
use cusax_testkit::Cusaxd;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;

const DOMAIN: &str = "example.org";
const WAIT: Duration = Duration::from_secs(15);

fn server() -> Cusaxd {
    let s = Cusaxd::start(DOMAIN);
    s.import_users(
        DOMAIN,
        &[
            ("alice", "alice-secret-1"),
            ("bob", "bob-secret-1"),
            ("carol", "carol-secret-1"),
        ],
    );
    s
}

fn config(s: &Cusaxd, user: &str, password: &str, addr: SocketAddr) -> XmppConfig {
    let mut c = XmppConfig::new(&format!("{user}@{DOMAIN}"), password);
    c.server = Some(addr);
    c.trust = TrustConfig {
        ca_file: Some(s.data_dir.join(format!("tls/{DOMAIN}.crt"))),
        no_system_roots: true,
    };
    c
}

async fn next(
    rx: &mut UnboundedReceiver<XmppEvent>,
    what: &str,
    pred: impl Fn(&XmppEvent) -> bool,
) -> XmppEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => {}
            Ok(None) => panic!("event stream ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }
}

async fn login(
    s: &Cusaxd,
    user: &str,
    password: &str,
) -> (XmppClient, UnboundedReceiver<XmppEvent>, String) {
    let addr = s.addr("xmpp").expect("xmpp address");
    let (c, mut rx) = XmppClient::start(config(s, user, password, addr)).expect("start");
    let e = next(&mut rx, "connected", |e| {
        matches!(e, XmppEvent::Connected { .. })
    })
    .await;
    let XmppEvent::Connected {
        jid,
        tls,
        mechanism,
    } = e
    else {
        unreachable!()
    };
    assert!(jid.starts_with(&format!("{user}@{DOMAIN}/")), "{jid}");
    assert!(tls.starts_with("TLSv1_"), "{tls}");
    assert!(mechanism.starts_with("SCRAM-SHA-"), "{mechanism}");
    next(&mut rx, "roster", |e| matches!(e, XmppEvent::Roster { .. })).await;
    (c, rx, jid)
}

#[tokio::test]
async fn chat_presence_roster_and_vcard_against_cusaxd() {
    let s = server();
    let (alice, mut a_rx, alice_jid) = login(&s, "alice", "alice-secret-1").await;
    let (bob, mut b_rx, _) = login(&s, "bob", "bob-secret-1").await;

    // Mutual subscription (RFC 6121 §3).
    alice
        .add_contact("bob@example.org", Some("Bob"))
        .await
        .expect("add bob");
    next(&mut b_rx, "subscribe from alice", |e| {
        matches!(e, XmppEvent::Subscription { from, kind } if from == "alice@example.org" && kind == "subscribe")
    })
    .await;
    bob.approve("alice@example.org").await.expect("approve");
    // Approval sends bob's current presence to alice (RFC 6121 §3.1.5), before bob's own
    // request below, on the same stream.
    next(&mut a_rx, "bob available", |e| {
        matches!(e, XmppEvent::Presence { from, available: true, .. } if from.starts_with("bob@example.org/"))
    })
    .await;
    bob.add_contact("alice@example.org", None)
        .await
        .expect("add alice");
    next(&mut a_rx, "subscribe from bob", |e| {
        matches!(e, XmppEvent::Subscription { from, kind } if from == "bob@example.org" && kind == "subscribe")
    })
    .await;
    alice.approve("bob@example.org").await.expect("approve");
    let roster = alice.roster().await.expect("roster");
    let b = roster
        .iter()
        .find(|i| i.jid == "bob@example.org")
        .expect("bob in roster");
    assert_eq!(b.name.as_deref(), Some("Bob"));
    assert_eq!(b.subscription, "both");

    // Presence changes reach the contact.
    bob.set_presence(OwnPresence {
        show: Show::Away,
        status: Some("lunch".into()),
    })
    .await
    .expect("presence");
    next(&mut a_rx, "bob away", |e| {
        matches!(e, XmppEvent::Presence { show: Some(s), status: Some(t), .. } if s == "away" && t == "lunch")
    })
    .await;

    // Chat both ways.
    alice
        .send_message("bob@example.org", "hello <bob> & co")
        .await
        .expect("send");
    next(&mut b_rx, "alice's message", |e| {
        matches!(e, XmppEvent::Message { from, body, kind, .. }
            if from.starts_with("alice@example.org/") && body == "hello <bob> & co" && kind == "chat")
    })
    .await;
    bob.send_message("alice@example.org", "hi")
        .await
        .expect("send");
    next(
        &mut a_rx,
        "bob's message",
        |e| matches!(e, XmppEvent::Message { body, .. } if body == "hi"),
    )
    .await;

    // The vCard carries the server-controlled SIP address (RFC 7081 §3.1).
    let card = alice.vcard(Some("bob@example.org")).await.expect("vcard");
    assert!(
        card.tels.iter().any(|t| t.number == "sip:bob@example.org"),
        "{card:?}"
    );

    // disco#info of alice's client, asked by bob: no Jingle RTP (CL-04).
    let full = alice_jid.clone();
    let q = minidom::Element::builder("query", "http://jabber.org/protocol/disco#info").build();
    let mut iq = minidom::Element::builder("iq", "jabber:client")
        .append(q)
        .build();
    set(&mut iq, "type", "get");
    set(&mut iq, "to", &full);
    let answer = bob.request(iq).await.expect("disco#info answered");
    let features: Vec<String> = answer
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("query")
        .children()
        .filter_map(|f| f.attr("var").map(str::to_owned))
        .collect();
    assert!(
        features.iter().any(|f| f == "urn:xmpp:ping"),
        "{features:?}"
    );
    assert!(
        !features.iter().any(|f| f.contains("jingle")),
        "{features:?}"
    );

    // A message to a stranger's bare JID that does not exist bounces with an error.
    alice
        .send_message("nobody@example.org", "anyone?")
        .await
        .expect("send");
    next(&mut a_rx, "bounce", |e| {
        matches!(e, XmppEvent::MessageError { .. })
    })
    .await;

    alice.shutdown().await;
    next(&mut b_rx, "alice offline", |e| {
        matches!(e, XmppEvent::Presence { from, available: false, .. } if from.starts_with("alice@example.org/"))
    })
    .await;
    bob.shutdown().await;
}

fn set(el: &mut minidom::Element, name: &str, value: &str) {
    let n = rxml::NcName::try_from(name).expect("constant attribute name");
    el.set_attr(rxml::Namespace::NONE, n, value.to_owned());
}

#[tokio::test]
async fn bad_password_and_untrusted_certificate_are_refused() {
    let s = server();
    let addr = s.addr("xmpp").expect("xmpp");
    let (_c, mut rx) = XmppClient::start(config(&s, "alice", "wrong", addr)).expect("start");
    let e = next(&mut rx, "login failure", |e| {
        matches!(e, XmppEvent::LoginFailed { .. })
    })
    .await;
    assert!(matches!(e, XmppEvent::LoginFailed { reason } if reason.contains("not-authorized")));

    // Only the system roots: the self-signed server certificate is not trusted.
    let mut cfg = config(&s, "alice", "alice-secret-1", addr);
    cfg.trust = TrustConfig::default();
    cfg.reconnect = false;
    match XmppClient::start(cfg) {
        Err(XmppError::Tls(_)) => {} // no system roots on this machine at all
        Ok((_c, mut rx)) => {
            let e = next(&mut rx, "disconnect", |e| {
                matches!(e, XmppEvent::Disconnected { .. })
            })
            .await;
            assert!(
                matches!(&e, XmppEvent::Disconnected { reason, retry_in: None } if reason.contains("TLS")),
                "{e:?}"
            );
        }
        Err(e) => panic!("unexpected {e}"),
    }
}

/// A TCP relay whose connections the test can cut.
async fn relay(to: SocketAddr) -> (SocketAddr, tokio::sync::mpsc::UnboundedSender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (cut_tx, mut cut_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        loop {
            let Ok((mut a, _)) = l.accept().await else {
                return;
            };
            let Ok(mut b) = TcpStream::connect(to).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                c = cut_rx.recv() => if c.is_none() { return },
            }
        }
    });
    (addr, cut_tx)
}

#[tokio::test]
async fn the_connection_comes_back_after_it_is_cut() {
    let s = server();
    let (addr, cut) = relay(s.addr("xmpp").expect("xmpp")).await;
    let mut cfg = config(&s, "carol", "carol-secret-1", addr);
    cfg.initial_presence = Some(OwnPresence {
        show: Show::Dnd,
        status: None,
    });
    let (carol, mut rx) = XmppClient::start(cfg).expect("start");
    next(&mut rx, "connected", |e| {
        matches!(e, XmppEvent::Connected { .. })
    })
    .await;
    cut.send(()).expect("relay runs");
    let e = next(&mut rx, "disconnected", |e| {
        matches!(e, XmppEvent::Disconnected { .. })
    })
    .await;
    assert!(matches!(e, XmppEvent::Disconnected { retry_in: Some(r), .. } if r <= 1.2));
    // Requests while offline fail at once rather than hang.
    let r = carol.roster().await;
    assert!(matches!(r, Err(XmppError::NotConnected) | Ok(_)), "{r:?}");
    next(&mut rx, "reconnected", |e| {
        matches!(e, XmppEvent::Connected { .. })
    })
    .await;
    next(&mut rx, "roster again", |e| {
        matches!(e, XmppEvent::Roster { .. })
    })
    .await;
    let card = carol.vcard(None).await.expect("own vCard after reconnect");
    assert!(
        card.tels
            .iter()
            .any(|t| t.number == "sip:carol@example.org"),
        "{card:?}"
    );
    carol.shutdown().await;
}

/// Requests made while the client is still connecting fail at once and do not disturb the
/// login (they once restarted the connection attempt each time, so a busy caller kept the
/// client from ever logging in).
#[tokio::test]
async fn requests_while_connecting_do_not_hold_up_the_login() {
    let s = server();
    let addr = s.addr("xmpp").expect("xmpp");
    let (c, mut rx) =
        XmppClient::start(config(&s, "alice", "alice-secret-1", addr)).expect("start");
    let poller = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut refused = 0u32;
            while !c.connected(Duration::ZERO).await {
                if matches!(c.roster().await, Err(XmppError::NotConnected)) {
                    refused += 1;
                }
                tokio::task::yield_now().await;
            }
            refused
        })
    };
    assert!(c.connected(WAIT).await, "logged in while being asked");
    let refused = poller.await.expect("poller");
    assert!(refused > 0, "requests were made during the login");
    next(&mut rx, "connected", |e| {
        matches!(e, XmppEvent::Connected { .. })
    })
    .await;
    assert!(c.roster().await.is_ok());
    c.shutdown().await;
}
