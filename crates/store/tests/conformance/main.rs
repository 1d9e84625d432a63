//! One battery, every backend: the store traits behave the same on SQLite and in memory.

use cusax_account::{AccountId, Alias, Credentials, DigestAlgorithm, Domain, Password, ScramHash};
use cusax_store::memory::MemoryStore;
use cusax_store::sqlite::SqliteStore;
use cusax_store::{
    AccountStore, ChangeKind, ChangeLog, ServerStore, Store, StoreError, StoreUrl, conformance_urls,
};
use std::sync::Arc;

mod xmpp;
// The location battery runs its own backends (including a reopened file).
mod location;
// Account deletion across every trait, on every backend.
mod deletion;

fn id(s: &str) -> AccountId {
    AccountId::parse(s).expect("test address is valid")
}

fn dom(s: &str) -> Domain {
    Domain::parse(s).expect("test domain is valid")
}

fn creds(a: &AccountId, pw: &str) -> Credentials {
    Credentials::derive(a, &Password::new(pw), &[], 64)
}

async fn battery(s: &dyn Store) {
    domains(s).await;
    accounts(s).await;
    aliases(s).await;
    bulk(s).await;
    delete_cascades(s).await;
    change_log(s).await;
}

async fn domains(s: &dyn Store) {
    s.add_domain(&dom("example.org")).await.expect("add");
    assert!(matches!(
        s.add_domain(&dom("example.org")).await,
        Err(StoreError::DomainExists(_))
    ));
    s.ensure_domain(&dom("example.org"))
        .await
        .expect("idempotent");
    s.add_domain(&dom("b.example")).await.expect("add");
    assert_eq!(
        s.list_domains().await.expect("list"),
        vec![dom("b.example"), dom("example.org")]
    );
    assert!(s.has_domain(&dom("b.example")).await.expect("has"));
    s.delete_domain(&dom("b.example"))
        .await
        .expect("delete empty");
    assert!(!s.has_domain(&dom("b.example")).await.expect("has"));
    assert!(matches!(
        s.delete_domain(&dom("b.example")).await,
        Err(StoreError::UnknownDomain(_))
    ));
}

async fn accounts(s: &dyn Store) {
    let alice = id("alice@example.org");
    let c = creds(&alice, "pw1");
    s.create_account(&alice, &c).await.expect("create");
    assert!(matches!(
        s.create_account(&alice, &c).await,
        Err(StoreError::AccountExists(_))
    ));
    let stranger = id("bob@nowhere.example");
    assert!(matches!(
        s.create_account(&stranger, &creds(&stranger, "x")).await,
        Err(StoreError::UnknownDomain(_))
    ));
    let rec = s.account(&alice).await.expect("read").expect("exists");
    assert_eq!(
        rec.credentials.scram(ScramHash::Sha1),
        c.scram(ScramHash::Sha1)
    );
    assert_eq!(
        rec.credentials.scram(ScramHash::Sha256),
        c.scram(ScramHash::Sha256)
    );
    for alg in DigestAlgorithm::ALL {
        assert_eq!(
            rec.credentials.ha1("example.org", alg),
            c.ha1("example.org", alg)
        );
    }
    assert!(!rec.locked);
    assert!(rec.created_at > 0);

    let c2 = creds(&alice, "pw2");
    s.set_credentials(&alice, &c2).await.expect("passwd");
    let rec = s.account(&alice).await.expect("read").expect("exists");
    assert_eq!(
        rec.credentials.ha1("example.org", DigestAlgorithm::Md5),
        c2.ha1("example.org", DigestAlgorithm::Md5)
    );

    s.set_locked(&alice, true).await.expect("lock");
    assert!(
        s.account(&alice)
            .await
            .expect("read")
            .expect("exists")
            .locked
    );
    s.set_locked(&alice, false).await.expect("unlock");
    assert!(
        !s.account(&alice)
            .await
            .expect("read")
            .expect("exists")
            .locked
    );
    assert!(matches!(
        s.set_locked(&stranger, true).await,
        Err(StoreError::UnknownAccount(_))
    ));
    assert!(matches!(
        s.set_credentials(&stranger, &c).await,
        Err(StoreError::UnknownAccount(_))
    ));
    assert!(s.account(&stranger).await.expect("read").is_none());

    let carol = id("carol@example.org");
    s.create_account(&carol, &creds(&carol, "c"))
        .await
        .expect("create");
    let list = s
        .list_accounts(Some(&dom("example.org")))
        .await
        .expect("list");
    assert_eq!(list, vec![(alice.clone(), false), (carol.clone(), false)]);
    assert!(matches!(
        s.delete_domain(&dom("example.org")).await,
        Err(StoreError::DomainNotEmpty(_, 2))
    ));
}

async fn aliases(s: &dyn Store) {
    let alice = id("alice@example.org");
    let carol = id("carol@example.org");
    let num = Alias::parse("+49 30 1234").expect("valid");
    let sip = Alias::parse("sip:sales@example.org").expect("valid");
    s.add_alias(&alice, &num).await.expect("alias");
    s.add_alias(&alice, &sip).await.expect("alias");
    match s.add_alias(&carol, &num).await {
        Err(StoreError::AliasTaken(a, owner)) => {
            assert_eq!(a, num);
            assert_eq!(owner, alice);
        }
        other => panic!("expected AliasTaken, got {other:?}"),
    }
    assert_eq!(
        s.aliases(&alice).await.expect("list"),
        vec![sip.clone(), num.clone()]
    );
    assert_eq!(
        s.resolve_alias(&num).await.expect("resolve"),
        Some(alice.clone())
    );
    s.remove_alias(&sip).await.expect("remove");
    assert!(matches!(
        s.remove_alias(&sip).await,
        Err(StoreError::UnknownAlias(_))
    ));
    assert_eq!(s.resolve_alias(&sip).await.expect("resolve"), None);
    let ghost = id("ghost@example.org");
    assert!(matches!(
        s.add_alias(&ghost, &sip).await,
        Err(StoreError::UnknownAccount(_))
    ));
}

async fn bulk(s: &dyn Store) {
    let d1 = id("d1@example.org");
    let dup = id("alice@example.org");
    let bad_domain = id("x@elsewhere.example");
    let batch = vec![
        (d1.clone(), creds(&d1, "1")),
        (dup.clone(), creds(&dup, "2")),
        (bad_domain.clone(), creds(&bad_domain, "3")),
    ];
    let res = s.create_accounts(&batch).await.expect("batch");
    assert!(res[0].is_ok());
    assert!(matches!(res[1], Err(StoreError::AccountExists(_))));
    assert!(matches!(res[2], Err(StoreError::UnknownDomain(_))));
    assert!(s.account(&d1).await.expect("read").is_some());
}

async fn delete_cascades(s: &dyn Store) {
    let alice = id("alice@example.org");
    let num = Alias::parse("+49301234").expect("valid");
    s.delete_account(&alice).await.expect("delete");
    assert!(s.account(&alice).await.expect("read").is_none());
    assert_eq!(
        s.resolve_alias(&num).await.expect("resolve"),
        None,
        "aliases go with the account"
    );
    assert!(matches!(
        s.delete_account(&alice).await,
        Err(StoreError::UnknownAccount(_))
    ));
    // The name can be taken again and starts clean.
    s.create_account(&alice, &creds(&alice, "new"))
        .await
        .expect("recreate");
    assert!(s.aliases(&alice).await.expect("list").is_empty());
}

async fn change_log(s: &dyn Store) {
    let last = s.last_change().await.expect("last");
    assert!(last > 0, "earlier steps logged changes");
    let erin = id("erin@example.org");
    s.create_account(&erin, &creds(&erin, "e"))
        .await
        .expect("create");
    s.set_locked(&erin, true).await.expect("lock");
    s.set_credentials(&erin, &creds(&erin, "f"))
        .await
        .expect("passwd");
    s.delete_account(&erin).await.expect("delete");
    let changes = s.changes_since(last, 100).await.expect("changes");
    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::Created,
            ChangeKind::Locked,
            ChangeKind::Credentials,
            ChangeKind::Deleted
        ]
    );
    assert!(changes.iter().all(|c| c.account == erin));
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(s.changes_since(last, 2).await.expect("changes").len(), 2);
    assert_eq!(s.last_change().await.expect("last"), changes[3].seq);
}

#[tokio::test]
async fn memory_backend() {
    battery(&MemoryStore::new()).await;
    xmpp::battery(&MemoryStore::new()).await;
}

#[tokio::test]
async fn sqlite_backend_in_memory() {
    battery(&SqliteStore::in_memory().await.expect("open")).await;
    xmpp::battery(&SqliteStore::in_memory().await.expect("open")).await;
}

#[tokio::test]
async fn sqlite_backend_on_disk_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cusax.db");
    let s = SqliteStore::open(&path).await.expect("open");
    battery(&s).await;
    s.close().await;
    let s = SqliteStore::open(&path).await.expect("reopen");
    assert!(
        s.account(&id("carol@example.org"))
            .await
            .expect("read")
            .is_some()
    );
    assert!(s.last_change().await.expect("last") > 0);
}

#[tokio::test]
async fn open_existing_refuses_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        SqliteStore::open_existing(&dir.path().join("none.db"))
            .await
            .is_err()
    );
}

/// Every [`StoreUrl`] variant has a URL in [`conformance_urls`]; a backend added to `open`
/// without one stops this from compiling (the match has no wildcard) or fails here.
fn assert_every_backend_listed(urls: &[StoreUrl]) {
    let mut seen = [false; 3];
    for u in urls {
        let i = match u {
            StoreUrl::Memory => 0,
            StoreUrl::SqliteMemory => 1,
            StoreUrl::SqliteFile(_) => 2,
        };
        seen[i] = true;
    }
    assert!(
        seen.iter().all(|s| *s),
        "conformance_urls misses a backend: {urls:?}"
    );
}

/// A fresh store of backend number `i`: file-backed URLs get their own directory per call.
async fn fresh(i: usize, root: &std::path::Path, battery: &str) -> Arc<dyn ServerStore> {
    let dir = root.join(format!("{i}-{battery}"));
    std::fs::create_dir_all(&dir).expect("test directory");
    let url = &conformance_urls(&dir)[i];
    cusax_store::open(&url.to_string())
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
}

/// The whole battery (accounts, XMPP data, location, deletion) on every backend `open`
/// knows, each reached through its URL and used as the server uses it: `dyn ServerStore`.
#[tokio::test]
async fn every_backend_open_knows_passes_every_battery() {
    let root = tempfile::tempdir().expect("tempdir");
    let urls = conformance_urls(root.path());
    assert_every_backend_listed(&urls);
    for (i, url) in urls.iter().enumerate() {
        eprintln!("conformance: {url}");
        let s = fresh(i, root.path(), "accounts").await;
        battery(&*s).await;
        s.close().await;
        let s = fresh(i, root.path(), "xmpp").await;
        xmpp::battery(&*s).await;
        s.close().await;
        let s = fresh(i, root.path(), "location").await;
        location::battery(&*s).await;
        s.close().await;
        let s = fresh(i, root.path(), "deletion").await;
        deletion::battery(&*s).await;
        s.close().await;
    }
}

#[tokio::test]
async fn open_refuses_an_unknown_scheme_with_the_url_error() {
    match cusax_store::open("postgres://localhost/cusax").await {
        Err(StoreError::Url(e)) => assert_eq!(e.why, "unknown scheme"),
        other => panic!("expected a URL error, got {other:?}"),
    }
}
