//! RFC 3264 §5–§6 (offer/answer with SDP, RFC 8866) for one audio stream with G.711 PCMU/PCMA
//! (RFC 3551 §6 static payload types 0 and 8, 8000 Hz, 20 ms packets).

use std::net::{IpAddr, SocketAddr};

use sdp_types::{Attribute, Connection, Media, MediaType, Origin, Session, Time, TransportProto};

/// An audio codec this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    #[serde(rename = "PCMU")]
    Pcmu,
    /// G.711 A-law, static payload type 8.
    #[serde(rename = "PCMA")]
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 Table 4).
    pub fn payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    /// The encoding name of `a=rtpmap`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Pcmu, Self::Pcma]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// The clock rate of both codecs.
pub const CLOCK_RATE: u32 = 8000;
/// Packet duration in milliseconds.
pub const PTIME_MS: u32 = 20;

/// The direction attribute of a stream (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    fn of(m: &Media) -> Self {
        for d in [Self::SendOnly, Self::RecvOnly, Self::Inactive] {
            if m.has_attribute(d.attr()) {
                return d;
            }
        }
        Self::SendRecv
    }

    /// The answer's direction for an offered one (RFC 3264 §6.1).
    fn answer(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            d => d,
        }
    }

    /// Whether the local side sends media in this (local) direction.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }
}

/// The outcome of a negotiation: where to send, with which codec and payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's RTP address.
    pub remote: SocketAddr,
    /// The codec both sides use.
    pub codec: Codec,
    /// The payload type (static for both codecs, but taken from the SDP).
    pub payload_type: u8,
    /// The local side's direction.
    pub direction: Direction,
}

/// Why an SDP offer or answer is unusable.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body does not parse as SDP.
    #[error("malformed SDP")]
    Malformed,
    /// No audio stream over RTP/AVP with a port.
    #[error("no usable audio stream")]
    NoAudio,
    /// No connection address for the audio stream, or not an IP address.
    #[error("no connection address")]
    NoConnection,
    /// None of PCMU and PCMA is offered or answered (maps to 488 Not Acceptable Here).
    #[error("no common codec")]
    NoCommonCodec,
}

/// What the local side puts into an offer or answer.
#[derive(Debug, Clone, Copy)]
pub struct LocalMedia {
    /// The local RTP address (IP in `c=` and `o=`, port in `m=`).
    pub rtp: SocketAddr,
    /// The session id of `o=` (RFC 8866 §5.2), stable for the session.
    pub session_id: u64,
    /// The version of `o=`, incremented on each change.
    pub version: u64,
}

fn session(local: &LocalMedia, media: Media) -> Session {
    let mut s = Session::new(
        Origin {
            username: Some("cusax".into()),
            ..Origin::with_ip_addr(local.session_id, local.version, local.rtp.ip())
        },
        "cusax",
    );
    s.set_connection(Connection::from_ip_addr(local.rtp.ip()));
    s.add_time(Time::new(0, 0));
    s.add_media(media);
    s
}

fn audio_media(port: u16, codecs: &[Codec], direction: Direction) -> Media {
    let fmt: Vec<String> = codecs
        .iter()
        .map(|c| c.payload_type().to_string())
        .collect();
    let mut m = Media::new(
        MediaType::Audio,
        port,
        TransportProto::RtpAvp,
        fmt.join(" "),
    );
    for c in codecs {
        m.add_attribute(Attribute::with_value(
            "rtpmap",
            format!("{} {}/{CLOCK_RATE}", c.payload_type(), c.name()),
        ));
    }
    m.add_attribute(Attribute::with_value("ptime", PTIME_MS));
    m.add_attribute(Attribute::new(direction.attr()));
    m
}

fn render(s: &Session) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Writing into a Vec cannot fail.
    let _ = s.write(&mut out);
    out
}

/// Builds an offer of one sendrecv audio stream with `codecs` in preference order.
pub fn offer(local: &LocalMedia, codecs: &[Codec]) -> Vec<u8> {
    render(&session(
        local,
        audio_media(local.rtp.port(), codecs, Direction::SendRecv),
    ))
}

/// The codec for a payload type of a media line: by `a=rtpmap`, else by static number.
fn codec_of(m: &Media, pt: u8) -> Option<Codec> {
    for v in m.get_attribute_values("rtpmap").flatten() {
        let mut it = v.split_whitespace();
        if it.next().and_then(|p| p.parse::<u8>().ok()) == Some(pt) {
            let enc = it.next()?;
            let mut parts = enc.split('/');
            let codec = Codec::from_name(parts.next()?)?;
            let rate: u32 = parts.next()?.parse().ok()?;
            return (rate == CLOCK_RATE).then_some(codec);
        }
    }
    match pt {
        0 => Some(Codec::Pcmu),
        8 => Some(Codec::Pcma),
        _ => None,
    }
}

fn remote_addr(s: &Session, m: &Media) -> Result<SocketAddr, SdpError> {
    let c = m
        .connections
        .first()
        .or(s.connection.as_ref())
        .ok_or(SdpError::NoConnection)?;
    let ip: IpAddr = c
        .connection_address
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or(SdpError::NoConnection)?;
    Ok(SocketAddr::new(ip, m.port))
}

/// The first audio stream over RTP/AVP with a non-zero port.
fn audio(s: &Session) -> Result<(usize, &Media), SdpError> {
    s.medias
        .iter()
        .enumerate()
        .find(|(_, m)| m.media == "audio" && m.port != 0 && m.proto.eq_ignore_ascii_case("RTP/AVP"))
        .ok_or(SdpError::NoAudio)
}

/// Picks, in the offerer's order, the first payload type we support among `accept`.
fn choose(m: &Media, accept: &[Codec]) -> Result<(u8, Codec), SdpError> {
    m.fmt
        .split_whitespace()
        .filter_map(|f| f.parse::<u8>().ok())
        .find_map(|pt| {
            codec_of(m, pt)
                .filter(|c| accept.contains(c))
                .map(|c| (pt, c))
        })
        .ok_or(SdpError::NoCommonCodec)
}

/// Answers an offer (RFC 3264 §6.1): the first audio stream gets the first offered codec we
/// accept, every other stream is rejected with port 0.
pub fn answer(
    offer: &[u8],
    local: &LocalMedia,
    accept: &[Codec],
) -> Result<(Vec<u8>, Negotiated), SdpError> {
    let s = Session::parse(offer).map_err(|_| SdpError::Malformed)?;
    let (index, m) = audio(&s)?;
    let remote = remote_addr(&s, m)?;
    let (payload_type, codec) = choose(m, accept)?;
    let direction = Direction::of(m).answer();
    let mut out = session(
        local,
        Media::new(MediaType::Audio, 0, TransportProto::RtpAvp, ""),
    );
    out.medias.clear();
    for (i, other) in s.medias.iter().enumerate() {
        if i == index {
            out.add_media(audio_media(local.rtp.port(), &[codec], direction));
        } else {
            // RFC 3264 §6: same number of m-lines; a rejected stream has port 0.
            let mut r = Media::new(MediaType::Audio, 0, TransportProto::RtpAvp, "");
            r.media = other.media.clone();
            r.proto = other.proto.clone();
            r.fmt = other.fmt.clone();
            out.add_media(r);
        }
    }
    let negotiated = Negotiated {
        remote,
        codec,
        payload_type,
        direction,
    };
    Ok((render(&out), negotiated))
}

/// Reads the answer to our offer (RFC 3264 §7): the codec must be one we offered.
pub fn read_answer(answer: &[u8], offered: &[Codec]) -> Result<Negotiated, SdpError> {
    let s = Session::parse(answer).map_err(|_| SdpError::Malformed)?;
    let (_, m) = audio(&s)?;
    let remote = remote_addr(&s, m)?;
    let (payload_type, codec) = choose(m, offered)?;
    let direction = match Direction::of(m) {
        // The answerer's sendonly means we only receive, and so on.
        Direction::SendOnly => Direction::RecvOnly,
        Direction::RecvOnly => Direction::SendOnly,
        d => d,
    };
    Ok(Negotiated {
        remote,
        codec,
        payload_type,
        direction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(port: u16) -> LocalMedia {
        LocalMedia {
            rtp: SocketAddr::from(([127, 0, 0, 1], port)),
            session_id: 42,
            version: 1,
        }
    }

    #[test]
    fn offer_lists_both_codecs_with_rtpmap() {
        let o = String::from_utf8(offer(&local(4000), &[Codec::Pcmu, Codec::Pcma])).expect("utf8");
        assert!(o.starts_with("v=0\r\n"), "{o}");
        assert!(o.contains("o=cusax 42 1 IN IP4 127.0.0.1\r\n"), "{o}");
        assert!(o.contains("c=IN IP4 127.0.0.1\r\n"), "{o}");
        assert!(o.contains("t=0 0\r\n"), "{o}");
        assert!(o.contains("m=audio 4000 RTP/AVP 0 8\r\n"), "{o}");
        assert!(o.contains("a=rtpmap:0 PCMU/8000\r\n"), "{o}");
        assert!(o.contains("a=rtpmap:8 PCMA/8000\r\n"), "{o}");
        assert!(o.contains("a=sendrecv\r\n"), "{o}");
    }

    /// A typical softphone offer: Opus first, then G.711 and telephone-event, media-level c=.
    const PHONE_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
        t=0 0\r\nm=audio 30000 RTP/AVP 96 8 0 101\r\nc=IN IP4 192.0.2.9\r\n\
        a=rtpmap:96 opus/48000/2\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n\
        m=video 30002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n";

    #[test]
    fn answer_takes_the_offerers_first_common_codec_and_rejects_video() {
        let (body, n) = answer(
            PHONE_OFFER.as_bytes(),
            &local(5000),
            &[Codec::Pcmu, Codec::Pcma],
        )
        .expect("ok");
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.payload_type, 8);
        assert_eq!(n.remote, "192.0.2.9:30000".parse().expect("addr"));
        assert_eq!(n.direction, Direction::SendRecv);
        let a = String::from_utf8(body).expect("utf8");
        assert!(a.contains("m=audio 5000 RTP/AVP 8\r\n"), "{a}");
        assert!(a.contains("m=video 0 RTP/AVP 97\r\n"), "{a}");
        assert!(!a.contains("PCMU"), "{a}");
    }

    #[test]
    fn answer_direction_mirrors_the_offer() {
        let o = PHONE_OFFER.replace("a=sendrecv", "a=sendonly");
        let (body, n) = answer(o.as_bytes(), &local(5000), &[Codec::Pcmu]).expect("ok");
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(!n.direction.sends());
        assert!(String::from_utf8_lossy(&body).contains("a=recvonly"));
    }

    #[test]
    fn static_payload_types_need_no_rtpmap() {
        let o = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                 m=audio 7078 RTP/AVP 0\r\n";
        let (_, n) = answer(o.as_bytes(), &local(5000), &[Codec::Pcmu, Codec::Pcma]).expect("ok");
        assert_eq!((n.codec, n.remote.port()), (Codec::Pcmu, 7078));
    }

    #[test]
    fn unusable_offers_are_refused() {
        let no_common = PHONE_OFFER.replace(" 8 0 101", " 101");
        assert_eq!(
            answer(no_common.as_bytes(), &local(1), &[Codec::Pcmu]).err(),
            Some(SdpError::NoCommonCodec)
        );
        let no_audio = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                        m=audio 0 RTP/AVP 0\r\n";
        assert_eq!(
            answer(no_audio.as_bytes(), &local(1), &[Codec::Pcmu]).err(),
            Some(SdpError::NoAudio)
        );
        let no_c = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
        assert_eq!(
            answer(no_c.as_bytes(), &local(1), &[Codec::Pcmu]).err(),
            Some(SdpError::NoConnection)
        );
        assert_eq!(
            answer(b"\x00garbage", &local(1), &[Codec::Pcmu]).err(),
            Some(SdpError::Malformed)
        );
    }

    #[test]
    fn offer_and_answer_between_two_of_us() {
        let o = offer(&local(4000), &[Codec::Pcmu, Codec::Pcma]);
        let (a, at_answerer) = answer(&o, &local(6000), &[Codec::Pcma, Codec::Pcmu]).expect("ok");
        // The answerer follows the offerer's preference (PCMU first).
        assert_eq!(at_answerer.codec, Codec::Pcmu);
        assert_eq!(at_answerer.remote.port(), 4000);
        let at_offerer = read_answer(&a, &[Codec::Pcmu, Codec::Pcma]).expect("ok");
        assert_eq!(at_offerer.codec, Codec::Pcmu);
        assert_eq!(at_offerer.remote.port(), 6000);
        assert_eq!(
            read_answer(&a, &[Codec::Pcma]).err(),
            Some(SdpError::NoCommonCodec)
        );
    }
}
