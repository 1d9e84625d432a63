//! RFC 7081 §2 and §6 (services 1, 2, 5): online provisioning of both accounts from one login.
//!
//! `GET /provisioning` with HTTP Basic credentials (or `user`/`pass` query parameters, the way
//! Jitsi Desktop's provisioning URL template sends them), or `POST` with a form, returns the SIP
//! account, the XMPP account, their CUSAX relationship and the feature switches. Formats: JSON
//! (schema version 1, documented in `docs/provisioning.md`) and `?format=jitsi`, a Java
//! properties file with the account properties Jitsi Desktop reads.

use crate::{FailureLimiter, Peer};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine;
use cusax_account::verify::password_matches;
use cusax_account::{AccountId, Password, ScramHash};
use cusax_store::AccountStore;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The schema version of the JSON document.
pub const SCHEMA_VERSION: u32 = 1;

/// Where clients reach the SIP service.
#[derive(Debug, Clone, Serialize)]
pub struct SipEndpoint {
    /// Registrar and outbound proxy port.
    pub port: u16,
    /// Transports offered, preferred first (`udp`, `tcp`, `tls`).
    pub transports: Vec<String>,
    /// Port of SIP over TLS (`sips:`, `transport=tls`), when offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_port: Option<u16>,
}

/// Where clients reach the XMPP service.
#[derive(Debug, Clone, Serialize)]
pub struct XmppEndpoint {
    /// Client-to-server port (STARTTLS).
    pub port: u16,
    /// Direct-TLS port (XEP-0368), if enabled.
    pub direct_tls_port: Option<u16>,
    /// Whether the server requires STARTTLS.
    pub starttls_required: bool,
}

/// What the service looks like from outside, fixed once the listeners are bound.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// The host name clients connect to (certificate subject).
    pub host: String,
    /// SIP endpoint, when the SIP service runs.
    pub sip: Option<SipEndpoint>,
    /// XMPP endpoint, when the XMPP service runs.
    pub xmpp: Option<XmppEndpoint>,
    /// This HTTPS service's port (for the re-provisioning URL).
    pub https_port: u16,
    /// Echo the password in the answer (only for clients that cannot prompt; off by default).
    pub include_password: bool,
}

/// Shared state of the provisioning handlers.
#[derive(Clone)]
pub struct ProvisioningState {
    store: Arc<dyn AccountStore>,
    info: Arc<ServiceInfo>,
    limiter: Arc<Mutex<FailureLimiter>>,
}

impl std::fmt::Debug for ProvisioningState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningState")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl ProvisioningState {
    /// Builds the state: 10 failed logins per address per minute are allowed, then 429.
    pub fn new(store: Arc<dyn AccountStore>, info: ServiceInfo) -> Self {
        let limiter = FailureLimiter::new(10, std::time::Duration::from_secs(60), 65_536);
        Self {
            store,
            info: Arc::new(info),
            limiter: Arc::new(Mutex::new(limiter)),
        }
    }
}

/// The routes of this module.
pub fn routes(state: ProvisioningState) -> Router {
    Router::new()
        .route(
            "/provisioning",
            get(get_provisioning).post(post_provisioning),
        )
        .with_state(state)
}

#[derive(Debug, Deserialize, Default)]
struct Params {
    format: Option<String>,
    #[serde(alias = "username")]
    user: Option<String>,
    #[serde(alias = "password")]
    pass: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(alias = "username")]
    user: String,
    #[serde(alias = "pass")]
    password: String,
}

async fn get_provisioning(
    State(st): State<ProvisioningState>,
    peer: Option<Extension<Peer>>,
    Query(q): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let creds = basic_credentials(&headers).or_else(|| q.user.clone().zip(q.pass.clone()));
    provision(&st, peer.map(|p| p.0), creds, q.format.as_deref()).await
}

async fn post_provisioning(
    State(st): State<ProvisioningState>,
    peer: Option<Extension<Peer>>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let creds = basic_credentials(&headers).or(form.ok().map(|Form(f)| (f.user, f.password)));
    provision(&st, peer.map(|p| p.0), creds, q.format.as_deref()).await
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn unauthorized(msg: &'static str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, msg).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"cusax provisioning\", charset=\"UTF-8\""),
    );
    r
}

async fn provision(
    st: &ProvisioningState,
    peer: Option<Peer>,
    creds: Option<(String, String)>,
    format: Option<&str>,
) -> Response {
    let ip = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0.ip());
    let wait = st
        .limiter
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .blocked_for(ip, Instant::now());
    if let Some(wait) = wait {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins; try again later\n",
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let Some((user, pass)) = creds else {
        return unauthorized("credentials required\n");
    };
    let fail = |reason: &'static str| {
        st.limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .failed(ip, Instant::now());
        tracing::info!(protocol = "https", account = %user, peer = %ip, reason, "provisioning authentication failed");
        metrics::counter!("cusax_auth_failures_total", "protocol" => "https").increment(1);
        unauthorized("wrong user or password\n")
    };
    let Ok(id) = AccountId::parse(&user) else {
        return fail("invalid address");
    };
    let record = match st.store.account(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return fail("unknown account"),
        Err(e) => {
            tracing::error!(error = %e, "store failed during provisioning");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "account store unavailable\n",
            )
                .into_response();
        }
    };
    let Some(verifier) = record.credentials.scram(ScramHash::Sha256).cloned() else {
        return fail("no verifier");
    };
    let password = Password::new(pass);
    // PBKDF2 is deliberately slow: keep it off the async workers.
    let pw = password.clone();
    let ok = tokio::task::spawn_blocking(move || password_matches(&verifier, &pw))
        .await
        .unwrap_or(false);
    if !ok {
        return fail("wrong password");
    }
    if record.locked {
        tracing::info!(protocol = "https", account = %id, peer = %ip, "provisioning refused: account locked");
        return (StatusCode::FORBIDDEN, "account locked\n").into_response();
    }
    st.limiter
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .succeeded(ip);
    tracing::info!(protocol = "https", account = %id, peer = %ip, "provisioning authentication succeeded");
    let doc = Document::new(
        &id,
        &st.info,
        st.info.include_password.then(|| password_text(&password)),
    );
    let mut resp = match format {
        Some("jitsi") => (StatusCode::OK, doc.jitsi_properties()).into_response(),
        None | Some("json") => axum::Json(doc).into_response(),
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "unknown format; use json or jitsi\n",
            )
                .into_response();
        }
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn password_text(p: &Password) -> String {
    String::from_utf8_lossy(p.as_bytes()).into_owned()
}

/// The JSON provisioning document, schema version 1.
#[derive(Debug, Serialize)]
pub struct Document {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub version: u32,
    /// The service account, `user@domain`.
    pub account: String,
    /// The SIP account (calls only).
    pub sip: Option<SipAccount>,
    /// The XMPP account (chat, presence, contacts).
    pub xmpp: Option<XmppAccount>,
    /// The CUSAX relationship between the two (RFC 7081 §3.4).
    pub cusax: Relationship,
    /// Where to fetch this document again (RFC 7081 §2; clients re-provision on start).
    pub reprovision_url: String,
    /// The password, only when the operator enabled echoing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The SIP half of a provisioned account.
#[derive(Debug, Serialize)]
pub struct SipAccount {
    /// Address of record.
    pub aor: String,
    /// Digest username.
    pub username: String,
    /// Digest realm.
    pub realm: String,
    /// Registrar host.
    pub registrar: String,
    /// Outbound proxy host (the same server).
    pub proxy: String,
    /// Port and transports.
    #[serde(flatten)]
    pub endpoint: SipEndpoint,
    /// SIMPLE presence over SIP: off, XMPP does presence (RFC 7081 §2).
    pub presence_enabled: bool,
    /// SIP MESSAGE: off, XMPP does IM.
    pub messaging_enabled: bool,
}

/// The XMPP half of a provisioned account.
#[derive(Debug, Serialize)]
pub struct XmppAccount {
    /// Bare JID.
    pub jid: String,
    /// Server host.
    pub host: String,
    /// Ports and TLS policy.
    #[serde(flatten)]
    pub endpoint: XmppEndpoint,
    /// Audio/video over XMPP (Jingle RTP): off, SIP does calls (RFC 7081 §2).
    pub calling_enabled: bool,
}

/// The link between the two accounts.
#[derive(Debug, Serialize)]
pub struct Relationship {
    /// The linked SIP AOR.
    pub sip: String,
    /// The linked XMPP JID.
    pub xmpp: String,
}

impl Document {
    fn new(id: &AccountId, info: &ServiceInfo, password: Option<String>) -> Self {
        let host = info.host.clone();
        Self {
            version: SCHEMA_VERSION,
            account: id.to_string(),
            sip: info.sip.clone().map(|endpoint| SipAccount {
                aor: id.aor().to_string(),
                username: id.user().to_owned(),
                realm: id.domain().to_string(),
                registrar: host.clone(),
                proxy: host.clone(),
                endpoint,
                presence_enabled: false,
                messaging_enabled: false,
            }),
            xmpp: info.xmpp.clone().map(|endpoint| XmppAccount {
                jid: id.bare_jid().to_string(),
                host: host.clone(),
                endpoint,
                calling_enabled: false,
            }),
            cusax: Relationship {
                sip: id.aor().to_string(),
                xmpp: id.bare_jid().to_string(),
            },
            reprovision_url: format!("https://{host}:{}/provisioning", info.https_port),
            password,
        }
    }

    /// The Jitsi Desktop properties file for the same accounts.
    pub fn jitsi_properties(&self) -> String {
        const SIP: &str = "net.java.sip.communicator.impl.protocol.sip.acccusaxsip";
        const JAB: &str = "net.java.sip.communicator.impl.protocol.jabber.acccusaxxmpp";
        let mut out = String::from("# cusax provisioning for Jitsi Desktop\n");
        let mut put = |k: &str, v: &str| {
            let _ = writeln!(out, "{k}={}", escape_property(v));
        };
        let jabber_uid = format!("Jabber:{}", self.account);
        if let Some(s) = &self.sip {
            let transport = s
                .endpoint
                .transports
                .first()
                .map_or("UDP".to_owned(), |t| t.to_uppercase());
            let port = s.endpoint.port.to_string();
            put(SIP, "acccusaxsip");
            put(
                &format!("{SIP}.ACCOUNT_UID"),
                &format!("SIP:{}", self.account),
            );
            put(&format!("{SIP}.PROTOCOL_NAME"), "SIP");
            put(&format!("{SIP}.USER_ID"), &self.account);
            put(&format!("{SIP}.SERVER_ADDRESS"), &s.registrar);
            put(&format!("{SIP}.SERVER_PORT"), &port);
            put(&format!("{SIP}.PROXY_ADDRESS"), &s.proxy);
            put(&format!("{SIP}.PROXY_PORT"), &port);
            put(&format!("{SIP}.PROXY_AUTO_CONFIG"), "false");
            put(&format!("{SIP}.PREFERRED_TRANSPORT"), &transport);
            put(&format!("{SIP}.IS_PRESENCE_ENABLED"), "false");
            put(&format!("{SIP}.XCAP_ENABLE"), "false");
            put(&format!("{SIP}.cusax.XMPP_ACCOUNT_ID"), &jabber_uid);
            if let Some(p) = &self.password {
                put(&format!("{SIP}.PASSWORD"), p);
            }
        }
        if let Some(x) = &self.xmpp {
            put(JAB, "acccusaxxmpp");
            put(&format!("{JAB}.ACCOUNT_UID"), &jabber_uid);
            put(&format!("{JAB}.PROTOCOL_NAME"), "Jabber");
            put(&format!("{JAB}.USER_ID"), &x.jid);
            put(&format!("{JAB}.SERVER_ADDRESS"), &x.host);
            put(&format!("{JAB}.SERVER_PORT"), &x.endpoint.port.to_string());
            put(&format!("{JAB}.IS_SERVER_OVERRIDDEN"), "true");
            put(&format!("{JAB}.CALLING_DISABLED"), "true");
            put(&format!("{JAB}.ALLOW_NON_SECURE"), "false");
            put(&format!("{JAB}.RESOURCE"), "cusax");
            if let Some(p) = &self.password {
                put(&format!("{JAB}.PASSWORD"), p);
            }
        }
        put(
            "net.java.sip.communicator.plugin.provisioning.METHOD",
            "Manual",
        );
        put(
            "net.java.sip.communicator.plugin.provisioning.URL",
            &self.reprovision_url,
        );
        out
    }
}

/// Java properties value escaping: backslash, line breaks and a leading space.
fn escape_property(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ' ' if i == 0 => out.push_str("\\ "),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_escape_what_java_needs() {
        assert_eq!(escape_property(" a\\b\nc"), "\\ a\\\\b\\nc");
    }
}
