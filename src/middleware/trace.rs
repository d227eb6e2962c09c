//! One `tracing` span per call, with a request id taken from `x-request-id` (or generated) and
//! returned in the response metadata. Inner code fills the span's principal, AWS request id and
//! upstream latency. A caller's W3C `traceparent` makes the span its child (exported with OTLP).

use std::future::Future;

use http::{HeaderName, HeaderValue};
use tower::Service;
use tracing::Instrument;

use super::{Middleware, MiddlewareLayer, Response};

/// A `HeaderName`, not a `&str`: a string key is parsed and validated again on every use.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Debug, Clone, Default)]
pub struct Trace;

/// The request-id and span layer.
pub fn layer() -> MiddlewareLayer<Trace> {
    MiddlewareLayer(Trace)
}

/// A caller's id is kept if it is short and printable; otherwise a new one is made.
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    headers
        .get(&REQUEST_ID)
        .filter(|v| {
            v.len() <= 128
                && v.to_str()
                    .is_ok_and(|s| s.chars().all(|c| c.is_ascii_graphic()))
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&crate::ids::uuid().to_string())
                .unwrap_or(HeaderValue::from_static("-"))
        })
}

impl Middleware for Trace {
    #[allow(clippy::manual_async_fn)] // the span must wrap the future, not be entered across awaits
    fn handle<S, B>(
        &self,
        mut request: http::Request<B>,
        mut next: S,
    ) -> impl Future<Output = Result<Response, S::Error>> + Send
    where
        S: Service<http::Request<B>, Response = Response> + Send + 'static,
        S::Future: Send,
        B: Send + 'static,
    {
        let id = request_id(request.headers());
        request.headers_mut().insert(REQUEST_ID.clone(), id.clone());
        // Display (`%`), not Debug: the log layer formats every field when the span is made, and
        // Debug-escaping strings char by char was a visible share of a call's cost.
        let span = tracing::info_span!(
            "rpc",
            method = %request.uri().path(),
            request_id = %id.to_str().unwrap_or("-"),
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
        async move {
            let mut response = next.call(request).await?;
            response.headers_mut().insert(REQUEST_ID, id);
            Ok(response)
        }
        .instrument(span)
    }
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
