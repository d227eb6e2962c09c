//! The client crate (crates/cloudtrail-gateway-client) against the real gateway binary: quota
//! refusals waited out and retried (mutations with their request id), tokens, TLS and mTLS, and an
//! event stream that carries on through a killed gateway and through a drain.

use crate::common;

use std::time::Duration;

use cloudtrail_gateway_client::{Client, Code, RetryPolicy, StreamExt, pb};
use common::{
    pki::{Pki, temp_dir},
    procs::{GatewayProcess, http},
};

/// A log file of `count` records in us-east-1 in 2025, one a minute (LookupEvents pages hold 50).
fn history_file(count: usize) -> String {
    let records: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"eventVersion": "1.08", "userIdentity": {{"type": "IAMUser", "userName": "loader"}},
                "eventTime": "2025-06-01T{:02}:{:02}:00Z", "eventSource": "cloudtrail.amazonaws.com",
                "eventName": "DescribeTrails", "awsRegion": "us-east-1", "readOnly": true,
                "eventID": "00000000-0000-4000-8000-{i:012}", "eventType": "AwsApiCall",
                "managementEvent": true, "eventCategory": "Management"}}"#,
                i / 60,
                i % 60
            )
        })
        .collect();
    let path = temp_dir("client-history").join("history.json");
    std::fs::write(&path, format!(r#"{{"Records": [{}]}}"#, records.join(","))).expect("write");
    path.to_string_lossy().into_owned()
}

async fn client(gateway: &GatewayProcess, retry: RetryPolicy) -> Client {
    Client::builder(format!("http://{}", gateway.addr))
        .deadline(Duration::from_secs(20))
        .retry(retry)
        .connect()
        .await
        .expect("connect")
}

/// `grpc_server_handled_total` for one method and code, from the side port.
fn handled(gateway: &GatewayProcess, method: &str, code: &str) -> u64 {
    let (_, metrics) = http(gateway.http_addr.port(), "GET", "/metrics", &[], "").expect("metrics");
    common::metric_sum(
        &metrics,
        "grpc_server_handled_total",
        &[("grpc_method", method), ("grpc_code", code)],
    ) as u64
}

fn create(name: &str) -> pb::CreateTrailRequest {
    pb::CreateTrailRequest {
        name: name.into(),
        s3_bucket_name: "client-bucket".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn quota_refusals_are_waited_out_as_retry_info_says() {
    // A write and a lookup every 2 s (under CloudTrail's quotas, wide enough that a slow machine
    // does not hide the refusal), no waiting in the gateway: the second call within 2 s is refused
    // RESOURCE_EXHAUSTED with RetryInfo.
    let gateway = GatewayProcess::start_with_quotas(
        &[
            "--write-rate",
            "0.5",
            "--lookup-rate",
            "0.5",
            "--limit-max-wait",
            "1ms",
            "--lookup-cache-ttl",
            "0s",
            "--read-cache-ttl",
            "0s",
        ],
        "warn",
    )
    .await;
    let plain = client(&gateway, RetryPolicy::none()).await;
    let retrying = client(&gateway, RetryPolicy::default()).await;
    plain.create_trail(create("first")).await.expect("first");
    let refused = plain
        .create_trail(create("refused"))
        .await
        .expect_err("over the quota");
    assert_eq!(refused.code(), Code::ResourceExhausted);

    // The same with the retrying client: it waits what RetryInfo says and the retry (with the
    // request id it added) succeeds.
    let started = std::time::Instant::now();
    retrying
        .create_trail(create("second"))
        .await
        .expect("retried");
    retrying
        .create_trail(create("third"))
        .await
        .expect("retried");
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    let names: Vec<String> = plain
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("describe")
        .trail_list
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["first", "second", "third"], "each created once");
    assert!(handled(&gateway, "CreateTrail", "ResourceExhausted") >= 2);

    // Lookups too.
    for _ in 0..3 {
        retrying
            .lookup_events(pb::LookupEventsRequest::default())
            .await
            .expect("lookup");
    }
    assert!(handled(&gateway, "LookupEvents", "ResourceExhausted") >= 1);
    // The target in metadata: the embedded CloudTrail's account in its Region works, another
    // account is refused by the gateway, naming it.
    plain
        .at("123456789012", "us-east-1")
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect("the default account, by name");
    let elsewhere = plain
        .at("210987654321", "us-east-1")
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect_err("not configured");
    assert!(
        matches!(elsewhere.code(), Code::NotFound | Code::FailedPrecondition),
        "{elsewhere:?}"
    );
    assert!(
        elsewhere.message().contains("210987654321"),
        "{elsewhere:?}"
    );
    // What cannot succeed is answered at once, not retried.
    let invalid = retrying
        .create_trail(create("a"))
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(handled(&gateway, "CreateTrail", "InvalidArgument"), 1);
}

#[tokio::test]
async fn tokens_tls_and_client_certificates() {
    let dir = temp_dir("client-tls");
    let pki = Pki::new("client test CA");
    let tls = pki.server_tls(&dir, Default::default());
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (cert, key) = (path(&tls.cert), path(&tls.key));
    let ca = tls.client_ca.as_deref().map(path).unwrap_or_default();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/auth.toml");
    let gateway = GatewayProcess::start_tls(
        &[
            "--config",
            config,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ],
        "warn",
    )
    .await;
    let endpoint = format!("https://{}", gateway.addr);
    let builder = || {
        Client::builder(endpoint.clone())
            .ca_certificate(pki.ca_pem.clone())
            .tls_domain("localhost")
    };
    // The example's token: principal local-dev, role operator.
    let operator = builder()
        .token("local-dev-token")
        .connect()
        .await
        .expect("TLS");
    operator
        .create_trail(create("tls-trail"))
        .await
        .expect("operator creates");
    let denied = operator
        .delete_trail(pb::DeleteTrailRequest {
            name: "tls-trail".into(),
            ..Default::default()
        })
        .await
        .expect_err("operator may not delete");
    assert_eq!(denied.code(), Code::PermissionDenied);
    // The example's certificate principal (a SPIFFE id): admin.
    let spiffe = "spiffe://example.test/ns/platform/sa/control-plane";
    let (client_cert, client_key) = pki.leaf("control-plane", &[], &[spiffe]);
    let admin = builder()
        .client_certificate(client_cert, client_key)
        .connect()
        .await
        .expect("mTLS");
    admin
        .delete_trail(pb::DeleteTrailRequest {
            name: "tls-trail".into(),
            ..Default::default()
        })
        .await
        .expect("admin deletes");
    // Neither: refused, and not retried.
    let nobody = builder().connect().await.expect("TLS");
    let status = nobody
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await
        .expect_err("no credentials");
    assert_eq!(status.code(), Code::Unauthenticated);
}

/// Every event id of a stream read to its end, and how often it resumed.
async fn read_all(
    mut stream: cloudtrail_gateway_client::EventStream,
    mut after_first: impl AsyncFnMut(),
) -> (Vec<String>, u32) {
    let mut ids = Vec::new();
    let mut first = true;
    while let Some(message) = stream.next().await {
        let message = message.expect("a message");
        ids.extend(message.events.into_iter().map(|e| e.event_id));
        if first {
            first = false;
            after_first().await;
        }
    }
    (ids, stream.resumed())
}

fn logged_history() -> pb::StreamEventsRequest {
    pb::StreamEventsRequest {
        // The loaded records only, not the ones the gateway's own calls add.
        end_time: Some(prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_event_stream_carries_on_through_a_killed_gateway() {
    let logs = history_file(120);
    // One LookupEvents every 2 s: each page of the stream comes 2 s after the one before, so the
    // kill lands mid-stream.
    let mut gateway = GatewayProcess::start_with_quotas(
        &["--local-load-logs", &logs, "--lookup-rate", "0.5"],
        "warn",
    )
    .await;
    let client = client(&gateway, RetryPolicy::default()).await;
    // Killed (SIGKILL: the connection breaks, no status) after the first message, started again.
    let (ids, resumed) = read_all(client.stream_events(logged_history()), async || {
        gateway.restart().await;
    })
    .await;
    assert!(resumed >= 1, "the stream was broken and resumed");
    // What paging LookupEvents to the end returns: all of it, in order, each once.
    let mut paged = Vec::new();
    let mut request = pb::LookupEventsRequest {
        end_time: logged_history().end_time,
        ..Default::default()
    };
    loop {
        let page = client.lookup_events(request.clone()).await.expect("page");
        paged.extend(page.events.into_iter().map(|e| e.event_id));
        if page.next_token.is_empty() {
            break;
        }
        request.next_token = page.next_token;
    }
    assert_eq!(paged.len(), 120);
    assert_eq!(ids, paged);
}

#[tokio::test]
async fn a_follower_carries_on_after_a_drain() {
    let mut gateway = GatewayProcess::start(&["--stream-poll-interval", "100ms"], "warn").await;
    let client = client(&gateway, RetryPolicy::default()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut stream = client.stream_events(pb::StreamEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: pb::LookupAttributeKey::EventName.into(),
            attribute_value: "CreateTrail".into(),
        }],
        start_time: Some(prost_types::Timestamp {
            seconds: now,
            nanos: 0,
        }),
        follow: true,
        ..Default::default()
    });
    let mut next_events = async |count: usize| {
        let mut names = Vec::new();
        while names.len() < count {
            let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
                .await
                .expect("in time")
                .expect("open")
                .expect("a message");
            names.extend(
                message
                    .events
                    .into_iter()
                    .flat_map(|e| e.resources)
                    .filter_map(|r| Some(r.resource_name.rsplit_once('/')?.1.to_owned())),
            );
        }
        names
    };
    client
        .create_trail(create("before-drain"))
        .await
        .expect("create");
    assert_eq!(next_events(1).await, ["before-drain"]);
    // SIGTERM: the gateway drains, ending the follower with UNAVAILABLE and its cursor; the stream
    // reconnects until the gateway is back.
    gateway
        .terminate(Duration::from_secs(20))
        .await
        .expect("exited");
    gateway.respawn().await;
    client
        .create_trail(create("after-drain"))
        .await
        .expect("create");
    assert_eq!(next_events(1).await, ["after-drain"]);
    assert!(stream.resumed() >= 1);
}
