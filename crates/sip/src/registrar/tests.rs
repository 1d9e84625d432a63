//! RFC 3261 §10.3 registrar behaviour against the memory store, with a fake clock (`now`).

use crate::RegistrarConfig;
use crate::SipCore;
use crate::types::{Outcome, Peer, Transport};
use bytes::Bytes;
use cusax_account::{AccountId, Alias, Credentials, Domain, Password};
use cusax_sip_proto::digest::{Algorithm, expected_response};
use cusax_sip_proto::message::headers::Challenge;
use cusax_sip_proto::{Limits, Request, Response, SipMessage, parse_datagram};
use cusax_store::memory::{MemoryLocationStore, MemoryStore};
use cusax_store::{AccountStore, AliasStore, DomainStore, LocationStore};
use std::sync::Arc;

pub(crate) const T0: i64 = 1_700_000_000;

pub(crate) struct Harness {
    pub(crate) core: SipCore,
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) peer: Peer,
    cseq: std::cell::Cell<u32>,
}

pub(crate) async fn harness() -> Harness {
    harness_with(|_| {}).await
}

/// A harness whose configuration `tweak` adjusts.
pub(crate) async fn harness_with(tweak: impl FnOnce(&mut RegistrarConfig)) -> Harness {
    let store = Arc::new(MemoryStore::new());
    let dom = Domain::parse("example.org").expect("domain");
    store.add_domain(&dom).await.expect("domain");
    for (u, pw) in [("alice", "secret"), ("bob", "hunter2")] {
        let id = AccountId::new(u, dom.clone()).expect("id");
        let creds = Credentials::derive(&id, &Password::new(pw), &[], 4096);
        store.create_account(&id, &creds).await.expect("create");
    }
    let alice = AccountId::parse("alice@example.org").expect("id");
    store
        .add_alias(
            &alice,
            &Alias::parse("sip:sales@example.org").expect("alias"),
        )
        .await
        .expect("alias");
    store
        .add_alias(&alice, &Alias::parse("+4930123").expect("alias"))
        .await
        .expect("alias");
    let mut cfg = RegistrarConfig {
        domains: vec![dom],
        ..RegistrarConfig::default()
    };
    tweak(&mut cfg);
    Harness {
        core: SipCore::with_secret(cfg, store.clone(), [7; 32], [1; 8]),
        store,
        peer: Peer {
            addr: "192.0.2.10:5062".parse().expect("addr"),
            transport: Transport::Udp,
        },
        cseq: std::cell::Cell::new(0),
    }
}

pub(crate) fn request(text: &str) -> Request {
    match parse_datagram(Bytes::from(text.replace('\n', "\r\n")), &Limits::default()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("test request does not parse: {other:?}"),
    }
}

pub(crate) fn response(bytes: &[u8]) -> Response {
    match parse_datagram(Bytes::copy_from_slice(bytes), &Limits::default()) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("core produced a bad response: {other:?}"),
    }
}

pub(crate) fn header<'a>(r: &'a Response, name: &str) -> Vec<&'a str> {
    r.headers()
        .filter(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| std::str::from_utf8(h.value).expect("ascii"))
        .collect()
}

impl Harness {
    /// Sends one request through the core, loading accounts like the listener does.
    pub(crate) async fn send(&self, now: i64, req: &Request) -> Response {
        match self.outcome(now, req).await {
            Outcome::Respond(b) => response(&b),
            other => panic!("no direct answer: {other:?}"),
        }
    }

    /// Handles a request, loading accounts and aliases like the listener does.
    pub(crate) async fn outcome(&self, now: i64, req: &Request) -> Outcome {
        for _ in 0..4 {
            match self.core.handle(now, req, &self.peer) {
                Outcome::NeedAccount { user, realm } => {
                    self.core.load_account(&user, &realm).await.expect("load");
                }
                Outcome::NeedAlias { alias, realm } => {
                    self.core.load_alias(&alias, &realm).await.expect("load");
                }
                other => return other,
            }
        }
        panic!("still missing something after loads");
    }

    pub(crate) fn register(
        &self,
        to_user: &str,
        call_id: &str,
        extra: &str,
        auth: &str,
    ) -> Request {
        self.cseq.set(self.cseq.get() + 1);
        // The Via names the address the request comes from: no NAT unless a test says so.
        request(&format!(
            "REGISTER sip:example.org SIP/2.0\n\
             Via: SIP/2.0/UDP {via};branch=z9hG4bK{cs}x;rport\n\
             Max-Forwards: 70\n\
             From: <sip:{to_user}@example.org>;tag=f1\n\
             To: <sip:{to_user}@example.org>\n\
             Call-ID: {call_id}\n\
             CSeq: {cs} REGISTER\n\
             {extra}{auth}Content-Length: 0\n\n",
            cs = self.cseq.get(),
            via = self.peer.addr
        ))
    }

    /// Does the full challenge/response dance; returns the final response.
    #[allow(clippy::too_many_arguments)] // a test helper mirroring what a phone varies
    pub(crate) async fn auth_register(
        &self,
        now: i64,
        to_user: &str,
        user: &str,
        pw: &str,
        alg: Algorithm,
        call_id: &str,
        extra: &str,
    ) -> Response {
        let r = self
            .send(now, &self.register(to_user, call_id, extra, ""))
            .await;
        assert_eq!(r.code(), 401);
        let auth = authorization(&r, alg, user, pw, 1);
        self.send(now, &self.register(to_user, call_id, extra, &auth))
            .await
    }
}

/// Builds `Authorization: …` for the challenge of `alg` in a 401.
pub(crate) fn authorization(r: &Response, alg: Algorithm, user: &str, pw: &str, nc: u32) -> String {
    authorization_for(r, alg, user, pw, nc, "sip:example.org")
}

/// As [`authorization`], with digest `uri` = `uri`.
pub(crate) fn authorization_for(
    r: &Response,
    alg: Algorithm,
    user: &str,
    pw: &str,
    nc: u32,
    uri: &str,
) -> String {
    let chal = header(r, "WWW-Authenticate")
        .into_iter()
        .filter_map(|v| Challenge::parse(v.as_bytes()))
        .find(|c| c.algorithm == Some(alg.name().as_bytes()))
        .expect("challenge for the algorithm");
    let realm = chal.realm.expect("realm");
    let nonce = chal.nonce.expect("nonce");
    let ha1 = alg.ha1(user.as_bytes(), realm, pw.as_bytes());
    let nc = format!("{nc:08x}");
    let resp = expected_response(
        alg,
        ha1.as_bytes(),
        b"REGISTER",
        uri.as_bytes(),
        nonce,
        Some((nc.as_bytes(), b"c0ffee", b"auth")),
    );
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", \
         uri=\"{uri}\", response=\"{}\", algorithm={}, qop=auth, nc={nc}, \
         cnonce=\"c0ffee\"\n",
        String::from_utf8_lossy(realm),
        String::from_utf8_lossy(nonce),
        resp.as_str(),
        alg.name()
    )
}

pub(crate) const C1: &str = "Contact: <sip:alice@192.0.2.10:5062>\nExpires: 3600\n";

#[tokio::test]
async fn challenge_then_register_with_md5_and_sha256() {
    let h = harness().await;
    let r = h.send(T0, &h.register("alice", "c1", C1, "")).await;
    assert_eq!(r.code(), 401);
    let ch = header(&r, "WWW-Authenticate");
    assert_eq!(ch.len(), 2, "{ch:?}");
    assert!(ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"));
    assert!(ch.iter().all(|c| c.contains("realm=\"example.org\"")));
    assert!(header(&r, "Via")[0].contains("rport=5062"));
    assert!(header(&r, "To")[0].contains(";tag="));

    for (alg, call) in [(Algorithm::Md5, "c1"), (Algorithm::Sha256, "c2")] {
        let r = h
            .auth_register(T0, "alice", "alice", "secret", alg, call, C1)
            .await;
        assert_eq!(r.code(), 200, "{alg:?}");
        assert_eq!(
            header(&r, "Contact"),
            vec!["<sip:alice@192.0.2.10:5062>;expires=3600"]
        );
        assert_eq!(header(&r, "Date").len(), 1);
    }
    assert_eq!(h.core.location().len(), 1, "same contact, refreshed");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let h = harness().await;
    let r = h
        .auth_register(T0, "alice", "alice", "wrong", Algorithm::Md5, "c1", C1)
        .await;
    assert_eq!(r.code(), 401);
    let r2 = h
        .auth_register(T0, "nobody", "nobody", "x", Algorithm::Md5, "c2", C1)
        .await;
    assert_eq!((r2.code(), r2.reason()), (r.code(), r.reason()));
    assert!(h.core.location().is_empty());
}

#[tokio::test]
async fn locked_foreign_and_alias_aors() {
    let h = harness().await;
    let r = h
        .auth_register(T0, "bob", "alice", "secret", Algorithm::Md5, "c1", C1)
        .await;
    assert_eq!(r.code(), 403, "alice may not register bob");
    for to in ["sales", "+4930123"] {
        let r = h
            .auth_register(T0, to, "alice", "secret", Algorithm::Md5, to, C1)
            .await;
        assert_eq!(r.code(), 200, "alias {to}");
    }
    let alice = AccountId::parse("alice@example.org").expect("id");
    h.store.set_locked(&alice, true).await.expect("lock");
    h.core.invalidate(&alice);
    let r = h
        .auth_register(T0, "alice", "alice", "secret", Algorithm::Md5, "c9", C1)
        .await;
    assert_eq!(r.code(), 403);
}

#[tokio::test]
async fn expiry_bounds_query_and_wildcard() {
    let h = harness().await;
    let brief = "Contact: <sip:alice@192.0.2.10>;expires=10\n";
    let r = h
        .auth_register(T0, "alice", "alice", "secret", Algorithm::Md5, "c1", brief)
        .await;
    assert_eq!(r.code(), 423);
    assert_eq!(header(&r, "Min-Expires"), vec!["60"]);

    let two = "Contact: <sip:alice@192.0.2.10>;expires=99999;q=0.5, <sip:alice@198.51.100.7;transport=tcp>;q=1\n\
               Contact: <xmpp:alice@example.org/phone>\n";
    let r = h
        .auth_register(T0, "alice", "alice", "secret", Algorithm::Md5, "c1", two)
        .await;
    assert_eq!(r.code(), 200);
    assert_eq!(
        header(&r, "Contact"),
        vec![
            "<sip:alice@192.0.2.10>;expires=7200;q=0.500",
            "<sip:alice@198.51.100.7;transport=tcp>;expires=3600;q=1.000"
        ]
    );
    assert!(header(&r, "Warning")[0].contains("Non-SIP"));

    // A query 100 s later lists both with their remaining time.
    let r = h
        .auth_register(
            T0 + 100,
            "alice",
            "alice",
            "secret",
            Algorithm::Md5,
            "q",
            "",
        )
        .await;
    assert_eq!(r.code(), 200);
    assert_eq!(
        header(&r, "Contact"),
        vec![
            "<sip:alice@192.0.2.10>;expires=7100;q=0.500",
            "<sip:alice@198.51.100.7;transport=tcp>;expires=3500;q=1.000"
        ]
    );

    let r = h
        .auth_register(
            T0,
            "alice",
            "alice",
            "secret",
            Algorithm::Md5,
            "c1",
            "Contact: *\n",
        )
        .await;
    assert_eq!(r.code(), 400, "* needs Expires: 0");
    let r = h
        .auth_register(
            T0,
            "alice",
            "alice",
            "secret",
            Algorithm::Md5,
            "c1",
            "Contact: *\nExpires: 0\n",
        )
        .await;
    assert_eq!(r.code(), 200);
    assert!(header(&r, "Contact").is_empty());
    assert!(h.core.location().is_empty());
}

#[tokio::test]
async fn call_id_and_cseq_ordering() {
    let h = harness().await;
    h.cseq.set(10);
    let r = h
        .auth_register(T0, "alice", "alice", "secret", Algorithm::Md5, "same", C1)
        .await;
    assert_eq!(r.code(), 200);
    // The same Call-ID with a lower CSeq fails (§10.3 step 7).
    h.cseq.set(0);
    let r = h
        .auth_register(T0, "alice", "alice", "secret", Algorithm::Md5, "same", C1)
        .await;
    assert_eq!(r.code(), 500);
    // A replayed authorized request changes nothing and gets the current bindings.
    h.cseq.set(20);
    let r1 = h.send(T0, &h.register("alice", "same", "", "")).await;
    let auth = authorization(&r1, Algorithm::Md5, "alice", "secret", 1);
    let unreg = "Contact: <sip:alice@192.0.2.10:5062>;expires=0\n";
    let req = h.register("alice", "same", unreg, &auth);
    assert_eq!(h.send(T0, &req).await.code(), 200);
    assert!(h.core.location().is_empty(), "removed");
    let again = h.send(T0, &req).await;
    assert_eq!(again.code(), 200, "retransmission answered");
    assert!(h.core.location().is_empty());
}

#[tokio::test]
async fn stale_nonce_is_rechallenged_with_stale_true() {
    let h = harness().await;
    let r = h.send(T0, &h.register("alice", "c1", C1, "")).await;
    let auth = authorization(&r, Algorithm::Md5, "alice", "secret", 1);
    let later = T0 + 1_000;
    let r = h.send(later, &h.register("alice", "c1", C1, &auth)).await;
    assert_eq!(r.code(), 401);
    assert!(header(&r, "WWW-Authenticate")[0].contains("stale=true"));
}

#[tokio::test]
async fn other_methods() {
    let h = harness().await;
    let req = |m: &str, uri: &str| {
        request(&format!(
            "{m} {uri} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKo\nFrom: <sip:a@b>;tag=1\n\
             To: <{uri}>\nCall-ID: o1\nCSeq: 1 {m}\nMax-Forwards: 70\nContent-Length: 0\n\n"
        ))
    };
    let r = h.send(T0, &req("OPTIONS", "sip:example.org")).await;
    assert_eq!(r.code(), 200);
    assert!(header(&r, "Allow")[0].contains("REGISTER"));
    assert_eq!(h.send(T0, &req("BYE", "sip:example.org")).await.code(), 405);
    // A stranger (From sip:a@b) calling bob, who has no device registered.
    assert_eq!(
        h.send(T0, &req("INVITE", "sip:bob@example.org"))
            .await
            .code(),
        480
    );
    assert_eq!(h.send(T0, &req("FOO", "sip:example.org")).await.code(), 501);
    assert!(matches!(
        h.core.handle(T0, &req("ACK", "sip:example.org"), &h.peer),
        Outcome::Nothing
    ));
}

#[tokio::test]
async fn write_behind_flush_and_reload() {
    let h = harness().await;
    let r = h
        .auth_register(T0, "alice", "alice", "secret", Algorithm::Md5, "c1", C1)
        .await;
    assert_eq!(r.code(), 200);
    let disk = MemoryLocationStore::new();
    assert_eq!(h.core.location().flush(&disk).await.expect("flush"), 1);
    assert_eq!(
        h.core.location().flush(&disk).await.expect("flush"),
        0,
        "clean"
    );
    let loaded = disk.load_bindings(T0).await.expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].transport, "udp");
    assert_eq!(loaded[0].source, Some(h.peer.addr));
    let fresh = harness().await;
    fresh.core.location().load(loaded);
    assert_eq!(fresh.core.location().len(), 1);
    assert_eq!(
        fresh.core.location().sweep(T0 + 3_600),
        1,
        "expired by the timer"
    );
}

/// One REGISTER for alice answered with credentials whose digest `uri` is `uri`.
async fn register_with_digest_uri(h: &Harness, user: &str, call_id: &str, uri: &str) -> Response {
    let r = h.send(T0, &h.register(user, call_id, C1, "")).await;
    assert_eq!(r.code(), 401);
    let pw = if user == "alice" {
        "secret"
    } else {
        "whatever"
    };
    let auth = authorization_for(&r, Algorithm::Md5, user, pw, 1, uri);
    h.send(T0, &h.register(user, call_id, C1, &auth)).await
}

#[tokio::test]
async fn a_digest_uri_naming_this_server_identifies_the_registrar() {
    let h = harness_with(|c| {
        c.proxy.advertised.local_ips = vec!["127.0.0.1".parse().expect("ip")];
        c.proxy.advertised.host = "192.0.2.1".to_owned();
    })
    .await;
    // sipp's default (`sip:remote_ip:remote_port`), the advertised host, a served domain in
    // another case, our TLS-less ports, transport parameters, sips:, the AOR being registered.
    for (i, uri) in [
        "sip:127.0.0.1:5060",
        "sip:127.0.0.1",
        "sip:192.0.2.1:5060;transport=udp",
        "sip:EXAMPLE.org:5060",
        "sips:example.org",
        "sip:example.org;transport=tcp",
        "sip:alice@example.org",
    ]
    .into_iter()
    .enumerate()
    {
        let r = register_with_digest_uri(&h, "alice", &format!("ok{i}"), uri).await;
        assert_eq!(r.code(), 200, "{uri}: {:?}", r.reason());
    }
}

#[tokio::test]
async fn a_digest_uri_naming_another_resource_is_refused() {
    let h = harness().await;
    for (i, uri) in [
        "sip:bob@example.org",
        "sip:alice@other.example",
        "sip:other.example",
        "sip:127.0.0.1:5999",
        "sip:198.51.100.1:5060",
        "not a uri",
    ]
    .into_iter()
    .enumerate()
    {
        let r = register_with_digest_uri(&h, "alice", &format!("bad{i}"), uri).await;
        assert_eq!(
            (r.code(), r.reason()),
            (400, &b"Digest URI Does Not Match Request-URI"[..]),
            "{uri}"
        );
        // An unknown user gets the same answer: the check runs before the account lookup.
        let r = register_with_digest_uri(&h, "nobody", &format!("bad-n{i}"), uri).await;
        assert_eq!(r.code(), 400, "{uri}, unknown user");
    }
    assert!(h.core.location().is_empty(), "nothing was bound");
}

#[tokio::test]
async fn binding_changes_are_published_on_the_bus() {
    use cusax_bus::{BindingChanged, Bus, Event, LocalBus, TryRecvError};
    let mut h = harness().await;
    let bus = Arc::new(LocalBus::default());
    let mut sub = bus.subscribe();
    h.core = h.core.with_bus(bus.clone());
    let alice = |contacts| {
        Event::BindingChanged(BindingChanged {
            aor: "sip:alice@example.org".into(),
            contacts,
        })
    };
    let r = h
        .auth_register(T0, "alice", "alice", "secret", Algorithm::Md5, "c1", C1)
        .await;
    assert_eq!(r.code(), 200);
    assert_eq!(sub.try_recv(), Ok(alice(1)));
    assert_eq!(
        sub.try_recv(),
        Err(TryRecvError::Empty),
        "the challenge changed nothing"
    );
    let unreg = "Contact: <sip:alice@192.0.2.10:5062>;expires=0\n";
    let r = h
        .auth_register(
            T0 + 1,
            "alice",
            "alice",
            "secret",
            Algorithm::Md5,
            "c1",
            unreg,
        )
        .await;
    assert_eq!(r.code(), 200);
    assert_eq!(sub.try_recv(), Ok(alice(0)));
    // A binding that expires is a change too, announced when it is swept.
    let r = h
        .auth_register(T0 + 2, "alice", "alice", "secret", Algorithm::Md5, "c1", C1)
        .await;
    assert_eq!(r.code(), 200);
    assert_eq!(sub.try_recv(), Ok(alice(1)));
    assert_eq!(h.core.location().sweep(T0 + 2 + 3599), 0);
    assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(h.core.location().sweep(T0 + 2 + 3600), 1);
    assert_eq!(sub.try_recv(), Ok(alice(0)));
}
