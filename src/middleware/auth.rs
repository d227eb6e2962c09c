//! The authentication and authorization layer: runs before any validation or upstream call, answers
//! UNAUTHENTICATED / PERMISSION_DENIED itself, and attaches the `Principal` to the request.

use std::sync::Arc;

use tonic::{
    Status,
    metadata::MetadataValue,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use tower::Service;

use super::{Middleware, MiddlewareLayer, Response};
use crate::auth::{Authenticator, Decision, Failure};

#[derive(Debug, Clone)]
pub struct Auth {
    auth: Arc<Authenticator>,
}

/// The authentication layer.
pub fn layer(auth: Arc<Authenticator>) -> MiddlewareLayer<Auth> {
    MiddlewareLayer(Auth { auth })
}

/// UNAUTHENTICATED with a `www-authenticate` challenge (RFC 6750): says what kind of credential is
/// wanted and, for a bad one, only that it is invalid (or expired), nothing that helps an attacker.
fn unauthenticated(failure: Failure) -> Status {
    let (message, challenge) = match failure {
        Failure::Missing => (
            "credentials required",
            r#"Bearer realm="cloudtrail-gateway""#,
        ),
        Failure::Jwt(crate::auth::jwt::JwtProblem::Expired) => (
            "the token expired",
            r#"Bearer realm="cloudtrail-gateway", error="invalid_token", error_description="the token expired""#,
        ),
        _ => (
            "invalid credentials",
            r#"Bearer realm="cloudtrail-gateway", error="invalid_token""#,
        ),
    };
    let mut status = Status::unauthenticated(message);
    status
        .metadata_mut()
        .insert("www-authenticate", MetadataValue::from_static(challenge));
    status
}

impl Middleware for Auth {
    async fn handle<S, B>(
        &self,
        mut request: http::Request<B>,
        mut next: S,
    ) -> Result<Response, S::Error>
    where
        S: Service<http::Request<B>, Response = Response> + Send + 'static,
        S::Future: Send,
        B: Send + 'static,
    {
        let certificates = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs());
        let decision = self
            .auth
            .decide(
                request.uri().path(),
                request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
                certificates
                    .as_ref()
                    .and_then(|c| c.first())
                    .map(|c| c.as_ref()),
            )
            .await;
        match decision {
            Decision::Open => next.call(request).await,
            Decision::Allowed(principal) => {
                tracing::Span::current()
                    .record("principal", tracing::field::display(&*principal.name));
                request.extensions_mut().insert(principal);
                next.call(request).await
            }
            Decision::Unauthenticated(failure) => {
                metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => failure.label())
                    .increment(1);
                tracing::warn!(
                    path = request.uri().path(),
                    reason = failure.label(),
                    "unauthenticated call refused"
                );
                Ok(unauthenticated(failure).into_http())
            }
            Decision::Denied { principal, rpc } => {
                metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => "permission_denied")
                    .increment(1);
                tracing::warn!(
                    principal = &*principal.name,
                    rpc,
                    "call refused: not permitted"
                );
                let message = format!("principal '{}' may not call {rpc}", principal.name);
                Ok(Status::permission_denied(message).into_http())
            }
        }
    }
}
