//! Streaming calls (health's Watch, reflection, event streams) are bounded too: each holds one of
//! `max_streaming_calls` places for as long as its response streams, whoever calls (health and
//! reflection answer without credentials). Beyond, RESOURCE_EXHAUSTED at once. Unary calls are
//! `shed`'s: their work is done before the answer is sent, so a permit that ends with the handler is
//! enough there; a stream's memory lives as long as its body.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http_body::{Body as HttpBody, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::telemetry;

/// What a stream over the limit is answered.
pub const MESSAGE: &str = "the gateway is at its limit of open streams; retry shortly";

fn is_streaming(path: &str) -> bool {
    super::observe::route(path).kind != "unary"
}

#[derive(Debug, Clone)]
pub struct StreamsLayer(Arc<Semaphore>);

/// At most `max` streaming calls open at once.
pub fn layer(max: usize) -> StreamsLayer {
    metrics::counter!(telemetry::SHED, "kind" => "stream").increment(0);
    StreamsLayer(Arc::new(Semaphore::new(max)))
}

impl<S> Layer<S> for StreamsLayer {
    type Service = Streams<S>;
    fn layer(&self, inner: S) -> Streams<S> {
        Streams {
            places: self.0.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Streams<S> {
    places: Arc<Semaphore>,
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Streams<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = http::Response<Held>;
    type Error = S::Error;
    type Future = StreamsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !is_streaming(request.uri().path()) {
            return StreamsFuture::Calling {
                call: self.inner.call(request),
                place: None,
            };
        }
        match self.places.clone().try_acquire_owned() {
            Ok(place) => StreamsFuture::Calling {
                call: self.inner.call(request),
                place: Some(place),
            },
            Err(_) => {
                metrics::counter!(telemetry::SHED, "kind" => "stream").increment(1);
                StreamsFuture::Refused
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = StreamsProjection]
    pub enum StreamsFuture<F> {
        Calling {
            #[pin]
            call: F,
            place: Option<OwnedSemaphorePermit>,
        },
        Refused,
    }
}

impl<F, E> Future for StreamsFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, E>>,
{
    type Output = Result<http::Response<Held>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            StreamsProjection::Calling { call, place } => {
                let response = ready!(call.poll(cx))?;
                let place = place.take();
                Poll::Ready(Ok(response.map(|inner| Held { inner, place })))
            }
            StreamsProjection::Refused => Poll::Ready(Ok(Status::resource_exhausted(MESSAGE)
                .into_http::<Body>()
                .map(|inner| Held { inner, place: None }))),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body holding its stream's place until it ends or is dropped.
    pub struct Held {
        #[pin]
        inner: Body,
        place: Option<OwnedSemaphorePermit>,
    }
}

impl HttpBody for Held {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, Status>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if frame.is_none() {
            this.place.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::testing::{answer, request, trailers_status};
    use tower::ServiceExt;

    const WATCH: &str = "/grpc.health.v1.Health/Watch";

    fn code(response: &http::Response<Held>) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn open_streams_hold_their_place_until_their_body_ends() {
        let limit = layer(1);
        let inner = answer(|| Ok(trailers_status(tonic::Code::Ok)));
        let first = limit
            .layer(inner.clone())
            .oneshot(request(WATCH))
            .await
            .unwrap();
        assert_eq!(code(&first), None, "streaming");
        let second = limit
            .layer(inner.clone())
            .oneshot(request(WATCH))
            .await
            .unwrap();
        assert_eq!(
            code(&second),
            Some("8"),
            "no place left while the first streams"
        );
        // Unary calls are not counted here.
        let unary = limit
            .layer(inner.clone())
            .oneshot(request("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert_eq!(code(&unary), None);
        drop(first);
        let third = limit.layer(inner).oneshot(request(WATCH)).await.unwrap();
        assert_eq!(
            code(&third),
            None,
            "the place came back with the first body"
        );
    }
}
