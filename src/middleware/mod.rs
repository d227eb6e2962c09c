//! Tower layers around the gRPC routes. Each sees the HTTP request (path, headers, connection info),
//! never an RPC's fields.

pub mod auth;
