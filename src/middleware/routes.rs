//! What a request's path is (a gateway RPC, health, reflection, or unknown), as the static labels
//! metrics, logs, spans and the stream bounds all use: one classification for every layer.

use crate::operation::Operation;

pub const GATEWAY: &str = crate::pb::cloud_trail_service_server::SERVICE_NAME;
pub const HEALTH: &str = tonic_health::pb::health_server::SERVICE_NAME;
pub const REFLECTION_V1: &str = tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME;
pub const REFLECTION_V1ALPHA: &str =
    tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME;

/// What a path is, as labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub kind: &'static str,
    pub service: &'static str,
    pub method: &'static str,
}

const UNKNOWN: Route = Route {
    kind: "unary",
    service: "unknown",
    method: "unknown",
};

pub fn route(path: &str) -> Route {
    if let Some(op) = Operation::from_path(path) {
        return Route {
            kind: if op.is_streaming() {
                "server_stream"
            } else {
                "unary"
            },
            service: GATEWAY,
            method: op.name(),
        };
    }
    let (service, method) = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .unwrap_or(("", ""));
    match (service, method) {
        (GATEWAY, _) => Route {
            service: GATEWAY,
            ..UNKNOWN
        },
        (HEALTH, "Watch") => Route {
            kind: "server_stream",
            service: HEALTH,
            method: "Watch",
        },
        (HEALTH, _) => Route {
            kind: "unary",
            service: HEALTH,
            method: "Check",
        },
        (REFLECTION_V1 | REFLECTION_V1ALPHA, _) => Route {
            kind: "bidi_stream",
            service: if service == REFLECTION_V1 {
                REFLECTION_V1
            } else {
                REFLECTION_V1ALPHA
            },
            method: "ServerReflectionInfo",
        },
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
