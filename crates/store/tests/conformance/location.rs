//! RFC 3261 §10.3: the location store battery, run against every backend (including a
//! SQLite file that is closed and reopened, which is what a registrar restart relies on).

use cusax_account::Aor;
use cusax_store::memory::{MemoryLocationStore, MemoryStore};
use cusax_store::sqlite::SqliteStore;
use cusax_store::{Binding, LocationStore};

fn aor(s: &str) -> Aor {
    Aor::parse(s).expect("test AOR is valid")
}

/// A binding with every optional field set.
pub fn binding(a: &Aor, contact: &str, expires_at: i64) -> Binding {
    Binding {
        aor: a.clone(),
        contact: contact.to_owned(),
        expires_at,
        q: Some(500),
        call_id: "c1@host".to_owned(),
        cseq: 7,
        instance: Some("urn:uuid:00000000-0000-1000-8000-000A95A0E128".to_owned()),
        reg_id: Some(1),
        path: vec![
            "<sip:p1.example.org;lr>".to_owned(),
            "<sip:p2;lr>".to_owned(),
        ],
        source: Some("192.0.2.4:5062".parse().expect("addr")),
        transport: "udp".to_owned(),
        nat: true,
        user_agent: Some("phone/1.0".to_owned()),
        registered_at: 1_000,
    }
}

/// Everything a backend must do the same way.
pub async fn battery(s: &dyn LocationStore) {
    let alice = aor("sip:alice@example.org");
    let bob = aor("sip:bob@example.org");
    assert!(s.bindings(&alice).await.expect("read").is_empty());

    let a1 = binding(&alice, "sip:alice@192.0.2.4:5062", 2_000);
    let mut a2 = binding(&alice, "sip:alice@198.51.100.1", 1_500);
    a2.q = None;
    a2.instance = None;
    a2.reg_id = None;
    a2.path.clear();
    a2.source = None;
    a2.user_agent = None;
    a2.nat = false;
    let b1 = binding(&bob, "sip:bob@203.0.113.9;transport=tcp", 3_000);
    s.save_bindings(&[
        (alice.clone(), vec![a1.clone(), a2.clone()]),
        (bob.clone(), vec![b1.clone()]),
    ])
    .await
    .expect("save");
    assert_eq!(
        s.bindings(&alice).await.expect("read"),
        vec![a1.clone(), a2.clone()],
        "round trip of every field, sorted by contact"
    );

    // Replacing the set of one AOR leaves the others alone.
    let mut a1b = a1.clone();
    a1b.cseq = 8;
    a1b.expires_at = 2_500;
    s.save_bindings(&[(alice.clone(), vec![a1b.clone()])])
        .await
        .expect("replace");
    assert_eq!(s.bindings(&alice).await.expect("read"), vec![a1b.clone()]);
    assert_eq!(s.bindings(&bob).await.expect("read"), vec![b1.clone()]);

    // Loading at start skips what has expired by then.
    assert_eq!(
        s.load_bindings(2_600).await.expect("load"),
        vec![b1.clone()]
    );
    assert_eq!(
        s.load_bindings(0).await.expect("load"),
        vec![a1b.clone(), b1.clone()]
    );

    // Purging deletes exactly the expired ones.
    assert_eq!(s.purge_expired(2_500).await.expect("purge"), 1);
    assert!(s.bindings(&alice).await.expect("read").is_empty());
    assert_eq!(s.purge_expired(2_500).await.expect("purge"), 0);

    // Large write-backs (more rows than one statement takes) arrive whole.
    let many: Vec<(Aor, Vec<Binding>)> = (0..450)
        .map(|i| {
            let a = aor(&format!("sip:u{i}@example.org"));
            let b = binding(&a, &format!("sip:u{i}@192.0.2.1:{}", 1000 + i), 9_000);
            (a, vec![b])
        })
        .collect();
    s.save_bindings(&many).await.expect("save many");
    assert_eq!(s.load_bindings(0).await.expect("load").len(), 451);
    let gone: Vec<(Aor, Vec<Binding>)> = many.into_iter().map(|(a, _)| (a, Vec::new())).collect();
    s.save_bindings(&gone).await.expect("remove many");
    assert_eq!(s.load_bindings(0).await.expect("load"), vec![b1.clone()]);

    // An empty set removes an AOR's bindings.
    s.save_bindings(&[(bob.clone(), Vec::new())])
        .await
        .expect("remove");
    assert!(s.load_bindings(0).await.expect("load").is_empty());
}

#[tokio::test]
async fn location_memory_backend() {
    battery(&MemoryLocationStore::new()).await;
}

/// The memory store holds bindings beside accounts (so deleting an account reaches them).
#[tokio::test]
async fn location_memory_store_backend() {
    battery(&MemoryStore::new()).await;
}

#[tokio::test]
async fn location_sqlite_backend_in_memory() {
    battery(&SqliteStore::in_memory().await.expect("open")).await;
}

#[tokio::test]
async fn location_sqlite_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cusax.db");
    let s = SqliteStore::open(&path).await.expect("open");
    let a = aor("sip:carol@example.org");
    let b = binding(&a, "sip:carol@192.0.2.7", 10_000);
    s.save_bindings(&[(a.clone(), vec![b.clone()])])
        .await
        .expect("save");
    s.close().await;
    let s = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(s.load_bindings(5_000).await.expect("load"), vec![b]);
}
