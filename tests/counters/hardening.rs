//! What did not hold under attack, each reproduced first: unauthenticated streams without bound,
//! idle and half-open connections without bound, and limiter state from Redis believed whatever it
//! says; and Redis reached with a password over TLS.

use crate::common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use cloudtrail_gateway::{config::Config, limits::LimitsConfig, pb};
use common::{TestGateway, procs::Redis};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn with_server(f: impl FnOnce(&mut cloudtrail_gateway::config::ServerConfig)) -> Config {
    let mut config = common::test_config();
    f(&mut config.server);
    config
}

/// The attack: 10 000 unauthenticated Health/Watch streams all opened (RSS 59 → 139 MB). Now
/// streams hold one of `max_streaming_calls` places while they last; the rest are refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_streams_are_bounded() {
    let _alone = crate::alone().await;
    let gw = TestGateway::start_with(
        with_server(|s| s.max_streaming_calls = 20),
        common::test_local(),
    )
    .await;
    let mut health = HealthClient::new(common::channel(gw.addr).await);
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        match health.watch(HealthCheckRequest::default()).await {
            Ok(stream) => open.push(stream.into_inner()),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(open.len(), 20, "as many streams as places");
    assert_eq!(refused, 180);
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        metrics.contains("cloudtrail_gateway_shed_total{kind=\"stream\"} 180"),
        "{metrics}"
    );
    // Unary calls are not held up by open streams.
    health
        .check(HealthCheckRequest::default())
        .await
        .expect("unary health");
    gw.client
        .clone()
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("an RPC");
    // A closed stream gives its place back.
    open.truncate(19);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match health.watch(HealthCheckRequest::default()).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(status) => panic!("the place never came back: {status:?}"),
        }
    }
}

fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
        && {
            // A read timeout is an Err too: tell it apart from a close.
            stream
                .set_read_timeout(Some(Duration::from_millis(10)))
                .ok();
            !matches!(stream.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut)
        }
}

/// The attack: 300 idle TCP connections and 300 half-prefaces stayed open 150 s, and at the file
/// descriptor limit every call and /healthz timed out. Now a connection has `handshake_timeout` to
/// speak HTTP/2, and beyond `max_connections` a new one is closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_open_connections_are_closed_and_bounded() {
    let _alone = crate::alone().await;
    let gw = TestGateway::start_with(
        with_server(|s| {
            s.max_connections = 3;
            s.handshake_timeout = Duration::from_millis(500);
        }),
        common::test_local(),
    )
    .await;
    let addr = gw.addr;
    let (idle, half, third, mut extra) = tokio::task::spawn_blocking(move || {
        let idle = TcpStream::connect(addr).expect("connect");
        let mut half = TcpStream::connect(addr).expect("connect");
        half.write_all(b"PRI * HTTP/2.0\r\n")
            .expect("half a preface");
        let third = TcpStream::connect(addr).expect("connect");
        std::thread::sleep(Duration::from_millis(100));
        let extra = TcpStream::connect(addr).expect("connect");
        (idle, half, third, extra)
    })
    .await
    .expect("blocking");
    let started = Instant::now();
    let closed = tokio::task::spawn_blocking(move || {
        // The third stays open until then: closed earlier, it could free its place before the
        // gateway gets to accept the fourth.
        let over_limit = closed_by_peer(&mut extra, Duration::from_millis(200));
        drop(third);
        let (mut idle, mut half) = (idle, half);
        (
            over_limit,
            closed_by_peer(&mut idle, Duration::from_secs(3)),
            closed_by_peer(&mut half, Duration::from_secs(3)),
        )
    })
    .await
    .expect("blocking");
    assert!(closed.0, "beyond max_connections: closed at once");
    assert!(closed.1 && closed.2, "idle and half-open: closed");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The places are free again: a real client is served.
    gw.client
        .clone()
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("served");
    let (_, metrics) = gw.http_get("/metrics").await;
    for reason in ["limit", "handshake_timeout"] {
        assert!(
            metrics.contains(&format!(
                "cloudtrail_gateway_connections_refused_total{{reason=\"{reason}\"}}"
            )),
            "{reason}: {metrics}"
        );
    }
}

fn redis_config(ca: Option<Vec<u8>>, url: String) -> Config {
    Config {
        limits: LimitsConfig {
            quotas: cloudtrail_gateway::limits::Quotas {
                lookup: 5.0,
                ..common::UNLIMITED
            },
            redis_url: Some(url),
            redis_ca: ca,
            max_wait: Duration::from_secs(10),
            ..Config::default().limits
        },
        ..common::test_config()
    }
}

fn lookup(name: &str) -> tonic::Request<pb::LookupEventsRequest> {
    let mut request = tonic::Request::new(pb::LookupEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: pb::LookupAttributeKey::EventName as i32,
            attribute_value: name.into(),
        }],
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(5));
    request
}

/// The attack: a limiter key set to 99999999999999999 made every call RESOURCE_EXHAUSTED "retry in
/// 98204047007 s" while /readyz said ready. Now such an answer is not believed: the replica falls
/// back to its local share, calls go on, and /readyz and the metrics say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_answer_from_redis_is_not_believed() {
    let _alone = crate::alone().await;
    let redis = Redis::start();
    let config = redis_config(None, redis.url());
    let gw = TestGateway::start_with(config, common::test_local()).await;
    let mut c = gw.client.clone();
    c.lookup_events(lookup("before"))
        .await
        .expect("shared slots");
    redis.command(&[
        "SET",
        "cloudtrail-gateway:{123456789012:us-east-1}:lookup",
        "99999999999999999",
    ]);
    tokio::time::sleep(Duration::from_millis(300)).await; // past the slot just taken
    c.lookup_events(lookup("after"))
        .await
        .expect("served from the local fallback, not refused for years");
    let (code, body) = gw.http_get("/readyz").await;
    assert_eq!(code, 200);
    assert!(body.contains("local fallback"), "{body}");
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        metrics.contains("cloudtrail_gateway_limiter_redis_fallback 1"),
        "{metrics}"
    );
}

/// The attack: one reader's 4.1 MB DescribeTrails (460 000 names) was accepted and recorded as a
/// ~4.6 MB event; from then on LookupEvents pages and StreamEvents in that account and Region failed
/// for everyone ("encoded message length too large"). Now the gateway refuses the list at the edge,
/// and the embedded CloudTrail (reached here directly, as any SDK client could) leaves an oversized
/// field out, as CloudTrail does, and keeps its pages small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_request_cannot_poison_the_event_history() {
    let _alone = crate::alone().await;
    use aws_sdk_cloudtrail::config::{BehaviorVersion, Credentials, Region};
    let local = common::test_local();
    let gw = TestGateway::start_with(common::test_config(), local.clone()).await;
    let mut client = gw.client.clone();
    let names: Vec<String> = (0..200_000).map(|i| format!("trail-{i:08}")).collect();
    let refused = client
        .describe_trails(pb::DescribeTrailsRequest {
            trail_name_list: names[..1001].to_vec(),
            include_shadow_trails: None,
        })
        .await
        .expect_err("over the list's bound");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        common::violations(&refused).len(),
        1,
        "one violation, not 1001"
    );
    // Straight to the embedded CloudTrail: it takes the list, as CloudTrail would.
    let key = local.user_key("attacker");
    let direct = aws_sdk_cloudtrail::Client::from_conf(
        aws_sdk_cloudtrail::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                key.access_key_id,
                key.secret_access_key,
                None,
                None,
                "test",
            ))
            .http_client(local.clone())
            .build(),
    );
    direct
        .describe_trails()
        .set_trail_name_list(Some(names))
        .send()
        .await
        .expect("the embedded CloudTrail answers");
    // Everyone's LookupEvents still pages, and the huge call's record says its field was left out.
    let page = client
        .lookup_events(pb::LookupEventsRequest::default())
        .await
        .expect("a default page")
        .into_inner();
    let recorded = page
        .events
        .iter()
        .find(|e| e.event_name == "DescribeTrails" && e.username == "attacker")
        .expect("the call is recorded");
    let record: serde_json::Value =
        serde_json::from_str(&recorded.cloud_trail_event).expect("JSON");
    assert_eq!(record["omitted"], true, "{record}");
    assert!(record["requestParameters"].is_null());
    assert!(recorded.cloud_trail_event.len() < 10_000);
    let mut stream = client
        .stream_events(pb::StreamEventsRequest::default())
        .await
        .expect("a stream")
        .into_inner();
    let mut streamed = 0;
    while let Some(message) = tokio_stream::StreamExt::next(&mut stream).await {
        streamed += message.expect("every message sendable").events.len();
    }
    assert!(streamed >= 1);
}

/// The attack: ~9000 idle TCP connections to the side port exhausted the process's file descriptors
/// (`accept failed error=Too many open files` on the gRPC port; calls and /readyz stopped). Now the
/// side port holds at most `metrics_max_connections`, each with `handshake_timeout` to send its
/// request, and serves one request per connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_side_port_is_bounded_and_idle_connections_are_closed() {
    let _alone = crate::alone().await;
    let gw = TestGateway::start_with(
        with_server(|s| {
            s.metrics_max_connections = 4;
            s.handshake_timeout = Duration::from_millis(500);
        }),
        common::test_local(),
    )
    .await;
    let side = gw.http_addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut idle: Vec<TcpStream> = (0..4)
            .map(|_| TcpStream::connect(side).expect("connect"))
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let mut over = TcpStream::connect(side).expect("connect");
        let over_closed = closed_by_peer(&mut over, Duration::from_millis(300));
        let started = Instant::now();
        let idle_closed = idle
            .iter_mut()
            .all(|s| closed_by_peer(s, Duration::from_secs(3)));
        (over_closed, idle_closed, started.elapsed())
    })
    .await
    .expect("blocking");
    assert!(closed.0, "beyond metrics_max_connections: closed at once");
    assert!(closed.1, "idle connections: closed");
    assert!(closed.2 < Duration::from_secs(2), "{:?}", closed.2);
    // The places are free again, and the gRPC port never noticed.
    let (status, body) = gw.http_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("cloudtrail_gateway_connections_refused_total{reason=\"side_port_limit\"} 1"),
        "{body}"
    );
    assert_eq!(gw.http_get("/readyz").await.0, 200);
    gw.client
        .clone()
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("served");
}

fn follow_as(token: &str) -> tonic::Request<pb::StreamEventsRequest> {
    common::request(
        pb::StreamEventsRequest {
            follow: true,
            ..Default::default()
        },
        &[("authorization", &format!("Bearer {token}"))],
    )
}

/// The attack: 1200 unauthenticated Health/Watch streams, or 1000 followers from one reader, made
/// every other caller's StreamEvents and Health/Watch RESOURCE_EXHAUSTED; and 2000 connections that
/// sent the HTTP/2 preface and then nothing held their places ~41 s each. Now unauthenticated streams
/// have a pool of their own, each principal a bound of its own, and a connection that opens no
/// stream within `handshake_timeout` is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_caller_can_take_every_stream_or_connection() {
    let _alone = crate::alone().await;
    let mut config = with_server(|s| {
        s.max_streaming_calls = 50;
        s.max_open_streams = 2;
        s.max_streams_per_principal = 3;
        s.handshake_timeout = Duration::from_millis(500);
    });
    config.auth = cloudtrail_gateway::auth::AuthConfig {
        tokens: vec![
            common::token_entry("greedy", "greedy-token", &["reader"]),
            common::token_entry("polite", "polite-token", &["reader"]),
        ],
        open_health: true,
        ..Default::default()
    };
    let gw = TestGateway::start_with(config, common::test_local()).await;
    let mut health = HealthClient::new(common::channel(gw.addr).await);
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            health
                .watch(HealthCheckRequest::default())
                .await
                .expect("a place")
                .into_inner(),
        );
    }
    let refused = health
        .watch(HealthCheckRequest::default())
        .await
        .expect_err("pool full");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let mut client = gw.client.clone();
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(
            client
                .stream_events(follow_as("greedy-token"))
                .await
                .expect("within its bound")
                .into_inner(),
        );
    }
    let over = client
        .stream_events(follow_as("greedy-token"))
        .await
        .expect_err("over its bound");
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    assert!(over.message().contains("this caller"), "{over:?}");
    // The other reader is not locked out by either.
    streams.push(
        client
            .stream_events(follow_as("polite-token"))
            .await
            .expect("its own places")
            .into_inner(),
    );
    // A connection that says the preface and then nothing is closed within the handshake time.
    let addr = gw.addr;
    let silent_closed = tokio::task::spawn_blocking(move || {
        let mut silent = TcpStream::connect(addr).expect("connect");
        silent
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .expect("preface");
        silent
            .write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0])
            .expect("SETTINGS");
        let started = Instant::now();
        // The server's SETTINGS and ACK come first; then the close.
        let mut bytes = [0u8; 256];
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        loop {
            match silent.read(&mut bytes) {
                Ok(0) | Err(_) => break started.elapsed(),
                Ok(_) => continue,
            }
        }
    })
    .await
    .expect("blocking");
    assert!(
        silent_closed < Duration::from_secs(3),
        "closed after {silent_closed:?}"
    );
    let (_, metrics) = gw.http_get("/metrics").await;
    for expected in [
        "cloudtrail_gateway_shed_total{kind=\"stream_open\"} 1",
        "cloudtrail_gateway_shed_total{kind=\"stream_principal\"} 1",
        "cloudtrail_gateway_connections_refused_total{reason=\"no_stream\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected}\n{metrics}");
    }
    drop(streams);
}

#[derive(Clone, PartialEq, prost::Message)]
struct NotATrailRequest {
    /// Field 1 of DescribeTrailsRequest is a repeated string; a number there does not decode.
    #[prost(uint64, tag = "1")]
    number: u64,
}

/// A request that is not a valid message of its RPC is the caller's error: INVALID_ARGUMENT, not
/// tonic's INTERNAL.
#[tokio::test]
async fn a_request_that_does_not_decode_is_invalid_argument() {
    let _alone = crate::alone().await;
    let gw = TestGateway::start().await;
    let mut grpc = tonic::client::Grpc::new(common::channel(gw.addr).await);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static(
        "/cloudtrail.gateway.v1.CloudTrailService/DescribeTrails",
    );
    let codec = tonic_prost::ProstCodec::<NotATrailRequest, pb::DescribeTrailsResponse>::default();
    let status = grpc
        .unary(
            tonic::Request::new(NotATrailRequest { number: 7 }),
            path,
            codec,
        )
        .await
        .expect_err("does not decode");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}
