//! Load shedding: at most `max` calls in the gateway at once; beyond that a call is answered
//! RESOURCE_EXHAUSTED at once instead of queueing without bound.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::sync::Semaphore;
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::telemetry;

#[derive(Debug, Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
}

impl ShedLayer {
    pub fn new(max: usize) -> Self {
        ShedLayer {
            permits: Arc::new(Semaphore::new(max)),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = ShedService<S>;
    fn layer(&self, inner: S) -> ShedService<S> {
        ShedService {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ShedService<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for ShedService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            metrics::counter!(telemetry::SHED).increment(1);
            let status = Status::resource_exhausted(
                "the gateway is at its concurrent call limit; retry shortly",
            );
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            // The permit covers the handler, not the streaming of the (small, unary) answer.
            drop(permit);
            response
        })
    }
}
