//! RFC 3261 §16: fuzz the registrar and proxy decisions with arbitrary message sequences.
//!
//! The input is split at `0xFF` bytes into messages; each is parsed as a datagram from one of
//! two peers (UDP and TCP) and handed to `SipCore` (requests) or to the proxy's response
//! handling, with an account and a binding in place so that forwarding paths run. Then the
//! transaction timers are driven far into the future. Nothing may panic.
#![no_main]

use bytes::Bytes;
use cusax_account::{AccountId, Credentials, Domain, Password};
use cusax_sip::{Peer, RegistrarConfig, SipCore, Transport};
use cusax_sip_proto::{Limits, SipMessage, parse_datagram};
use cusax_store::memory::MemoryStore;
use cusax_store::{AccountStore, Binding, DomainStore};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn core() -> &'static SipCore {
    static CORE: OnceLock<SipCore> = OnceLock::new();
    CORE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let store = Arc::new(MemoryStore::new());
        let dom = Domain::parse("example.org").expect("domain");
        let alice = AccountId::parse("alice@example.org").expect("id");
        rt.block_on(async {
            store.add_domain(&dom).await.expect("domain");
            let creds = Credentials::derive(&alice, &Password::new("pw"), &[], 4096);
            store.create_account(&alice, &creds).await.expect("account");
        });
        let cfg = RegistrarConfig {
            domains: vec![dom.clone()],
            ..RegistrarConfig::default()
        };
        let core = SipCore::with_secret(cfg, store, [3; 32], [4; 8]);
        rt.block_on(core.load_account("alice", &dom)).expect("load");
        core.location().load(vec![Binding {
            aor: alice.aor(),
            contact: "sip:alice@192.0.2.7:5062".into(),
            expires_at: i64::MAX / 2,
            q: None,
            call_id: "c".into(),
            cseq: 1,
            instance: Some("urn:uuid:0000".into()),
            reg_id: Some(1),
            path: Vec::new(),
            source: Some("192.0.2.7:5062".parse().expect("addr")),
            transport: "udp".into(),
            nat: false,
            user_agent: None,
            registered_at: 0,
        }]);
        core
    })
}

fuzz_target!(|data: &[u8]| {
    let core = core();
    let peers = [
        Peer {
            addr: "192.0.2.9:5060".parse().expect("addr"),
            transport: Transport::Udp,
        },
        Peer {
            addr: "192.0.2.7:5062".parse().expect("addr"),
            transport: Transport::Tcp,
        },
    ];
    let limits = Limits::default();
    for (i, part) in data.split(|&b| b == 0xFF).enumerate().take(16) {
        let peer = &peers[i % 2];
        let Ok(msg) = parse_datagram(Bytes::copy_from_slice(part), &limits) else {
            continue;
        };
        match msg.validated() {
            Ok(SipMessage::Request(r)) => {
                let _ = core.handle(1_700_000_000, &r, peer);
            }
            Ok(SipMessage::Response(r)) => {
                let _ = core.handle_response(&r, peer);
            }
            Err(bad) => {
                let _ = core.answer_invalid(&bad, peer);
            }
        }
    }
    let _ = core.tick(Instant::now() + Duration::from_secs(3600));
});
