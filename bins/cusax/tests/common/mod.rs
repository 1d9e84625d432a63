//! Shared by the CLI tests: a `cusax` child process whose JSON event lines are collected,
//! private password files, and a Goertzel tone check of recorded WAV files.
#![allow(dead_code, unused_imports)] // each test file uses a part (of the re-exports too)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cusax_client::xmpp::{XmppClient, XmppConfig, XmppEvent};
use cusax_testkit::Cusaxd;
pub use cusax_testkit::audio::assert_tone;
use serde_json::Value;

/// Servers whose logs a failing test shows.
pub trait Logs {
    /// What the server(s) logged so far.
    fn log(&self) -> String;
}

impl Logs for Cusaxd {
    fn log(&self) -> String {
        Cusaxd::log(self)
    }
}

impl Logs for cusax_testkit::anchor::AnchorStack {
    fn log(&self) -> String {
        self.logs()
    }
}

/// Waits (bounded) for the first XMPP event matching `pred`.
pub async fn wait_xmpp(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<XmppEvent>,
    pred: impl Fn(&XmppEvent) -> bool,
) {
    tokio::time::timeout(STEP, async {
        while let Some(e) = rx.recv().await {
            if pred(&e) {
                return;
            }
        }
        panic!("event stream ended");
    })
    .await
    .expect("event in time");
}

/// Makes two accounts see each other's presence (RFC 6121 §3) with the client library.
pub async fn befriend(a: XmppConfig, b: XmppConfig) {
    let (aj, bj) = (a.jid.clone(), b.jid.clone());
    let (ac, mut arx) = XmppClient::start(a).expect("start");
    let (bc, mut brx) = XmppClient::start(b).expect("start");
    wait_xmpp(&mut arx, |e| matches!(e, XmppEvent::Roster { .. })).await;
    wait_xmpp(&mut brx, |e| matches!(e, XmppEvent::Roster { .. })).await;
    ac.add_contact(&bj, None).await.expect("add");
    wait_xmpp(
        &mut brx,
        |e| matches!(e, XmppEvent::Subscription { kind, .. } if kind == "subscribe"),
    )
    .await;
    bc.approve(&aj).await.expect("approve");
    bc.add_contact(&aj, None).await.expect("add");
    wait_xmpp(
        &mut arx,
        |e| matches!(e, XmppEvent::Subscription { kind, .. } if kind == "subscribe"),
    )
    .await;
    ac.approve(&bj).await.expect("approve");
    wait_xmpp(
        &mut brx,
        |e| matches!(e, XmppEvent::Subscription { kind, .. } if kind == "subscribed"),
    )
    .await;
    let roster = bc.roster().await.expect("roster");
    assert!(
        roster
            .iter()
            .any(|i| i.jid == aj && i.subscription == "both"),
        "{roster:?}"
    );
    ac.shutdown().await;
    bc.shutdown().await;
}

/// How long one expected step may take.
pub const STEP: Duration = Duration::from_secs(15);

/// A running `cusax` with its stdout parsed line by line on a thread.
pub struct Client {
    pub name: &'static str,
    pub child: Child,
    lines: mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
    stderr: PathBuf,
}

impl Client {
    pub fn start(name: &'static str, dir: &Path, args: &[&str]) -> Self {
        let stderr = dir.join(format!("{name}.stderr"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_cusax"))
            .args(args)
            .env("RUST_LOG", "debug")
            .env("XDG_CONFIG_HOME", dir) // no personal config file gets in the way
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("cusax starts");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON event line: {line:?}: {e}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Self {
            name,
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    pub fn report(&self) -> String {
        format!(
            "{} events: {:#?}\n{} stderr:\n{}",
            self.name,
            self.seen,
            self.name,
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Waits (bounded) for the first event matching `pred`, keeping all events seen.
    pub fn wait_for(
        &mut self,
        what: &str,
        server: &impl Logs,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "{}: no {what} within {STEP:?}\n{}\nserver log:\n{}",
                    self.name,
                    self.report(),
                    server.log()
                ),
            }
        }
    }

    /// The first event matching `pred` among those seen from index `from` on, or else the
    /// next one to arrive (bounded); returns its index too. For events whose order against
    /// others is not fixed (they come from different connections).
    pub fn find_from(
        &mut self,
        from: usize,
        what: &str,
        server: &impl Logs,
        pred: impl Fn(&Value) -> bool,
    ) -> (usize, Value) {
        if let Some(i) = (from..self.seen.len()).find(|&i| pred(&self.seen[i])) {
            return (i, self.seen[i].clone());
        }
        let v = self.wait_for(what, server, pred);
        (self.seen.len() - 1, v)
    }

    /// Waits (bounded) for the process to exit after its stdout closed; returns success.
    pub fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + STEP;
        while let Ok(v) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(v);
        }
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st.success();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit\n{}",
                self.name,
                self.report()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn states(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| e["event"] == "call_state")
            .map(|e| e["state"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn password_file(dir: &Path, user: &str, pw: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(format!("{user}.password"));
    std::fs::write(&p, format!("{pw}\n")).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    p
}

/// Runs one `cusax` command to completion with `stdin` as its input (no personal config:
/// `XDG_CONFIG_HOME` is `home`).
pub fn run_once(home: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cusax"))
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cusax starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin");
    child.wait_with_output().expect("cusax runs")
}
