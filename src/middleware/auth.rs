//! The authentication and authorization layer: runs before anything that touches the request or
//! holds a resource, answers UNAUTHENTICATED / PERMISSION_DENIED itself, attaches the `Principal` to
//! the request (for the RPCs) and to the response (for the access log).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use tonic::{
    Status,
    body::Body,
    metadata::MetadataValue,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use tower::{Layer, Service, ServiceExt, util::Oneshot};

use crate::{
    auth::{Authenticator, Decision, Failure, Verdict},
    principal::Principal,
};

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

/// A refusal, and who was refused when that is known (the access log names them).
type Refusal = (Status, Option<Principal>);

/// The answer to a refused call, or the call let through with its principal.
fn act<B>(
    decision: Decision,
    request: &mut http::Request<B>,
) -> Result<Option<Principal>, Refusal> {
    match decision {
        Decision::Open => Ok(None),
        Decision::Allowed(principal) => {
            tracing::Span::current().record("principal", tracing::field::display(&*principal.name));
            request.extensions_mut().insert(principal.clone());
            Ok(Some(principal))
        }
        Decision::Unauthenticated(failure) => {
            metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => failure.label())
                .increment(1);
            let path = crate::middleware::routes::route(request.uri().path());
            tracing::warn!(
                method = path.method,
                reason = failure.label(),
                "unauthenticated call refused"
            );
            Err((unauthenticated(failure), None))
        }
        Decision::Denied {
            principal,
            operation,
        } => {
            metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => crate::auth::DENIED_LABEL)
                .increment(1);
            tracing::warn!(
                principal = &*principal.name,
                rpc = operation.name(),
                "call refused: not permitted"
            );
            // Where it asked to go, if it said so well.
            let metadata = tonic::metadata::MetadataMap::from_headers(request.headers().clone());
            let asked = crate::accounts::requested(&metadata).unwrap_or_default();
            crate::audit::write(&crate::audit::AuditRecord {
                principal: Some(&principal),
                account: asked.account.as_deref(),
                region: asked.region.as_deref(),
                operation,
                trail: None,
                code: tonic::Code::PermissionDenied,
                request_id: request
                    .headers()
                    .get(crate::middleware::trace::REQUEST_ID)
                    .and_then(|v| v.to_str().ok()),
                aws_request_id: None,
                answered: None,
            });
            let message = format!("principal '{}' may not call {operation}", principal.name);
            Err((Status::permission_denied(message), Some(principal)))
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthLayer(Arc<Authenticator>);

/// The authentication layer.
pub fn layer(auth: Arc<Authenticator>) -> AuthLayer {
    AuthLayer(auth)
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            auth: self.0.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Auth<S> {
    auth: Arc<Authenticator>,
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = AuthFuture<S, B>;

    /// Always ready: the inner service's readiness (a concurrency permit) is waited for only once a
    /// call is let through, so a caller still being authenticated holds nothing.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let certificates = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs());
        let mut presented = request
            .headers()
            .get_all(http::header::AUTHORIZATION)
            .iter();
        let authorization = presented.next().map(|v| v.as_bytes());
        // Two credentials are nobody's: which one a proxy or a server reads differs.
        let several = presented.next().is_some();
        let verdict = if several && !self.auth.is_open(request.uri().path()) {
            Verdict::Now(Decision::Unauthenticated(Failure::Several))
        } else {
            self.auth.decide(
                request.uri().path(),
                authorization,
                certificates
                    .as_ref()
                    .and_then(|c| c.first())
                    .map(|c| c.as_ref()),
            )
        };
        let state = match verdict {
            Verdict::Now(decision) => match act(decision, &mut request) {
                Ok(principal) => State::Calling {
                    call: self.inner.clone().oneshot(request),
                    principal,
                },
                Err((status, principal)) => State::Refused {
                    status: Some(status),
                    principal,
                },
            },
            Verdict::Later(decision) => State::Deciding {
                decision,
                pending: Some((self.inner.clone(), request)),
            },
        };
        AuthFuture { state }
    }
}

pin_project_lite::pin_project! {
    pub struct AuthFuture<S: Service<http::Request<B>>, B> {
        #[pin]
        state: State<S, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<S: Service<http::Request<B>>, B> {
        Deciding {
            decision: Pin<Box<dyn Future<Output = Decision> + Send>>,
            pending: Option<(S, http::Request<B>)>,
        },
        Calling {
            #[pin]
            call: Oneshot<S, http::Request<B>>,
            principal: Option<Principal>,
        },
        Refused {
            status: Option<Status>,
            principal: Option<Principal>,
        },
    }
}

impl<S, B> Future for AuthFuture<S, B>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Output = Result<http::Response<Body>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProjection::Deciding { decision, pending } => {
                    let decision = ready!(decision.as_mut().poll(cx));
                    let Some((inner, mut request)) = pending.take() else {
                        return Poll::Ready(Ok(Status::internal("auth: polled again").into_http()));
                    };
                    match act(decision, &mut request) {
                        Ok(principal) => State::Calling {
                            call: inner.oneshot(request),
                            principal,
                        },
                        Err((status, principal)) => State::Refused {
                            status: Some(status),
                            principal,
                        },
                    }
                }
                StateProjection::Calling { call, principal } => {
                    let mut response = ready!(call.poll(cx))?;
                    if let Some(principal) = principal.take() {
                        response.extensions_mut().insert(principal);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProjection::Refused { status, principal } => {
                    let status = status
                        .take()
                        .unwrap_or_else(|| Status::internal("auth: polled again"));
                    let mut response = status.into_http();
                    if let Some(principal) = principal.take() {
                        response.extensions_mut().insert(principal);
                    }
                    return Poll::Ready(Ok(response));
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::{AuthConfig, tokens::TokenEntry},
        middleware::testing::{answer, request},
        operation::Operation,
    };
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn authenticator() -> Arc<Authenticator> {
        let token = TokenEntry {
            principal: "ci".into(),
            sha256: Sha256::digest(b"s3cret")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            roles: vec!["reader".into()],
            accounts: Vec::new(),
            regions: Vec::new(),
        };
        let config = AuthConfig {
            tokens: vec![token],
            open_health: true,
            ..Default::default()
        };
        Arc::new(Authenticator::new(&config).await.unwrap())
    }

    fn code(response: &http::Response<Body>) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn refused_calls_never_reach_the_inner_service() {
        let auth = authenticator().await;
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = answer(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(Status::ok("").into_http())
        });
        let send = |path: String, token: Option<&'static str>| {
            let service = layer(auth.clone()).layer(inner.clone());
            let mut request = request(&path);
            if let Some(token) = token {
                request
                    .headers_mut()
                    .insert("authorization", token.parse().unwrap());
            }
            service.oneshot(request)
        };
        let missing = send(Operation::DescribeTrails.path(), None).await.unwrap();
        assert_eq!(code(&missing), Some("16"));
        assert!(missing.headers().contains_key("www-authenticate"));
        let denied = send(Operation::DeleteTrail.path(), Some("Bearer s3cret"))
            .await
            .unwrap();
        assert_eq!(code(&denied), Some("7"));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        let allowed = send(Operation::DescribeTrails.path(), Some("Bearer s3cret"))
            .await
            .unwrap();
        assert_eq!(code(&allowed), Some("0"));
        assert_eq!(
            allowed.extensions().get::<Principal>().map(|p| &*p.name),
            Some("ci"),
            "the principal rides on the response for the access log"
        );
        let health = send("/grpc.health.v1.Health/Check".into(), None)
            .await
            .unwrap();
        assert_eq!(code(&health), Some("0"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Two authorization headers, even both valid, are refused.
        let service = layer(auth.clone()).layer(inner.clone());
        let mut twice = request(&Operation::DescribeTrails.path());
        for _ in 0..2 {
            twice
                .headers_mut()
                .append("authorization", "Bearer s3cret".parse().unwrap());
        }
        let refused = service.oneshot(twice).await.unwrap();
        assert_eq!(code(&refused), Some("16"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
