//! The gateway end to end, one module per concern: the real server on an ephemeral loopback port (in
//! this process, or the binary as a process), called with the generated client or the client crate;
//! upstream the embedded CloudTrail or moto, Redis where quotas are shared. One binary, not one per file: each links the whole AWS SDK. Tests that
//! read the process's metric counters exactly are in `tests/counters/`.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod auth;
mod client;
mod delivery;
mod deploy;
mod differential;
mod embedded;
mod limits;
mod logs;
mod metrics;
mod moto;
mod ops;
mod otlp;
mod reconcile;
mod reflection;
mod store;
mod streams;
mod upstream;
