//! Operating the gateway: graceful shutdown loses no call in flight while refusing new ones, health
//! follows the upstream and flips to NOT_SERVING on shutdown, SIGTERM exits 0, load shedding,
//! request ids, and invalid settings named at start.

use crate::common;

use std::time::Duration;

use cloudtrail_gateway::{
    config::Config,
    limits::{LimitsConfig, Quotas},
    pb,
};
use common::{
    TestGateway,
    procs::{GatewayProcess, free_port},
};
use tonic::{Code, Request};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

fn lookup(name: &str) -> Request<pb::LookupEventsRequest> {
    let mut request = Request::new(pb::LookupEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: pb::LookupAttributeKey::EventName as i32,
            attribute_value: name.into(),
        }],
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(20));
    request
}

fn lookup_rate(rate: f64) -> Config {
    Config {
        limits: LimitsConfig {
            quotas: Quotas {
                lookup: rate,
                ..common::UNLIMITED
            },
            ..Config::default().limits
        },
        ..common::test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_calls_in_flight_and_refuses_new_ones() {
    let mut gw = TestGateway::start_with(lookup_rate(2.0), common::test_local()).await;
    let mut health = HealthClient::new(common::channel(gw.addr).await);
    let mut watch = health
        .watch(HealthCheckRequest::default())
        .await
        .expect("watch")
        .into_inner();
    while watch
        .message()
        .await
        .expect("health update")
        .map(|m| m.status)
        != Some(ServingStatus::Serving as i32)
    {}

    // Four lookups at 2/s: slots at 0, 0.5, 1.0 and 1.5 s.
    let mut in_flight = Vec::new();
    for i in 0..4 {
        let mut client = gw.client.clone();
        in_flight.push(tokio::spawn(async move {
            client.lookup_events(lookup(&format!("drain-{i}"))).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.begin_shutdown();

    let update = watch
        .message()
        .await
        .expect("health update")
        .expect("an update before the stream ends");
    assert_eq!(
        update.status,
        ServingStatus::NotServing as i32,
        "NOT_SERVING as soon as shutdown starts"
    );
    // A watch stream never ends by itself; it would hold the drain until its timeout.
    drop((watch, health));
    let (status, _) = gw.http_get("/readyz").await;
    assert_eq!(status, 503, "/readyz during the drain");
    for call in in_flight {
        call.await
            .expect("task")
            .expect("a call in flight completes with OK");
    }
    let drained = std::time::Instant::now();
    gw.stopped().await;
    assert!(
        drained.elapsed() < Duration::from_secs(5),
        "stopped when the calls were done, not at the drain timeout"
    );
    // The listener is gone: a new connection is refused.
    let refused = tonic::transport::Endpoint::from_shared(format!("http://{}", gw.addr))
        .expect("endpoint")
        .connect()
        .await;
    assert!(
        refused.is_err(),
        "a new call after shutdown must be refused"
    );
}

#[tokio::test]
async fn health_follows_the_upstream() {
    let gw = TestGateway::start().await;
    let mut health = HealthClient::new(common::channel(gw.addr).await);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while health
        .check(HealthCheckRequest::default())
        .await
        .expect("check")
        .into_inner()
        .status
        != ServingStatus::Serving as i32
    {
        assert!(std::time::Instant::now() < deadline, "never SERVING");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gw.http_get("/readyz").await.0, 200);
    assert_eq!(gw.http_get("/healthz").await, (200, "ok\n".to_owned()));

    // An upstream nobody answers: alive, never ready.
    let closed = free_port();
    let unreachable = GatewayProcess::start_on(
        &format!("http://127.0.0.1:{closed}"),
        &[
            "--account-id",
            "123456789012",
            "--max-attempts",
            "1",
            "--health-probe-interval",
            "200ms",
        ],
    )
    .await;
    unreachable.wait_health(ServingStatus::NotServing).await;
    let (ready, _) = tokio::task::spawn_blocking(move || {
        common::procs::http(unreachable.http_addr.port(), "GET", "/readyz", &[], "")
    })
    .await
    .expect("task")
    .expect("GET /readyz");
    assert_eq!(ready, 503);
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let mut gw = GatewayProcess::start(&[], "info").await;
    gw.wait_health(ServingStatus::Serving).await;
    let status = gw
        .terminate(Duration::from_secs(10))
        .await
        .expect("exits well before the drain timeout");
    assert!(status.success(), "exit status {status:?}");
    let log = gw.log();
    assert!(
        log.contains("draining calls in flight") && log.contains("cloudtrail-gateway stopped"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_with_resource_exhausted() {
    let config = Config {
        server: cloudtrail_gateway::config::ServerConfig {
            max_concurrent_requests: 2,
            ..common::test_config().server
        },
        ..lookup_rate(1.0)
    };
    let gw = TestGateway::start_with(config, common::test_local()).await;
    let mut calls = Vec::new();
    for i in 0..5 {
        let mut client = gw.client.clone();
        calls.push(tokio::spawn(async move {
            client.lookup_events(lookup(&format!("shed-{i}"))).await
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut shed = 0;
    for call in calls {
        match call.await.expect("task") {
            Ok(_) => {}
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("concurrent call limit"),
                    "{status:?}"
                );
                shed += 1;
            }
        }
    }
    // The first takes the free slot and is done; the next two wait in the gateway; two are shed.
    assert_eq!(shed, 2, "two calls waiting in the gateway, the rest shed");
}

/// A message over `max_message_size`, in either direction, is RESOURCE_EXHAUSTED (gRPC's table and
/// the other gRPC implementations), not tonic's OUT_OF_RANGE; the calls metrics say the same.
#[tokio::test]
async fn oversized_messages_are_resource_exhausted() {
    let config = Config {
        server: cloudtrail_gateway::config::ServerConfig {
            max_message_size: 400,
            ..common::test_config().server
        },
        ..common::test_config()
    };
    let gw = TestGateway::start_with(config, common::test_local()).await;
    let mut c = gw.client.clone();
    let mut big = common::create_request("big-request");
    big.tags_list = (0..10)
        .map(|i| common::tag(&format!("key-{i}"), Some(&"v".repeat(40))))
        .collect();
    let status = c.create_trail(big).await.expect_err("request too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    for i in 0..3 {
        let name = format!("trail-{i}-{}", "n".repeat(80));
        c.create_trail(common::create_request(&name))
            .await
            .expect("a small request and answer");
    }
    let status = c
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect_err("answer too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("grpc_server_handled_total")
                && l.contains("grpc_method=\"DescribeTrails\"")
                && l.contains("grpc_code=\"ResourceExhausted\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn request_ids_come_back() {
    let gw = TestGateway::start().await;
    let mut c = gw.client.clone();
    let mut request = Request::new(pb::DescribeTrailsRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "trace-me-123".parse().expect("value"));
    let response = c.describe_trails(request).await.expect("describe");
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-123")
    );
    let status = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "missing".into(),
        })
        .await
        .expect_err("missing");
    let generated = status
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an id on errors too");
    assert_eq!(generated.len(), 36, "a generated UUID: {generated}");
}

#[test]
fn invalid_settings_are_named_at_start() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--max-concurrent-requests", "0"],
            "`max_concurrent_requests`",
        ),
        (&["--drain-timeout", "0s"], "`drain_timeout`"),
        (&["--lookup-rate=-1"], "`lookup_rate`"),
        (&["--redis-url", "http://redis:6379"], "`redis_url`"),
        (&["--max-attempts", "99"], "`max_attempts`"),
        (&["--metrics-listen", "not-an-address"], "--metrics-listen"),
    ];
    for (args, named) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cloudtrail-gateway"))
            .args(args)
            .output()
            .expect("run");
        assert!(!output.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_cloudtrail-gateway"))
        .args([
            "--print-config",
            "--redis-url",
            "redis://user:hunter2@10.0.0.1:6379",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success()
            && text.contains("redis://***@10.0.0.1:6379")
            && !text.contains("hunter2"),
        "{text}"
    );
}

/// One access-log line per call on `cloudtrail_gateway::access`: refused and failed calls at INFO
/// (the default level), successful ones at DEBUG; start-up fields written plainly (Display).
#[tokio::test]
async fn calls_have_access_log_lines() {
    let gw = GatewayProcess::start(&[], "info").await;
    let mut c = gw.client().await;
    let refused = c
        .create_trail(common::create_request("bad--name"))
        .await
        .expect_err("invalid");
    let id = refused
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("request id")
        .to_owned();
    c.describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("served");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("cloudtrail_gateway::access") && l.contains(&id))
        .unwrap_or_else(|| panic!("no access line for {id}:\n{log}"));
    for field in ["method=CreateTrail", "code=InvalidArgument", "duration_ms="] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(
        !log.lines().any(
            |l| l.contains("cloudtrail_gateway::access") && l.contains("method=DescribeTrails")
        ),
        "successful calls are DEBUG:\n{log}"
    );
    let serving = log
        .lines()
        .find(|l| l.contains("cloudtrail-gateway serving"))
        .expect("start-up line");
    assert!(
        serving.contains(&format!("listen={}", gw.addr))
            && serving.contains(&format!("metrics={}", gw.http_addr))
            && serving.contains("upstream=local")
            && !serving.contains("Some("),
        "{serving}"
    );

    let verbose = GatewayProcess::start(&[], "info,cloudtrail_gateway::access=debug").await;
    let mut c = verbose.client().await;
    c.describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("served");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        verbose
            .log()
            .lines()
            .any(|l| l.contains("cloudtrail_gateway::access")
                && l.contains("method=DescribeTrails")
                && l.contains("code=OK")),
        "{}",
        verbose.log()
    );
}

/// `--local-state-file`: the embedded CloudTrail's trails outlive the process; a file that is not
/// one is refused at start and by `--print-config`, naming the setting.
#[tokio::test]
async fn the_embedded_cloudtrail_keeps_its_trails_across_restarts() {
    let dir = common::pki::temp_dir("local-state");
    let path = dir.join("trails.json");
    let _ = std::fs::remove_file(&path);
    let state = path.to_string_lossy().into_owned();
    let mut gw = GatewayProcess::start(&["--local-state-file", &state], "warn").await;
    let mut c = gw.client().await;
    c.create_trail(common::create_request("kept-trail"))
        .await
        .expect("create");
    c.start_logging(pb::StartLoggingRequest {
        name: "kept-trail".into(),
        ..Default::default()
    })
    .await
    .expect("start");
    gw.restart().await;
    let mut c = gw.client().await;
    let status = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "kept-trail".into(),
        })
        .await
        .expect("still there after the restart")
        .into_inner();
    assert_eq!(status.is_logging, Some(true));

    std::fs::write(&path, "not json").expect("write");
    for first in ["--print-config", "--listen=127.0.0.1:0"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cloudtrail-gateway"))
            .args([first, "--local-state-file", &state])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{first}: started");
        assert!(stderr.contains("`local_state_file`"), "{first}: {stderr}");
    }
}
