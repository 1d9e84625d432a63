//! The client side of `cusaxd`'s admin API (`/admin/v1/…` on the HTTPS port).
//!
//! One request per connection: TCP, then TLS trusting exactly the certificate in the data
//! directory (no system roots, full verification, the name checked is one the certificate is
//! valid for), then HTTP/1.1 with the bearer token from `admin.token`.

use anyhow::{Context, anyhow, bail};
use cusax_server::config::Config;
use cusax_server::datadir::DataDir;
use hyper::body::{Body, Incoming};
use hyper::header::{ACCEPT, AUTHORIZATION, HOST, HeaderValue, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsConnector;

/// Longest wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the whole exchange once connected.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read (a listing of every binding of a big server fits).
const MAX_BODY: usize = 256 << 20;

/// Where and how to reach one server's admin API.
pub struct Endpoint {
    /// `https://host:port`, for messages.
    url: String,
    host: String,
    port: u16,
    /// The `Host` header.
    authority: String,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    token: HeaderValue,
    token_path: PathBuf,
    cert_path: PathBuf,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Splits `https://HOST[:PORT][/]` into host (IPv6 without brackets) and port (443 if absent).
pub fn parse_url(text: &str) -> anyhow::Result<(String, u16)> {
    let bad = || anyhow!("--url {text:?}: expected https://HOST:PORT");
    let uri: Uri = text.trim().parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("https") {
        bail!("--url {text:?}: the admin API is served over HTTPS only (https://HOST:PORT)");
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        bail!("--url {text:?}: give only https://HOST:PORT, without a path");
    }
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.as_str().contains('@') {
        bail!(
            "--url {text:?}: credentials do not belong in the URL (the token comes from the data directory)"
        );
    }
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), authority.port_u16().unwrap_or(443)))
}

/// The address the configuration binds, as a client reaches it: loopback for "every address".
fn configured_host(config: &Config) -> IpAddr {
    match config.server.bind {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect)
        .map_err(|e| {
            anyhow!(
                "cannot read the server certificate {}: {e} (cusaxd makes it at its first start)",
                path.display()
            )
        })?;
    if certs.is_empty() {
        bail!("{}: no certificate in the file", path.display());
    }
    Ok(certs)
}

/// The first candidate name the end-entity certificate is valid for.
fn name_for(
    leaf: &CertificateDer<'_>,
    candidates: &[String],
    cert_path: &Path,
) -> anyhow::Result<ServerName<'static>> {
    let parsed = rustls::server::ParsedCertificate::try_from(leaf)
        .map_err(|e| anyhow!("{}: {e}", cert_path.display()))?;
    for c in candidates {
        if let Ok(name) = ServerName::try_from(c.clone())
            && matches!(name, ServerName::DnsName(_))
            && rustls::client::verify_server_name(&parsed, &name).is_ok()
        {
            return Ok(name);
        }
    }
    bail!(
        "the certificate {} is valid for none of {}",
        cert_path.display(),
        candidates.join(", ")
    )
}

fn read_token(path: &Path) -> anyhow::Result<HeaderValue> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no admin token at {}: cusaxd writes it when it starts; is this its data directory?",
            path.display()
        ),
        Err(e) => bail!("cannot read the admin token {}: {e}", path.display()),
    };
    let token = text.trim();
    if token.is_empty() {
        bail!("the admin token file {} is empty", path.display());
    }
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| anyhow!("{} does not hold an admin token", path.display()))
        .map(|mut v| {
            v.set_sensitive(true);
            v
        })
}

impl Endpoint {
    /// The endpoint of the server that owns `dir`: `--url` or the configured address, the
    /// certificate (`tls.cert` or `tls/<first domain>.crt`) as the only trust anchor, and the
    /// token from `admin.token`.
    pub fn new(dir: &DataDir, config: &Config, url_arg: Option<&str>) -> anyhow::Result<Self> {
        let (host, port) = match url_arg {
            Some(u) => parse_url(u)?,
            None => {
                if config.http.port == 0 {
                    bail!(
                        "http.port is 0 (any free port) in the configuration; pass --url https://HOST:PORT"
                    );
                }
                (configured_host(config).to_string(), config.http.port)
            }
        };
        let authority = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(a)) => format!("[{a}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        let url = format!("https://{authority}");

        let cert_path = match &config.tls.cert {
            Some(p) => dir.resolve(p),
            None => {
                let first = config
                    .server
                    .domains
                    .first()
                    .map_or("localhost", String::as_str);
                dir.tls_dir().join(format!("{first}.crt"))
            }
        };
        let certs = load_certs(&cert_path)?;
        let mut roots = rustls::RootCertStore::empty();
        for c in &certs {
            roots
                .add(c.clone())
                .map_err(|e| anyhow!("{}: not usable as trust anchor: {e}", cert_path.display()))?;
        }
        // The name checked: the URL's host when it is a name, else a served domain.
        let mut candidates: Vec<String> = Vec::new();
        if url_arg.is_some() && host.parse::<IpAddr>().is_err() {
            candidates.push(host.to_ascii_lowercase());
        }
        candidates.extend(config.server.domains.iter().map(|d| d.to_ascii_lowercase()));
        let server_name = match certs.first() {
            Some(leaf) => name_for(leaf, &candidates, &cert_path)?,
            None => bail!("{}: no certificate in the file", cert_path.display()),
        };

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS client configuration")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];

        let token_path = dir.admin_token_path();
        let token = read_token(&token_path)?;
        Ok(Self {
            url,
            host,
            port,
            authority,
            server_name,
            tls: Arc::new(tls),
            token,
            token_path,
            cert_path,
        })
    }

    /// `GET path`: the body of a 2xx answer, or a one-line error.
    pub async fn get(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        self.call(Method::GET, path).await
    }

    /// `DELETE path`: the body of a 2xx answer, or a one-line error.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        self.call(Method::DELETE, path).await
    }

    async fn call(&self, method: Method, path: &str) -> anyhow::Result<Vec<u8>> {
        let (status, body) = self.exchange(method, path).await?;
        if status.is_success() {
            return Ok(body);
        }
        if status == StatusCode::UNAUTHORIZED {
            bail!(
                "cusaxd on {} refused the admin token from {} (401 Unauthorized); is this the data directory of the server at that address?",
                self.url,
                self.token_path.display()
            );
        }
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&body);
                crate::live::clean(text.lines().next().unwrap_or_default())
            });
        bail!("cusaxd on {} answered {status}: {detail}", self.url)
    }

    async fn exchange(&self, method: Method, path: &str) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let does_not_answer = || anyhow!("cusaxd does not answer on {}; is it running?", self.url);
        let tcp = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        {
            Err(_) => return Err(does_not_answer()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(does_not_answer());
            }
            Ok(Err(e)) => bail!("cannot connect to {}: {e}", self.url),
            Ok(Ok(s)) => s,
        };
        let _ = tcp.set_nodelay(true);
        tokio::time::timeout(EXCHANGE_TIMEOUT, self.over(tcp, method, path))
            .await
            .map_err(|_| {
                anyhow!(
                    "cusaxd on {} did not answer within {} s",
                    self.url,
                    EXCHANGE_TIMEOUT.as_secs()
                )
            })?
    }

    async fn over(
        &self,
        tcp: tokio::net::TcpStream,
        method: Method,
        path: &str,
    ) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let tls = TlsConnector::from(self.tls.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| {
                anyhow!(
                    "TLS with {} failed: {e} (trusting only {} for {})",
                    self.url,
                    self.cert_path.display(),
                    self.server_name.to_str()
                )
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .with_context(|| format!("HTTP with {}", self.url))?;
        let driver = tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.authority)
            .header(AUTHORIZATION, self.token.clone())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("cusaxctl/", env!("CARGO_PKG_VERSION")))
            .body(String::new())
            .context("building the request")?;
        let result = async {
            let resp = sender
                .send_request(req)
                .await
                .with_context(|| format!("HTTP with {}", self.url))?;
            let status = resp.status();
            let body = read_body(resp.into_body()).await?;
            Ok((status, body))
        }
        .await;
        driver.abort();
        result
    }
}

async fn read_body(mut body: Incoming) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.context("reading the answer")?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_BODY {
                bail!("the answer is larger than {} MiB", MAX_BODY >> 20);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Percent-encodes one path segment or query value: everything but RFC 3986 unreserved
/// characters, so `/`, `?`, `+`, `;` and `@` reach the server as data.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://127.0.0.1:5280").expect("ip"),
            ("127.0.0.1".to_owned(), 5280)
        );
        assert_eq!(
            parse_url("https://[::1]:8443/").expect("ipv6"),
            ("::1".to_owned(), 8443)
        );
        assert_eq!(
            parse_url("https://cusax.example.org").expect("name"),
            ("cusax.example.org".to_owned(), 443)
        );
        for bad in [
            "http://127.0.0.1:5280",
            "127.0.0.1:5280",
            "https://h:1/admin",
            "https://u:p@h:1",
            "",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoding_keeps_only_unreserved() {
        assert_eq!(encode("sip:alice@example.org"), "sip%3Aalice%40example.org");
        assert_eq!(encode("a@b/phone 1+x"), "a%40b%2Fphone%201%2Bx");
        assert_eq!(encode("ä"), "%C3%A4");
    }
}
