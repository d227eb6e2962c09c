//! Every validation rule of the edge answers INVALID_ARGUMENT naming its field, and sends nothing:
//! after each group of bad requests, the embedded CloudTrail has recorded none of them.

use super::*;

/// Names and ARNs of trails, in every RPC that takes one; CreateTrail reports every problem at once.
#[tokio::test]
async fn trail_names_and_arns() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    let good_arn = trail_arn("us-east-1", "valid-trail");
    let name_cases = [
        ("ab", "too short"),
        ("a".repeat(129).as_str(), "too long"),
        ("bad name", "can only contain"),
        ("-trail", "start"),
        ("trail.", "end"),
        ("my--trail", "adjacent"),
        ("my._trail", "adjacent"),
        ("10.0.0.1", "IP"),
        ("", "required"),
        ("arn:aws:cloudtrail:us-east-1:12345:trail/x", "ARN"),
        (
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/a--b",
            "adjacent",
        ),
    ]
    .map(|(n, why)| (n.to_owned(), why));

    for (name, why) in &name_cases {
        let status = c
            .get_trail_status(pb::GetTrailStatusRequest { name: name.clone() })
            .await
            .expect_err(why);
        assert_eq!(violations(&status), ["name"], "{name}: {why}");
        let description = &tonic_types::StatusExt::get_details_bad_request(&status)
            .unwrap()
            .field_violations[0]
            .description;
        assert!(description.contains(why), "{name}: {description}");
        for status in [
            c.start_logging(pb::StartLoggingRequest {
                name: name.clone(),
                request_id: String::new(),
            })
            .await
            .expect_err(why),
            c.stop_logging(pb::StopLoggingRequest {
                name: name.clone(),
                request_id: String::new(),
            })
            .await
            .expect_err(why),
            c.delete_trail(pb::DeleteTrailRequest {
                name: name.clone(),
                request_id: String::new(),
            })
            .await
            .expect_err(why),
            c.update_trail(pb::UpdateTrailRequest {
                name: name.clone(),
                ..Default::default()
            })
            .await
            .expect_err(why),
        ] {
            assert_eq!(violations(&status), ["name"], "{name}");
        }
        let status = c
            .get_event_selectors(pb::GetEventSelectorsRequest {
                trail_name: name.clone(),
            })
            .await
            .expect_err(why);
        assert_eq!(violations(&status), ["trail_name"]);
        let status = c
            .describe_trails(pb::DescribeTrailsRequest {
                trail_name_list: vec![name.clone()],
                ..Default::default()
            })
            .await
            .expect_err(why);
        assert_eq!(violations(&status), ["trail_name_list[0]"]);
    }
    // CreateTrail takes a name, not an ARN, and needs a bucket; every problem is reported at once.
    let status = c
        .create_trail(pb::CreateTrailRequest {
            name: good_arn.clone(),
            ..Default::default()
        })
        .await
        .expect_err("ARN as name");
    assert_eq!(violations(&status), ["name", "s3_bucket_name"]);
    nothing_reached_cloudtrail(&mut c).await;
}

/// Tags: key length, value length, count, uniqueness, reserved prefix; ListTags' 1 to 20 ARNs.
#[tokio::test]
async fn tags_and_resource_ids() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    let good_arn = trail_arn("us-east-1", "valid-trail");
    // Tags: key length, value length, count, uniqueness, reserved prefix.
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    let status = c
        .add_tags(pb::AddTagsRequest {
            resource_id: good_arn.clone(),
            tags_list: vec![
                tag(&long_key, None),
                tag("ok", Some(&long_value)),
                tag("dup", None),
                tag("dup", None),
                tag("aws:reserved", None),
                tag("", None),
            ],
            request_id: String::new(),
        })
        .await
        .expect_err("bad tags");
    assert_eq!(
        violations(&status),
        [
            "tags_list[0].key",
            "tags_list[1].value",
            "tags_list[3].key",
            "tags_list[4].key",
            "tags_list[5].key"
        ]
    );
    let fifty_one: Vec<_> = (0..51).map(|i| tag(&format!("k{i}"), None)).collect();
    let status = c
        .create_trail(pb::CreateTrailRequest {
            tags_list: fifty_one.clone(),
            ..create_request("valid-trail")
        })
        .await
        .expect_err("51 tags");
    assert_eq!(violations(&status), ["tags_list"]);
    let status = c
        .add_tags(pb::AddTagsRequest {
            resource_id: "valid-trail".into(),
            tags_list: vec![tag("a", None)],
            request_id: String::new(),
        })
        .await
        .expect_err("name instead of ARN");
    assert_eq!(violations(&status), ["resource_id"]);
    let status = c
        .remove_tags(pb::RemoveTagsRequest {
            resource_id: good_arn.clone(),
            tags_list: vec![],
            request_id: String::new(),
        })
        .await
        .expect_err("no tags");
    assert_eq!(violations(&status), ["tags_list"]);

    // ListTags: 1 to 20 ARNs, each well-formed.
    let status = c
        .list_tags(pb::ListTagsRequest {
            resource_id_list: vec![good_arn.clone(); 21],
            ..Default::default()
        })
        .await
        .expect_err("21 ARNs");
    assert_eq!(violations(&status), ["resource_id_list"]);
    let status = c
        .list_tags(pb::ListTagsRequest {
            resource_id_list: vec!["not-an-arn".into()],
            ..Default::default()
        })
        .await
        .expect_err("bad ARN");
    assert_eq!(violations(&status), ["resource_id_list[0]"]);
    nothing_reached_cloudtrail(&mut c).await;
}

/// Event selectors: at most 5, known data resource types, one kind at a time.
#[tokio::test]
async fn event_selectors() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    // Event selectors: at most 5, known data resource types, one kind at a time.
    let selector = |ty: &str| pb::EventSelector {
        data_resources: vec![pb::DataResource {
            r#type: ty.into(),
            values: vec![],
        }],
        ..Default::default()
    };
    let status = c
        .put_event_selectors(pb::PutEventSelectorsRequest {
            trail_name: "valid-trail".into(),
            event_selectors: vec![selector("AWS::S3::Object"); 6],
            ..Default::default()
        })
        .await
        .expect_err("6 selectors");
    assert_eq!(violations(&status), ["event_selectors"]);
    let status = c
        .put_event_selectors(pb::PutEventSelectorsRequest {
            trail_name: "valid-trail".into(),
            event_selectors: vec![selector("AWS::EC2::Instance")],
            ..Default::default()
        })
        .await
        .expect_err("bad data resource type");
    assert_eq!(
        violations(&status),
        ["event_selectors[0].data_resources[0].type"]
    );
    let status = c
        .put_event_selectors(pb::PutEventSelectorsRequest {
            trail_name: "valid-trail".into(),
            event_selectors: vec![selector("AWS::S3::Object")],
            advanced_event_selectors: vec![pb::AdvancedEventSelector::default()],
            request_id: String::new(),
        })
        .await
        .expect_err("both kinds");
    assert_eq!(
        violations(&status),
        [
            "advanced_event_selectors",
            "advanced_event_selectors[0].field_selectors"
        ]
    );
    let status = c
        .put_event_selectors(pb::PutEventSelectorsRequest {
            trail_name: "valid-trail".into(),
            ..Default::default()
        })
        .await
        .expect_err("neither kind");
    assert_eq!(violations(&status), ["event_selectors"]);
    nothing_reached_cloudtrail(&mut c).await;
}

/// LookupEvents' attribute, page size and time range; ListPublicKeys' range.
#[tokio::test]
async fn lookups_and_public_keys() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    // LookupEvents: one attribute at most, a key, max_results 1-50, start <= end.
    let attribute = |key: LookupAttributeKey| pb::LookupAttribute {
        attribute_key: key as i32,
        attribute_value: "x".into(),
    };
    let lookup_cases: [(pb::LookupEventsRequest, &[&str]); 5] = [
        (
            pb::LookupEventsRequest {
                lookup_attributes: vec![
                    attribute(LookupAttributeKey::EventName),
                    attribute(LookupAttributeKey::Username),
                ],
                ..Default::default()
            },
            &["lookup_attributes"],
        ),
        (
            pb::LookupEventsRequest {
                lookup_attributes: vec![attribute(LookupAttributeKey::Unspecified)],
                ..Default::default()
            },
            &["lookup_attributes[0].attribute_key"],
        ),
        (
            pb::LookupEventsRequest {
                max_results: Some(0),
                ..Default::default()
            },
            &["max_results"],
        ),
        (
            pb::LookupEventsRequest {
                max_results: Some(51),
                ..Default::default()
            },
            &["max_results"],
        ),
        (
            pb::LookupEventsRequest {
                start_time: Some(prost_types::Timestamp {
                    seconds: 20,
                    nanos: 0,
                }),
                end_time: Some(prost_types::Timestamp {
                    seconds: 10,
                    nanos: 0,
                }),
                ..Default::default()
            },
            &["start_time"],
        ),
    ];
    for (request, fields) in lookup_cases {
        let status = c
            .lookup_events(request.clone())
            .await
            .expect_err("invalid lookup");
        assert_eq!(violations(&status), fields, "{request:?}");
    }
    let status = c
        .list_public_keys(pb::ListPublicKeysRequest {
            start_time: Some(prost_types::Timestamp {
                seconds: 20,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect_err("reversed range");
    assert_eq!(violations(&status), ["start_time"]);
    nothing_reached_cloudtrail(&mut c).await;
}

/// Nothing reached CloudTrail: the only recorded events are this check's own lookups.
async fn nothing_reached_cloudtrail(c: &mut Client) {
    let recorded = c
        .lookup_events(pb::LookupEventsRequest::default())
        .await
        .expect("lookup")
        .into_inner()
        .events;
    let names: std::collections::BTreeSet<_> = recorded
        .iter()
        .filter(|e| e.username != common::PROBE) // the gateway's own health probe
        .map(|e| e.event_name.as_str())
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        Vec::<&str>::new(),
        "validation let a call through"
    );
}
