//! The metric handles of every route, registered once: a call costs no registry lookup or label
//! hashing, and each known route has its series (at zero) from the start.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use metrics::{Counter, Gauge, Histogram};
use tonic::Code;

use crate::{
    middleware::routes::{HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA, Route, route},
    operation::Operation,
    telemetry,
};

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
pub(super) struct RouteMetrics {
    pub(super) route: Route,
    pub(super) started: Counter,
    pub(super) handling: Histogram,
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

    pub(super) fn handled(&self, code: Code) -> Option<&Counter> {
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

/// The routes' handles, shared by every clone of the layer and its services.
#[derive(Debug)]
pub(super) struct Registry {
    routes: HashMap<(&'static str, &'static str), Arc<RouteMetrics>>,
    pub(super) in_flight: Gauge,
}

impl Registry {
    pub(super) fn of(&self, path: &str) -> Arc<RouteMetrics> {
        let route = route(path);
        match self.routes.get(&(route.service, route.method)) {
            Some(known) => known.clone(),
            // An unknown path: rare, so its handles are looked up per call.
            None => Arc::new(RouteMetrics::new(route)),
        }
    }
}

/// Every known route's handles, with the OK series from the start (ratios over handled calls then
/// have a denominator; the other codes appear when they first occur).
pub(super) fn registry() -> Registry {
    let routes = all_routes()
        .into_iter()
        .map(|r| {
            let metrics = RouteMetrics::new(r);
            let _ = metrics.handled(Code::Ok);
            ((r.service, r.method), Arc::new(metrics))
        })
        .collect();
    Registry {
        routes,
        in_flight: metrics::gauge!(telemetry::IN_FLIGHT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_path_has_registered_handles_and_unknown_ones_none() {
        let registry = registry();
        for path in [
            "/cloudtrail.gateway.v1.CloudTrailService/DescribeTrails",
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Other",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            let r = route(path);
            assert!(
                registry.routes.contains_key(&(r.service, r.method)),
                "{path}"
            );
        }
        // No placeholder series with grpc_service="unknown" before an unknown path is called.
        for path in [
            "/cloudtrail.gateway.v1.CloudTrailService/Nope",
            "/other.Service/Method",
            "",
        ] {
            let r = route(path);
            assert!(
                !registry.routes.contains_key(&(r.service, r.method)),
                "{path}"
            );
        }
        assert_eq!(registry.routes.len(), Operation::ALL.len() + 4);
    }
}
