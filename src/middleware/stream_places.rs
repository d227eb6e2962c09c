//! Streaming calls (health's Watch, reflection, event streams) are bounded too: each holds one of
//! `max_streaming_calls` places for as long as its response streams, and beyond, RESOURCE_EXHAUSTED
//! at once. Within that, so that no caller can take every place: streams opened without credentials
//! (health and reflection answer without) share `max_open_streams`, and each principal may hold
//! `max_streams_per_principal` (or its role's `max_streams`). Unary calls are `shed`'s: their work
//! is done before the answer is sent, so a permit that ends with the handler is enough there; a
//! stream's memory lives as long as its body. This layer runs after authentication, which names
//! the principal.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
};

use http_body::{Body as HttpBody, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::{auth::policy::Policy, principal::Principal, telemetry};

/// What a stream over the limit is answered.
pub const MESSAGE: &str = "the gateway is at its limit of open streams; retry shortly";
/// What a stream over its caller's own limit is answered.
pub const PRINCIPAL_MESSAGE: &str =
    "this caller holds as many open streams as it may; close one or retry later";
/// What an unauthenticated stream over its pool is answered.
pub const OPEN_MESSAGE: &str =
    "the gateway is at its limit of streams opened without credentials; retry shortly";

fn is_streaming(path: &str) -> bool {
    super::routes::route(path).kind != "unary"
}

/// How many streams who may hold.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    pub max_streams: usize,
    pub max_open_streams: usize,
    pub max_streams_per_principal: usize,
    /// Without authentication every stream is the one local developer's: only `max_streams`.
    pub authentication: bool,
}

#[derive(Debug)]
struct Places {
    all: Arc<Semaphore>,
    open: Arc<Semaphore>,
    limits: StreamLimits,
    policy: Arc<Policy>,
    /// Streams held per principal (by `Principal::key`); an entry goes when its count is zero.
    held: Mutex<HashMap<Arc<str>, usize>>,
}

/// One stream's places; all given back when it is dropped.
#[derive(Debug)]
pub struct Place {
    _all: OwnedSemaphorePermit,
    _open: Option<OwnedSemaphorePermit>,
    principal: Option<(Arc<Places>, Arc<str>)>,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some((places, key)) = self.principal.take() {
            let mut held = places.held.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = held.get_mut(&key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    held.remove(&key);
                }
            }
        }
    }
}

/// Why a stream got no place.
#[derive(Debug, Clone, Copy)]
enum Full {
    All,
    Open,
    Principal,
}

impl Full {
    fn label(self) -> &'static str {
        match self {
            Full::All => "stream",
            Full::Open => "stream_open",
            Full::Principal => "stream_principal",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Full::All => MESSAGE,
            Full::Open => OPEN_MESSAGE,
            Full::Principal => PRINCIPAL_MESSAGE,
        }
    }
}

impl Places {
    fn take(self: &Arc<Self>, principal: Option<&Principal>) -> Result<Place, Full> {
        let all = self
            .all
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full::All)?;
        if !self.limits.authentication {
            return Ok(Place {
                _all: all,
                _open: None,
                principal: None,
            });
        }
        let Some(principal) = principal else {
            let open = self
                .open
                .clone()
                .try_acquire_owned()
                .map_err(|_| Full::Open)?;
            return Ok(Place {
                _all: all,
                _open: Some(open),
                principal: None,
            });
        };
        let bound = self
            .policy
            .max_streams(&principal.roles)
            .unwrap_or(self.limits.max_streams_per_principal);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(principal.key.clone()).or_insert(0);
        if *count >= bound {
            return Err(Full::Principal);
        }
        *count += 1;
        Ok(Place {
            _all: all,
            _open: None,
            principal: Some((self.clone(), principal.key.clone())),
        })
    }
}

#[derive(Debug, Clone)]
pub struct StreamsLayer(Arc<Places>);

/// Streaming calls bounded as `limits` says, per principal as `policy`'s roles say.
pub fn layer(limits: StreamLimits, policy: Arc<Policy>) -> StreamsLayer {
    for full in [Full::All, Full::Open, Full::Principal] {
        metrics::counter!(telemetry::SHED, "kind" => full.label()).increment(0);
    }
    StreamsLayer(Arc::new(Places {
        all: Arc::new(Semaphore::new(limits.max_streams)),
        open: Arc::new(Semaphore::new(limits.max_open_streams)),
        limits,
        policy,
        held: Mutex::default(),
    }))
}

impl<S> Layer<S> for StreamsLayer {
    type Service = Streams<S>;
    fn layer(&self, inner: S) -> Streams<S> {
        Streams {
            places: self.0.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Streams<S> {
    places: Arc<Places>,
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Streams<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = StreamsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !is_streaming(request.uri().path()) {
            return StreamsFuture::Calling {
                call: self.inner.call(request),
                place: None,
            };
        }
        match self.places.take(request.extensions().get::<Principal>()) {
            Ok(place) => StreamsFuture::Calling {
                call: self.inner.call(request),
                place: Some(place),
            },
            Err(full) => {
                metrics::counter!(telemetry::SHED, "kind" => full.label()).increment(1);
                StreamsFuture::Refused { full }
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = StreamsProjection]
    pub enum StreamsFuture<F> {
        Calling {
            #[pin]
            call: F,
            place: Option<Place>,
        },
        Refused { full: Full },
    }
}

impl<F, E> Future for StreamsFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, E>>,
{
    type Output = Result<http::Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            StreamsProjection::Calling { call, place } => {
                let response = ready!(call.poll(cx))?;
                // Only a stream's body is wrapped (one allocation per stream, none per unary call).
                Poll::Ready(Ok(match place.take() {
                    Some(place) => response.map(|inner| {
                        Body::new(Held {
                            inner,
                            place: Some(place),
                        })
                    }),
                    None => response,
                }))
            }
            StreamsProjection::Refused { full } => {
                Poll::Ready(Ok(Status::resource_exhausted(full.message()).into_http()))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body holding its stream's place until it ends or is dropped.
    pub struct Held {
        #[pin]
        inner: Body,
        place: Option<Place>,
    }
}

impl HttpBody for Held {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, Status>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if frame.is_none() {
            this.place.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::testing::{answer, request, trailers_status};
    use tower::ServiceExt;

    const WATCH: &str = "/grpc.health.v1.Health/Watch";

    fn code(response: &http::Response<Body>) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    fn limits(max_streams: usize, authentication: bool) -> StreamLimits {
        StreamLimits {
            max_streams,
            max_open_streams: 2,
            max_streams_per_principal: 2,
            authentication,
        }
    }

    fn policy() -> Arc<Policy> {
        let custom = [(
            "follower".to_owned(),
            crate::auth::policy::RoleEntry::Scoped {
                rpcs: vec!["StreamEvents".into()],
                accounts: vec![],
                regions: vec![],
                max_streams: Some(3),
            },
        )]
        .into();
        Arc::new(Policy::new(&custom).unwrap())
    }

    fn as_principal(principal: &Principal) -> http::Request<tonic::body::Body> {
        let mut r = request(WATCH);
        r.extensions_mut().insert(principal.clone());
        r
    }

    /// The attack: 1200 unauthenticated Health/Watch streams, or 1000 followers of one reader, made
    /// every other caller's streams RESOURCE_EXHAUSTED. Now each has a pool of its own.
    #[tokio::test]
    async fn no_caller_takes_every_place() {
        let limit = layer(limits(10, true), policy());
        let inner = answer(|| Ok(trailers_status(tonic::Code::Ok)));
        let call = |r| limit.layer(inner.clone()).oneshot(r);
        let mut open = Vec::new();
        for _ in 0..2 {
            open.push(call(request(WATCH)).await.unwrap());
        }
        assert!(open.iter().all(|r| code(r).is_none()));
        assert_eq!(
            code(&call(request(WATCH)).await.unwrap()),
            Some("8"),
            "the unauthenticated pool is full"
        );
        let mut reader = Principal::test("reader");
        reader.roles = Arc::new(["reader".to_owned()]);
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(call(as_principal(&reader)).await.unwrap());
        }
        assert_eq!(
            code(&call(as_principal(&reader)).await.unwrap()),
            Some("8"),
            "the reader's own bound"
        );
        // Another caller, and a role with a bound of its own, still get places.
        let other = Principal::test("other");
        assert_eq!(code(&call(as_principal(&other)).await.unwrap()), None);
        let mut follower = Principal::test("follower");
        follower.roles = Arc::new(["follower".to_owned()]);
        for _ in 0..3 {
            held.push(call(as_principal(&follower)).await.unwrap());
        }
        assert_eq!(
            code(&call(as_principal(&follower)).await.unwrap()),
            Some("8")
        );
        // A JWT principal of the same name is another caller.
        let jwt = Principal::new(
            "reader",
            Arc::new([]),
            crate::principal::AuthMethod::Jwt,
            Arc::default(),
            Some("https://idp"),
        );
        assert_eq!(code(&call(as_principal(&jwt)).await.unwrap()), None);
        // A place comes back with its body.
        held.remove(0);
        assert_eq!(code(&call(as_principal(&reader)).await.unwrap()), None);
        // Without authentication only the global bound applies.
        let local = layer(limits(3, false), policy());
        let mut all = Vec::new();
        for _ in 0..3 {
            all.push(
                local
                    .layer(inner.clone())
                    .oneshot(request(WATCH))
                    .await
                    .unwrap(),
            );
        }
        assert!(all.iter().all(|r| code(r).is_none()));
        let fourth = local
            .layer(inner.clone())
            .oneshot(request(WATCH))
            .await
            .unwrap();
        assert_eq!(code(&fourth), Some("8"));
    }

    #[tokio::test]
    async fn open_streams_hold_their_place_until_their_body_ends() {
        let limit = layer(limits(1, false), policy());
        let inner = answer(|| Ok(trailers_status(tonic::Code::Ok)));
        let first = limit
            .layer(inner.clone())
            .oneshot(request(WATCH))
            .await
            .unwrap();
        assert_eq!(code(&first), None, "streaming");
        let second = limit
            .layer(inner.clone())
            .oneshot(request(WATCH))
            .await
            .unwrap();
        assert_eq!(
            code(&second),
            Some("8"),
            "no place left while the first streams"
        );
        // Unary calls are not counted here.
        let unary = limit
            .layer(inner.clone())
            .oneshot(request("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert_eq!(code(&unary), None);
        drop(first);
        let third = limit.layer(inner).oneshot(request(WATCH)).await.unwrap();
        assert_eq!(
            code(&third),
            None,
            "the place came back with the first body"
        );
    }
}
