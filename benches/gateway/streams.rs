//! StreamEvents under load, on the release binary at CloudTrail's quotas (the gateway's LookupEvents
//! rate 1/s, the embedded CloudTrail's 2/s): 100 followers of one filter and 10 unary lookers (each its
//! own principal, each its own filter) on one account and Region, while a writer makes one change a
//! second. Prints the upstream LookupEvents calls per second and CloudTrail's throttles, the delivery
//! lag from an event's time to each follower receiving it, and the gateway's memory per open stream.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use cloudtrail_gateway::pb::{
    self, LookupAttributeKey, cloud_trail_service_client::CloudTrailServiceClient,
};
use tonic::Request;

use crate::servers::{self, TOKEN, TRAIL};

const FOLLOWERS: usize = 100;
const LOOKERS: usize = 10;

fn seconds() -> u64 {
    std::env::var("BENCH_STREAM_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn attribute(key: LookupAttributeKey, value: &str) -> Vec<pb::LookupAttribute> {
    vec![pb::LookupAttribute {
        attribute_key: key.into(),
        attribute_value: value.into(),
    }]
}

fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn lookups(metrics: &str) -> (f64, f64) {
    let name = "cloudtrail_upstream_requests_total";
    let all = servers::sum(metrics, name, "operation=\"LookupEvents\"");
    let throttled = servers::samples(metrics, name, "operation=\"LookupEvents\"")
        .filter(|(labels, _)| labels.contains("Throttling"))
        .map(|(_, v)| v)
        .sum();
    (all, throttled)
}

/// Both runs: the shared polls weighted as one caller among eleven, then as ten (the default).
pub async fn streams() {
    run(1).await;
    run(10).await;
}

async fn run(feed_weight: u32) {
    let seconds = seconds();
    println!(
        "StreamEvents: {FOLLOWERS} followers of one filter, {LOOKERS} LookupEvents callers, a change a second, {seconds} s (BENCH_STREAM_SECONDS), at the quotas; [weights] event-streams = {feed_weight}"
    );
    let lookers: Vec<String> = (0..LOOKERS).map(|i| format!("looker-token-{i}")).collect();
    let mut toml = format!("[weights]\nevent-streams = {feed_weight}\n");
    for (i, token) in lookers.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[tokens]]\nprincipal = \"looker-{i}\"\nsha256 = \"{}\"\nroles = [\"reader\"]\n",
            servers::token_hash(token)
        ));
    }
    let (gateway, _) = servers::gateway_with(
        &[],
        &toml,
        &[
            ("--lookup-rate", "1"),
            ("--write-rate", "1"),
            ("--local-lookup-quota", "2"),
            ("--local-write-quota", "1"),
            ("--max-streaming-calls", "10000"),
            ("--stream-heartbeat", "5s"),
        ],
    )
    .await;
    let metrics = gateway.metrics.expect("metrics port");
    let channels = crate::load::connect(gateway.addr, 4)
        .await
        .expect("connect");
    let client = |i: usize| CloudTrailServiceClient::new(channels[i % channels.len()].clone());
    client(0)
        .create_trail(with_token(
            pb::CreateTrailRequest {
                name: TRAIL.into(),
                s3_bucket_name: "bench-bucket".into(),
                ..Default::default()
            },
            TOKEN,
        ))
        .await
        .expect("the trail the writer changes");
    // The streams start a second later: their history holds nothing, only the changes count.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let rss_before = servers::peak_rss_mb(gateway.pid());
    let current_before = current_rss_mb(gateway.pid());
    let follow = pb::StreamEventsRequest {
        lookup_attributes: attribute(LookupAttributeKey::ReadOnly, "false"),
        start_time: Some(prost_types::Timestamp {
            seconds: now_f64() as i64,
            nanos: 0,
        }),
        follow: true,
        ..Default::default()
    };
    let lags = Arc::new(Mutex::new(Vec::<f64>::new()));
    let delivered = Arc::new(AtomicU64::new(0));
    let duplicates = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..FOLLOWERS {
        let mut stream = client(i)
            .stream_events(with_token(follow.clone(), TOKEN))
            .await
            .expect("StreamEvents")
            .into_inner();
        let (lags, delivered, duplicates) = (lags.clone(), delivered.clone(), duplicates.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            while let Ok(Some(message)) = stream.message().await {
                let now = now_f64();
                let mut lags = lags.lock().unwrap_or_else(|p| p.into_inner());
                for event in message.events {
                    let at = event
                        .event_time
                        .map_or(now, |t| t.seconds as f64 + f64::from(t.nanos) / 1e9);
                    lags.push(now - at);
                    delivered.fetch_add(1, Ordering::Relaxed);
                    if !seen.insert(event.event_id) {
                        duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let current_with = current_rss_mb(gateway.pid());

    let (calls_before, throttled_before) = lookups(&servers::scrape(metrics));
    let started = Instant::now();
    let stop = Duration::from_secs(seconds);
    // The writer: one change a second.
    let mut writer = client(0);
    let write = tokio::spawn(async move {
        let mut on = false;
        let mut written = 0u64;
        while started.elapsed() < stop {
            on = !on;
            let name = TRAIL.to_owned();
            let done = if on {
                writer
                    .start_logging(with_token(
                        pb::StartLoggingRequest {
                            name,
                            ..Default::default()
                        },
                        TOKEN,
                    ))
                    .await
                    .is_ok()
            } else {
                writer
                    .stop_logging(with_token(
                        pb::StopLoggingRequest {
                            name,
                            ..Default::default()
                        },
                        TOKEN,
                    ))
                    .await
                    .is_ok()
            };
            written += u64::from(done);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        written
    });
    // The lookers: each its own principal and filter, as fast as the quota lets them.
    let answered = Arc::new(AtomicU64::new(0));
    let mut lookers_tasks = Vec::new();
    for (i, token) in lookers.into_iter().enumerate() {
        let mut c = client(i);
        let answered = answered.clone();
        lookers_tasks.push(tokio::spawn(async move {
            let names = [
                "CreateTrail",
                "StartLogging",
                "StopLogging",
                "DescribeTrails",
                "LookupEvents",
            ];
            let request = pb::LookupEventsRequest {
                lookup_attributes: attribute(LookupAttributeKey::EventName, names[i % names.len()]),
                max_results: Some(i32::try_from(1 + i).unwrap_or(1)),
                ..Default::default()
            };
            while started.elapsed() < stop {
                let mut call = with_token(request.clone(), &token);
                call.set_timeout(Duration::from_secs(30));
                if c.lookup_events(call).await.is_ok() {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let written = write.await.unwrap_or(0);
    for task in lookers_tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (calls_after, throttled_after) = lookups(&servers::scrape(metrics));
    tokio::time::sleep(Duration::from_secs(3)).await; // the last changes reach the followers
    let mut lags = lags.lock().unwrap_or_else(|p| p.into_inner()).clone();
    lags.sort_by(f64::total_cmp);
    println!(
        "upstream LookupEvents: {:.2}/s (gateway quota 1/s; feed polls and the lookers' calls together), CloudTrail throttles {}",
        (calls_after - calls_before) / elapsed,
        throttled_after - throttled_before
    );
    println!(
        "lookers: {} LookupEvents answered ({:.2}/s)",
        answered.load(Ordering::Relaxed),
        answered.load(Ordering::Relaxed) as f64 / elapsed
    );
    println!(
        "followers: {written} changes made, {} events delivered ({:.1} per follower, {} twice), lag from the event's time: p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        delivered.load(Ordering::Relaxed),
        delivered.load(Ordering::Relaxed) as f64 / FOLLOWERS as f64,
        duplicates.load(Ordering::Relaxed),
        quantile(&lags, 0.5),
        quantile(&lags, 0.99),
        lags.last().copied().unwrap_or(0.0),
    );
    println!(
        "memory: RSS {:.1} MB before the streams, {:.1} MB with {FOLLOWERS} open: {:.0} KB per open stream (peak RSS {:.1} → {:.1} MB)",
        current_before,
        current_with,
        (current_with - current_before) * 1024.0 / FOLLOWERS as f64,
        rss_before,
        servers::peak_rss_mb(gateway.pid()),
    );
    for task in tasks {
        task.abort();
    }
    println!();
}

/// VmRSS of a process, in MB.
fn current_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
