//! One password, both protocols, no plaintext: after `cusaxctl user add`, the stored verifiers
//! alone accept SCRAM-SHA-1/-256 proofs and digest responses computed by a client from the
//! password, reject those from a wrong password, and the database never holds the password.

use cusax_account::verify::{DigestInput, digest_response_ok, scram_client_proof_ok};
use cusax_account::{AccountId, DigestAlgorithm, ScramHash, ScramVerifier};
use cusax_store::AccountStore;
use cusax_store::sqlite::SqliteStore;
use cusax_testkit::Cusaxd;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;

const PASSWORD: &str = "correct horse battery staple";

/// What a SCRAM client computes (RFC 5802 §3), written independently of the server code.
fn client_proof(hash: ScramHash, password: &str, v: &ScramVerifier, auth: &[u8]) -> Vec<u8> {
    fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as KeyInit>::new_from_slice(key).expect("any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    let (client_key, stored) = match hash {
        ScramHash::Sha1 => {
            let salted = pbkdf2::pbkdf2_hmac_array::<sha1::Sha1, 20>(
                password.as_bytes(),
                &v.salt,
                v.iterations,
            );
            let ck = mac::<Hmac<sha1::Sha1>>(&salted, b"Client Key");
            let sk = sha1::Sha1::digest(&ck).to_vec();
            (ck, sk)
        }
        _ => {
            let salted = pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(
                password.as_bytes(),
                &v.salt,
                v.iterations,
            );
            let ck = mac::<Hmac<sha2::Sha256>>(&salted, b"Client Key");
            let sk = sha2::Sha256::digest(&ck).to_vec();
            (ck, sk)
        }
    };
    let sig = match hash {
        ScramHash::Sha1 => mac::<Hmac<sha1::Sha1>>(&stored, auth),
        _ => mac::<Hmac<sha2::Sha256>>(&stored, auth),
    };
    client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn one_password_verifies_on_both_protocols_without_being_stored() {
    let mut s = Cusaxd::start("localhost");
    let out = s.ctl(
        &["user", "add", "alice@localhost", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.stop().0.success());

    let db = s.data_dir.join("cusax.db");
    let store = SqliteStore::open_existing(&db).await.expect("open");
    let id = AccountId::parse("alice@localhost").expect("valid");
    let rec = store.account(&id).await.expect("read").expect("exists");
    store.close().await;

    let auth = b"n=alice,r=abc,r=abcdef,s=c2FsdA==,i=4096,c=biws,r=abcdef";
    for hash in [ScramHash::Sha1, ScramHash::Sha256] {
        let v = rec.credentials.scram(hash).expect("verifier stored");
        assert_eq!(v.iterations, 4096);
        let good = client_proof(hash, PASSWORD, v, auth);
        assert!(
            scram_client_proof_ok(v, auth, &good),
            "{hash:?} right password"
        );
        let bad = client_proof(hash, "correct horse battery stapler", v, auth);
        assert!(
            !scram_client_proof_ok(v, auth, &bad),
            "{hash:?} wrong password"
        );
    }

    let input = DigestInput {
        method: "REGISTER",
        uri: "sip:localhost",
        nonce: "n0nce",
        qop_auth: Some(("00000001", "c")),
    };
    for (alg, hex) in [
        (
            DigestAlgorithm::Md5,
            base16ct::lower::encode_string(&md5::Md5::digest(format!(
                "alice:localhost:{PASSWORD}"
            ))),
        ),
        (
            DigestAlgorithm::Sha256,
            base16ct::lower::encode_string(&sha2::Sha256::digest(format!(
                "alice:localhost:{PASSWORD}"
            ))),
        ),
    ] {
        let stored = rec.credentials.ha1("localhost", alg).expect("HA1 stored");
        assert_eq!(stored.ha1, hex, "{alg:?} HA1 matches the client's");
        let h = |s: String| alg.hex(s.as_bytes());
        let response = h(format!(
            "{hex}:n0nce:00000001:c:auth:{}",
            h("REGISTER:sip:localhost".into())
        ));
        assert!(digest_response_ok(alg, &stored.ha1, &input, &response));
        let wrong = h(format!(
            "{}:n0nce:00000001:c:auth:{}",
            h(format!("alice:localhost:{PASSWORD}x")),
            h("REGISTER:sip:localhost".into())
        ));
        assert!(!digest_response_ok(alg, &stored.ha1, &input, &wrong));
    }

    // No file of the store holds the password (WAL and shared memory included).
    for entry in std::fs::read_dir(&s.data_dir).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read");
            let found = bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes());
            assert!(!found, "{} contains the password", path.display());
        }
    }
    assert!(db.exists());
}
