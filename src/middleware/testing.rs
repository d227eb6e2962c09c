//! Stubs for testing one layer at a time (`ServiceExt::oneshot` over a stub inner service).

use std::{convert::Infallible, future::Ready};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use tonic::{Code, body::Body};
use tower::{BoxError, Service};

/// A request for `path`, with an empty body.
pub fn request(path: &str) -> http::Request<Body> {
    http::Request::builder()
        .uri(format!("http://gateway{path}"))
        .body(Body::empty())
        .unwrap_or_default()
}

/// An inner service that answers every request with what `f` returns, and counts its calls.
pub fn answer<F>(f: F) -> Stub<F>
where
    F: Fn() -> Result<http::Response<Body>, BoxError>,
{
    Stub(f)
}

#[derive(Clone)]
pub struct Stub<F>(F);

impl<F, B> Service<http::Request<B>> for Stub<F>
where
    F: Fn() -> Result<http::Response<Body>, BoxError>,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Ready<Result<http::Response<Body>, BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<B>) -> Self::Future {
        std::future::ready((self.0)())
    }
}

/// A successful unary answer: one data frame, then trailers with `code`.
pub fn trailers_status(code: Code) -> http::Response<Body> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", (code as i32).into());
    let frames = [
        Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
        Ok(http_body::Frame::trailers(trailers)),
    ];
    let body = StreamBody::new(tokio_stream::iter(frames));
    http::Response::new(Body::new(body.map_err(|e: Infallible| match e {})))
}
