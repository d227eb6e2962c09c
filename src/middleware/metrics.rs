//! The gRPC server metrics dashboards expect (`grpc_server_started_total`, `grpc_server_handled_total`,
//! `grpc_server_handling_seconds`, in-flight), recorded around every call, refused ones included.
//!
//! The status code is in the response headers for trailers-only answers (errors) and in the trailers
//! otherwise, so the body is wrapped to see them. Label values are static strings: no formatting
//! per call.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use http_body::{Body as HttpBody, Frame};
use metrics::{Counter, Gauge, Histogram};
use tonic::{Code, body::Body};
use tower::Service;

use super::{Middleware, MiddlewareLayer, Response};
use crate::{auth::policy::ALL_RPCS, telemetry};

/// What a path is, as labels.
#[derive(Debug, Clone, Copy)]
struct Route {
    kind: &'static str,
    service: &'static str,
    method: &'static str,
}

fn route(path: &str) -> Route {
    let unary = |service, method| Route {
        kind: "unary",
        service,
        method,
    };
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", ""));
    match service {
        "cloudtrail.gateway.v1.CloudTrailService" => unary(
            "cloudtrail.gateway.v1.CloudTrailService",
            ALL_RPCS
                .iter()
                .find(|r| **r == method)
                .copied()
                .unwrap_or("unknown"),
        ),
        "grpc.health.v1.Health" if method == "Watch" => Route {
            kind: "server_stream",
            service: "grpc.health.v1.Health",
            method: "Watch",
        },
        "grpc.health.v1.Health" => unary("grpc.health.v1.Health", "Check"),
        "grpc.reflection.v1.ServerReflection" => Route {
            kind: "bidi_stream",
            service: "grpc.reflection.v1.ServerReflection",
            method: "ServerReflectionInfo",
        },
        "grpc.reflection.v1alpha.ServerReflection" => Route {
            kind: "bidi_stream",
            service: "grpc.reflection.v1alpha.ServerReflection",
            method: "ServerReflectionInfo",
        },
        _ => unary("unknown", "unknown"),
    }
}

/// Every route `route` can answer, so each gets its handles once.
fn all_routes() -> impl Iterator<Item = Route> {
    let service = "cloudtrail.gateway.v1.CloudTrailService";
    ALL_RPCS
        .iter()
        .chain(["unknown"].iter())
        .map(move |rpc| route(&format!("/{service}/{rpc}")))
        .chain(
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                "/",
            ]
            .map(route),
        )
}

/// A route's metric handles, registered once: a call costs no registry lookup or label hashing.
#[derive(Debug)]
struct RouteMetrics {
    route: Route,
    started: Counter,
    handling: Histogram,
    /// Per status code, registered when the code first occurs (not all codes × routes up front,
    /// which would fill /metrics with zeros).
    handled: [OnceLock<Counter>; 17],
}

impl RouteMetrics {
    fn new(route: Route) -> Self {
        let Route {
            kind,
            service,
            method,
        } = route;
        RouteMetrics {
            route,
            started: metrics::counter!(telemetry::STARTED, "grpc_type" => kind, "grpc_service" => service, "grpc_method" => method),
            handling: metrics::histogram!(telemetry::HANDLING_SECONDS, "grpc_type" => kind, "grpc_service" => service, "grpc_method" => method),
            handled: Default::default(),
        }
    }

    fn handled(&self, code: Code) -> Option<&Counter> {
        let Route {
            kind,
            service,
            method,
        } = self.route;
        let slot = self.handled.get(code as usize)?;
        Some(slot.get_or_init(|| {
            let code = telemetry::code_name(code);
            metrics::counter!(telemetry::HANDLED, "grpc_type" => kind, "grpc_service" => service, "grpc_method" => method, "grpc_code" => code)
        }))
    }
}

/// Records the end of one call, once.
#[derive(Debug)]
struct Call {
    metrics: Arc<RouteMetrics>,
    in_flight: Gauge,
    started: Instant,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if let Some(handled) = self.metrics.handled(code) {
            handled.increment(1);
        }
        self.metrics
            .handling
            .record(self.started.elapsed().as_secs_f64());
        self.in_flight.decrement(1.0);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The body went away without a status: the client cancelled.
        self.finish(Code::Cancelled);
    }
}

const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers
        .get(&GRPC_STATUS)?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(Code::from_i32(value))
}

pin_project_lite::pin_project! {
    /// The response body, watched for the trailers that carry the status.
    struct Metered {
        #[pin]
        inner: Body,
        call: Call,
    }
}

impl HttpBody for Metered {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in) {
                    this.call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.call.finish(Code::Internal),
            Poll::Ready(None) => this.call.finish(Code::Unknown),
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug, Clone)]
pub struct Metrics {
    routes: Arc<HashMap<(&'static str, &'static str), Arc<RouteMetrics>>>,
    in_flight: Gauge,
}

/// The gRPC metrics layer; its handles belong to the recorder installed when it is built.
pub fn layer() -> MiddlewareLayer<Metrics> {
    let routes = all_routes()
        .map(|r| ((r.service, r.method), Arc::new(RouteMetrics::new(r))))
        .collect();
    MiddlewareLayer(Metrics {
        routes: Arc::new(routes),
        in_flight: metrics::gauge!(telemetry::IN_FLIGHT),
    })
}

impl Metrics {
    fn of(&self, path: &str) -> Arc<RouteMetrics> {
        let route = route(path);
        match self.routes.get(&(route.service, route.method)) {
            Some(known) => known.clone(),
            None => Arc::new(RouteMetrics::new(route)), // unreachable: all_routes covers route()
        }
    }
}

impl Middleware for Metrics {
    async fn handle<S, B>(
        &self,
        request: http::Request<B>,
        mut next: S,
    ) -> Result<Response, S::Error>
    where
        S: Service<http::Request<B>, Response = Response> + Send + 'static,
        S::Future: Send,
        B: Send + 'static,
    {
        let metrics = self.of(request.uri().path());
        metrics.started.increment(1);
        self.in_flight.increment(1.0);
        let mut call = Call {
            metrics,
            in_flight: self.in_flight.clone(),
            started: Instant::now(),
            done: false,
        };
        let response = next.call(request).await?;
        // Trailers-only (errors): the status is in the headers, the body carries nothing more.
        if let Some(code) = status_in(response.headers()) {
            call.finish(code);
            return Ok(response);
        }
        Ok(response.map(|inner| Body::new(Metered { inner, call })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_with_static_names() {
        let r = route("/cloudtrail.gateway.v1.CloudTrailService/LookupEvents");
        assert_eq!(
            (r.kind, r.service, r.method),
            (
                "unary",
                "cloudtrail.gateway.v1.CloudTrailService",
                "LookupEvents"
            )
        );
        assert_eq!(
            route("/cloudtrail.gateway.v1.CloudTrailService/Nope").method,
            "unknown"
        );
        assert_eq!(route("/grpc.health.v1.Health/Watch").kind, "server_stream");
        assert_eq!(
            route("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").kind,
            "bidi_stream"
        );
        assert_eq!(route("/").service, "unknown");
    }

    #[test]
    fn every_path_has_registered_handles() {
        let layer = layer().0;
        for path in [
            "/cloudtrail.gateway.v1.CloudTrailService/DescribeTrails",
            "/cloudtrail.gateway.v1.CloudTrailService/Nope",
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Other",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            "/other.Service/Method",
            "",
        ] {
            let r = route(path);
            assert!(layer.routes.contains_key(&(r.service, r.method)), "{path}");
        }
        assert_eq!(layer.routes.len(), ALL_RPCS.len() + 6);
    }

    #[test]
    fn codes_use_grpc_go_spelling() {
        assert_eq!(telemetry::code_name(Code::Ok), "OK");
        assert_eq!(telemetry::code_name(Code::Cancelled), "Canceled");
        assert_eq!(
            telemetry::code_name(Code::ResourceExhausted),
            "ResourceExhausted"
        );
    }
}
