//! Status codes tonic chooses where gRPC's status-code table (and grpc-go, grpc-java, grpc-core)
//! choose another: a message over `--max-message-size` is RESOURCE_EXHAUSTED there, OUT_OF_RANGE in
//! tonic; a request that is not a valid protobuf message is the caller's error (INVALID_ARGUMENT),
//! INTERNAL in tonic. Fixed in the headers (a request too large or malformed: trailers-only answer)
//! and in the trailers (an answer too large), the message kept.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderMap, HeaderValue};
use http_body::{Body as HttpBody, Frame};
use tonic::Code;
use tower::{Layer, Service};

const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// OUT_OF_RANGE because a message was over the size limit → RESOURCE_EXHAUSTED; INTERNAL because
/// the request did not decode → INVALID_ARGUMENT.
fn correct(headers: &mut HeaderMap) {
    let is = |code: Code| {
        headers
            .get(&GRPC_STATUS)
            .is_some_and(|v| v.as_bytes() == (code as i32).to_string().as_bytes())
    };
    // grpc-message is percent-encoded; tonic's size errors say "message length too large", its
    // decode errors "failed to decode Protobuf message".
    let says = |text: &str| {
        headers
            .get("grpc-message")
            .is_some_and(|m| String::from_utf8_lossy(m.as_bytes()).contains(text))
    };
    let corrected = if is(Code::OutOfRange) && says("message%20length%20too%20large") {
        Code::ResourceExhausted
    } else if is(Code::Internal) && says("failed%20to%20decode%20Protobuf%20message") {
        Code::InvalidArgument
    } else {
        return;
    };
    headers.insert(GRPC_STATUS, HeaderValue::from(corrected as i32));
}

#[derive(Debug, Clone, Default)]
pub struct CodesLayer;

pub fn layer() -> CodesLayer {
    CodesLayer
}

impl<S> Layer<S> for CodesLayer {
    type Service = Codes<S>;
    fn layer(&self, inner: S) -> Codes<S> {
        Codes { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Codes<S> {
    inner: S,
}

impl<S, B, ResBody> Service<http::Request<B>> for Codes<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<Corrected<ResBody>>;
    type Error = S::Error;
    type Future = CodesFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        CodesFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct CodesFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, ResBody, E> Future for CodesFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<Corrected<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().inner.poll(cx))?;
        correct(response.headers_mut());
        Poll::Ready(Ok(response.map(|inner| Corrected { inner })))
    }
}

pin_project_lite::pin_project! {
    /// The response body, its trailers corrected.
    pub struct Corrected<B> {
        #[pin]
        inner: B,
    }
}

impl<B: HttpBody> HttpBody for Corrected<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let frame = ready!(self.project().inner.poll_frame(cx));
        Poll::Ready(frame.map(|frame| {
            frame.map(|frame| match frame.into_trailers() {
                Ok(mut trailers) => {
                    correct(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            })
        }))
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
    use crate::middleware::testing::{answer, request};
    use tonic::Status;
    use tower::ServiceExt;

    fn code_of(headers: &HeaderMap) -> Option<&str> {
        headers.get(&GRPC_STATUS).and_then(|v| v.to_str().ok())
    }

    /// What tonic answers, and what the caller gets.
    #[tokio::test]
    async fn codes_are_corrected_where_grpc_spells_them_otherwise() {
        let cases = [
            (
                Status::out_of_range(
                    "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
                ),
                "8",
            ),
            (Status::out_of_range("page 7 of 3"), "11"),
            (
                Status::internal(
                    "failed to decode Protobuf message: DescribeTrailsRequest.trail_name_list: invalid wire type",
                ),
                "3",
            ),
            (Status::internal("a kept answer does not decode"), "13"),
        ];
        for (status, expected) in cases {
            let text = status.message().to_owned();
            let response = layer()
                .layer(answer(move || Ok(status.clone().into_http())))
                .oneshot(request("/x/Y"))
                .await
                .unwrap();
            assert_eq!(code_of(response.headers()), Some(expected), "{text}");
        }
    }

    #[test]
    fn trailers_are_corrected_too() {
        let mut trailers = Status::out_of_range(
            "Error, encoded message length too large: found 9 bytes, the limit is: 1 bytes",
        )
        .into_http::<tonic::body::Body>()
        .headers()
        .clone();
        correct(&mut trailers);
        assert_eq!(code_of(&trailers), Some("8"));
    }
}
