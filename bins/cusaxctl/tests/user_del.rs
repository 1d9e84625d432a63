//! `cusaxctl user del` on a real data directory removes every trace of the account (issue 6,
//! item 3): what the store's conformance battery proves per backend, here through the command
//! and the connection options it opens the database with (foreign keys on, for the cascades).

use cusax_account::{AccountId, Alias, Aor};
use cusax_store::sqlite::SqliteStore;
use cusax_store::{
    AccountStore, AliasStore, Binding, BlockStore, LocationStore, OfflineStore, RosterItem,
    RosterStore, Subscription, VcardStore,
};
use cusax_testkit::cusaxctl;
use std::path::Path;

fn ok(dir: &Path, args: &[&str], stdin: &str) {
    let o = cusaxctl(dir, args, stdin);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn id(s: &str) -> AccountId {
    AccountId::parse(s).expect("test address is valid")
}

fn aor(s: &str) -> Aor {
    Aor::parse(s).expect("test AOR is valid")
}

fn binding(a: &str, contact: &str) -> (Aor, Vec<Binding>) {
    let a = aor(a);
    let b = Binding {
        aor: a.clone(),
        contact: contact.to_owned(),
        expires_at: i64::MAX / 2,
        q: None,
        call_id: "reg@phone".to_owned(),
        cseq: 1,
        instance: None,
        reg_id: None,
        path: Vec::new(),
        source: None,
        transport: "udp".to_owned(),
        nat: false,
        user_agent: None,
        registered_at: 1,
    };
    (a, vec![b])
}

#[tokio::test(flavor = "current_thread")]
async fn user_del_leaves_no_trace_in_the_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).expect("mkdir");
    ok(&dir, &["domain", "add", "example.org"], "");
    for u in ["alice@example.org", "bob@example.org"] {
        ok(&dir, &["user", "add", u, "--password-stdin"], "pw\n");
    }
    ok(
        &dir,
        &["alias", "add", "alice@example.org", "sip:desk@example.org"],
        "",
    );
    ok(&dir, &["alias", "add", "alice@example.org", "+4930777"], "");

    // What the XMPP server and the registrar would have stored meanwhile.
    let (alice, bob) = (id("alice@example.org"), id("bob@example.org"));
    let db = dir.join("cusax.db");
    let s = SqliteStore::open_existing(&db).await.expect("open");
    let item = |jid: &str| RosterItem {
        jid: jid.to_owned(),
        subscription: Subscription::Both,
        ..RosterItem::default()
    };
    s.put_roster_item(&alice, &item("bob@example.org"))
        .await
        .expect("roster");
    s.put_roster_item(&bob, &item("alice@example.org"))
        .await
        .expect("roster");
    s.set_vcard(&alice, "<vCard xmlns='vcard-temp'/>")
        .await
        .expect("vcard");
    s.push_offline(&alice, "<message/>", 10)
        .await
        .expect("offline");
    s.block(&alice, &["spam@example.net".into()])
        .await
        .expect("block");
    s.save_bindings(&[
        binding("sip:alice@example.org", "sip:alice@192.0.2.1"),
        binding("sip:desk@example.org", "sip:desk@192.0.2.2"),
        binding("sip:+4930777@example.org", "sip:+4930777@192.0.2.3"),
        binding("sip:bob@example.org", "sip:bob@192.0.2.4"),
    ])
    .await
    .expect("bindings");
    s.close().await;

    ok(&dir, &["user", "del", "alice@example.org"], "");

    let s = SqliteStore::open_existing(&db).await.expect("reopen");
    assert!(s.account(&alice).await.expect("read").is_none());
    assert!(s.aliases(&alice).await.expect("aliases").is_empty());
    assert_eq!(
        s.resolve_alias(&Alias::parse("+4930777").expect("valid"))
            .await
            .expect("resolve"),
        None
    );
    assert_eq!(s.roster(&alice).await.expect("roster"), (0, vec![]));
    assert_eq!(s.vcard(&alice).await.expect("vcard"), None);
    assert_eq!(s.offline_count(&alice).await.expect("count"), 0);
    assert!(s.blocklist(&alice).await.expect("blocklist").is_empty());
    assert!(s.roster(&bob).await.expect("roster").1.is_empty());
    let left: Vec<Aor> = s
        .load_bindings(0)
        .await
        .expect("load")
        .into_iter()
        .map(|b| b.aor)
        .collect();
    assert_eq!(left, vec![aor("sip:bob@example.org")]);
    s.close().await;
}
