//! The trail API a control plane reconciles against, end to end on the embedded CloudTrail: GetTrail,
//! ListTrails and insight selectors; trail names working from any Region; idempotent mutations (in
//! one gateway, and across two sharing Redis); pollers' reads cached and dropped on a change;
//! propagation errors retried; ApplyTrail; faults planned by configuration.

use crate::common;

use std::time::Duration;

use cloudtrail_gateway::{
    config::Config,
    local::{Fault, LocalCloudTrail},
    pb::{self, InsightType},
};
use common::{Client, TestGateway, create_request, procs::Redis, request};
use tonic::{Code, Status};
use tonic_types::StatusExt;

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
const RETRY: (&str, &str) = ("x-cloudtrail-retry", "propagation");

/// The embedded CloudTrail's account in three Regions (us-east-1 the default).
fn three_regions() -> Config {
    let mut config = common::test_config();
    config.accounts.regions = REGIONS[1..].iter().map(|r| (*r).to_owned()).collect();
    config
}

async fn gateway(config: Config) -> (TestGateway, LocalCloudTrail) {
    let local = common::test_local();
    (TestGateway::start_with(config, local.clone()).await, local)
}

fn in_region<T>(region: &str, message: T) -> tonic::Request<T> {
    request(message, &[("x-cloudtrail-region", region)])
}

fn insight(kind: InsightType) -> pb::InsightSelector {
    pb::InsightSelector {
        insight_type: kind.into(),
    }
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

#[tokio::test]
async fn get_list_and_insights() {
    let _alone = crate::alone().await;
    let (gw, _local) = gateway(three_regions()).await;
    let mut c = gw.client.clone();
    for (i, region) in REGIONS.iter().enumerate() {
        for j in 0..4 {
            c.create_trail(in_region(region, create_request(&format!("t{i}{j}"))))
                .await
                .expect("CreateTrail");
        }
    }
    let trail = c
        .get_trail(pb::GetTrailRequest { name: "t00".into() })
        .await
        .expect("GetTrail")
        .into_inner()
        .trail
        .expect("trail");
    assert_eq!(
        (trail.home_region.as_str(), trail.s3_bucket_name.as_str()),
        ("us-east-1", "audit-logs")
    );
    // ListTrails: every Region's trails, page by page.
    let mut names = Vec::new();
    let mut next_token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .list_trails(pb::ListTrailsRequest { next_token })
            .await
            .expect("ListTrails")
            .into_inner();
        pages += 1;
        names.extend(
            page.trails
                .iter()
                .map(|t| (t.name.clone(), t.home_region.clone())),
        );
        if page.next_token.is_empty() {
            break;
        }
        next_token = page.next_token;
    }
    assert_eq!(names.len(), 12);
    assert!(pages > 1, "paged");
    assert!(names.contains(&("t21".into(), "ap-south-1".into())));

    // Insights: none, then on, then off.
    let none = c
        .get_insight_selectors(pb::GetInsightSelectorsRequest {
            trail_name: "t00".into(),
        })
        .await
        .expect_err("no Insights yet");
    assert_eq!(
        (none.code(), reason(&none).as_str()),
        (Code::FailedPrecondition, "InsightNotEnabledException")
    );
    let put = c
        .put_insight_selectors(pb::PutInsightSelectorsRequest {
            trail_name: "t00".into(),
            insight_selectors: vec![insight(InsightType::ApiErrorRateInsight)],
            ..Default::default()
        })
        .await
        .expect("PutInsightSelectors")
        .into_inner();
    assert_eq!(
        put.insight_selectors,
        [insight(InsightType::ApiErrorRateInsight)]
    );
    let got = c
        .get_insight_selectors(pb::GetInsightSelectorsRequest {
            trail_name: "t00".into(),
        })
        .await
        .expect("GetInsightSelectors")
        .into_inner();
    assert_eq!(
        got.insight_selectors,
        [insight(InsightType::ApiErrorRateInsight)]
    );
    let bad = c
        .put_insight_selectors(pb::PutInsightSelectorsRequest {
            trail_name: "t00".into(),
            insight_selectors: vec![
                insight(InsightType::Unspecified),
                insight(InsightType::ApiCallRateInsight),
                insight(InsightType::ApiCallRateInsight),
            ],
            ..Default::default()
        })
        .await
        .expect_err("unspecified and twice");
    assert_eq!(
        common::violations(&bad),
        [
            "insight_selectors[0].insight_type",
            "insight_selectors[2].insight_type"
        ]
    );
    c.put_insight_selectors(pb::PutInsightSelectorsRequest {
        trail_name: "t00".into(),
        ..Default::default()
    })
    .await
    .expect("Insights off");
}

#[tokio::test]
async fn a_trail_name_works_from_any_region() {
    let _alone = crate::alone().await;
    let (gw, local) = gateway(three_regions()).await;
    let mut c = gw.client.clone();
    // A name that breaks the rules is refused before anything is sent: no ListTrails for it.
    let invalid = c
        .stop_logging(pb::StopLoggingRequest {
            name: "my--trail".into(),
            ..Default::default()
        })
        .await
        .expect_err("an invalid name");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert!(
        local.served("ListTrails").is_empty(),
        "nothing sent upstream"
    );
    c.create_trail(in_region("eu-west-1", create_request("west-only")))
        .await
        .expect("CreateTrail in eu-west-1");
    // From the default Region (us-east-1), by name: the gateway asks eu-west-1.
    c.start_logging(pb::StartLoggingRequest {
        name: "west-only".into(),
        ..Default::default()
    })
    .await
    .expect("StartLogging by name from another Region");
    let status = c
        .get_trail_status(in_region(
            "ap-south-1",
            pb::GetTrailStatusRequest {
                name: "west-only".into(),
            },
        ))
        .await
        .expect("GetTrailStatus by name from a third Region")
        .into_inner();
    assert_eq!(status.is_logging, Some(true));
    c.get_trail(pb::GetTrailRequest {
        name: "west-only".into(),
    })
    .await
    .expect("GetTrail by name");
    // One listing served all three (cached per account).
    assert_eq!(local.served("ListTrails").len(), 1);
    // Not found only when the trail really does not exist.
    let missing = c
        .get_trail(pb::GetTrailRequest {
            name: "nowhere".into(),
        })
        .await
        .expect_err("no such trail");
    assert_eq!(
        (missing.code(), reason(&missing).as_str()),
        (Code::NotFound, "TrailNotFoundException")
    );
    // Deleted through the gateway, the name is listed again: then not found either.
    c.delete_trail(pb::DeleteTrailRequest {
        name: "west-only".into(),
        ..Default::default()
    })
    .await
    .expect("DeleteTrail by name from another Region");
    let gone = c
        .get_trail(pb::GetTrailRequest {
            name: "west-only".into(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
}

const ID: &str = "3f0c2a9e-8d1b-4c6f-9a7e-2b5d4c3a1f0e";

fn create_with_id(name: &str, id: &str) -> pb::CreateTrailRequest {
    pb::CreateTrailRequest {
        request_id: id.into(),
        ..create_request(name)
    }
}

async fn create_replayed(c: &mut Client, name: &str, id: &str) -> Result<bool, Status> {
    let answer = c.create_trail(create_with_id(name, id)).await?;
    Ok(answer.metadata().get("x-cloudtrail-replayed").is_some())
}

#[tokio::test]
async fn a_retried_request_id_gets_the_first_answer() {
    let _alone = crate::alone().await;
    let (gw, local) = gateway(common::test_config()).await;
    let mut c = gw.client.clone();
    assert!(
        !create_replayed(&mut c, "once", ID)
            .await
            .expect("CreateTrail"),
        "answered, not replayed"
    );
    // The retry: the first answer, not TrailAlreadyExists, and CloudTrail was not called again.
    assert!(
        create_replayed(&mut c, "once", ID)
            .await
            .expect("CreateTrail"),
        "replayed"
    );
    assert_eq!(local.served("CreateTrail").len(), 1);
    let other = create_replayed(&mut c, "twice", ID)
        .await
        .expect_err("another request");
    assert_eq!(common::violations(&other), ["request_id"]);
    let malformed = create_replayed(&mut c, "x", "retry-1")
        .await
        .expect_err("not a UUID");
    assert_eq!(common::violations(&malformed), ["request_id"]);
    // A final failure is kept too: the same answer again.
    let taken = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let first = create_replayed(&mut c, "once", taken)
        .await
        .expect_err("already exists");
    assert_eq!(first.code(), Code::AlreadyExists);
    let again = create_replayed(&mut c, "once", taken)
        .await
        .expect_err("kept");
    assert_eq!(
        (again.code(), again.message()),
        (first.code(), first.message())
    );
    assert_eq!(local.served("CreateTrail").len(), 2);
    // A transient failure is not: the retry runs.
    local.inject(Some("StartLogging"), 3, Fault::Status(503));
    let flaky = pb::StartLoggingRequest {
        name: "once".into(),
        request_id: "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b".into(),
    };
    let failed = c
        .start_logging(flaky.clone())
        .await
        .expect_err("503 three times");
    assert_eq!(failed.code(), Code::Unavailable);
    c.start_logging(flaky).await.expect("the retry runs");
}

#[tokio::test]
async fn request_ids_hold_across_replicas_through_redis() {
    let _alone = crate::alone().await;
    let redis = Redis::start();
    let local = common::test_local();
    let replica = |local: LocalCloudTrail| {
        let mut config = common::test_config();
        config.limits.redis_url = Some(redis.url());
        TestGateway::start_with(config, local)
    };
    let a = replica(local.clone()).await;
    let b = replica(local.clone()).await;
    assert!(
        !create_replayed(&mut a.client.clone(), "shared", ID)
            .await
            .expect("CreateTrail"),
        "answered, not replayed"
    );
    assert!(
        create_replayed(&mut b.client.clone(), "shared", ID)
            .await
            .expect("CreateTrail"),
        "replayed"
    );
    assert_eq!(local.served("CreateTrail").len(), 1);
}

#[tokio::test]
async fn pollers_reads_are_kept_until_a_change() {
    let _alone = crate::alone().await;
    let mut config = common::test_config();
    config.caches.read_ttl = Duration::from_secs(60);
    let (gw, local) = gateway(config).await;
    let mut c = gw.client.clone();
    c.create_trail(create_request("polled"))
        .await
        .expect("create");
    let status = |c: &mut Client| {
        let mut c = c.clone();
        async move {
            c.get_trail_status(pb::GetTrailStatusRequest {
                name: "polled".into(),
            })
            .await
            .expect("GetTrailStatus")
            .into_inner()
            .is_logging
        }
    };
    for _ in 0..5 {
        assert_eq!(status(&mut c).await, Some(false));
    }
    assert_eq!(
        local.served("GetTrailStatus").len(),
        1,
        "one upstream read for five polls"
    );
    c.start_logging(pb::StartLoggingRequest {
        name: "polled".into(),
        ..Default::default()
    })
    .await
    .expect("StartLogging");
    // One's own change is seen at once.
    assert_eq!(status(&mut c).await, Some(true));
    assert_eq!(local.served("GetTrailStatus").len(), 2);
}

#[tokio::test]
async fn propagation_errors_are_retried_on_request() {
    let _alone = crate::alone().await;
    let (gw, local) = gateway(common::test_config()).await;
    let mut c = gw.client.clone();
    local.inject(
        Some("CreateTrail"),
        2,
        Fault::error("InsufficientS3BucketPolicyException"),
    );
    let plain = c
        .create_trail(create_request("propagating"))
        .await
        .expect_err("not retried");
    assert_eq!(reason(&plain), "InsufficientS3BucketPolicyException");
    // With x-cloudtrail-retry: propagation, the gateway outwaits it.
    c.create_trail(request(create_request("propagating"), &[RETRY]))
        .await
        .expect("retried until the policy propagated");
    assert_eq!(local.faults_happened(), 2);
    // When the deadline comes first: the last error, with RetryInfo.
    local.inject(
        Some("UpdateTrail"),
        100,
        Fault::error("InsufficientS3BucketPolicyException"),
    );
    let mut update = request(
        pb::UpdateTrailRequest {
            name: "propagating".into(),
            s3_key_prefix: Some("p".into()),
            ..Default::default()
        },
        &[RETRY],
    );
    update.set_timeout(Duration::from_millis(1200));
    let outwaited = c.update_trail(update).await.expect_err("deadline first");
    assert_eq!(outwaited.code(), Code::FailedPrecondition);
    assert!(outwaited.get_details_retry_info().is_some());
    local.clear_faults();
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("cloudtrail_gateway_propagation_retries_total{")
                && l.contains("operation=\"CreateTrail\"")
                && l.ends_with(" 1")
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn faults_planned_in_configuration() {
    let _alone = crate::alone().await;
    let config = Config::from_args_of([
        "cloudtrail-gateway",
        "--local-faults",
        "CreateTrail:1:InsufficientSnsTopicPolicyException",
    ])
    .expect("config");
    let (gw, _local) = gateway(Config {
        local: config.local,
        ..common::test_config()
    })
    .await;
    let mut c = gw.client.clone();
    let first = c
        .create_trail(create_request("planned"))
        .await
        .expect_err("planned");
    assert_eq!(
        reason(&first),
        "InsufficientSnsTopicPolicyException",
        "{first:?}"
    );
    c.create_trail(create_request("planned"))
        .await
        .expect("then served");
}
