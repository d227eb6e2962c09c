//! The embedded CloudTrail's side of a start (`--upstream local`): faults planned, trails and
//! buckets kept, log files loaded, deliveries on CloudTrail's schedule, the embedded S3's usage in
//! metrics, and optionally its CloudTrail, STS and S3 over plain HTTP for other tools.

use std::{net::SocketAddr, path::PathBuf};

use cloudtrail_local::{LoadError, LocalCloudTrail, StateError};
use tokio::net::TcpListener;

use super::tasks::AbortOnDrop;
use crate::{config::LocalConfig, telemetry};

/// Why the embedded CloudTrail could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot load CloudTrail logs: {0}")]
    LoadLogs(#[from] LoadError),
    #[error("cannot keep the embedded CloudTrail's trails: {0}")]
    State(#[from] StateError),
    #[error("cannot keep the embedded S3 in {dir}: {source}")]
    S3 {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} (--local-http-listen): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Sets the embedded CloudTrail up as configured; the tasks it starts stop when dropped.
pub(super) async fn start(
    config: &LocalConfig,
    local: &LocalCloudTrail,
    account: &str,
) -> Result<Vec<AbortOnDrop>, LocalError> {
    for (operation, count, fault) in &config.faults {
        local.inject(operation.as_deref(), *count, fault.clone());
        tracing::warn!(
            operation = operation.as_deref().unwrap_or("*"),
            count,
            ?fault,
            "embedded CloudTrail: faults planned"
        );
    }
    if let Some(path) = &config.state_file {
        let restored = local.keep_state_in(path)?;
        tracing::info!(path = %path.display(), trails = restored, "embedded CloudTrail: trails kept in a state file");
    }
    if let Some(dir) = &config.s3_dir {
        let objects = local.keep_s3_in(dir).map_err(|source| LocalError::S3 {
            dir: dir.clone(),
            source,
        })?;
        tracing::info!(dir = %dir.display(), objects, "embedded S3: buckets kept in a directory");
    }
    for path in &config.load_logs {
        let added = local.load_logs_into(account, path)?;
        tracing::info!(path = %path.display(), events = added, %account, "loaded CloudTrail log files");
        if let Some(bucket) = &config.load_logs_bucket {
            let files = local.write_logs_to_bucket(account, path, bucket)?;
            tracing::info!(path = %path.display(), %bucket, files, "loaded CloudTrail log files written to the embedded S3");
        }
    }
    let mut tasks = vec![AbortOnDrop(local.spawn_delivery())];
    tasks.push(AbortOnDrop(tokio::spawn(watch_s3(local.clone()))));
    if let Some(addr) = config.http_listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| LocalError::Bind { addr, source })?;
        let bound = listener.local_addr().unwrap_or(addr);
        tracing::info!(listen = %bound, "embedded CloudTrail, STS and S3 over HTTP (--endpoint-url http://{bound})");
        tasks.push(AbortOnDrop(tokio::spawn(serve_http(
            listener,
            local.clone(),
        ))));
    }
    Ok(tasks)
}

/// The embedded S3's bytes held and evictions, as metrics; a warning when files were evicted.
async fn watch_s3(local: LocalCloudTrail) {
    let mut reported = 0;
    loop {
        let (held, evicted) = local.s3_usage();
        metrics::gauge!(telemetry::LOCAL_S3_BYTES).set(held as f64);
        metrics::counter!(telemetry::LOCAL_S3_EVICTED).absolute(evicted);
        if evicted > reported {
            tracing::warn!(
                evicted = evicted - reported,
                held_bytes = held,
                "embedded S3 at its capacity (--local-s3-capacity): the oldest files were evicted"
            );
            reported = evicted;
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

/// The largest request body the HTTP endpoint takes (an S3 PutObject).
const MAX_BODY: usize = 64 << 20;

/// Serves the embedded CloudTrail, STS and S3 over HTTP/1.1 on `listener` (for boto3, the AWS CLI,
/// and benchmarks that need a real endpoint) until the task is dropped.
pub async fn serve_http(listener: TcpListener, local: LocalCloudTrail) {
    use axum::{body::Bytes, extract::Request, response::IntoResponse};
    let app = axum::Router::new().fallback(move |request: Request| {
        let local = local.clone();
        async move {
            let (parts, body) = request.into_parts();
            let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
                return http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
            };
            let body: Bytes = body;
            let request = http::Request::from_parts(parts, body.to_vec());
            match local.serve_http(request).await {
                Ok(response) => response.map(axum::body::Body::from).into_response(),
                // An injected reset: no answer.
                Err(_) => http::StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    });
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "embedded CloudTrail's HTTP endpoint stopped");
    }
}

/// The address an HTTP endpoint of the embedded CloudTrail serves on, for tests and benchmarks.
pub async fn spawn_http(local: LocalCloudTrail) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve_http(listener, local));
    Ok(addr)
}
