//! RFC 4475 and RFC 5118: the torture-test messages, each with its expected outcome as a UDP
//! datagram and on a stream transport (RFC 3261 §18.3 framing by Content-Length).
//!
//! The corpus lives in `tests/torture/{rfc4475,rfc5118}/*.sip` (exact bytes; RFC 4475 files come
//! from its Appendix A archive, RFC 5118 files from its archive with CRLF line ends restored and
//! Content-Length corrected to the body actually present). Other crates can read the files to
//! send them over real transports.

use bytes::{Bytes, BytesMut};
use cusax_sip_proto::{
    Limits, ParseError, SipMessage, StreamFrame, frame_stream, parse_datagram, parse_stream_message,
};

/// What must happen to a message received as a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Parses and passes core validation.
    Valid,
    /// Parses, but core validation fails with this status (the element answers it).
    Invalid(u16),
    /// The parser itself rejects it with this status (not answerable if a response).
    Rejected(u16),
}
use Expect::*;

/// (file, expectation, why).
const TABLE: &[(&str, Expect, &str)] = &[
    // RFC 4475 §3.1.1: valid messages.
    (
        "rfc4475/wsinv",
        Valid,
        "3.1.1.1 short tortuous INVITE: folding, compact forms, odd spacing",
    ),
    (
        "rfc4475/intmeth",
        Valid,
        "3.1.1.2 wide range of valid characters, extension method",
    ),
    ("rfc4475/esc01", Valid, "3.1.1.3 valid %-escaping"),
    ("rfc4475/escnull", Valid, "3.1.1.4 escaped nulls in URIs"),
    (
        "rfc4475/esc02",
        Valid,
        "3.1.1.5 % that is not an escape (in method and display name)",
    ),
    (
        "rfc4475/lwsdisp",
        Valid,
        "3.1.1.6 no LWS between display name and <",
    ),
    (
        "rfc4475/longreq",
        Valid,
        "3.1.1.7 long values in header fields",
    ),
    (
        "rfc4475/dblreq",
        Valid,
        "3.1.1.8 extra trailing octets in a UDP datagram are ignored",
    ),
    (
        "rfc4475/semiuri",
        Valid,
        "3.1.1.9 semicolon-separated parameters in URI user part",
    ),
    (
        "rfc4475/transports",
        Valid,
        "3.1.1.10 varied and unknown transport types",
    ),
    ("rfc4475/mpart01", Valid, "3.1.1.11 multipart MIME body"),
    ("rfc4475/unreason", Valid, "3.1.1.12 unusual reason phrase"),
    ("rfc4475/noreason", Valid, "3.1.1.13 empty reason phrase"),
    // RFC 4475 §3.1.2: invalid messages.
    (
        "rfc4475/badinv01",
        Invalid(400),
        "3.1.2.1 extraneous header field separators in Via",
    ),
    (
        "rfc4475/clerr",
        Rejected(400),
        "3.1.2.2 Content-Length larger than the datagram",
    ),
    (
        "rfc4475/ncl",
        Rejected(400),
        "3.1.2.3 negative Content-Length",
    ),
    (
        "rfc4475/scalar02",
        Invalid(400),
        "3.1.2.4 request scalar fields with overlarge values (CSeq)",
    ),
    (
        "rfc4475/scalarlg",
        Invalid(400),
        "3.1.2.5 response with overlarge CSeq: invalid responses are dropped",
    ),
    (
        "rfc4475/quotbal",
        Invalid(400),
        "3.1.2.6 unterminated quoted string in display name",
    ),
    (
        "rfc4475/ltgtruri",
        Rejected(400),
        "3.1.2.7 <> enclosing Request-URI",
    ),
    (
        "rfc4475/lwsruri",
        Rejected(400),
        "3.1.2.8 embedded LWS in Request-URI",
    ),
    (
        "rfc4475/lwsstart",
        Rejected(400),
        "3.1.2.9 multiple SP separating request-line elements",
    ),
    (
        "rfc4475/trws",
        Rejected(400),
        "3.1.2.10 SP characters at end of request line",
    ),
    (
        "rfc4475/escruri",
        Invalid(400),
        "3.1.2.11 escaped headers in SIP Request-URI",
    ),
    (
        "rfc4475/baddate",
        Valid,
        "3.1.2.12 invalid time zone in Date: Date is not used, so accepted",
    ),
    (
        "rfc4475/regbadct",
        Invalid(400),
        "3.1.2.13 name-addr URI with headers not enclosed in <>",
    ),
    (
        "rfc4475/badaspec",
        Invalid(400),
        "3.1.2.14 spaces within addr-spec",
    ),
    (
        "rfc4475/baddn",
        Invalid(400),
        "3.1.2.15 non-token characters in unquoted display name",
    ),
    (
        "rfc4475/badvers",
        Rejected(505),
        "3.1.2.16 unknown protocol version",
    ),
    (
        "rfc4475/mismatch01",
        Invalid(400),
        "3.1.2.17 start line and CSeq method mismatch",
    ),
    (
        "rfc4475/mismatch02",
        Invalid(400),
        "3.1.2.18 unknown method with CSeq mismatch (501 also allowed)",
    ),
    (
        "rfc4475/bigcode",
        Rejected(400),
        "3.1.2.19 overlarge response code: dropped",
    ),
    // RFC 4475 §3.2: transaction layer.
    (
        "rfc4475/badbranch",
        Valid,
        "3.2.1 branch is only the magic cookie: parses; RFC 2543 matching applies",
    ),
    // RFC 4475 §3.3: application layer (syntactically fine; the TU decides).
    (
        "rfc4475/insuf",
        Invalid(400),
        "3.3.1 missing Call-ID, From, To",
    ),
    (
        "rfc4475/unkscm",
        Invalid(416),
        "3.3.2 unknown Request-URI scheme",
    ),
    (
        "rfc4475/novelsc",
        Invalid(416),
        "3.3.3 known but atypical scheme: we serve none but sip/sips/tel",
    ),
    (
        "rfc4475/unksm2",
        Valid,
        "3.3.4 unknown schemes in To/From/Contact: a registrar answers 400 itself",
    ),
    (
        "rfc4475/bext01",
        Valid,
        "3.3.5 Require/Proxy-Require: the TU answers 420",
    ),
    (
        "rfc4475/invut",
        Valid,
        "3.3.6 unknown Content-Type: endpoints answer 415, proxies forward",
    ),
    (
        "rfc4475/regaut01",
        Valid,
        "3.3.7 unknown Authorization scheme: registrar challenges",
    ),
    (
        "rfc4475/multi01",
        Invalid(400),
        "3.3.8 multiple values in single-value fields",
    ),
    (
        "rfc4475/mcl01",
        Rejected(400),
        "3.3.9 multiple Content-Length values",
    ),
    (
        "rfc4475/bcast",
        Valid,
        "3.3.10 200 OK with broadcast Via: parses; a proxy drops it",
    ),
    (
        "rfc4475/zeromf",
        Valid,
        "3.3.11 Max-Forwards 0: parses; a proxy answers 483",
    ),
    (
        "rfc4475/cparam01",
        Valid,
        "3.3.12 REGISTER with a Contact header parameter",
    ),
    (
        "rfc4475/cparam02",
        Valid,
        "3.3.13 REGISTER with a url-parameter",
    ),
    (
        "rfc4475/regescrt",
        Valid,
        "3.3.14 REGISTER with a URL-escaped header in <>; registrar must not store it",
    ),
    (
        "rfc4475/sdp01",
        Valid,
        "3.3.15 unacceptable Accept offering: TU answers 406",
    ),
    // RFC 4475 §3.4: backward compatibility.
    (
        "rfc4475/inv2543",
        Valid,
        "3.4.1 RFC 2543 syntax (no branch, no Max-Forwards)",
    ),
    // Not described in the RFC text but present in its archive.
    (
        "rfc4475/test",
        Rejected(400),
        "archive extra: header line without colon",
    ),
    // RFC 5118.
    (
        "rfc5118/ipv6-good",
        Valid,
        "4.1 IPv6 reference in R-URI, Via, Contact",
    ),
    (
        "rfc5118/ipv6-bad",
        Invalid(400),
        "4.2 IPv6 address without brackets in R-URI",
    ),
    (
        "rfc5118/port-ambiguous",
        Valid,
        "4.3 port inside the brackets: syntactically valid",
    ),
    (
        "rfc5118/port-unambiguous",
        Valid,
        "4.4 port outside the brackets",
    ),
    (
        "rfc5118/via-received-param-with-delim",
        Valid,
        "4.5 received with [] tolerated",
    ),
    (
        "rfc5118/via-received-param-no-delim",
        Valid,
        "4.5 received without []",
    ),
    ("rfc5118/ipv6-in-sdp", Valid, "4.6 IPv6 in SDP"),
    (
        "rfc5118/mult-ip-in-header",
        Valid,
        "4.7 mixed IPv4/IPv6 Vias",
    ),
    (
        "rfc5118/mult-ip-in-sdp",
        Valid,
        "4.8 multiple addresses in SDP",
    ),
    ("rfc5118/ipv4-mapped-ipv6", Valid, "4.9 IPv4-mapped IPv6"),
    (
        "rfc5118/ipv6-bug-abnf-3-colons",
        Valid,
        "4.10 extra colon tolerated",
    ),
    (
        "rfc5118/ipv6-correct-abnf-2-colons",
        Valid,
        "4.10 correct form",
    ),
];

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/torture/{name}.sip", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn outcome(bytes: Vec<u8>) -> Expect {
    match parse_datagram(Bytes::from(bytes), &Limits::default()) {
        Err(e) => Rejected(e.status_code()),
        Ok(m) => match m.validate() {
            Ok(()) => Valid,
            Err(e) => Invalid(e.status_code()),
        },
    }
}

fn detail(bytes: Vec<u8>) -> String {
    match parse_datagram(Bytes::from(bytes), &Limits::default()) {
        Err(e) => format!("{e:?}"),
        Ok(m) => format!("{:?}", m.validate().err()),
    }
}

#[test]
fn every_corpus_file_is_in_the_table() {
    for dir in ["rfc4475", "rfc5118"] {
        let d = format!("{}/tests/torture/{dir}", env!("CARGO_MANIFEST_DIR"));
        for f in std::fs::read_dir(&d).expect("corpus dir") {
            let name = f
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8 name");
            let stem = format!("{dir}/{}", name.trim_end_matches(".sip"));
            assert!(
                TABLE.iter().any(|(n, ..)| *n == stem),
                "{stem} missing from TABLE"
            );
        }
    }
}

#[test]
fn torture_table() {
    let mut failures = Vec::new();
    for &(name, expect, why) in TABLE {
        let got = outcome(load(name));
        if got != expect {
            let detail = detail(load(name));
            failures.push(format!(
                "{name}: expected {expect:?}, got {got:?} [{detail}] ({why})"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// How a corpus file behaves on a stream transport (RFC 3261 §18.3): Content-Length is
/// mandatory and alone delimits a message, since a stream has no datagram boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnStream {
    /// Frames as this many messages, each with the datagram outcome of the table.
    Frames(usize),
    /// The stream cannot go on: the framer or parser fails with this error.
    Fails(ParseError),
    /// Content-Length announces more than is there: the framer waits for the rest.
    WaitsForBody,
    /// The header section has no empty line after it (a datagram may end so): the framer
    /// waits for it.
    WaitsForEmptyLine,
}

fn on_stream(name: &str, expect: Expect) -> OnStream {
    match (name, expect) {
        // 3.1.1.8: the "extra trailing octets" of the datagram are, on a stream, the next
        // message (an INVITE), after a stray CRLF.
        ("rfc4475/dblreq", _) => OnStream::Frames(2),
        // 3.1.2.2: Content-Length 9999, far more than the datagram holds.
        ("rfc4475/clerr", _) => OnStream::WaitsForBody,
        // 3.1.2.15 ends after its last header line, without the empty line.
        ("rfc4475/baddn", _) => OnStream::WaitsForEmptyLine,
        // 3.4.1: RFC 2543 allowed no Content-Length; on a stream it is required.
        ("rfc4475/inv2543", _) => OnStream::Fails(ParseError::MissingContentLength),
        ("rfc4475/ncl", _) => OnStream::Fails(ParseError::BadContentLength),
        ("rfc4475/mcl01", _) => OnStream::Fails(ParseError::MultipleContentLength),
        (_, Rejected(_)) => OnStream::Fails(stream_error(name)),
        _ => OnStream::Frames(1),
    }
}

/// The parser error of a file the datagram parser rejects; the stream parser must agree.
fn stream_error(name: &str) -> ParseError {
    parse_datagram(Bytes::from(load(name)), &Limits::default())
        .err()
        .unwrap_or_else(|| panic!("{name}: the table says the datagram parser rejects it"))
}

/// Feeds `stream` to the stream parser `chunk` bytes at a time, as reads would deliver it,
/// and returns every message parsed; the buffer must be empty at the end.
fn drain(stream: &[u8], chunk: usize) -> Vec<SipMessage> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(m) = parse_stream_message(&mut buf, &Limits::default()).unwrap_or_else(|e| {
            let at = String::from_utf8_lossy(&buf[..buf.len().min(60)]).into_owned();
            panic!(
                "chunks of {chunk}: {e:?} after {} messages at {at:?}",
                out.len()
            )
        }) {
            out.push(m);
        }
    }
    assert!(
        buf.is_empty(),
        "chunks of {chunk}: {} bytes left",
        buf.len()
    );
    out
}

fn outcome_of(m: &SipMessage) -> Expect {
    match m.validate() {
        Ok(()) => Valid,
        Err(e) => Invalid(e.status_code()),
    }
}

/// What one framed message must be: its exact bytes, its outcome, its status if a response.
struct Framed {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

/// Every file that frames on a stream, in table order, as one buffer — with a keep-alive
/// ping (RFC 5626 §3.5.1) after every third message — and the messages it must yield.
fn corpus_stream() -> (Vec<u8>, Vec<Framed>) {
    let (mut stream, mut want) = (Vec::new(), Vec::new());
    for (i, &(name, expect, _)) in TABLE.iter().enumerate() {
        let bytes = load(name);
        match on_stream(name, expect) {
            OnStream::Frames(1) => want.push(Framed {
                name,
                bytes: bytes.clone(),
                expect,
            }),
            OnStream::Frames(_) => {
                let (first, second) = dblreq_parts(&bytes);
                want.push(Framed {
                    name,
                    bytes: first.to_vec(),
                    expect: Valid,
                });
                let rest = parse_datagram(Bytes::copy_from_slice(second), &Limits::default())
                    .expect("dblreq: the INVITE parses");
                want.push(Framed {
                    name,
                    bytes: second.to_vec(),
                    expect: outcome_of(&rest),
                });
                // Only up to the end of the INVITE as its Content-Length frames it: the
                // datagram's last octets are past it (see `dblreq_tail_breaks_the_stream`).
                stream.extend_from_slice(&bytes[..bytes.len() - DBLREQ_TAIL]);
                continue;
            }
            OnStream::Fails(_) | OnStream::WaitsForBody | OnStream::WaitsForEmptyLine => continue,
        }
        stream.extend_from_slice(&bytes);
        if i % 3 == 2 {
            stream.extend_from_slice(b"\r\n\r\n");
        }
    }
    (stream, want)
}

#[test]
fn the_corpus_as_one_stream_frames_exactly_at_any_read_size() {
    let (stream, want) = corpus_stream();
    assert!(want.len() >= 50, "{} messages", want.len());
    for chunk in [stream.len(), 1, 2, 7, 64, 1000] {
        let got = drain(&stream, chunk);
        assert_eq!(got.len(), want.len(), "chunks of {chunk}");
        for (m, w) in got.iter().zip(&want) {
            let name = w.name;
            assert_eq!(
                &m.head().bytes()[..],
                &w.bytes[..],
                "{name}: framed at the wrong place (chunks of {chunk})"
            );
            assert_eq!(outcome_of(m), w.expect, "{name} (chunks of {chunk})");
            let start = String::from_utf8_lossy(&w.bytes[..12]).into_owned();
            match m {
                SipMessage::Response(r) => {
                    assert_eq!(
                        Some(r.code()),
                        start[8..].trim().get(..3).and_then(|c| c.parse().ok()),
                        "{name}"
                    );
                }
                SipMessage::Request(r) => {
                    assert!(
                        !start.starts_with("SIP/2.0 "),
                        "{name}: a response parsed as a request"
                    );
                    if w.expect == Valid {
                        assert!(r.can_respond(), "{name}");
                        let branch = r
                            .top_via()
                            .ok()
                            .and_then(|v| v.branch().map(<[u8]>::to_vec));
                        assert!(branch.is_none_or(|b| !b.is_empty()), "{name}");
                    }
                }
            }
        }
    }
    let responses = want
        .iter()
        .filter(|w| w.bytes.starts_with(b"SIP/2.0 "))
        .count();
    let invalid = want.iter().filter(|w| w.expect != Valid).count();
    assert!(
        responses >= 3 && invalid >= 10,
        "{responses} responses, {invalid} invalid"
    );
}

#[test]
fn messages_that_cannot_be_framed_fail_or_wait() {
    let mut seen = (0, 0);
    for &(name, expect, why) in TABLE {
        let bytes = load(name);
        let mut buf = BytesMut::from(&bytes[..]);
        match on_stream(name, expect) {
            OnStream::Frames(_) => continue,
            OnStream::Fails(want) => {
                seen.0 += 1;
                let got = parse_stream_message(&mut buf, &Limits::default());
                assert_eq!(got.err(), Some(want), "{name} ({why})");
            }
            waits => {
                seen.1 += 1;
                let got = parse_stream_message(&mut buf, &Limits::default());
                assert!(matches!(got, Ok(None)), "{name}: {got:?} ({why})");
                assert_eq!(
                    buf.len(),
                    bytes.len(),
                    "{name}: nothing consumed while waiting"
                );
                // What was missing arrives: now it is one message, as the datagram was.
                let body = if waits == OnStream::WaitsForBody {
                    let head_end = memmem(&bytes, b"\r\n\r\n").expect("header end") + 4;
                    let missing = head_end + 9999 - bytes.len();
                    buf.extend_from_slice(&vec![b'x'; missing]);
                    9999
                } else {
                    buf.extend_from_slice(b"\r\n");
                    0
                };
                let m = parse_stream_message(&mut buf, &Limits::default())
                    .expect("frames once complete")
                    .expect("a message");
                assert_eq!(m.head().body().len(), body, "{name}");
                assert!(buf.is_empty(), "{name}");
                if waits == OnStream::WaitsForEmptyLine {
                    assert_eq!(outcome_of(&m), expect, "{name} ({why})");
                }
            }
        }
    }
    assert!(seen.0 >= 10 && seen.1 == 2, "{seen:?}");
}

#[test]
fn stream_limits_hold_before_the_message_is_complete() {
    let limits = Limits {
        max_message_bytes: 1024,
        ..Limits::default()
    };
    // A header section that never ends is refused once it passes the limit.
    let mut buf = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nX: "[..]);
    buf.extend_from_slice(&vec![b'y'; 1100]);
    assert_eq!(frame_stream(&buf, &limits), Err(ParseError::TooLarge));
    // A message longer than the limit is refused before it is all there.
    let long = load("rfc4475/longreq");
    assert!(long.len() > 1024);
    assert_eq!(
        frame_stream(&long, &limits),
        Err(ParseError::TooLarge),
        "longreq is 3.5 kB"
    );
    // A ping and a pong between messages.
    assert_eq!(
        frame_stream(b"\r\n\r\nOPTIONS", &limits),
        Ok(StreamFrame::Ping { consumed: 4 })
    );
    assert_eq!(
        frame_stream(b"\r\nOPTIONS", &limits),
        Ok(StreamFrame::Pong { consumed: 2 })
    );
}

/// dblreq's INVITE announces `Content-Length: 150` but 155 body octets follow.
const DBLREQ_TAIL: usize = 5;

/// dblreq's REGISTER (through its empty line) and the INVITE as its Content-Length frames it.
fn dblreq_parts(bytes: &[u8]) -> (&[u8], &[u8]) {
    let at = memmem(bytes, b"\r\n\r\n").expect("dblreq: the REGISTER's end") + 4;
    let second = memmem(bytes, b"INVITE ").expect("dblreq: the INVITE");
    assert_eq!(
        &bytes[at..second],
        b"\r\n",
        "dblreq: one stray CRLF between"
    );
    (&bytes[..at], &bytes[second..bytes.len() - DBLREQ_TAIL])
}

#[test]
fn dblreq_tail_breaks_the_stream() {
    // On a stream the octets past the INVITE's Content-Length are the start of a next
    // "message" that is none: framing fails there, and a server must close the connection.
    let bytes = load("rfc4475/dblreq");
    let mut buf = BytesMut::from(&bytes[..]);
    let limits = Limits::default();
    let (first, second) = dblreq_parts(&bytes);
    for part in [first, second] {
        let m = parse_stream_message(&mut buf, &limits)
            .expect("frames")
            .expect("a message");
        assert_eq!(&m.head().bytes()[..], part);
    }
    assert_eq!(buf.len(), DBLREQ_TAIL);
    let tail = String::from_utf8_lossy(&buf).into_owned();
    let got = parse_stream_message(&mut buf, &limits);
    assert_eq!(got.err(), Some(ParseError::BadStartLine), "{tail:?}");
}

fn memmem(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
