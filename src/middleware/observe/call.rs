//! One call as the observing layer follows it: recorded once, when its status is known, as the
//! route's metrics and one access-log line (`telemetry::access`).

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use http::HeaderValue;
use metrics::Gauge;
use tonic::Code;

use super::registry::RouteMetrics;
use crate::{middleware::trace::REQUEST_ID, principal::Principal, target::Target, telemetry};

/// Where a call went, once the API knows (its request extensions carry this): the access log names
/// the account and Region.
#[derive(Debug, Clone, Default)]
pub struct CallTarget(Arc<OnceLock<Target>>);

impl CallTarget {
    pub fn set(&self, target: &Target) {
        let _ = self.0.set(target.clone());
    }
}

/// One call, recorded once when its status is known.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) metrics: Arc<RouteMetrics>,
    pub(super) in_flight: Gauge,
    pub(super) started: Instant,
    pub(super) principal: Option<Principal>,
    pub(super) request_id: Option<HeaderValue>,
    pub(super) target: CallTarget,
    pub(super) done: bool,
}

impl Call {
    pub(super) fn finish(&mut self, code: Code) {
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
    pub(super) fn learn(&mut self, response: &http::Response<impl Sized>) {
        self.principal = response.extensions().get::<Principal>().cloned();
        self.request_id = response.headers().get(REQUEST_ID).cloned();
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The body went away without a status: the client cancelled.
        self.finish(Code::Cancelled);
    }
}
