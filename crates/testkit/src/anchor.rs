//! The anchor stack (issue 7): the reference servers the cusax client is proven against —
//! Prosody for XMPP and Kamailio for SIP, both from Debian, started by the test as child
//! processes on free loopback ports with their own configuration and data in a temporary
//! directory, with the same accounts created on both.
//!
//! * Prosody (`/usr/bin/prosody`, Debian package `prosody`): one virtual host, c2s on
//!   127.0.0.1 with STARTTLS required (`c2s_require_encryption`), a self-signed certificate
//!   for the domain (its PEM is the trust anchor a client uses), SCRAM-SHA-1 over hashed
//!   credentials (`internal_hashed`), mod_roster, mod_vcard (vcard-temp, XEP-0054), mod_disco,
//!   mod_ping, mod_presence, offline storage. Accounts are made with `prosodyctl register`.
//! * Kamailio (`/usr/sbin/kamailio`, Debian packages `kamailio` and
//!   `kamailio-sqlite-modules`): `bench/kamailio/kamailio-proxy.cfg` — registrar and
//!   record-routing, transaction-stateful proxy that challenges REGISTER (401) and every new
//!   request (407) with digest, HA1 from a SQLite subscriber table (`bench/kamailio/schema.sql`,
//!   `ha1 = md5(user:domain:password)`), on one port for UDP and TCP.
//!
//! Readiness is polled (a stream header answered with STARTTLS features; an OPTIONS answered
//! with 200), bounded by [`START_TIMEOUT`]; a failure panics with the tail of the server's log.
//! Dropping a server sends SIGTERM to the process the harness started and waits (bounded);
//! only if it does not exit are it and its own children (Kamailio's workers) killed.
//!
//! Environment: `CUSAX_ANCHOR_DEBUG=1` makes Kamailio log every request (`WITH_DEBUG`);
//! `CUSAX_ANCHOR_KEEP=1` keeps the temporary directories (configuration, data, logs).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use crate::{START_TIMEOUT, free_sip_port, workspace};

const PROSODY: &str = "/usr/bin/prosody";
const PROSODYCTL: &str = "/usr/bin/prosodyctl";
const KAMAILIO: &str = "/usr/sbin/kamailio";
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many ports a server is tried on before the harness gives up.
const PORT_ATTEMPTS: usize = 3;
/// Lines of a server log quoted in a panic message.
const TAIL_LINES: usize = 60;

/// One account, created on both servers: `name@domain` with `password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorUser {
    /// The local part (JID node and SIP user), lower case.
    pub name: String,
    /// The password (SCRAM on Prosody, digest on Kamailio).
    pub password: String,
}

/// Prosody and Kamailio serving one domain with the same accounts. Dropping it stops both
/// servers and removes their temporary directories.
#[derive(Debug)]
pub struct AnchorStack {
    /// The served domain: the XMPP virtual host, the SIP domain and digest realm.
    pub domain: String,
    /// The accounts, in the order given.
    pub users: Vec<AnchorUser>,
    /// The XMPP server.
    pub prosody: Prosody,
    /// The SIP registrar and proxy.
    pub kamailio: Kamailio,
}

impl AnchorStack {
    /// Starts Prosody and Kamailio (side by side) serving `domain`, each with every account
    /// of `users` (`(name, password)`); returns once both answer. Panics when a server is
    /// missing (naming its Debian package) or does not come up (with its log tail).
    pub fn start(domain: &str, users: &[(&str, &str)]) -> Self {
        let (prosody, kamailio) = std::thread::scope(|s| {
            let k = s.spawn(|| Kamailio::start(domain, users));
            let p = Prosody::start(domain, users);
            let k = k.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            (p, k)
        });
        Self {
            domain: domain.to_owned(),
            users: users
                .iter()
                .map(|(n, p)| AnchorUser {
                    name: (*n).to_owned(),
                    password: (*p).to_owned(),
                })
                .collect(),
            prosody,
            kamailio,
        }
    }

    /// Prosody's c2s address (plain TCP, then STARTTLS), `127.0.0.1:port`.
    pub fn xmpp_addr(&self) -> SocketAddr {
        self.prosody.addr()
    }

    /// Kamailio's address, the same for UDP and TCP, `127.0.0.1:port`.
    pub fn sip_addr(&self) -> SocketAddr {
        self.kamailio.addr()
    }

    /// The PEM certificate Prosody presents for the domain (self-signed): a client trusts it
    /// as its only root.
    pub fn ca_cert(&self) -> &Path {
        &self.prosody.cert
    }

    /// The password of `name`, if it is one of the accounts.
    pub fn password(&self, name: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.name == name)
            .map(|u| u.password.as_str())
    }

    /// `name@domain` (a bare JID).
    pub fn jid(&self, name: &str) -> String {
        format!("{name}@{}", self.domain)
    }

    /// `sip:name@domain` (an address of record).
    pub fn aor(&self, name: &str) -> String {
        format!("sip:{name}@{}", self.domain)
    }

    /// Creates one more account on both servers while they run.
    pub fn add_user(&mut self, name: &str, password: &str) {
        self.prosody.add_user(name, password);
        self.kamailio.add_user(name, password);
        self.users.push(AnchorUser {
            name: name.to_owned(),
            password: password.to_owned(),
        });
    }

    /// The tails of both server logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- prosody log (tail) ---\n{}\n--- kamailio log (tail) ---\n{}",
            tail(&self.prosody.log()),
            tail(&self.kamailio.log())
        )
    }
}

/// A Prosody child process with its own configuration, certificate and data directory.
#[derive(Debug)]
pub struct Prosody {
    child: Option<Child>,
    /// The virtual host.
    pub domain: String,
    /// The c2s port on 127.0.0.1.
    pub port: u16,
    /// The certificate (PEM, self-signed for the domain).
    pub cert: PathBuf,
    /// The generated configuration file (for `prosodyctl --config`).
    pub config: PathBuf,
    /// The stream features offered before STARTTLS, as seen by the readiness probe.
    pub pre_tls_features: String,
    log_path: PathBuf,
    tmp: Option<tempfile::TempDir>,
}

impl Prosody {
    /// Starts Prosody serving `domain` with `users` on a free port; returns once a stream
    /// header is answered with STARTTLS features.
    pub fn start(domain: &str, users: &[(&str, &str)]) -> Self {
        require(PROSODY, "prosody");
        check_domain(domain);
        let tmp = tempfile::Builder::new()
            .prefix("cusax-prosody-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_owned();
        let (data, certs) = (dir.join("data"), dir.join("certs"));
        for d in [&data, &certs] {
            std::fs::create_dir_all(d).expect("prosody dirs");
        }
        // The certificate of the virtual host, named as Prosody's certificate directory
        // lookup expects (DOMAIN.crt / DOMAIN.key).
        let ck = rcgen::generate_simple_self_signed(vec![domain.to_owned()])
            .unwrap_or_else(|e| panic!("certificate for {domain}: {e}"));
        let cert = certs.join(format!("{domain}.crt"));
        let key = certs.join(format!("{domain}.key"));
        std::fs::write(&cert, ck.cert.pem()).expect("write certificate");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");

        let log_path = dir.join("prosody.log");
        let config = dir.join("prosody.cfg.lua");
        let mut p = Self {
            child: None,
            domain: domain.to_owned(),
            port: 0,
            cert,
            config,
            pre_tls_features: String::new(),
            log_path,
            tmp: Some(tmp),
        };
        // Accounts first: prosodyctl writes them to the file store, which the server reads
        // (prosodyctl needs the configuration, whose port is set below).
        let cfg = prosody_config(domain, 0, &data, &certs, &p.cert, &key, &p.log_path);
        std::fs::write(&p.config, cfg).expect("write prosody config");
        for (u, pw) in users {
            p.add_user(u, pw);
        }
        for _ in 0..PORT_ATTEMPTS {
            // free for TCP (and UDP), below the ephemeral range; another process may still
            // take it before Prosody binds, which Prosody only logs: then another port
            p.port = free_sip_port();
            let cfg = prosody_config(domain, p.port, &data, &certs, &p.cert, &key, &p.log_path);
            std::fs::write(&p.config, cfg).expect("write prosody config");
            let stderr = std::fs::File::create(dir.join("prosody.stderr")).expect("stderr file");
            let child = Command::new(PROSODY)
                .arg("-F")
                .arg("--config")
                .arg(&p.config)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("{PROSODY} does not start: {e}"));
            p.child = Some(child);
            if let Some(features) = p.wait_ready() {
                p.pre_tls_features = features;
                return p;
            }
            if let Some(c) = p.child.take() {
                stop(c);
            }
        }
        panic!(
            "Prosody found its c2s port taken {PORT_ATTEMPTS} times\n--- prosody log (tail) ---\n{}",
            tail(&p.log())
        );
    }

    /// `127.0.0.1:port` of c2s.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Creates the account `name@domain` with `prosodyctl register` (works while running).
    pub fn add_user(&self, name: &str, password: &str) {
        check_user(name);
        let out = Command::new(PROSODYCTL)
            .arg("--config")
            .arg(&self.config)
            .args(["register", name, &self.domain, password])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{PROSODYCTL} does not run: {e}"));
        assert!(
            out.status.success(),
            "prosodyctl register {name} {}: {}\n{}{}",
            self.domain,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Everything Prosody logged so far (debug level) and what it wrote to stderr.
    pub fn log(&self) -> String {
        let mut s = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        if let Some(dir) = self.log_path.parent() {
            s += &std::fs::read_to_string(dir.join("prosody.stderr")).unwrap_or_default();
        }
        s
    }

    /// Polls until the virtual host answers a stream header with its features (including
    /// STARTTLS); returns those features, or `None` when the port was taken.
    fn wait_ready(&mut self) -> Option<String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let taken = format!("Failed to open server port {}", self.port);
        loop {
            self.check_running("Prosody");
            if self.log().contains(&taken) {
                return None;
            }
            let last = match stream_features(self.addr(), &self.domain) {
                Ok(f) if f.contains("urn:ietf:params:xml:ns:xmpp-tls") => return Some(f),
                Ok(f) => f,
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "Prosody did not offer STARTTLS for {} on {} within {START_TIMEOUT:?} \
                 (last answer: {last})\n--- prosody log (tail) ---\n{}",
                self.domain,
                self.addr(),
                tail(&self.log())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn check_running(&mut self, name: &str) {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            panic!(
                "{name} exited early with {st}\n--- log (tail) ---\n{}",
                tail(&self.log())
            );
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop(c);
        }
        keep_if_asked(self.tmp.take(), "Prosody");
    }
}

/// A Kamailio child process (`bench/kamailio/kamailio-proxy.cfg`) with its own SQLite
/// subscriber database and runtime directory.
#[derive(Debug)]
pub struct Kamailio {
    child: Option<Child>,
    /// The SIP domain and digest realm.
    pub domain: String,
    /// The port on 127.0.0.1, for UDP and TCP.
    pub port: u16,
    /// The subscriber database.
    pub db: PathBuf,
    log_path: PathBuf,
    tmp: Option<tempfile::TempDir>,
}

impl Kamailio {
    /// Starts Kamailio for `domain` with `users` on a free UDP+TCP port; returns once an
    /// OPTIONS is answered with 200 and the TCP listener accepts.
    pub fn start(domain: &str, users: &[(&str, &str)]) -> Self {
        require(KAMAILIO, "kamailio");
        let sqlite_module = std::fs::read_dir("/usr/lib").is_ok_and(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.path().join("kamailio/modules/db_sqlite.so").exists())
        });
        assert!(
            sqlite_module,
            "Kamailio's db_sqlite module is missing: install the Debian package \
             kamailio-sqlite-modules (scripts/test does)"
        );
        check_domain(domain);
        let tmp = tempfile::Builder::new()
            .prefix("cusax-kamailio-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_owned();
        let run = dir.join("run");
        std::fs::create_dir_all(&run).expect("kamailio runtime dir");
        let db = dir.join("kamailio.sqlite");
        let mut sql = String::from(include_str!("../../../bench/kamailio/schema.sql"));
        sql += &users
            .iter()
            .map(|(u, pw)| subscriber_insert(u, domain, pw))
            .collect::<String>();
        sqlite(&db, &sql);

        let mut k = Self {
            child: None,
            domain: domain.to_owned(),
            port: 0,
            db,
            log_path: dir.join("kamailio.log"),
            tmp: Some(tmp),
        };
        for _ in 0..PORT_ATTEMPTS {
            // another process may take the port before Kamailio binds it: then it exits
            // with "Address already in use" and another port is tried
            k.port = free_sip_port();
            let log = std::fs::File::create(&k.log_path).expect("log file");
            let mut cmd = Command::new(KAMAILIO);
            cmd.args(["-DD", "-E", "-m", "64", "-M", "8", "-Y"])
                .arg(&run)
                .arg("-P")
                .arg(dir.join("kamailio.pid"))
                .arg("-f")
                .arg(workspace().join("bench/kamailio/kamailio-proxy.cfg"))
                .arg("-A")
                .arg(format!("SIP_PORT={}", k.port))
                .arg("-A")
                .arg(format!("DBURL=\"sqlite://{}\"", k.db.display()))
                .arg("-A")
                .arg(format!("REALM=\"{domain}\""))
                .args(["-A", "CHILDREN=2"]);
            if std::env::var_os("CUSAX_ANCHOR_DEBUG").is_some() {
                cmd.args(["-A", "WITH_DEBUG"]);
            }
            let child = cmd
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("{KAMAILIO} does not start: {e}"));
            k.child = Some(child);
            if k.wait_ready() {
                return k;
            }
            if let Some(c) = k.child.take() {
                stop(c);
            }
        }
        panic!(
            "Kamailio found its port taken {PORT_ATTEMPTS} times\n--- kamailio log (tail) ---\n{}",
            tail(&k.log())
        );
    }

    /// `127.0.0.1:port`, for UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Creates the subscriber `name@domain` (auth_db reads the table per request, so this
    /// works while running).
    pub fn add_user(&self, name: &str, password: &str) {
        sqlite(&self.db, &subscriber_insert(name, &self.domain, password));
    }

    /// Everything Kamailio logged so far (errors only, unless `CUSAX_ANCHOR_DEBUG` is set,
    /// which logs every request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Polls until an OPTIONS is answered with 200 and TCP connects; `false` when Kamailio
    /// exited because its port was taken.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind probe socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let local = sock.local_addr().expect("probe address");
        let mut n = 0u32;
        let mut last = String::from("no answer");
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                if self.log().contains("Address already in use") {
                    return false;
                }
                panic!(
                    "Kamailio exited early with {st}\n--- kamailio log (tail) ---\n{}",
                    tail(&self.log())
                );
            }
            n += 1;
            let call_id = format!("anchor-probe-{n}-{}", std::process::id());
            let options = format!(
                "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-anchor-{n};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{domain}>;tag=probe{n}\r\n\
                 To: <sip:127.0.0.1:{port}>\r\nCall-ID: {call_id}\r\nCSeq: {n} OPTIONS\r\n\
                 Content-Length: 0\r\n\r\n",
                port = self.port,
                domain = self.domain,
            );
            let _ = sock.send_to(options.as_bytes(), self.addr());
            let mut buf = [0u8; 4096];
            let answered = loop {
                match sock.recv(&mut buf) {
                    Ok(len) => {
                        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                        if text.contains(&call_id) {
                            last = text.lines().next().unwrap_or_default().to_owned();
                            break text.starts_with("SIP/2.0 200");
                        }
                        // an answer to an earlier probe: keep reading
                    }
                    Err(_) => break false,
                }
            };
            if answered && TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).is_ok()
            {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "Kamailio did not answer OPTIONS with 200 on {} within {START_TIMEOUT:?} \
                 (last: {last})\n--- kamailio log (tail) ---\n{}",
                self.addr(),
                tail(&self.log())
            );
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop(c);
        }
        keep_if_asked(self.tmp.take(), "Kamailio");
    }
}

/// With `CUSAX_ANCHOR_KEEP` set, a server's directory (configuration, data, logs) is kept
/// for inspection instead of removed.
fn keep_if_asked(tmp: Option<tempfile::TempDir>, name: &str) {
    if let Some(t) = tmp
        && std::env::var_os("CUSAX_ANCHOR_KEEP").is_some()
    {
        eprintln!("{name}: kept {}", t.keep().display());
    }
}

/// Fails loudly when a server binary is missing: these tests need the real peers.
fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the anchor-stack tests need the Debian package `{package}` \
         (`apt-get install -y {package}`; scripts/test installs it)"
    );
}

/// Panics unless `domain` is a plain DNS name (it goes into Lua, SQL and SIP text).
fn check_domain(domain: &str) {
    let ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    assert!(
        ok,
        "anchor stack domain {domain:?}: use lower-case letters, digits, '.' and '-'"
    );
}

/// Panics unless `name` is a local part valid and identical for XMPP (nodeprep keeps it)
/// and SIP (no escaping needed), and safe in SQL.
fn check_user(name: &str) {
    let ok = !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        });
    assert!(
        ok,
        "anchor stack user {name:?}: use lower-case letters, digits, '.', '-' and '_'"
    );
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The subscriber row of `name@domain`: only the HA1 values are stored, as in mkdb.sh.
fn subscriber_insert(name: &str, domain: &str, password: &str) -> String {
    check_user(name);
    let ha1 = md5_hex(&format!("{name}:{domain}:{password}"));
    let ha1b = md5_hex(&format!("{name}@{domain}:{domain}:{password}"));
    format!(
        "INSERT INTO subscriber (username, domain, password, ha1, ha1b, locked) \
         VALUES ('{name}', '{domain}', '', '{ha1}', '{ha1b}', 0);\n"
    )
}

/// Runs SQL against a SQLite database with the `sqlite3` CLI (Debian package `sqlite3`).
fn sqlite(db: &Path, sql: &str) {
    let mut child = Command::new("sqlite3")
        .arg("-bail")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("sqlite3 does not run ({e}): install the Debian package sqlite3")
        });
    if let Some(mut i) = child.stdin.take() {
        i.write_all(sql.as_bytes()).expect("write SQL");
    }
    let out = child.wait_with_output().expect("sqlite3 runs");
    assert!(
        out.status.success(),
        "sqlite3 {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Lua string literal.
fn lua(s: &str) -> String {
    format!("{s:?}")
}

fn prosody_config(
    domain: &str,
    port: u16,
    data: &Path,
    certs: &Path,
    cert: &Path,
    key: &Path,
    log: &Path,
) -> String {
    let p = |p: &Path| lua(&p.display().to_string());
    format!(
        r#"-- Prosody for the cusax anchor-stack tests, written by crates/testkit/src/anchor.rs.
-- Not a deployment configuration.

-- The tests may run as root (CI); everything lives in a temporary directory.
run_as_root = true
data_path = {data}
certificates = {certs}
log = {{ debug = {log} }}

modules_enabled = {{
	"roster";    -- RFC 6121 rosters
	"saslauth";  -- SASL (SCRAM-SHA-1 with internal_hashed)
	"tls";       -- STARTTLS
	"disco";     -- XEP-0030
	"ping";      -- XEP-0199
	"vcard";     -- vcard-temp, XEP-0054
	"presence";
	"private";
	"version";
	"time";
}}
modules_disabled = {{ "s2s" }}

c2s_ports = {{ {port} }}
c2s_interfaces = {{ "127.0.0.1" }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
s2s_ports = {{ }}
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
storage = "internal"
allow_registration = false

VirtualHost {domain}
	ssl = {{ certificate = {cert}; key = {key}; }}
"#,
        data = p(data),
        certs = p(certs),
        log = p(log),
        domain = lua(domain),
        cert = p(cert),
        key = p(key),
    )
}

/// Opens a c2s stream to `domain` and returns what the server sent up to the end of its
/// stream features (or its stream error).
fn stream_features(addr: SocketAddr, domain: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if text.contains("</stream:features>") || text.contains("</stream:error>") {
            break;
        }
    }
    let _ = s.write_all(b"</stream:stream>");
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// The last lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Stops a server the harness started: SIGTERM to its PID, a bounded wait, then SIGKILL to
/// the children it forked (read from /proc) and to itself.
fn stop(mut child: Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let pid = child.id();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    for c in children(pid) {
        let _ = Command::new("kill")
            .args(["-KILL", &c.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The PIDs of the direct children of `pid` (every thread's `children` list).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_is_md5_of_user_realm_password() {
        // RFC 2617 §3.2.2.2 with the values of mkdb.sh's first user
        assert_eq!(
            md5_hex("user1:bench.local:pw-1"),
            "387355dca6ea7bb35812e71e1d66bb42"
        );
    }

    #[test]
    fn lua_strings_are_quoted_and_escaped() {
        assert_eq!(lua(r#"/tmp/a"b\c"#), r#""/tmp/a\"b\\c""#);
    }

    #[test]
    #[should_panic(expected = "anchor stack user")]
    fn user_names_that_need_quoting_are_refused() {
        check_user("o'brien");
    }
}
