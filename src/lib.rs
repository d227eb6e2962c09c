// The RPC futures nest deeply (routing, the idempotency store, the read cache and the coalescer
// around the SDK call): their layout needs more than the default 128 levels of query depth.
#![recursion_limit = "256"]
//! cloudtrail-gateway: AWS CloudTrail as a gRPC service.
//!
//! The request path, one way through: `server` (tower layers from `middleware`) → `api` (one impl per
//! RPC) → `convert` (validation, proto ⇄ SDK) → `limits` → an `aws_sdk_cloudtrail::Client` (from
//! `upstream`) → a transport: real AWS, any compatible endpoint, or the embedded CloudTrail (the
//! `cloudtrail-local` crate). `error` is the one place a failure becomes a gRPC status; `operation`
//! is the one place an operation's name, path, quota class and read-only-ness are known.

pub mod accounts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod convert;
pub mod error;
pub mod feeds;
pub mod health;
pub mod idempotency;
pub mod ids;
pub mod ingest;
pub mod limits;
pub mod locks;
pub mod logfmt;
pub mod middleware;
pub mod operation;
pub mod principal;
pub mod server;
pub mod store;
pub mod target;
pub mod telemetry;
pub mod upstream;

/// The embedded CloudTrail, re-exported for embedding the gateway with one (tests, benchmarks).
pub use cloudtrail_local as local;

/// The generated proto types, client and server.
pub mod pb {
    tonic::include_proto!("cloudtrail.gateway.v1");

    /// The encoded descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("cloudtrail_descriptor");
}
