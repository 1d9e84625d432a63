//! RFC 5802 §5 and RFC 7677 §3 test vectors, and table-driven SASL failure conditions.
#![allow(clippy::type_complexity)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cusax_xmpp_proto::sasl::{
    ChannelBinding, ChannelBindingKind, ClientChannelBinding, FakeSaltKey, Mechanism,
    SaslCondition, SaslServer, SaslServerConfig, ScramClient, ScramClientError, ScramClientSecret,
    ScramCredentials, ScramHash, ScramServer, ServerStep, parse_plain, plain_client_message,
};

fn config() -> SaslServerConfig {
    SaslServerConfig {
        fake_salt_key: FakeSaltKey([7; 32]),
        fake_iterations: 4096,
    }
}

struct Vector {
    mech: Mechanism,
    hash: ScramHash,
    client_nonce: &'static str,
    server_nonce: &'static str,
    salt: &'static str,
    client_first: &'static str,
    server_first: &'static str,
    client_final: &'static str,
    server_final: &'static str,
}

const RFC5802: Vector = Vector {
    mech: Mechanism::ScramSha1,
    hash: ScramHash::Sha1,
    client_nonce: "fyko+d2lbbFgONRv9qkxdawL",
    server_nonce: "3rfcNHYJY1ZVvWVs7j",
    salt: "QSXCR+Q6sek8bf92",
    client_first: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    client_final: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    server_final: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

const RFC7677: Vector = Vector {
    mech: Mechanism::ScramSha256,
    hash: ScramHash::Sha256,
    client_nonce: "rOprNGfwEbeRWgbNEkqO",
    server_nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
    client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    server_final: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

fn creds(v: &Vector) -> ScramCredentials {
    let salt = B64.decode(v.salt).expect("vector salt");
    ScramCredentials::derive(v.hash, "pencil", &salt, 4096).expect("derive")
}

fn server_for(v: &Vector) -> ScramServer {
    ScramServer::new(&config(), v.hash, false, &[], false)
        .expect("server")
        .with_server_nonce(v.server_nonce)
}

#[test]
fn rfc_vectors_server() {
    for v in [&RFC5802, &RFC7677] {
        let mut s = server_for(v);
        match s.step(v.client_first.as_bytes()).expect("client-first") {
            ServerStep::NeedCredentials { username, authzid } => {
                assert_eq!(username, "user");
                assert_eq!(authzid, None);
            }
            other => panic!("unexpected {other:?}"),
        }
        let sf = s.provide_credentials(Some(creds(v))).expect("server-first");
        assert_eq!(sf, v.server_first.as_bytes());
        match s.step(v.client_final.as_bytes()).expect("client-final") {
            ServerStep::Success {
                username,
                additional_data,
                ..
            } => {
                assert_eq!(username, "user");
                assert_eq!(additional_data.as_deref(), Some(v.server_final.as_bytes()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn rfc_vectors_client() {
    for v in [&RFC5802, &RFC7677] {
        let mut c = ScramClient::new(
            v.mech,
            "user",
            ScramClientSecret::Password("pencil".into()),
            ClientChannelBinding::Unsupported,
            None,
        )
        .expect("client")
        .with_client_nonce(v.client_nonce);
        assert_eq!(c.client_first(), v.client_first.as_bytes());
        let cf = c
            .handle_server_first(v.server_first.as_bytes())
            .expect("final");
        assert_eq!(cf, v.client_final.as_bytes());
        c.handle_server_final(v.server_final.as_bytes())
            .expect("verify");
        let (salt, iterations, salted) = c.salted_password().expect("cached");
        // A second login from the cache gives the same proof without PBKDF2.
        let mut c2 = ScramClient::new(
            v.mech,
            "user",
            ScramClientSecret::Salted {
                salt: salt.to_vec(),
                iterations,
                salted_password: salted.to_vec(),
            },
            ClientChannelBinding::Unsupported,
            None,
        )
        .expect("client")
        .with_client_nonce(v.client_nonce);
        c2.client_first();
        assert_eq!(
            c2.handle_server_first(v.server_first.as_bytes())
                .expect("final"),
            v.client_final.as_bytes()
        );
        let mut bad = ScramClient::new(
            v.mech,
            "user",
            ScramClientSecret::Password("pencil".into()),
            ClientChannelBinding::Unsupported,
            None,
        )
        .expect("client")
        .with_client_nonce(v.client_nonce);
        bad.client_first();
        bad.handle_server_first(v.server_first.as_bytes())
            .expect("final");
        assert_eq!(
            bad.handle_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(ScramClientError::ServerSignatureMismatch)
        );
    }
}

/// Runs a full exchange between our client and our server.
fn run(
    mech: Mechanism,
    user: &str,
    password: &str,
    stored: Option<ScramCredentials>,
    client_cb: ClientChannelBinding,
    server_cbs: &[ChannelBinding],
    plus_advertised: bool,
) -> Result<String, SaslCondition> {
    let mut server = SaslServer::start(&config(), mech, server_cbs, plus_advertised)?;
    let mut client = ScramClient::new(
        mech,
        user,
        ScramClientSecret::Password(password.into()),
        client_cb,
        None,
    )
    .map_err(|_| SaslCondition::Aborted)?;
    let ServerStep::NeedCredentials { .. } = server.step(&client.client_first())? else {
        return Err(SaslCondition::Aborted);
    };
    let ServerStep::Challenge(sf) = server.credentials(stored)? else {
        return Err(SaslCondition::Aborted);
    };
    let cf = client
        .handle_server_first(&sf)
        .map_err(|_| SaslCondition::Aborted)?;
    match server.step(&cf)? {
        ServerStep::Success {
            username,
            additional_data: Some(d),
            ..
        } => {
            client
                .handle_server_final(&d)
                .map_err(|_| SaslCondition::Aborted)?;
            Ok(username)
        }
        _ => Err(SaslCondition::Aborted),
    }
}

fn exporter() -> ChannelBinding {
    ChannelBinding {
        kind: ChannelBindingKind::TlsExporter,
        data: vec![1, 2, 3, 4],
    }
}

#[test]
fn round_trips_and_conditions() {
    let c256 = ScramCredentials::derive(ScramHash::Sha256, "pencil", b"salty", 4096).ok();
    let c1 = ScramCredentials::derive(ScramHash::Sha1, "pencil", b"salty", 4096).ok();
    let other_cb = ChannelBinding {
        kind: ChannelBindingKind::TlsExporter,
        data: vec![9, 9],
    };
    let endpoint = ChannelBinding {
        kind: ChannelBindingKind::TlsServerEndPoint,
        data: vec![5],
    };
    use ClientChannelBinding as C;
    use Mechanism as M;
    let cases: Vec<(
        &str,
        M,
        &str,
        Option<ScramCredentials>,
        C,
        Vec<ChannelBinding>,
        bool,
        Result<&str, SaslCondition>,
    )> = vec![
        (
            "sha256 ok",
            M::ScramSha256,
            "pencil",
            c256.clone(),
            C::Unsupported,
            vec![],
            false,
            Ok("user"),
        ),
        (
            "sha1 ok",
            M::ScramSha1,
            "pencil",
            c1.clone(),
            C::Unsupported,
            vec![],
            false,
            Ok("user"),
        ),
        (
            "wrong password",
            M::ScramSha256,
            "pen",
            c256.clone(),
            C::Unsupported,
            vec![],
            false,
            Err(SaslCondition::NotAuthorized),
        ),
        (
            "unknown user",
            M::ScramSha256,
            "pencil",
            None,
            C::Unsupported,
            vec![],
            false,
            Err(SaslCondition::NotAuthorized),
        ),
        (
            "wrong hash creds",
            M::ScramSha256,
            "pencil",
            c1.clone(),
            C::Unsupported,
            vec![],
            false,
            Err(SaslCondition::TemporaryAuthFailure),
        ),
        (
            "plus ok",
            M::ScramSha256Plus,
            "pencil",
            c256.clone(),
            C::Bind(exporter()),
            vec![exporter()],
            true,
            Ok("user"),
        ),
        (
            "plus endpoint",
            M::ScramSha1Plus,
            "pencil",
            c1.clone(),
            C::Bind(endpoint.clone()),
            vec![exporter(), endpoint.clone()],
            true,
            Ok("user"),
        ),
        (
            "plus mitm",
            M::ScramSha256Plus,
            "pencil",
            c256.clone(),
            C::Bind(other_cb),
            vec![exporter()],
            true,
            Err(SaslCondition::NotAuthorized),
        ),
        (
            "plus type unavailable",
            M::ScramSha256Plus,
            "pencil",
            c256.clone(),
            C::Bind(endpoint),
            vec![exporter()],
            true,
            Err(SaslCondition::NotAuthorized),
        ),
        (
            "plus without cb data",
            M::ScramSha256Plus,
            "pencil",
            c256.clone(),
            C::Bind(exporter()),
            vec![],
            false,
            Err(SaslCondition::InvalidMechanism),
        ),
        (
            "y downgrade",
            M::ScramSha256,
            "pencil",
            c256.clone(),
            C::NotOfferedByServer,
            vec![exporter()],
            true,
            Err(SaslCondition::NotAuthorized),
        ),
        (
            "y without plus",
            M::ScramSha256,
            "pencil",
            c256.clone(),
            C::NotOfferedByServer,
            vec![],
            false,
            Ok("user"),
        ),
    ];
    for (name, mech, pw, stored, ccb, scb, adv, want) in cases {
        let got = run(mech, "user", pw, stored, ccb, &scb, adv);
        assert_eq!(got.as_deref().map_err(|e| *e), want, "{name}");
    }
}

/// RFC 5929 §4 end-point bindings of two different server certificates.
fn end_points() -> (ChannelBinding, ChannelBinding) {
    let cert = |alg: &'static rcgen::SignatureAlgorithm| {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["example.test".to_owned()]).expect("params");
        params.self_signed(&key).expect("cert").der().to_vec()
    };
    let a = cert(&rcgen::PKCS_ECDSA_P256_SHA256);
    let b = cert(&rcgen::PKCS_ECDSA_P256_SHA256);
    (
        ChannelBinding::tls_server_end_point(&a).expect("defined for ECDSA-SHA256"),
        ChannelBinding::tls_server_end_point(&b).expect("defined for ECDSA-SHA256"),
    )
}

#[test]
fn end_point_of_real_certificates() {
    use sha2::Digest as _;
    for (alg, hash_len) in [
        (&rcgen::PKCS_ECDSA_P256_SHA256, 32),
        (&rcgen::PKCS_ECDSA_P384_SHA384, 48),
    ] {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["example.test".to_owned()]).expect("params");
        let der = params.self_signed(&key).expect("cert").der().to_vec();
        let cb = ChannelBinding::tls_server_end_point(&der).expect("defined");
        assert_eq!(cb.kind, ChannelBindingKind::TlsServerEndPoint);
        assert_eq!(cb.data.len(), hash_len);
        let want = if hash_len == 32 {
            sha2::Sha256::digest(&der).to_vec()
        } else {
            sha2::Sha384::digest(&der).to_vec()
        };
        assert_eq!(cb.data, want);
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let params = rcgen::CertificateParams::new(vec!["example.test".to_owned()]).expect("params");
    let der = params.self_signed(&key).expect("cert").der().to_vec();
    assert_eq!(
        ChannelBinding::tls_server_end_point(&der),
        None,
        "RFC 5929 §4.1 leaves Ed25519 undefined"
    );
}

#[test]
fn tls_server_end_point_binding_is_checked() {
    let c256 = ScramCredentials::derive(ScramHash::Sha256, "pencil", b"salty", 4096).ok();
    let c1 = ScramCredentials::derive(ScramHash::Sha1, "pencil", b"salty", 4096).ok();
    let (ours, theirs) = end_points();
    use ClientChannelBinding as C;
    use Mechanism as M;
    let cases: Vec<(
        &str,
        M,
        Option<ScramCredentials>,
        C,
        Vec<ChannelBinding>,
        Result<&str, SaslCondition>,
    )> = vec![
        (
            "TLS 1.2: end-point only",
            M::ScramSha256Plus,
            c256.clone(),
            C::Bind(ours.clone()),
            vec![ours.clone()],
            Ok("user"),
        ),
        (
            "TLS 1.3: both, client picks end-point",
            M::ScramSha256Plus,
            c256.clone(),
            C::Bind(ours.clone()),
            vec![exporter(), ours.clone()],
            Ok("user"),
        ),
        (
            "SHA-1-PLUS end-point",
            M::ScramSha1Plus,
            c1.clone(),
            C::Bind(ours.clone()),
            vec![ours.clone()],
            Ok("user"),
        ),
        (
            "another certificate (MITM)",
            M::ScramSha256Plus,
            c256.clone(),
            C::Bind(theirs.clone()),
            vec![ours.clone()],
            Err(SaslCondition::NotAuthorized),
        ),
        (
            "exporter asked, end-point only",
            M::ScramSha256Plus,
            c256.clone(),
            C::Bind(exporter()),
            vec![ours.clone()],
            Err(SaslCondition::NotAuthorized),
        ),
        (
            "end-point data under the exporter name",
            M::ScramSha256Plus,
            c256.clone(),
            C::Bind(ChannelBinding {
                kind: ChannelBindingKind::TlsExporter,
                data: ours.data.clone(),
            }),
            vec![exporter(), ours.clone()],
            Err(SaslCondition::NotAuthorized),
        ),
        (
            "y while -PLUS offered",
            M::ScramSha256,
            c256.clone(),
            C::NotOfferedByServer,
            vec![ours.clone()],
            Err(SaslCondition::NotAuthorized),
        ),
    ];
    for (name, mech, stored, ccb, scb, want) in cases {
        let got = run(mech, "user", "pencil", stored, ccb, &scb, true);
        assert_eq!(got.as_deref().map_err(|e| *e), want, "{name}");
    }
    // A binding type we do not implement (tls-unique) fails at client-first.
    let mut s = SaslServer::start(&config(), M::ScramSha256Plus, &[ours], true).expect("start");
    assert_eq!(
        s.step(b"p=tls-unique,,n=user,r=abc").err(),
        Some(SaslCondition::NotAuthorized)
    );
}

#[test]
fn fake_salt_is_stable_per_user() {
    let first = |user: &str| {
        let mut s = ScramServer::new(&config(), ScramHash::Sha256, false, &[], false)
            .expect("server")
            .with_server_nonce("x");
        s.step(format!("n,,n={user},r=abc").as_bytes())
            .expect("first");
        String::from_utf8(s.provide_credentials(None).expect("sf")).expect("utf8")
    };
    assert_eq!(first("ghost"), first("ghost"));
    assert_ne!(first("ghost"), first("other"));
    assert!(first("ghost").ends_with(",i=4096"));
}

#[test]
fn client_first_conditions() {
    let cases: &[(&[u8], Result<(&str, Option<&str>), SaslCondition>)] = &[
        (b"n,,n=user,r=abc", Ok(("user", None))),
        (
            b"n,a=admin=40x,n=user,r=abc",
            Err(SaslCondition::InvalidAuthzid),
        ),
        (
            b"n,a=ad=2Cmin,n=us=3Der=2Cx,r=abc",
            Ok(("us=er,x", Some("ad,min"))),
        ),
        (b"n,,n=us=41er,r=abc", Err(SaslCondition::MalformedRequest)),
        (b"n,,n=user,r=a,bc", Err(SaslCondition::MalformedRequest)),
        (
            b"n,,m=ext,n=user,r=abc",
            Err(SaslCondition::MalformedRequest),
        ),
        (b"n,,n=user,r=abc,m=x", Err(SaslCondition::MalformedRequest)),
        (b"n,,n=user,r=abc,x=ok", Ok(("user", None))),
        (b"n,,n=,r=abc", Err(SaslCondition::MalformedRequest)),
        (b"n,,n=user,r=", Err(SaslCondition::MalformedRequest)),
        (b"x,,n=user,r=abc", Err(SaslCondition::MalformedRequest)),
        (
            b"p=tls-exporter,,n=user,r=abc",
            Err(SaslCondition::MalformedRequest),
        ),
        (b"n,,n=user", Err(SaslCondition::MalformedRequest)),
        (b"n,", Err(SaslCondition::MalformedRequest)),
        (b"\xff\xfe", Err(SaslCondition::MalformedRequest)),
        (b"n,,n=I\xC2\xADX,r=abc", Ok(("IX", None))),
        (b"n,,n=\x07,r=abc", Err(SaslCondition::MalformedRequest)),
        (b"n,a=,n=user,r=abc", Err(SaslCondition::MalformedRequest)),
    ];
    for (input, want) in cases {
        let mut s = ScramServer::new(&config(), ScramHash::Sha256, false, &[], false).expect("s");
        let got = s.step(input).map(|step| match step {
            ServerStep::NeedCredentials { username, authzid } => (username, authzid),
            other => panic!("unexpected {other:?}"),
        });
        let got = got
            .as_ref()
            .map(|(u, a)| (u.as_str(), a.as_deref()))
            .map_err(|e| *e);
        assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn client_final_conditions() {
    let v = &RFC7677;
    let good = v.client_final;
    let cases: &[(&str, SaslCondition)] = &[
        (
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!",
            SaslCondition::IncorrectEncoding,
        ),
        (
            "c=@@,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            SaslCondition::IncorrectEncoding,
        ),
        (
            "c=biws,r=rOprNGfwEbeRWgbNEkqOXXX,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            SaslCondition::NotAuthorized,
        ),
        (
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            SaslCondition::NotAuthorized,
        ),
        (
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
            SaslCondition::NotAuthorized,
        ),
        (
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            SaslCondition::MalformedRequest,
        ),
        ("r=x,c=biws,p=AAAA", SaslCondition::MalformedRequest),
        ("", SaslCondition::MalformedRequest),
    ];
    for (input, want) in cases {
        let mut s = server_for(v);
        s.step(v.client_first.as_bytes()).expect("cf");
        s.provide_credentials(Some(creds(v))).expect("sf");
        assert_eq!(s.step(input.as_bytes()).err(), Some(*want), "{input}");
    }
    // A replay after success is out of order.
    let mut s = server_for(v);
    s.step(v.client_first.as_bytes()).expect("cf");
    s.provide_credentials(Some(creds(v))).expect("sf");
    s.step(good.as_bytes()).expect("ok");
    assert_eq!(
        s.step(good.as_bytes()).err(),
        Some(SaslCondition::MalformedRequest)
    );
}

#[test]
fn plain_server() {
    let cfg = config();
    let mut s = SaslServer::start(&cfg, Mechanism::Plain, &[], false).expect("plain");
    let msg = plain_client_message(None, "juliet", "r0m30");
    let ServerStep::VerifyPlain(auth) = s.step(&msg).expect("parse") else {
        panic!("expected VerifyPlain");
    };
    assert_eq!(auth.authcid, "juliet");
    assert_eq!(auth.password.expose(), "r0m30");
    assert!(matches!(
        s.plain_verified(true),
        Ok(ServerStep::Success { .. })
    ));
    let mut s = SaslServer::start(&cfg, Mechanism::Plain, &[], false).expect("plain");
    s.step(&msg).expect("parse");
    assert_eq!(
        s.plain_verified(false).err(),
        Some(SaslCondition::NotAuthorized)
    );

    let bad: &[&[u8]] = &[
        b"",
        b"\0",
        b"\0user",
        b"\0user\0",
        b"a\0b\0c\0d",
        b"\0us\x07er\0pw",
        b"\xff\0u\0p",
    ];
    for b in bad {
        assert_eq!(
            parse_plain(b).err(),
            Some(SaslCondition::MalformedRequest),
            "{b:?}"
        );
    }
    let ok = parse_plain(b"admin@example.org\0user\0pw").expect("ok");
    assert_eq!(ok.authzid.as_deref(), Some("admin@example.org"));
}

#[test]
fn mechanism_names() {
    for m in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(m.name()), Some(m));
    }
    assert_eq!(Mechanism::from_name("scram-sha-1"), None);
    assert_eq!(
        SaslCondition::from_name("not-authorized"),
        Some(SaslCondition::NotAuthorized)
    );
}
