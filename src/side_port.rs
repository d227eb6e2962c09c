//! The plain-HTTP side port: `/metrics` (Prometheus text), `/healthz` (the process runs), `/readyz`
//! (the gateway serves: upstream reachable, not shutting down).

use std::{future::Future, sync::Arc};

use axum::{Router, http::StatusCode, routing::get};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::{health::Health, limits::Limiter};

pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    health: Arc<Health>,
    limiter: Arc<Limiter>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let answer = match health.not_ready_because() {
                    // Still serving, but worth knowing: each replica keeps its own share of the quota.
                    None if limiter.in_fallback() => (
                        StatusCode::OK,
                        "ready; rate limits from the local fallback (Redis unreachable or not believed)\n".to_owned(),
                    ),
                    None => (StatusCode::OK, "ready\n".to_owned()),
                    Some(reason) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {reason}\n"),
                    ),
                };
                std::future::ready(answer)
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
