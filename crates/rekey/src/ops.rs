//! The operations endpoints: `/metrics` (Prometheus text format; names in docs/metrics.md),
//! `/healthz` (the process answers) and `/readyz` (the store and at least one DC answer), on
//! `[server] ops_listen` or, without it, on the portal's own listener.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rekey_directory::ActiveDirectory;
use rekey_store::SqlStore;

/// How long `/readyz` waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// LDAP latency buckets (seconds): a bind or modify on a LAN DC is milliseconds, a busy one
/// seconds.
const LDAP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
];

/// The process-wide Prometheus recorder, installed on first use. `None` when another recorder
/// was installed first (then `/metrics` says so instead of serving nothing silently).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("rekey_ldap_operation_duration_seconds".into()),
                    LDAP_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    metrics::gauge!("rekey_build_info", "version" => env!("CARGO_PKG_VERSION"))
                        .set(1.0);
                    Some(handle)
                }
                Err(e) => {
                    tracing::error!(error = %e, "metrics recorder not installed; /metrics is off");
                    None
                }
            }
        })
        .clone()
}

#[derive(Clone)]
struct Ops {
    engine: rekey_core::engine::Engine,
    store: Arc<SqlStore>,
    directory: Arc<ActiveDirectory>,
    handle: Option<PrometheusHandle>,
}

/// The three endpoints over the portal's engine, store and directory.
pub fn router(built: &crate::portal::Built) -> Router {
    let state = Ops {
        engine: built.engine.clone(),
        store: built.store.clone(),
        directory: built.directory.clone(),
        handle: metrics_handle(),
    };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

async fn metrics(State(ops): State<Ops>) -> axum::response::Response {
    let Some(handle) = ops.handle else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed in this process\n",
        )
            .into_response();
    };
    #[allow(clippy::cast_precision_loss)]
    if let Ok(Ok(n)) = tokio::time::timeout(READY_TIMEOUT, ops.store.outbox_pending()).await {
        metrics::gauge!("rekey_outbox_pending").set(n as f64);
    }
    if let Ok(Ok(Some(n))) = tokio::time::timeout(READY_TIMEOUT, ops.engine.sms_budget_left()).await
    {
        metrics::gauge!("rekey_sms_budget_remaining").set(f64::from(n));
    }
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// 200 when the store and at least one DC answer, else 503 naming what did not (no detail
/// that helps an attacker: the log has the error).
async fn ready(State(ops): State<Ops>) -> (StatusCode, String) {
    let store = tokio::time::timeout(READY_TIMEOUT, ops.store.ping()).await;
    let dc = tokio::time::timeout(READY_TIMEOUT, ops.directory.ping()).await;
    let mut missing = Vec::new();
    if !matches!(store, Ok(Ok(()))) {
        tracing::warn!(result = ?store.map(|r| r.map_err(|e| e.to_string())), "readyz: store not responding");
        missing.push("store");
    }
    if !matches!(dc, Ok(Ok(()))) {
        tracing::warn!(result = ?dc.map(|r| r.map_err(|e| e.to_string())), "readyz: no DC responding");
        missing.push("directory");
    }
    if missing.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", missing.join(", ")),
        )
    }
}

/// How often every DC is looked at on its own (answering, certificate).
const DC_WATCH_EVERY: Duration = Duration::from_secs(60);

/// Every minute, each configured DC on its own: a rootDSE read (`rekey_dc_up`, also when no
/// request has used it since it went down) and a TLS handshake for its certificate's expiry
/// (`rekey_dc_certificate_expiry_timestamp_seconds`).
pub fn spawn_dc_watch(
    directory: Arc<ActiveDirectory>,
    config: rekey_directory::AdConfig,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DC_WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for (idx, url) in directory.dc_urls().into_iter().enumerate() {
                if let Err(e) = directory.ping_at(idx).await {
                    tracing::warn!(dc = %url, error = %e, "DC not responding");
                }
                if !url.to_ascii_lowercase().starts_with("ldaps:") {
                    continue;
                }
                match rekey_directory::probe::peer_certificate(&config, &url).await {
                    #[allow(clippy::cast_precision_loss)]
                    Ok(cert) => metrics::gauge!(
                        "rekey_dc_certificate_expiry_timestamp_seconds",
                        "dc" => url.clone()
                    )
                    .set(cert.not_after as f64),
                    Err(e) => tracing::warn!(dc = %url, error = %e, "DC certificate not checked"),
                }
            }
        }
    })
}
