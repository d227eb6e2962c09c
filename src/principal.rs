//! Who is calling. The auth layer attaches a `Principal` to each request; the API scopes the upstream
//! call with its name so the embedded CloudTrail can record it as the event's username (the SDK call
//! runs inside the caller's task, so a task-local carries it without touching the SDK request).

use std::{future::Future, sync::Arc};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A token's principal name, a JWT's principal claim, or a certificate's SPIFFE id / CN.
    pub name: Arc<str>,
    /// Roles granted by configuration or by the JWT's roles claim.
    pub roles: Arc<[String]>,
    /// How the caller proved it.
    pub method: AuthMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    StaticToken,
    Jwt,
    Certificate,
}

tokio::task_local! {
    static CALLER: Arc<str>;
}

/// Runs `fut` (an upstream call) on behalf of `caller`, if there is one.
pub async fn on_behalf_of<F: Future>(caller: Option<&Principal>, fut: F) -> F::Output {
    match caller {
        Some(p) => CALLER.scope(p.name.clone(), fut).await,
        None => fut.await,
    }
}

/// Runs `fut` on behalf of the gateway's own `name` (its health probe, say).
pub async fn as_gateway<F: Future>(name: &'static str, fut: F) -> F::Output {
    CALLER.scope(name.into(), fut).await
}

/// The caller of the upstream call running in this task, if any.
pub fn current_caller() -> Option<Arc<str>> {
    CALLER.try_with(Arc::clone).ok()
}
