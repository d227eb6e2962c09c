//! The upstream's failure modes, end to end through the gateway binary: an endpoint that never answers
//! (the caller's deadline bounds the SDK call) and one that refuses connections.

use crate::common;

use std::time::{Duration, Instant};

use cloudtrail_gateway::pb;
use common::procs::{GatewayProcess, free_port};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn the_callers_deadline_bounds_the_upstream_call() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let gw = GatewayProcess::start_on(
        &format!("http://127.0.0.1:{port}"),
        &["--operation-timeout", "60s", "--account-id", "123456789012"],
    )
    .await;
    let mut client = gw.client().await;

    let mut request = tonic::Request::new(pb::DescribeTrailsRequest::default());
    request.set_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let status = client
        .describe_trails(request)
        .await
        .expect_err("no answer upstream");
    let waited = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "UpstreamTimeout"
    );
    assert!(
        waited < Duration::from_secs(3),
        "waited {waited:?} for a 400 ms deadline"
    );

    // Without a caller deadline the configured operation timeout applies.
    let gw = GatewayProcess::start_on(
        &format!("http://127.0.0.1:{port}"),
        &[
            "--operation-timeout",
            "500ms",
            "--account-id",
            "123456789012",
        ],
    )
    .await;
    let mut client = gw.client().await;
    let started = Instant::now();
    let status = client
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect_err("operation timeout");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unreachable_upstream_is_unavailable() {
    let closed = free_port(); // nothing listens there
    let gw = GatewayProcess::start_on(
        &format!("http://127.0.0.1:{closed}"),
        &["--max-attempts", "1", "--account-id", "123456789012"],
    )
    .await;
    let mut client = gw.client().await;
    let status = client
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "any-trail".into(),
        })
        .await
        .expect_err("connection refused");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "UpstreamUnreachable"
    );
    assert!(status.get_details_retry_info().is_some());
}

#[test]
fn aws_upstream_without_a_region_refuses_to_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cloudtrail-gateway"))
        .args(["--listen", "127.0.0.1:0", "--upstream", "aws"])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("CLOUDTRAIL_GATEWAY_REGION")
        .output()
        .expect("run the gateway");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid setting `region`"), "{stderr}");
}
