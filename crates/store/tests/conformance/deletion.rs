//! RFC 7081 §3.2 ("a common authentication back-end"): deleting the one account removes every
//! trace of it on both protocols, the same way on every backend.
//!
//! What goes: credentials, aliases, SIP bindings of the AOR and of every alias, the account's
//! roster, vCard, offline messages, block list and private XML, and other users' roster items
//! naming it.
//! What stays, because it is other users' data: their block-list entries for the address and
//! messages from it waiting in their offline storage (see `AccountStore::delete_account`).

use super::{creds, id};
use crate::location::binding;
use cusax_account::{AccountId, Alias, Aor, Domain};
use cusax_store::memory::MemoryStore;
use cusax_store::sqlite::SqliteStore;
use cusax_store::{
    AccountStore, ChangeKind, ChangeLog, LocationStore, RosterItem, Store, Subscription,
    XmppDataStore,
};
use sqlx::Row;
use std::collections::BTreeMap;

const DOMAIN: &str = "gone.example";

fn aor(s: &str) -> Aor {
    Aor::parse(s).expect("test AOR is valid")
}

fn alias(s: &str) -> Alias {
    Alias::parse(s).expect("test alias is valid")
}

/// The three accounts: `dana` is deleted, `eve` has her in the roster, `frank` blocked her and
/// holds a message from her.
struct People {
    dana: AccountId,
    eve: AccountId,
    frank: AccountId,
}

/// Gives `dana` one of everything, and the others things that point at her.
async fn populate<S: Store + XmppDataStore + LocationStore + ?Sized>(s: &S) -> People {
    s.ensure_domain(&Domain::parse(DOMAIN).expect("valid"))
        .await
        .expect("domain");
    let p = People {
        dana: id("dana@gone.example"),
        eve: id("eve@gone.example"),
        frank: id("frank@gone.example"),
    };
    for a in [&p.dana, &p.eve, &p.frank] {
        s.create_account(a, &creds(a, "pw")).await.expect("create");
    }
    s.add_alias(&p.dana, &alias("sip:desk@gone.example"))
        .await
        .expect("alias");
    s.add_alias(&p.dana, &alias("+49 30 999"))
        .await
        .expect("alias");

    let to = |jid: &str, sub| RosterItem {
        jid: jid.to_owned(),
        subscription: sub,
        ..RosterItem::default()
    };
    s.put_roster_item(&p.dana, &to("eve@gone.example", Subscription::Both))
        .await
        .expect("put");
    s.put_roster_item(&p.dana, &to("zoe@remote.example", Subscription::To))
        .await
        .expect("put");
    s.set_vcard(&p.dana, "<vCard xmlns='vcard-temp'><FN>Dana</FN></vCard>")
        .await
        .expect("vcard");
    s.push_offline(&p.dana, "<message to='dana@gone.example'/>", 10)
        .await
        .expect("offline");
    s.block(&p.dana, &["spam@remote.example".into()])
        .await
        .expect("block");
    s.set_private_xml(&p.dana, "urn:x:prefs", "<prefs xmlns='urn:x:prefs'/>", 8)
        .await
        .expect("private");

    let pending = RosterItem {
        pending_in: true,
        ..to("dana@gone.example", Subscription::Both)
    };
    s.put_roster_item(&p.eve, &pending).await.expect("put");
    s.put_roster_item(&p.eve, &to("frank@gone.example", Subscription::None))
        .await
        .expect("put");
    s.block(&p.frank, &["dana@gone.example".into()])
        .await
        .expect("block");
    s.push_offline(&p.frank, "<message from='dana@gone.example/phone'/>", 10)
        .await
        .expect("offline");

    // A phone on the AOR, one on the SIP alias and one on the number alias (the registrar
    // accepts all three for dana), and eve's phone.
    let mut batch = Vec::new();
    for (a, contact) in [
        ("sip:dana@gone.example", "sip:dana@192.0.2.10"),
        ("sip:desk@gone.example", "sip:desk@192.0.2.11"),
        ("sip:+4930999@gone.example", "sip:+4930999@192.0.2.12"),
        ("sip:eve@gone.example", "sip:eve@192.0.2.20"),
    ] {
        let a = aor(a);
        batch.push((a.clone(), vec![binding(&a, contact, 9_000)]));
    }
    s.save_bindings(&batch).await.expect("bindings");
    assert_eq!(s.load_bindings(0).await.expect("load").len(), 4);
    p
}

/// Deletes dana and checks every store trait for what must be gone and what must stay.
pub async fn battery<S: Store + XmppDataStore + LocationStore + ?Sized>(s: &S) {
    let p = populate(s).await;
    let (eve_version, _) = s.roster(&p.eve).await.expect("roster");

    s.delete_account(&p.dana).await.expect("delete");

    // The account, its credentials and aliases.
    assert!(s.account(&p.dana).await.expect("read").is_none());
    let left = s
        .list_accounts(Some(&Domain::parse(DOMAIN).expect("valid")))
        .await
        .expect("list");
    assert_eq!(left, vec![(p.eve.clone(), false), (p.frank.clone(), false)]);
    assert!(s.aliases(&p.dana).await.expect("aliases").is_empty());
    for a in ["sip:desk@gone.example", "+4930999"] {
        assert_eq!(
            s.resolve_alias(&alias(a)).await.expect("resolve"),
            None,
            "{a}"
        );
    }

    // SIP bindings of the AOR and both aliases; eve's stays.
    for a in [
        "sip:dana@gone.example",
        "sip:desk@gone.example",
        "sip:+4930999@gone.example",
    ] {
        assert!(s.bindings(&aor(a)).await.expect("read").is_empty(), "{a}");
    }
    let left: Vec<Aor> = s
        .load_bindings(0)
        .await
        .expect("load")
        .into_iter()
        .map(|b| b.aor)
        .collect();
    assert_eq!(left, vec![aor("sip:eve@gone.example")]);

    // Dana's own XMPP data.
    assert_eq!(s.roster(&p.dana).await.expect("roster"), (0, vec![]));
    assert_eq!(s.vcard(&p.dana).await.expect("vcard"), None);
    assert_eq!(s.offline_count(&p.dana).await.expect("count"), 0);
    assert!(s.blocklist(&p.dana).await.expect("blocklist").is_empty());
    assert_eq!(
        s.private_xml(&p.dana, "urn:x:prefs")
            .await
            .expect("private"),
        None
    );

    // Eve's item for dana (with its subscription and pending request) is gone, her other one
    // stays, and her roster version moved on so her clients fetch the change.
    assert_eq!(
        s.roster_item(&p.eve, "dana@gone.example")
            .await
            .expect("item"),
        None
    );
    let (version, items) = s.roster(&p.eve).await.expect("roster");
    let jids: Vec<&str> = items.iter().map(|i| i.jid.as_str()).collect();
    assert_eq!(jids, vec!["frank@gone.example"]);
    assert!(version > eve_version, "{version} > {eve_version}");

    // Frank's own decisions and messages stay.
    assert_eq!(
        s.blocklist(&p.frank).await.expect("blocklist"),
        vec!["dana@gone.example".to_owned()]
    );
    assert_eq!(s.offline_count(&p.frank).await.expect("count"), 1);

    // Running servers learn of it from the change log.
    let last = s.last_change().await.expect("last");
    let change = s.changes_since(last - 1, 1).await.expect("changes");
    assert_eq!(change.len(), 1);
    assert_eq!(
        (&change[0].account, change[0].kind),
        (&p.dana, ChangeKind::Deleted)
    );

    // A new account of the same name starts empty, and the freed alias can be reassigned.
    s.create_account(&p.dana, &creds(&p.dana, "new"))
        .await
        .expect("recreate");
    assert!(s.aliases(&p.dana).await.expect("aliases").is_empty());
    assert_eq!(s.roster(&p.dana).await.expect("roster").1, vec![]);
    assert_eq!(s.vcard(&p.dana).await.expect("vcard"), None);
    assert_eq!(s.offline_count(&p.dana).await.expect("count"), 0);
    assert!(
        s.bindings(&aor("sip:dana@gone.example"))
            .await
            .expect("read")
            .is_empty()
    );
    s.add_alias(&p.eve, &alias("sip:desk@gone.example"))
        .await
        .expect("freed alias");
}

#[tokio::test]
async fn deletion_memory_backend() {
    battery(&MemoryStore::new()).await;
}

#[tokio::test]
async fn deletion_sqlite_backend() {
    battery(&SqliteStore::in_memory().await.expect("open")).await;
}

/// Every column of every table, as text, containing `needle`: `table → matching rows`.
async fn rows_mentioning(s: &SqliteStore, needle: &str) -> BTreeMap<String, i64> {
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(s.pool())
    .await
    .expect("tables")
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut out = BTreeMap::new();
    for t in tables {
        let cols: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info($1)")
            .bind(&t)
            .fetch_all(s.pool())
            .await
            .expect("columns")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let any = cols
            .iter()
            .map(|c| format!("CAST(\"{c}\" AS TEXT) LIKE $1"))
            .collect::<Vec<_>>()
            .join(" OR ");
        // Table and column names come from this database's own schema, not from input.
        let sql = format!("SELECT COUNT(*) FROM \"{t}\" WHERE {any}");
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format!("%{needle}%"))
            .fetch_one(s.pool())
            .await
            .expect("count")
            .get(0);
        if n > 0 {
            out.insert(t, n);
        }
    }
    out
}

/// The whole database, table by table, including tables added after this test was written:
/// after the deletion dana's name appears only where it is meant to stay.
#[tokio::test]
async fn deletion_sqlite_leaves_no_row_naming_the_account() {
    let s = SqliteStore::in_memory().await.expect("open");
    let p = populate(&s).await;
    let before = rows_mentioning(&s, "dana").await;
    for t in [
        "accounts",
        "scram_verifiers",
        "digest_ha1",
        "aliases",
        "roster_items",
        "roster_versions",
        "vcards",
        "offline_messages",
        "blocklist",
        "private_xml",
        "location",
    ] {
        assert!(
            before.contains_key(t),
            "the scan sees dana in {t}: {before:?}"
        );
    }
    // The desk and number aliases do not contain her name; their bindings must go too.
    assert!(!rows_mentioning(&s, "desk@").await.is_empty());

    s.delete_account(&p.dana).await.expect("delete");

    let changes = s
        .changes_since(0, 1000)
        .await
        .expect("changes")
        .iter()
        .filter(|c| c.account == p.dana)
        .count();
    let expected: BTreeMap<String, i64> = [
        // The change log (created, two alias changes, deleted).
        (
            "account_changes".to_owned(),
            i64::try_from(changes).expect("small"),
        ),
        // Frank's block-list entry and the message from dana waiting for him.
        ("blocklist".to_owned(), 1),
        ("offline_messages".to_owned(), 1),
    ]
    .into();
    assert_eq!(rows_mentioning(&s, "dana").await, expected);
    assert_eq!(rows_mentioning(&s, "desk@").await, BTreeMap::new());
    assert_eq!(rows_mentioning(&s, "4930999").await, BTreeMap::new());
}
