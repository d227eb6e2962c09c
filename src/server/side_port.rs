//! The plain-HTTP side port: `/metrics` (Prometheus text), `/healthz` (the process runs), `/readyz`
//! (the gateway serves: upstream reachable, not shutting down).
//!
//! Bounded like the gRPC port, so it cannot take the gateway's file descriptors: at most
//! `metrics_max_connections` open (beyond, a new one is closed at once), one request per connection,
//! its headers within `handshake_timeout` and the whole exchange within three times that. Idle
//! connections held open by the thousand once starved the gRPC listener of descriptors.

use std::{future::Future, sync::Arc, time::Duration};

use axum::{Router, http::StatusCode, routing::get};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::{net::TcpListener, sync::Semaphore};

use super::incoming::{self, Accepting, Refused};
use crate::{health::Health, limits::Limiter};

/// How the side port bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// The time a connection has to send its request headers.
    pub request_timeout: Duration,
}

fn routes(metrics: PrometheusHandle, health: Arc<Health>, limiter: Arc<Limiter>) -> Router {
    Router::new()
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
        )
}

pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    health: Arc<Health>,
    limiter: Arc<Limiter>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = routes(metrics, health, limiter);
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let mut accepting = Accepting::new(listener);
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            tcp = accepting.next() => tcp,
            () = &mut shutdown => return,
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            incoming::refused(Refused::SidePortLimit);
            continue; // dropping it closes it
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.request_timeout)
                .keep_alive(false)
                .serve_connection(TokioIo::new(tcp), service);
            // A reader too slow to take its answer is cut off too.
            let _ = tokio::time::timeout(limits.request_timeout * 3, connection).await;
            drop(place);
        });
    }
}
