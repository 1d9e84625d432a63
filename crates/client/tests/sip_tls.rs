//! RFC 3261 §26.3.1 / RFC 5630: the user agent over TLS against a real `cusaxd` — two
//! accounts register over TLS (the server's self-signed certificate trusted through
//! `TrustConfig::ca_file`), one calls the other through the proxy and each side's recording holds
//! the other side's tone; and a server whose certificate is not trusted, or names another
//! domain, is refused before anything is sent. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cusax_client::sip::OpenError;
use cusax_client::tls::TrustConfig;
use cusax_client::{
    Account, AudioSource, CallState, Event, MediaConfig, Secret, TransportKind, UaConfig, UaError,
    UserAgent,
};
use cusax_testkit::Cusaxd;
use cusax_testkit::audio::assert_tone;
use tokio::sync::mpsc::UnboundedReceiver;

const DOMAIN: &str = "example.org";
const STEP: Duration = Duration::from_secs(15);
/// How long the call lasts before it is hung up: enough audio for the tone check.
const TALK: Duration = Duration::from_secs(2);
const ALICE_TONE: f64 = 440.0;
const BOB_TONE: f64 = 880.0;

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

/// A user agent and everything it reported.
struct Ua {
    name: &'static str,
    ua: UserAgent,
    events: UnboundedReceiver<Event>,
    seen: Vec<Event>,
}

impl Ua {
    async fn start(srv: &Cusaxd, name: &'static str, tone: f64, record_dir: &Path) -> Self {
        let mut cfg = tls_config(srv, name, server_cert(srv));
        cfg.register = true;
        cfg.auto_answer = true;
        cfg.answer_source = AudioSource::Tone(tone);
        cfg.record_dir = Some(record_dir.join(name));
        let (ua, events) = UserAgent::start(cfg).await.expect("user agent starts");
        Self {
            name,
            ua,
            events,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for the first event matching `pred`, keeping every event seen.
    async fn wait_for(&mut self, what: &str, srv: &Cusaxd, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Ok(None) | Err(_) => panic!(
                    "{}: no {what} within {STEP:?}; events: {:#?}\ncusaxd:\n{}",
                    self.name,
                    self.seen,
                    srv.log()
                ),
            }
        }
    }
}

fn is_state(e: &Event, want: CallState) -> bool {
    matches!(e, Event::CallState { state, .. } if *state == want)
}

/// The recording and packet counts of an ended call.
fn media(e: &Event) -> (Option<PathBuf>, u64, u64) {
    match e {
        Event::CallState { media: Some(m), .. } => {
            (m.recording.clone(), m.packets_sent, m.packets_received)
        }
        _ => (None, 0, 0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_and_calls_over_tls_through_cusaxd_with_audio_both_ways() {
    let srv = server();
    let tmp = tempfile::tempdir().expect("tmp");
    let mut bob = Ua::start(&srv, "bob", BOB_TONE, tmp.path()).await;
    let mut alice = Ua::start(&srv, "alice", ALICE_TONE, tmp.path()).await;
    for ua in [&mut bob, &mut alice] {
        let reg = ua
            .wait_for("registration", &srv, |e| {
                matches!(e, Event::Registered { .. })
            })
            .await;
        let Event::Registered { aor, contact, .. } = reg else {
            unreachable!("matched above")
        };
        assert_eq!(aor, format!("sip:{}@{DOMAIN}", ua.name));
        assert!(contact.ends_with(";transport=tls>"), "{contact}");
    }

    let alice_wav = tmp.path().join("alice.wav");
    let call_id = alice
        .ua
        .call(
            &format!("sip:bob@{DOMAIN}"),
            MediaConfig {
                source: AudioSource::Tone(ALICE_TONE),
                record: Some(alice_wav.clone()),
            },
        )
        .await
        .expect("call placed");
    let incoming = bob
        .wait_for("incoming call", &srv, |e| {
            matches!(e, Event::IncomingCall { .. })
        })
        .await;
    let Event::IncomingCall {
        call_id: bob_call,
        from,
        call_info,
        ..
    } = incoming
    else {
        unreachable!("matched above")
    };
    assert_eq!(bob_call, call_id);
    assert_eq!(from, format!("sip:alice@{DOMAIN}"));
    assert_eq!(call_info, [format!("<xmpp:alice@{DOMAIN}>;purpose=impp")]);
    for ua in [&mut alice, &mut bob] {
        ua.wait_for("established call", &srv, |e| {
            is_state(e, CallState::Established)
        })
        .await;
    }

    // The call's duration: audio flows both ways meanwhile.
    tokio::time::sleep(TALK).await;
    alice.ua.hangup(&call_id).await;
    let alice_end = alice
        .wait_for("ended call", &srv, |e| is_state(e, CallState::Ended))
        .await;
    let bob_end = bob
        .wait_for("ended call", &srv, |e| is_state(e, CallState::Ended))
        .await;
    let (alice_rec, a_sent, a_recv) = media(&alice_end);
    let (bob_rec, b_sent, b_recv) = media(&bob_end);
    assert!(
        a_sent >= 50 && a_recv >= 50 && b_sent >= 50 && b_recv >= 50,
        "RTP both ways: alice {a_sent} sent / {a_recv} received, bob {b_sent} / {b_recv}"
    );
    assert_eq!(alice_rec.as_deref(), Some(alice_wav.as_path()));
    let bob_rec = bob_rec.expect("bob's answered call is recorded");
    let min = TALK.as_secs_f64() * 0.75;
    assert_tone(&alice_wav, BOB_TONE, &[BOB_TONE * 1.5, ALICE_TONE], min);
    assert_tone(&bob_rec, ALICE_TONE, &[ALICE_TONE * 1.5, BOB_TONE], min);

    for ua in [&mut alice, &mut bob] {
        tokio::time::timeout(STEP, ua.ua.shutdown())
            .await
            .unwrap_or_else(|_| panic!("{} did not shut down", ua.name));
        assert!(
            ua.seen
                .iter()
                .all(|e| !matches!(e, Event::TransportClosed { .. })),
            "{}: the TLS flow stayed up: {:#?}",
            ua.name,
            ua.seen
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
