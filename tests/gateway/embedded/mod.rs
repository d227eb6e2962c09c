//! End to end on the embedded CloudTrail: the real server on an ephemeral port, the generated client,
//! the SDK path with the in-process transport. Every RPC, its errors and every validation rule.

mod validation;

use crate::common;

use cloudtrail_gateway::pb::{self, LookupAttributeKey, ReadWriteType};
use common::{
    ACCOUNT, Client, TestGateway, assert_upstream_error, create_request, lookup, tag, trail_arn,
    violations,
};
use tonic::Code;

async fn create(client: &mut Client, name: &str) -> pb::Trail {
    client
        .create_trail(create_request(name))
        .await
        .expect("create trail")
        .into_inner()
        .trail
        .expect("trail in response")
}

#[tokio::test]
async fn trail_lifecycle_through_every_trail_and_logging_rpc() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();

    let created = c
        .create_trail(pb::CreateTrailRequest {
            name: "audit-trail".into(),
            s3_bucket_name: "audit-logs".into(),
            s3_key_prefix: "prod".into(),
            sns_topic_name: "trail-topic".into(),
            is_multi_region_trail: Some(true),
            enable_log_file_validation: Some(true),
            kms_key_id: "alias/trail".into(),
            tags_list: vec![tag("team", Some("platform"))],
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .trail
        .expect("trail");
    assert_eq!(created.name, "audit-trail");
    assert_eq!(created.trail_arn, trail_arn("us-east-1", "audit-trail"));
    assert_eq!(created.s3_bucket_name, "audit-logs");
    assert_eq!(created.s3_key_prefix, "prod");
    assert_eq!(
        created.sns_topic_arn,
        format!("arn:aws:sns:us-east-1:{ACCOUNT}:trail-topic")
    );
    assert_eq!(created.is_multi_region_trail, Some(true));
    assert_eq!(created.include_global_service_events, Some(true)); // AWS default
    assert_eq!(created.log_file_validation_enabled, Some(true));
    assert_eq!(created.kms_key_id, "alias/trail");
    assert_eq!(created.is_organization_trail, Some(false));

    let described = c
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("describe")
        .into_inner()
        .trail_list;
    assert_eq!(described.len(), 1);
    assert_eq!(described[0].home_region, "us-east-1");
    assert_eq!(described[0].has_custom_event_selectors, Some(false));

    let status = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "audit-trail".into(),
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.is_logging, Some(false));
    assert!(status.start_logging_time.is_none());

    c.start_logging(pb::StartLoggingRequest {
        name: "audit-trail".into(),
        request_id: String::new(),
    })
    .await
    .expect("start");
    let status = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: created.trail_arn.clone(),
        })
        .await
        .expect("status by ARN")
        .into_inner();
    assert_eq!(status.is_logging, Some(true));
    let started = status.start_logging_time.expect("start time");
    assert!(!status.time_logging_started.is_empty());

    c.stop_logging(pb::StopLoggingRequest {
        name: "audit-trail".into(),
        request_id: String::new(),
    })
    .await
    .expect("stop");
    let status = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "audit-trail".into(),
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.is_logging, Some(false));
    let stopped = status.stop_logging_time.expect("stop time");
    assert!((stopped.seconds, stopped.nanos) >= (started.seconds, started.nanos));
    assert_eq!(status.start_logging_time, Some(started));

    let updated = c
        .update_trail(pb::UpdateTrailRequest {
            name: "audit-trail".into(),
            s3_key_prefix: Some("".into()), // clears it
            sns_topic_name: Some("other-topic".into()),
            enable_log_file_validation: Some(false),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner()
        .trail
        .expect("trail");
    assert_eq!(updated.s3_key_prefix, "");
    assert_eq!(updated.sns_topic_name, "other-topic");
    assert_eq!(updated.log_file_validation_enabled, Some(false));
    assert_eq!(updated.is_multi_region_trail, Some(true)); // unset fields keep their value
    assert_eq!(updated.kms_key_id, "alias/trail");

    c.delete_trail(pb::DeleteTrailRequest {
        name: "audit-trail".into(),
        request_id: String::new(),
    })
    .await
    .expect("delete");
    let after = c
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("describe");
    assert!(after.into_inner().trail_list.is_empty());
    let gone = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "audit-trail".into(),
        })
        .await
        .expect_err("deleted trail");
    assert_upstream_error(&gone, Code::NotFound, "TrailNotFoundException");
    assert!(
        gone.message()
            .contains(&trail_arn("us-east-1", "audit-trail")),
        "{gone:?}"
    );
}

#[tokio::test]
async fn event_selectors_basic_and_advanced() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    let trail = create(&mut c, "selected").await;

    let default = c
        .get_event_selectors(pb::GetEventSelectorsRequest {
            trail_name: "selected".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(default.trail_arn, trail.trail_arn);
    assert_eq!(
        default.event_selectors,
        vec![pb::EventSelector {
            read_write_type: ReadWriteType::All as i32,
            include_management_events: Some(true),
            ..Default::default()
        }]
    );

    let basic = vec![pb::EventSelector {
        read_write_type: ReadWriteType::WriteOnly as i32,
        include_management_events: Some(false),
        data_resources: vec![pb::DataResource {
            r#type: "AWS::S3::Object".into(),
            values: vec!["arn:aws:s3:::bucket/prefix".into()],
        }],
        exclude_management_event_sources: vec!["kms.amazonaws.com".into()],
    }];
    let put = c
        .put_event_selectors(pb::PutEventSelectorsRequest {
            trail_name: "selected".into(),
            event_selectors: basic.clone(),
            ..Default::default()
        })
        .await
        .expect("put basic")
        .into_inner();
    assert_eq!(put.event_selectors, basic);
    let got = c
        .get_event_selectors(pb::GetEventSelectorsRequest {
            trail_name: trail.trail_arn.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.event_selectors, basic);
    assert!(got.advanced_event_selectors.is_empty());
    let described = c
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("describe");
    assert_eq!(
        described.into_inner().trail_list[0].has_custom_event_selectors,
        Some(true)
    );

    let advanced = vec![pb::AdvancedEventSelector {
        name: "S3 writes".into(),
        field_selectors: vec![
            pb::AdvancedFieldSelector {
                field: "eventCategory".into(),
                equals: vec!["Data".into()],
                ..Default::default()
            },
            pb::AdvancedFieldSelector {
                field: "resources.type".into(),
                equals: vec!["AWS::S3::Object".into()],
                ..Default::default()
            },
            pb::AdvancedFieldSelector {
                field: "readOnly".into(),
                equals: vec!["false".into()],
                not_starts_with: vec!["arn:aws:s3:::private".into()],
                ..Default::default()
            },
        ],
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
    assert!(put.event_selectors.is_empty());
    let got = c
        .get_event_selectors(pb::GetEventSelectorsRequest {
            trail_name: "selected".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.advanced_event_selectors, advanced);
}

#[tokio::test]
async fn tags_add_list_remove() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    let trail_arn = create(&mut c, "tagged").await.trail_arn;
    let other_arn = c
        .create_trail(pb::CreateTrailRequest {
            tags_list: vec![tag("env", Some("prod"))],
            ..create_request("other")
        })
        .await
        .expect("create with tags")
        .into_inner()
        .trail
        .expect("trail")
        .trail_arn;

    c.add_tags(pb::AddTagsRequest {
        resource_id: trail_arn.clone(),
        tags_list: vec![tag("team", Some("platform")), tag("empty", None)],
        request_id: String::new(),
    })
    .await
    .expect("add");
    c.add_tags(pb::AddTagsRequest {
        resource_id: trail_arn.clone(),
        tags_list: vec![tag("team", Some("security"))],
        request_id: String::new(),
    })
    .await
    .expect("overwrite");

    let listed = c
        .list_tags(pb::ListTagsRequest {
            resource_id_list: vec![trail_arn.clone(), other_arn.clone()],
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .resource_tag_list;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].resource_id, trail_arn);
    assert_eq!(
        listed[0].tags_list,
        vec![tag("team", Some("security")), tag("empty", None)]
    );
    assert_eq!(listed[1].tags_list, vec![tag("env", Some("prod"))]);

    c.remove_tags(pb::RemoveTagsRequest {
        resource_id: trail_arn.clone(),
        tags_list: vec![tag("team", None)],
        request_id: String::new(),
    })
    .await
    .expect("remove");
    let listed = c
        .list_tags(pb::ListTagsRequest {
            resource_id_list: vec![trail_arn.clone()],
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .resource_tag_list;
    assert_eq!(listed[0].tags_list, vec![tag("empty", None)]);

    // 49 more fit (50 in all); one more does not.
    let many: Vec<_> = (0..49).map(|i| tag(&format!("k{i}"), Some("v"))).collect();
    c.add_tags(pb::AddTagsRequest {
        resource_id: trail_arn.clone(),
        tags_list: many,
        request_id: String::new(),
    })
    .await
    .expect("fill to 50");
    let over = c
        .add_tags(pb::AddTagsRequest {
            resource_id: trail_arn.clone(),
            tags_list: vec![tag("one-more", None)],
            request_id: String::new(),
        })
        .await
        .expect_err("51st tag");
    assert_upstream_error(
        &over,
        Code::FailedPrecondition,
        "TagsLimitExceededException",
    );

    let unknown = c
        .list_tags(pb::ListTagsRequest {
            resource_id_list: vec![common::trail_arn("us-east-1", "nope")],
            ..Default::default()
        })
        .await
        .expect_err("unknown trail");
    assert_upstream_error(&unknown, Code::NotFound, "ResourceNotFoundException");
}

#[tokio::test]
async fn lookup_events_returns_the_calls_that_were_made() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    let trail_arn = create(&mut c, "looked-up").await.trail_arn;
    c.start_logging(pb::StartLoggingRequest {
        name: "looked-up".into(),
        request_id: String::new(),
    })
    .await
    .expect("start");

    let created = lookup(&mut c, LookupAttributeKey::EventName, "CreateTrail").await;
    assert_eq!(created.len(), 1);
    let e = &created[0];
    assert_eq!(e.event_source, "cloudtrail.amazonaws.com");
    assert_eq!(e.read_only, "false");
    assert_eq!(e.username, "cloudtrail-gateway");
    assert!(!e.access_key_id.is_empty());
    assert_eq!(
        e.resources,
        vec![pb::Resource {
            resource_type: "AWS::CloudTrail::Trail".into(),
            resource_name: trail_arn.clone()
        }]
    );
    let record: serde_json::Value =
        serde_json::from_str(&e.cloud_trail_event).expect("CloudTrailEvent JSON");
    assert_eq!(record["eventName"], "CreateTrail");
    assert_eq!(record["requestParameters"]["name"], "looked-up");
    assert_eq!(record["requestParameters"]["s3BucketName"], "audit-logs");
    assert_eq!(record["responseElements"]["trailARN"], trail_arn.as_str());
    assert_eq!(record["awsRegion"], "us-east-1");
    assert_eq!(record["eventID"], e.event_id.as_str());

    // By resource name: newest first, StartLogging then CreateTrail.
    let by_resource = c
        .lookup_events(pb::LookupEventsRequest {
            lookup_attributes: vec![pb::LookupAttribute {
                attribute_key: LookupAttributeKey::ResourceName as i32,
                attribute_value: trail_arn.clone(),
            }],
            ..Default::default()
        })
        .await
        .expect("lookup")
        .into_inner()
        .events;
    let names: Vec<_> = by_resource.iter().map(|e| e.event_name.as_str()).collect();
    assert_eq!(names, ["StartLogging", "CreateTrail"]);

    // By event id, read-only flag, and a time window that excludes everything.
    let by_id = c
        .lookup_events(pb::LookupEventsRequest {
            lookup_attributes: vec![pb::LookupAttribute {
                attribute_key: LookupAttributeKey::EventId as i32,
                attribute_value: e.event_id.clone(),
            }],
            ..Default::default()
        })
        .await
        .expect("lookup")
        .into_inner()
        .events;
    assert_eq!(by_id.len(), 1);
    let past = c
        .lookup_events(pb::LookupEventsRequest {
            start_time: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("lookup")
        .into_inner();
    assert!(past.events.is_empty());
    // Failed calls are recorded with their error code.
    let _ = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "missing".into(),
        })
        .await;
    let failed = lookup(&mut c, LookupAttributeKey::EventName, "GetTrailStatus").await;
    let record: serde_json::Value =
        serde_json::from_str(&failed[0].cloud_trail_event).expect("JSON");
    assert_eq!(record["errorCode"], "TrailNotFoundException");
    assert_eq!(failed[0].read_only, "true");
}

#[tokio::test]
async fn lookup_events_pages_with_opaque_tokens() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    for i in 0..7 {
        let _ = c
            .get_trail_status(pb::GetTrailStatusRequest {
                name: format!("page{i}"),
            })
            .await;
    }
    let mut request = pb::LookupEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: LookupAttributeKey::EventName as i32,
            attribute_value: "GetTrailStatus".into(),
        }],
        max_results: Some(3),
        ..Default::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = c
            .lookup_events(request.clone())
            .await
            .expect("page")
            .into_inner();
        pages.push(page.events.len());
        let names: Vec<String> = page
            .events
            .iter()
            .map(|e| {
                let record: serde_json::Value = serde_json::from_str(&e.cloud_trail_event).unwrap();
                record["requestParameters"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert!(names.iter().all(|n| n.starts_with("page")), "{names:?}");
        if page.next_token.is_empty() {
            break;
        }
        request.next_token = page.next_token;
    }
    assert_eq!(pages, [3, 3, 1]);

    // A token from one query is refused by another.
    let token = c
        .lookup_events(pb::LookupEventsRequest {
            next_token: String::new(),
            ..request.clone()
        })
        .await
        .expect("first page")
        .into_inner()
        .next_token;
    let mismatched = c
        .lookup_events(pb::LookupEventsRequest {
            max_results: Some(2),
            next_token: token,
            ..request
        })
        .await
        .expect_err("token with other parameters");
    assert_upstream_error(
        &mismatched,
        Code::InvalidArgument,
        "InvalidNextTokenException",
    );
}

#[tokio::test]
async fn list_public_keys_is_stable() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    let first = c
        .list_public_keys(pb::ListPublicKeysRequest::default())
        .await
        .expect("keys")
        .into_inner();
    let again = c
        .list_public_keys(pb::ListPublicKeysRequest::default())
        .await
        .expect("keys")
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(first.public_key_list.len(), 1);
    let key = &first.public_key_list[0];
    assert_eq!(key.value[0], 0x30, "DER SEQUENCE");
    assert_eq!(key.fingerprint.len(), 32);
    assert!(key.validity_start_time.is_some());
    let none = c
        .list_public_keys(pb::ListPublicKeysRequest {
            start_time: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("keys in 1970")
        .into_inner();
    assert!(none.public_key_list.is_empty());
}

#[tokio::test]
async fn cloudtrail_errors_map_to_grpc_codes() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    create(&mut c, "trail0").await;

    // Checked before the trail limit is reached: the embedded account is in no organization.
    let org = c
        .create_trail(pb::CreateTrailRequest {
            is_organization_trail: Some(true),
            ..create_request("orgtrail")
        })
        .await
        .expect_err("organization trail");
    assert_upstream_error(
        &org,
        Code::FailedPrecondition,
        "OrganizationsNotInUseException",
    );

    let duplicate = c
        .create_trail(create_request("trail0"))
        .await
        .expect_err("duplicate");
    assert_upstream_error(
        &duplicate,
        Code::AlreadyExists,
        "TrailAlreadyExistsException",
    );

    for i in 1..5 {
        create(&mut c, &format!("trail{i}")).await;
    }
    let sixth = c
        .create_trail(create_request("trail5"))
        .await
        .expect_err("sixth trail");
    assert_upstream_error(
        &sixth,
        Code::FailedPrecondition,
        "MaximumNumberOfTrailsExceededException",
    );

    let missing = c
        .start_logging(pb::StartLoggingRequest {
            name: "missing".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("unknown trail");
    assert_upstream_error(&missing, Code::NotFound, "TrailNotFoundException");

    let global_off = c
        .update_trail(pb::UpdateTrailRequest {
            name: "trail0".into(),
            is_multi_region_trail: Some(true),
            include_global_service_events: Some(false),
            ..Default::default()
        })
        .await
        .expect_err("multi-Region without global events");
    assert_upstream_error(
        &global_off,
        Code::InvalidArgument,
        "InvalidParameterCombinationException",
    );
}

#[tokio::test]
async fn shadow_trails_and_regions_across_two_regional_gateways() {
    // Two gateways, us-east-1 and eu-west-1, in front of one embedded CloudTrail account.
    let local = common::test_local();
    let east = TestGateway::start_with(common::test_config(), local.clone()).await;
    let mut west_config = common::test_config();
    west_config.upstream.region = Some("eu-west-1".into());
    let west = TestGateway::start_with(west_config, local).await;
    let (mut e, mut w) = (east.client.clone(), west.client.clone());

    let global = e
        .create_trail(pb::CreateTrailRequest {
            is_multi_region_trail: Some(true),
            ..create_request("global")
        })
        .await
        .expect("multi-Region trail")
        .into_inner()
        .trail
        .expect("trail");
    create(&mut e, "east-only").await;

    let seen = w
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("describe")
        .into_inner();
    let names: Vec<_> = seen
        .trail_list
        .iter()
        .map(|t| (t.name.as_str(), t.home_region.as_str()))
        .collect();
    assert_eq!(
        names,
        [("global", "us-east-1")],
        "only the shadow of the multi-Region trail"
    );
    let no_shadows = w
        .describe_trails(pb::DescribeTrailsRequest {
            include_shadow_trails: Some(false),
            ..Default::default()
        })
        .await
        .expect("describe")
        .into_inner();
    assert!(no_shadows.trail_list.is_empty());

    // A trail ARN routes the call to the trail's Region: a gateway that serves only eu-west-1 says
    // so, rather than asking eu-west-1 about a us-east-1 trail (InvalidHomeRegionException, which
    // the embedded CloudTrail's own tests check).
    let elsewhere = w
        .start_logging(pb::StartLoggingRequest {
            name: global.trail_arn.clone(),
            request_id: String::new(),
        })
        .await
        .expect_err("the ARN's Region is not served");
    assert_eq!(elsewhere.code(), Code::FailedPrecondition, "{elsewhere:?}");
    assert!(
        elsewhere.message().contains("us-east-1"),
        "{}",
        elsewhere.message()
    );

    let clash = w
        .create_trail(create_request("global"))
        .await
        .expect_err("name taken by shadow");
    assert_upstream_error(&clash, Code::AlreadyExists, "TrailAlreadyExistsException");
    create(&mut w, "east-only").await; // single-Region names are per Region
}
