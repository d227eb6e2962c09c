//! Metrics and logs. One Prometheus recorder per process (the `metrics` facade is global); every
//! gateway in the process renders it on its HTTP port. Metric names are the ones dashboards use.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use metrics::{Counter, Histogram};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tonic::Code;

use crate::{operation::Operation, principal::Principal, target::Target};

pub const STARTED: &str = "grpc_server_started_total";
pub const HANDLED: &str = "grpc_server_handled_total";
pub const HANDLING_SECONDS: &str = "grpc_server_handling_seconds";
pub const IN_FLIGHT: &str = "grpc_server_in_flight";
pub const UPSTREAM_REQUESTS: &str = "cloudtrail_upstream_requests_total";
pub const UPSTREAM_SECONDS: &str = "cloudtrail_upstream_duration_seconds";
pub const UPSTREAM_ATTEMPTS: &str = "cloudtrail_upstream_attempts_total";
pub const STS_REQUESTS: &str = "cloudtrail_gateway_sts_assume_role_total";
pub const PROPAGATION_RETRIES: &str = "cloudtrail_gateway_propagation_retries_total";
pub const STREAMS: &str = "cloudtrail_gateway_event_streams";
pub const STREAM_FEEDS: &str = "cloudtrail_gateway_event_feeds";
pub const STREAMED_EVENTS: &str = "cloudtrail_gateway_streamed_events_total";
pub const LIMITER_WAITS: &str = "cloudtrail_gateway_limiter_waits_total";
pub const LIMITER_WAIT_SECONDS: &str = "cloudtrail_gateway_limiter_wait_seconds";
pub const LIMITER_REJECTIONS: &str = "cloudtrail_gateway_limiter_rejections_total";
pub const LIMITER_REDIS_FALLBACK: &str = "cloudtrail_gateway_limiter_redis_fallback";
pub const LOOKUPS: &str = "cloudtrail_gateway_lookup_events_total";
pub const AUTH_FAILURES: &str = "cloudtrail_gateway_auth_failures_total";
pub const SHED: &str = "cloudtrail_gateway_shed_total";
pub const CONNECTIONS: &str = "cloudtrail_gateway_connections";
pub const CONNECTIONS_REFUSED: &str = "cloudtrail_gateway_connections_refused_total";
pub const DRAINING: &str = "cloudtrail_gateway_draining";
pub const BUILD_INFO: &str = "cloudtrail_gateway_build_info";
pub const LOCAL_S3_BYTES: &str = "cloudtrail_local_s3_bytes";
pub const LOCAL_S3_EVICTED: &str = "cloudtrail_local_s3_evicted_objects_total";
pub const STORE_WATERMARK: &str = "cloudtrail_store_watermark_seconds";
pub const STORE_LAG: &str = "cloudtrail_store_lag_seconds";
pub const STORE_FILES: &str = "cloudtrail_store_files_total";
pub const STORE_EVENTS: &str = "cloudtrail_store_events_total";
pub const STORE_SKIPPED: &str = "cloudtrail_store_skipped_files_total";
pub const STORE_ERRORS: &str = "cloudtrail_store_errors_total";
pub const STORE_BACKFILL: &str = "cloudtrail_store_backfill_percent";
pub const STORE_BYTES: &str = "cloudtrail_store_bytes";

/// Every metric the gateway exports, with its `# HELP` text (the README's metrics table says the
/// same, with the labels).
const DESCRIBED: [(&str, &str); 33] = [
    (
        STARTED,
        "gRPC calls started, by grpc_type, grpc_service, grpc_method",
    ),
    (
        HANDLED,
        "gRPC calls finished, by grpc_type, grpc_service, grpc_method and grpc_code (grpc-go spelling)",
    ),
    (
        HANDLING_SECONDS,
        "Time from a call's arrival to its status, in seconds",
    ),
    (IN_FLIGHT, "gRPC calls in the gateway now"),
    (
        UPSTREAM_REQUESTS,
        "CloudTrail calls made, by operation and outcome (ok, deadline, or the AWS error code)",
    ),
    (
        UPSTREAM_ATTEMPTS,
        "CloudTrail attempts made by the SDK (retries included), by operation",
    ),
    (
        UPSTREAM_SECONDS,
        "Time of a CloudTrail call with its retries, in seconds, by operation",
    ),
    (
        STS_REQUESTS,
        "STS AssumeRole calls made for role sessions, by outcome (ok, error); cached sessions make none",
    ),
    (
        PROPAGATION_RETRIES,
        "CloudTrail calls sent again after a propagation error (a policy or role not visible yet), by operation and the AWS error code",
    ),
    (STREAMS, "StreamEvents streams open"),
    (
        STREAM_FEEDS,
        "Shared follow polls running (one per account, Region and filter followed)",
    ),
    (
        STREAMED_EVENTS,
        "Events delivered by StreamEvents, by phase (history, follow)",
    ),
    (
        LIMITER_WAITS,
        "Calls that waited for a slot of their quota, by class (lookup, read, write)",
    ),
    (
        LIMITER_WAIT_SECONDS,
        "Time waited for a slot, in seconds, by class",
    ),
    (
        LIMITER_REJECTIONS,
        "Calls refused RESOURCE_EXHAUSTED for want of a slot before their deadline, by class",
    ),
    (
        LIMITER_REDIS_FALLBACK,
        "Quota buckets (account, Region, class) taking slots from the local fallback (Redis unreachable or not believed); 0 while Redis serves",
    ),
    (
        LOOKUPS,
        "LookupEvents answers, by source (upstream, coalesced, cache, store, store_upstream: the store and CloudTrail merged)",
    ),
    (
        AUTH_FAILURES,
        "Calls refused UNAUTHENTICATED or PERMISSION_DENIED, by reason",
    ),
    (
        SHED,
        "Calls refused at once at a concurrency limit, by kind (call, stream)",
    ),
    (CONNECTIONS, "Client connections open"),
    (
        CONNECTIONS_REFUSED,
        "Connections closed before serving, by reason (limit, tls_handshake, not_http2, handshake_timeout)",
    ),
    (
        DRAINING,
        "1 from the shutdown signal until the gateway stops",
    ),
    (BUILD_INFO, "1, labelled with the gateway's version"),
    (
        LOCAL_S3_BYTES,
        "Embedded CloudTrail (upstream local): bytes of objects its S3 holds",
    ),
    (
        LOCAL_S3_EVICTED,
        "Embedded CloudTrail (upstream local): objects its S3 evicted at --local-s3-capacity, oldest first",
    ),
    (
        STORE_WATERMARK,
        "Event store: the time (Unix seconds) up to which every event is stored, by source, account and Region",
    ),
    (
        STORE_LAG,
        "Event store: seconds from the watermark to now, by source, account and Region",
    ),
    (STORE_FILES, "Event store: log files stored, by source"),
    (
        STORE_EVENTS,
        "Event store: events stored (duplicates not counted), by source",
    ),
    (
        STORE_SKIPPED,
        "Event store: log files skipped for good, by source and kind (gzip, too_large, not_cloudtrail, outside_layout, gone)",
    ),
    (
        STORE_ERRORS,
        "Event store: failed polls (retried at the next), by source and kind (s3, store)",
    ),
    (
        STORE_BACKFILL,
        "Event store: the first pass's progress (0-100), by source",
    ),
    (STORE_BYTES, "Event store: bytes of its file on disk"),
];

/// Latency buckets in seconds: from a cached answer (sub-ms) to a long wait for a LookupEvents slot.
const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use.
pub fn metrics() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let mut builder = PrometheusBuilder::new();
    for histogram in [HANDLING_SECONDS, UPSTREAM_SECONDS, LIMITER_WAIT_SECONDS] {
        builder = builder.set_buckets_for_metric(Matcher::Full(histogram.into()), &BUCKETS)?;
    }
    let handle = HANDLE.get_or_init(|| {
        // Only the first caller installs; a recorder set elsewhere first is left alone.
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    });
    for (name, help) in DESCRIBED {
        metrics::describe_counter!(name, help);
    }
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::gauge!(DRAINING).increment(0.0);
    metrics::gauge!(IN_FLIGHT).increment(0.0);
    Ok(handle.clone())
}

/// How an upstream call ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Ok,
    /// The AWS error code, or "error" when there is none.
    Error(&'a str),
    /// The caller's deadline passed first.
    Deadline,
}

/// The upstream metrics' handles per operation, registered once; only error outcomes (rare, and
/// labelled with an AWS error code) are looked up per call.
#[derive(Debug, Clone)]
pub struct UpstreamMetrics(Arc<Vec<(Counter, Histogram)>>);

impl UpstreamMetrics {
    pub fn new() -> Self {
        let handles = Operation::ALL.iter().map(|op| {
            let operation = op.name();
            let ok =
                metrics::counter!(UPSTREAM_REQUESTS, "operation" => operation, "outcome" => "ok");
            let seconds = metrics::histogram!(UPSTREAM_SECONDS, "operation" => operation);
            (ok, seconds)
        });
        UpstreamMetrics(Arc::new(handles.collect()))
    }

    pub fn record(&self, operation: Operation, outcome: Outcome, elapsed: Duration) {
        let Some((ok, seconds)) = self.0.get(operation as usize) else {
            return;
        };
        match outcome {
            Outcome::Ok => ok.increment(1),
            Outcome::Error(code) => {
                metrics::counter!(UPSTREAM_REQUESTS, "operation" => operation.name(), "outcome" => code.to_owned())
                    .increment(1);
            }
            Outcome::Deadline => {
                metrics::counter!(UPSTREAM_REQUESTS, "operation" => operation.name(), "outcome" => "deadline")
                    .increment(1);
            }
        }
        seconds.record(elapsed.as_secs_f64());
    }
}

impl Default for UpstreamMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts every attempt the SDK makes (its retries included), per operation: an SDK interceptor,
/// since retries happen inside the SDK call. Retries = attempts − requests.
#[derive(Debug, Clone)]
pub struct AttemptCounter(Arc<Vec<Counter>>);

impl AttemptCounter {
    pub fn new() -> Self {
        AttemptCounter(Arc::new(
            Operation::ALL
                .iter()
                .map(|op| metrics::counter!(UPSTREAM_ATTEMPTS, "operation" => op.name()))
                .collect(),
        ))
    }
}

impl Default for AttemptCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "AttemptCounter"
    }

    fn read_before_attempt(
        &self,
        _: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .and_then(|m| Operation::from_name(m.name()));
        if let Some(counter) = operation.and_then(|op| self.0.get(op as usize)) {
            counter.increment(1);
        }
        Ok(())
    }
}

/// The target of the access log: one line per call, at INFO for refused and failed calls and at
/// DEBUG for successful ones (`RUST_LOG=info,cloudtrail_gateway::access=debug` shows every call;
/// `...=off` none). Successes stay below the default level because at the gateway's throughput a
/// line per call costs more than the rest of its own work per call (docs/BENCHMARKS.md).
pub const ACCESS_TARGET: &str = "cloudtrail_gateway::access";

/// What the access log says of one finished call.
#[derive(Debug)]
pub struct AccessRecord<'a> {
    pub service: &'static str,
    pub method: &'static str,
    pub code: Code,
    pub elapsed: Duration,
    pub principal: Option<&'a Principal>,
    pub request_id: Option<&'a str>,
    /// Where the call went, once the API resolved it.
    pub target: Option<&'a Target>,
}

/// Writes the access-log line of a finished call.
pub fn access(record: &AccessRecord) {
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                target: ACCESS_TARGET,
                $level,
                service = %record.service,
                method = %record.method,
                code = %code_name(record.code),
                duration_ms = %format_args!("{:.3}", record.elapsed.as_secs_f64() * 1000.0),
                principal = %record.principal.map_or("-", |p| &*p.name),
                auth = %record.principal.map_or("-", |p| p.method.label()),
                account = %record.target.map_or("-", |t| &*t.account),
                region = %record.target.map_or("-", |t| &*t.region),
                request_id = %record.request_id.unwrap_or("-"),
                "call"
            )
        };
    }
    if record.code == Code::Ok {
        line!(tracing::Level::DEBUG);
    } else {
        line!(tracing::Level::INFO);
    }
}

/// A status code as grpc-go spells it (dashboards group on it).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting `otlp_endpoint`: {0}")]
pub struct OtlpError(String);

/// Keeps the OTLP exporter running; flushes the spans still queued when dropped (at exit).
#[must_use]
pub struct TracingGuard(Option<opentelemetry_sdk::trace::SdkTracerProvider>);

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown();
        }
    }
}

/// The human format's lines: callers' values escaped (`logfmt`).
pub fn human_layer<S>(ansi: bool) -> tracing_subscriber::fmt::Layer<S, crate::logfmt::SafeFields>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(crate::logfmt::SafeFields)
        .with_ansi(ansi)
}

/// Starts logging (level from RUST_LOG, default info) and, with an OTLP endpoint, span export to it.
/// Callers' W3C `traceparent` becomes the parent of their call's span (see `middleware::trace`).
pub fn init_tracing(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> Result<TracingGuard, OtlpError> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = match format {
        // Colours only on a terminal: escape codes in a log file or collector are noise (and cost
        // formatting on every span field).
        LogFormat::Human => {
            human_layer(std::io::IsTerminal::is_terminal(&std::io::stdout())).boxed()
        }
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let (otel, provider) = match otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| OtlpError(e.to_string()))?;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("cloudtrail-gateway")
                        .build(),
                )
                .build();
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            let layer =
                tracing_opentelemetry::layer().with_tracer(provider.tracer("cloudtrail-gateway"));
            (Some(layer), Some(provider))
        }
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(otel)
        .init();
    Ok(TracingGuard(provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_grpc_go_spelling() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::Cancelled), "Canceled");
        assert_eq!(code_name(Code::ResourceExhausted), "ResourceExhausted");
    }
}
