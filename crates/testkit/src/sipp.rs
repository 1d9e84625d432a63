//! sipp (Debian `sip-tester`) as an independent SIP peer of the tests: bounded runs of the
//! scenarios in `tests/sipp/`, a bounded wait for a UAS to listen, and the message traces sipp
//! writes with `-trace_msg`, so that a test can assert what a peer saw and in which order.
//!
//! A test expecting a scenario to *fail* runs it as a [`SippRun`]: it first proves that the
//! exchange took place and which answer ended it, so that a crash, a port clash or a timeout of
//! sipp does not pass for a refusal by the server (see `tests/README.md`).

use crate::{require_sipp, sipp_scenarios};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// sipp runs against one server over UDP, with its files in one scratch directory.
#[derive(Debug)]
pub struct Sipp {
    dir: PathBuf,
    server: SocketAddr,
}

/// One message of a `-trace_msg` file.
#[derive(Debug, Clone)]
pub struct Traced {
    /// sipp's wall-clock stamp, `YYYY-MM-DD HH:MM:SS.micro`: fixed width, so that stamps of
    /// two sipp processes on this host compare as strings in time order.
    pub at: String,
    /// Sent by this sipp (else received).
    pub sent: bool,
    /// The SIP message text.
    pub text: String,
}

impl Traced {
    /// The start line (`INVITE sip:… SIP/2.0`, `SIP/2.0 486 Busy Here`).
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or_default()
    }

    /// Received by this sipp (else sent).
    pub fn received(&self) -> bool {
        !self.sent
    }

    /// The status code of a response (`SIP/2.0 NNN …`).
    pub fn status(&self) -> Option<u16> {
        let rest = self.text.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// The value of the first header named `name` (case-insensitive; full names only).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.text
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
    }
}

/// sipp's exit code when every call of the run passed.
const PASSED: i32 = 0;
/// sipp's exit code when at least one call failed, as opposed to sipp itself failing
/// (255 fatal error, 254 socket bind error, 99/97 no call processed; `timeout` gives 124).
const CALL_FAILED: i32 = 1;

/// One finished sipp run and the messages it traced.
#[derive(Debug)]
pub struct SippRun {
    /// sipp's exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// The text of the `-trace_msg` file.
    pub trace: String,
    /// What sipp wrote on stderr.
    pub stderr: String,
}

impl SippRun {
    /// Runs `cmd` (a sipp command line, possibly behind `timeout`) with its message trace
    /// written to `message_file`, to completion. Panics when sipp left no trace: then it
    /// never exchanged anything and the run proves nothing either way.
    pub fn traced(cmd: &mut Command, message_file: &Path) -> Self {
        let _ = std::fs::remove_file(message_file);
        let out = cmd
            .args(["-trace_msg", "-message_file"])
            .arg(message_file)
            .output()
            .expect("sipp runs (Debian package sip-tester)");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let trace = std::fs::read_to_string(message_file).unwrap_or_else(|e| {
            panic!(
                "sipp (exit {:?}) wrote no message trace {}: {e}\n{stderr}",
                out.status.code(),
                message_file.display()
            )
        });
        Self {
            code: out.status.code(),
            trace,
            stderr,
        }
    }

    /// Whether every call of the run passed.
    pub fn passed(&self) -> bool {
        self.code == Some(PASSED)
    }

    /// The messages of the trace, in order.
    pub fn messages(&self) -> Vec<Traced> {
        parse_trace(&self.trace)
    }

    /// The last final (≥ 200) response sipp received to a request with `CSeq: cseq`
    /// (e.g. `"2 REGISTER"`).
    pub fn final_response_to(&self, cseq: &str) -> Option<Traced> {
        self.messages().into_iter().rev().find(|m| {
            m.received()
                && m.status().is_some_and(|s| s >= 200)
                && m.header("CSeq")
                    .is_some_and(|c| c.split_whitespace().eq(cseq.split_whitespace()))
        })
    }

    /// Asserts the positive evidence of a scenario that must fail: sipp ran (a trace), the
    /// call failed as a call (exit 1, not a crash, bind error or timeout), and the request
    /// `cseq` got the final answer `code` from the server. Returns that answer.
    pub fn assert_failed_with(&self, cseq: &str, code: u16, what: &str) -> Traced {
        let last = self.final_response_to(cseq);
        match last {
            Some(m) if self.code == Some(CALL_FAILED) && m.status() == Some(code) => m,
            _ => panic!(
                "{what}: expected sipp to fail its call (exit 1) on a {code} to {cseq}; got exit \
                 {:?} and {:?}\n--- stderr:\n{}\n--- trace:\n{}",
                self.code,
                last.as_ref().map(Traced::start_line),
                self.stderr,
                self.trace
            ),
        }
    }
}

impl Sipp {
    /// Fails loudly without sipp; files go to `dir`.
    pub fn new(dir: &Path, server: SocketAddr) -> Self {
        require_sipp();
        Self {
            dir: dir.to_owned(),
            server,
        }
    }

    /// The trace file of the run tagged `tag`.
    pub fn trace_path(&self, tag: &str) -> PathBuf {
        self.dir.join(format!("{tag}.msg"))
    }

    /// `timeout 30 sipp -sf SCENARIO -t u1 -m 1` with sipp's own bounds, tracing every message
    /// of the run to [`Sipp::trace_path`] and its errors next to it.
    pub fn command(&self, scenario: &str, tag: &str) -> Command {
        let mut c = Command::new("timeout");
        c.arg("30")
            .arg("sipp")
            .arg("-sf")
            .arg(sipp_scenarios().join(scenario))
            .args(["-t", "u1", "-m", "1", "-nostdin", "-nd"])
            .args([
                "-timeout",
                "20s",
                "-timeout_error",
                "-recv_timeout",
                "10000",
            ])
            .args(["-trace_msg", "-message_file"])
            .arg(self.trace_path(tag))
            .args(["-trace_err", "-error_file"])
            .arg(self.dir.join(format!("{tag}.err")))
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Runs a client scenario as `user` (password `pw`, `domain`) from local `port` against the
    /// server; `extra` are more sipp arguments. Returns whether sipp passed.
    pub fn client(
        &self,
        scenario: &str,
        tag: &str,
        (user, pw, domain): (&str, &str, &str),
        port: u16,
        extra: &[&str],
    ) -> bool {
        let csv = self.dir.join(format!("{tag}.csv"));
        std::fs::write(&csv, format!("SEQUENTIAL\n{user};{pw};{domain}\n")).expect("write csv");
        self.command(scenario, tag)
            .arg(self.server.to_string())
            .arg("-inf")
            .arg(&csv)
            .args(["-au", "[field0]", "-ap", "[field1]"])
            .args(["-p", &port.to_string()])
            .args(extra)
            .status()
            .expect("sipp runs")
            .success()
    }

    /// As [`Sipp::client`] for a REGISTER scenario: the digest `uri` is the registrar's
    /// Request-URI `sip:DOMAIN` (sipp's default, `sip:IP:PORT`, would not match it).
    pub fn register(
        &self,
        scenario: &str,
        tag: &str,
        creds: (&str, &str, &str),
        port: u16,
        extra: &[&str],
    ) -> bool {
        let mut args = vec!["-auth_uri", creds.2];
        args.extend_from_slice(extra);
        self.client(scenario, tag, creds, port, &args)
    }

    /// Starts a UAS scenario on `port` in the background and waits (bounded) until it listens.
    pub fn uas(&self, scenario: &str, tag: &str, port: u16) -> Child {
        let mut child = self
            .command(scenario, tag)
            .args(["-p", &port.to_string()])
            .spawn()
            .expect("sipp uas starts");
        if !udp_port_taken(port, Duration::from_secs(10)) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{tag}: sipp never listened on {port}\n{}", self.report(tag));
        }
        child
    }

    /// The trace and error files of a run, for failure messages.
    pub fn report(&self, tag: &str) -> String {
        let mut s = String::new();
        for ext in ["msg", "err"] {
            let p = self.dir.join(format!("{tag}.{ext}"));
            if let Ok(t) = std::fs::read_to_string(&p) {
                s.push_str(&format!("--- {tag}.{ext}:\n{t}\n"));
            }
        }
        s
    }

    /// The messages of a run's trace; panics when the file is missing or holds none, so that no
    /// check of a trace passes on a peer that never ran.
    pub fn trace(&self, tag: &str) -> Vec<Traced> {
        let path = self.trace_path(tag);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("trace {} unreadable: {e}", path.display()));
        let msgs = parse_trace(&text);
        assert!(!msgs.is_empty(), "trace {} has no message", path.display());
        msgs
    }
}

/// Waits for a child (which `timeout 30` bounds) and tells whether it passed.
pub fn passed(child: &mut Child) -> bool {
    child.wait().is_ok_and(|s| s.success())
}

/// Polls (bounded by `timeout`) until something holds UDP `port` on 127.0.0.1.
pub fn udp_port_taken(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Splits a `-trace_msg` file: each message follows a line of dashes ending in its stamp and a
/// line `UDP message sent|received …`.
pub fn parse_trace(text: &str) -> Vec<Traced> {
    let mut out = Vec::new();
    for block in text
        .split("----------------------------------------------- ")
        .skip(1)
    {
        let mut lines = block.splitn(3, '\n');
        let at = lines.next().unwrap_or_default().trim().to_owned();
        let what = lines.next().unwrap_or_default();
        let body = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches(['\r', '\n']);
        if !what.contains("message") {
            continue;
        }
        out.push(Traced {
            at,
            sent: what.contains("sent"),
            text: body.to_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "----------------------------------------------- 2026-12-07 20:39:36.1\n\
        UDP message sent (100 bytes):\n\nREGISTER sip:x SIP/2.0\nCSeq: 1 REGISTER\n\n\n\
        ----------------------------------------------- 2026-12-07 20:39:36.2\n\
        UDP message received [90] bytes :\n\nSIP/2.0 401 Unauthorized\ncseq:  1 REGISTER\n\n\n\
        ----------------------------------------------- 2026-12-07 20:39:36.3\n\
        TCP message received [90] bytes :\n\nSIP/2.0 100 Trying\nCSeq: 2 REGISTER\n\n\n\
        ----------------------------------------------- 2026-12-07 20:39:36.4\n\
        TCP message received [90] bytes :\n\nSIP/2.0 200 OK\nCSeq: 2 REGISTER\nContact: <sip:a@b>\n\n";

    fn run(code: i32) -> SippRun {
        SippRun {
            code: Some(code),
            trace: TRACE.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn trace_entries_and_final_answers() {
        let r = run(1);
        let m = r.messages();
        assert_eq!(m.len(), 4, "{m:?}");
        assert!(!m[0].received() && m[1].received());
        assert_eq!(m[1].status(), Some(401));
        assert_eq!(m[1].header("CSeq"), Some("1 REGISTER"));
        let last = r.final_response_to("1 REGISTER").expect("the 401");
        assert_eq!(last.status(), Some(401));
        let ok = r.assert_failed_with("2 REGISTER", 200, "test");
        assert_eq!(ok.header("contact"), Some("<sip:a@b>"));
        assert!(r.final_response_to("3 REGISTER").is_none());
    }

    #[test]
    #[should_panic(expected = "exit 1")]
    fn a_sipp_crash_is_not_a_refusal() {
        let _ = run(255).assert_failed_with("2 REGISTER", 200, "crash");
    }

    #[test]
    #[should_panic(expected = "on a 403")]
    fn another_answer_is_not_the_expected_refusal() {
        let _ = run(1).assert_failed_with("2 REGISTER", 403, "wrong code");
    }

    #[test]
    fn trace_blocks_are_split_with_stamp_and_direction() {
        let t = "----------------------------------------------- 2026-12-07 20:40:37.249391\n\
                 UDP message received [514] bytes :\n\nINVITE sip:a@b SIP/2.0\nVia: x\n\n\
                 ----------------------------------------------- 2026-12-07 20:40:37.249607\n\
                 UDP message sent (313 bytes):\n\nSIP/2.0 180 Ringing\nVia: x\n";
        let m = parse_trace(t);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].at, "2026-12-07 20:40:37.249391");
        assert!(!m[0].sent && m[1].sent);
        assert_eq!(m[0].start_line(), "INVITE sip:a@b SIP/2.0");
        assert_eq!(m[1].start_line(), "SIP/2.0 180 Ringing");
        assert!(m[0].at < m[1].at);
    }
}
