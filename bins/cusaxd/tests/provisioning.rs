//! RFC 7081 §2: one service login over HTTPS yields both account definitions (JSON and the
//! Jitsi properties format); wrong credentials get 401 with no account data, a locked account 403.

use cusax_testkit::Cusaxd;

/// Fetches `path` from the server with curl (an independent HTTP client), trusting our cert.
fn get(s: &Cusaxd, path: &str, user: Option<&str>) -> (u16, String) {
    let extra: Vec<&str> = user.iter().flat_map(|u| ["-u", *u]).collect();
    cusax_testkit::https(s, "localhost", "GET", path, &extra)
}

#[test]
fn provisioning_json_jitsi_and_refusals() {
    let s = Cusaxd::start("localhost");
    let out = s.ctl(
        &["user", "add", "alice@localhost", "--password-stdin"],
        "s3cret\n",
    );
    assert!(out.status.success());

    let (code, body) = get(&s, "/provisioning", Some("alice@localhost:s3cret"));
    assert_eq!(code, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["sip"]["aor"], "sip:alice@localhost");
    assert_eq!(doc["sip"]["port"], s.addr("sip_udp").expect("sip").port());
    assert_eq!(doc["sip"]["presence_enabled"], false);
    assert_eq!(doc["xmpp"]["jid"], "alice@localhost");
    assert_eq!(doc["xmpp"]["port"], s.addr("xmpp").expect("xmpp").port());
    assert_eq!(doc["xmpp"]["calling_enabled"], false);
    assert_eq!(doc["cusax"]["xmpp"], "alice@localhost");
    assert!(
        doc.get("password").is_none(),
        "password not echoed by default"
    );
    assert!(!body.contains("s3cret"));

    let (code, props) = get(
        &s,
        "/provisioning?format=jitsi&user=alice@localhost&pass=s3cret",
        None,
    );
    assert_eq!(code, 200);
    for line in [
        "net.java.sip.communicator.impl.protocol.sip.acccusaxsip.ACCOUNT_UID=SIP:alice@localhost",
        "net.java.sip.communicator.impl.protocol.sip.acccusaxsip.IS_PRESENCE_ENABLED=false",
        "net.java.sip.communicator.impl.protocol.jabber.acccusaxxmpp.CALLING_DISABLED=true",
        "net.java.sip.communicator.impl.protocol.sip.acccusaxsip.cusax.XMPP_ACCOUNT_ID=Jabber:alice@localhost",
    ] {
        assert!(props.lines().any(|l| l == line), "{line} in\n{props}");
    }

    let (code, body) = get(&s, "/provisioning", Some("alice@localhost:wrong"));
    assert_eq!(code, 401);
    assert!(!body.contains("sip:alice"), "no account data on failure");
    assert_eq!(get(&s, "/provisioning", None).0, 401);

    assert!(
        s.ctl(&["user", "lock", "alice@localhost"], "")
            .status
            .success()
    );
    assert_eq!(
        get(&s, "/provisioning", Some("alice@localhost:s3cret")).0,
        403
    );
}
