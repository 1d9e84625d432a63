//! `cusaxctl` end to end on a real data directory: scriptable account management, one-line
//! errors with non-zero exit, bulk import.

use cusax_testkit::{Cusaxd, cusaxctl};
use std::process::Output;

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

#[test]
fn user_domain_alias_verbs() {
    let s = Cusaxd::start("localhost");
    ok(&s.ctl(
        &["user", "add", "alice@localhost", "--password-stdin"],
        "secret\n",
    ));
    fails(
        &s.ctl(
            &["user", "add", "alice@localhost", "--password-stdin"],
            "x\n",
        ),
        "already exists",
    );
    fails(
        &s.ctl(
            &["user", "add", "Alice@LOCALHOST", "--password-stdin"],
            "x\n",
        ),
        "already exists",
    );
    fails(
        &s.ctl(
            &["user", "add", "not an address", "--password-stdin"],
            "x\n",
        ),
        "invalid address",
    );
    fails(
        &s.ctl(
            &["user", "add", "bob@nowhere.example", "--password-stdin"],
            "x\n",
        ),
        "unknown domain",
    );
    fails(
        &s.ctl(&["user", "add", "bob@localhost", "--password-stdin"], "\n"),
        "empty password",
    );

    let pwfile = s.data_dir.join("pw.txt");
    std::fs::write(&pwfile, "from-file\n").expect("write");
    ok(&s.ctl(
        &[
            "user",
            "add",
            "bob@localhost",
            "--password-file",
            pwfile.to_str().expect("utf8"),
        ],
        "",
    ));
    assert_eq!(
        ok(&s.ctl(&["user", "list"], "")),
        "alice@localhost\nbob@localhost\n"
    );

    ok(&s.ctl(&["user", "lock", "bob@localhost"], ""));
    assert_eq!(
        ok(&s.ctl(&["user", "list", "localhost"], "")),
        "alice@localhost\nbob@localhost\tlocked\n"
    );
    ok(&s.ctl(&["user", "unlock", "bob@localhost"], ""));
    fails(
        &s.ctl(&["user", "lock", "carol@localhost"], ""),
        "no such account",
    );

    ok(&s.ctl(&["alias", "add", "alice@localhost", "+49 30 1234"], ""));
    ok(&s.ctl(
        &["alias", "add", "alice@localhost", "sip:sales@localhost"],
        "",
    ));
    fails(
        &s.ctl(&["alias", "add", "bob@localhost", "+49301234"], ""),
        "already assigned",
    );
    fails(
        &s.ctl(
            &["alias", "add", "bob@localhost", "sip:alice@localhost"],
            "",
        ),
        "address of account",
    );
    fails(
        &s.ctl(&["alias", "add", "bob@localhost", "12ab"], ""),
        "invalid alias",
    );
    assert_eq!(
        ok(&s.ctl(&["alias", "list", "alice@localhost"], "")),
        "sip:sales@localhost\n+49301234\n"
    );
    let show = ok(&s.ctl(&["user", "show", "alice@localhost"], ""));
    for needle in [
        "sip aor:  sip:alice@localhost",
        "xmpp jid: alice@localhost",
        "alias:    +49301234",
        "SCRAM-SHA-256 (4096 iterations)",
        "SHA-512-256 realm \"localhost\"",
    ] {
        assert!(show.contains(needle), "{needle} in {show}");
    }
    ok(&s.ctl(&["alias", "del", "+49301234"], ""));
    assert_eq!(
        ok(&s.ctl(&["alias", "list", "alice@localhost"], "")),
        "sip:sales@localhost\n"
    );

    ok(&s.ctl(&["domain", "add", "example.org"], ""));
    fails(
        &s.ctl(&["domain", "add", "example.org"], ""),
        "already exists",
    );
    fails(
        &s.ctl(&["domain", "add", "bad domain"], ""),
        "invalid domain",
    );
    assert_eq!(
        ok(&s.ctl(&["domain", "list"], "")),
        "example.org\nlocalhost\n"
    );
    fails(
        &s.ctl(&["domain", "del", "localhost"], ""),
        "still has 2 account(s)",
    );
    ok(&s.ctl(&["domain", "del", "example.org"], ""));

    ok(&s.ctl(
        &["user", "passwd", "alice@localhost", "--password-stdin"],
        "new\n",
    ));
    fails(
        &s.ctl(
            &["user", "passwd", "zed@localhost", "--password-stdin"],
            "new\n",
        ),
        "no such account",
    );
    ok(&s.ctl(&["user", "del", "alice@localhost"], ""));
    fails(
        &s.ctl(&["user", "del", "alice@localhost"], ""),
        "no such account",
    );
    assert_eq!(ok(&s.ctl(&["user", "list"], "")), "bob@localhost\n");
}

#[test]
fn missing_data_dir_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = cusaxctl(&tmp.path().join("absent"), &["user", "list"], "");
    fails(&o, "does not exist");
}

#[test]
fn bulk_import_skips_and_reports_bad_rows() {
    let s = Cusaxd::start("localhost");
    ok(&s.ctl(
        &["user", "add", "taken@localhost", "--password-stdin"],
        "x\n",
    ));
    let mut csv = String::from("user,password\n# a comment\n");
    for i in 0..300 {
        csv.push_str(&format!("user{i}@localhost,pw-{i}\n"));
    }
    csv.push_str("taken@localhost,pw\n");
    csv.push_str("no-at-sign,pw\n");
    csv.push_str("x@unknown.example,pw\n");
    csv.push_str("nopw@localhost,\n");
    csv.push_str("user0@localhost,again\n");
    csv.push_str("withalias@localhost,pw,+4930555;sip:desk@localhost\n");
    csv.push_str("badalias@localhost,pw,12ab\n");
    let file = s.data_dir.join("users.csv");
    std::fs::write(&file, csv).expect("write");
    let out = s.ctl(&["user", "import", file.to_str().expect("utf8")], "");
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("imported 301 account(s), skipped 6 row(s)"),
        "{stdout}\n{stderr}"
    );
    for line in [303, 304, 305, 306, 307, 309] {
        assert!(
            stderr.contains(&format!("line {line}: skipped")),
            "line {line} reported: {stderr}"
        );
    }
    assert_eq!(
        ok(&s.ctl(&["alias", "list", "withalias@localhost"], "")),
        "sip:desk@localhost\n+4930555\n"
    );
    let list = ok(&s.ctl(&["user", "list"], ""));
    assert_eq!(list.lines().count(), 302);
}
