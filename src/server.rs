//! Assembles the gateway: upstream client, the CloudTrail service behind its tower layers, health and
//! reflection, and a graceful shutdown.

use std::{future::Future, net::SocketAddr};

use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};

use crate::{
    api::Gateway,
    config::{Config, UpstreamKind},
    local::{LocalCloudTrail, events::LoadError},
    pb::{self, cloud_trail_service_server::CloudTrailServiceServer},
    upstream,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot load CloudTrail logs: {0}")]
    LoadLogs(#[from] LoadError),
    #[error(transparent)]
    NoRegion(#[from] upstream::NoRegion),
    #[error("reflection descriptors are invalid: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Binds the configured address and serves until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    serve(listener, config, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0 and read the address first).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let local = LocalCloudTrail::new(config.local.clone());
    serve_with(listener, config, local, shutdown).await
}

/// Serves with a given embedded CloudTrail, so several gateways (replicas, Regions) can share one.
pub async fn serve_with(
    listener: TcpListener,
    config: Config,
    local: LocalCloudTrail,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    if config.upstream.kind == UpstreamKind::Local {
        for path in &config.local_load_logs {
            let added = local.load_logs(path)?;
            tracing::info!(path = %path.display(), events = added, "loaded CloudTrail log files");
        }
    }
    let client = upstream::client(&config.upstream, &local).await?;
    let gateway = CloudTrailServiceServer::new(Gateway::new(client));

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<CloudTrailServiceServer<Gateway>>()
        .await;
    // grpcurl asks for reflection v1 first, then v1alpha; some GUIs speak only v1alpha.
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let addr = listener.local_addr().ok();
    tracing::info!(
        listen = ?addr,
        upstream = ?config.upstream.kind,
        region = config.upstream.region.as_deref().unwrap_or("(from AWS config)"),
        endpoint = config.upstream.endpoint_url.as_deref().unwrap_or("(default)"),
        "cloudtrail-gateway serving"
    );
    // The tower layers (auth, limits, metrics) wrap the routes here, outermost first.
    Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(gateway)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    tracing::info!("cloudtrail-gateway stopped");
    Ok(())
}
