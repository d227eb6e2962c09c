//! The gateway against moto, a CloudTrail emulator nobody here wrote: the gateway binary runs with
//! `--upstream aws --endpoint-url <moto>`, so the SDK's real wire protocol is on the line. Every RPC
//! moto implements, asserted field by field; moto's leniencies (docs/conformance.md) asserted as such.

use crate::common;

use cloudtrail_gateway::pb::{self, ReadWriteType};
use common::{
    Client, assert_upstream_error, create_request,
    procs::{GatewayProcess, Moto},
    tag, violations,
};
use tonic::Code;
use tonic_types::StatusExt;

const ARN_PREFIX: &str = "arn:aws:cloudtrail:us-east-1:123456789012:trail/";

/// moto with the bucket and topic trails need, and a gateway in front of it.
async fn moto_gateway() -> (Moto, GatewayProcess, Client) {
    let moto = Moto::start();
    moto.create_bucket("audit-logs");
    moto.create_topic("trail-topic");
    // moto answers LookupEvents/ListPublicKeys with HTTP 500; one attempt, no retries.
    let gateway = GatewayProcess::start_on(&moto.url(), &["--max-attempts", "1"]).await;
    let client = gateway.client().await;
    (moto, gateway, client)
}

#[tokio::test]
async fn trails_and_logging_on_moto() {
    let (_moto, _gw, mut c) = moto_gateway().await;

    let created = c
        .create_trail(pb::CreateTrailRequest {
            s3_key_prefix: "prod".into(),
            sns_topic_name: "trail-topic".into(),
            enable_log_file_validation: Some(true),
            tags_list: vec![tag("team", Some("platform"))],
            ..create_request("audit")
        })
        .await
        .expect("create")
        .into_inner()
        .trail
        .expect("trail");
    assert_eq!(
        created,
        pb::Trail {
            name: "audit".into(),
            s3_bucket_name: "audit-logs".into(),
            s3_key_prefix: "prod".into(),
            sns_topic_name: "trail-topic".into(),
            sns_topic_arn: "arn:aws:sns:us-east-1:123456789012:trail-topic".into(),
            include_global_service_events: Some(true),
            is_multi_region_trail: Some(false),
            trail_arn: format!("{ARN_PREFIX}audit"),
            log_file_validation_enabled: Some(true),
            is_organization_trail: Some(false),
            ..Default::default()
        }
    );

    let described = c
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("describe")
        .into_inner();
    assert_eq!(described.trail_list.len(), 1);
    let t = &described.trail_list[0];
    assert_eq!(t.home_region, "us-east-1");
    assert_eq!(t.trail_arn, created.trail_arn);
    assert_eq!(t.s3_key_prefix, "prod");
    assert_eq!(t.has_custom_event_selectors, Some(false));
    assert_eq!(t.has_insight_selectors, Some(false));

    let status = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "audit".into(),
        })
        .await
        .expect("status");
    assert_eq!(status.into_inner().is_logging, Some(false));
    c.start_logging(pb::StartLoggingRequest {
        name: "audit".into(),
        request_id: String::new(),
    })
    .await
    .expect("start");
    let status = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: created.trail_arn.clone(),
        })
        .await
        .expect("status");
    let status = status.into_inner();
    assert_eq!(status.is_logging, Some(true));
    assert!(status.start_logging_time.is_some());
    assert!(!status.time_logging_started.is_empty());
    c.stop_logging(pb::StopLoggingRequest {
        name: "audit".into(),
        request_id: String::new(),
    })
    .await
    .expect("stop");
    let status = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "audit".into(),
        })
        .await
        .expect("status");
    let status = status.into_inner();
    assert_eq!(status.is_logging, Some(false));
    assert!(status.stop_logging_time.is_some());
    assert!(!status.time_logging_stopped.is_empty());

    let updated = c
        .update_trail(pb::UpdateTrailRequest {
            name: "audit".into(),
            s3_key_prefix: Some("other".into()),
            is_multi_region_trail: Some(true),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner()
        .trail
        .expect("trail");
    assert_eq!(updated.s3_key_prefix, "other");
    assert_eq!(updated.is_multi_region_trail, Some(true));
    assert_eq!(updated.include_global_service_events, Some(true));

    c.delete_trail(pb::DeleteTrailRequest {
        name: "audit".into(),
        request_id: String::new(),
    })
    .await
    .expect("delete");
    let after = c
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("describe");
    assert!(after.into_inner().trail_list.is_empty());
}

#[tokio::test]
async fn selectors_and_tags_on_moto() {
    let (_moto, _gw, mut c) = moto_gateway().await;
    let arn = c
        .create_trail(create_request("selected"))
        .await
        .expect("create")
        .into_inner()
        .trail
        .expect("trail")
        .trail_arn;

    let selectors = vec![pb::EventSelector {
        read_write_type: ReadWriteType::ReadOnly as i32,
        include_management_events: Some(true),
        data_resources: vec![pb::DataResource {
            r#type: "AWS::S3::Object".into(),
            values: vec!["arn:aws:s3:::audit-logs/".into()],
        }],
        exclude_management_event_sources: vec![],
    }];
    let put = c
        .put_event_selectors(pb::PutEventSelectorsRequest {
            trail_name: "selected".into(),
            event_selectors: selectors.clone(),
            ..Default::default()
        })
        .await
        .expect("put")
        .into_inner();
    assert_eq!(put.trail_arn, arn);
    assert_eq!(put.event_selectors, selectors);
    let got = c
        .get_event_selectors(pb::GetEventSelectorsRequest {
            trail_name: arn.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.event_selectors, selectors);
    assert!(got.advanced_event_selectors.is_empty());

    let advanced = vec![pb::AdvancedEventSelector {
        name: "management".into(),
        field_selectors: vec![pb::AdvancedFieldSelector {
            field: "eventCategory".into(),
            equals: vec!["Management".into()],
            ..Default::default()
        }],
    }];
    let put = c
        .put_event_selectors(pb::PutEventSelectorsRequest {
            trail_name: "selected".into(),
            advanced_event_selectors: advanced.clone(),
            ..Default::default()
        })
        .await
        .expect("put advanced")
        .into_inner();
    assert_eq!(put.advanced_event_selectors, advanced);

    c.add_tags(pb::AddTagsRequest {
        resource_id: arn.clone(),
        tags_list: vec![tag("team", Some("a")), tag("env", Some("prod"))],
        request_id: String::new(),
    })
    .await
    .expect("add");
    let listed = c
        .list_tags(pb::ListTagsRequest {
            resource_id_list: vec![arn.clone()],
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed.resource_tag_list,
        vec![pb::ResourceTag {
            resource_id: arn.clone(),
            tags_list: vec![tag("team", Some("a")), tag("env", Some("prod"))]
        }]
    );
    c.remove_tags(pb::RemoveTagsRequest {
        resource_id: arn.clone(),
        tags_list: vec![tag("team", Some("a"))],
        request_id: String::new(),
    })
    .await
    .expect("remove");
    let listed = c
        .list_tags(pb::ListTagsRequest {
            resource_id_list: vec![arn.clone()],
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed.resource_tag_list[0].tags_list,
        vec![tag("env", Some("prod"))]
    );
}

#[tokio::test]
async fn errors_from_moto() {
    let (moto, _gw, mut c) = moto_gateway().await;

    // Unknown trail: moto's TrailNotFoundException, parsed by the SDK, mapped to NOT_FOUND.
    let missing = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "missing".into(),
        })
        .await
        .expect_err("unknown");
    assert_upstream_error(&missing, Code::NotFound, "TrailNotFoundException");
    let missing = c
        .start_logging(pb::StartLoggingRequest {
            name: "missing".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_upstream_error(&missing, Code::NotFound, "TrailNotFoundException");

    // Invalid names never reach moto: the gateway's edge answers, the same on every backend.
    for name in ["ab", "-trail", "my--trail", "10.0.0.1"] {
        let status = c.create_trail(create_request(name)).await.expect_err(name);
        assert_eq!(violations(&status), ["name"], "{name}");
    }

    // moto's own dependency checks, mapped.
    let no_bucket = c
        .create_trail(pb::CreateTrailRequest {
            s3_bucket_name: "no-such-bucket".into(),
            ..create_request("trail1")
        })
        .await
        .expect_err("bucket missing");
    assert_upstream_error(
        &no_bucket,
        Code::FailedPrecondition,
        "S3BucketDoesNotExistException",
    );
    let no_topic = c
        .create_trail(pb::CreateTrailRequest {
            sns_topic_name: "no-such-topic".into(),
            ..create_request("trail1")
        })
        .await
        .expect_err("topic missing");
    assert_upstream_error(
        &no_topic,
        Code::FailedPrecondition,
        "InsufficientSnsTopicPolicyException",
    );
    let combination = c
        .create_trail(pb::CreateTrailRequest {
            is_multi_region_trail: Some(true),
            include_global_service_events: Some(false),
            ..create_request("trail1")
        })
        .await
        .expect_err("multi-Region without global events");
    assert_upstream_error(
        &combination,
        Code::InvalidArgument,
        "InvalidParameterCombinationException",
    );

    // Duplicate trail and too many trails: AWS refuses both; moto accepts (docs/conformance.md).
    c.create_trail(create_request("trail1"))
        .await
        .expect("first");
    c.create_trail(create_request("trail1"))
        .await
        .expect("moto replaces a duplicate silently");
    for i in 2..=6 {
        c.create_trail(create_request(&format!("trail{i}")))
            .await
            .expect("moto has no five-trail limit");
    }
    let all = c
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("describe");
    assert_eq!(all.into_inner().trail_list.len(), 6);

    // LookupEvents and ListPublicKeys are not implemented by moto (HTTP 500, no error code).
    for (rpc, status) in [
        (
            "LookupEvents",
            c.lookup_events(pb::LookupEventsRequest::default())
                .await
                .expect_err("moto: not implemented"),
        ),
        (
            "ListPublicKeys",
            c.list_public_keys(pb::ListPublicKeysRequest::default())
                .await
                .expect_err("moto: not implemented"),
        ),
    ] {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        // The message names the endpoint and the operation, and says what it may mean.
        assert_eq!(
            status.message(),
            format!(
                "{} answered {rpc} with HTTP 500 and no error code: it failed, or it does not implement {rpc}",
                moto.url()
            )
        );
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(
            info.metadata.get("http_status").map(String::as_str),
            Some("500")
        );
    }
}

/// Accounts through moto's STS: moto maps an assumed role's credentials to the role's account, so
/// a trail created through account A's role exists in A and not in B; its request log shows that
/// each AssumeRole carried the caller as session name and SourceIdentity, and that CloudTrail was
/// called with the session's credentials, never the gateway's own.
#[tokio::test]
async fn accounts_on_moto_land_in_their_account_as_the_caller() {
    const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/accounts.toml");
    let (a, b) = ("111111111111", "222222222222");
    let moto = Moto::start_recording();
    moto.create_bucket_in(a, "audit-a");
    moto.create_bucket_in(b, "audit-b");
    let gw = GatewayProcess::start_on(&moto.url(), &["--config", EXAMPLE]).await;
    let mut c = gw.client().await;
    fn call<T>(account: &str, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        metadata.insert(
            "authorization",
            "Bearer platform-token".parse().expect("header"),
        );
        metadata.insert("x-cloudtrail-account", account.parse().expect("header"));
        request
    }
    let in_a = c
        .create_trail(call(
            a,
            pb::CreateTrailRequest {
                s3_bucket_name: "audit-a".into(),
                ..create_request("org-a")
            },
        ))
        .await
        .expect("CreateTrail through A's role")
        .into_inner()
        .trail
        .expect("trail");
    assert_eq!(
        in_a.trail_arn,
        "arn:aws:cloudtrail:us-east-1:111111111111:trail/org-a"
    );
    async fn names(account: &str, c: &mut Client) -> Vec<String> {
        common::trail_names(c, call(account, pb::DescribeTrailsRequest::default())).await
    }
    assert_eq!(names(a, &mut c).await, ["org-a"]);
    assert!(names(b, &mut c).await.is_empty(), "A's trail is not in B");

    let recorded = moto.recording();
    let body = |entry: &serde_json::Value| -> String {
        let text = entry["body"].as_str().unwrap_or_default();
        if entry["body_encoded"].as_bool() == Some(true) {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default();
            String::from_utf8_lossy(&raw).into_owned()
        } else {
            text.to_owned()
        }
    };
    let assume_roles: Vec<String> = recorded
        .iter()
        .map(body)
        .filter(|b| b.contains("Action=AssumeRole"))
        .collect();
    let for_platform_in = |account: &str| {
        assume_roles.iter().any(|b| {
            b.contains(&format!(
                "RoleArn=arn%3Aaws%3Aiam%3A%3A{account}%3Arole%2Fcloudtrail-gateway"
            )) && b.contains("RoleSessionName=platform")
                && b.contains("SourceIdentity=platform")
                && b.contains("Key=principal")
        })
    };
    assert!(for_platform_in(a), "{assume_roles:#?}");
    assert!(for_platform_in(b), "{assume_roles:#?}");
    // Every CloudTrail call was signed with a role session's credentials (a session token), none
    // with the gateway's own key ("testing").
    let cloudtrail_calls: Vec<&serde_json::Value> = recorded
        .iter()
        .filter(|e| {
            e["headers"]["X-Amz-Target"]
                .as_str()
                .is_some_and(|t| t.contains("CloudTrail"))
        })
        .collect();
    assert!(cloudtrail_calls.len() >= 3, "{cloudtrail_calls:#?}");
    for call in cloudtrail_calls {
        let headers = &call["headers"];
        let authorization = headers["Authorization"].as_str().unwrap_or_default();
        assert!(
            !authorization.contains("Credential=testing/"),
            "{authorization}"
        );
        assert!(headers["X-Amz-Security-Token"].is_string(), "{headers}");
    }
}

/// GetTrail, ListTrails and the insight selectors on moto, and ApplyTrail made of them.
#[tokio::test]
async fn control_plane_rpcs_on_moto() {
    let (_moto, _gw, mut c) = moto_gateway().await;
    c.create_trail(create_request("listed"))
        .await
        .expect("create");
    let trail = c
        .get_trail(pb::GetTrailRequest {
            name: "listed".into(),
        })
        .await
        .expect("GetTrail by name")
        .into_inner()
        .trail
        .expect("trail");
    assert_eq!(trail.trail_arn, format!("{ARN_PREFIX}listed"));
    let by_arn = c
        .get_trail(pb::GetTrailRequest {
            name: trail.trail_arn.clone(),
        })
        .await
        .expect("GetTrail by ARN")
        .into_inner();
    assert_eq!(by_arn.trail.map(|t| t.name).as_deref(), Some("listed"));
    let listed = c
        .list_trails(pb::ListTrailsRequest::default())
        .await
        .expect("ListTrails")
        .into_inner();
    assert_eq!(
        listed.trails,
        [pb::TrailInfo {
            trail_arn: trail.trail_arn.clone(),
            name: "listed".into(),
            home_region: "us-east-1".into(),
        }]
    );
    let kind = |t: pb::InsightType| pb::InsightSelector {
        insight_type: t.into(),
    };
    let put = c
        .put_insight_selectors(pb::PutInsightSelectorsRequest {
            trail_name: "listed".into(),
            insight_selectors: vec![kind(pb::InsightType::ApiCallRateInsight)],
            ..Default::default()
        })
        .await
        .expect("PutInsightSelectors")
        .into_inner();
    assert_eq!(put.trail_arn, trail.trail_arn);
    let got = c
        .get_insight_selectors(pb::GetInsightSelectorsRequest {
            trail_name: "listed".into(),
        })
        .await
        .expect("GetInsightSelectors")
        .into_inner();
    assert_eq!(
        got.insight_selectors,
        [kind(pb::InsightType::ApiCallRateInsight)]
    );
    let missing = c
        .get_trail(pb::GetTrailRequest {
            name: "missing".into(),
        })
        .await
        .expect_err("not found");
    assert_upstream_error(&missing, Code::NotFound, "TrailNotFoundException");

    // ApplyTrail on moto: created with its parts, then nothing to do.
    let desired = pb::ApplyTrailRequest {
        trail: Some(pb::CreateTrailRequest {
            s3_key_prefix: "org".into(),
            ..create_request("applied")
        }),
        logging: Some(true),
        event_selectors: Some(pb::EventSelectorList {
            selectors: vec![pb::EventSelector {
                read_write_type: ReadWriteType::WriteOnly.into(),
                include_management_events: Some(true),
                ..Default::default()
            }],
        }),
        tags: Some(pb::TagList {
            tags: vec![tag("team", Some("platform"))],
        }),
        ..Default::default()
    };
    let first = c
        .apply_trail(desired.clone())
        .await
        .expect("ApplyTrail creates")
        .into_inner();
    let fields: Vec<&str> = first.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["trail", "tags.team", "logging", "event_selectors"]);
    assert_eq!(first.is_logging, Some(true));
    let again = c
        .apply_trail(desired)
        .await
        .expect("ApplyTrail again")
        .into_inner();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.trail.map(|t| t.s3_key_prefix).as_deref(), Some("org"));
}
