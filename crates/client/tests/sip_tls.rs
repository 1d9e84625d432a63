//! RFC 3261 §26.3.1 / RFC 5630: the user agent over TLS against a real `cusaxd` — two
//! accounts register over TLS (the server's self-signed certificate trusted through
//! `TrustConfig::ca_file`), one calls the other through the proxy and each side's recording holds
//! the other side's tone; and a server whose certificate is not trusted, or names another
//! domain, is refused before anything is sent. Every wait is bounded.

mod common;

use std::path::PathBuf;

use common::{ALICE_TONE, AudioCall, BOB_TONE, STEP, Ua};
use cusax_client::sip::OpenError;
use cusax_client::tls::TrustConfig;
use cusax_client::{Account, Event, Secret, TransportKind, UaConfig, UaError, UserAgent};
use cusax_testkit::Cusaxd;

const DOMAIN: &str = "example.org";

fn server() -> Cusaxd {
    let srv = Cusaxd::start(DOMAIN);
    srv.import_users(DOMAIN, &[("alice", "alice-secret"), ("bob", "bob-secret")]);
    srv
}

/// The certificate cusaxd generated for its first domain (`tls/DOMAIN.crt`, datadir.rs).
fn server_cert(srv: &Cusaxd) -> PathBuf {
    srv.data_dir.join("tls").join(format!("{DOMAIN}.crt"))
}

fn tls_config(srv: &Cusaxd, user: &str, ca_file: PathBuf) -> UaConfig {
    let mut cfg = UaConfig::new(Account {
        user: user.into(),
        domain: DOMAIN.into(),
        display_name: None,
        secret: Secret::new(user, format!("{user}-secret")),
        server: srv
            .addr("sip_tls")
            .expect("cusaxd listens for SIP over TLS"),
        transport: TransportKind::Tls,
        impp: Some(format!("{user}@{DOMAIN}")),
    });
    cfg.tls = TrustConfig {
        ca_file: Some(ca_file),
        no_system_roots: true,
    };
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_and_calls_over_tls_through_cusaxd_with_audio_both_ways() {
    let srv = server();
    let tmp = tempfile::tempdir().expect("tmp");
    // The callee's record directory is not made here: the user agent makes it.
    let cfg = |name| tls_config(&srv, name, server_cert(&srv));
    let mut bob = Ua::start("bob", cfg("bob"), BOB_TONE, tmp.path()).await;
    let mut alice = Ua::start("alice", cfg("alice"), ALICE_TONE, tmp.path()).await;
    for ua in [&mut bob, &mut alice] {
        let (aor, contact) = ua.registered(&srv).await;
        assert_eq!(aor, format!("sip:{}@{DOMAIN}", ua.name));
        assert!(contact.ends_with(";transport=tls>"), "{contact}");
    }

    AudioCall {
        server: &srv,
        bob_aor: format!("sip:bob@{DOMAIN}"),
        alice_aor: format!("sip:alice@{DOMAIN}"),
        alice_jid: format!("alice@{DOMAIN}"),
        alice_wav: tmp.path().join("alice.wav"),
        bob_hangs_up: false,
        min_packets: 50,
    }
    .run(&mut alice, &mut bob)
    .await;

    for ua in [&alice, &bob] {
        ua.shutdown().await;
        assert!(
            ua.seen()
                .iter()
                .all(|e| !matches!(e, Event::TransportClosed { .. })),
            "{}: the TLS flow stayed up: {:#?}",
            ua.name,
            ua.seen()
        );
    }
}

/// The refusal `start` reports, as text, after checking it is a handshake failure.
async fn refused(cfg: UaConfig) -> String {
    match UserAgent::start(cfg).await {
        Err(UaError::Connect(e @ OpenError::Handshake { .. })) => e.to_string(),
        Err(e) => panic!("expected a TLS handshake failure, got {e}"),
        Ok(_) => panic!("a server with an untrusted certificate was accepted"),
    }
}

#[tokio::test]
async fn a_server_certificate_not_trusted_or_for_another_name_is_refused() {
    let srv = server();
    let tmp = tempfile::tempdir().expect("tmp");

    // Another self-signed certificate for the same name is not the server's.
    let other = rcgen::generate_simple_self_signed(vec![DOMAIN.to_owned()]).expect("rcgen");
    let other_pem = tmp.path().join("other.pem");
    std::fs::write(&other_pem, other.cert.pem()).expect("write");
    let mut cfg = tls_config(&srv, "alice", other_pem);
    cfg.register = true;
    let why = refused(cfg).await;
    assert!(
        why.contains(DOMAIN) && why.contains("certificate"),
        "the error says which server and that its certificate is the problem: {why}"
    );

    // The server's own certificate, but asked for under another name.
    let mut cfg = tls_config(&srv, "alice", server_cert(&srv));
    cfg.register = true;
    cfg.tls_server_name = Some("other.test".into());
    let why = refused(cfg).await;
    assert!(why.contains("other.test"), "{why}");

    // Nothing reached the registrar: it never authenticated alice. With the right trust she
    // registers at once (and the registrar's log says so, which makes the check above count).
    let authenticated = "authenticated protocol=\"sip\" account=alice@example.org";
    assert!(!srv.log().contains(authenticated), "{}", srv.log());
    let mut cfg = tls_config(&srv, "alice", server_cert(&srv));
    cfg.register = true;
    let (ua, mut events) = UserAgent::start(cfg).await.expect("trusted now");
    let first = tokio::time::timeout(STEP, events.recv())
        .await
        .expect("an event in time")
        .expect("the user agent runs");
    assert!(
        matches!(first, Event::Registered { .. }),
        "the first event is the registration: {first:?}"
    );
    assert!(srv.wait_for_log(authenticated, STEP), "{}", srv.log());
    tokio::time::timeout(STEP, ua.shutdown())
        .await
        .expect("stops");
}
