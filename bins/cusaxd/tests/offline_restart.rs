//! XEP-0160 (offline messages) with XEP-0203 delay stamps across a restart of `cusaxd`: a
//! slixmpp client sends to a user who is offline, the server is stopped — cleanly (SIGTERM)
//! or killed (SIGKILL) — and started again on the same data directory, and the recipient's
//! slixmpp client gets each message exactly once, stamped with its original arrival time.
//!
//! Why the SIGKILL variant may expect this: the server stores an offline message in its own
//! committed SQLite transaction (WAL) before it handles the sender's next stanza, so once the
//! sender's ping is answered the message is on disk; a killed process loses no committed
//! transaction. Scenarios: `tests/slixmpp/peer.py offline_send` / `offline_receive`.

use cusax_testkit::{Cusaxd, run_slixmpp_peer};
use std::os::unix::process::ExitStatusExt;

const DOMAIN: &str = "example.test";

const USERS: [(&str, &str); 2] = [
    ("alice@example.test", "pw-alice"),
    ("carol@example.test", "pw-carol"),
];

/// alice sends to offline carol, `stop` ends the server, a new one on the same data
/// directory delivers to carol; returns what carol's client printed.
fn across_a_restart(stop: impl FnOnce(&mut Cusaxd)) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut first = Cusaxd::start_in(&dir, &["--domain", DOMAIN]);
    first.import_users(DOMAIN, &[("alice", "pw-alice"), ("carol", "pw-carol")]);
    let sent = run_slixmpp_peer(&first, DOMAIN, "offline_send", &USERS);
    assert!(sent.contains("sent 2 while offline"), "{sent}");
    stop(&mut first);
    let second = Cusaxd::start_in(&dir, &["--domain", DOMAIN]);
    run_slixmpp_peer(&second, DOMAIN, "offline_receive", &USERS)
}

fn assert_delivered_once(out: &str) {
    for body in ["kept across a restart 1", "kept across a restart 2"] {
        assert!(
            out.contains(&format!("got '{body}' once, delay stamp 20"))
                && out.contains(&format!("from {DOMAIN}")),
            "{body}: {out}"
        );
    }
    assert!(
        out.contains("second login: online, nothing delivered twice"),
        "{out}"
    );
}

#[test]
fn offline_messages_survive_a_clean_restart_and_arrive_once_with_delay() {
    let out = across_a_restart(|srv| {
        let (status, took) = srv.stop();
        assert!(status.success(), "SIGTERM: {status} after {took:?}");
    });
    assert_delivered_once(&out);
}

#[test]
fn offline_messages_survive_sigkill_and_arrive_once_with_delay() {
    let out = across_a_restart(|srv| {
        let status = srv.kill();
        assert_eq!(status.signal(), Some(9), "killed, not exited: {status}");
    });
    assert_delivered_once(&out);
}
