//! RFC 7081 §2 ("online provisioning … the client fetches its configuration from a server"):
//! one HTTPS request with the service login returns both account definitions.
//!
//! The server side is cusaxd's `GET /provisioning` (crate `cusax-http`, module
//! `provisioning`): HTTP Basic credentials (RFC 7617), a JSON document of schema version
//! [`SCHEMA_VERSION`]. The certificate is verified with the client's one trust policy
//! ([`crate::tls::TrustConfig`]); plain `http://` is refused unless the host is this machine.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use cusax_account::AccountId;
use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{
    Relationship, ServiceAccount, SetupError, SetupSource, SipSetup, SipTransport, XmppSetup,
    XmppTls, check_host,
};
use crate::tls::TrustConfig;

/// The schema version of cusaxd's provisioning document that this client reads.
pub const SCHEMA_VERSION: u64 = 1;

/// The largest provisioning document accepted (cusaxd's is well under 2 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// How much of an error body is shown to the user.
const MAX_ERROR_BODY: usize = 512;

/// Connect, TLS handshake, request and body together.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A checked provisioning URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    /// Host without IPv6 brackets.
    host: String,
    port: u16,
    /// `host[:port]` for the Host header.
    authority: String,
    path_and_query: String,
    /// The URL as it will be stored for re-provisioning.
    url: String,
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Target {
    fn parse(url: &str) -> Result<Self, SetupError> {
        let bad = |m: &str| SetupError::Url(format!("{m}: {url}"));
        let uri: Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            _ => return Err(bad("the scheme must be https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "credentials do not belong in the URL (they are sent with HTTP Basic)",
            ));
        }
        let raw_host = authority.host();
        let host = check_host(raw_host)?;
        if !tls && !is_loopback(&host) {
            return Err(bad(
                "plain http would expose the password; use https (http only for this machine)",
            ));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("" | "/") => "/provisioning".to_owned(),
            Some(p) => p.to_owned(),
        };
        let scheme = if tls { "https" } else { "http" };
        let authority = authority.as_str().to_owned();
        Ok(Self {
            tls,
            url: format!("{scheme}://{authority}{path_and_query}"),
            host,
            port,
            authority,
            path_and_query,
        })
    }
}

/// Online provisioning (RFC 7081 §2): fetches `url` (cusaxd's `https://HOST:PORT/provisioning`;
/// a URL without a path gets `/provisioning`) with `user` (`user@domain`) and `password` as
/// HTTP Basic credentials, verifying the server certificate with `trust`, and returns the
/// account it describes, with `password` kept.
pub async fn provision(
    url: &str,
    user: &str,
    password: &str,
    trust: &TrustConfig,
) -> Result<ServiceAccount, SetupError> {
    let target = Target::parse(url)?;
    let id = AccountId::parse(user)?;
    let credentials = format!("{id}:{password}");
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes())
    );
    let body = tokio::time::timeout(REQUEST_TIMEOUT, fetch(&target, &auth, trust))
        .await
        .map_err(|_| SetupError::Timeout("the provisioning request"))??;
    let mut account = parse_document(&body)?;
    account.password = Some(password.to_owned());
    account.source = SetupSource::Provisioning { url: target.url };
    Ok(account)
}

async fn fetch(target: &Target, auth: &str, trust: &TrustConfig) -> Result<Bytes, SetupError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| SetupError::Connect {
            host: target.host.clone(),
            port: target.port,
            reason: e.to_string(),
        })?;
    if !target.tls {
        return request(tcp, target, auth).await;
    }
    let config = trust.client_config()?;
    let name = ServerName::try_from(target.host.clone())
        .map_err(|_| SetupError::Host(target.host.clone()))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| SetupError::Tls {
            host: target.host.clone(),
            reason: e.to_string(),
        })?;
    request(tls, target, auth).await
}

/// Aborts the HTTP connection task when the request is over, however it ended.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn request<S>(io: S, target: &Target, auth: &str) -> Result<Bytes, SetupError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |e: hyper::Error| SetupError::Http(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http)?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        // Its error, if any, is the one send_request reports.
        let _ = conn.await;
    }));
    let req = Request::get(target.path_and_query.as_str())
        .header(HOST, target.authority.as_str())
        .header(AUTHORIZATION, auth)
        .header(ACCEPT, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("cusax/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| SetupError::Url(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(http)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    if status != StatusCode::OK {
        let body = Limited::new(resp.into_body(), MAX_ERROR_BODY)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).trim().to_owned();
        return Err(match status {
            StatusCode::UNAUTHORIZED => SetupError::Unauthorized,
            StatusCode::FORBIDDEN => SetupError::Forbidden(text),
            StatusCode::TOO_MANY_REQUESTS => SetupError::RateLimited {
                retry_after_secs: headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
            },
            s => SetupError::Status {
                status: s.as_u16(),
                body: text,
            },
        });
    }
    let too_large = SetupError::TooLarge {
        limit: MAX_DOCUMENT_BYTES,
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Err(too_large);
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" {
        return Err(SetupError::NotJson(format!(
            "content type is `{content_type}`, not application/json"
        )));
    }
    match Limited::new(resp.into_body(), MAX_DOCUMENT_BYTES)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
        Err(e) => Err(SetupError::Http(e.to_string())),
    }
}

/// cusaxd's document, schema version 1 (fields this client does not use are ignored).
#[derive(Debug, Deserialize)]
struct DocumentV1 {
    account: String,
    sip: Option<SipDoc>,
    xmpp: Option<XmppDoc>,
    cusax: RelationshipDoc,
}

#[derive(Debug, Deserialize)]
struct SipDoc {
    aor: String,
    username: String,
    realm: String,
    proxy: String,
    port: u16,
    transports: Vec<String>,
    #[serde(default)]
    tls_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct XmppDoc {
    jid: String,
    host: String,
    port: u16,
    #[serde(default)]
    direct_tls_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct RelationshipDoc {
    sip: String,
    xmpp: String,
}

fn port(p: u16, what: &str) -> Result<u16, SetupError> {
    if p == 0 {
        return Err(SetupError::Document(format!("{what} is 0")));
    }
    Ok(p)
}

fn field<T>(r: Result<T, cusax_account::AddressError>, what: &str) -> Result<T, SetupError> {
    r.map_err(|e| SetupError::Document(format!("{what}: {e}")))
}

/// Reads a provisioning document (JSON, schema version 1) into an account (no password, a
/// provisioning source with an empty URL: [`provision`] fills both in).
fn parse_document(body: &[u8]) -> Result<ServiceAccount, SetupError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| SetupError::NotJson(e.to_string()))?;
    let version = value
        .get("version")
        .ok_or_else(|| SetupError::Document("no `version`".into()))?;
    let version = version
        .as_u64()
        .ok_or_else(|| SetupError::Document(format!("`version` is {version}, not a number")))?;
    if version != SCHEMA_VERSION {
        return Err(SetupError::SchemaVersion { found: version });
    }
    let doc: DocumentV1 =
        serde_json::from_value(value).map_err(|e| SetupError::Document(e.to_string()))?;
    let id = field(AccountId::parse(&doc.account), "account")?;
    let sip = doc.sip.map(sip_setup).transpose()?;
    let xmpp = doc
        .xmpp
        .map(|x| -> Result<XmppSetup, SetupError> {
            let jid = field(AccountId::parse(&x.jid), "xmpp.jid")?;
            Ok(XmppSetup {
                jid: jid.bare_jid().to_string(),
                host: check_host(&x.host)
                    .map_err(|e| SetupError::Document(format!("xmpp.host: {e}")))?,
                port: port(x.port, "xmpp.port")?,
                tls: XmppTls::Starttls,
                direct_tls_port: x
                    .direct_tls_port
                    .map(|p| port(p, "xmpp.direct_tls_port"))
                    .transpose()?,
            })
        })
        .transpose()?;
    if sip.is_none() && xmpp.is_none() {
        return Err(SetupError::Document(
            "neither a SIP nor an XMPP account".into(),
        ));
    }
    field(AccountId::parse(&doc.cusax.sip), "cusax.sip")?;
    field(AccountId::parse(&doc.cusax.xmpp), "cusax.xmpp")?;
    Ok(ServiceAccount {
        account: id.to_string(),
        password: None,
        sip,
        xmpp,
        cusax: Relationship {
            sip: doc.cusax.sip,
            xmpp: doc.cusax.xmpp,
        },
        source: SetupSource::Provisioning { url: String::new() },
    })
}

fn sip_setup(s: SipDoc) -> Result<SipSetup, SetupError> {
    let aor_lower = s.aor.to_ascii_lowercase();
    if !(aor_lower.starts_with("sip:") || aor_lower.starts_with("sips:")) {
        return Err(SetupError::Document(format!(
            "sip.aor `{}` is not a sip: URI",
            s.aor
        )));
    }
    field(AccountId::parse(&s.aor), "sip.aor")?;
    if s.username.is_empty() || s.realm.is_empty() {
        return Err(SetupError::Document(
            "sip.username or sip.realm is empty".into(),
        ));
    }
    let tls_port = s.tls_port.map(|p| port(p, "sip.tls_port")).transpose()?;
    // The server lists its transports preferred first; the first one this client knows wins.
    let transport = s
        .transports
        .iter()
        .find_map(|t| SipTransport::from_token(t))
        .ok_or_else(|| {
            SetupError::Document(format!(
                "sip.transports {:?} names no udp, tcp or tls",
                s.transports
            ))
        })?;
    let port = match transport {
        SipTransport::Tls => tls_port.ok_or_else(|| {
            SetupError::Document("sip.transports offers tls without sip.tls_port".into())
        })?,
        SipTransport::Udp | SipTransport::Tcp => port(s.port, "sip.port")?,
    };
    Ok(SipSetup {
        aor: s.aor,
        username: s.username,
        realm: s.realm,
        server_host: check_host(&s.proxy)
            .map_err(|e| SetupError::Document(format!("sip.proxy: {e}")))?,
        port,
        transport,
        tls_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// What cusaxd sends (bins/cusaxd, crates/http/src/provisioning.rs), for alice@localhost.
    const DOC: &str = r#"{"version":1,"account":"alice@localhost",
        "sip":{"aor":"sip:alice@localhost","username":"alice","realm":"localhost",
               "registrar":"localhost","proxy":"localhost","port":5060,
               "transports":["udp","tcp","tls"],"tls_port":5061,
               "presence_enabled":false,"messaging_enabled":false},
        "xmpp":{"jid":"alice@localhost","host":"localhost","port":5222,
                "direct_tls_port":5223,"starttls_required":true,"calling_enabled":false},
        "cusax":{"sip":"sip:alice@localhost","xmpp":"alice@localhost"},
        "reprovision_url":"https://localhost:5280/provisioning"}"#;

    #[test]
    fn cusaxd_document_is_read() {
        let a = parse_document(DOC.as_bytes()).expect("valid");
        assert_eq!(a.account, "alice@localhost");
        let s = a.sip.expect("sip");
        assert_eq!(s.aor, "sip:alice@localhost");
        assert_eq!(
            (s.username.as_str(), s.realm.as_str()),
            ("alice", "localhost")
        );
        assert_eq!((s.server_host.as_str(), s.port), ("localhost", 5060));
        assert_eq!((s.transport, s.tls_port), (SipTransport::Udp, Some(5061)));
        let x = a.xmpp.expect("xmpp");
        assert_eq!(
            (x.jid.as_str(), x.host.as_str()),
            ("alice@localhost", "localhost")
        );
        assert_eq!(
            (x.port, x.tls, x.direct_tls_port),
            (5222, XmppTls::Starttls, Some(5223))
        );
        assert_eq!(a.cusax.sip, "sip:alice@localhost");
        assert_eq!(a.cusax.xmpp, "alice@localhost");
    }

    #[test]
    fn transport_preference_is_the_servers() {
        let doc = DOC.replace(r#"["udp","tcp","tls"]"#, r#"["SCTP","tls","udp"]"#);
        let s = parse_document(doc.as_bytes())
            .expect("valid")
            .sip
            .expect("sip");
        assert_eq!((s.transport, s.port), (SipTransport::Tls, 5061));
        let doc = DOC.replace(r#"["udp","tcp","tls"]"#, r#"["sctp"]"#);
        assert!(matches!(
            parse_document(doc.as_bytes()),
            Err(SetupError::Document(_))
        ));
    }

    #[test]
    fn wrong_documents_are_named() {
        assert!(matches!(
            parse_document(b"<html>login</html>"),
            Err(SetupError::NotJson(_))
        ));
        let v2 = DOC.replace(r#""version":1"#, r#""version":2"#);
        let e = parse_document(v2.as_bytes()).expect_err("v2");
        assert!(matches!(e, SetupError::SchemaVersion { found: 2 }), "{e}");
        assert!(e.to_string().contains("version 2"), "{e}");
        assert!(matches!(
            parse_document(br#"{"account":"a@b"}"#),
            Err(SetupError::Document(_))
        ));
        for (from, to) in [
            (r#""port":5060"#, r#""port":0"#),
            (r#""port":5060"#, r#""port":70000"#),
            (r#""proxy":"localhost""#, r#""proxy":"bad host""#),
            (
                r#""aor":"sip:alice@localhost""#,
                r#""aor":"mailto:alice@localhost""#,
            ),
            (r#""jid":"alice@localhost""#, r#""jid":"localhost""#),
            (r#""account":"alice@localhost""#, r#""account":5"#),
        ] {
            let doc = DOC.replace(from, to);
            assert!(
                matches!(parse_document(doc.as_bytes()), Err(SetupError::Document(_))),
                "{to}"
            );
        }
    }

    #[test]
    fn urls_are_checked() {
        let t = Target::parse("https://cusax.example.org:5280/provisioning").expect("ok");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port),
            (true, "cusax.example.org", 5280)
        );
        assert_eq!(t.path_and_query, "/provisioning");
        let t = Target::parse("https://cusax.example.org").expect("ok");
        assert_eq!((t.port, t.path_and_query.as_str()), (443, "/provisioning"));
        assert_eq!(t.url, "https://cusax.example.org/provisioning");
        let t = Target::parse("http://127.0.0.1:8080/p?format=json").expect("loopback");
        assert_eq!((t.tls, t.port), (false, 8080));
        assert_eq!(t.path_and_query, "/p?format=json");
        let t = Target::parse("http://[::1]:8080/provisioning").expect("loopback v6");
        assert_eq!(
            (t.host.as_str(), t.authority.as_str()),
            ("::1", "[::1]:8080")
        );
        assert!(Target::parse("http://localhost/provisioning").is_ok());
        for bad in [
            "http://cusax.example.org/provisioning",
            "http://192.0.2.1/provisioning",
            "ftp://cusax.example.org/",
            "cusax.example.org",
            "https://alice:pw@cusax.example.org/",
            "https:///provisioning",
            "",
        ] {
            assert!(
                matches!(
                    Target::parse(bad),
                    Err(SetupError::Url(_) | SetupError::Host(_))
                ),
                "{bad}"
            );
        }
    }

    /// A one-shot HTTP server on loopback (plain http is allowed there) answering `response`.
    async fn serve_once(response: Vec<u8>) -> (String, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            // The client may close before it has read everything (size limit).
            let _ = s.write_all(&response).await;
            let _ = s.shutdown().await;
            String::from_utf8_lossy(&req).into_owned()
        });
        (format!("http://{addr}/provisioning"), task)
    }

    fn response(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
        let mut r = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
        for h in headers {
            r.push_str(h);
            r.push_str("\r\n");
        }
        r.push_str("\r\n");
        let mut r = r.into_bytes();
        r.extend_from_slice(body);
        r
    }

    async fn try_provision(resp: Vec<u8>) -> (Result<ServiceAccount, SetupError>, String) {
        let (url, task) = serve_once(resp).await;
        let r = provision(&url, "alice@localhost", "s3cret", &TrustConfig::default()).await;
        (r, task.await.expect("server task"))
    }

    #[tokio::test]
    async fn http_answers_map_to_errors() {
        let json = ["Content-Type: application/json"];
        let (r, req) = try_provision(response("200 OK", &json, DOC.as_bytes())).await;
        let a = r.expect("provisioned");
        assert_eq!(a.password.as_deref(), Some("s3cret"));
        assert!(
            matches!(a.source, SetupSource::Provisioning { ref url } if url.ends_with("/provisioning"))
        );
        assert!(req.starts_with("GET /provisioning HTTP/1.1\r\n"), "{req}");
        // base64("alice@localhost:s3cret")
        assert!(
            req.contains("authorization: Basic YWxpY2VAbG9jYWxob3N0OnMzY3JldA==\r\n"),
            "{req}"
        );

        let (r, _) = try_provision(response(
            "401 Unauthorized",
            &["WWW-Authenticate: Basic realm=\"x\""],
            b"wrong user or password\n",
        ))
        .await;
        assert!(matches!(r, Err(SetupError::Unauthorized)), "{r:?}");
        let (r, _) = try_provision(response("403 Forbidden", &[], b"account locked\n")).await;
        assert!(
            matches!(r, Err(SetupError::Forbidden(ref m)) if m == "account locked"),
            "{r:?}"
        );
        let (r, _) =
            try_provision(response("429 Too Many Requests", &["Retry-After: 42"], b"")).await;
        assert!(
            matches!(
                r,
                Err(SetupError::RateLimited {
                    retry_after_secs: Some(42)
                })
            ),
            "{r:?}"
        );
        let (r, _) = try_provision(response("500 Internal Server Error", &[], b"oops")).await;
        assert!(
            matches!(r, Err(SetupError::Status { status: 500, .. })),
            "{r:?}"
        );
        let (r, _) = try_provision(response(
            "200 OK",
            &["Content-Type: text/html"],
            b"<html>portal</html>",
        ))
        .await;
        assert!(matches!(r, Err(SetupError::NotJson(_))), "{r:?}");
    }

    #[tokio::test]
    async fn large_bodies_are_refused() {
        let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        let json = ["Content-Type: application/json"];
        let (r, _) = try_provision(response("200 OK", &json, &big)).await;
        assert!(matches!(r, Err(SetupError::TooLarge { .. })), "{r:?}");
        // Without Content-Length (read until close): the limit still holds.
        let mut chunked =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                .to_vec();
        chunked.extend_from_slice(&big);
        let (r, _) = try_provision(chunked).await;
        assert!(matches!(r, Err(SetupError::TooLarge { .. })), "{r:?}");
    }

    #[tokio::test]
    async fn plain_http_to_a_remote_host_is_refused_before_connecting() {
        let r = provision(
            "http://cusax.example.org/provisioning",
            "alice@example.org",
            "pw",
            &TrustConfig::default(),
        )
        .await;
        assert!(
            matches!(r, Err(SetupError::Url(ref m)) if m.contains("https")),
            "{r:?}"
        );
    }
}
