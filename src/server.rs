//! Assembles the gateway: upstream client, the CloudTrail service behind its tower layers, health and
//! reflection, and a graceful shutdown.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc};

use tokio::net::TcpListener;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming};

use crate::{
    api::Gateway,
    auth::{AuthSetupError, Authenticator, TlsConfig},
    config::{Config, UpstreamKind},
    limits::Limiter,
    local::{LocalCloudTrail, events::LoadError},
    middleware::auth::AuthLayer,
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
    #[error("authentication setup failed: {0}")]
    Auth(#[from] AuthSetupError),
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot load CloudTrail logs: {0}")]
    LoadLogs(#[from] LoadError),
    #[error(transparent)]
    Upstream(#[from] upstream::UpstreamError),
    #[error("cannot set up rate limits: {0}")]
    Limits(#[from] redis::RedisError),
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
    let upstream = upstream::connect(&config.upstream, &local).await?;
    let limiter = Arc::new(Limiter::new(
        config.limits.clone(),
        &upstream.account,
        &upstream.region,
    )?);
    let auth = Arc::new(Authenticator::new(&config.auth).await?);
    let _jwks_refresher = auth.jwt().map(|jwt| AbortOnDrop(jwt.spawn_refresher()));
    let addr = listener.local_addr().ok();
    if !config.auth.is_enabled() && addr.is_some_and(|a| !a.ip().is_loopback()) {
        tracing::warn!(
            listen = ?addr,
            "serving WITHOUT authentication on a non-loopback address (--insecure-no-auth): anyone who can connect may delete trails"
        );
    }
    let gateway = CloudTrailServiceServer::new(Gateway::new(upstream.client.clone(), limiter));

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

    tracing::info!(
        listen = ?addr,
        upstream = ?config.upstream.kind,
        account = %upstream.account,
        region = %upstream.region,
        redis = config.limits.redis_url.is_some(),
        endpoint = config.upstream.endpoint_url.as_deref().unwrap_or("(default)"),
        tls = config.auth.tls.is_some(),
        authentication = config.auth.is_enabled(),
        "cloudtrail-gateway serving"
    );
    let mut builder = Server::builder();
    if let Some(tls) = &config.auth.tls {
        builder = builder.tls_config(tls_config(tls)?)?;
    }
    // The tower layers wrap the routes here, outermost first: authentication before anything else.
    builder
        .layer(AuthLayer::new(auth))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(gateway)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    tracing::info!("cloudtrail-gateway stopped");
    Ok(())
}

fn read(path: &PathBuf) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|source| StartError::ReadFile {
        path: path.clone(),
        source,
    })
}

/// Server TLS (rustls on aws-lc, the SDK's crypto provider); a client CA makes client certificates
/// required.
fn tls_config(tls: &TlsConfig) -> Result<ServerTlsConfig, StartError> {
    let mut config =
        ServerTlsConfig::new().identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?));
    if let Some(ca) = &tls.client_ca {
        config = config.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(config)
}

/// Stops a background task when the server stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
