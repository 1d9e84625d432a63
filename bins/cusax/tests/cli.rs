//! The command line's credential rules (issue 7): the password comes from a file only the user
//! can read — the config file or `--password-file` — and never from the command line.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn cusax(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cusax"))
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .output()
        .expect("cusax runs")
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CALL: [&str; 6] = [
    "call",
    "sip:bob@example.org",
    "--server",
    "127.0.0.1:9",
    "--user",
    "alice@example.org",
];

#[test]
fn password_file_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pw = tmp.path().join("pw");
    write(&pw, "secret\n", 0o644);
    let mut args = CALL.to_vec();
    args.extend(["--password-file", pw.to_str().expect("utf-8")]);
    let o = cusax(tmp.path(), &args);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
    assert_eq!(e.lines().count(), 1, "one line: {e}");
}

#[test]
fn config_file_with_a_password_must_be_private() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("cusax");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let cfg = dir.join("config.toml");
    write(
        &cfg,
        "[account]\nuser = \"alice@example.org\"\nserver = \"127.0.0.1:9\"\npassword = \"x\"\n",
        0o640,
    );
    let o = cusax(tmp.path(), &["call", "sip:bob@example.org"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    // An unknown key is an error, not silently ignored.
    write(&cfg, "[account]\npasswd = \"x\"\n", 0o600);
    let o = cusax(tmp.path(), &["call", "sip:bob@example.org"]);
    assert!(stderr(&o).contains("unknown field"), "{}", stderr(&o));
}

#[test]
fn no_password_and_no_password_flag() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = cusax(tmp.path(), &CALL);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--password-file"), "{}", stderr(&o));
    let mut args = CALL.to_vec();
    args.extend(["--password", "secret"]);
    let o = cusax(tmp.path(), &args);
    assert!(!o.status.success(), "there is no --password flag");
    assert!(stderr(&o).contains("unexpected argument"), "{}", stderr(&o));
}
