//! RFC 7081 §3.2: one service for the operator — the admin API's view of the running SIP and
//! XMPP halves, and the Prometheus recorder with the gauges read at scrape time.

use crate::changes::Poke;
use crate::sip::SipContext;
use cusax_http::{BindingInfo, LiveState, MetricsRender, SessionInfo};
use cusax_xmpp::XmppService;
use cusax_xmpp_proto::stream::{StreamError, StreamErrorCondition};
use std::sync::{Arc, OnceLock};

/// The running services as the admin API sees them.
pub(crate) struct Live {
    pub(crate) sip: Arc<SipContext>,
    pub(crate) xmpp: XmppService,
    pub(crate) store: Arc<dyn cusax_store::ServerStore>,
    pub(crate) scram_iterations: u32,
    /// Wakes the change log's publisher, so that the new password reaches SIP and XMPP
    /// through the bus at once.
    pub(crate) poke: Poke,
}

#[async_trait::async_trait]
impl LiveState for Live {
    async fn set_password(&self, account: &str, password: String) -> Result<bool, String> {
        let Ok(id) = cusax_account::AccountId::parse(account) else {
            return Ok(false);
        };
        if self
            .store
            .account(&id)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Ok(false);
        }
        let iterations = self.scram_iterations;
        let for_derive = id.clone();
        // PBKDF2 is CPU work: off the async workers.
        let creds = tokio::task::spawn_blocking(move || {
            cusax_account::Credentials::derive(
                &for_derive,
                &cusax_account::Password::new(&password),
                &[],
                iterations,
            )
        })
        .await
        .map_err(|e| e.to_string())?;
        self.store
            .set_credentials(&id, &creds)
            .await
            .map_err(|e| e.to_string())?;
        self.poke.poke();
        Ok(true)
    }

    fn sessions(&self, bare: Option<&str>) -> Vec<SessionInfo> {
        let mut v: Vec<SessionInfo> = self
            .xmpp
            .router()
            .list()
            .into_iter()
            .filter(|(b, _, _)| bare.is_none_or(|want| want.eq_ignore_ascii_case(b)))
            .map(|(b, r, available)| SessionInfo {
                jid: format!("{b}/{r}"),
                available,
            })
            .collect();
        v.sort_by(|a, b| a.jid.cmp(&b.jid));
        v
    }

    fn end_sessions(&self, jid: &str) -> usize {
        let router = self.xmpp.router();
        let reason = StreamError::with_text(
            StreamErrorCondition::PolicyViolation,
            "ended by the operator",
        );
        match jid.split_once('/') {
            Some((bare, resource)) => match router.session(bare, resource) {
                Some(s) => {
                    s.kill(reason);
                    1
                }
                None => 0,
            },
            None => router.kill_user(jid, &reason),
        }
    }

    fn bindings(&self, aor: Option<&str>) -> Vec<BindingInfo> {
        let now = cusax_store::unix_now();
        let location = self.sip.core.location();
        let list = match aor.map(cusax_account::Aor::parse) {
            Some(Ok(a)) => location.bindings(&a),
            Some(Err(_)) => Vec::new(),
            None => location.all(),
        };
        let mut v: Vec<BindingInfo> = list
            .into_iter()
            .filter(|b| b.expires_at > now)
            .map(|b| BindingInfo {
                aor: b.aor.to_string(),
                contact: b.contact,
                expires_in: b.expires_at - now,
                transport: b.transport,
                source: b.source.map(|s| s.to_string()),
                instance: b.instance,
                user_agent: b.user_agent,
            })
            .collect();
        v.sort_by(|a, b| (&a.aor, &a.contact).cmp(&(&b.aor, &b.contact)));
        v
    }

    fn remove_bindings(&self, aor: &str, contact: Option<&str>) -> usize {
        match cusax_account::Aor::parse(aor) {
            Ok(a) => self.sip.core.location().remove(&a, contact),
            Err(_) => 0,
        }
    }

    fn calls(&self, account: &str) -> Vec<String> {
        self.sip
            .core
            .calls()
            .snapshot()
            .into_iter()
            .filter(|(_, who)| who.iter().any(|a| a.to_string() == account))
            .map(|(id, _)| id)
            .collect()
    }
}

/// The process-wide Prometheus recorder (installed once; later servers in the same process
/// share it).
fn recorder() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Installs the recorder and returns the `/metrics` renderer, which first sets the gauges
/// that are cheaper to read than to maintain (bindings, calls, sessions).
pub(crate) fn metrics(live: Arc<Live>) -> MetricsRender {
    let handle = recorder();
    Arc::new(move || {
        metrics::gauge!("cusax_sip_bindings").set(live.sip.core.location().len() as f64);
        metrics::gauge!("cusax_sip_calls_active").set(live.sip.core.calls().active() as f64);
        let (servers, clients) = live.sip.core.transaction_counts();
        metrics::gauge!("cusax_sip_transactions", "side" => "server").set(servers as f64);
        metrics::gauge!("cusax_sip_transactions", "side" => "client").set(clients as f64);
        metrics::gauge!("cusax_xmpp_sessions").set(live.xmpp.router().count() as f64);
        match handle {
            Some(h) => h.render(),
            None => "# metrics recorder unavailable\n".to_owned(),
        }
    })
}
