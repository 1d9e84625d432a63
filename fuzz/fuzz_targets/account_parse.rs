//! Fuzz the account address parsers (cusaxctl, provisioning and REGISTER To-URIs reach them):
//! they never panic, and what they accept is canonical and round-trips.
#![no_main]

use cusax_account::{AccountId, Alias, Aor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(id) = AccountId::parse(text) {
        let again = AccountId::parse(&id.to_string()).expect("canonical account re-parses");
        assert_eq!(again, id);
        let _ = id.bare_jid();
        assert_eq!(id.aor().account_id().as_ref(), Some(&id), "AOR maps back to the account");
    }
    if let Ok(aor) = Aor::parse(text) {
        assert_eq!(Aor::parse(aor.as_str()).expect("canonical AOR re-parses"), aor);
        let _ = aor.user();
        let _ = aor.account_id();
    }
    if let Ok(alias) = Alias::parse(text) {
        assert_eq!(Alias::parse(alias.as_str()).expect("canonical alias re-parses"), alias);
    }
});
