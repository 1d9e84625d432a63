//! Test helpers: start a real `cusaxd` on loopback with ephemeral ports and a temporary data
//! directory, run `cusaxctl` against it, and stop it the way an operator would (SIGTERM).

pub mod anchor;
pub mod audio;
#[cfg(feature = "dns")]
pub mod dns;
pub mod sipp;

pub use sipp::SippRun;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to come up before a test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of a workspace binary, building it first when a test of another package needs it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("invariant: a test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("invariant: tests live in target/<profile>/deps");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bin", name]);
        if release {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("cargo runs");
        assert!(st.success(), "building {name} failed");
    }
    path
}

/// A `cusaxd serve` child process with its own data directory.
#[derive(Debug)]
pub struct Cusaxd {
    child: Option<Child>,
    /// The data directory (kept until drop, or the one passed in).
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// The bound addresses, as the server wrote them to its ready file.
    pub listening: serde_json::Value,
    stderr_path: PathBuf,
}

impl Cusaxd {
    /// Starts a server on 127.0.0.1 with ports 0, serving `domain`, in a fresh temp dir.
    pub fn start(domain: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Self::start_in(&dir, &["--domain", domain]);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing or new data directory with extra flags.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Self {
        std::fs::create_dir_all(data_dir.parent().unwrap_or(data_dir)).expect("parent dir");
        let ready = data_dir.with_extension(format!("ready-{}", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let stderr_path = data_dir.with_extension("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = Command::new(bin("cusaxd"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--bind",
                "127.0.0.1",
                "--sip-port",
                "0",
                "--xmpp-port",
                "0",
                "--http-port",
                "0",
            ])
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,cusax_server=debug".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("cusaxd starts");
        let deadline = Instant::now() + START_TIMEOUT;
        let listening = loop {
            if let Some(v) = std::fs::read_to_string(&ready)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
            {
                break v;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "cusaxd exited early with {st}: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "cusaxd did not become ready in {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child: Some(child),
            data_dir: data_dir.to_owned(),
            _tmp: None,
            listening,
            stderr_path,
        }
    }

    /// A bound address from the ready file (`sip_udp`, `sip_tcp`, `xmpp`, `http`).
    pub fn addr(&self, which: &str) -> Option<SocketAddr> {
        self.listening.get(which)?.as_str()?.parse().ok()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `needle`; returns whether it did.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Creates the accounts `user@domain` with their passwords through `cusaxctl user
    /// import`, as an operator would; panics with cusaxctl's message on failure.
    pub fn import_users(&self, domain: &str, users: &[(&str, &str)]) {
        let csv = self.data_dir.with_extension("users.csv");
        let rows: String = users
            .iter()
            .map(|(u, p)| format!("{u}@{domain},{p}\n"))
            .collect();
        std::fs::write(&csv, rows).expect("write users");
        let out = self.ctl(&["user", "import", csv.to_str().expect("utf-8 path")], "");
        assert!(
            out.status.success(),
            "cusaxctl user import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `cusaxctl --data-dir DIR args…`, feeding `stdin`.
    pub fn ctl(&self, args: &[&str], stdin: &str) -> Output {
        cusaxctl(&self.data_dir, args, stdin)
    }

    /// Sends SIGTERM and waits; returns the exit status and how long the stop took.
    pub fn stop(&mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("invariant: stop is called once");
        let t0 = Instant::now();
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(st.success(), "kill -TERM failed");
        let deadline = t0 + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return (st, t0.elapsed());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("cusaxd did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Cusaxd {
    /// Kills the server with SIGKILL (a crash: no shutdown code runs) and waits; returns the
    /// exit status, which names the signal.
    pub fn kill(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("invariant: kill is called once");
        child.kill().expect("SIGKILL to our own child");
        child.wait().expect("wait")
    }
}

impl Drop for Cusaxd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `cusaxctl --data-dir DIR args…` with `stdin` as input.
pub fn cusaxctl(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin("cusaxctl"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cusaxctl starts");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("cusaxctl runs")
}

/// The sipp scenarios kept in the repository (`tests/sipp/`).
pub fn sipp_scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp")
}

/// Fails loudly when `sipp` (Debian `sip-tester`) is missing: SIP tests need a real peer.
pub fn require_sipp() {
    let found = Command::new("sipp").arg("-v").output().is_ok();
    assert!(
        found,
        "sipp is not on PATH: these tests need a real SIP peer. Install it with \
         `apt-get install -y sip-tester` (the README's test command does)"
    );
}

/// A port free for both UDP and TCP on 127.0.0.1 (sipp binds the same number for both),
/// chosen below the kernel's ephemeral range so that no outgoing connection (of cusaxd or
/// another test) takes it between this check and sipp's bind.
pub fn free_sip_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(2_654_435_761)) % 12_000) as u16;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// An HTTPS request to the server's HTTP listener with curl (an independent client), trusting
/// the certificate of `domain` from the data directory and resolving `domain` to 127.0.0.1;
/// `extra` are more curl arguments (headers, `-u`, `--data`). Returns status and body.
pub fn https(
    srv: &Cusaxd,
    domain: &str,
    method: &str,
    path: &str,
    extra: &[&str],
) -> (u16, String) {
    let http = srv.addr("http").expect("https listening");
    let out = Command::new("curl")
        .args(["-sS", "-X", method, "--cacert"])
        .arg(srv.data_dir.join(format!("tls/{domain}.crt")))
        .args(["--resolve", &format!("{domain}:{}:127.0.0.1", http.port())])
        .args(["-w", "\n%{http_code}"])
        .args(extra)
        .arg(format!("https://{domain}:{}{path}", http.port()))
        .output()
        .expect("curl runs (Debian package curl)");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.parse().expect("status code"), body.to_owned())
}

/// The workspace root (for `tests/…` files used by integration tests).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python that drives slixmpp peers: `$CUSAX_PYTHON`, else the workspace `.venv`, else
/// `python3`; fails loudly when it cannot import slixmpp.
pub fn slixmpp_python() -> PathBuf {
    let venv = workspace().join(".venv/bin/python3");
    let py = std::env::var_os("CUSAX_PYTHON")
        .map(PathBuf::from)
        .or_else(|| venv.exists().then_some(venv))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&py)
        .args(["-c", "import slixmpp"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "slixmpp cannot be imported by {} — run scripts/test, or create .venv with \
         `python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt`",
        py.display()
    );
    py
}

/// A `tests/slixmpp/peer.py SCENARIO` command against the server's STARTTLS port, trusting
/// the certificate of `domain`, with `--user JID PASSWORD` for each of `users`.
pub fn slixmpp_peer(srv: &Cusaxd, domain: &str, scenario: &str, users: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(slixmpp_python());
    cmd.arg(workspace().join("tests/slixmpp/peer.py"))
        .arg(scenario)
        .arg("--addr")
        .arg(srv.addr("xmpp").expect("xmpp listener").to_string())
        .arg("--ca")
        .arg(srv.data_dir.join(format!("tls/{domain}.crt")));
    for (jid, pw) in users {
        cmd.args(["--user", jid, pw]);
    }
    cmd
}

/// Runs [`slixmpp_peer`] to its end (the script bounds every wait) and asserts that it
/// exited 0 and printed its final `OK`; returns what it printed. On failure the message has
/// the script's output and the server's log.
pub fn run_slixmpp_peer(
    srv: &Cusaxd,
    domain: &str,
    scenario: &str,
    users: &[(&str, &str)],
) -> String {
    let out = slixmpp_peer(srv, domain, scenario, users)
        .output()
        .expect("python runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.lines().any(|l| l == "OK"),
        "scenario {scenario} failed ({}):\n{text}\n{}\n--- server log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        srv.log()
    );
    text
}
