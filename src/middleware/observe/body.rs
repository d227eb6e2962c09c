//! The response body, watched for the trailers that carry the call's status; tonic's codes are
//! corrected on the way (`codes::correct`), so the caller and the metrics see the same one.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use tonic::{Code, Status};
use tower::BoxError;

use super::call::Call;
use crate::middleware::codes;

pub(super) fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers
        .get(&codes::GRPC_STATUS)?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(Code::from_i32(value))
}

pin_project_lite::pin_project! {
    /// The response body, watched for the trailers that carry the status.
    pub struct Observed<B> {
        #[pin]
        pub(super) inner: B,
        pub(super) call: Call,
    }
}

impl<B> HttpBody for Observed<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => {
                let frame = match frame.into_trailers() {
                    Ok(mut trailers) => {
                        codes::correct(&mut trailers);
                        if let Some(code) = status_in(&trailers) {
                            this.call.finish(code);
                        }
                        Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                };
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                let status = Status::from_error(e.into());
                this.call.finish(status.code());
                Poll::Ready(Some(Err(status)))
            }
            None => {
                this.call.finish(Code::Unknown);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
