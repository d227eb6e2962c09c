//! Upstream faults, injected in the embedded CloudTrail: ThrottlingException, HTTP 500 and 503, slow
//! answers, connection resets and a dead endpoint. Each maps to the documented status, is retried as
//! the retry mode says, is counted in the metrics, and nothing hangs past the caller's deadline.

use crate::common;

use std::time::{Duration, Instant};

use cloudtrail_gateway::{config::Config, local::Fault, pb};
use common::TestGateway;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

fn with_attempts(max_attempts: u32) -> Config {
    let mut config = common::test_config();
    config.upstream.max_attempts = max_attempts;
    config
}

fn describe(deadline: Duration) -> Request<pb::DescribeTrailsRequest> {
    let mut request = Request::new(pb::DescribeTrailsRequest::default());
    request.set_timeout(deadline);
    request
}

fn metric(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn status_of(gw: &TestGateway, deadline: Duration) -> Result<(), Status> {
    gw.client
        .clone()
        .describe_trails(describe(deadline))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn transient_faults_are_retried_and_counted() {
    let _alone = crate::alone().await;
    let local = common::test_local();
    let gw = TestGateway::start_with(with_attempts(3), local.clone()).await;
    status_of(&gw, Duration::from_secs(10))
        .await
        .expect("started");
    let (_, before) = gw.http_get("/metrics").await;
    for fault in [
        Fault::error("ThrottlingException"),
        Fault::Status(503),
        Fault::Status(500),
        Fault::Reset,
    ] {
        local.inject(Some("DescribeTrails"), 2, fault.clone());
        status_of(&gw, Duration::from_secs(20))
            .await
            .unwrap_or_else(|s| panic!("{fault:?} twice, then served on the third attempt: {s:?}"));
    }
    assert_eq!(local.faults_happened(), 8);
    let (_, after) = gw.http_get("/metrics").await;
    let attempts = |m: &str| {
        metric(
            m,
            "cloudtrail_upstream_attempts_total",
            "operation=\"DescribeTrails\"",
        )
    };
    assert!(
        attempts(&after) - attempts(&before) >= 12.0,
        "4 calls × 3 attempts counted: {}",
        attempts(&after) - attempts(&before)
    );
}

#[tokio::test]
async fn faults_beyond_the_retries_map_to_their_documented_status() {
    let _alone = crate::alone().await;
    let local = common::test_local();
    let gw = TestGateway::start_with(with_attempts(1), local.clone()).await;
    status_of(&gw, Duration::from_secs(10))
        .await
        .expect("started");
    let cases = [
        (
            Fault::error("ThrottlingException"),
            Code::ResourceExhausted,
            "ThrottlingException",
        ),
        (Fault::Status(503), Code::Unavailable, "UnknownError"),
        (Fault::Status(500), Code::Unavailable, "UnknownError"),
        (Fault::Reset, Code::Unavailable, "UpstreamUnreachable"),
        (
            Fault::error("InsufficientS3BucketPolicyException"),
            Code::FailedPrecondition,
            "InsufficientS3BucketPolicyException",
        ),
    ];
    for (fault, code, reason) in cases {
        local.inject(Some("DescribeTrails"), 1, fault.clone());
        let status = status_of(&gw, Duration::from_secs(10))
            .await
            .expect_err("one attempt, and it fails");
        assert_eq!(status.code(), code, "{fault:?}: {status:?}");
        let info = status
            .get_details_error_info()
            .unwrap_or_else(|| panic!("{fault:?}: no ErrorInfo"));
        assert_eq!(info.reason, reason, "{fault:?}");
        let retryable = matches!(code, Code::ResourceExhausted | Code::Unavailable);
        assert_eq!(
            status.get_details_retry_info().is_some(),
            retryable,
            "{fault:?}: RetryInfo"
        );
    }
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        metric(
            &metrics,
            "cloudtrail_upstream_requests_total",
            "outcome=\"ThrottlingException\""
        ) >= 1.0,
        "{metrics}"
    );
}

/// A slow answer and a dead endpoint (no answer at all) end at the caller's deadline, with
/// DEADLINE_EXCEEDED, whatever the retries would still try.
#[tokio::test]
async fn slow_and_dead_upstreams_end_at_the_callers_deadline() {
    let _alone = crate::alone().await;
    let local = common::test_local();
    let gw = TestGateway::start_with(with_attempts(3), local.clone()).await;
    status_of(&gw, Duration::from_secs(10))
        .await
        .expect("started");
    for fault in [Fault::Delay(Duration::from_secs(5)), Fault::Hang] {
        local.inject(None, 10, fault.clone());
        let started = Instant::now();
        let status = status_of(&gw, Duration::from_millis(800))
            .await
            .expect_err("past the deadline");
        let took = started.elapsed();
        assert_eq!(
            status.code(),
            Code::DeadlineExceeded,
            "{fault:?}: {status:?}"
        );
        assert!(
            took < Duration::from_millis(1500),
            "{fault:?}: answered after {took:?}"
        );
        local.clear_faults();
    }
    status_of(&gw, Duration::from_secs(10))
        .await
        .expect("served again once the faults are gone");
}
