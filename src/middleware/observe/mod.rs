//! Every call's one final status, found wherever it is (the response headers for trailers-only
//! answers, the trailers otherwise, Canceled when the body is dropped first) and recorded once: the
//! gRPC server metrics dashboards expect (`grpc_server_started_total`, `grpc_server_handled_total`,
//! `grpc_server_handling_seconds`, in-flight) and one access-log line (`telemetry::access`).
//!
//! Outermost layer: it sees refused calls too, and turns an inner layer's error into its status.
//! Metric label values are static strings, and a route's handles are registered once.

mod body;
mod call;
mod registry;

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Instant,
};

use bytes::Bytes;
use http_body::Body as HttpBody;
use tonic::{Status, body::Body};
use tower::{BoxError, Layer, Service};

use crate::middleware::codes;
use body::{Observed, status_in};
use call::Call;
pub use call::CallTarget;
use registry::Registry;

/// The observing layer; its handles belong to the recorder installed when it is built.
#[derive(Debug, Clone)]
pub struct ObserveLayer(Arc<Registry>);

pub fn layer() -> ObserveLayer {
    ObserveLayer(Arc::new(registry::registry()))
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
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                // A layer refused without an answer of its own (shedding): its status is the answer.
                let status = Status::from_error(e.into());
                call.finish(status.code());
                return Poll::Ready(Ok(status.into_http()));
            }
        };
        call.learn(&response);
        codes::correct(response.headers_mut());
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
    use tonic::Code;
    use tower::ServiceExt;

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
