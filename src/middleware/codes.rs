//! Status codes tonic chooses where gRPC's status-code table (and grpc-go, grpc-java, grpc-core)
//! choose another: a message over `--max-message-size` is RESOURCE_EXHAUSTED there, OUT_OF_RANGE in
//! tonic; a request that is not a valid protobuf message is the caller's error (INVALID_ARGUMENT),
//! INTERNAL in tonic. Fixed in the headers (a request too large or malformed: trailers-only answer)
//! and in the trailers (an answer too large), the message kept. The observing layer applies it, before
//! it reads the status: the caller and the metrics see the same code, and no layer of its own wraps
//! every answer's body again.

use http::{HeaderMap, HeaderValue};
use tonic::Code;

/// The header (and trailer) that carries a gRPC status code.
pub const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// OUT_OF_RANGE because a message was over the size limit → RESOURCE_EXHAUSTED; INTERNAL because
/// the request did not decode → INVALID_ARGUMENT.
pub fn correct(headers: &mut HeaderMap) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::{
        observe,
        testing::{answer, request},
    };
    use tonic::Status;
    use tower::{Layer, ServiceExt};

    fn code_of(headers: &HeaderMap) -> Option<&str> {
        headers.get(&GRPC_STATUS).and_then(|v| v.to_str().ok())
    }

    /// What tonic answers, and what the caller gets (the observing layer corrects).
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
            let response = observe::layer()
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
