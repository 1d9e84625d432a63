//! The module registry: hooks run by priority, disco#info lists what the modules
//! registered, IQs go to the registered handler or get `service-unavailable`, and stanzas
//! for remote domains reach the S2S router.

mod common;

use async_trait::async_trait;
use common::{DOMAIN, drain, jid, world};
use cusax_xmpp::modules::{self, IqReply, Session};
use cusax_xmpp::registry::{
    Dests, Event, Hook, HookPoint, IqHandler, IqKind, IqRequest, Module, Registry, Scope,
};
use cusax_xmpp::{S2sRouter, XmppService};
use minidom::Element;
use std::sync::{Arc, Mutex};

const NS_TEST: &str = "urn:test:echo";

/// A module that records the order its hooks ran in and answers one IQ.
#[derive(Default)]
struct Probe {
    ran: Mutex<Vec<&'static str>>,
    remote: Mutex<Vec<String>>,
}

struct Tagged(&'static str, Arc<Probe>);

#[async_trait]
impl Hook for Tagged {
    async fn on(&self, _svc: &XmppService, event: &Event<'_>) {
        if matches!(event, Event::SessionStarted { .. }) {
            self.1.ran.lock().expect("lock").push(self.0);
        }
    }
}

impl Module for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.feature(Scope::Server, NS_TEST);
        r.iq(
            &[IqKind::Get],
            NS_TEST,
            Some("echo"),
            Dests::SERVER,
            self.clone(),
        );
        let started = &[HookPoint::SessionStarted];
        r.hook(started, 5, Arc::new(Tagged("five-first", self.clone())));
        r.hook(started, -1, Arc::new(Tagged("minus-one", self.clone())));
        r.hook(started, 10, Arc::new(Tagged("ten", self.clone())));
        r.hook(started, 5, Arc::new(Tagged("five-second", self.clone())));
        r.s2s(self);
    }
}

#[async_trait]
impl IqHandler for Probe {
    async fn handle(&self, req: &IqRequest<'_>) -> IqReply {
        IqReply::Result(Some(req.payload.clone()))
    }
}

#[async_trait]
impl S2sRouter for Probe {
    async fn route(&self, _svc: &XmppService, _s: &Session, to: &jid::Jid, el: Element) {
        let kind = format!("{} to {to}", el.name());
        self.remote.lock().expect("lock").push(kind);
    }
}

/// The test world's service rebuilt with the probe module added.
async fn with_probe() -> (common::World, Arc<Probe>) {
    let mut w = world(&["alice", "bob"]).await;
    let probe = Arc::new(Probe::default());
    let config = cusax_xmpp::XmppConfig {
        domains: vec![DOMAIN.to_owned()],
        ..cusax_xmpp::XmppConfig::default()
    };
    w.svc = XmppService::with_modules(
        config,
        w.store.clone(),
        tokio_util::sync::CancellationToken::new(),
        vec![probe.clone()],
    );
    (w, probe)
}

#[tokio::test]
async fn hooks_run_by_priority_then_in_registration_order() {
    let (w, probe) = with_probe().await;
    let (s, _inbox) = w.bind("alice", "r");
    modules::session_started(&w.svc, &s).await;
    assert_eq!(
        *probe.ran.lock().expect("lock"),
        ["ten", "five-first", "five-second", "minus-one"]
    );
}

fn vars(answer: &Element, child: &str, attr: &str) -> Vec<String> {
    let q = answer
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("a disco#info result");
    q.children()
        .filter(|c| c.name() == child)
        .filter_map(|c| c.attr(attr).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn disco_info_lists_the_features_the_modules_registered() {
    let (w, _probe) = with_probe().await;
    let (s, inbox) = w.bind("alice", "r");
    let disco = |to: &str| {
        format!(
            "<iq xmlns='jabber:client' type='get' id='d' to='{to}'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        )
    };
    let server = w.ask(&s, &inbox, &disco(DOMAIN)).await;
    assert_eq!(
        vars(&server, "feature", "var"),
        [
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "jabber:iq:roster",
            "urn:xmpp:features:rosterver",
            "vcard-temp",
            "urn:xmpp:ping",
            "jabber:iq:version",
            "urn:xmpp:blocking",
            "jabber:iq:register",
            "jabber:iq:private",
            "msgoffline",
            "urn:xmpp:delay",
            "urn:xmpp:carbons:2",
            NS_TEST,
        ]
    );
    assert_eq!(vars(&server, "identity", "category"), ["server"]);
    let account = w.ask(&s, &inbox, &disco(&jid("bob"))).await;
    assert_eq!(
        vars(&account, "identity", "category"),
        ["account", "pubsub"]
    );
    let features = vars(&account, "feature", "var");
    assert_eq!(features[0], "http://jabber.org/protocol/disco#info");
    assert!(features.iter().all(|f| f != NS_TEST), "{features:?}");
    assert_eq!(
        w.svc.registry().features(Scope::Account).count(),
        features.len()
    );
}

#[tokio::test]
async fn iqs_reach_the_registered_handler_and_nothing_else_is_answered() {
    let (w, _probe) = with_probe().await;
    let (s, inbox) = w.bind("alice", "r");
    let ask = |id: &str, to: &str, kind: &str, payload: &str| {
        format!("<iq xmlns='jabber:client' type='{kind}' id='{id}' to='{to}'>{payload}</iq>")
    };
    let echo = format!("<echo xmlns='{NS_TEST}'/>");
    let ok = w.ask(&s, &inbox, &ask("ok", DOMAIN, "get", &echo)).await;
    assert_eq!(ok.attr("type"), Some("result"), "{ok:?}");
    assert!(ok.get_child("echo", NS_TEST).is_some(), "{ok:?}");
    let unavailable = |e: &Element| {
        e.attr("type") == Some("error")
            && e.get_child("error", "jabber:client")
                .and_then(|x| {
                    x.get_child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas")
                })
                .is_some()
    };
    for (id, to, kind, payload) in [
        (
            "unknown-ns",
            DOMAIN,
            "get",
            "<x xmlns='urn:test:nobody'/>".to_owned(),
        ),
        (
            "wrong-element",
            DOMAIN,
            "get",
            format!("<other xmlns='{NS_TEST}'/>"),
        ),
        ("wrong-kind", DOMAIN, "set", echo.clone()),
        ("wrong-dest", &jid("bob"), "get", echo.clone()),
    ] {
        let e = w.ask(&s, &inbox, &ask(id, to, kind, &payload)).await;
        assert!(unavailable(&e), "{id}: {e:?}");
    }
}

#[tokio::test]
async fn stanzas_for_remote_domains_go_to_the_s2s_router() {
    let (w, probe) = with_probe().await;
    let (s, inbox) = w.bind("alice", "r");
    w.send(
        &s,
        "<message xmlns='jabber:client' to='someone@remote.test' type='chat'><body>hi</body></message>",
    )
    .await;
    w.send(
        &s,
        "<iq xmlns='jabber:client' to='remote.test' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    assert_eq!(
        *probe.remote.lock().expect("lock"),
        ["message to someone@remote.test", "iq to remote.test"]
    );
    assert!(drain(&inbox).await.is_empty(), "the router owns the answer");
}

#[tokio::test]
async fn without_federation_remote_requests_bounce() {
    let w = world(&["alice"]).await;
    let (s, inbox) = w.bind("alice", "r");
    let answer = w
        .ask(
            &s,
            &inbox,
            "<iq xmlns='jabber:client' to='remote.test' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    let err = answer
        .get_child("error", "jabber:client")
        .expect("an error");
    assert!(
        err.get_child(
            "remote-server-not-found",
            "urn:ietf:params:xml:ns:xmpp-stanzas"
        )
        .is_some(),
        "{answer:?}"
    );
    w.send(&s, "<presence xmlns='jabber:client' to='x@remote.test'/>")
        .await;
    assert!(drain(&inbox).await.is_empty(), "presence is not bounced");
}

/// A hosted sub-domain that records what reaches it.
#[derive(Default)]
struct Rooms {
    got: Mutex<Vec<String>>,
}

#[async_trait]
impl cusax_xmpp::Component for Rooms {
    fn domain(&self) -> &str {
        "conference.x.test"
    }

    async fn stanza(&self, _svc: &XmppService, _s: &Session, to: &jid::Jid, el: Element) {
        self.got
            .lock()
            .expect("lock")
            .push(format!("{} to {to}", el.name()));
    }
}

struct HostsRooms(Arc<Rooms>);

impl Module for HostsRooms {
    fn name(&self) -> &'static str {
        "rooms"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        r.component(self.0.clone());
    }
}

#[tokio::test]
async fn a_hosted_component_gets_every_stanza_for_its_domain() {
    let w = world(&["alice"]).await;
    let rooms = Arc::new(Rooms::default());
    let svc = XmppService::with_modules(
        cusax_xmpp::XmppConfig {
            domains: vec![DOMAIN.to_owned()],
            ..cusax_xmpp::XmppConfig::default()
        },
        w.store.clone(),
        tokio_util::sync::CancellationToken::new(),
        vec![Arc::new(HostsRooms(rooms.clone()))],
    );
    let (sid, inbox) = svc.router().register(&jid("alice"), "r", 16);
    let s = Session::new(common::id("alice"), "r", sid).expect("valid");
    for stanza in [
        "<message xmlns='jabber:client' to='room@conference.x.test' type='groupchat'><body>hi</body></message>",
        "<presence xmlns='jabber:client' to='room@conference.x.test/alice'/>",
        "<iq xmlns='jabber:client' to='conference.x.test' type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    ] {
        modules::handle(&svc, &s, common::xml(stanza)).await;
    }
    assert_eq!(
        *rooms.got.lock().expect("lock"),
        [
            "message to room@conference.x.test",
            "presence to room@conference.x.test/alice",
            "iq to conference.x.test",
        ]
    );
    assert!(
        drain(&inbox).await.is_empty(),
        "the server answered for the component"
    );
}

/// Records which message events fired, and for whom.
#[derive(Default)]
struct Messages {
    seen: Mutex<Vec<String>>,
}

#[async_trait]
impl Hook for Messages {
    async fn on(&self, _svc: &XmppService, event: &Event<'_>) {
        let line = match event {
            Event::MessageSent { dest, message, .. } => {
                format!("sent {:?} to {dest:?}", message.attr("from"))
            }
            Event::MessageDelivered { to, recipients, .. } => {
                format!("delivered to {to} sessions {recipients:?}")
            }
            Event::MessageStored { owner, .. } => format!("stored for {owner}"),
            _ => return,
        };
        self.seen.lock().expect("lock").push(line);
    }
}

impl Module for Messages {
    fn name(&self) -> &'static str {
        "messages"
    }

    fn register(self: Arc<Self>, r: &mut Registry) {
        let points = &[
            HookPoint::MessageSent,
            HookPoint::MessageDelivered,
            HookPoint::MessageStored,
        ];
        r.hook(points, 0, self);
    }
}

#[tokio::test]
async fn message_hooks_see_sending_deliveries_and_offline_storage() {
    let w = world(&["alice", "bob"]).await;
    let hook = Arc::new(Messages::default());
    let svc = XmppService::with_modules(
        cusax_xmpp::XmppConfig {
            domains: vec![DOMAIN.to_owned()],
            ..cusax_xmpp::XmppConfig::default()
        },
        w.store.clone(),
        tokio_util::sync::CancellationToken::new(),
        vec![hook.clone()],
    );
    let (sid, _inbox) = svc.router().register(&jid("alice"), "r", 16);
    let alice = Session::new(common::id("alice"), "r", sid).expect("valid");
    let chat = format!(
        "<message xmlns='jabber:client' to='{}' type='chat'><body>hi</body></message>",
        jid("bob")
    );
    modules::handle(&svc, &alice, common::xml(&chat)).await;
    let (bid, bob_in) = svc.router().register(&jid("bob"), "r", 16);
    let bob = Session::new(common::id("bob"), "r", bid).expect("valid");
    modules::handle(&svc, &bob, common::xml("<presence xmlns='jabber:client'/>")).await;
    let got = drain(&bob_in).await;
    assert!(got.iter().any(|e| e.name() == "message"), "{got:?}");
    modules::handle(&svc, &alice, common::xml(&chat)).await;
    // Refused at the sender: to the server itself, no "sent".
    let to_server = format!("<message xmlns='jabber:client' to='{DOMAIN}' type='chat'/>");
    modules::handle(&svc, &alice, common::xml(&to_server)).await;
    let sent = format!(
        "sent Some(\"{}/r\") to LocalBare({})",
        jid("alice"),
        jid("bob")
    );
    assert_eq!(
        *hook.seen.lock().expect("lock"),
        [
            sent.clone(),
            format!("stored for {}", jid("bob")),
            sent,
            format!("delivered to {} sessions [{bid}]", jid("bob")),
        ]
    );
}
