//! sipp (Debian `sip-tester`) as an independent SIP peer of the tests: bounded runs of the
//! scenarios in `tests/sipp/`, a bounded wait for a UAS to listen, and the message traces sipp
//! writes with `-trace_msg`, so that a test can assert what a peer saw and in which order.

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
