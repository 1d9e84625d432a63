//! The provisioning login limit (README "Provisioning"; crates/http/src/limiter.rs) against a
//! running `cusaxd`, with curl as the client: 10 failed logins from one address within a
//! minute are answered 401, then that address gets 429 with `Retry-After` — even for a correct
//! login, of any account — while another address (127.0.0.2, also loopback) logs in as usual,
//! so the key is the client address, neither global nor per account.

use cusax_testkit::{Cusaxd, https};
use std::path::Path;

const DOMAIN: &str = "localhost";

/// One provisioning login with curl from `source`; returns the status, the body and the
/// `Retry-After` header if the answer had one.
fn login(srv: &Cusaxd, source: &str, credentials: &str, dir: &Path) -> (u16, String, Option<u64>) {
    let headers = dir.join("headers");
    let headers_arg = headers.to_str().expect("utf-8 path");
    let (code, body) = https(
        srv,
        DOMAIN,
        "GET",
        "/provisioning",
        &["-u", credentials, "--interface", source, "-D", headers_arg],
    );
    let text = std::fs::read_to_string(&headers).expect("curl wrote the headers");
    let retry_after = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().expect("Retry-After is delta-seconds"))
    });
    (code, body, retry_after)
}

#[test]
fn ten_failures_from_one_address_then_429_with_retry_after_for_that_address_only() {
    let srv = Cusaxd::start(DOMAIN);
    srv.import_users(DOMAIN, &[("alice", "s3cret"), ("bob", "b0b-pw")]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();

    // Both accounts work from the address before any failure.
    assert_eq!(login(&srv, "127.0.0.1", "bob@localhost:b0b-pw", dir).0, 200);

    // The budget: wrong passwords and an unknown account count alike, per address.
    let attempts = ["alice@localhost:wrong", "mallory@localhost:s3cret"];
    for i in 0..10 {
        let (code, body, retry) = login(&srv, "127.0.0.1", attempts[i % 2], dir);
        assert_eq!(
            (code, retry),
            (401, None),
            "failure {} of 10: {body}",
            i + 1
        );
    }

    // Over budget: refused before the password is looked at, with a wait in the window.
    let (code, body, retry) = login(&srv, "127.0.0.1", "alice@localhost:s3cret", dir);
    assert_eq!(code, 429, "a correct login while limited: {body}");
    let retry = retry.expect("429 carries Retry-After");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(!body.contains("sip:alice"), "no account data: {body}");
    let (code, _, retry) = login(&srv, "127.0.0.1", "bob@localhost:b0b-pw", dir);
    assert_eq!(code, 429, "the limit is the address's, not alice's");
    assert!(retry.is_some());

    // Another client address is not limited.
    let (code, body, _) = login(&srv, "127.0.0.2", "alice@localhost:s3cret", dir);
    assert_eq!(code, 200, "from 127.0.0.2: {body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(doc["account"], "alice@localhost");

    // Only the 10 real failures were checked and counted; the 429s were not.
    let (_, metrics) = https(&srv, DOMAIN, "GET", "/metrics", &[]);
    assert!(
        metrics
            .lines()
            .any(|l| l == "cusax_auth_failures_total{protocol=\"https\"} 10"),
        "{metrics}"
    );
}
