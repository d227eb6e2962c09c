//! Property tests: any request, structured or decoded from arbitrary bytes, is either converted or
//! rejected with violations that each name a field; nothing panics. The case count is fixed, so CI
//! runs the same amount of work each time (`PROPTEST_CASES` raises it for a longer run).

use proptest::prelude::*;

use super::{events, selectors, tags, trails};
use crate::{error::Error, pb};

fn client() -> aws_sdk_cloudtrail::Client {
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
        .build();
    aws_sdk_cloudtrail::Client::from_conf(config)
}

/// Converted, or refused naming a field for every violation.
fn judged<T>(result: Result<T, Error>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => Ok(()),
        Err(Error::InvalidArgument(violations)) => {
            prop_assert!(!violations.is_empty());
            for v in violations {
                prop_assert!(!v.field.is_empty(), "a violation without a field: {v:?}");
                prop_assert!(!v.description.is_empty());
            }
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!(
            "not a validation error: {other}"
        ))),
    }
}

/// Every request type decoded from `bytes` (where they decode) goes through its conversion.
fn every_conversion(bytes: &[u8]) -> Result<(), TestCaseError> {
    use prost::Message;
    let c = client();
    if let Ok(r) = pb::CreateTrailRequest::decode(bytes) {
        judged(trails::create_trail(r, c.create_trail()))?;
    }
    if let Ok(r) = pb::UpdateTrailRequest::decode(bytes) {
        judged(trails::update_trail(r, c.update_trail()))?;
    }
    if let Ok(r) = pb::DescribeTrailsRequest::decode(bytes) {
        judged(trails::describe_trails(r, c.describe_trails()))?;
    }
    if let Ok(r) = pb::DeleteTrailRequest::decode(bytes) {
        judged(trails::trail_ref("name", r.name))?;
    }
    if let Ok(r) = pb::PutEventSelectorsRequest::decode(bytes) {
        judged(selectors::put_event_selectors(r, c.put_event_selectors()))?;
    }
    if let Ok(r) = pb::AddTagsRequest::decode(bytes) {
        judged(tags::add_tags(r, c.add_tags()))?;
    }
    if let Ok(r) = pb::RemoveTagsRequest::decode(bytes) {
        judged(tags::remove_tags(r, c.remove_tags()))?;
    }
    if let Ok(r) = pb::ListTagsRequest::decode(bytes) {
        judged(tags::list_tags(r, c.list_tags()))?;
    }
    if let Ok(r) = pb::LookupEventsRequest::decode(bytes) {
        judged(events::lookup_events(r, c.lookup_events()))?;
    }
    if let Ok(r) = pb::ListPublicKeysRequest::decode(bytes) {
        judged(events::list_public_keys(r, c.list_public_keys()))?;
    }
    Ok(())
}

/// Names near the rules' edges: the characters they care about, lengths around their limits.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._-]{0,130}",
        "arn:aws:cloudtrail:[a-z0-9-]{0,12}:[0-9]{10,13}:(trail|channel)/[a-zA-Z0-9._-]{0,10}",
        ".{0,20}",
    ]
}

fn tag() -> impl Strategy<Value = pb::Tag> {
    (".{0,130}", proptest::option::of(".{0,260}")).prop_map(|(key, value)| pb::Tag { key, value })
}

/// 256 cases, unless `PROPTEST_CASES` asks for another number.
fn cases() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        every_conversion(&bytes)?;
    }

    #[test]
    fn structured_trail_requests_are_judged(
        name in name(),
        bucket in ".{0,70}",
        tags in proptest::collection::vec(tag(), 0..60),
        multi in any::<Option<bool>>(),
    ) {
        let c = client();
        let request = pb::CreateTrailRequest {
            name: name.clone(),
            s3_bucket_name: bucket,
            tags_list: tags.clone(),
            is_multi_region_trail: multi,
            ..Default::default()
        };
        judged(trails::create_trail(request, c.create_trail()))?;
        judged(trails::trail_ref("name", name.clone()))?;
        let add = pb::AddTagsRequest { resource_id: name, tags_list: tags, request_id: String::new() };
        judged(tags::add_tags(add, c.add_tags()))?;
    }

    #[test]
    fn structured_lookups_and_selectors_are_judged(
        keys in proptest::collection::vec(-2i32..12, 0..3),
        value in ".{0,2100}",
        max_results in proptest::option::of(-5i32..60),
        category in -1i32..3,
        start in proptest::option::of((any::<i64>(), any::<i32>())),
        selectors in proptest::collection::vec((-1i32..5, proptest::collection::vec(".{0,25}", 0..3)), 0..7),
    ) {
        let c = client();
        let request = pb::LookupEventsRequest {
            lookup_attributes: keys
                .into_iter()
                .map(|k| pb::LookupAttribute { attribute_key: k, attribute_value: value.clone() })
                .collect(),
            max_results,
            event_category: category,
            start_time: start.map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
            ..Default::default()
        };
        judged(events::lookup_events(request, c.lookup_events()))?;
        let put = pb::PutEventSelectorsRequest {
            trail_name: "trail".into(),
            event_selectors: selectors
                .into_iter()
                .map(|(rw, types)| pb::EventSelector {
                    read_write_type: rw,
                    data_resources: types
                        .into_iter()
                        .map(|t| pb::DataResource { r#type: t, values: vec!["arn:aws:s3:::b/".into()] })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        judged(selectors::put_event_selectors(put, c.put_event_selectors()))?;
    }
}
