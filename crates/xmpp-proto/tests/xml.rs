//! XML stream reader: chunking, limits and hostile inputs mapped to RFC 6120 stream errors.

use cusax_xmpp_proto::stream::StreamErrorCondition as C;
use cusax_xmpp_proto::xml::{
    StreamHeaderOut, StreamReader, XmlEvent, XmlLimits, stream_header, write_element,
};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0' xml:lang='en'>";

fn run_chunks(chunks: &[&[u8]], limits: XmlLimits) -> (Vec<XmlEvent>, Option<C>) {
    let mut r = StreamReader::new(limits);
    let mut events = Vec::new();
    for c in chunks {
        r.feed(c);
        while let Some(ev) = r.next_event() {
            match ev {
                Ok(ev) => events.push(ev),
                Err(e) => return (events, Some(e.condition)),
            }
        }
    }
    (events, None)
}

fn run(input: &[u8]) -> (Vec<XmlEvent>, Option<C>) {
    run_chunks(&[input], XmlLimits::default())
}

fn with_header(body: &str) -> Vec<u8> {
    format!("{HEADER}{body}").into_bytes()
}

#[test]
fn header_and_stanzas_bytewise() {
    let input = with_header(
        "<message to='a@b' id='1'><body>h\u{e9}llo &amp; &#x263A; <![CDATA[<x>]]></body>\
         <x xmlns='urn:x' xmlns:p='urn:p' p:a='v'/></message> \n<presence/></stream:stream>",
    );
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    let (events, err) = run_chunks(&chunks, XmlLimits::default());
    assert_eq!(err, None);
    let XmlEvent::StreamOpen(h) = &events[0] else {
        panic!("no header: {events:?}");
    };
    assert_eq!(h.to.as_deref(), Some("example.org"));
    assert_eq!(h.version.as_deref(), Some("1.0"));
    assert_eq!(h.lang.as_deref(), Some("en"));
    assert_eq!(h.default_ns.as_deref(), Some("jabber:client"));
    assert_eq!(h.namespaces.len(), 2);
    let XmlEvent::Stanza(m) = &events[1] else {
        panic!("no stanza");
    };
    assert_eq!(m.name(), "message");
    assert_eq!(m.ns(), "jabber:client");
    assert_eq!(
        m.get_child("body", "jabber:client").map(|b| b.text()),
        Some("h\u{e9}llo & \u{263A} <x>".to_owned())
    );
    let x = m.get_child("x", "urn:x").expect("x");
    assert_eq!(x.attr_ns("urn:p", "a"), Some("v"));
    assert!(matches!(&events[2], XmlEvent::Stanza(p) if p.name() == "presence"));
    assert_eq!(events[3], XmlEvent::StreamClose);

    // Round trip: serialize and re-parse gives the same tree.
    let mut out = HEADER.as_bytes().to_vec();
    write_element(m, "jabber:client", &mut out).expect("write");
    let (again, err) = run(&out);
    assert_eq!(err, None);
    assert_eq!(again.get(1), Some(&XmlEvent::Stanza(m.clone())));
}

/// Like `run_chunks`, but gives back the reader's buffers after every chunk, before
/// (`early`) or after draining its events.
fn run_releasing(chunks: &[&[u8]], early: bool) -> (Vec<XmlEvent>, Option<C>) {
    let mut r = StreamReader::new(XmlLimits::default());
    let mut events = Vec::new();
    for c in chunks {
        r.feed(c);
        if early {
            r.release_buffers();
        }
        while let Some(ev) = r.next_event() {
            match ev {
                Ok(ev) => events.push(ev),
                Err(e) => return (events, Some(e.condition)),
            }
        }
        r.release_buffers();
    }
    (events, None)
}

#[test]
fn releasing_buffers_at_any_byte_changes_nothing() {
    let long_text = "t".repeat(5000);
    let input = with_header(&format!(
        "<message to='a@b' id='1'><body>h\u{e9}llo &amp; <![CDATA[<x>]]>{long_text}</body>\
         <x xmlns='urn:x' xmlns:p='urn:p' p:a='v'><y><z/></y></x></message>\
         <iq type='get' id='{}'/><presence/></stream:stream>",
        "i".repeat(3000)
    ));
    let whole = run(&input);
    assert_eq!(whole.1, None);
    assert_eq!(whole.0.len(), 5, "header, three stanzas, close");
    for size in [1, 7, 64, 4096] {
        let chunks: Vec<&[u8]> = input.chunks(size).collect();
        for early in [false, true] {
            assert_eq!(
                run_releasing(&chunks, early),
                whole,
                "chunks of {size}, release before draining: {early}"
            );
        }
    }
}

#[test]
fn hostile_inputs() {
    let big_text = format!(
        "<message><body>{}</body></message>",
        "a".repeat(2 * 1024 * 1024)
    );
    let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    let many_attrs = format!(
        "<message {}/>",
        (0..1000)
            .map(|i| format!("a{i}='x'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let long_attr = format!("<message a='{}'/>", "x".repeat(100_000));
    let many_elems = format!("<message>{}</message>", "<a/>".repeat(20_000));
    let laughs = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 \
        '&lol;&lol;&lol;&lol;'>]><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams'>&lol2;";
    let cases: Vec<(&str, Vec<u8>, C)> = vec![
        (
            "billion laughs",
            laughs.as_bytes().to_vec(),
            C::RestrictedXml,
        ),
        ("doctype", b"<!DOCTYPE stream>".to_vec(), C::RestrictedXml),
        (
            "external entity",
            with_header("<message><body>&xxe;</body></message>"),
            C::RestrictedXml,
        ),
        ("pi", with_header("<?php echo 1; ?>"), C::RestrictedXml),
        ("comment", with_header("<!-- hi -->"), C::RestrictedXml),
        ("2 MB stanza", with_header(&big_text), C::PolicyViolation),
        ("10k deep", with_header(&deep), C::PolicyViolation),
        (
            "many attributes",
            with_header(&many_attrs),
            C::PolicyViolation,
        ),
        (
            "long attribute",
            with_header(&long_attr),
            C::PolicyViolation,
        ),
        (
            "many elements",
            with_header(&many_elems),
            C::PolicyViolation,
        ),
        (
            "invalid utf-8",
            with_header("<message>\u{1}</message>"),
            C::NotWellFormed,
        ),
        (
            "bad utf-8 byte",
            [HEADER.as_bytes(), b"<m>\xff</m>"].concat(),
            C::NotWellFormed,
        ),
        (
            "latin-1",
            b"<?xml version='1.0' encoding='ISO-8859-1'?>".to_vec(),
            C::UnsupportedEncoding,
        ),
        (
            "wrong stream ns",
            b"<stream:stream xmlns:stream='urn:wrong'>".to_vec(),
            C::InvalidNamespace,
        ),
        (
            "no stream ns",
            b"<stream xmlns='jabber:client'>".to_vec(),
            C::InvalidNamespace,
        ),
        (
            "wrong root",
            b"<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>".to_vec(),
            C::BadFormat,
        ),
        (
            "undeclared prefix",
            with_header("<x:message/>"),
            C::NotWellFormed,
        ),
        (
            "mismatched tags",
            with_header("<message></presence>"),
            C::NotWellFormed,
        ),
        (
            "duplicate attr",
            with_header("<message a='1' a='2'/>"),
            C::NotWellFormed,
        ),
        (
            "duplicate resolved attr",
            with_header("<message xmlns:p='u' xmlns:q='u' p:a='1' q:a='2'/>"),
            C::NotWellFormed,
        ),
        (
            "xmlns prefix",
            with_header("<m xmlns:xmlns='u'/>"),
            C::NotWellFormed,
        ),
        (
            "empty prefix decl",
            with_header("<m xmlns:p=''/>"),
            C::NotWellFormed,
        ),
        (
            "text at stream level",
            with_header("hello<presence/>"),
            C::BadFormat,
        ),
        (
            "idle whitespace in tag",
            with_header(&format!("<m{}", " ".repeat(300_000))),
            C::PolicyViolation,
        ),
    ];
    for (name, input, want) in cases {
        let (_, err) = run(&input);
        assert_eq!(err, Some(want), "{name}");
    }
}

#[test]
fn split_multibyte_and_reset() {
    let input = with_header("<message><body>\u{1F600}\u{e9}</body></message>");
    // Every split point, including inside the 4-byte and 2-byte sequences.
    for i in 0..input.len() {
        let (events, err) = run_chunks(&[&input[..i], &input[i..]], XmlLimits::default());
        assert_eq!(err, None, "split at {i}");
        assert_eq!(events.len(), 2, "split at {i}");
    }
    let mut r = StreamReader::new(XmlLimits::default());
    r.feed(HEADER.as_bytes());
    r.feed(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(matches!(r.next_event(), Some(Ok(XmlEvent::StreamOpen(_)))));
    assert!(matches!(r.next_event(), Some(Ok(XmlEvent::Stanza(_)))));
    r.reset();
    r.feed(HEADER.as_bytes());
    assert!(matches!(r.next_event(), Some(Ok(XmlEvent::StreamOpen(_)))));
}

#[test]
fn limits_are_configurable() {
    let limits = XmlLimits {
        max_stanza_bytes: 300,
        max_depth: 2,
        ..XmlLimits::default()
    };
    let (_, err) = run_chunks(&[&with_header("<a><b/></a>")], limits.clone());
    assert_eq!(err, None);
    let (_, err) = run_chunks(&[&with_header("<a><b><c/></b></a>")], limits.clone());
    assert_eq!(err, Some(C::PolicyViolation));
    let (_, err) = run_chunks(
        &[&with_header(&format!("<a>{}</a>", "x".repeat(400)))],
        limits,
    );
    assert_eq!(err, Some(C::PolicyViolation));
}

#[test]
fn header_escaping() {
    let h = stream_header(&StreamHeaderOut {
        from: Some("ex'ample<&>"),
        id: Some("i\"d"),
        content_ns: "jabber:client",
        ..Default::default()
    });
    let h = String::from_utf8(h).expect("utf8");
    assert!(h.contains("from='ex&apos;ample&lt;&amp;&gt;'"), "{h}");
    assert!(h.contains("id='i&quot;d'"), "{h}");
    let (events, err) = run(h.as_bytes());
    assert_eq!(err, None);
    let XmlEvent::StreamOpen(hdr) = &events[0] else {
        panic!("no header");
    };
    assert_eq!(hdr.from.as_deref(), Some("ex'ample<&>"));
}
