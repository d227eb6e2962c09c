//! Tower layers around the gRPC routes, outermost first: `metrics`, `trace` (request id, span),
//! `shed` (concurrency limit), `auth`. Each sees the HTTP request (path, headers, connection info),
//! never an RPC's fields.
//!
//! Each is a `Middleware`: one `handle(request, next)` method. The tower plumbing (Layer, Service,
//! readiness, the clone-and-swap of the inner service) is written once, here.

pub mod auth;
pub mod metrics;
pub mod shed;
pub mod trace;

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::body::Body;
use tower::{Layer, Service};

/// The response every layer sees and returns.
pub type Response = http::Response<Body>;

/// A step of the request path: handles a request, usually by calling `next`.
pub trait Middleware: Clone + Send + Sync + 'static {
    fn handle<S, B>(
        &self,
        request: http::Request<B>,
        next: S,
    ) -> impl Future<Output = Result<Response, S::Error>> + Send
    where
        S: Service<http::Request<B>, Response = Response> + Send + 'static,
        S::Future: Send,
        B: Send + 'static;
}

/// A middleware as a tower layer.
#[derive(Debug, Clone)]
pub struct MiddlewareLayer<M>(pub M);

impl<M: Clone, S> Layer<S> for MiddlewareLayer<M> {
    type Service = MiddlewareService<M, S>;
    fn layer(&self, inner: S) -> Self::Service {
        MiddlewareService {
            middleware: self.0.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MiddlewareService<M, S> {
    middleware: M,
    inner: S,
}

impl<M, S, B> Service<http::Request<B>> for MiddlewareService<M, S>
where
    M: Middleware,
    S: Service<http::Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is not ready; the ready one serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let next = std::mem::replace(&mut self.inner, clone);
        let middleware = self.middleware.clone();
        Box::pin(async move { middleware.handle(request, next).await })
    }
}
