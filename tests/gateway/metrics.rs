//! `/metrics` after known traffic: exact counter values and labels. Each test runs the gateway as a
//! process of its own: the Prometheus recorder is per process, so its counters start from zero there.

use crate::common;

use std::time::Duration;

use cloudtrail_gateway::pb;
use common::{connect, create_request, procs::GatewayProcess};

const SERVICE: &str = "cloudtrail.gateway.v1.CloudTrailService";

/// The value of the sample `name{labels}` (exactly these labels, in any order), if present.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            if metric != name {
                return None;
            }
            let found: Vec<&str> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|p| !p.is_empty())
                .collect();
            let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            let same =
                found.len() == wanted.len() && wanted.iter().all(|w| found.contains(&w.as_str()));
            same.then(|| value.parse().ok()).flatten()
        })
}

fn rpc(method: &str) -> [(&str, &str); 3] {
    [
        ("grpc_type", "unary"),
        ("grpc_service", SERVICE),
        ("grpc_method", method),
    ]
}

fn handled<'a>(method: &'a str, code: &'a str) -> [(&'a str, &'a str); 4] {
    let [t, s, m] = rpc(method);
    [t, s, m, ("grpc_code", code)]
}

#[tokio::test]
async fn metrics_after_known_traffic() {
    let gw = GatewayProcess::start(&[], "warn").await;
    let mut c = connect(gw.addr).await;
    for _ in 0..3 {
        c.describe_trails(pb::DescribeTrailsRequest::default())
            .await
            .expect("describe");
    }
    let missing = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "missing".into(),
        })
        .await;
    assert!(missing.is_err());
    let invalid = c.create_trail(create_request("bad--name")).await;
    assert!(invalid.is_err());
    for _ in 0..2 {
        let mut request = tonic::Request::new(pb::LookupEventsRequest {
            max_results: Some(7),
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(5));
        c.lookup_events(request).await.expect("lookup");
    }

    let (status, text) = gw.http_get("/metrics").await;
    assert_eq!(status, 200);
    let expect = |name: &str, labels: &[(&str, &str)], value: f64| {
        assert_eq!(
            sample(&text, name, labels),
            Some(value),
            "{name}{labels:?}\n{text}"
        );
    };
    expect("grpc_server_started_total", &rpc("DescribeTrails"), 3.0);
    expect(
        "grpc_server_handled_total",
        &handled("DescribeTrails", "OK"),
        3.0,
    );
    expect(
        "grpc_server_handled_total",
        &handled("GetTrailStatus", "NotFound"),
        1.0,
    );
    expect(
        "grpc_server_handled_total",
        &handled("CreateTrail", "InvalidArgument"),
        1.0,
    );
    expect(
        "grpc_server_handled_total",
        &handled("LookupEvents", "OK"),
        2.0,
    );
    expect(
        "grpc_server_handling_seconds_count",
        &rpc("DescribeTrails"),
        3.0,
    );
    assert!(
        sample(
            &text,
            "grpc_server_handling_seconds_bucket",
            &[rpc("DescribeTrails").as_slice(), &[("le", "0.005")]].concat()
        )
        .is_some()
    );
    expect("grpc_server_in_flight", &[], 0.0);
    // Upstream: the invalid CreateTrail never left; the second lookup came from cache.
    expect(
        "cloudtrail_upstream_requests_total",
        &[("operation", "DescribeTrails"), ("outcome", "ok")],
        3.0,
    );
    expect(
        "cloudtrail_upstream_requests_total",
        &[
            ("operation", "GetTrailStatus"),
            ("outcome", "TrailNotFoundException"),
        ],
        1.0,
    );
    expect(
        "cloudtrail_upstream_requests_total",
        &[("operation", "LookupEvents"), ("outcome", "ok")],
        1.0,
    );
    // Registered at start (every operation's "ok" series exists), never incremented.
    assert_eq!(
        sample(
            &text,
            "cloudtrail_upstream_requests_total",
            &[("operation", "CreateTrail"), ("outcome", "ok")]
        ),
        Some(0.0)
    );
    expect(
        "cloudtrail_upstream_duration_seconds_count",
        &[("operation", "DescribeTrails")],
        3.0,
    );
    expect(
        "cloudtrail_gateway_lookup_events_total",
        &[("source", "upstream")],
        1.0,
    );
    expect(
        "cloudtrail_gateway_lookup_events_total",
        &[("source", "cache")],
        1.0,
    );
    expect(
        "cloudtrail_gateway_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
}

/// Before any traffic: every series an alert or dashboard may use exists (at zero), each metric
/// has its `# HELP`, and there is no placeholder series for unknown paths.
#[tokio::test]
async fn every_series_exists_from_the_start_with_help() {
    let gw = GatewayProcess::start(&[], "warn").await;
    let (status, text) = gw.http_get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "grpc_server_started_total",
        "grpc_server_handling_seconds",
        "grpc_server_in_flight",
        "cloudtrail_upstream_requests_total",
        "cloudtrail_upstream_attempts_total",
        "cloudtrail_upstream_duration_seconds",
        "cloudtrail_gateway_limiter_waits_total",
        "cloudtrail_gateway_limiter_rejections_total",
        "cloudtrail_gateway_limiter_redis_fallback",
        "cloudtrail_gateway_lookup_events_total",
        "cloudtrail_gateway_auth_failures_total",
        "cloudtrail_gateway_shed_total",
        "cloudtrail_gateway_connections",
        "cloudtrail_gateway_connections_refused_total",
        "cloudtrail_gateway_draining",
        "cloudtrail_gateway_build_info",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
        assert!(
            text.lines()
                .any(|l| !l.starts_with('#') && l.starts_with(name)),
            "no series of {name}"
        );
    }
    for (name, labels) in [
        (
            "cloudtrail_gateway_limiter_rejections_total",
            [("class", "lookup")],
        ),
        ("cloudtrail_gateway_shed_total", [("kind", "call")]),
        ("cloudtrail_gateway_shed_total", [("kind", "stream")]),
        (
            "cloudtrail_gateway_auth_failures_total",
            [("reason", "permission_denied")],
        ),
        (
            "cloudtrail_gateway_connections_refused_total",
            [("reason", "limit")],
        ),
    ] {
        assert!(sample(&text, name, &labels).is_some(), "{name}{labels:?}");
    }
    assert_eq!(
        sample(&text, "cloudtrail_gateway_limiter_redis_fallback", &[]),
        Some(0.0)
    );
    assert!(
        !text.contains("grpc_service=\"unknown\""),
        "placeholder series"
    );
}

/// The metric names the shipped alert rules and dashboard query, each one the gateway exports.
fn queried_metrics(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("grpc_server_") || rest.starts_with("cloudtrail_") {
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            names.push(rest[..end].to_owned());
            i += end;
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn alerts_and_dashboard_query_only_exported_metrics() {
    // Log files in a bucket of the embedded S3: the event store's places, with their lag.
    let logs = common::shared_logs().join("logs");
    let gw = GatewayProcess::start(
        &[
            "--local-load-logs",
            &logs.to_string_lossy(),
            "--local-load-logs-bucket",
            "shipped",
        ],
        "warn",
    )
    .await;
    let mut exported = String::new();
    for _ in 0..100 {
        exported = gw.http_get("/metrics").await.1;
        if exported.contains("cloudtrail_store_lag_seconds{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let alerts = std::fs::read_to_string(format!("{root}/deploy/prometheus/alerts.yaml")).unwrap();
    let dashboard =
        std::fs::read_to_string(format!("{root}/deploy/grafana/cloudtrail-gateway.json")).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let expressions: Vec<&str> = parsed["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(expressions.len() >= 10, "the dashboard has its queries");
    let queried = queried_metrics(&format!("{alerts}\n{}", expressions.join("\n")));
    assert!(queried.len() >= 10, "{queried:?}");
    for name in queried {
        assert!(
            exported.lines().any(|l| l.starts_with(&name)),
            "{name} is queried but not exported"
        );
    }
}
