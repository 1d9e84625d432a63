//! Interop with a real SIP phone: `cusax call` calls a baresip instance directly (no proxy) on
//! loopback; baresip answers automatically and plays an 880 Hz tone, cusax plays 440 Hz. Each
//! side's recording (cusax `--record`, baresip's `sndfile` module) must hold the other's tone.
//!
//! Needs `baresip` on PATH (Debian package `baresip`, installed by scripts/test); without it
//! this test fails loudly.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cusax_testkit::audio::assert_tone;

const TIMEOUT: Duration = Duration::from_secs(20);

struct Phone {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Phone {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }

    fn snd(&self) -> PathBuf {
        self.dir.path().join("snd")
    }
}

/// baresip with one auto-answering account, no registration, SIP on `port`, an 880 Hz sine
/// as microphone and every call's audio dumped to WAV files.
fn start_baresip(port: u16) -> Phone {
    let found = Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "baresip is not on PATH: install it with `apt-get install -y baresip`"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let snd = dir.path().join("snd");
    std::fs::create_dir_all(&snd).expect("mkdir");
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\n\
         audio_source ausine,880\nausrc_srate 48000\nausrc_channels 2\nstatmode_default off\n\
         module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule ausine.so\n\
         module sndfile.so\nsnd_path {}\nmodule_tmp account.so\nmodule_app menu.so\n",
        snd.display()
    );
    std::fs::write(dir.path().join("config"), config).expect("config");
    std::fs::write(
        dir.path().join("accounts"),
        "<sip:bob@127.0.0.1>;regint=0;answermode=auto\n",
    )
    .expect("accounts");
    let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log");
    let child = Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-v", "-s", "-t", "60"]) // quits by itself after 60 s whatever happens
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("baresip starts");
    Phone { child, dir }
}

/// Waits (bounded) until something answers SIP OPTIONS on the port.
fn wait_sip(port: u16, phone: &Phone) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let me = sock.local_addr().expect("addr");
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 4096];
    for n in 0.. {
        let probe = format!(
            "OPTIONS sip:bob@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKp{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:bob@127.0.0.1>\r\n\
             Call-ID: probe{n}\r\nCSeq: {} OPTIONS\r\nContent-Length: 0\r\n\r\n",
            n + 1
        );
        let _ = sock.send_to(probe.as_bytes(), ("127.0.0.1", port));
        if let Ok((len, _)) = sock.recv_from(&mut buf)
            && buf[..len].starts_with(b"SIP/2.0 ")
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "baresip does not answer SIP\n{}",
            phone.log()
        );
    }
}

#[test]
fn cusax_calls_baresip_with_audio_both_ways() {
    let port = cusax_testkit::free_sip_port();
    let phone = start_baresip(port);
    wait_sip(port, &phone);
    let tmp = tempfile::tempdir().expect("tmp");
    let pw = tmp.path().join("pw");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&pw, "unused\n").expect("pw");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let wav = tmp.path().join("alice.wav");
    let server = format!("127.0.0.1:{port}");
    let mut cusax = Command::new(env!("CARGO_BIN_EXE_cusax"))
        .args([
            "call",
            &format!("sip:bob@127.0.0.1:{port}"),
            "--server",
            &server,
        ])
        .args(["--user", "alice@example.org", "--password-file"])
        .arg(&pw)
        .args(["--tone", "440", "--duration", "2", "--record"])
        .arg(&wav)
        .env("XDG_CONFIG_HOME", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cusax starts");
    // cusax ends the call itself after 2 s; its stdout closes when it exits.
    let out = cusax.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<serde_json::Value> = BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect();
        let _ = tx.send(lines);
    });
    let events = rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
        let _ = cusax.kill();
        panic!("cusax did not finish within {TIMEOUT:?}\n{}", phone.log())
    });
    let status = cusax.wait().expect("wait");
    let states: Vec<&str> = events.iter().filter_map(|e| e["state"].as_str()).collect();
    assert_eq!(
        states,
        ["calling", "ringing", "established", "ended"],
        "{events:#?}\n{}",
        phone.log()
    );
    assert!(status.success(), "{events:#?}");
    let est = events
        .iter()
        .find(|e| e["state"] == "established")
        .expect("established");
    assert!(
        matches!(est["codec"].as_str(), Some("PCMU" | "PCMA")),
        "{est}"
    );
    let end = events.last().expect("events");
    assert_eq!(end["reason"], "local hangup");
    // baresip logs the end of the call after answering the BYE, then closes its dumps.
    let deadline = Instant::now() + TIMEOUT;
    while !(phone.log().contains("terminated") && phone.log().contains("audio: destroyed")) {
        assert!(
            Instant::now() < deadline,
            "baresip did not end the call\n{}",
            phone.log()
        );
        std::thread::sleep(Duration::from_millis(20)); // polling a log file, bounded above
    }

    // What cusax heard is baresip's 880 Hz; what baresip heard (its decoded dump) is 440 Hz.
    assert_tone(&wav, 880.0, &[800.0, 440.0], 1.0);
    let dec: Vec<PathBuf> = std::fs::read_dir(phone.snd())
        .expect("snd dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .collect();
    assert_eq!(dec.len(), 1, "one decoded dump: {dec:?}\n{}", phone.log());
    assert_tone(&dec[0], 440.0, &[520.0, 880.0], 1.0);
}
