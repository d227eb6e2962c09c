//! Health and reflection, as grpcurl and GUIs use them: reflection v1 and v1alpha both serve the
//! proto with its doc comments (what `grpcurl describe` shows), health reports the service SERVING.

use crate::common;

use common::TestGateway;
use prost::Message;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const SERVICE: &str = "cloudtrail.gateway.v1.CloudTrailService";

/// The leading comments of every element of the served proto file.
fn comments(files: Vec<Vec<u8>>) -> Vec<String> {
    files
        .into_iter()
        .map(|bytes| {
            prost_types::FileDescriptorProto::decode(&bytes[..]).expect("FileDescriptorProto")
        })
        .filter(|f| f.name() == "cloudtrail/gateway/v1/cloudtrail.proto")
        .flat_map(|f| f.source_code_info.expect("source info is served").location)
        .filter_map(|l| l.leading_comments)
        .collect()
}

/// Asks one reflection version for the file declaring the service; both versions share a shape.
macro_rules! file_of_service {
    ($version:ident, $addr:expr) => {{
        use tonic_reflection::pb::$version::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(common::channel($addr).await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(SERVICE.into())),
        };
        let mut answers = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection")
            .into_inner();
        match answers
            .message()
            .await
            .expect("answer")
            .and_then(|a| a.message_response)
        {
            Some(MessageResponse::FileDescriptorResponse(files)) => files.file_descriptor_proto,
            other => panic!("unexpected reflection answer: {other:?}"),
        }
    }};
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_serve_the_documented_proto() {
    let gw = TestGateway::start().await;
    for files in [
        file_of_service!(v1, gw.addr),
        file_of_service!(v1alpha, gw.addr),
    ] {
        let comments = comments(files);
        assert!(
            comments
                .iter()
                .any(|c| c.contains("Looks up management events")),
            "RPC comments"
        );
        assert!(
            comments.iter().any(|c| c.contains("3-128 ASCII letters")),
            "field comments"
        );
        assert!(
            comments.len() > 150,
            "every RPC, message, field and enum value is documented: {}",
            comments.len()
        );
    }
}

#[tokio::test]
async fn health_reports_serving() {
    let gw = TestGateway::start().await;
    let mut health = HealthClient::new(common::channel(gw.addr).await);
    // SERVING once the first upstream probe answered (moments after start).
    for service in ["", SERVICE] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let status = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .expect("health check")
                .into_inner()
                .status;
            if status == ServingStatus::Serving as i32 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{service:?} never SERVING: {status}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
