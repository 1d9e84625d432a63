//! RFC 7081 §3.2 (one service, run as one): the operator's live view over HTTPS — XMPP sessions
//! and SIP bindings side by side, a way to end them, and Prometheus metrics.
//!
//! `GET /metrics` is open (the Prometheus text format, version 0.0.4). Everything under
//! `/admin/v1/` needs `Authorization: Bearer TOKEN`, the token `cusaxd` keeps in its data
//! directory (`admin.token`, readable by the operator only), compared in constant time.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/v1/sessions` | every XMPP session |
//! | DELETE | `/admin/v1/sessions/{jid}` | ends the sessions of a bare or full JID: `{"ended": n}` |
//! | GET | `/admin/v1/bindings[?aor=sip:…]` | SIP bindings, all or of one AOR |
//! | DELETE | `/admin/v1/bindings/{aor}[?contact=URI]` | removes bindings: `{"removed": n}` |
//! | GET | `/admin/v1/users/{user@domain}` | both sides of one account, and its calls |
//! | PUT | `/admin/v1/users/{user@domain}/password` | `{"password": "…"}`: new SIP and XMPP credentials at once |

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One XMPP client session.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SessionInfo {
    /// The full JID.
    pub jid: String,
    /// Whether the session has sent available presence.
    pub available: bool,
}

/// One SIP binding.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BindingInfo {
    /// The address of record.
    pub aor: String,
    /// The registered contact URI.
    pub contact: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Transport and source address of the REGISTER (the flow).
    pub transport: String,
    /// The flow's remote address, if known.
    pub source: Option<String>,
    /// The device's `+sip.instance`, if any.
    pub instance: Option<String>,
    /// The phone's User-Agent, if it sent one.
    pub user_agent: Option<String>,
}

/// What the admin API reads and changes in the running server.
#[async_trait::async_trait]
pub trait LiveState: Send + Sync {
    /// Sets a new password: both protocols' verifiers are replaced in one store write, and
    /// both halves of the running server pick the change up from the change feed.
    /// `Ok(false)`: no such account.
    async fn set_password(&self, account: &str, password: String) -> Result<bool, String>;
    /// Every XMPP session, or those of one bare JID.
    fn sessions(&self, bare: Option<&str>) -> Vec<SessionInfo>;
    /// Ends the sessions of a bare JID (all resources) or of a full JID; returns how many.
    fn end_sessions(&self, jid: &str) -> usize;
    /// Every binding, or those of one AOR.
    fn bindings(&self, aor: Option<&str>) -> Vec<BindingInfo>;
    /// Removes the bindings of an AOR (only `contact`, when given); returns how many.
    fn remove_bindings(&self, aor: &str, contact: Option<&str>) -> usize;
    /// Call-IDs of the calls the account is in.
    fn calls(&self, account: &str) -> Vec<String>;
}

/// Renders the metrics in the Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// What the admin and metrics routes need.
#[derive(Clone)]
pub struct AdminState {
    token: Arc<str>,
    live: Arc<dyn LiveState>,
    metrics: MetricsRender,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState").finish_non_exhaustive()
    }
}

impl AdminState {
    /// The bearer token, the live state and the metrics renderer.
    pub fn new(token: &str, live: Arc<dyn LiveState>, metrics: MetricsRender) -> Self {
        Self {
            token: Arc::from(token),
            live,
            metrics,
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(v) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(given) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        else {
            return false;
        };
        let (a, b) = (given.trim().as_bytes(), self.token.as_bytes());
        // Constant time for equal lengths; the length itself is not secret (64 hex digits).
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// The routes: `/metrics` and `/admin/v1/…`.
pub fn routes(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/admin/v1/sessions", get(list_sessions))
        .route(
            "/admin/v1/sessions/{jid}",
            axum::routing::delete(end_sessions),
        )
        .route("/admin/v1/bindings", get(list_bindings))
        .route(
            "/admin/v1/bindings/{aor}",
            axum::routing::delete(remove_bindings),
        )
        .route("/admin/v1/users/{account}", get(user))
        .route(
            "/admin/v1/users/{account}/password",
            axum::routing::put(set_password),
        )
        .with_state(state)
}

async fn metrics(State(st): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        (st.metrics)(),
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"cusaxd admin\"")],
        Json(serde_json::json!({"error": "a valid admin token is required"})),
    )
        .into_response()
}

async fn list_sessions(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if !st.authorized(&headers) {
        return unauthorized();
    }
    Json(st.live.sessions(None)).into_response()
}

async fn end_sessions(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Path(jid): Path<String>,
) -> Response {
    if !st.authorized(&headers) {
        return unauthorized();
    }
    let n = st.live.end_sessions(&jid);
    tracing::info!(jid, ended = n, "admin: XMPP sessions ended");
    Json(serde_json::json!({ "ended": n })).into_response()
}

#[derive(Debug, Deserialize)]
struct AorQuery {
    aor: Option<String>,
}

async fn list_bindings(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<AorQuery>,
) -> Response {
    if !st.authorized(&headers) {
        return unauthorized();
    }
    Json(st.live.bindings(q.aor.as_deref())).into_response()
}

#[derive(Debug, Deserialize)]
struct ContactQuery {
    contact: Option<String>,
}

async fn remove_bindings(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Path(aor): Path<String>,
    Query(q): Query<ContactQuery>,
) -> Response {
    if !st.authorized(&headers) {
        return unauthorized();
    }
    let n = st.live.remove_bindings(&aor, q.contact.as_deref());
    tracing::info!(aor, removed = n, "admin: SIP bindings removed");
    Json(serde_json::json!({ "removed": n })).into_response()
}

#[derive(Debug, Serialize)]
struct UserView {
    account: String,
    xmpp: Vec<SessionInfo>,
    sip: Vec<BindingInfo>,
    calls: Vec<String>,
}

async fn user(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> Response {
    if !st.authorized(&headers) {
        return unauthorized();
    }
    let Ok(id) = cusax_account::AccountId::parse(&account) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "not an account address (user@domain)"})),
        )
            .into_response();
    };
    let view = UserView {
        account: id.to_string(),
        xmpp: st.live.sessions(Some(&id.to_string())),
        sip: st.live.bindings(Some(id.aor().as_str())),
        calls: st.live.calls(&id.to_string()),
    };
    Json(view).into_response()
}

#[derive(Debug, Deserialize)]
struct NewPassword {
    password: String,
}

async fn set_password(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Json(body): Json<NewPassword>,
) -> Response {
    if !st.authorized(&headers) {
        return unauthorized();
    }
    if body.password.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "empty password"})),
        )
            .into_response();
    }
    match st.live.set_password(&account, body.password).await {
        Ok(true) => {
            tracing::info!(account, "admin: password changed (SIP and XMPP)");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "no such account"})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({ "error": e })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use std::sync::Mutex;
    use tower::ServiceExt;

    #[derive(Default)]
    struct Fake {
        ended: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl LiveState for Fake {
        async fn set_password(&self, account: &str, _password: String) -> Result<bool, String> {
            Ok(account == "bob@example.org")
        }
        fn sessions(&self, bare: Option<&str>) -> Vec<SessionInfo> {
            vec![SessionInfo {
                jid: format!("{}/phone", bare.unwrap_or("alice@example.org")),
                available: true,
            }]
        }
        fn end_sessions(&self, jid: &str) -> usize {
            self.ended
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(jid.to_owned());
            1
        }
        fn bindings(&self, _aor: Option<&str>) -> Vec<BindingInfo> {
            Vec::new()
        }
        fn remove_bindings(&self, _aor: &str, _contact: Option<&str>) -> usize {
            2
        }
        fn calls(&self, _account: &str) -> Vec<String> {
            vec!["c1".into()]
        }
    }

    async fn call(app: &Router, method: &str, uri: &str, token: Option<&str>) -> (u16, String) {
        call_with(app, method, uri, token, None).await
    }

    async fn call_with(
        app: &Router,
        method: &str,
        uri: &str,
        token: Option<&str>,
        json: Option<&str>,
    ) -> (u16, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match json {
            Some(j) => {
                req = req.header("content-type", "application/json");
                Body::from(j.to_owned())
            }
            None => Body::empty(),
        };
        let resp = app
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("answer");
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn token_guards_admin_but_not_metrics() {
        let fake = Arc::new(Fake::default());
        let app = routes(AdminState::new(
            "s3cr3t",
            fake.clone(),
            Arc::new(|| "cusax_up 1\n".to_owned()),
        ));
        assert_eq!(
            call(&app, "GET", "/metrics", None).await,
            (200, "cusax_up 1\n".into())
        );
        assert_eq!(call(&app, "GET", "/admin/v1/sessions", None).await.0, 401);
        assert_eq!(
            call(&app, "GET", "/admin/v1/sessions", Some("wrong!"))
                .await
                .0,
            401
        );
        let (s, body) = call(&app, "GET", "/admin/v1/sessions", Some("s3cr3t")).await;
        assert_eq!(s, 200);
        assert!(body.contains("alice@example.org/phone"), "{body}");
        let (s, body) = call(
            &app,
            "DELETE",
            "/admin/v1/sessions/bob@example.org",
            Some("s3cr3t"),
        )
        .await;
        assert_eq!((s, body.as_str()), (200, "{\"ended\":1}"));
        assert_eq!(
            fake.ended.lock().expect("lock").as_slice(),
            ["bob@example.org".to_owned()]
        );
        let (s, body) = call(
            &app,
            "GET",
            "/admin/v1/users/bob@example.org",
            Some("s3cr3t"),
        )
        .await;
        assert_eq!(s, 200);
        assert!(
            body.contains("\"calls\":[\"c1\"]") && body.contains("bob@example.org/phone"),
            "{body}"
        );
        assert_eq!(
            call(
                &app,
                "GET",
                "/admin/v1/users/not-an-account",
                Some("s3cr3t")
            )
            .await
            .0,
            400
        );
        let pw = Some(r#"{"password":"n3w"}"#);
        let url = "/admin/v1/users/bob@example.org/password";
        assert_eq!(call_with(&app, "PUT", url, None, pw).await.0, 401);
        assert_eq!(call_with(&app, "PUT", url, Some("s3cr3t"), pw).await.0, 204);
        let other = "/admin/v1/users/carol@example.org/password";
        assert_eq!(
            call_with(&app, "PUT", other, Some("s3cr3t"), pw).await.0,
            404
        );
        let empty = Some(r#"{"password":""}"#);
        assert_eq!(
            call_with(&app, "PUT", url, Some("s3cr3t"), empty).await.0,
            400
        );
    }
}
