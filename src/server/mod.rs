//! Assembles the gateway: upstream clients, limiter, authentication, the CloudTrail service behind
//! its tower layers, health and reflection, the HTTP side port, and a graceful shutdown.
//! Connections are accepted by `incoming` (bounded, timed handshakes) and secured by `tls`.

pub mod fds;
pub mod incoming;
pub mod local;
pub mod side_port;
mod store;
mod tasks;
pub mod tls;

use std::{future::Future, net::SocketAddr, sync::Arc};

use cloudtrail_local::LocalCloudTrail;
use tasks::AbortOnDrop;
use tokio::{net::TcpListener, sync::oneshot};
use tonic::transport::Server;
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};

use crate::{
    api::{self, Gateway},
    auth::{AuthSetupError, Authenticator},
    config::{Config, UpstreamKind},
    health::Health,
    idempotency::Idempotency,
    limits::{self, Limiter},
    middleware::{self, trace},
    pb::{self, cloud_trail_service_server::CloudTrailServiceServer},
    telemetry, upstream,
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
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Local(#[from] local::LocalError),
    #[error(transparent)]
    Upstream(#[from] upstream::ConnectError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot set up rate limits: {0}")]
    Limits(#[from] redis::RedisError),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    #[error("reflection descriptors are invalid: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Where the gateway listens: gRPC, and optionally the plain-HTTP side port.
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(grpc: TcpListener) -> Self {
        Listeners { grpc, http: None }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Binds the configured addresses and serves until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let listeners = Listeners {
        grpc: bind(config.server.listen).await?,
        http: Some(bind(config.server.metrics_listen).await?),
    };
    let local = LocalCloudTrail::new(config.local.options.clone());
    serve_with(listeners, config, local, shutdown).await
}

/// Serves with a given embedded CloudTrail, so several gateways (replicas, Regions) can share one.
pub async fn serve_with(
    listeners: impl Into<Listeners>,
    config: Config,
    local: LocalCloudTrail,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let Listeners {
        grpc: listener,
        http,
    } = listeners.into();
    // One crypto provider for every rustls user (server TLS, Redis TLS, the JWKS fetcher); a second
    // call finds it installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    fds::check(config.server.max_connections + config.server.metrics_max_connections);
    let metrics = telemetry::metrics()?;
    let upstream = upstream::connect(&config.upstream, &config.accounts, &local).await?;
    let default_target = upstream.accounts().default_target().clone();
    let mut background = Vec::new();
    if config.upstream.kind == UpstreamKind::Local {
        background.extend(local::start(&config.local, &local, &default_target.account).await?);
    }
    let (history, store_tasks) = store::start(&config.store, &local).await?;
    background.extend(store_tasks);
    // One Redis for the replicas' shared state: the limiter's slots and the request ids.
    let redis = match &config.limits.redis_url {
        Some(url) => Some(limits::shared::Redis::new(
            url,
            config.limits.redis_ca.as_deref(),
        )?),
        None => None,
    };
    let idempotency = Arc::new(Idempotency::new(
        redis.as_ref().map(limits::shared::Redis::connection),
    ));
    let limiter = Arc::new(Limiter::new(config.limits.clone(), redis));
    let auth = Arc::new(Authenticator::new(&config.auth).await?);
    if let Some(jwt) = auth.jwt() {
        background.push(AbortOnDrop(jwt.spawn_refresher()));
    }
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.server.listen,
        source,
    })?;
    if !config.auth.is_enabled() && !addr.ip().is_loopback() {
        tracing::warn!(
            listen = %addr,
            "serving WITHOUT authentication on a non-loopback address (--insecure-no-auth): anyone who can connect may delete trails"
        );
    }

    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health::new(reporter, auth.jwt().is_none_or(|jwt| jwt.is_loaded())).await;
    if let Some(jwt) = auth.jwt().filter(|jwt| !jwt.is_loaded()) {
        let (jwt, health) = (jwt.clone(), health.clone());
        background.push(AbortOnDrop(tokio::spawn(async move {
            jwt.wait_loaded().await;
            tracing::info!("JWKS loaded");
            health.identities_ready().await;
        })));
    }
    background.push(AbortOnDrop(health.clone().spawn_probes(
        upstream.clone(),
        limiter.clone(),
        config.server.health_probe_interval,
    )));
    let upkeep = metrics.clone();
    background.push(AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    })));
    let (side_port_stop, side_port_stopped) = oneshot::channel::<()>();
    let metrics_addr = http.as_ref().and_then(|l| l.local_addr().ok());
    let side_limits = side_port::Limits {
        max_connections: config.server.metrics_max_connections,
        request_timeout: config.server.handshake_timeout,
    };
    let side_port = http.map(|listener| {
        tokio::spawn(side_port::serve(
            listener,
            metrics,
            health.clone(),
            limiter.clone(),
            side_limits,
            async {
                let _ = side_port_stopped.await;
            },
        ))
    });

    let settings = api::Settings {
        request_timeout: config.server.request_timeout,
        audit_reads: config.accounts.audit_reads,
        caches: config.caches.clone(),
        trail_home_ttl: config.accounts.trail_home_ttl,
        streams: config.streams.clone(),
        history,
    };
    // Streams end with their cursor when the drain starts.
    let (drain_streams, draining_streams) = tokio::sync::watch::channel(false);
    let gateway = CloudTrailServiceServer::new(Gateway::new(
        upstream.clone(),
        limiter,
        auth.policy(),
        idempotency,
        &settings,
        draining_streams,
    ))
    .max_decoding_message_size(config.server.max_message_size)
    .max_encoding_message_size(config.server.max_message_size);
    // grpcurl asks for reflection v1 first, then v1alpha; some GUIs speak only v1alpha. The
    // google.rpc error details are registered too, so clients can decode BadRequest, ErrorInfo...
    let descriptors = [
        pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_types::pb::FILE_DESCRIPTOR_SET,
    ];
    let reflection_v1 = descriptors
        .iter()
        .fold(tonic_reflection::server::Builder::configure(), |b, d| {
            b.register_encoded_file_descriptor_set(d)
        })
        .build_v1()?;
    let reflection_v1alpha = descriptors
        .iter()
        .fold(tonic_reflection::server::Builder::configure(), |b, d| {
            b.register_encoded_file_descriptor_set(d)
        })
        .build_v1alpha()?;

    // Targets are (account, Region) pairs; accounts are told apart.
    let served = upstream.accounts().targets();
    let served_accounts = served
        .iter()
        .map(|t| &t.account)
        .collect::<std::collections::HashSet<_>>()
        .len();
    tracing::info!(
        listen = %addr,
        metrics = %metrics_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()),
        upstream = %config.upstream.kind,
        account = %default_target.account,
        region = %default_target.region,
        accounts = served_accounts,
        targets = served.len(),
        caller_identity = upstream.uses_sessions() && config.accounts.caller_identity,
        endpoint = config.upstream.endpoint_url.as_deref().unwrap_or("(default)"),
        redis = config.limits.redis_url.is_some(),
        tls = config.auth.tls.is_some(),
        authentication = config.auth.is_enabled(),
        "cloudtrail-gateway serving"
    );
    let builder = Server::builder()
        .http2_keepalive_interval(Some(config.server.keepalive_interval))
        .http2_keepalive_timeout(Some(config.server.keepalive_timeout))
        .max_connection_age(config.server.max_connection_age);
    let limits = incoming::Limits {
        max_connections: config.server.max_connections,
        handshake_timeout: config.server.handshake_timeout,
    };
    // On the signal: NOT_SERVING first, then tonic stops accepting and lets calls in flight finish.
    let (draining, drain_started) = oneshot::channel::<()>();
    let drain_health = health.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining calls in flight");
        drain_health.drain().await;
        let _ = drain_streams.send(true);
        let _ = draining.send(());
    };
    let stream_limits = middleware::stream_places::StreamLimits {
        max_streams: config.server.max_streaming_calls,
        max_open_streams: config.server.max_open_streams,
        max_streams_per_principal: config.server.max_streams_per_principal,
        authentication: config.auth.is_enabled(),
    };
    // The tower layers wrap the routes, outermost first (see `middleware`): the call's record sees
    // every call, refused ones too; authentication comes before anything that holds a resource (a
    // stream's place, a concurrency permit), so a caller waiting for a JWKS refresh holds neither.
    let layers = ServiceBuilder::new()
        .layer(middleware::observe::layer())
        .map_request(trace::keep_valid_request_id)
        .layer(SetRequestIdLayer::new(
            trace::REQUEST_ID,
            trace::NewRequestId,
        ))
        .layer(PropagateRequestIdLayer::new(trace::REQUEST_ID))
        .layer(trace::layer())
        .layer(middleware::auth::layer(auth.clone()))
        .layer(middleware::stream_places::layer(
            stream_limits,
            auth.policy(),
        ))
        .layer(middleware::shed::layer(
            config.server.max_concurrent_requests,
        ));
    let router = builder
        .layer(layers)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(gateway);
    // Plain and TLS connections are different stream types: one serving future each.
    let serving: std::pin::Pin<
        Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>,
    > = match &config.auth.tls {
        None => Box::pin(router.serve_with_incoming_shutdown(
            incoming::accept(listener, incoming::Plain, limits),
            signal,
        )),
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(tls)?);
            Box::pin(router.serve_with_incoming_shutdown(
                incoming::accept(listener, incoming::Tls(acceptor), limits),
                signal,
            ))
        }
    };
    let drain_timeout = config.server.drain_timeout;
    let outcome = tokio::select! {
        served = serving => served.map_err(StartError::from),
        () = async {
            if drain_started.await.is_ok() {
                tokio::time::sleep(drain_timeout).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(?drain_timeout, "drain timeout: closing the calls still in flight");
            Ok(())
        }
    };
    let _ = side_port_stop.send(());
    if let Some(task) = side_port {
        let _ = task.await;
    }
    tracing::info!("cloudtrail-gateway stopped");
    outcome
}
