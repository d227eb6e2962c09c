//! The authentication and authorization layer: runs before any validation or upstream call, answers
//! UNAUTHENTICATED / PERMISSION_DENIED itself, and attaches the `Principal` to the request.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{
    Status,
    body::Body,
    metadata::MetadataValue,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use tower::{Layer, Service};

use crate::auth::{Authenticator, Decision, Failure};

#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(auth: Arc<Authenticator>) -> Self {
        AuthLayer { auth }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
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

impl<S, ReqBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone is not ready; the ready one serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let certificates = request
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.peer_certs());
            let decision = auth
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
                Decision::Open => inner.call(request).await,
                Decision::Allowed(principal) => {
                    tracing::Span::current().record("principal", &*principal.name);
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
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
                    metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => "permission_denied").increment(1);
                    tracing::warn!(
                        principal = &*principal.name,
                        rpc,
                        "call refused: not permitted"
                    );
                    let message = format!("principal '{}' may not call {rpc}", principal.name);
                    Ok(Status::permission_denied(message).into_http())
                }
            }
        })
    }
}
