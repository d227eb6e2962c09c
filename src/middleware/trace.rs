//! Request ids and spans, from tower-http: `SetRequestId` keeps a caller's acceptable `x-request-id`
//! or makes one (`NewRequestId`), `PropagateRequestId` returns it; `TraceLayer` with its gRPC
//! classifier opens one span per call (`CallSpan`: method, request id, and principal, AWS request id
//! and upstream latency filled in by inner code), a child of the caller's W3C `traceparent` (exported
//! with OTLP), and logs server-side failures (`ServerFailures`). The access log line is `observe`'s.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tower_http::{
    classify::{GrpcErrorsAsFailures, GrpcFailureClass, SharedClassifier},
    request_id::{MakeRequestId, RequestId},
    trace::{MakeSpan, OnFailure, TraceLayer},
};

/// A `HeaderName`, not a `&str`: a string key is parsed and validated again on every use.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller's id is kept if it is short and printable; otherwise it is dropped here and
/// `NewRequestId` makes one.
pub fn keep_valid_request_id<B>(mut request: http::Request<B>) -> http::Request<B> {
    let acceptable = |v: &HeaderValue| {
        v.len() <= 128
            && v.to_str()
                .is_ok_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic()))
    };
    let headers = request.headers_mut();
    if headers.get_all(&REQUEST_ID).iter().any(|v| !acceptable(v))
        || headers.get_all(&REQUEST_ID).iter().count() > 1
    {
        headers.remove(&REQUEST_ID);
    }
    request
}

/// New request ids: UUID v4 from the thread-local CSPRNG (`ids`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        let id = crate::ids::uuid().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// The span of one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallSpan;

impl<B> MakeSpan<B> for CallSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> tracing::Span {
        let id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // Display (`%`), not Debug: the log layer formats every field when the span is made, and
        // Debug-escaping strings char by char was a visible share of a call's cost.
        let span = tracing::info_span!(
            "rpc",
            method = %super::routes::route(request.uri().path()).method,
            request_id = %id,
            principal = tracing::field::Empty,
            aws_request_id = tracing::field::Empty,
            upstream_ms = tracing::field::Empty,
        );
        if request.headers().contains_key("traceparent") {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            let parent = opentelemetry::global::get_text_map_propagator(|p| {
                p.extract(&Headers(request.headers()))
            });
            let _ = span.set_parent(parent);
        }
        span
    }
}

/// Failures on the gateway's side (not the caller's) are worth a warning; the caller's own mistakes
/// are in the access log.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerFailures;

impl OnFailure<GrpcFailureClass> for ServerFailures {
    fn on_failure(&mut self, failure: GrpcFailureClass, latency: Duration, _: &tracing::Span) {
        let server_side = match &failure {
            GrpcFailureClass::Code(code) => matches!(
                tonic::Code::from_i32(code.get()),
                tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss
            ),
            GrpcFailureClass::Error(_) => true,
        };
        if server_side {
            tracing::warn!(%failure, latency_ms = latency.as_secs_f64() * 1000.0, "call failed");
        }
    }
}

pub type Trace =
    TraceLayer<SharedClassifier<GrpcErrorsAsFailures>, CallSpan, (), (), (), (), ServerFailures>;

/// The tracing layer.
pub fn layer() -> Trace {
    TraceLayer::new_for_grpc()
        .make_span_with(CallSpan)
        .on_request(())
        .on_response(())
        .on_body_chunk(())
        .on_eos(())
        .on_failure(ServerFailures)
}

/// Request headers as an OpenTelemetry carrier.
struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::testing::{answer, request};
    use tower::ServiceExt;
    use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};

    async fn id_returned_for(sent: Option<&str>) -> String {
        let service = tower::ServiceBuilder::new()
            .map_request(keep_valid_request_id)
            .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(layer())
            .service(answer(|| Ok(tonic::Status::ok("").into_http())));
        let mut request = request("/grpc.health.v1.Health/Check");
        if let Some(id) = sent {
            request
                .headers_mut()
                .insert(REQUEST_ID, HeaderValue::from_str(id).unwrap());
        }
        let response = service.oneshot(request).await.unwrap();
        response.headers()[REQUEST_ID].to_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn request_ids_are_kept_or_made() {
        assert_eq!(id_returned_for(Some("abc-123")).await, "abc-123");
        let made = id_returned_for(None).await;
        assert_eq!(made.len(), 36, "{made}");
        let long = "x".repeat(200);
        assert_ne!(id_returned_for(Some(&long)).await, long);
        assert_ne!(id_returned_for(Some("has space")).await, "has space");
    }
}
