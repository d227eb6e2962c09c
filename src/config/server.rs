//! How the gateway serves: addresses, logs, health, shutdown and protections.

use std::{net::SocketAddr, time::Duration};

use clap::Args;

use super::{
    checks::{ConfigError, at_least_one, positive, url},
    duration::HumanDuration,
};
use crate::telemetry::LogFormat;

#[derive(Debug, Args)]
pub struct ServerSettings {
    /// gRPC listen address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Metrics and probes over plain HTTP (/metrics, /healthz, /readyz); not 9090, Prometheus's own.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9469")]
    pub metrics_listen: SocketAddr,
    /// Log lines as human text or JSON.
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Export trace spans over OTLP/gRPC to this collector (e.g. http://otel-collector:4317); off when unset.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub otlp_endpoint: Option<String>,
    /// How often the upstream is probed for health.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub health_probe_interval: HumanDuration,
    /// On SIGTERM/SIGINT, how long calls in flight may still finish.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub drain_timeout: HumanDuration,
    /// Calls in the gateway at once; beyond, RESOURCE_EXHAUSTED at once.
    #[arg(long, value_name = "N", default_value = "1024")]
    pub max_concurrent_requests: usize,
    /// Streaming calls (health Watch, reflection, event streams) open at once, each held until its
    /// stream ends; beyond, RESOURCE_EXHAUSTED at once.
    #[arg(long, value_name = "N", default_value = "1000")]
    pub max_streaming_calls: usize,
    /// Of those, streams opened without credentials (health Watch, reflection) open at once.
    #[arg(long, value_name = "N", default_value = "100")]
    pub max_open_streams: usize,
    /// Of those, streams one principal may hold open at once (a role's `max_streams` raises it).
    #[arg(long, value_name = "N", default_value = "100")]
    pub max_streams_per_principal: usize,
    /// Client connections open at once; beyond, a new connection is closed at once.
    #[arg(long, value_name = "N", default_value = "2000")]
    pub max_connections: usize,
    /// Time a new connection has to finish its TLS handshake, send the HTTP/2 preface and open its
    /// first stream (on the side port: to send its request headers).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub handshake_timeout: HumanDuration,
    /// Connections to the side port (metrics_listen) open at once; beyond, closed at once. Each
    /// serves one request and has handshake_timeout to send it.
    #[arg(long, value_name = "N", default_value = "64")]
    pub metrics_max_connections: usize,
    /// Largest request or response message in bytes.
    #[arg(long, value_name = "BYTES", default_value = "4194304")]
    pub max_message_size: usize,
    /// Deadline of calls that set none.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub request_timeout: HumanDuration,
    /// HTTP/2 keepalive ping interval.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub keepalive_interval: HumanDuration,
    /// HTTP/2 keepalive ping timeout.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub keepalive_timeout: HumanDuration,
    /// Connections are closed gracefully after this age, to rebalance.
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub max_connection_age: HumanDuration,
}

/// How the gateway serves, checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
    pub health_probe_interval: Duration,
    pub drain_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_streaming_calls: usize,
    pub max_open_streams: usize,
    pub max_streams_per_principal: usize,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub metrics_max_connections: usize,
    pub max_message_size: usize,
    pub request_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub max_connection_age: Duration,
}

impl ServerSettings {
    pub fn check(self) -> Result<ServerConfig, ConfigError> {
        if let Some(endpoint) = &self.otlp_endpoint {
            url("otlp_endpoint", endpoint, &["http", "https"])?;
        }
        Ok(ServerConfig {
            listen: self.listen,
            metrics_listen: self.metrics_listen,
            log_format: self.log_format,
            otlp_endpoint: self.otlp_endpoint,
            health_probe_interval: positive("health_probe_interval", self.health_probe_interval.0)?,
            drain_timeout: positive("drain_timeout", self.drain_timeout.0)?,
            max_concurrent_requests: at_least_one(
                "max_concurrent_requests",
                self.max_concurrent_requests,
            )?,
            max_streaming_calls: at_least_one("max_streaming_calls", self.max_streaming_calls)?,
            max_open_streams: at_least_one("max_open_streams", self.max_open_streams)?,
            max_streams_per_principal: at_least_one(
                "max_streams_per_principal",
                self.max_streams_per_principal,
            )?,
            max_connections: at_least_one("max_connections", self.max_connections)?,
            handshake_timeout: positive("handshake_timeout", self.handshake_timeout.0)?,
            metrics_max_connections: at_least_one(
                "metrics_max_connections",
                self.metrics_max_connections,
            )?,
            max_message_size: at_least_one("max_message_size", self.max_message_size)?,
            request_timeout: positive("request_timeout", self.request_timeout.0)?,
            keepalive_interval: positive("keepalive_interval", self.keepalive_interval.0)?,
            keepalive_timeout: positive("keepalive_timeout", self.keepalive_timeout.0)?,
            max_connection_age: positive("max_connection_age", self.max_connection_age.0)?,
        })
    }
}
