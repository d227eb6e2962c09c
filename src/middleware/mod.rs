//! The tower layers around the gRPC routes, outermost first (assembled in `server.rs`):
//!
//! 1. `observe`: every call's one final status, as metrics and an access-log line (refused calls
//!    included); turns a layer's error into its status, and corrects the status codes tonic picks
//!    that gRPC's own table spells otherwise (`codes`, applied there: no body wrapper of its own).
//! 2. request ids (tower-http `SetRequestId`/`PropagateRequestId`, `trace::NewRequestId`): the
//!    caller's `x-request-id` when it is acceptable, or a new one, on the request and the response.
//! 3. tracing (tower-http `TraceLayer` with its gRPC classifier, `trace`): one span per call, child of
//!    the caller's W3C `traceparent`; server-side failures logged.
//! 4. `auth`: authentication and per-method authorization; nothing below runs for a refused caller,
//!    and an unauthenticated caller never holds a concurrency permit.
//! 5. `stream_places`: streaming calls hold one of `max_streaming_calls` places for their whole life,
//!    within a pool for unauthenticated streams and a bound per principal (so after `auth`).
//! 6. shedding (tower `LoadShed` over `GlobalConcurrencyLimit`, `shed`): at most
//!    `max_concurrent_requests` calls inside; beyond, RESOURCE_EXHAUSTED at once.
//!
//! Each sees the HTTP request (path, headers, connection info), never an RPC's fields. Each is a
//! generic service with a named future: no box per layer per call (the one box is `observe`'s body,
//! which tonic would make anyway; a stream's body is boxed once more by `stream_places`). `routes` is the
//! classification of a path they share.

pub mod auth;
pub mod codes;
pub mod observe;
pub mod routes;
pub mod shed;
pub mod stream_places;
pub mod trace;

#[cfg(test)]
pub(crate) mod testing;
