//! StreamEvents end to end on the embedded CloudTrail: a stream over real log files equals paging
//! LookupEvents to the end; resuming after any message equals the uninterrupted stream; following
//! sees events made during the stream exactly once, one shared poll for many followers; a drain
//! ends followers with a cursor another gateway resumes from; bad cursors are refused.

use crate::common;

use std::time::Duration;

use cloudtrail_gateway::{
    config::Config,
    pb::{self, LookupAttributeKey},
};
use common::{Client, TestGateway, create_request, shared_logs};
use tonic::{Code, Streaming};
use tonic_types::StatusExt;

/// 56 events of a made-up Region (Stratus Red Team's logs): two pages of LookupEvents.
const REGION: &str = "sagov-westsouth-1r";

fn historic() -> (Option<prost_types::Timestamp>, pb::LookupEventsRequest) {
    let end = Some(prost_types::Timestamp {
        seconds: 1_767_225_600, // 2026-01-01: the loaded records only, not the probe's
        nanos: 0,
    });
    (
        end,
        pb::LookupEventsRequest {
            end_time: end,
            ..Default::default()
        },
    )
}

async fn logs_gateway() -> TestGateway {
    let mut config = common::test_config();
    config.upstream.region = Some(REGION.into());
    config.local.load_logs = vec![shared_logs().join("logs")];
    TestGateway::start_with(config, common::test_local()).await
}

/// Every message of a stream until it ends: (events of each message, cursor of each message).
async fn drain(mut stream: Streaming<pb::StreamEventsResponse>) -> Vec<(Vec<String>, String)> {
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await.expect("a message") {
        let ids = message.events.iter().map(|e| e.event_id.clone()).collect();
        messages.push((ids, message.cursor));
    }
    messages
}

async fn stream(
    c: &mut Client,
    request: pb::StreamEventsRequest,
) -> Streaming<pb::StreamEventsResponse> {
    c.stream_events(request)
        .await
        .expect("StreamEvents")
        .into_inner()
}

#[tokio::test]
async fn a_stream_equals_paging_to_the_end_and_resumes_after_any_message() {
    let gw = logs_gateway().await;
    let mut c = gw.client.clone();
    let (end, mut page) = historic();
    let mut paged = Vec::new();
    loop {
        let answer = c
            .lookup_events(page.clone())
            .await
            .expect("page")
            .into_inner();
        paged.extend(answer.events.into_iter().map(|e| e.event_id));
        if answer.next_token.is_empty() {
            break;
        }
        page.next_token = answer.next_token;
    }
    assert_eq!(paged.len(), 56);
    let request = pb::StreamEventsRequest {
        end_time: end,
        ..Default::default()
    };
    let messages = drain(stream(&mut c, request.clone()).await).await;
    let streamed: Vec<String> = messages.iter().flat_map(|(ids, _)| ids.clone()).collect();
    assert_eq!(streamed, paged, "the same events, in the same order");
    assert!(messages.len() >= 3, "two pages and the caught-up message");
    // Resumed after each message, the rest is exactly what the uninterrupted stream sent after it.
    for (i, (_, cursor)) in messages.iter().enumerate() {
        let rest = drain(
            stream(
                &mut c,
                pb::StreamEventsRequest {
                    cursor: cursor.clone(),
                    ..request.clone()
                },
            )
            .await,
        )
        .await;
        let resumed: Vec<String> = messages[..=i]
            .iter()
            .chain(rest.iter())
            .flat_map(|(ids, _)| ids.clone())
            .collect();
        assert_eq!(resumed, paged, "resumed after message {i}");
    }
}

#[tokio::test]
async fn bad_cursors_are_refused() {
    let gw = logs_gateway().await;
    let mut c = gw.client.clone();
    let (end, _) = historic();
    let garbage = c
        .stream_events(pb::StreamEventsRequest {
            cursor: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("not a cursor");
    assert_eq!(common::violations(&garbage), ["cursor"]);
    let messages = drain(
        stream(
            &mut c,
            pb::StreamEventsRequest {
                end_time: end,
                ..Default::default()
            },
        )
        .await,
    )
    .await;
    let other = c
        .stream_events(pb::StreamEventsRequest {
            lookup_attributes: vec![pb::LookupAttribute {
                attribute_key: LookupAttributeKey::EventName.into(),
                attribute_value: "SendCommand".into(),
            }],
            end_time: end,
            cursor: messages[0].1.clone(),
            ..Default::default()
        })
        .await
        .expect_err("another filter's cursor");
    assert_eq!(common::violations(&other), ["cursor"]);
    let two = c
        .stream_events(pb::StreamEventsRequest {
            lookup_attributes: vec![
                pb::LookupAttribute::default(),
                pb::LookupAttribute::default(),
            ],
            ..Default::default()
        })
        .await
        .expect_err("LookupEvents' rules");
    assert_eq!(two.code(), Code::InvalidArgument);
}

/// Follow settings fit for tests: frequent polls, a short look-back, frequent heartbeats.
fn following_config() -> Config {
    let mut config = common::test_config();
    config.streams.poll_interval = Duration::from_millis(100);
    config.streams.lookback = Duration::from_secs(60);
    config.streams.heartbeat = Duration::from_millis(500);
    config
}

fn creates_from_now() -> pb::StreamEventsRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    pb::StreamEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: LookupAttributeKey::EventName.into(),
            attribute_value: "CreateTrail".into(),
        }],
        start_time: Some(prost_types::Timestamp {
            seconds: now,
            nanos: 0,
        }),
        follow: true,
        ..Default::default()
    }
}

/// Reads a follower until it has `count` events (or 30 s pass): the events' ids, the last cursor.
pub(crate) async fn follow_until(
    stream: &mut Streaming<pb::StreamEventsResponse>,
    count: usize,
) -> (Vec<String>, String) {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ids.len() < count {
        let message = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("events in time")
            .expect("a message")
            .expect("open");
        ids.extend(message.events.into_iter().map(|e| e.event_id));
        cursor = message.cursor;
    }
    (ids, cursor)
}

#[tokio::test]
async fn followers_see_new_events_exactly_once_from_one_shared_poll() {
    let local = common::test_local();
    let gw = TestGateway::start_with(following_config(), local.clone()).await;
    let mut c = gw.client.clone();
    let request = creates_from_now();
    let mut first = stream(&mut c, request.clone()).await;
    let mut second = stream(&mut c, request.clone()).await;
    // Caught up (nothing yet): each says so.
    for s in [&mut first, &mut second] {
        let caught_up = s.message().await.expect("message").expect("open");
        assert!(caught_up.caught_up && caught_up.events.is_empty());
    }
    for name in ["followed-1", "followed-2", "followed-3"] {
        c.create_trail(create_request(name)).await.expect("create");
    }
    let (a, _) = follow_until(&mut first, 3).await;
    let (b, cursor) = follow_until(&mut second, 3).await;
    assert_eq!(a.len(), 3);
    assert_eq!(a, b, "both, in the same order");
    // One shared poll: over 2 s at one poll per 100 ms, about 20 LookupEvents (two polls: 40).
    let polls = local.served("LookupEvents").len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polled = local.served("LookupEvents").len() - polls;
    assert!((10..30).contains(&polled), "{polled} LookupEvents in 2 s");
    // More polls pass: nothing again (no duplicate), heartbeats only.
    let idle = tokio::time::timeout(Duration::from_millis(1500), async {
        let mut repeated = Vec::new();
        while let Ok(Some(m)) = first.message().await {
            repeated.extend(m.events);
        }
        repeated
    })
    .await;
    assert!(idle.is_err(), "the follower stays open");
    // Resumed from the cursor after a trail made meanwhile: that one only.
    drop(second);
    c.create_trail(create_request("followed-4"))
        .await
        .expect("create");
    let mut resumed = stream(&mut c, pb::StreamEventsRequest { cursor, ..request }).await;
    let (next, _) = follow_until(&mut resumed, 1).await;
    assert_eq!(next.len(), 1);
    assert!(
        !a.contains(&next[0]),
        "a new event, not one delivered before"
    );
}

#[tokio::test]
async fn a_follower_does_not_get_again_what_its_history_delivered() {
    let local = common::test_local();
    let gw = TestGateway::start_with(following_config(), local.clone()).await;
    let mut c = gw.client.clone();
    c.create_trail(create_request("made-before"))
        .await
        .expect("create");
    // Seconds later (cursors count whole seconds): no start time, so the history holds the trail
    // made before, then the stream follows.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let request = pb::StreamEventsRequest {
        start_time: None,
        ..creates_from_now()
    };
    let mut follower = stream(&mut c, request).await;
    let (history, _) = follow_until(&mut follower, 1).await;
    assert_eq!(history.len(), 1);
    c.create_trail(create_request("made-after"))
        .await
        .expect("create");
    let (followed, _) = follow_until(&mut follower, 1).await;
    assert_eq!(followed.len(), 1);
    assert_ne!(followed, history, "the history's event came again");
    // And nothing more over several polls.
    let more = tokio::time::timeout(Duration::from_millis(800), async {
        loop {
            match follower.message().await {
                Ok(Some(m)) if m.events.is_empty() => continue,
                other => return other.map(|m| m.map(|m| m.events.len())),
            }
        }
    })
    .await;
    assert!(more.is_err(), "only heartbeats: {more:?}");
}

#[tokio::test]
async fn a_follower_ends_cleanly_at_its_deadline() {
    let gw = TestGateway::start_with(following_config(), common::test_local()).await;
    let mut c = gw.client.clone();
    let mut request = tonic::Request::new(creates_from_now());
    request.set_timeout(Duration::from_millis(1500));
    let started = tokio::time::Instant::now();
    let mut follower = c
        .stream_events(request)
        .await
        .expect("StreamEvents")
        .into_inner();
    let end = loop {
        match follower.message().await {
            Ok(Some(_)) => continue, // caught up, heartbeats
            Ok(None) => break None,
            Err(status) => break Some(status.code()),
        }
    };
    let took = started.elapsed();
    // The gateway ends it at the deadline (OK), or the client's own timer does first.
    assert!(
        matches!(end, None | Some(Code::DeadlineExceeded)),
        "{end:?}"
    );
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_drain_ends_followers_with_a_cursor_another_gateway_resumes_from() {
    let local = common::test_local();
    let mut gw = TestGateway::start_with(following_config(), local.clone()).await;
    let mut c = gw.client.clone();
    let request = creates_from_now();
    let mut follower = stream(&mut c, request.clone()).await;
    c.create_trail(create_request("before-drain"))
        .await
        .expect("create");
    let (delivered, _) = follow_until(&mut follower, 1).await;
    gw.begin_shutdown();
    let ended = loop {
        match follower.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unavailable);
    let info = ended.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "Draining");
    let cursor = info.metadata.get("cursor").expect("the cursor").clone();
    // Another gateway on the same CloudTrail carries on: not the event delivered before, the new one.
    let other = TestGateway::start_with(following_config(), local.clone()).await;
    let mut c = other.client.clone();
    c.create_trail(create_request("after-drain"))
        .await
        .expect("create");
    let mut resumed = stream(&mut c, pb::StreamEventsRequest { cursor, ..request }).await;
    let (next, _) = follow_until(&mut resumed, 1).await;
    assert_eq!(next.len(), 1);
    assert_ne!(next, delivered);
}
