//! Fuzzes the SCRAM server (client-first and client-final) and the SCRAM client.
#![no_main]

use cusax_xmpp_proto::sasl::{
    ClientChannelBinding, FakeSaltKey, Mechanism, SaslServer, SaslServerConfig, ScramClient,
    ScramClientSecret, ScramCredentials, ScramHash, ServerStep, parse_plain,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Split the input in two messages at the first NUL.
    let (first, second) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let config = SaslServerConfig {
        fake_salt_key: FakeSaltKey([3; 32]),
        fake_iterations: 1,
    };
    let creds = ScramCredentials::from_salted_password(ScramHash::Sha256, &[7; 32], b"salt", 1);
    for known in [true, false] {
        let Ok(mut s) = SaslServer::start(&config, Mechanism::ScramSha256, &[], true) else {
            return;
        };
        if let Ok(ServerStep::NeedCredentials { .. }) = s.step(first) {
            let _ = s.credentials(known.then(|| creds.clone()));
            let _ = s.step(second);
        }
    }
    let _ = parse_plain(data);
    let Ok(c) = ScramClient::new(
        Mechanism::ScramSha1,
        "user",
        ScramClientSecret::Salted {
            salt: b"salt".to_vec(),
            iterations: 1,
            salted_password: vec![1; 20],
        },
        ClientChannelBinding::Unsupported,
        None,
    ) else {
        return;
    };
    let mut c = c.with_client_nonce("fyko+d2lbbFgONRv9qkxdawL");
    let _ = c.client_first();
    let _ = c.handle_server_first(first);
    let _ = c.handle_server_final(second);
});
