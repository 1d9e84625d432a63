//! RFC 4475 and RFC 5118: the torture-test messages, each with its expected outcome.
//!
//! The corpus lives in `tests/torture/{rfc4475,rfc5118}/*.sip` (exact bytes; RFC 4475 files come
//! from its Appendix A archive, RFC 5118 files from its archive with CRLF line ends restored and
//! Content-Length corrected to the body actually present). Other crates can read the files to
//! send them over real transports.

use bytes::Bytes;
use cusax_sip_proto::{Limits, SipMessage, parse_datagram};

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

#[test]
fn valid_messages_survive_stream_framing_and_typed_access() {
    for &(name, expect, _) in TABLE {
        if expect != Valid {
            continue;
        }
        let bytes = load(name);
        let Ok(SipMessage::Request(r)) = parse_datagram(Bytes::from(bytes), &Limits::default())
        else {
            continue;
        };
        if let Some(v) = r
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(<[u8]>::to_vec))
        {
            assert!(!v.is_empty(), "{name}");
        }
        assert!(r.can_respond(), "{name}");
    }
}
