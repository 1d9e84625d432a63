//! RFC 3550 §5 (RTP data transfer) with the RFC 3551 G.711 profile: one audio stream per call,
//! 20 ms packets of 160 samples sent on a clock, received packets decoded into a recording.
//!
//! Received packets are placed by their timestamp: a gap (lost or late packets) is filled with
//! silence up to one second, a packet older than what was already written is dropped. That is
//! enough for a recording; there is no jitter buffer for live playout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rtp_types::{RtpPacket, RtpPacketBuilder};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::audio::{AudioError, AudioSource, Player, RATE, Recorder};
use super::g711;
use super::sdp::{Codec, Negotiated, PTIME_MS};

/// Samples in one packet (20 ms at 8000 Hz).
pub const FRAME: usize = (RATE * PTIME_MS / 1000) as usize;
/// Largest gap filled with silence when packets are missing.
const MAX_GAP: u32 = RATE;

/// What a call does with audio.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaConfig {
    /// What to send.
    pub source: AudioSource,
    /// Where to write what is received, if anywhere.
    pub record: Option<PathBuf>,
}

/// Counters of one stream, reported when the call ends.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MediaStats {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP packets received and accepted (right payload type).
    pub packets_received: u64,
    /// The recording, once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<PathBuf>,
    /// Seconds of audio in the recording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_seconds: Option<f64>,
}

fn encode(codec: Codec, pcm: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.extend(pcm.iter().map(|&s| match codec {
        Codec::Pcmu => g711::ulaw_encode(s),
        Codec::Pcma => g711::alaw_encode(s),
    }));
}

fn decode(codec: Codec, payload: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(payload.iter().map(|&b| match codec {
        Codec::Pcmu => g711::ulaw_decode(b),
        Codec::Pcma => g711::alaw_decode(b),
    }));
}

/// Receiving side: payload to samples, placed by timestamp.
#[derive(Debug)]
struct Receiver {
    codec: Codec,
    payload_type: u8,
    recorder: Option<Recorder>,
    /// (SSRC, next expected timestamp) of the stream being recorded.
    expect: Option<(u32, u32)>,
    pcm: Vec<i16>,
    packets: u64,
}

impl Receiver {
    fn on_datagram(&mut self, data: &[u8]) -> Result<(), AudioError> {
        let Ok(p) = RtpPacket::parse(data) else {
            return Ok(()); // not RTP (e.g. a stray STUN packet)
        };
        if p.payload_type() != self.payload_type {
            return Ok(()); // comfort noise, DTMF events and the like are not recorded
        }
        self.packets += 1;
        decode(self.codec, p.payload(), &mut self.pcm);
        let len = u32::try_from(self.pcm.len()).unwrap_or(u32::MAX);
        let ts = p.timestamp();
        let Some(rec) = self.recorder.as_mut() else {
            return Ok(());
        };
        match self.expect {
            Some((ssrc, next)) if ssrc == p.ssrc() => {
                let ahead = ts.wrapping_sub(next);
                if ahead >= 1 << 31 {
                    return Ok(()); // older than what is written: late or duplicate
                }
                if ahead > 0 {
                    let gap = ahead.min(MAX_GAP) as usize;
                    rec.write(&vec![0; gap])?;
                }
            }
            _ => {} // first packet, or the peer restarted its stream
        }
        rec.write(&self.pcm)?;
        self.expect = Some((p.ssrc(), ts.wrapping_add(len)));
        Ok(())
    }
}

/// Sending side: samples to packets with sequence numbers and timestamps (RFC 3550 §5.1).
#[derive(Debug)]
struct Sender {
    codec: Codec,
    payload_type: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    player: Player,
    pcm: Vec<i16>,
    payload: Vec<u8>,
    first: bool,
}

impl Sender {
    fn next_packet(&mut self) -> Vec<u8> {
        self.player.fill(&mut self.pcm);
        encode(self.codec, &self.pcm, &mut self.payload);
        let packet = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(self.payload_type)
            .sequence_number(self.seq)
            .timestamp(self.ts)
            .ssrc(self.ssrc)
            .marker_bit(self.first) // RFC 3551 §4.1: first packet of a talkspurt
            .payload(self.payload.as_slice())
            .write_vec_unchecked();
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        packet
    }
}

/// Runs one audio stream until `stop` changes or is dropped; returns its counters.
///
/// Sends only when the negotiated direction allows it. The recording is finished before this
/// returns, so the file is complete once the call reports its end.
pub async fn run(
    socket: UdpSocket,
    negotiated: Negotiated,
    config: MediaConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<MediaStats, AudioError> {
    let recorder = config.record.as_deref().map(Recorder::create).transpose()?;
    let mut rx = Receiver {
        codec: negotiated.codec,
        payload_type: negotiated.payload_type,
        recorder,
        expect: None,
        pcm: Vec::with_capacity(FRAME),
        packets: 0,
    };
    let mut tx = Sender {
        codec: negotiated.codec,
        payload_type: negotiated.payload_type,
        ssrc: rand::random(),
        seq: rand::random(),
        ts: rand::random(),
        player: Player::new(&config.source)?,
        pcm: vec![0; FRAME],
        payload: Vec::with_capacity(FRAME),
        first: true,
    };
    let sends = negotiated.direction.sends();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(u64::from(PTIME_MS)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            _ = tick.tick(), if sends => {
                let p = tx.next_packet();
                // A send error (ICMP unreachable echoed on loopback) is not fatal for the call.
                if socket.send_to(&p, negotiated.remote).await.is_ok() {
                    sent += 1;
                }
            }
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, _from)) = r {
                    rx.on_datagram(&buf[..n])?;
                }
            }
            _ = stop.changed() => break,
        }
    }
    // Datagrams already queued on the socket belong to the call: record them too. The std
    // socket (still non-blocking) reads them directly, whatever the reactor last saw.
    if let Ok(std_socket) = socket.into_std() {
        while let Ok((n, _from)) = std_socket.recv_from(&mut buf) {
            rx.on_datagram(&buf[..n])?;
        }
    }
    let mut stats = MediaStats {
        packets_sent: sent,
        packets_received: rx.packets,
        ..MediaStats::default()
    };
    if let Some(rec) = rx.recorder.take() {
        stats.recorded_seconds = Some(rec.samples() as f64 / f64::from(RATE));
        stats.recording = Some(rec.finish()?);
    }
    Ok(stats)
}

/// Binds the RTP socket for a call on the local signalling address, any port.
pub async fn bind(local_ip: std::net::IpAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(SocketAddr::new(local_ip, 0)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sdp::Direction;

    fn negotiated(remote: SocketAddr, codec: Codec) -> Negotiated {
        Negotiated {
            remote,
            codec,
            payload_type: codec.payload_type(),
            direction: Direction::SendRecv,
        }
    }

    #[test]
    fn sender_numbers_packets_and_receiver_fills_gaps() {
        let mut tx = Sender {
            codec: Codec::Pcma,
            payload_type: 8,
            ssrc: 7,
            seq: u16::MAX,
            ts: u32::MAX - 100,
            player: Player::new(&AudioSource::Tone(400.0)).expect("tone"),
            pcm: vec![0; FRAME],
            payload: Vec::new(),
            first: true,
        };
        let a = tx.next_packet();
        let b = tx.next_packet();
        let c = tx.next_packet();
        let (pa, pb) = (
            RtpPacket::parse(&a).expect("rtp"),
            RtpPacket::parse(&b).expect("rtp"),
        );
        assert_eq!((pa.sequence_number(), pb.sequence_number()), (u16::MAX, 0));
        assert_eq!(pb.timestamp(), pa.timestamp().wrapping_add(160));
        assert!(pa.marker_bit() && !pb.marker_bit());
        assert_eq!(
            (pa.payload_type(), pa.ssrc(), pa.payload().len()),
            (8, 7, 160)
        );

        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("r.wav");
        let mut rx = Receiver {
            codec: Codec::Pcma,
            payload_type: 8,
            recorder: Some(Recorder::create(&path).expect("create")),
            expect: None,
            pcm: Vec::new(),
            packets: 0,
        };
        rx.on_datagram(&a).expect("a");
        rx.on_datagram(&c).expect("c, b lost"); // 160 samples of silence inserted
        rx.on_datagram(&b).expect("b, late: dropped");
        rx.on_datagram(b"not rtp").expect("ignored");
        assert_eq!(rx.packets, 3);
        let rec = rx.recorder.take().expect("rec");
        assert_eq!(rec.samples(), 480);
        rec.finish().expect("finish");
        let got = crate::media::audio::read_wav(&path).expect("read");
        assert!(got[160..320].iter().all(|&s| s == 0), "gap is silent");
        assert!(
            got[320..].iter().any(|&s| s.abs() > 10_000),
            "tone is there"
        );
    }

    #[tokio::test]
    async fn stream_sends_on_its_clock_and_records_what_arrives() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let a = bind(ip).await.expect("a");
        let peer = bind(ip).await.expect("peer");
        let (aa, pa) = (a.local_addr().expect("a"), peer.local_addr().expect("peer"));
        let dir = tempfile::tempdir().expect("tmp");
        let rec = dir.path().join("a.wav");
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(
            a,
            negotiated(pa, Codec::Pcmu),
            MediaConfig {
                source: AudioSource::Tone(440.0),
                record: Some(rec.clone()),
            },
            stop_rx,
        ));
        let mut buf = [0u8; 512];
        let mut seqs = Vec::new();
        for _ in 0..5 {
            let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
                .await
                .expect("a packet within 5 s")
                .expect("recv");
            assert_eq!(from, aa);
            let p = RtpPacket::parse(&buf[..n]).expect("rtp");
            assert_eq!((p.payload_type(), p.payload().len()), (0, FRAME));
            seqs.push(p.sequence_number());
        }
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "{seqs:?}"
        );
        let mut tx = Sender {
            codec: Codec::Pcmu,
            payload_type: 0,
            ssrc: 9,
            seq: 1,
            ts: 0,
            player: Player::new(&AudioSource::Tone(1000.0)).expect("tone"),
            pcm: vec![0; FRAME],
            payload: Vec::new(),
            first: true,
        };
        for _ in 0..5 {
            peer.send_to(&tx.next_packet(), aa).await.expect("send");
        }
        let _ = stop_tx.send(true);
        let stats = task.await.expect("join").expect("ok");
        assert!(stats.packets_sent >= 5, "{stats:?}");
        assert_eq!(stats.packets_received, 5, "{stats:?}");
        assert_eq!(stats.recorded_seconds, Some(0.1));
        let got = crate::media::audio::read_wav(&rec).expect("read");
        assert_eq!(got.len(), 5 * FRAME);
        assert!(got.iter().any(|&s| s.abs() > 10_000));
    }
}
