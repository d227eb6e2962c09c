//! Every call's one final status, found wherever it is (the response headers for trailers-only
//! answers, the trailers otherwise, Canceled when the body is dropped first) and recorded once: the
//! gRPC server metrics dashboards expect (`grpc_server_started_total`, `grpc_server_handled_total`,
//! `grpc_server_handling_seconds`, in-flight) and one access-log line (`telemetry::access`).
//!
//! Outermost layer: it sees refused calls too, and turns an inner layer's error into its status.
//! Metric label values are static strings, and a route's handles are registered once.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
    time::Instant,
};

use bytes::Bytes;
use http::HeaderValue;
use http_body::{Body as HttpBody, Frame};
use metrics::{Counter, Gauge, Histogram};
use tonic::{Code, Status, body::Body};
use tower::{BoxError, Layer, Service};

use super::routes::{HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA, Route, route};
use crate::{operation::Operation, principal::Principal, target::Target, telemetry};

/// Where a call went, once the API knows (its request extensions carry this): the access log names
/// the account and Region.
#[derive(Debug, Clone, Default)]
pub struct CallTarget(Arc<OnceLock<Target>>);

impl CallTarget {
    pub fn set(&self, target: &Target) {
        let _ = self.0.set(target.clone());
    }
}

/// Every known route, so each gets its handles (and its series, at zero) once. Unknown paths get
/// theirs when one is first called: no placeholder series.
fn all_routes() -> Vec<Route> {
    let mut paths: Vec<String> = Operation::ALL.iter().map(|op| op.path()).collect();
    paths.extend([
        format!("/{HEALTH}/Check"),
        format!("/{HEALTH}/Watch"),
        format!("/{REFLECTION_V1}/ServerReflectionInfo"),
        format!("/{REFLECTION_V1ALPHA}/ServerReflectionInfo"),
    ]);
    paths.iter().map(|p| route(p)).collect()
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

/// One call, recorded once when its status is known.
#[derive(Debug)]
struct Call {
    metrics: Arc<RouteMetrics>,
    in_flight: Gauge,
    started: Instant,
    principal: Option<Principal>,
    request_id: Option<HeaderValue>,
    target: CallTarget,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        if let Some(handled) = self.metrics.handled(code) {
            handled.increment(1);
        }
        self.metrics.handling.record(elapsed.as_secs_f64());
        self.in_flight.decrement(1.0);
        telemetry::access(&telemetry::AccessRecord {
            service: self.metrics.route.service,
            method: self.metrics.route.method,
            code,
            elapsed,
            principal: self.principal.as_ref(),
            request_id: self.request_id.as_ref().and_then(|v| v.to_str().ok()),
            target: self.target.0.get(),
        });
    }

    /// Takes what the access log wants from the response (inner layers put it there).
    fn learn(&mut self, response: &http::Response<impl Sized>) {
        self.principal = response.extensions().get::<Principal>().cloned();
        self.request_id = response.headers().get(super::trace::REQUEST_ID).cloned();
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
    pub struct Observed<B> {
        #[pin]
        inner: B,
        call: Call,
    }
}

impl<B> HttpBody for Observed<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in) {
                    this.call.finish(code);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                let status = Status::from_error(e.into());
                this.call.finish(status.code());
                Poll::Ready(Some(Err(status)))
            }
            None => {
                this.call.finish(Code::Unknown);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The routes' handles, shared by every clone of the layer and its services.
#[derive(Debug)]
struct Registry {
    routes: HashMap<(&'static str, &'static str), Arc<RouteMetrics>>,
    in_flight: Gauge,
}

impl Registry {
    fn of(&self, path: &str) -> Arc<RouteMetrics> {
        let route = route(path);
        match self.routes.get(&(route.service, route.method)) {
            Some(known) => known.clone(),
            // An unknown path: rare, so its handles are looked up per call.
            None => Arc::new(RouteMetrics::new(route)),
        }
    }
}

/// The observing layer; its handles belong to the recorder installed when it is built.
#[derive(Debug, Clone)]
pub struct ObserveLayer(Arc<Registry>);

pub fn layer() -> ObserveLayer {
    let routes = all_routes()
        .into_iter()
        .map(|r| {
            let metrics = RouteMetrics::new(r);
            // The OK series from the start, so ratios over handled calls have a denominator; the
            // other codes appear when they first occur.
            let _ = metrics.handled(Code::Ok);
            ((r.service, r.method), Arc::new(metrics))
        })
        .collect();
    ObserveLayer(Arc::new(Registry {
        routes,
        in_flight: metrics::gauge!(telemetry::IN_FLIGHT),
    }))
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            registry: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    registry: Arc<Registry>,
}

impl<S, B, ResBody> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // An inner layer that cannot serve says so in its call's answer (see `call`).
        let _ = ready!(self.inner.poll_ready(cx));
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let metrics = self.registry.of(request.uri().path());
        metrics.started.increment(1);
        self.registry.in_flight.increment(1.0);
        let target = CallTarget::default();
        request.extensions_mut().insert(target.clone());
        ObserveFuture {
            inner: self.inner.call(request),
            call: Some(Call {
                metrics,
                in_flight: self.registry.in_flight.clone(),
                started: Instant::now(),
                principal: None,
                request_id: None,
                target,
                done: false,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F, ResBody, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: Into<BoxError>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(mut call) = this.call.take() else {
            return Poll::Ready(Ok(Status::internal("polled after completion").into_http()));
        };
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                // A layer refused without an answer of its own (shedding): its status is the answer.
                let status = Status::from_error(e.into());
                call.finish(status.code());
                return Poll::Ready(Ok(status.into_http()));
            }
        };
        call.learn(&response);
        // Trailers-only (errors): the status is in the headers, the body carries nothing more.
        if let Some(code) = status_in(response.headers()) {
            call.finish(code);
            return Poll::Ready(Ok(response.map(Body::new)));
        }
        Poll::Ready(Ok(response.map(|inner| Body::new(Observed { inner, call }))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::testing::{answer, request, trailers_status};
    use tower::ServiceExt;

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
    fn every_known_path_has_registered_handles_and_unknown_ones_none() {
        let layer = layer().0;
        for path in [
            "/cloudtrail.gateway.v1.CloudTrailService/DescribeTrails",
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Other",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            let r = route(path);
            assert!(layer.routes.contains_key(&(r.service, r.method)), "{path}");
        }
        // No placeholder series with grpc_service="unknown" before an unknown path is called.
        for path in [
            "/cloudtrail.gateway.v1.CloudTrailService/Nope",
            "/other.Service/Method",
            "",
        ] {
            let r = route(path);
            assert!(!layer.routes.contains_key(&(r.service, r.method)), "{path}");
        }
        assert_eq!(layer.routes.len(), Operation::ALL.len() + 4);
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

    #[tokio::test]
    async fn statuses_are_found_in_headers_trailers_and_errors() {
        // Trailers-only: the status is in the headers.
        let service = layer().layer(answer(|| Ok(Status::not_found("x").into_http())));
        let response = service
            .oneshot(request("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert_eq!(status_in(response.headers()), Some(Code::NotFound));
        // A body with trailers passes through with them.
        let service = layer().layer(answer(|| Ok(trailers_status(Code::Ok))));
        let response = service
            .oneshot(request("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        let collected = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        assert_eq!(collected.trailers().and_then(status_in), Some(Code::Ok));
        // An inner error becomes its status.
        let service = layer().layer(answer(|| {
            Err(BoxError::from(Status::resource_exhausted("full")))
        }));
        let response = service
            .oneshot(request("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert_eq!(status_in(response.headers()), Some(Code::ResourceExhausted));
    }
}
