//! Two-party harness: our client negotiation against our server negotiation, in memory.
#![allow(clippy::type_complexity)]

use std::sync::Arc;

use cusax_xmpp_proto::sasl::{
    ChannelBinding, ChannelBindingKind, FakeSaltKey, Mechanism, SaslCondition, SaslServerConfig,
    ScramCredentials,
};
use cusax_xmpp_proto::stanza::StanzaErrorCondition;
use cusax_xmpp_proto::stream::{
    BoundEvent, ClientConfig, ClientError, ClientEvent, ClientNegotiation, ServerConfig,
    ServerEvent, ServerNegotiation, StreamErrorCondition, TlsPolicy,
};
use cusax_xmpp_proto::xml::XmlLimits;

fn server_config(tls: TlsPolicy, mechanisms: Vec<Mechanism>) -> ServerConfig {
    ServerConfig {
        tls,
        mechanisms,
        sasl: SaslServerConfig {
            fake_salt_key: FakeSaltKey([1; 32]),
            fake_iterations: 4096,
        },
        max_auth_attempts: 3,
        advertise_session: true,
        advertise_csi: false,
        limits: XmlLimits::default(),
        is_served: Arc::new(|d| d == "example.org"),
    }
}

fn client_config(password: &str, tls: TlsPolicy) -> ClientConfig {
    ClientConfig {
        domain: "example.org".into(),
        username: "juliet".into(),
        password: password.into(),
        cached: None,
        resource: Some("balcony".into()),
        tls,
        allow_plain: true,
        limits: XmlLimits::default(),
    }
}

fn cb() -> Vec<ChannelBinding> {
    vec![ChannelBinding {
        kind: ChannelBindingKind::TlsExporter,
        data: vec![42; 32],
    }]
}

#[derive(Debug, Default)]
struct Outcome {
    mechanism: Option<Mechanism>,
    bound: Option<String>,
    client_error: Option<ClientError>,
    server_closed: Option<Option<StreamErrorCondition>>,
}

/// Drives both sides until neither produces output; the "account store" knows juliet/r0m30.
fn drive(mut client: ClientNegotiation, mut server: ServerNegotiation, conflict: bool) -> Outcome {
    let mut outcome = Outcome::default();
    let mut conflict_left = conflict;
    for _ in 0..100 {
        let c_out = client.take_output();
        if std::env::var_os("TRACE").is_some() {
            eprintln!("C: {}", String::from_utf8_lossy(&c_out));
        }
        server.feed(&c_out);
        while let Some(ev) = server.poll_event() {
            match ev {
                ServerEvent::NeedTls => server.tls_established(cb()),
                ServerEvent::NeedCredentials {
                    username,
                    mechanism,
                } => {
                    let hash = mechanism.scram_hash().expect("scram");
                    let creds = (username == "juliet")
                        .then(|| ScramCredentials::derive(hash, "r0m30", b"salt", 4096).ok())
                        .flatten();
                    server.provide_credentials(creds);
                }
                ServerEvent::VerifyPlain(auth) => server
                    .plain_result(auth.authcid == "juliet" && auth.password.expose() == "r0m30"),
                ServerEvent::BindRequest { resource, .. } => {
                    if conflict_left {
                        conflict_left = false;
                        server.complete_bind(Err(StanzaErrorCondition::Conflict));
                    } else {
                        server.complete_bind(Ok(resource));
                    }
                }
                ServerEvent::Closed(e) => outcome.server_closed = Some(e.map(|e| e.condition)),
                _ => {}
            }
        }
        let s_out = server.take_output();
        if std::env::var_os("TRACE").is_some() {
            eprintln!("S: {}", String::from_utf8_lossy(&s_out));
        }
        client.feed(&s_out);
        while let Some(ev) = client.poll_event() {
            match ev {
                ClientEvent::NeedTls => client.tls_established(cb()),
                ClientEvent::Authenticated { mechanism, .. } => outcome.mechanism = Some(mechanism),
                ClientEvent::Bound(j) => outcome.bound = Some(j.to_string()),
                ClientEvent::Failed(e) => outcome.client_error = Some(e),
                _ => {}
            }
        }
        if c_out.is_empty() && s_out.is_empty() {
            break;
        }
    }
    outcome
}

#[test]
fn starttls_scram_plus_bind() {
    let server =
        ServerNegotiation::new(server_config(TlsPolicy::Required, Mechanism::ALL.to_vec()));
    let client = ClientNegotiation::new(client_config("r0m30", TlsPolicy::Required));
    let o = drive(client, server, false);
    assert_eq!(o.client_error, None);
    assert_eq!(o.mechanism, Some(Mechanism::ScramSha256Plus));
    assert_eq!(o.bound.as_deref(), Some("juliet@example.org/balcony"));
}

#[test]
fn plain_tcp_scram_sha1_and_bound_stream() {
    let server = ServerNegotiation::new(server_config(
        TlsPolicy::Disabled,
        vec![Mechanism::ScramSha1, Mechanism::Plain],
    ));
    let client = ClientNegotiation::new(client_config("r0m30", TlsPolicy::Disabled));
    let mut server = server;
    let mut client = client;
    // Drive by hand to keep both objects afterwards.
    for _ in 0..20 {
        server.feed(&client.take_output());
        while let Some(ev) = server.poll_event() {
            match ev {
                ServerEvent::NeedCredentials { mechanism, .. } => {
                    let hash = mechanism.scram_hash().expect("scram");
                    server.provide_credentials(
                        ScramCredentials::derive(hash, "r0m30", b"s", 4096).ok(),
                    );
                }
                ServerEvent::BindRequest { resource, .. } => server.complete_bind(Ok(resource)),
                _ => {}
            }
        }
        client.feed(&server.take_output());
        while client.poll_event().is_some() {}
    }
    let mut s = server.into_bound().expect("server bound");
    let mut c = client.into_bound().expect("client bound");
    assert_eq!(s.jid().to_string(), "juliet@example.org/balcony");
    let msg: minidom::Element =
        "<message xmlns='jabber:client' to='romeo@example.net' id='m1'><body>hi &amp; bye</body></message>"
            .parse()
            .expect("parse");
    c.send_stanza(&msg).expect("write");
    s.feed(&c.take_output());
    assert_eq!(s.poll_event(), Some(BoundEvent::Stanza(msg)));
    c.close(None);
    s.feed(&c.take_output());
    assert_eq!(s.poll_event(), Some(BoundEvent::Closed(None)));
}

#[test]
fn wrong_password_and_retries() {
    let server =
        ServerNegotiation::new(server_config(TlsPolicy::Optional, Mechanism::ALL.to_vec()));
    let client = ClientNegotiation::new(client_config("wrong", TlsPolicy::Optional));
    let o = drive(client, server, false);
    assert_eq!(
        o.client_error,
        Some(ClientError::AuthFailed(SaslCondition::NotAuthorized))
    );
    assert_eq!(o.bound, None);
}

#[test]
fn bind_conflict_is_an_iq_error() {
    let server =
        ServerNegotiation::new(server_config(TlsPolicy::Required, Mechanism::ALL.to_vec()));
    let client = ClientNegotiation::new(client_config("r0m30", TlsPolicy::Required));
    let o = drive(client, server, true);
    assert_eq!(o.client_error, Some(ClientError::BindFailed));
}

#[test]
fn plain_only_over_tls() {
    // Without TLS the server does not offer PLAIN and the client will not use it.
    let server = ServerNegotiation::new(server_config(TlsPolicy::Disabled, vec![Mechanism::Plain]));
    let client = ClientNegotiation::new(client_config("r0m30", TlsPolicy::Disabled));
    let o = drive(client, server, false);
    assert_eq!(o.client_error, Some(ClientError::NoMechanism));
    // Over direct TLS, PLAIN works.
    let server = ServerNegotiation::new_direct_tls(
        server_config(TlsPolicy::Disabled, vec![Mechanism::Plain]),
        vec![],
    );
    let client =
        ClientNegotiation::new_direct_tls(client_config("r0m30", TlsPolicy::Disabled), vec![]);
    let o = drive(client, server, false);
    assert_eq!(o.mechanism, Some(Mechanism::Plain));
    assert!(o.bound.is_some());
}

/// Feeds raw client bytes to a fresh server and returns its output and final close condition.
fn raw(config: ServerConfig, input: &str) -> (String, Option<Option<StreamErrorCondition>>) {
    let mut s = ServerNegotiation::new(config);
    s.feed(input.as_bytes());
    let mut closed = None;
    while let Some(ev) = s.poll_event() {
        if let ServerEvent::Closed(e) = ev {
            closed = Some(e.map(|e| e.condition));
        }
    }
    (
        String::from_utf8_lossy(&s.take_output()).into_owned(),
        closed,
    )
}

const HDR: &str = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>";

#[test]
fn server_conditions() {
    let cfg = || {
        server_config(
            TlsPolicy::Disabled,
            vec![Mechanism::ScramSha256, Mechanism::Plain],
        )
    };
    let tls = || server_config(TlsPolicy::Required, Mechanism::ALL.to_vec());
    let cases: Vec<(
        &str,
        ServerConfig,
        String,
        Option<Option<StreamErrorCondition>>,
        &str,
    )> = vec![
        (
            "unknown host",
            cfg(),
            HDR.replace("example.org", "other.org"),
            Some(Some(StreamErrorCondition::HostUnknown)),
            "<host-unknown",
        ),
        (
            "no to",
            cfg(),
            HDR.replace(" to='example.org'", ""),
            Some(Some(StreamErrorCondition::HostUnknown)),
            "<stream:stream",
        ),
        (
            "bad version",
            cfg(),
            HDR.replace("1.0", "2.0"),
            Some(Some(StreamErrorCondition::UnsupportedVersion)),
            "unsupported-version",
        ),
        (
            "no version",
            cfg(),
            HDR.replace(" version='1.0'", ""),
            Some(Some(StreamErrorCondition::UnsupportedVersion)),
            "unsupported-version",
        ),
        (
            "server ns",
            cfg(),
            HDR.replace("jabber:client", "jabber:server"),
            Some(Some(StreamErrorCondition::InvalidNamespace)),
            "invalid-namespace",
        ),
        (
            "stanza before auth",
            cfg(),
            format!("{HDR}<message/>"),
            Some(Some(StreamErrorCondition::NotAuthorized)),
            "not-authorized",
        ),
        (
            "plain needs tls",
            cfg(),
            format!(
                "{HDR}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABy</auth>"
            ),
            None,
            "<encryption-required/>",
        ),
        (
            "unknown mech",
            cfg(),
            format!("{HDR}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-FOO'/>"),
            None,
            "<invalid-mechanism/>",
        ),
        (
            "bad base64",
            cfg(),
            format!(
                "{HDR}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>!!</auth>"
            ),
            None,
            "<incorrect-encoding/>",
        ),
        (
            "malformed",
            cfg(),
            format!(
                "{HDR}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>eHl6</auth>"
            ),
            None,
            "<malformed-request/>",
        ),
        (
            "abort",
            cfg(),
            format!(
                "{HDR}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'/><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
            ),
            None,
            "<aborted/>",
        ),
        (
            "retries",
            cfg(),
            format!(
                "{HDR}{}",
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X'/>".repeat(3)
            ),
            Some(Some(StreamErrorCondition::PolicyViolation)),
            "policy-violation",
        ),
        (
            "tls required",
            tls(),
            format!(
                "{HDR}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'/>"
            ),
            None,
            "<encryption-required/>",
        ),
        (
            "tls features",
            tls(),
            HDR.to_owned(),
            None,
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
        ),
        (
            "starttls",
            tls(),
            format!("{HDR}<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><injected/>"),
            None,
            "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        ),
        (
            "close",
            cfg(),
            format!("{HDR}</stream:stream>"),
            Some(None),
            "</stream:stream>",
        ),
        (
            "doctype",
            cfg(),
            "<!DOCTYPE x>".to_owned(),
            Some(Some(StreamErrorCondition::RestrictedXml)),
            "<stream:stream",
        ),
    ];
    for (name, config, input, want_closed, want_out) in cases {
        let (out, closed) = raw(config, &input);
        assert_eq!(closed, want_closed, "{name}: {out}");
        assert!(out.contains(want_out), "{name}: {out}");
    }
}
