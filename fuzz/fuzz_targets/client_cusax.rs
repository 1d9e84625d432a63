//! Fuzz what the cusax client reads from the network to tie SIP to XMPP (RFC 7081 §3.3–§3.5):
//! caller identities (From/P-Asserted-Identity), Call-Info values, vCard TELs and roster
//! items. Nothing panics; a dialable TEL yields a URI that parses as an identity again; an
//! attribution only ever names a contact that was offered.
#![no_main]

use cusax_client::cusax::identity::{Identity, attribute, dial_uri, impp_hints};
use cusax_client::xmpp::stanzas::{parse_vcard, roster_items};
use libfuzzer_sys::fuzz_target;

const DOMAIN: &str = "example.com";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Split the input: caller | call-info | vCard XML.
    let mut parts = text.splitn(3, '\u{1}');
    let from = parts.next().unwrap_or_default();
    let info = parts.next().unwrap_or_default();
    let xml = parts.next().unwrap_or_default();

    let _ = Identity::parse(from, DOMAIN);
    if let Some(uri) = dial_uri(from, DOMAIN) {
        assert!(
            Identity::parse(&uri, DOMAIN).is_some(),
            "a dial URI is a SIP identity: {uri:?}"
        );
    }
    let hints = impp_hints(&[info.to_owned()]);
    assert!(hints.iter().all(|h| h.contains('@')));

    let card = xml
        .parse::<minidom::Element>()
        .map(|el| {
            let _ = roster_items(&el);
            parse_vcard(&el)
        })
        .unwrap_or_default();
    let contacts = vec![("bob@example.com".to_owned(), card)];
    let a = attribute(from, &[info.to_owned()], &contacts, DOMAIN);
    if let Some(c) = a.contact {
        assert_eq!(c, "bob@example.com");
    }
});
