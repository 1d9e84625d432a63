//! `cusaxd serve` with zero configuration: lays out its data directory, logs a banner, stops on
//! SIGTERM within 2 s with exit 0, and reuses its data on the next start.

use cusax_testkit::Cusaxd;
use std::time::Duration;

#[test]
fn zero_config_start_stop_and_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cusax-data");
    let mut s = Cusaxd::start_in(&dir, &[]);
    for f in [
        "cusax.db",
        "cusaxd.toml",
        "tls/localhost.crt",
        "tls/localhost.key",
    ] {
        assert!(dir.join(f).exists(), "{f} created");
    }
    let log = s.log();
    assert!(log.contains("cusaxd started"), "banner: {log}");
    assert!(
        log.contains("new_config=true") && log.contains("self_signed_cert=true"),
        "{log}"
    );
    let cert = std::fs::read(dir.join("tls/localhost.crt")).expect("cert");
    let (status, took) = s.stop();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(2), "stopped in {took:?}");

    let mut again = Cusaxd::start_in(&dir, &[]);
    let log = again.log();
    assert!(
        log.contains("new_config=false") && log.contains("self_signed_cert=false"),
        "{log}"
    );
    assert_eq!(
        std::fs::read(dir.join("tls/localhost.crt")).expect("cert"),
        cert,
        "same certificate"
    );
    let (status, _) = again.stop();
    assert!(status.success());
}

#[test]
fn json_logs_and_domain_flag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("d");
    let mut s = Cusaxd::start_in(&dir, &["--domain", "example.org", "--log-format", "json"]);
    let first = s
        .log()
        .lines()
        .next()
        .map(str::to_owned)
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&first).expect("a JSON log line");
    assert_eq!(v["fields"]["message"], "cusaxd started");
    assert!(dir.join("tls/example.org.crt").exists());
    let out = s.ctl(&["domain", "list"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "example.org\n");
    assert!(s.stop().0.success());
}

#[test]
fn check_config_reports_errors_in_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[sip]\nprot = 5060\n").expect("write");
    let out = std::process::Command::new(cusax_testkit::bin("cusaxd"))
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("prot"));
    let good = tmp.path().join("good.toml");
    std::fs::write(&good, "[server]\ndomains = [\"example.org\"]\n").expect("write");
    let out = std::process::Command::new(cusax_testkit::bin("cusaxd"))
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn running_server_sees_cusaxctl_changes() {
    let s = Cusaxd::start("localhost");
    let out = s.ctl(
        &["user", "add", "zoe@localhost", "--password-stdin"],
        "pw\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        s.wait_for_log(
            "account changed account=zoe@localhost kind=\"created\"",
            Duration::from_secs(10)
        ),
        "server log: {}",
        s.log()
    );
}
