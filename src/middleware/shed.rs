//! Load shedding with tower's own layers: `GlobalConcurrencyLimit` admits at most `max` calls at once
//! (one semaphore for every connection), `LoadShed` answers at once instead of queueing when none
//! is free, and the refusal becomes RESOURCE_EXHAUSTED saying why.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::Status;
use tower::{
    BoxError,
    layer::util::Stack,
    limit::GlobalConcurrencyLimitLayer,
    load_shed::{LoadShedLayer, error::Overloaded},
    util::MapErrLayer,
};

use crate::telemetry;

/// What a shed call is answered.
pub const MESSAGE: &str = "the gateway is at its concurrent call limit; retry shortly";

fn overloaded(error: BoxError) -> BoxError {
    if error.is::<Overloaded>() {
        metrics::counter!(telemetry::SHED, "kind" => "call").increment(1);
        Box::new(Status::resource_exhausted(MESSAGE))
    } else {
        error
    }
}

pub type ShedLayer =
    Stack<GlobalConcurrencyLimitLayer, Stack<LoadShedLayer, MapErrLayer<fn(BoxError) -> BoxError>>>;

/// At most `max` calls inside at once; the rest refused at once.
pub fn layer(max: usize) -> ShedLayer {
    metrics::counter!(telemetry::SHED, "kind" => "call").increment(0);
    Stack::new(
        GlobalConcurrencyLimitLayer::with_semaphore(Arc::new(Semaphore::new(max))),
        Stack::new(
            LoadShedLayer::new(),
            MapErrLayer::new(overloaded as fn(BoxError) -> BoxError),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::testing::request;
    use tower::{Layer, Service, ServiceExt};

    #[tokio::test]
    async fn beyond_the_limit_calls_are_refused_at_once() {
        // An inner service whose calls never finish, so each admitted call holds its permit.
        let hang = tower::service_fn(|_: http::Request<tonic::body::Body>| {
            std::future::pending::<Result<http::Response<tonic::body::Body>, BoxError>>()
        });
        let mut service = layer(2).layer(hang);
        let mut held = Vec::new();
        for _ in 0..2 {
            let ready = service.ready().await.unwrap();
            held.push(tokio::spawn(ready.call(request("/a/B"))));
        }
        tokio::task::yield_now().await;
        let refused = service
            .ready()
            .await
            .unwrap()
            .call(request("/a/B"))
            .await
            .unwrap_err();
        let status = refused.downcast::<Status>().expect("a Status");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), MESSAGE);
        for call in held {
            call.abort();
        }
    }
}
