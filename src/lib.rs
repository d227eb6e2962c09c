//! cloudtrail-gateway: AWS CloudTrail as a gRPC service.
//!
//! The request path, one way through: `server` (tower layers) → `api` (one impl per RPC) → `convert`
//! (validation, proto ⇄ SDK) → `aws_sdk_cloudtrail::Client` (built by `upstream`) → a transport: real
//! AWS, any compatible endpoint, or `local` (the embedded CloudTrail). `error` is the one place an SDK
//! error becomes a gRPC status.

pub mod api;
pub mod auth;
pub mod config;
pub mod convert;
pub mod error;
pub mod health;
pub mod ids;
pub mod limits;
pub mod local;
pub mod middleware;
pub mod principal;
pub mod server;
pub mod side_port;
pub mod telemetry;
pub mod upstream;

/// CloudTrail's operations, each served as the RPC of the same name.
pub const OPERATIONS: [&str; 14] = [
    "AddTags",
    "CreateTrail",
    "DeleteTrail",
    "DescribeTrails",
    "GetEventSelectors",
    "GetTrailStatus",
    "ListPublicKeys",
    "ListTags",
    "LookupEvents",
    "PutEventSelectors",
    "RemoveTags",
    "StartLogging",
    "StopLogging",
    "UpdateTrail",
];

/// The generated proto types, client and server.
pub mod pb {
    tonic::include_proto!("cloudtrail.gateway.v1");

    /// The encoded descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("cloudtrail_descriptor");
}
