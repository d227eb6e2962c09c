//! Tower layers around the gRPC routes, outermost first: `metrics`, `trace` (request id, span),
//! `shed` (concurrency limit), `auth`. Each sees the HTTP request (path, headers, connection info),
//! never an RPC's fields.

pub mod auth;
pub mod metrics;
pub mod shed;
pub mod trace;
