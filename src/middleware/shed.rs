//! Load shedding: at most `max` calls in the gateway at once; beyond that a call is answered
//! RESOURCE_EXHAUSTED at once instead of queueing without bound.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::Status;
use tower::Service;

use super::{Middleware, MiddlewareLayer, Response};
use crate::telemetry;

#[derive(Debug, Clone)]
pub struct Shed {
    permits: Arc<Semaphore>,
}

/// The load-shedding layer.
pub fn layer(max: usize) -> MiddlewareLayer<Shed> {
    MiddlewareLayer(Shed {
        permits: Arc::new(Semaphore::new(max)),
    })
}

impl Middleware for Shed {
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
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            metrics::counter!(telemetry::SHED).increment(1);
            let status = Status::resource_exhausted(
                "the gateway is at its concurrent call limit; retry shortly",
            );
            return Ok(status.into_http());
        };
        // The permit covers the handler, not the streaming of the (small, unary) answer.
        next.call(request).await
    }
}
