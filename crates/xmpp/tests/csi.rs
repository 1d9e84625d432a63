//! XEP-0352 over a real c2s stream: the `csi` stream feature comes after authentication
//! (§3); while the client is `<inactive/>` the server holds presence (the latest per sender)
//! and delivers a message at once, after what it held; `<active/>` flushes what is held before
//! the next stanza is answered (§5).

mod common;

use common::{DOMAIN, id, jid};
use cusax_account::{Credentials, Domain, Password};
use cusax_store::memory::MemoryStore;
use cusax_store::{AccountStore, DomainStore};
use cusax_xmpp::modules::{self, Session};
use cusax_xmpp::{Connection, XmppConfig, XmppService};
use cusax_xmpp_proto::stream::{BoundEvent, BoundStream, TlsPolicy};
use minidom::Element;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A bounded wait: a test that hangs is a failing test.
const WAIT: Duration = Duration::from_secs(10);
const CSI: &str = "urn:xmpp:csi:0";

/// The next stanza the server sends on `stream`.
async fn next(tcp: &mut TcpStream, stream: &mut BoundStream) -> Element {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.poll_event() {
            Some(BoundEvent::Stanza(el)) => return el,
            Some(other) => panic!("stream event {other:?}"),
            None => {}
        }
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("a stanza within the bounded wait")
            .expect("read");
        assert!(n > 0, "the server closed the stream");
        stream.feed(&buf[..n]);
    }
}

async fn write(tcp: &mut TcpStream, xml: &str) {
    tcp.write_all(xml.as_bytes()).await.expect("write");
}

/// What a stanza is, for comparing sequences: `presence:STATUS`, `message:BODY`, `iq:ID`.
fn what(el: &Element) -> String {
    let text = |name| {
        el.get_child(name, "jabber:client")
            .map(Element::text)
            .unwrap_or_default()
    };
    match el.name() {
        "presence" => format!("presence:{}", text("status")),
        "message" => format!("message:{}", text("body")),
        n => format!("{n}:{}", el.attr("id").unwrap_or_default()),
    }
}

/// Reads stanzas up to and including the IQ answer `id`.
async fn until_answer(tcp: &mut TcpStream, stream: &mut BoundStream, id: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let el = next(tcp, stream).await;
        let done = el.name() == "iq" && el.attr("id") == Some(id);
        seen.push(what(&el));
        if done {
            return seen;
        }
    }
}

fn ping(id: &str) -> String {
    format!("<iq type='get' id='{id}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
}

// long: one stream going inactive, held presence, a message passing at once, then active; each
// step reads what the one before left on the wire.
#[tokio::test]
async fn inactive_holds_presence_delivers_messages_and_active_flushes() {
    let store = Arc::new(MemoryStore::new());
    store
        .add_domain(&Domain::parse(DOMAIN).expect("valid"))
        .await
        .expect("domain");
    for u in ["alice", "bob"] {
        let creds = Credentials::derive(&id(u), &Password::new("pw"), &[], 4096);
        store.create_account(&id(u), &creds).await.expect("create");
    }
    let svc = XmppService::new(
        XmppConfig {
            domains: vec![DOMAIN.into()],
            tls: TlsPolicy::Disabled,
            ..XmppConfig::default()
        },
        store,
        tokio_util::sync::CancellationToken::new(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = svc.clone();
    tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.expect("accept");
        serving.serve(Connection::Plain(tcp, None), peer).await;
    });
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut alice, heard) = common::stream_login(&mut tcp, "alice", "phone").await;
    let feature = heard.find(CSI).expect("csi stream feature advertised");
    let success = heard.find("<success").expect("SASL success");
    assert!(success < feature, "§3: after authentication:\n{heard}");

    // bob, in process, sends directed presence to alice's session.
    let (sid, _bob_inbox) = svc.router().register(&jid("bob"), "desk", 64);
    let bob = Session::new(id("bob"), "desk", sid).expect("valid");
    let to_alice = format!("{}/phone", jid("alice"));
    let presence = |status: &str| {
        format!(
            "<presence xmlns='jabber:client' to='{to_alice}'><status>{status}</status></presence>"
        )
    };
    let send = |xml: String| {
        let (svc, bob) = (svc.clone(), bob.clone());
        async move {
            let el: Element = xml.parse().expect("valid");
            modules::handle(&svc, &bob, el).await;
        }
    };

    // Active: a presence arrives as it is sent.
    send(presence("zero")).await;
    write(&mut tcp, &ping("p0")).await;
    assert_eq!(
        until_answer(&mut tcp, &mut alice, "p0").await,
        ["presence:zero", "iq:p0"]
    );

    // Inactive (the server has taken it once it answers the ping that follows).
    write(
        &mut tcp,
        &format!("<inactive xmlns='{CSI}'/>{}", ping("p1")),
    )
    .await;
    assert_eq!(until_answer(&mut tcp, &mut alice, "p1").await, ["iq:p1"]);
    send(presence("one")).await;
    send(presence("two")).await;
    send(format!(
        "<message xmlns='jabber:client' to='{to_alice}' type='chat'><body>hi</body></message>"
    ))
    .await;
    // The message comes at once, after the one presence worth sending.
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(what(&next(&mut tcp, &mut alice).await));
    }
    assert_eq!(got, ["presence:two", "message:hi"]);

    send(presence("three")).await;
    send(format!(
        "<message xmlns='jabber:client' to='{to_alice}'>\
         <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'/></event></message>"
    ))
    .await;
    send(presence("four")).await;
    // Back to active: the held stanzas come first, in order, then the answer.
    write(&mut tcp, &format!("<active xmlns='{CSI}'/>{}", ping("p2"))).await;
    assert_eq!(
        until_answer(&mut tcp, &mut alice, "p2").await,
        ["message:", "presence:four", "iq:p2"]
    );
    send(presence("five")).await;
    write(&mut tcp, &ping("p3")).await;
    assert_eq!(
        until_answer(&mut tcp, &mut alice, "p3").await,
        ["presence:five", "iq:p3"]
    );
}
