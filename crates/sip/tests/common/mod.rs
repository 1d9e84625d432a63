#![allow(dead_code)] // each test file uses a part of it
//! What the sipp integration tests of the SIP crate share: a real `cusaxd` with three users and
//! a scratch directory ([`Lab`]), sipp runs as registrar clients, caller and callee, and bounded
//! waits for sipp to listen, exit and release its port.

use cusax_testkit::Cusaxd;
use std::net::UdpSocket;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const DOMAIN: &str = "bench.local";

pub use cusax_testkit::{free_sip_port as free_port, require_sipp, sipp_scenarios as sipp_dir};

/// The server, two users and a scratch directory for sipp's files.
pub struct Lab {
    pub srv: Cusaxd,
    pub dir: tempfile::TempDir,
    /// The data directory of a server started with a configuration file.
    _server_dir: Option<tempfile::TempDir>,
}

impl Lab {
    pub fn new() -> Self {
        require_sipp();
        Self::with_users(Cusaxd::start(DOMAIN))
    }

    /// A lab whose server reads `toml` as its configuration file (`--config`).
    pub fn with_config(toml: &str) -> Self {
        require_sipp();
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = tmp.path().join("cusaxd.toml");
        std::fs::write(&cfg, toml).expect("write config");
        let cfg = cfg.to_str().expect("utf-8 path").to_owned();
        let srv = Cusaxd::start_in(
            &tmp.path().join("data"),
            &["--domain", DOMAIN, "--config", &cfg],
        );
        let mut lab = Self::with_users(srv);
        lab._server_dir = Some(tmp);
        lab
    }

    fn with_users(srv: Cusaxd) -> Self {
        let csv = srv.data_dir.with_extension("users.csv");
        std::fs::write(
            &csv,
            format!("user1@{DOMAIN},pw-1\nuser2@{DOMAIN},pw-2\nuser3@{DOMAIN},pw-3\n"),
        )
        .expect("write users");
        let out = srv.ctl(&["user", "import", csv.to_str().expect("utf-8 path")], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, user, pw) in [
            ("caller.csv", "user1", "pw-1"),
            ("callee.csv", "user2", "pw-2"),
        ] {
            std::fs::write(
                dir.path().join(name),
                format!("SEQUENTIAL\n{user};{pw};{DOMAIN}\n"),
            )
            .expect("write csv");
        }
        Self {
            srv,
            dir,
            _server_dir: None,
        }
    }

    pub fn server(&self, transport: &str) -> String {
        let which = if transport == "t1" {
            "sip_tcp"
        } else {
            "sip_udp"
        };
        self.srv.addr(which).expect("sip listener").to_string()
    }

    pub fn sipp(&self, scenario: &str, transport: &str) -> Command {
        let mut c = Command::new("timeout");
        c.arg("30")
            .arg("sipp")
            .arg("-sf")
            .arg(sipp_dir().join(scenario))
            .args(["-t", transport, "-m", "1", "-nostdin"])
            .args(["-timeout", "20s", "-timeout_error"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Registers user2 from `port` (the port its UAS will listen on).
    pub fn register_callee(&self, transport: &str, port: u16) {
        self.register_with("register_digest.xml", transport, port, &[]);
    }

    pub fn register_with(&self, scenario: &str, transport: &str, port: u16, extra: &[&str]) {
        let mut args = vec!["-auth_uri", DOMAIN];
        args.extend_from_slice(extra);
        assert!(
            self.register_as(scenario, transport, port, &args),
            "{transport}: callee registers from port {port} ({scenario})"
        );
    }

    /// Runs a REGISTER scenario for user2 from `port` with sipp's own digest `uri` (unless
    /// `extra` has `-auth_uri`); true when it passed.
    pub fn register_as(&self, scenario: &str, transport: &str, port: u16, extra: &[&str]) -> bool {
        self.sipp(scenario, transport)
            .arg(self.server(transport))
            .args(["-inf", "callee.csv", "-au", "[field0]", "-ap", "[field1]"])
            .args(["-p", &port.to_string(), "-nd"])
            .args(["-recv_timeout", "5000"])
            .args(extra)
            .status()
            .expect("sipp runs")
            .success()
    }

    /// Removes every binding of user2 (`Contact: *`), so that calls do not fork to devices
    /// of an earlier step that no longer answer.
    pub fn unregister_callee(&self, transport: &str) {
        let ok = self
            .sipp("unregister_all.xml", transport)
            .arg(self.server(transport))
            .args(["-inf", "callee.csv", "-au", "[field0]", "-ap", "[field1]"])
            .args(["-auth_uri", DOMAIN, "-p", &free_port().to_string(), "-nd"])
            .args(["-recv_timeout", "5000"])
            .status()
            .expect("sipp runs")
            .success();
        assert!(ok, "{transport}: callee unregisters");
    }

    /// Starts a UAS scenario on `port` in the background.
    pub fn uas(&self, scenario: &str, transport: &str, port: u16, tag: &str) -> Child {
        self.sipp(scenario, transport)
            .args(["-p", &port.to_string()])
            .args(["-trace_err", "-error_file"])
            .arg(self.dir.path().join(format!("{tag}.uas.err")))
            .spawn()
            .expect("sipp uas starts")
    }

    /// Places one call (or request) from user1 to user2; true when the scenario passed.
    pub fn uac(&self, scenario: &str, transport: &str, tag: &str) -> bool {
        self.uac_with(scenario, transport, tag, &[])
    }

    pub fn uac_with(&self, scenario: &str, transport: &str, tag: &str, extra: &[&str]) -> bool {
        self.sipp(scenario, transport)
            .args(extra)
            .arg(self.server(transport))
            .args([
                "-s",
                "user2",
                "-inf",
                "caller.csv",
                "-au",
                "[field0]",
                "-ap",
                "[field1]",
            ])
            .args(["-p", &free_port().to_string(), "-d", "200", "-nd"])
            .args(["-recv_timeout", "10000", "-trace_err", "-error_file"])
            .arg(self.dir.path().join(format!("{tag}.uac.err")))
            .args(["-trace_msg", "-message_file"])
            .arg(self.dir.path().join(format!("{tag}.uac.msg")))
            .status()
            .expect("sipp uac runs")
            .success()
    }

    /// The server's `/metrics` page (over HTTPS, with curl).
    pub fn metrics(&self) -> String {
        let (code, body) = cusax_testkit::https(&self.srv, DOMAIN, "GET", "/metrics", &[]);
        assert_eq!(code, 200, "{body}");
        body
    }

    pub fn errors(&self, tag: &str) -> String {
        let mut s = String::new();
        for side in ["uac.err", "uas.err", "uac.msg"] {
            let p = self.dir.path().join(format!("{tag}.{side}"));
            if let Ok(t) = std::fs::read_to_string(&p) {
                s.push_str(&format!("--- {side}:\n{t}\n"));
            }
        }
        s
    }

    /// Runs a UAC/UAS pair to completion and asserts both sides passed.
    pub fn pair(&self, uac: &str, uas: &str, transport: &str, uas_port: u16) {
        let tag = format!("{}-{}", uac.trim_end_matches(".xml"), transport);
        let mut callee = self.uas(uas, transport, uas_port, &tag);
        if !listening(transport, uas_port) {
            let _ = callee.wait();
            panic!(
                "{tag}: the UAS never listened on {uas_port}\n{}",
                self.errors(&tag)
            );
        }
        let caller_ok = self.uac(uac, transport, &tag);
        let callee_ok = wait_bounded(&mut callee);
        assert!(
            caller_ok && callee_ok,
            "{tag}: caller ok={caller_ok}, callee ok={callee_ok}\n{}\nserver log:\n{}",
            self.errors(&tag),
            self.srv.log()
        );
    }
}

/// Waits until sipp listens on `port` (UDP: the port is taken; TCP: it accepts), bounded.
pub fn wait_listening(transport: &str, port: u16) {
    assert!(
        listening(transport, port),
        "sipp UAS never listened on {port}"
    );
}

/// Polls (bounded, 10 s) until something listens on `port`.
pub fn listening(transport: &str, port: u16) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let up = if transport == "t1" {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        } else {
            UdpSocket::bind(("127.0.0.1", port)).is_err()
        };
        if up {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until nothing holds UDP `port` any more, bounded.
pub fn wait_released(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "port {port} still taken"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exit status of a sipp child (which bounds itself with `timeout 30`).
pub fn wait_bounded(child: &mut Child) -> bool {
    child.wait().map(|s| s.success()).unwrap_or(false)
}

/// A witness UAS on `port` that must not get the call: tracing every message, it expects
/// only the OPTIONS probe that [`probe_witness`] sends it directly.
pub fn witness(lab: &Lab, port: u16) -> (Child, std::path::PathBuf) {
    let trace = lab.dir.path().join(format!("witness-{port}.msg"));
    let child = lab
        .sipp("uas_options.xml", "u1")
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-trace_msg", "-message_file"])
        .arg(&trace)
        .spawn()
        .expect("sipp witness starts");
    assert!(listening("u1", port), "witness listens on {port}");
    (child, trace)
}

/// Sends the witness its OPTIONS straight (not through cusaxd), waits for it to exit and
/// returns its trace after checking that it ran: it answered 200 and exited with 0.
pub fn probe_witness(lab: &Lab, mut w: (Child, std::path::PathBuf), port: u16) -> String {
    let probe_ok = lab
        .sipp("options.xml", "u1")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-recv_timeout", "5000"])
        .status()
        .expect("sipp probe runs")
        .success();
    let witness_ok = wait_bounded(&mut w.0);
    let trace = std::fs::read_to_string(&w.1).expect("the witness wrote its message trace");
    assert!(
        probe_ok && witness_ok,
        "the witness on {port} ran: probe ok={probe_ok}, witness ok={witness_ok}\n{trace}"
    );
    assert!(
        trace.contains("OPTIONS sip:"),
        "the witness traced: {trace}"
    );
    trace
}
