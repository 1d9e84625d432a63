//! Fuzzes the XML stream reader and the server negotiation with arbitrary chunked input.
#![no_main]

use std::sync::Arc;

use cusax_xmpp_proto::sasl::{FakeSaltKey, Mechanism, SaslServerConfig};
use cusax_xmpp_proto::stream::{ServerConfig, ServerNegotiation, TlsPolicy};
use cusax_xmpp_proto::xml::{StreamReader, XmlEvent, XmlLimits, write_element};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the chunk size, so splits land everywhere.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split % 64) + 1;
    let limits = XmlLimits {
        max_stanza_bytes: 4096,
        max_depth: 16,
        ..XmlLimits::default()
    };
    let mut reader = StreamReader::new(limits.clone());
    for c in rest.chunks(chunk) {
        reader.feed(c);
        while let Some(ev) = reader.next_event() {
            if let Ok(XmlEvent::Stanza(el)) = ev {
                // Whatever we parsed must serialize and parse back to the same tree.
                let mut out = b"<stream:stream xmlns='jabber:client' \
                    xmlns:stream='http://etherx.jabber.org/streams'>"
                    .to_vec();
                if write_element(&el, "jabber:client", &mut out).is_ok() {
                    let mut again = StreamReader::new(XmlLimits::default());
                    again.feed(&out);
                    let _open = again.next_event();
                    match again.next_event() {
                        Some(Ok(XmlEvent::Stanza(el2))) => assert_eq!(el, el2),
                        other => panic!("re-parse failed: {other:?}"),
                    }
                }
            }
        }
    }
    let mut server = ServerNegotiation::new(ServerConfig {
        tls: TlsPolicy::Disabled,
        mechanisms: Mechanism::ALL.to_vec(),
        sasl: SaslServerConfig {
            fake_salt_key: FakeSaltKey([0; 32]),
            fake_iterations: 1,
        },
        max_auth_attempts: 3,
        advertise_session: true,
        advertise_csi: false,
        limits,
        is_served: Arc::new(|d| d == "example.org"),
    });
    for c in rest.chunks(chunk) {
        server.feed(c);
        while server.poll_event().is_some() {}
        let _ = server.take_output();
    }
});
