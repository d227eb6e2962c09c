//! LookupEvents over real CloudTrail log files (testdata/cloudtrail-logs: 42 files from six public
//! projects) loaded into the embedded CloudTrail at start, through the gateway. The expected figures
//! were counted from the files with an independent script (see SOURCES.md for their provenance).

use crate::common;

use aws_smithy_types::{DateTime, date_time::Format};
use cloudtrail_gateway::pb::{self, EventCategory, LookupAttributeKey};
use common::{TestGateway, lookup, shared_logs};

async fn gateway_in(region: &str) -> TestGateway {
    let mut config = common::test_config();
    config.upstream.region = Some(region.into());
    config.local.load_logs = vec![shared_logs().join("logs")];
    let local = common::test_local();
    TestGateway::start_with(config, local).await
}

#[test]
fn every_file_loads_and_duplicates_are_stored_once() {
    let local = common::test_local();
    let logs = shared_logs().join("logs");
    assert_eq!(
        local.load_logs(&logs).expect("load"),
        346,
        "348 records, 2 delivered twice"
    );
    assert_eq!(local.load_logs(&logs).expect("reload"), 0);
}

#[tokio::test]
async fn lookup_over_us_east_1() {
    let gw = gateway_in("us-east-1").await;
    let mut c = gw.client.clone();
    let all = c
        .lookup_events(historic())
        .await
        .expect("lookup")
        .into_inner();
    // 28 records in us-east-1: 26 management events, 1 data event (never returned), 1 Insights event.
    assert_eq!(all.events.len(), 26);
    assert!(all.next_token.is_empty());
    let times: Vec<_> = all
        .events
        .iter()
        .map(|e| e.event_time.expect("time").seconds)
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    assert_eq!(
        lookup(&mut c, LookupAttributeKey::EventSource, "s3.amazonaws.com")
            .await
            .len(),
        14
    );
    assert_eq!(
        lookup(&mut c, LookupAttributeKey::EventName, "GetBucketAcl")
            .await
            .len(),
        14
    );
    assert_eq!(
        lookup(&mut c, LookupAttributeKey::ResourceType, "AWS::S3::Bucket")
            .await
            .len(),
        14
    );
    assert_eq!(
        lookup(&mut c, LookupAttributeKey::ResourceType, "AWS::KMS::Key")
            .await
            .len(),
        2
    );
    assert_eq!(
        lookup(&mut c, LookupAttributeKey::Username, "chris")
            .await
            .len(),
        1
    );
    // 4 of the 26 are writes; the 22 reads grow by the gateway's own recorded LookupEvents calls.
    assert_eq!(
        lookup(&mut c, LookupAttributeKey::ReadOnly, "false")
            .await
            .len(),
        4
    );
    // AWS documentation's example key signs four management events (and one data event).
    let by_key = lookup(
        &mut c,
        LookupAttributeKey::AccessKeyId,
        "AKIAIOSFODNN7EXAMPLE",
    )
    .await;
    let who: Vec<_> = by_key
        .iter()
        .map(|e| (e.event_name.as_str(), e.username.as_str()))
        .collect();
    assert_eq!(
        who,
        [
            ("UpdateTrail", "Terry"),
            ("CreateUser", "Mary"),
            ("StartInstances", "Mateo"),
            ("GetResource", "root")
        ]
    );
    assert!(
        lookup(&mut c, LookupAttributeKey::EventName, "Publish")
            .await
            .is_empty(),
        "data events are never returned"
    );

    let insights = c
        .lookup_events(pb::LookupEventsRequest {
            event_category: EventCategory::Insight as i32,
            ..Default::default()
        })
        .await
        .expect("insights")
        .into_inner()
        .events;
    assert_eq!(insights.len(), 1);
    assert_eq!(insights[0].event_source, "ssm.amazonaws.com");
}

#[tokio::test]
async fn pages_through_an_anonymised_region() {
    // Stratus Red Team's ssm-send-command detonation: 56 events in a made-up Region name.
    let gw = gateway_in("sagov-westsouth-1r").await;
    let mut c = gw.client.clone();
    let mut request = historic();
    let mut pages = Vec::new();
    let mut ids = std::collections::HashSet::new();
    loop {
        let page = c
            .lookup_events(request.clone())
            .await
            .expect("page")
            .into_inner();
        pages.push(page.events.len());
        ids.extend(page.events.into_iter().map(|e| e.event_id));
        if page.next_token.is_empty() {
            break;
        }
        request.next_token = page.next_token;
    }
    assert_eq!(pages, [50, 6]);
    assert_eq!(ids.len(), 56);
    let window = c
        .lookup_events(pb::LookupEventsRequest {
            start_time: Some(timestamp("2024-08-02T09:07:00Z")),
            end_time: Some(timestamp("2024-08-02T09:08:00Z")),
            ..Default::default()
        })
        .await
        .expect("window")
        .into_inner()
        .events;
    assert!(!window.is_empty() && window.len() < 56, "{}", window.len());
}

/// Only the loaded records (all before 2026), not the events of the gateway's own health probe.
fn historic() -> pb::LookupEventsRequest {
    pb::LookupEventsRequest {
        end_time: Some(timestamp("2026-01-01T00:00:00Z")),
        ..Default::default()
    }
}

fn timestamp(rfc3339: &str) -> prost_types::Timestamp {
    let t = DateTime::from_str(&rfc3339.replace("+00:00", "Z"), Format::DateTime).expect("time");
    prost_types::Timestamp {
        seconds: t.secs(),
        nanos: t.subsec_nanos() as i32,
    }
}

/// AWS's own LookupEvents answers for three records (oracle/), against ours for the same records.
/// AWS derives Resources from request parameters too; we report a record's `resources` array only,
/// so Resources are not compared (docs/conformance.md).
#[tokio::test]
async fn matches_aws_lookup_answers_from_the_oracle() {
    let oracle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared_logs().join("oracle/eks-security-immersion-day.lookup-events.json"))
            .expect("oracle"),
    )
    .expect("oracle JSON");
    let gw = gateway_in("us-west-2").await;
    let mut c = gw.client.clone();
    let events = oracle["Events"].as_array().expect("Events");
    assert_eq!(events.len(), 3);
    for entry in events {
        let aws = &entry["Event"];
        let field = |k: &str| aws[k].as_str().unwrap_or_default().to_owned();
        let ours = lookup(&mut c, LookupAttributeKey::EventId, &field("EventId")).await;
        assert_eq!(ours.len(), 1, "{}", field("EventId"));
        let e = &ours[0];
        assert_eq!(e.event_name, field("EventName"));
        assert_eq!(e.read_only, field("ReadOnly"));
        assert_eq!(e.access_key_id, field("AccessKeyId"));
        assert_eq!(e.event_source, field("EventSource"));
        assert_eq!(e.username, field("Username"), "{}", field("EventId"));
        assert_eq!(e.event_time, Some(timestamp(&field("EventTime"))));
        let ours_json: serde_json::Value =
            serde_json::from_str(&e.cloud_trail_event).expect("JSON");
        let aws_json: serde_json::Value =
            serde_json::from_str(&field("CloudTrailEvent")).expect("JSON");
        assert_eq!(ours_json, aws_json, "CloudTrailEvent round-trips");
    }
}
