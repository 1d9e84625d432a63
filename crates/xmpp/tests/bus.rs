//! RFC 6120 §7 (resource binding) on the cluster bus: a session bound over a real c2s stream
//! is announced as `SessionUp`, and its end as `SessionDown`.

mod common;

use cusax_account::{AccountId, Credentials, Domain, Password};
use cusax_bus::{Bus, Event, LocalBus, SessionChanged, Subscription};
use cusax_store::memory::MemoryStore;
use cusax_store::{AccountStore, DomainStore};
use cusax_xmpp::{Connection, XmppConfig, XmppService};
use cusax_xmpp_proto::stream::TlsPolicy;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// A bounded wait: a test that hangs is a failing test.
const WAIT: Duration = Duration::from_secs(10);

async fn next_session_event(sub: &mut Subscription) -> Event {
    loop {
        let e = tokio::time::timeout(WAIT, sub.recv())
            .await
            .expect("a bus event within the bounded wait")
            .expect("bus open");
        if matches!(e, Event::SessionUp(_) | Event::SessionDown(_)) {
            return e;
        }
    }
}

/// Logs in over `tcp` and binds `resource`; returns the bound JID.
async fn login(tcp: &mut TcpStream, user: &str, resource: &str) -> String {
    common::stream_login(tcp, user, resource)
        .await
        .0
        .jid()
        .to_string()
}

#[tokio::test]
async fn a_bound_session_and_its_end_are_announced_on_the_bus() {
    let store = Arc::new(MemoryStore::new());
    store
        .add_domain(&Domain::parse("x.test").expect("valid"))
        .await
        .expect("domain");
    let alice = AccountId::parse("alice@x.test").expect("valid");
    let creds = Credentials::derive(&alice, &Password::new("pw"), &[], 4096);
    store.create_account(&alice, &creds).await.expect("create");
    let bus = Arc::new(LocalBus::default());
    let mut sub = bus.subscribe();
    let svc = XmppService::with_bus(
        XmppConfig {
            domains: vec!["x.test".into()],
            tls: TlsPolicy::Disabled,
            ..XmppConfig::default()
        },
        store,
        bus.clone(),
        tokio_util::sync::CancellationToken::new(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.expect("accept");
        svc.serve(Connection::Plain(tcp, None), peer).await;
    });

    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(
        login(&mut tcp, "alice", "phone").await,
        "alice@x.test/phone"
    );
    let expected = SessionChanged {
        account: alice,
        resource: "phone".into(),
    };
    assert_eq!(
        next_session_event(&mut sub).await,
        Event::SessionUp(expected.clone())
    );

    tcp.write_all(b"</stream:stream>").await.expect("close");
    drop(tcp);
    assert_eq!(
        next_session_event(&mut sub).await,
        Event::SessionDown(expected)
    );
    tokio::time::timeout(WAIT, server)
        .await
        .expect("the connection task ends")
        .expect("no panic");
}
