//! The in-process test world shared by the service tests: a `MemoryStore`, an
//! `XmppService` for one domain, sessions registered in its router (no sockets).
//!
//! Every handler finishes its sends before it returns, so what a session has not received
//! once the call returned it never gets: inboxes are drained without waiting.
#![allow(dead_code)] // each test file uses its own part of the world

use cusax_account::{AccountId, Credentials, Password};
use cusax_store::memory::MemoryStore;
use cusax_store::{AccountStore, DomainStore, RosterItem, RosterStore, Subscription};
use cusax_xmpp::modules::{self, Session, caps};
use cusax_xmpp::{Delivery, Inbox, XmppConfig, XmppService};
use cusax_xmpp_proto::stream::{
    BoundStream, ClientConfig, ClientEvent, ClientNegotiation, TlsPolicy,
};
use cusax_xmpp_proto::xml::XmlLimits;
use minidom::Element;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A bounded wait for the server over a real stream.
const STREAM_WAIT: Duration = Duration::from_secs(10);

pub const DOMAIN: &str = "x.test";

pub fn id(user: &str) -> AccountId {
    AccountId::parse(&format!("{user}@{DOMAIN}")).expect("test address is valid")
}

pub fn jid(user: &str) -> String {
    format!("{user}@{DOMAIN}")
}

pub fn xml(s: &str) -> Element {
    s.parse().expect("valid test XML")
}

pub struct World {
    pub svc: XmppService,
    pub store: Arc<MemoryStore>,
}

/// A service for `DOMAIN` with the given accounts.
pub async fn world(users: &[&str]) -> World {
    let store = Arc::new(MemoryStore::new());
    store
        .add_domain(&cusax_account::Domain::parse(DOMAIN).expect("valid"))
        .await
        .expect("domain");
    for u in users {
        let a = id(u);
        let creds = Credentials::derive(&a, &Password::new("pw"), &[], 1);
        store.create_account(&a, &creds).await.expect("create");
    }
    let config = XmppConfig {
        domains: vec![DOMAIN.to_owned()],
        ..XmppConfig::default()
    };
    let svc = XmppService::new(
        config,
        store.clone(),
        tokio_util::sync::CancellationToken::new(),
    );
    World { svc, store }
}

impl World {
    /// `owner`'s roster holds `contact` with `sub`.
    pub async fn roster(&self, owner: &str, contact: &str, sub: Subscription) {
        let item = RosterItem {
            jid: jid(contact),
            subscription: sub,
            ..RosterItem::default()
        };
        self.store
            .put_roster_item(&id(owner), &item)
            .await
            .expect("roster");
    }

    /// A mutual (`both`) subscription between two users.
    pub async fn mutual(&self, a: &str, b: &str) {
        self.roster(a, b, Subscription::Both).await;
        self.roster(b, a, Subscription::Both).await;
    }

    /// A bound session (not yet available).
    pub fn bind(&self, user: &str, resource: &str) -> (Session, Arc<Inbox>) {
        let bare = jid(user);
        let (sid, inbox) = self.svc.router().register(&bare, resource, 256);
        let s = Session::new(id(user), resource, sid).expect("valid test JID");
        (s, inbox)
    }

    pub async fn send(&self, s: &Session, stanza: &str) {
        modules::handle(&self.svc, s, xml(stanza)).await;
    }

    /// A bound and available session, with XEP-0115 caps `ver` if given.
    pub async fn online(
        &self,
        user: &str,
        resource: &str,
        ver: Option<&str>,
    ) -> (Session, Arc<Inbox>) {
        let (s, inbox) = self.bind(user, resource);
        self.available(&s, ver).await;
        (s, inbox)
    }

    pub async fn available(&self, s: &Session, ver: Option<&str>) {
        let caps = ver.map_or(String::new(), |v| {
            format!(
                "<c xmlns='{}' hash='sha-1' node='urn:test' ver='{v}'/>",
                caps::NS
            )
        });
        self.send(
            s,
            &format!("<presence xmlns='jabber:client'>{caps}</presence>"),
        )
        .await;
    }

    /// Stores the user's "on the phone" opt-in through XEP-0049, as a client would.
    pub async fn opt_in(&self, s: &Session, inbox: &Inbox, on: bool) {
        let answer = self
            .ask(
                s,
                inbox,
                &format!(
                    "<iq xmlns='jabber:client' type='set' id='opt'><query xmlns='jabber:iq:private'>\
                     <phone-activity xmlns='urn:cusax:phone-activity:0' publish='{on}'/></query></iq>"
                ),
            )
            .await;
        assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
    }

    /// Sends an IQ and returns the answer the session got (other stanzas are dropped).
    pub async fn ask(&self, s: &Session, inbox: &Inbox, iq: &str) -> Element {
        let want = xml(iq).attr("id").map(str::to_owned);
        self.send(s, iq).await;
        drain(inbox)
            .await
            .into_iter()
            .find(|e| e.name() == "iq" && e.attr("id").map(str::to_owned) == want)
            .expect("the IQ was answered")
    }

    pub async fn call(&self, user: &str, on: bool) {
        self.svc.set_in_call(&id(user), on).await;
    }
}

/// Everything queued for a session now (a zero timeout polls the inbox once per stanza).
pub async fn drain(inbox: &Inbox) -> Vec<Element> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::ZERO, inbox.next()).await {
            Ok(Delivery::Stanza(el)) => out.push(el),
            Ok(Delivery::Kill(e)) => panic!("session killed: {e:?}"),
            Err(_) => return out,
        }
    }
}

/// Logs in as `user` (password `pw`) over `tcp` with SCRAM, no TLS, and binds `resource`;
/// returns the bound stream and everything the server sent during negotiation.
pub async fn stream_login(
    tcp: &mut TcpStream,
    user: &str,
    resource: &str,
) -> (BoundStream, String) {
    let mut neg = ClientNegotiation::new(ClientConfig {
        domain: DOMAIN.into(),
        username: user.into(),
        password: "pw".into(),
        cached: None,
        resource: Some(resource.into()),
        tls: TlsPolicy::Disabled,
        allow_plain: false,
        limits: XmlLimits::default(),
    });
    let mut heard = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..100 {
        let out = neg.take_output();
        if !out.is_empty() {
            tcp.write_all(&out).await.expect("write");
        }
        while let Some(ev) = neg.poll_event() {
            match ev {
                ClientEvent::Bound(_) => {
                    let stream = neg.into_bound().expect("bound");
                    return (stream, String::from_utf8_lossy(&heard).into_owned());
                }
                ClientEvent::Failed(e) => panic!("login failed: {e}"),
                _ => {}
            }
        }
        let n = tokio::time::timeout(STREAM_WAIT, tcp.read(&mut buf))
            .await
            .expect("the server answers within the bounded wait")
            .expect("read");
        assert!(n > 0, "the server closed the stream during negotiation");
        heard.extend_from_slice(&buf[..n]);
        neg.feed(&buf[..n]);
    }
    panic!("not bound after 100 exchanges");
}
