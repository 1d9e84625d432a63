//! RFC 6121 roster, XEP-0054 vCards, XEP-0160 offline, XEP-0191 block lists and XEP-0049
//! private XML: the same behaviour on every backend, including cleanup when an account is
//! deleted.

use super::{creds, id};
use cusax_store::{RosterItem, Store, StoreError, Subscription, XmppDataStore};

/// Runs the XMPP-data battery against a store whose domain `xmpp.example` does not exist yet.
pub async fn battery<S: Store + XmppDataStore + ?Sized>(s: &S) {
    s.ensure_domain(&cusax_account::Domain::parse("xmpp.example").expect("valid"))
        .await
        .expect("domain");
    let (ann, ben) = (id("ann@xmpp.example"), id("ben@xmpp.example"));
    for a in [&ann, &ben] {
        s.create_account(a, &creds(a, "pw")).await.expect("create");
    }
    roster(s, &ann, &ben).await;
    vcard_offline_block(s, &ann).await;
    private_xml(s, &ann, &ben).await;
    deletion(s, &ann, &ben).await;
}

async fn roster<S: Store + XmppDataStore + ?Sized>(
    s: &S,
    ann: &cusax_account::AccountId,
    ben: &cusax_account::AccountId,
) {
    assert_eq!(s.roster(ann).await.expect("roster"), (0, vec![]));
    let item = RosterItem {
        jid: ben.to_string(),
        name: Some("Ben".into()),
        subscription: Subscription::To,
        ask: false,
        pending_in: true,
        groups: vec!["Friends".into(), "Work".into()],
    };
    let v1 = s.put_roster_item(ann, &item).await.expect("put");
    let remote = RosterItem {
        jid: "zoe@remote.example".into(),
        ask: true,
        ..RosterItem::default()
    };
    let v2 = s.put_roster_item(ann, &remote).await.expect("put");
    assert!(v2 > v1, "every change bumps the version");
    let (ver, items) = s.roster(ann).await.expect("roster");
    assert_eq!(ver, v2);
    assert_eq!(items, vec![item.clone(), remote.clone()], "sorted by JID");
    assert_eq!(
        s.roster_item(ann, &ben.to_string()).await.expect("item"),
        Some(item.clone())
    );
    let updated = RosterItem {
        subscription: Subscription::Both,
        groups: vec![],
        ..item
    };
    let v3 = s.put_roster_item(ann, &updated).await.expect("update");
    assert_eq!(
        s.roster_item(ann, &ben.to_string()).await.expect("item"),
        Some(updated)
    );
    assert_eq!(
        s.remove_roster_item(ann, "zoe@remote.example")
            .await
            .expect("rm"),
        Some(v3 + 1)
    );
    assert_eq!(
        s.remove_roster_item(ann, "zoe@remote.example")
            .await
            .expect("rm"),
        None
    );
    let ghost = id("ghost@xmpp.example");
    assert!(matches!(
        s.put_roster_item(&ghost, &remote).await,
        Err(StoreError::UnknownAccount(_))
    ));
    assert_eq!(Subscription::To.with_from(true), Subscription::Both);
    assert_eq!(Subscription::Both.with_to(false), Subscription::From);
}

async fn vcard_offline_block<S: Store + XmppDataStore + ?Sized>(
    s: &S,
    ann: &cusax_account::AccountId,
) {
    assert_eq!(s.vcard(ann).await.expect("vcard"), None);
    s.set_vcard(ann, "<vCard xmlns='vcard-temp'><FN>Ann</FN></vCard>")
        .await
        .expect("set");
    s.set_vcard(ann, "<vCard xmlns='vcard-temp'><FN>Ann B.</FN></vCard>")
        .await
        .expect("replace");
    assert_eq!(
        s.vcard(ann).await.expect("vcard").as_deref(),
        Some("<vCard xmlns='vcard-temp'><FN>Ann B.</FN></vCard>")
    );

    for i in 0..3 {
        let stored = s
            .push_offline(ann, &format!("<message n='{i}'/>"), 2)
            .await
            .expect("push");
        assert_eq!(stored, i < 2, "bounded per account");
    }
    assert_eq!(s.offline_count(ann).await.expect("count"), 2);
    assert_eq!(
        s.take_offline(ann).await.expect("take"),
        vec!["<message n='0'/>".to_owned(), "<message n='1'/>".to_owned()]
    );
    assert!(s.take_offline(ann).await.expect("take").is_empty());

    s.block(ann, &["x@a.example".into(), "b.example".into()])
        .await
        .expect("block");
    s.block(ann, &["x@a.example".into()])
        .await
        .expect("idempotent");
    assert_eq!(
        s.blocklist(ann).await.expect("list"),
        vec!["b.example".to_owned(), "x@a.example".to_owned()]
    );
    s.unblock(ann, &["b.example".into()])
        .await
        .expect("unblock");
    assert_eq!(
        s.blocklist(ann).await.expect("list"),
        vec!["x@a.example".to_owned()]
    );
    s.unblock(ann, &[]).await.expect("unblock all");
    assert!(s.blocklist(ann).await.expect("list").is_empty());
    assert_eq!(s.private_xml(ann, "urn:x:a").await.expect("get"), None);
}

async fn private_xml<S: Store + XmppDataStore + ?Sized>(
    s: &S,
    ann: &cusax_account::AccountId,
    ben: &cusax_account::AccountId,
) {
    assert_eq!(s.private_xml(ann, "urn:x:a").await.expect("get"), None);
    assert!(
        s.set_private_xml(ann, "urn:x:a", "<a xmlns='urn:x:a'/>", 2)
            .await
            .expect("set")
    );
    assert!(
        s.set_private_xml(ann, "urn:x:b", "<b xmlns='urn:x:b'/>", 2)
            .await
            .expect("set")
    );
    assert!(
        !s.set_private_xml(ann, "urn:x:c", "<c xmlns='urn:x:c'/>", 2)
            .await
            .expect("set"),
        "a third namespace exceeds the limit"
    );
    assert_eq!(s.private_xml(ann, "urn:x:c").await.expect("get"), None);
    assert!(
        s.set_private_xml(ann, "urn:x:a", "<a xmlns='urn:x:a'>2</a>", 2)
            .await
            .expect("replace"),
        "replacing a namespace is not a new one"
    );
    assert_eq!(
        s.private_xml(ann, "urn:x:a").await.expect("get").as_deref(),
        Some("<a xmlns='urn:x:a'>2</a>")
    );
    assert_eq!(
        s.private_xml(ben, "urn:x:a").await.expect("get"),
        None,
        "per account"
    );
    let ghost = id("ghost@xmpp.example");
    assert!(matches!(
        s.set_private_xml(&ghost, "urn:x:a", "<a/>", 2).await,
        Err(StoreError::UnknownAccount(_))
    ));
}

async fn deletion<S: Store + XmppDataStore + ?Sized>(
    s: &S,
    ann: &cusax_account::AccountId,
    ben: &cusax_account::AccountId,
) {
    let back = RosterItem {
        jid: ann.to_string(),
        subscription: Subscription::Both,
        ..RosterItem::default()
    };
    let before = s.put_roster_item(ben, &back).await.expect("put");
    s.set_vcard(ann, "<vCard xmlns='vcard-temp'/>")
        .await
        .expect("set");
    s.push_offline(ann, "<message/>", 10).await.expect("push");
    s.block(ann, &["x@a.example".into()]).await.expect("block");
    s.delete_account(ann).await.expect("delete");
    let (ver, items) = s.roster(ben).await.expect("roster");
    assert!(
        items.is_empty(),
        "items naming the deleted account go with it"
    );
    assert!(ver > before, "and the contact's roster version moves on");
    s.create_account(ann, &creds(ann, "again"))
        .await
        .expect("recreate");
    assert_eq!(s.roster(ann).await.expect("roster").1, vec![]);
    assert_eq!(s.vcard(ann).await.expect("vcard"), None);
    assert_eq!(s.offline_count(ann).await.expect("count"), 0);
    assert!(s.blocklist(ann).await.expect("list").is_empty());
    assert_eq!(s.private_xml(ann, "urn:x:a").await.expect("get"), None);
}
